//! Payment providers (seed 001 django-program `StripeCustomer`, `StripeEvent`,
//! `EventProcessingException`; pretix `OrderPayment.provider`): what a
//! provider calls a payment, its customers, and the webhook events it sends.
//!
//! `payment_webhook_events` is unique by provider and the provider's event id,
//! so a redelivered event is recorded once; `processed` flips in the
//! transaction that applies the event, so it is applied once.

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{drop_tables, foreign_key, index, reference, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum OrderPayments {
    Table,
    ProviderPaymentId,
    ProviderChargeId,
    ProviderState,
    ProcessInitiated,
}

#[derive(DeriveIden, Clone)]
enum PaymentProviderCustomers {
    Table,
    Id,
    UserId,
    Provider,
    CustomerId,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum PaymentWebhookEvents {
    Table,
    Id,
    Provider,
    ProviderEventId,
    Kind,
    Livemode,
    ApiVersion,
    CustomerId,
    Payload,
    Processed,
    ProcessedAt,
    Attempts,
    LastError,
    NextAttemptAt,
    OrderPaymentId,
    EventId,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum PaymentWebhookFailures {
    Table,
    Id,
    WebhookEventId,
    Message,
    Data,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
}

#[derive(DeriveIden)]
enum Events {
    Table,
}

/// A required string of at most `len` characters.
fn text(col: impl IntoIden, len: u32) -> ColumnDef {
    ColumnDef::new(col).string_len(len).not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        for column in [
            ColumnDef::new(OrderPayments::ProviderPaymentId)
                .string_len(200)
                .to_owned(),
            ColumnDef::new(OrderPayments::ProviderChargeId)
                .string_len(200)
                .to_owned(),
            ColumnDef::new(OrderPayments::ProviderState)
                .string_len(64)
                .to_owned(),
            ColumnDef::new(OrderPayments::ProcessInitiated)
                .boolean()
                .not_null()
                .default(false)
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(OrderPayments::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        // A provider's payment id names one payment (webhooks find it by it).
        unique_index(
            manager,
            OrderPayments::Table,
            &["provider", "provider_payment_id"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(PaymentProviderCustomers::Table)
                    .col(id(PaymentProviderCustomers::Id))
                    .col(reference(PaymentProviderCustomers::UserId))
                    .col(text(PaymentProviderCustomers::Provider, 32))
                    .col(text(PaymentProviderCustomers::CustomerId, 200))
                    .col(timestamp(PaymentProviderCustomers::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        PaymentProviderCustomers::Table,
                        PaymentProviderCustomers::UserId,
                        Users::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(
            manager,
            PaymentProviderCustomers::Table,
            &["user_id", "provider"],
        )
        .await?;
        unique_index(
            manager,
            PaymentProviderCustomers::Table,
            &["provider", "customer_id"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(PaymentWebhookEvents::Table)
                    .col(id(PaymentWebhookEvents::Id))
                    .col(text(PaymentWebhookEvents::Provider, 32))
                    .col(text(PaymentWebhookEvents::ProviderEventId, 200))
                    .col(text(PaymentWebhookEvents::Kind, 100))
                    .col(
                        ColumnDef::new(PaymentWebhookEvents::Livemode)
                            .boolean()
                            .not_null(),
                    )
                    .col(ColumnDef::new(PaymentWebhookEvents::ApiVersion).string_len(64))
                    .col(ColumnDef::new(PaymentWebhookEvents::CustomerId).string_len(200))
                    .col(
                        ColumnDef::new(PaymentWebhookEvents::Payload)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PaymentWebhookEvents::Processed)
                            .boolean()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PaymentWebhookEvents::ProcessedAt)
                            .timestamp_with_time_zone(),
                    )
                    .col(reference(PaymentWebhookEvents::Attempts))
                    .col(ColumnDef::new(PaymentWebhookEvents::LastError).text())
                    .col(timestamp(PaymentWebhookEvents::NextAttemptAt))
                    .col(ColumnDef::new(PaymentWebhookEvents::OrderPaymentId).integer())
                    .col(ColumnDef::new(PaymentWebhookEvents::EventId).integer())
                    .col(timestamp(PaymentWebhookEvents::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        PaymentWebhookEvents::Table,
                        PaymentWebhookEvents::EventId,
                        Events::Table,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(
            manager,
            PaymentWebhookEvents::Table,
            &["provider", "provider_event_id"],
        )
        .await?;
        index(
            manager,
            PaymentWebhookEvents::Table,
            &["processed", "next_attempt_at"],
        )
        .await?;
        index(manager, PaymentWebhookEvents::Table, &["event_id"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(PaymentWebhookFailures::Table)
                    .col(id(PaymentWebhookFailures::Id))
                    .col(reference(PaymentWebhookFailures::WebhookEventId))
                    .col(
                        ColumnDef::new(PaymentWebhookFailures::Message)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PaymentWebhookFailures::Data)
                            .text()
                            .not_null(),
                    )
                    .col(timestamp(PaymentWebhookFailures::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        PaymentWebhookFailures::Table,
                        PaymentWebhookFailures::WebhookEventId,
                        PaymentWebhookEvents::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            PaymentWebhookFailures::Table,
            &["webhook_event_id"],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            manager,
            vec![
                PaymentWebhookFailures::Table.into_iden(),
                PaymentWebhookEvents::Table.into_iden(),
                PaymentProviderCustomers::Table.into_iden(),
            ],
        )
        .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("ux_order_payments_provider_provider_payment_id")
                    .table(OrderPayments::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            OrderPayments::ProcessInitiated,
            OrderPayments::ProviderState,
            OrderPayments::ProviderChargeId,
            OrderPayments::ProviderPaymentId,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(OrderPayments::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
