//! Alerts remember how often they had been seen when they were last
//! notified (`notified_count`), so "seen again since the last notification"
//! compares two counts the server keeps instead of a device's clock
//! (`last_seen`) with the server's (`notified_at`): a device whose clock runs
//! behind would otherwise never be notified again.
//!
//! Alerts notified before this migration count as notified for every sighting
//! they had, so none is notified again only because the column is new.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Alerts {
    Table,
    NotifiedAt,
    NotificationCount,
    NotifiedCount,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alerts::Table)
                    .add_column(
                        ColumnDef::new(Alerts::NotifiedCount)
                            .integer()
                            .not_null()
                            .default(0)
                            .to_owned(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(Alerts::Table)
                    .value(Alerts::NotifiedCount, Expr::col(Alerts::NotificationCount))
                    .and_where(Expr::col(Alerts::NotifiedAt).is_not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alerts::Table)
                    .drop_column(Alerts::NotifiedCount)
                    .to_owned(),
            )
            .await
    }
}
