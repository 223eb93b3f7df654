//! Invoices: the team issues, cancels and reissues them (`CHANGE_ORDERS`)
//! and sets the event's invoice settings (`CHANGE_EVENTS`); whoever sees an
//! order sees its invoices; buyers set their invoice address with their
//! order's code and secret.

use async_graphql::{Context, Enum, ID, InputObject, Object, OneofObject, Result, SimpleObject};

use super::types::{Money, Order};
use crate::auth::guards::principal;
use crate::entities::{
    self, exchange_rate, invoice, invoice_address, invoice_line, invoice_settings,
};
use crate::graphql::ids::{self, Kind};
use crate::graphql::scalars::DateTime;
use crate::services::services;
use crate::ticketing::invoice_html;
use crate::ticketing::invoices::{self, AddressAuthor, AddressInput, SettingsInput};

impl Kind {
    pub const INVOICE: Self = Self::named("Invoice");
}

/// When an order gets its invoice without anyone asking.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "entities::invoice_settings::InvoiceGeneration")]
pub enum InvoiceGeneration {
    /// Only when the team issues one.
    Admin,
    /// When the order is paid (orders with nothing to pay excepted).
    Paid,
}

/// An invoice or a cancellation invoice; never changes once issued.
pub struct Invoice(pub invoice::Model);

#[Object]
impl Invoice {
    async fn id(&self) -> ID {
        ids::encode(Kind::INVOICE, self.0.id)
    }
    async fn order_id(&self) -> ID {
        ids::encode(Kind::ORDER, self.0.order_id)
    }
    async fn event_id(&self) -> ID {
        ids::encode(Kind::EVENT, self.0.event_id)
    }
    async fn prefix(&self) -> &str {
        &self.0.prefix
    }
    /// 1, 2, … within the organizer and prefix, without gaps.
    async fn invoice_no(&self) -> i32 {
        self.0.invoice_no
    }
    /// The prefix and the number, as printed (`CONF-00042`).
    async fn number(&self) -> &str {
        &self.0.full_invoice_no
    }
    async fn is_cancellation(&self) -> bool {
        self.0.is_cancellation
    }
    /// The invoice a cancellation cancels.
    async fn refers(&self, ctx: &Context<'_>) -> Result<Option<Invoice>> {
        // Both belong to one order, which the caller sees already.
        let Some(id) = self.0.refers_id else {
            return Ok(None);
        };
        let all = invoices::of_order(&services(ctx)?.db, self.0.order_id).await?;
        Ok(all.into_iter().find(|i| i.id == id).map(Invoice))
    }
    /// Whether a cancellation invoice cancels this one.
    async fn is_canceled(&self, ctx: &Context<'_>) -> Result<bool> {
        let all = invoices::of_order(&services(ctx)?.db, self.0.order_id).await?;
        Ok(all.iter().any(|i| i.refers_id == Some(self.0.id)))
    }
    async fn invoice_from(&self) -> &str {
        &self.0.invoice_from
    }
    async fn invoice_to(&self) -> &str {
        &self.0.invoice_to
    }
    /// The invoice date (`YYYY-MM-DD`).
    async fn date(&self) -> String {
        self.0.date.format("%Y-%m-%d").to_string()
    }
    async fn locale(&self) -> &str {
        &self.0.locale
    }
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    async fn introductory_text(&self) -> &str {
        &self.0.introductory_text
    }
    async fn additional_text(&self) -> &str {
        &self.0.additional_text
    }
    async fn payment_provider_text(&self) -> &str {
        &self.0.payment_provider_text
    }
    /// `paid` when the order was paid as the invoice was issued.
    async fn payment_provider_stamp(&self) -> &str {
        &self.0.payment_provider_stamp
    }
    async fn footer_text(&self) -> &str {
        &self.0.footer_text
    }
    async fn foreign_currency_display(&self) -> Option<&str> {
        self.0.foreign_currency_display.as_deref()
    }
    /// An exact decimal.
    async fn foreign_currency_rate(&self) -> Option<&str> {
        self.0.foreign_currency_rate.as_deref()
    }
    async fn foreign_currency_rate_date(&self) -> Option<String> {
        self.0
            .foreign_currency_rate_date
            .map(|d| d.format("%Y-%m-%d").to_string())
    }
    async fn foreign_currency_rate_source(&self) -> Option<&str> {
        self.0.foreign_currency_rate_source.as_deref()
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    async fn lines(&self, ctx: &Context<'_>) -> Result<Vec<InvoiceLine>> {
        let rows = invoices::lines_of(&services(ctx)?.db, self.0.id).await?;
        Ok(rows
            .into_iter()
            .map(|row| InvoiceLine(row, self.0.currency.clone()))
            .collect())
    }
    /// The sum of its lines (negative for a cancellation).
    async fn total(&self, ctx: &Context<'_>) -> Result<Money> {
        let rows = invoices::lines_of(&services(ctx)?.db, self.0.id).await?;
        let total = rows.iter().map(|l| l.gross_value_minor).sum();
        Ok(Money::new(total, &self.0.currency))
    }
    /// The invoice as a self-contained HTML document.
    async fn html(&self, ctx: &Context<'_>) -> Result<String> {
        let db = &services(ctx)?.db;
        let rows = invoices::lines_of(db, self.0.id).await?;
        let refers = match self.0.refers_id {
            Some(id) => invoices::of_order(db, self.0.order_id)
                .await?
                .into_iter()
                .find(|i| i.id == id)
                .map(|i| i.full_invoice_no),
            None => None,
        };
        Ok(invoice_html::render(&self.0, &rows, refers.as_deref()))
    }
}

/// A line of an invoice.
pub struct InvoiceLine(pub invoice_line::Model, pub String);

#[Object]
impl InvoiceLine {
    async fn position(&self) -> i32 {
        self.0.position
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    async fn gross_value(&self) -> Money {
        Money::new(self.0.gross_value_minor, &self.1)
    }
    /// The tax included in the gross value.
    async fn tax_value(&self) -> Money {
        Money::new(self.0.tax_value_minor, &self.1)
    }
    /// In percent, as a decimal string (`"19.00"`).
    async fn tax_rate(&self) -> String {
        crate::ticketing::money::format_minor(i64::from(self.0.tax_rate_bp))
    }
    async fn tax_name(&self) -> &str {
        &self.0.tax_name
    }
    async fn sub_event_id(&self) -> Option<ID> {
        self.0
            .sub_event_id
            .map(|id| ids::encode(Kind::SUB_EVENT, id))
    }
    async fn event_date_from(&self) -> Option<DateTime> {
        self.0.event_date_from.map(Into::into)
    }
    async fn event_date_to(&self) -> Option<DateTime> {
        self.0.event_date_to.map(Into::into)
    }
    async fn event_location(&self) -> Option<&str> {
        self.0.event_location.as_deref()
    }
    async fn product_id(&self) -> Option<ID> {
        self.0.product_id.map(|id| ids::encode(Kind::PRODUCT, id))
    }
    async fn variation_id(&self) -> Option<ID> {
        self.0
            .variation_id
            .map(|id| ids::encode(Kind::PRODUCT_VARIATION, id))
    }
    async fn attendee_name(&self) -> Option<&str> {
        self.0.attendee_name.as_deref()
    }
}

/// An order's invoice address.
#[derive(SimpleObject)]
pub struct InvoiceAddress {
    pub is_business: bool,
    pub name: String,
    pub company: String,
    pub street: String,
    pub zipcode: String,
    pub city: String,
    /// ISO 3166-1 alpha-2, or empty.
    pub country: String,
    pub vat_id: String,
}

impl From<invoice_address::Model> for InvoiceAddress {
    fn from(row: invoice_address::Model) -> Self {
        Self {
            is_business: row.is_business,
            name: row.name,
            company: row.company,
            street: row.street,
            zipcode: row.zipcode,
            city: row.city,
            country: row.country,
            vat_id: row.vat_id,
        }
    }
}

/// An event's invoice settings.
#[derive(SimpleObject)]
pub struct InvoiceSettings {
    /// Empty: the event's slug in capitals and a dash.
    pub prefix: String,
    /// The sender; empty: the organizer's name.
    pub address_from: String,
    pub introductory_text: String,
    pub additional_text: String,
    pub footer_text: String,
    pub locale: String,
    pub generate: InvoiceGeneration,
    /// The renderer invoices are rendered with (pretix's
    /// `Event.invoice_renderer`).
    pub renderer: String,
    /// A currency invoices also show their taxes in, at the organizer's
    /// latest exchange rate on or before the invoice's date (without one,
    /// only the event's currency); null: none.
    pub foreign_currency_display: Option<String>,
}

impl From<invoice_settings::Model> for InvoiceSettings {
    fn from(row: invoice_settings::Model) -> Self {
        Self {
            prefix: row.prefix,
            address_from: row.address_from,
            introductory_text: row.introductory_text,
            additional_text: row.additional_text,
            footer_text: row.footer_text,
            locale: row.locale,
            generate: row.generate.into(),
            renderer: invoice_html::RENDERER.to_owned(),
            foreign_currency_display: row.foreign_currency_display,
        }
    }
}

#[derive(InputObject)]
pub struct InvoiceAddressInput {
    #[graphql(default)]
    pub is_business: bool,
    #[graphql(default)]
    pub name: String,
    #[graphql(default)]
    pub company: String,
    #[graphql(default)]
    pub street: String,
    #[graphql(default)]
    pub zipcode: String,
    #[graphql(default)]
    pub city: String,
    #[graphql(default)]
    pub country: String,
    #[graphql(default)]
    pub vat_id: String,
}

/// A buyer's way to an order: its event, code and secret.
#[derive(InputObject)]
pub struct OrderCodeInput {
    pub event_id: ID,
    pub code: String,
    pub secret: String,
}

/// Which order: by id (the team, or the order's own account) or by code and
/// secret (a buyer).
#[derive(OneofObject)]
pub enum OrderReference {
    Id(ID),
    Code(OrderCodeInput),
}

#[derive(InputObject)]
pub struct UpdateInvoiceSettingsInput {
    pub event_id: ID,
    #[graphql(default)]
    pub prefix: String,
    #[graphql(default)]
    pub address_from: String,
    #[graphql(default)]
    pub introductory_text: String,
    #[graphql(default)]
    pub additional_text: String,
    #[graphql(default)]
    pub footer_text: String,
    #[graphql(default_with = "String::from(\"en\")")]
    pub locale: String,
    #[graphql(default_with = "InvoiceGeneration::Admin")]
    pub generate: InvoiceGeneration,
    /// An ISO 4217 code to also show the taxes in; null: none.
    pub foreign_currency_display: Option<String>,
}

/// What reissuing made.
#[derive(SimpleObject)]
pub struct ReissueInvoicePayload {
    /// The cancellation of the invoice that was valid, if there was one.
    pub cancellation: Option<Invoice>,
    pub invoice: Invoice,
}

#[derive(Default)]
pub struct InvoiceQuery;

#[Object]
impl InvoiceQuery {
    /// An invoice, for the team (`VIEW_ORDERS`) or the order's account.
    async fn invoice(&self, ctx: &Context<'_>, id: ID) -> Result<Invoice> {
        let id = ids::decode(&id, Kind::INVOICE, "id")?;
        Ok(Invoice(
            invoices::by_id(&services(ctx)?.db, principal(ctx), id).await?,
        ))
    }

    /// Team permission `VIEW_ORDERS`: an event's invoices, newest first
    /// (`first` at most 100), before the invoice `before`.
    async fn invoices(
        &self,
        ctx: &Context<'_>,
        event_id: ID,
        first: Option<i32>,
        before: Option<ID>,
    ) -> Result<Vec<Invoice>> {
        let event_id = ids::decode(&event_id, Kind::EVENT, "eventId")?;
        let before = before
            .map(|id| ids::decode(&id, Kind::INVOICE, "before"))
            .transpose()?;
        let first = first.unwrap_or(50);
        if !(1..=100).contains(&first) {
            return Err(crate::error::AppError::bad_input("first", "between 1 and 100").into());
        }
        let rows = invoices::of_event(
            &services(ctx)?.db,
            principal(ctx),
            event_id,
            u64::try_from(first).unwrap_or(50),
            before,
        )
        .await?;
        Ok(rows.into_iter().map(Invoice).collect())
    }

    /// Team permission `CHANGE_EVENTS`: an event's invoice settings.
    async fn invoice_settings(&self, ctx: &Context<'_>, event_id: ID) -> Result<InvoiceSettings> {
        let services = services(ctx)?;
        let event_id = ids::decode(&event_id, Kind::EVENT, "eventId")?;
        let (event, _) = crate::ticketing::access::on_event(
            &services.db,
            principal(ctx),
            crate::auth::TeamPermission::ChangeEvents,
            event_id,
        )
        .await?;
        Ok(invoices::settings_of(&services.db, &event).await?.into())
    }
}

/// An exchange rate: one unit of `fromCurrency` is `rate` units of
/// `toCurrency` on `date`.
pub struct ExchangeRate(pub exchange_rate::Model);

#[Object]
impl ExchangeRate {
    async fn from_currency(&self) -> &str {
        &self.0.from_currency
    }
    async fn to_currency(&self) -> &str {
        &self.0.to_currency
    }
    /// `YYYY-MM-DD`.
    async fn date(&self) -> String {
        self.0.date.format("%Y-%m-%d").to_string()
    }
    /// An exact decimal.
    async fn rate(&self) -> &str {
        &self.0.rate
    }
    /// `manual`: entered by a team or staff.
    async fn source(&self) -> &str {
        &self.0.source
    }
}

#[derive(InputObject)]
pub struct SetExchangeRateInput {
    pub organizer_id: ID,
    /// ISO 4217, e.g. `EUR`: the events' currency.
    pub from_currency: String,
    /// ISO 4217, e.g. `CHF`: the currency invoices also show.
    pub to_currency: String,
    /// `YYYY-MM-DD`: the day the rate is for.
    pub date: String,
    /// One `fromCurrency` in `toCurrency`: a positive decimal with at most
    /// 10 decimals, e.g. `"0.9412"`.
    pub rate: String,
}

#[derive(SimpleObject)]
pub struct SetExchangeRatePayload {
    pub exchange_rate: ExchangeRate,
}

#[derive(Default)]
pub struct InvoiceMutation;

#[Object]
impl InvoiceMutation {
    /// Team permission `CHANGE_ORGANIZER_SETTINGS`: sets the organizer's
    /// exchange rate of a currency pair on a date (source `manual`),
    /// replacing the one set for that date before.
    async fn set_exchange_rate(
        &self,
        ctx: &Context<'_>,
        input: SetExchangeRateInput,
    ) -> Result<SetExchangeRatePayload> {
        let services = services(ctx)?;
        let organizer_id = ids::decode(&input.organizer_id, Kind::ORGANIZER, "organizerId")?;
        let date = chrono::NaiveDate::parse_from_str(input.date.trim(), "%Y-%m-%d")
            .map_err(|_| crate::error::AppError::bad_input("date", "a date like 2027-06-01"))?;
        let row = crate::ticketing::exchange_rates::set_rate(
            &services.db,
            principal(ctx),
            services.now(),
            organizer_id,
            crate::ticketing::exchange_rates::RateInput {
                from_currency: input.from_currency,
                to_currency: input.to_currency,
                date,
                rate: input.rate,
            },
        )
        .await?;
        Ok(SetExchangeRatePayload {
            exchange_rate: ExchangeRate(row),
        })
    }

    /// Team permission `CHANGE_EVENTS`: sets an event's invoice settings;
    /// invoices issued before keep what they copied.
    async fn update_invoice_settings(
        &self,
        ctx: &Context<'_>,
        input: UpdateInvoiceSettingsInput,
    ) -> Result<InvoiceSettings> {
        let services = services(ctx)?;
        let event_id = ids::decode(&input.event_id, Kind::EVENT, "eventId")?;
        let stored = invoices::update_settings(
            &services.db,
            principal(ctx),
            services.now(),
            event_id,
            SettingsInput {
                prefix: input.prefix,
                address_from: input.address_from,
                introductory_text: input.introductory_text,
                additional_text: input.additional_text,
                footer_text: input.footer_text,
                locale: input.locale,
                generate: input.generate.into(),
                foreign_currency_display: input.foreign_currency_display,
            },
        )
        .await?;
        Ok(stored.into())
    }

    /// Sets an order's invoice address: by order id for the team
    /// (`CHANGE_ORDERS`) or the order's account, by code and secret for a
    /// buyer. Issued invoices keep their address until reissued.
    async fn set_invoice_address(
        &self,
        ctx: &Context<'_>,
        order: OrderReference,
        address: InvoiceAddressInput,
    ) -> Result<InvoiceAddress> {
        let services = services(ctx)?;
        let input = AddressInput {
            is_business: address.is_business,
            name: address.name,
            company: address.company,
            street: address.street,
            zipcode: address.zipcode,
            city: address.city,
            country: address.country,
            vat_id: address.vat_id,
        };
        let author = match &order {
            OrderReference::Id(id) => AddressAuthor::Principal {
                principal: principal(ctx),
                order_id: ids::decode(id, Kind::ORDER, "order.id")?,
            },
            OrderReference::Code(by_code) => AddressAuthor::Buyer {
                event_id: ids::decode(&by_code.event_id, Kind::EVENT, "order.code.eventId")?,
                code: &by_code.code,
                secret: &by_code.secret,
            },
        };
        let stored = invoices::set_address(&services.db, author, services.now(), input).await?;
        Ok(stored.into())
    }

    /// Team permission `CHANGE_ORDERS`: issues an order's invoice; `CONFLICT`
    /// when it has a valid one already.
    async fn issue_invoice(&self, ctx: &Context<'_>, order_id: ID) -> Result<Invoice> {
        let services = services(ctx)?;
        let order_id = ids::decode(&order_id, Kind::ORDER, "orderId")?;
        let issued =
            invoices::issue(&services.db, principal(ctx), services.now(), order_id).await?;
        Ok(Invoice(issued))
    }

    /// Team permission `CHANGE_ORDERS`: cancels an invoice with a
    /// cancellation invoice that refers to it, and returns the cancellation.
    async fn cancel_invoice(&self, ctx: &Context<'_>, invoice_id: ID) -> Result<Invoice> {
        let services = services(ctx)?;
        let invoice_id = ids::decode(&invoice_id, Kind::INVOICE, "invoiceId")?;
        let issued =
            invoices::cancel(&services.db, principal(ctx), services.now(), invoice_id).await?;
        Ok(Invoice(issued))
    }

    /// Team permission `CHANGE_ORDERS`: cancels the order's valid invoice (if
    /// any) and issues a new one from the order as it is now, in one step.
    async fn reissue_invoice(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
    ) -> Result<ReissueInvoicePayload> {
        let services = services(ctx)?;
        let order_id = ids::decode(&order_id, Kind::ORDER, "orderId")?;
        let (cancellation, issued) =
            invoices::reissue(&services.db, principal(ctx), services.now(), order_id).await?;
        Ok(ReissueInvoicePayload {
            cancellation: cancellation.map(Invoice),
            invoice: Invoice(issued),
        })
    }
}

/// The invoice part of `Order`.
pub(super) async fn of_order(ctx: &Context<'_>, order: &Order) -> Result<Vec<Invoice>> {
    let rows = invoices::of_order(&services(ctx)?.db, order.0.id).await?;
    Ok(rows.into_iter().map(Invoice).collect())
}

/// The invoice address of `Order`.
pub(super) async fn address_of(ctx: &Context<'_>, order: &Order) -> Result<Option<InvoiceAddress>> {
    use sea_orm::EntityTrait as _;
    let row = invoice_address::Entity::find_by_id(order.0.id)
        .one(&services(ctx)?.db)
        .await
        .map_err(crate::error::AppError::from)?;
    Ok(row.map(Into::into))
}
