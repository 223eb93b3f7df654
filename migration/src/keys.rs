//! Foreign keys and indexes, named by one rule so every migration names them alike:
//! `fk_<table>_<column>`, `ux_<table>_<columns>` (unique), `ix_<table>_<columns>`.

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
    create_index(manager, "ux", table, columns, true).await
}

/// A plain index on `columns` of `table`, named `ix_<table>_<columns>`.
pub async fn index<T: Iden + Clone + 'static>(
    manager: &SchemaManager<'_>,
    table: T,
    columns: &[&str],
) -> Result<(), DbErr> {
    create_index(manager, "ix", table, columns, false).await
}

async fn create_index<T: Iden + Clone + 'static>(
    manager: &SchemaManager<'_>,
    prefix: &str,
    table: T,
    columns: &[&str],
    unique: bool,
) -> Result<(), DbErr> {
    let name = format!("{prefix}_{}_{}", table.to_string(), columns.join("_"));
    let mut index = Index::create().name(name).table(table).to_owned();
    for column in columns {
        index.col(Alias::new(*column));
    }
    if unique {
        index.unique();
    }
    manager.create_index(index).await
}
