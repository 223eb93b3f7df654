//! Bays, alerts and charging sessions count their changes (`revision`): every write of one that
//! is announced raises it in the same statement, under the row's lock, and
//! the announcement carries it. Announcements made after their commits may
//! reach the bus in another order than their writes; the bus keeps the newest
//! of a row's and drops an older one that arrives after it, so a subscriber
//! is never left on a row's earlier state.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Bays {
    Table,
}

#[derive(DeriveIden, Clone, Copy)]
enum Alerts {
    Table,
}

#[derive(DeriveIden, Clone, Copy)]
enum ChargingSessions {
    Table,
}

#[derive(DeriveIden)]
struct Revision;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Bays::Table.into_iden(),
            Alerts::Table.into_iden(),
            ChargingSessions::Table.into_iden(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(
                            ColumnDef::new(Revision)
                                .big_integer()
                                .not_null()
                                .default(0)
                                .to_owned(),
                        )
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ChargingSessions::Table.into_iden(),
            Alerts::Table.into_iden(),
            Bays::Table.into_iden(),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(Revision).to_owned())
                .await?;
        }
        Ok(())
    }
}
