//! Questions and answers (seed 003 pretix `Question`, `QuestionAnswer`) and
//! add-on rules (pretix `ItemAddOn`, django-program `AddOn.requires_ticket_types`).
//!
//! A question belongs to an event, is asked for the products linked to it and
//! has an identifier unique within its event; an answer belongs to a cart
//! position or an order position, one per question and position. An add-on
//! is a product (kind `addon`); a rule on a base product names the category
//! its add-ons come from, with a minimum and a maximum. A position bought as
//! an add-on points at its parent (`addon_to`). A product gets a `slug`
//! (django-program's `AddOn.slug`), unique within its event when set.

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{Link, drop_tables, foreign_key, index, link_table, reference, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum Questions {
    Table,
    Id,
    EventId,
    Question,
    QuestionType,
    Required,
    AskDuringCheckin,
    Hidden,
    Identifier,
    DependencyQuestionId,
    DependencyValues,
    Options,
    Position,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum QuestionProducts {
    Table,
    QuestionId,
    ProductId,
    AddedAt,
}

#[derive(DeriveIden, Clone)]
enum QuestionAnswers {
    Table,
    Id,
    QuestionId,
    CartPositionId,
    OrderPositionId,
    Answer,
}

#[derive(DeriveIden, Clone)]
enum ProductAddonRules {
    Table,
    Id,
    BaseProductId,
    AddonCategoryId,
    MinCount,
    MaxCount,
    Position,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum Positions {
    AddonTo,
}

#[derive(DeriveIden, Clone)]
enum Products {
    Table,
    Slug,
}

#[derive(DeriveIden)]
enum Events {
    Table,
}

#[derive(DeriveIden)]
enum ProductCategories {
    Table,
}

#[derive(DeriveIden, Clone)]
enum CartPositions {
    Table,
}

#[derive(DeriveIden, Clone)]
enum OrderPositions {
    Table,
}

fn flag(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .boolean()
        .not_null()
        .default(false)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Questions::Table)
                    .col(id(Questions::Id))
                    .col(reference(Questions::EventId))
                    .col(ColumnDef::new(Questions::Question).text().not_null())
                    .col(
                        ColumnDef::new(Questions::QuestionType)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(flag(Questions::Required))
                    .col(flag(Questions::AskDuringCheckin))
                    .col(flag(Questions::Hidden))
                    .col(
                        ColumnDef::new(Questions::Identifier)
                            .string_len(190)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Questions::DependencyQuestionId).integer())
                    // JSON lists of strings.
                    .col(
                        ColumnDef::new(Questions::DependencyValues)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Questions::Options).text().not_null())
                    .col(
                        ColumnDef::new(Questions::Position)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(timestamp(Questions::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        Questions::Table,
                        Questions::EventId,
                        Events::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        Questions::Table,
                        Questions::DependencyQuestionId,
                        Questions::Table,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(manager, Questions::Table, &["event_id", "identifier"]).await?;
        index(manager, Questions::Table, &["dependency_question_id"]).await?;

        link_table(
            manager,
            QuestionProducts::Table,
            Link {
                column: QuestionProducts::QuestionId,
                references: Questions::Table,
            },
            Link {
                column: QuestionProducts::ProductId,
                references: Products::Table,
            },
            QuestionProducts::AddedAt,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(QuestionAnswers::Table)
                    .col(id(QuestionAnswers::Id))
                    .col(reference(QuestionAnswers::QuestionId))
                    .col(ColumnDef::new(QuestionAnswers::CartPositionId).integer())
                    .col(ColumnDef::new(QuestionAnswers::OrderPositionId).integer())
                    .col(ColumnDef::new(QuestionAnswers::Answer).text().not_null())
                    .foreign_key(&mut foreign_key(
                        QuestionAnswers::Table,
                        QuestionAnswers::QuestionId,
                        Questions::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    // A cart position's answers go with it (checkout copies
                    // them to the order position first).
                    .foreign_key(&mut foreign_key(
                        QuestionAnswers::Table,
                        QuestionAnswers::CartPositionId,
                        CartPositions::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        QuestionAnswers::Table,
                        QuestionAnswers::OrderPositionId,
                        OrderPositions::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(
            manager,
            QuestionAnswers::Table,
            &["cart_position_id", "question_id"],
        )
        .await?;
        unique_index(
            manager,
            QuestionAnswers::Table,
            &["order_position_id", "question_id"],
        )
        .await?;
        index(manager, QuestionAnswers::Table, &["question_id"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(ProductAddonRules::Table)
                    .col(id(ProductAddonRules::Id))
                    .col(reference(ProductAddonRules::BaseProductId))
                    .col(reference(ProductAddonRules::AddonCategoryId))
                    .col(
                        ColumnDef::new(ProductAddonRules::MinCount)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(ProductAddonRules::MaxCount)
                            .integer()
                            .not_null()
                            .default(1),
                    )
                    .col(
                        ColumnDef::new(ProductAddonRules::Position)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(timestamp(ProductAddonRules::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        ProductAddonRules::Table,
                        ProductAddonRules::BaseProductId,
                        Products::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        ProductAddonRules::Table,
                        ProductAddonRules::AddonCategoryId,
                        ProductCategories::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(
            manager,
            ProductAddonRules::Table,
            &["base_product_id", "addon_category_id"],
        )
        .await?;
        index(manager, ProductAddonRules::Table, &["addon_category_id"]).await?;

        // Plain columns: SQLite cannot add a foreign key to an existing table.
        for table in [
            CartPositions::Table.into_iden(),
            OrderPositions::Table.into_iden(),
        ] {
            let mut alter = Table::alter();
            alter
                .table(table)
                .add_column(ColumnDef::new(Positions::AddonTo).integer());
            manager.alter_table(alter).await?;
        }
        index(manager, CartPositions::Table, &["addon_to"]).await?;
        index(manager, OrderPositions::Table, &["addon_to"]).await?;
        let mut alter = Table::alter();
        alter
            .table(Products::Table)
            .add_column(ColumnDef::new(Products::Slug).string_len(50));
        manager.alter_table(alter).await?;
        // NULLs never clash, so products without a slug are not constrained.
        unique_index(manager, Products::Table, &["event_id", "slug"]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            manager,
            vec![
                ProductAddonRules::Table.into_iden(),
                QuestionAnswers::Table.into_iden(),
                QuestionProducts::Table.into_iden(),
                Questions::Table.into_iden(),
            ],
        )
        .await?;
        for (table, name) in [
            (
                CartPositions::Table.into_iden(),
                "ix_cart_positions_addon_to",
            ),
            (
                OrderPositions::Table.into_iden(),
                "ix_order_positions_addon_to",
            ),
        ] {
            manager
                .drop_index(Index::drop().name(name).table(table.clone()).to_owned())
                .await?;
            let mut alter = Table::alter();
            alter.table(table).drop_column(Positions::AddonTo);
            manager.alter_table(alter).await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("ux_products_event_id_slug")
                    .table(Products::Table)
                    .to_owned(),
            )
            .await?;
        let mut alter = Table::alter();
        alter.table(Products::Table).drop_column(Products::Slug);
        manager.alter_table(alter).await
    }
}
