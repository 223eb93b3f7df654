//! Foreign keys and indexes, named by one rule so every migration names them alike:
//! `fk_<table>_<column>`, `ux_<table>_<columns>` (unique), `ix_<table>_<columns>`.
//!
//! The first migrations (`m20261122_*`) named theirs by hand (`fk_bays_cabinet`,
//! `ux_refresh_tokens_hash`, ...) before they moved to these helpers: a database
//! migrated before that move keeps those names, so a later migration that drops
//! or alters one of their constraints or indexes by name must allow for both.

use sea_orm_migration::prelude::*;

/// A foreign key from `table.column` to `to_table.id`, named `fk_<table>_<column>`.
pub fn foreign_key<T, C, R>(
    table: T,
    column: C,
    to_table: R,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement
where
    T: Iden + Clone + 'static,
    C: Iden + Clone + 'static,
    R: Iden + 'static,
{
    ForeignKey::create()
        .name(format!("fk_{}_{}", table.to_string(), column.to_string()))
        .from(table, column)
        .to(to_table, Alias::new("id"))
        .on_delete(on_delete)
        .to_owned()
}

/// A unique index on `columns` of `table`, named `ux_<table>_<columns>`.
pub async fn unique_index<T: Iden + Clone + 'static>(
    manager: &SchemaManager<'_>,
    table: T,
    columns: &[&str],
) -> Result<(), DbErr> {
    create_index(manager, "ux", table, columns, true, None).await
}

/// A unique index on `columns` of `table` over only the rows where `condition`
/// holds (a partial index, the same on SQLite and PostgreSQL), named
/// `ux_<table>_<columns>` like a full one.
pub async fn unique_index_where<T: Iden + Clone + 'static>(
    manager: &SchemaManager<'_>,
    table: T,
    columns: &[&str],
    condition: Expr,
) -> Result<(), DbErr> {
    create_index(manager, "ux", table, columns, true, Some(condition)).await
}

/// A plain index on `columns` of `table`, named `ix_<table>_<columns>`.
pub async fn index<T: Iden + Clone + 'static>(
    manager: &SchemaManager<'_>,
    table: T,
    columns: &[&str],
) -> Result<(), DbErr> {
    create_index(manager, "ix", table, columns, false, None).await
}

/// Drops the index [`index`] (or, when `unique`, [`unique_index`]) created on
/// `columns` of `table`.
pub async fn drop_index<T: Iden + Clone + 'static>(
    manager: &SchemaManager<'_>,
    table: T,
    columns: &[&str],
    unique: bool,
) -> Result<(), DbErr> {
    let name = index_name(if unique { "ux" } else { "ix" }, &table, columns);
    manager
        .drop_index(Index::drop().name(name).table(table).to_owned())
        .await
}

fn index_name(prefix: &str, table: &impl Iden, columns: &[&str]) -> String {
    format!("{prefix}_{}_{}", table.to_string(), columns.join("_"))
}

async fn create_index<T: Iden + Clone + 'static>(
    manager: &SchemaManager<'_>,
    prefix: &str,
    table: T,
    columns: &[&str],
    unique: bool,
    condition: Option<Expr>,
) -> Result<(), DbErr> {
    let name = index_name(prefix, &table, columns);
    let mut index = Index::create().name(name).table(table).to_owned();
    for column in columns {
        index.col(Alias::new(*column));
    }
    if unique {
        index.unique();
    }
    if let Some(condition) = condition {
        index.and_where(condition);
    }
    manager.create_index(index).await
}

/// One side of a link table: its column and the table it references.
pub struct Link<C, T> {
    pub column: C,
    pub references: T,
}

/// A table linking two others (a user's roles, a technician's stations): both
/// ids as a composite primary key, each a foreign key that cascades, a
/// timestamp of when the link was made, and an index on the second id so both
/// directions are looked up by index.
pub async fn link_table(
    manager: &SchemaManager<'_>,
    table: impl Iden + Clone + 'static,
    first: Link<impl Iden + Clone + 'static, impl Iden + 'static>,
    second: Link<impl Iden + Clone + 'static, impl Iden + 'static>,
    at: impl Iden + 'static,
) -> Result<(), DbErr> {
    let second_name = second.column.to_string();
    manager
        .create_table(link_table_statement(table.clone(), first, second, at))
        .await?;
    index(manager, table, &[second_name.as_str()]).await
}

/// The table of [`link_table`] without its index on the second id, for a link
/// looked up only from its first side (`user_roles`, created before
/// [`link_table`] indexed the second side).
pub fn link_table_statement(
    table: impl Iden + Clone + 'static,
    first: Link<impl Iden + Clone + 'static, impl Iden + 'static>,
    second: Link<impl Iden + Clone + 'static, impl Iden + 'static>,
    at: impl Iden + 'static,
) -> TableCreateStatement {
    Table::create()
        .table(table.clone())
        .col(reference(first.column.clone()))
        .col(reference(second.column.clone()))
        .col(crate::columns::timestamp(at))
        .primary_key(
            Index::create()
                .col(first.column.clone())
                .col(second.column.clone()),
        )
        .foreign_key(&mut foreign_key(
            table.clone(),
            first.column,
            first.references,
            ForeignKeyAction::Cascade,
        ))
        .foreign_key(&mut foreign_key(
            table,
            second.column,
            second.references,
            ForeignKeyAction::Cascade,
        ))
        .to_owned()
}

/// A required reference to another table's id.
pub fn reference(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).integer().not_null().to_owned()
}

/// Drops `tables` in the order given (dependents first), for `down` migrations.
pub async fn drop_tables(manager: &SchemaManager<'_>, tables: Vec<DynIden>) -> Result<(), DbErr> {
    for table in tables {
        manager
            .drop_table(Table::drop().table(table).to_owned())
            .await?;
    }
    Ok(())
}
