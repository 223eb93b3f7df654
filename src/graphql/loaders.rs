//! DataLoaders for relations, so a page of stations costs a fixed number of queries.
//!
//! The loader is shared by the whole schema and does not cache: it batches the
//! lookups that concurrent resolvers make, and every request still reads fresh rows.

use std::collections::HashMap;

use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, Loader};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};

use crate::auth::RoleName;
use crate::entities::{auth_method, bay, cabinet, consent, device, profile, station, user};
use crate::error::AppError;

pub struct DbLoader {
    db: DatabaseConnection,
}

impl DbLoader {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

/// The schema's loader, for resolvers.
pub fn loader<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a DataLoader<DbLoader>> {
    ctx.data::<DataLoader<DbLoader>>()
}

/// Key newtypes: one per relation, so each batches on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StationById(pub i32);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CabinetById(pub i32);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CabinetsOfStation(pub i32);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BaysOfCabinet(pub i32);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BaysOfStation(pub i32);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceOfBay(pub i32);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserById(pub i32);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProfileOfUser(pub i32);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RolesOfUser(pub i32);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConsentsOfUser(pub i32);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ActiveBadgesOfUser(pub i32);

type LoadResult<K, V> = Result<HashMap<K, V>, async_graphql::Error>;

fn db_error(err: sea_orm::DbErr) -> async_graphql::Error {
    AppError::from(err).into()
}

/// Groups rows under the key each belongs to; keys without rows get an empty list.
fn group<K: Copy + Eq + std::hash::Hash, V>(
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

impl Loader<StationById> for DbLoader {
    type Value = station::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[StationById]) -> LoadResult<StationById, station::Model> {
        let rows = station::Entity::find()
            .filter(station::Column::Id.is_in(keys.iter().map(|k| k.0)))
            .all(&self.db)
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|row| (StationById(row.id), row))
            .collect())
    }
}

impl Loader<CabinetById> for DbLoader {
    type Value = cabinet::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[CabinetById]) -> LoadResult<CabinetById, cabinet::Model> {
        let rows = cabinet::Entity::find()
            .filter(cabinet::Column::Id.is_in(keys.iter().map(|k| k.0)))
            .all(&self.db)
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|row| (CabinetById(row.id), row))
            .collect())
    }
}

impl Loader<CabinetsOfStation> for DbLoader {
    type Value = Vec<cabinet::Model>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[CabinetsOfStation],
    ) -> LoadResult<CabinetsOfStation, Vec<cabinet::Model>> {
        let rows = cabinet::Entity::find()
            .filter(cabinet::Column::StationId.is_in(keys.iter().map(|k| k.0)))
            .order_by_asc(cabinet::Column::Number)
            .all(&self.db)
            .await
            .map_err(db_error)?;
        Ok(group(keys, rows, |row| CabinetsOfStation(row.station_id)))
    }
}

impl Loader<BaysOfCabinet> for DbLoader {
    type Value = Vec<bay::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[BaysOfCabinet]) -> LoadResult<BaysOfCabinet, Vec<bay::Model>> {
        let rows = bay::Entity::find()
            .filter(bay::Column::CabinetId.is_in(keys.iter().map(|k| k.0)))
            .order_by_asc(bay::Column::Number)
            .all(&self.db)
            .await
            .map_err(db_error)?;
        Ok(group(keys, rows, |row| BaysOfCabinet(row.cabinet_id)))
    }
}

impl Loader<BaysOfStation> for DbLoader {
    type Value = Vec<bay::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[BaysOfStation]) -> LoadResult<BaysOfStation, Vec<bay::Model>> {
        let rows = bay::Entity::find()
            .filter(bay::Column::StationId.is_in(keys.iter().map(|k| k.0)))
            .order_by_asc(bay::Column::CabinetId)
            .order_by_asc(bay::Column::Number)
            .all(&self.db)
            .await
            .map_err(db_error)?;
        Ok(group(keys, rows, |row| BaysOfStation(row.station_id)))
    }
}

impl Loader<DeviceOfBay> for DbLoader {
    type Value = device::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[DeviceOfBay]) -> LoadResult<DeviceOfBay, device::Model> {
        let rows = device::Entity::find()
            .filter(device::Column::BayId.is_in(keys.iter().map(|k| k.0)))
            .all(&self.db)
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|row| (DeviceOfBay(row.bay_id), row))
            .collect())
    }
}

impl Loader<ProfileOfUser> for DbLoader {
    type Value = profile::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[ProfileOfUser]) -> LoadResult<ProfileOfUser, profile::Model> {
        let rows = profile::Entity::find()
            .filter(profile::Column::UserId.is_in(keys.iter().map(|k| k.0)))
            .all(&self.db)
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|row| (ProfileOfUser(row.user_id), row))
            .collect())
    }
}

impl Loader<RolesOfUser> for DbLoader {
    type Value = Vec<RoleName>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[RolesOfUser]) -> LoadResult<RolesOfUser, Vec<RoleName>> {
        let ids: Vec<i32> = keys.iter().map(|k| k.0).collect();
        let held = crate::accounts::roles::held_by(&self.db, &ids).await?;
        Ok(held
            .into_iter()
            .map(|(id, roles)| (RolesOfUser(id), roles))
            .collect())
    }
}

impl Loader<UserById> for DbLoader {
    type Value = user::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[UserById]) -> LoadResult<UserById, user::Model> {
        let rows = user::Entity::find()
            .filter(user::Column::Id.is_in(keys.iter().map(|k| k.0)))
            .all(&self.db)
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|row| (UserById(row.id), row))
            .collect())
    }
}

impl Loader<ConsentsOfUser> for DbLoader {
    type Value = Vec<consent::Model>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[ConsentsOfUser],
    ) -> LoadResult<ConsentsOfUser, Vec<consent::Model>> {
        let ids: Vec<i32> = keys.iter().map(|k| k.0).collect();
        let rows = crate::accounts::profile::consents(&self.db, &ids).await?;
        Ok(group(keys, rows, |row| ConsentsOfUser(row.user_id)))
    }
}

impl Loader<ActiveBadgesOfUser> for DbLoader {
    type Value = Vec<auth_method::Model>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[ActiveBadgesOfUser],
    ) -> LoadResult<ActiveBadgesOfUser, Vec<auth_method::Model>> {
        let ids: Vec<i32> = keys.iter().map(|k| k.0).collect();
        let rows = crate::accounts::badges::active(&self.db, &ids).await?;
        Ok(group(keys, rows, |row| ActiveBadgesOfUser(row.user_id)))
    }
}
