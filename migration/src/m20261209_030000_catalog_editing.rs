//! Editing the catalog: vouchers remember when they last changed
//! (django-program `Voucher.updated_at`), now that they can be changed after
//! creation.
//!
//! The column is nullable because SQLite cannot add a column whose default
//! is not a constant; existing vouchers take their creation time, and every
//! creation and change sets it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Vouchers {
    Table,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Vouchers::Table)
                    .add_column(ColumnDef::new(Vouchers::UpdatedAt).timestamp_with_time_zone())
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(Vouchers::Table)
                    .value(Vouchers::UpdatedAt, Expr::col(Vouchers::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Vouchers::Table)
                    .drop_column(Vouchers::UpdatedAt)
                    .to_owned(),
            )
            .await
    }
}
