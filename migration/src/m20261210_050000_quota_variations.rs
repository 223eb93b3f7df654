//! Quotas per variation (pretix `Quota.variations`): a quota linked to a
//! product with variations may name some of them, and then counts only those.
//! The variation's product is stored beside it so that the links of a
//! product are read in one indexed query, as `quota_products` are.

use sea_orm_migration::prelude::*;

use crate::keys::{Link, drop_tables, foreign_key, index, link_table_statement, reference};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum QuotaVariations {
    Table,
    QuotaId,
    VariationId,
    ProductId,
    AddedAt,
}

#[derive(DeriveIden)]
enum Quotas {
    Table,
}

#[derive(DeriveIden)]
enum ProductVariations {
    Table,
}

#[derive(DeriveIden)]
enum Products {
    Table,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = link_table_statement(
            QuotaVariations::Table,
            Link {
                column: QuotaVariations::QuotaId,
                references: Quotas::Table,
            },
            Link {
                column: QuotaVariations::VariationId,
                references: ProductVariations::Table,
            },
            QuotaVariations::AddedAt,
        );
        table
            .col(reference(QuotaVariations::ProductId))
            .foreign_key(&mut foreign_key(
                QuotaVariations::Table,
                QuotaVariations::ProductId,
                Products::Table,
                ForeignKeyAction::Cascade,
            ));
        manager.create_table(table).await?;
        index(manager, QuotaVariations::Table, &["variation_id"]).await?;
        index(manager, QuotaVariations::Table, &["product_id"]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, vec![QuotaVariations::Table.into_iden()]).await
    }
}
