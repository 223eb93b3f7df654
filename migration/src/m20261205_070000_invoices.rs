//! Invoices (seed 003 pretix `Invoice`, `InvoiceLine`) and what they are made
//! from: an order's invoice address and an event's invoice settings.
//!
//! An invoice copies everything it shows (addresses, texts, lines, dates),
//! because an issued invoice never changes; a correction is a cancellation
//! invoice that refers to it. `invoice_numbers` holds the last number given
//! per organizer and prefix: the number is taken by an `UPDATE` of that row
//! in the transaction that inserts the invoice, so numbers are sequential,
//! never reused and never given twice, also under concurrency.

use sea_orm_migration::prelude::*;

use crate::columns::{id, timestamp};
use crate::keys::{foreign_key, index, reference, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone)]
enum InvoiceAddresses {
    Table,
    OrderId,
    IsBusiness,
    Name,
    Company,
    Street,
    Zipcode,
    City,
    Country,
    VatId,
    UpdatedAt,
}

#[derive(DeriveIden, Clone)]
enum InvoiceSettings {
    Table,
    EventId,
    Prefix,
    AddressFrom,
    IntroductoryText,
    AdditionalText,
    FooterText,
    Locale,
    Generate,
    UpdatedAt,
}

#[derive(DeriveIden, Clone)]
enum InvoiceNumbers {
    Table,
    OrganizerId,
    Prefix,
    LastNumber,
}

#[derive(DeriveIden, Clone)]
enum Invoices {
    Table,
    Id,
    OrganizerId,
    EventId,
    OrderId,
    Prefix,
    InvoiceNo,
    FullInvoiceNo,
    IsCancellation,
    RefersId,
    InvoiceFrom,
    InvoiceTo,
    Date,
    Locale,
    Currency,
    IntroductoryText,
    AdditionalText,
    PaymentProviderText,
    PaymentProviderStamp,
    FooterText,
    ForeignCurrencyDisplay,
    ForeignCurrencyRate,
    ForeignCurrencyRateDate,
    ForeignCurrencyRateSource,
    CreatedAt,
}

#[derive(DeriveIden, Clone)]
enum InvoiceLines {
    Table,
    Id,
    InvoiceId,
    Position,
    Description,
    GrossValueMinor,
    TaxValueMinor,
    TaxRateBp,
    TaxName,
    SubEventId,
    EventDateFrom,
    EventDateTo,
    EventLocation,
    ProductId,
    VariationId,
    AttendeeName,
}

#[derive(DeriveIden, Clone)]
enum Orders {
    Table,
}

#[derive(DeriveIden, Clone)]
enum Events {
    Table,
}

#[derive(DeriveIden, Clone)]
enum Organizers {
    Table,
}

fn text(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).text().not_null().default("").to_owned()
}

fn short(col: impl IntoIden, len: u32) -> ColumnDef {
    ColumnDef::new(col)
        .string_len(len)
        .not_null()
        .default("")
        .to_owned()
}

fn optional(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).integer().null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(InvoiceAddresses::Table)
                    .col(
                        ColumnDef::new(InvoiceAddresses::OrderId)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(InvoiceAddresses::IsBusiness)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(short(InvoiceAddresses::Name, 255))
                    .col(short(InvoiceAddresses::Company, 255))
                    .col(text(InvoiceAddresses::Street))
                    .col(short(InvoiceAddresses::Zipcode, 30))
                    .col(short(InvoiceAddresses::City, 255))
                    .col(short(InvoiceAddresses::Country, 2))
                    .col(short(InvoiceAddresses::VatId, 64))
                    .col(timestamp(InvoiceAddresses::UpdatedAt))
                    .foreign_key(&mut foreign_key(
                        InvoiceAddresses::Table,
                        InvoiceAddresses::OrderId,
                        Orders::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(InvoiceSettings::Table)
                    .col(
                        ColumnDef::new(InvoiceSettings::EventId)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(short(InvoiceSettings::Prefix, 40))
                    .col(text(InvoiceSettings::AddressFrom))
                    .col(text(InvoiceSettings::IntroductoryText))
                    .col(text(InvoiceSettings::AdditionalText))
                    .col(text(InvoiceSettings::FooterText))
                    .col(short(InvoiceSettings::Locale, 16))
                    .col(short(InvoiceSettings::Generate, 16))
                    .col(timestamp(InvoiceSettings::UpdatedAt))
                    .foreign_key(&mut foreign_key(
                        InvoiceSettings::Table,
                        InvoiceSettings::EventId,
                        Events::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(InvoiceNumbers::Table)
                    .col(reference(InvoiceNumbers::OrganizerId))
                    .col(short(InvoiceNumbers::Prefix, 40))
                    .col(
                        ColumnDef::new(InvoiceNumbers::LastNumber)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .primary_key(
                        Index::create()
                            .col(InvoiceNumbers::OrganizerId)
                            .col(InvoiceNumbers::Prefix),
                    )
                    .foreign_key(&mut foreign_key(
                        InvoiceNumbers::Table,
                        InvoiceNumbers::OrganizerId,
                        Organizers::Table,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Invoices::Table)
                    .col(id(Invoices::Id))
                    .col(reference(Invoices::OrganizerId))
                    .col(reference(Invoices::EventId))
                    .col(reference(Invoices::OrderId))
                    .col(short(Invoices::Prefix, 40))
                    .col(reference(Invoices::InvoiceNo))
                    .col(short(Invoices::FullInvoiceNo, 60))
                    .col(
                        ColumnDef::new(Invoices::IsCancellation)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(optional(Invoices::RefersId))
                    .col(text(Invoices::InvoiceFrom))
                    .col(text(Invoices::InvoiceTo))
                    .col(ColumnDef::new(Invoices::Date).date().not_null())
                    .col(short(Invoices::Locale, 16))
                    .col(short(Invoices::Currency, 3))
                    .col(text(Invoices::IntroductoryText))
                    .col(text(Invoices::AdditionalText))
                    .col(text(Invoices::PaymentProviderText))
                    .col(short(Invoices::PaymentProviderStamp, 100))
                    .col(text(Invoices::FooterText))
                    .col(
                        ColumnDef::new(Invoices::ForeignCurrencyDisplay)
                            .string_len(3)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Invoices::ForeignCurrencyRate)
                            .string_len(32)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Invoices::ForeignCurrencyRateDate)
                            .date()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Invoices::ForeignCurrencyRateSource)
                            .string_len(100)
                            .null(),
                    )
                    .col(timestamp(Invoices::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        Invoices::Table,
                        Invoices::OrganizerId,
                        Organizers::Table,
                        ForeignKeyAction::Restrict,
                    ))
                    .foreign_key(&mut foreign_key(
                        Invoices::Table,
                        Invoices::EventId,
                        Events::Table,
                        ForeignKeyAction::Restrict,
                    ))
                    .foreign_key(&mut foreign_key(
                        Invoices::Table,
                        Invoices::OrderId,
                        Orders::Table,
                        ForeignKeyAction::Restrict,
                    ))
                    .foreign_key(&mut foreign_key(
                        Invoices::Table,
                        Invoices::RefersId,
                        Invoices::Table,
                        ForeignKeyAction::Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(
            manager,
            Invoices::Table,
            &["organizer_id", "prefix", "invoice_no"],
        )
        .await?;
        unique_index(
            manager,
            Invoices::Table,
            &["organizer_id", "full_invoice_no"],
        )
        .await?;
        // At most one cancellation per invoice.
        unique_index(manager, Invoices::Table, &["refers_id"]).await?;
        index(manager, Invoices::Table, &["order_id"]).await?;
        index(manager, Invoices::Table, &["event_id", "created_at"]).await?;

        manager
            .create_table(
                Table::create()
                    .table(InvoiceLines::Table)
                    .col(id(InvoiceLines::Id))
                    .col(reference(InvoiceLines::InvoiceId))
                    .col(reference(InvoiceLines::Position))
                    .col(text(InvoiceLines::Description))
                    .col(
                        ColumnDef::new(InvoiceLines::GrossValueMinor)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(InvoiceLines::TaxValueMinor)
                            .big_integer()
                            .not_null(),
                    )
                    .col(reference(InvoiceLines::TaxRateBp))
                    .col(short(InvoiceLines::TaxName, 100))
                    .col(optional(InvoiceLines::SubEventId))
                    .col(
                        ColumnDef::new(InvoiceLines::EventDateFrom)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(InvoiceLines::EventDateTo)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new(InvoiceLines::EventLocation).text().null())
                    .col(optional(InvoiceLines::ProductId))
                    .col(optional(InvoiceLines::VariationId))
                    .col(ColumnDef::new(InvoiceLines::AttendeeName).text().null())
                    .foreign_key(&mut foreign_key(
                        InvoiceLines::Table,
                        InvoiceLines::InvoiceId,
                        Invoices::Table,
                        ForeignKeyAction::Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(manager, InvoiceLines::Table, &["invoice_id", "position"]).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::keys::drop_tables(
            manager,
            vec![
                InvoiceLines::Table.into_iden(),
                Invoices::Table.into_iden(),
                InvoiceNumbers::Table.into_iden(),
                InvoiceSettings::Table.into_iden(),
                InvoiceAddresses::Table.into_iden(),
            ],
        )
        .await
    }
}
