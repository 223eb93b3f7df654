//! The schema's DataLoader and its batching helpers, so a page of stations costs
//! a fixed number of queries.
//!
//! The loader is shared by the whole schema and does not cache: it batches the
//! lookups that concurrent resolvers make, and every request still reads fresh
//! rows. Each domain declares its own keys and `Loader` impls next to its types
//! (`charging/loaders.rs`, …), with [`one_per_key!`] and [`many_per_key!`] for
//! the two common shapes: one row per key (by id, or a one-to-one foreign key)
//! and the rows under a foreign key.

use std::collections::HashMap;
use std::hash::Hash;

use async_graphql::Context;
use async_graphql::dataloader::DataLoader;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Select};

use crate::error::AppError;

pub struct DbLoader {
    db: DatabaseConnection,
}

impl DbLoader {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }
}

/// The schema's loader, for resolvers.
pub fn loader<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a DataLoader<DbLoader>> {
    ctx.data::<DataLoader<DbLoader>>()
}

pub type LoadResult<K, V> = Result<HashMap<K, V>, async_graphql::Error>;

fn db_error(err: sea_orm::DbErr) -> async_graphql::Error {
    AppError::from(err).into()
}

/// Groups rows under the key each belongs to; keys without rows get an empty list.
pub fn group<K: Copy + Eq + Hash, V>(
    keys: &[K],
    rows: Vec<V>,
    key_of: impl Fn(&V) -> K,
) -> HashMap<K, Vec<V>> {
    let mut grouped: HashMap<K, Vec<V>> = keys.iter().map(|k| (*k, Vec::new())).collect();
    for row in rows {
        grouped.entry(key_of(&row)).or_default().push(row);
    }
    grouped
}

/// The row of `E` whose `column` equals each key's id.
///
/// # Errors
/// On database errors.
pub async fn one_each<E, K>(
    db: &DatabaseConnection,
    column: E::Column,
    ids: impl Iterator<Item = i32>,
    key_of: impl Fn(&E::Model) -> K,
) -> LoadResult<K, E::Model>
where
    E: EntityTrait,
    K: Eq + Hash,
{
    let rows = E::find()
        .filter(column.is_in(ids))
        .all(db)
        .await
        .map_err(db_error)?;
    Ok(rows.into_iter().map(|row| (key_of(&row), row)).collect())
}

/// The rows of `query` whose `column` equals each key's id, grouped by key in
/// the query's order.
///
/// # Errors
/// On database errors.
pub async fn many_each<E, K>(
    db: &DatabaseConnection,
    query: Select<E>,
    column: E::Column,
    keys: &[K],
    id: impl Fn(&K) -> i32,
    key_of: impl Fn(&E::Model) -> K,
) -> LoadResult<K, Vec<E::Model>>
where
    E: EntityTrait,
    K: Copy + Eq + Hash,
{
    let rows = query
        .filter(column.is_in(keys.iter().map(id)))
        .all(db)
        .await
        .map_err(db_error)?;
    Ok(group(keys, rows, key_of))
}

/// Declares a key loading one row of `entity` per id: `one_per_key!(StationById:
/// station by Id => id)` matches `station::Column::Id` against the key and keys
/// each row by its `id` field.
macro_rules! one_per_key {
    ($(#[$doc:meta])* $key:ident: $entity:ident by $column:ident => $field:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $key(pub i32);

        impl async_graphql::dataloader::Loader<$key> for $crate::graphql::loaders::DbLoader {
            type Value = $entity::Model;
            type Error = async_graphql::Error;

            async fn load(
                &self,
                keys: &[$key],
            ) -> $crate::graphql::loaders::LoadResult<$key, $entity::Model> {
                $crate::graphql::loaders::one_each::<$entity::Entity, _>(
                    self.db(),
                    $entity::Column::$column,
                    keys.iter().map(|k| k.0),
                    |row| $key(row.$field),
                )
                .await
            }
        }
    };
}

/// Declares a key loading the rows of `query` under a foreign key:
/// `many_per_key!(BaysOfCabinet: bay by CabinetId => cabinet_id, bay::Entity::find()
/// .order_by_asc(bay::Column::Number))`.
macro_rules! many_per_key {
    ($(#[$doc:meta])* $key:ident: $entity:ident by $column:ident => $field:ident, $query:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $key(pub i32);

        impl async_graphql::dataloader::Loader<$key> for $crate::graphql::loaders::DbLoader {
            type Value = Vec<$entity::Model>;
            type Error = async_graphql::Error;

            async fn load(
                &self,
                keys: &[$key],
            ) -> $crate::graphql::loaders::LoadResult<$key, Vec<$entity::Model>> {
                $crate::graphql::loaders::many_each(
                    self.db(),
                    $query,
                    $entity::Column::$column,
                    keys,
                    |k| k.0,
                    |row| $key(row.$field),
                )
                .await
            }
        }
    };
}

pub(crate) use {many_per_key, one_per_key};
