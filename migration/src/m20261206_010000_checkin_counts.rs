//! Check-in figures kept as counters instead of summed on every scan.
//!
//! `checkin_counts` holds, per list and product, how many tickets entered and
//! how many are inside, in a few stripes: each replica adds its scans to its
//! own stripe, so the scans of several replicas do not queue on one row; the
//! figures are the sum of a list's stripes. The rows are filled from the
//! states already stored.
//!
//! `checkin_states.previously_inside` is set by every change of a state to
//! the `inside` it replaced (an `UPDATE`'s right-hand sides read the old
//! row), so the statement that admits an entry also tells, by its
//! `RETURNING`, whether the counters change.

use sea_orm_migration::prelude::*;

use crate::keys::{foreign_key, reference};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum CheckinCounts {
    Table,
    ListId,
    ProductId,
    Stripe,
    CheckedIn,
    Inside,
}

#[derive(DeriveIden, Clone)]
enum CheckinStates {
    Table,
    PreviouslyInside,
}

#[derive(DeriveIden, Clone)]
enum CheckinLists {
    Table,
}

#[derive(DeriveIden, Clone)]
enum Products {
    Table,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(CheckinStates::Table)
                    .add_column(
                        ColumnDef::new(CheckinStates::PreviouslyInside)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CheckinCounts::Table)
                    .col(reference(CheckinCounts::ListId))
                    .col(reference(CheckinCounts::ProductId))
                    .col(ColumnDef::new(CheckinCounts::Stripe).integer().not_null())
                    .col(
                        ColumnDef::new(CheckinCounts::CheckedIn)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CheckinCounts::Inside)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(CheckinCounts::ListId)
                            .col(CheckinCounts::ProductId)
                            .col(CheckinCounts::Stripe),
                    )
                    .foreign_key(&mut foreign_key(
                        CheckinCounts::Table,
                        CheckinCounts::ListId,
                        CheckinLists::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        CheckinCounts::Table,
                        CheckinCounts::ProductId,
                        Products::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO checkin_counts (list_id, product_id, stripe, checked_in, inside) \
                 SELECT list_id, product_id, 0, \
                   SUM(CASE WHEN entries > 0 THEN 1 ELSE 0 END), \
                   SUM(CASE WHEN inside THEN 1 ELSE 0 END) \
                 FROM checkin_states GROUP BY list_id, product_id",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CheckinCounts::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(CheckinStates::Table)
                    .drop_column(CheckinStates::PreviouslyInside)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
