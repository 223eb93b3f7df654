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

/// One side of a link table: its column and the table it references.
pub struct Link<C, T> {
    pub column: C,
    pub references: T,
}

/// A table linking two others (a user's roles, a technician's stations): both
/// ids as a composite primary key, each a foreign key that cascades, a
/// timestamp of when the link was made, and an index on the second id so both
/// directions are looked up by index.
pub async fn link_table<T, C1, R1, C2, R2, A>(
    manager: &SchemaManager<'_>,
    table: T,
    first: Link<C1, R1>,
    second: Link<C2, R2>,
    at: A,
) -> Result<(), DbErr>
where
    T: Iden + Clone + 'static,
    C1: Iden + Clone + 'static,
    R1: Iden + 'static,
    C2: Iden + Clone + 'static,
    R2: Iden + 'static,
    A: Iden + 'static,
{
    let second_name = second.column.to_string();
    manager
        .create_table(
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
                    table.clone(),
                    second.column,
                    second.references,
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
    index(manager, table, &[second_name.as_str()]).await
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
