//! Invoices (pretix `Invoice`, `InvoiceLine`; django-program's billing
//! address): issued for an order by its team or, where the event says so,
//! when the order is paid; corrected only by a cancellation invoice that
//! refers to the original, issued by hand or when the order is canceled or
//! expires.
//!
//! Numbers are sequential per organizer and prefix. The next one is taken by
//! an `UPDATE … SET last_number = last_number + 1` of the prefix's row in the
//! transaction that stores the invoice: that row stays locked until the
//! commit, and a rolled-back invoice rolls its number back with it, so
//! numbers are never skipped, reused or given twice, on SQLite or PostgreSQL,
//! with any number of replicas. Changes to one order's invoices lock the
//! order's row first (`payments::lock_order`), so an order never has two
//! valid invoices.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde_json::json;

use super::access;
use super::audit::{Audited, Change};
use super::orders::order_for_change;
use super::payments::lock_order;
use crate::auth::{Principal, TeamPermission};
use crate::entities::invoice_settings::InvoiceGeneration;
use crate::entities::order::OrderStatus;
use crate::entities::{
    event, invoice, invoice_address, invoice_line, invoice_settings, order, order_fee,
    order_position, organizer, product, product_variation, sub_event,
};
use crate::error::{AppError, Reason};

/// Longest text field an invoice copies from settings or an address.
const MAX_TEXT: usize = 2000;

/// An invoice address as a buyer or the team enters it.
#[derive(Debug, Clone, Default)]
pub struct AddressInput {
    pub is_business: bool,
    pub name: String,
    pub company: String,
    pub street: String,
    pub zipcode: String,
    pub city: String,
    pub country: String,
    pub vat_id: String,
}

impl AddressInput {
    fn validate(&self) -> Result<(), AppError> {
        let fields: [(&'static str, &str, usize); 7] = [
            ("name", &self.name, 255),
            ("company", &self.company, 255),
            ("street", &self.street, MAX_TEXT),
            ("zipcode", &self.zipcode, 30),
            ("city", &self.city, 255),
            ("country", &self.country, 2),
            ("vatId", &self.vat_id, 64),
        ];
        for (field, value, max) in fields {
            if value.chars().count() > max {
                return Err(AppError::bad_input(field, "too long"));
            }
        }
        let country_ok = self.country.is_empty()
            || (self.country.len() == 2 && self.country.bytes().all(|b| b.is_ascii_uppercase()));
        if !country_ok {
            return Err(AppError::bad_input(
                "country",
                "an ISO 3166-1 alpha-2 code such as DE",
            ));
        }
        if self.is_business && self.company.trim().is_empty() {
            return Err(AppError::bad_input(
                "company",
                "required for a business address",
            ));
        }
        if !self.is_business && self.name.trim().is_empty() && !self.company.trim().is_empty() {
            return Err(AppError::bad_input(
                "isBusiness",
                "a company name needs a business address",
            ));
        }
        Ok(())
    }

    /// The address as the invoice prints it, one part per line.
    fn printed(address: &invoice_address::Model) -> String {
        let place = [address.zipcode.trim(), address.city.trim()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let vat = if address.vat_id.trim().is_empty() {
            String::new()
        } else {
            format!("VAT ID: {}", address.vat_id.trim())
        };
        [
            address.company.trim(),
            address.name.trim(),
            address.street.trim(),
            place.as_str(),
            address.country.trim(),
            vat.as_str(),
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
    }
}

/// An event's invoice settings as the team enters them.
#[derive(Debug, Clone)]
pub struct SettingsInput {
    pub prefix: String,
    pub address_from: String,
    pub introductory_text: String,
    pub additional_text: String,
    pub footer_text: String,
    pub locale: String,
    pub generate: InvoiceGeneration,
    /// A currency to also show the taxes in; `None`: only the event's.
    pub foreign_currency_display: Option<String>,
}

/// The prefix of an event whose settings name none: its slug in capitals
/// and a dash (pretix's default).
fn default_prefix(event: &event::Model) -> String {
    format!("{}-", event.slug.to_uppercase())
}

/// An event's invoice settings; the defaults when it has none stored.
///
/// # Errors
/// On database errors.
pub async fn settings_of(
    db: &impl ConnectionTrait,
    event: &event::Model,
) -> Result<invoice_settings::Model, AppError> {
    let stored = invoice_settings::Entity::find_by_id(event.id)
        .one(db)
        .await?;
    Ok(stored.unwrap_or_else(|| invoice_settings::Model {
        event_id: event.id,
        prefix: String::new(),
        address_from: String::new(),
        introductory_text: String::new(),
        additional_text: String::new(),
        footer_text: String::new(),
        locale: "en".to_owned(),
        generate: InvoiceGeneration::Admin,
        foreign_currency_display: None,
        updated_at: event.created_at,
    }))
}

/// Changes an event's invoice settings (team permission `ChangeEvents`).
/// Invoices already issued keep what they copied.
///
/// # Errors
/// `BAD_USER_INPUT` on a prefix that is not 1–40 letters, digits, `-`, `_`,
/// `/` or `.`, a locale that is not a language tag, a text over 2000
/// characters; as [`access::on_event`].
pub async fn update_settings(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    event_id: i32,
    input: SettingsInput,
) -> Result<invoice_settings::Model, AppError> {
    let prefix_ok = input.prefix.len() <= 40
        && input
            .prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_/.".contains(&b));
    if !prefix_ok {
        return Err(AppError::bad_input(
            "prefix",
            "at most 40 letters, digits, '-', '_', '/' or '.' (empty for the event's slug)",
        ));
    }
    let locale_ok = (2..=16).contains(&input.locale.len())
        && input
            .locale
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !locale_ok {
        return Err(AppError::bad_input(
            "locale",
            "a language tag such as en or de-CH",
        ));
    }
    for (field, text) in [
        ("addressFrom", &input.address_from),
        ("introductoryText", &input.introductory_text),
        ("additionalText", &input.additional_text),
        ("footerText", &input.footer_text),
    ] {
        if text.chars().count() > MAX_TEXT {
            return Err(AppError::bad_input(field, "at most 2000 characters"));
        }
    }
    let foreign_currency_display = input
        .foreign_currency_display
        .as_deref()
        .map(|c| super::exchange_rates::parse_currency("foreignCurrencyDisplay", c))
        .transpose()?;
    let (change, event) =
        Audited::on_event(db, principal, now, TeamPermission::ChangeEvents, event_id).await?;
    let row = invoice_settings::ActiveModel {
        event_id: Set(event.id),
        prefix: Set(input.prefix),
        address_from: Set(input.address_from),
        introductory_text: Set(input.introductory_text),
        additional_text: Set(input.additional_text),
        footer_text: Set(input.footer_text),
        locale: Set(input.locale),
        generate: Set(input.generate),
        foreign_currency_display: Set(foreign_currency_display),
        updated_at: Set(now),
    };
    invoice_settings::Entity::insert(row)
        .on_conflict(
            OnConflict::column(invoice_settings::Column::EventId)
                .update_columns([
                    invoice_settings::Column::Prefix,
                    invoice_settings::Column::AddressFrom,
                    invoice_settings::Column::IntroductoryText,
                    invoice_settings::Column::AdditionalText,
                    invoice_settings::Column::FooterText,
                    invoice_settings::Column::Locale,
                    invoice_settings::Column::Generate,
                    invoice_settings::Column::ForeignCurrencyDisplay,
                    invoice_settings::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec(change.txn())
        .await?;
    let stored = settings_of(change.txn(), &event).await?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.event.invoice_settings.changed",
            "event",
            event.id,
            json!({
                "prefix": stored.prefix, "generate": stored.generate,
                "foreign_currency_display": stored.foreign_currency_display,
            }),
        ))
        .await?;
    Ok(stored)
}

/// Who is changing an order's invoice address, and which order.
pub enum AddressAuthor<'a> {
    /// The team (permission `ChangeOrders`) or the order's own account.
    Principal {
        principal: &'a Principal,
        order_id: i32,
    },
    /// A buyer holding the order's code and secret.
    Buyer {
        event_id: i32,
        code: &'a str,
        secret: &'a str,
    },
}

/// Sets an order's invoice address. Invoices already issued keep the address
/// they copied; reissuing one prints the new address.
///
/// # Errors
/// `BAD_USER_INPUT` as [`AddressInput`] validates; `NOT_FOUND` for a buyer
/// whose code or secret does not match; `FORBIDDEN` for a principal that is
/// neither the order's account nor a team member with `ChangeOrders`.
pub async fn set_address(
    db: &DatabaseConnection,
    author: AddressAuthor<'_>,
    now: DateTime<Utc>,
    input: AddressInput,
) -> Result<invoice_address::Model, AppError> {
    input.validate()?;
    let mut change = Audited::begin(db, None, now).await?;
    let (order, event) = match author {
        AddressAuthor::Buyer {
            event_id,
            code,
            secret,
        } => {
            let order = super::orders::by_code(change.txn(), event_id, code, secret).await?;
            let event = event_of(change.txn(), order.event_id).await?;
            (order, event)
        }
        AddressAuthor::Principal {
            principal,
            order_id,
        } => {
            if matches!(principal, Principal::Anonymous) {
                return Err(AppError::Unauthenticated);
            }
            let order = order::Entity::find_by_id(order_id)
                .one(change.txn())
                .await?;
            let own = order.as_ref().is_some_and(|o| {
                o.user_id
                    .is_some_and(|user| principal.accounts().allows(user))
            });
            let event = if own {
                let order = order.as_ref().ok_or(AppError::not_found("order"))?;
                event_of(change.txn(), order.event_id).await?
            } else {
                change
                    .check_event(
                        principal,
                        TeamPermission::ChangeOrders,
                        order.as_ref().map_or(0, |o| o.event_id),
                    )
                    .await?
            };
            (order.ok_or(AppError::not_found("order"))?, event)
        }
    };
    let row = invoice_address::ActiveModel {
        order_id: Set(order.id),
        is_business: Set(input.is_business),
        name: Set(input.name.trim().to_owned()),
        company: Set(input.company.trim().to_owned()),
        street: Set(input.street.trim().to_owned()),
        zipcode: Set(input.zipcode.trim().to_owned()),
        city: Set(input.city.trim().to_owned()),
        country: Set(input.country),
        vat_id: Set(input.vat_id.trim().to_owned()),
        updated_at: Set(now),
    };
    invoice_address::Entity::insert(row)
        .on_conflict(
            OnConflict::column(invoice_address::Column::OrderId)
                .update_columns([
                    invoice_address::Column::IsBusiness,
                    invoice_address::Column::Name,
                    invoice_address::Column::Company,
                    invoice_address::Column::Street,
                    invoice_address::Column::Zipcode,
                    invoice_address::Column::City,
                    invoice_address::Column::Country,
                    invoice_address::Column::VatId,
                    invoice_address::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec(change.txn())
        .await?;
    let stored = invoice_address::Entity::find_by_id(order.id)
        .one(change.txn())
        .await?
        .ok_or(AppError::not_found("order"))?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.order.invoice_address.changed",
            "order",
            order.id,
            json!({ "code": order.code }),
        ))
        .await?;
    Ok(stored)
}

async fn event_of(db: &impl ConnectionTrait, event_id: i32) -> Result<event::Model, AppError> {
    event::Entity::find_by_id(event_id)
        .one(db)
        .await?
        .ok_or(AppError::not_found("event"))
}

/// Issues an invoice for an order (team permission `ChangeOrders`).
///
/// # Errors
/// `CONFLICT` when the order has a valid invoice already (cancel or reissue
/// it); `INVALID_TRANSITION` for a canceled or expired order; as
/// [`access::on_event`].
pub async fn issue(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    order_id: i32,
) -> Result<invoice::Model, AppError> {
    let (change, order, event) = order_for_change(db, principal, now, order_id).await?;
    let txn = change.txn();
    let order = lock_order(txn, order.id, now).await?;
    if valid_invoice(txn, order.id).await?.is_some() {
        return Err(AppError::Conflict(
            "the order has a valid invoice already; cancel or reissue it".to_owned(),
        ));
    }
    let issued = issue_within(txn, &event, &order, now).await?;
    change
        .commit(invoice_changed(
            &event,
            &issued,
            "voltgate.order.invoice.issued",
        ))
        .await?;
    Ok(issued)
}

/// Cancels an invoice (team permission `ChangeOrders`) with a cancellation
/// invoice that refers to it; returns the cancellation.
///
/// # Errors
/// `CONFLICT` for a cancellation or an invoice canceled already;
/// `NOT_FOUND` for an unknown invoice (staff); as [`access::on_event`].
pub async fn cancel(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    invoice_id: i32,
) -> Result<invoice::Model, AppError> {
    if matches!(principal, Principal::Anonymous) {
        return Err(AppError::Unauthenticated);
    }
    let mut change = Audited::begin(db, None, now).await?;
    let found = invoice::Entity::find_by_id(invoice_id)
        .one(change.txn())
        .await?;
    let event = change
        .check_event(
            principal,
            TeamPermission::ChangeOrders,
            found.as_ref().map_or(0, |i| i.event_id),
        )
        .await?;
    let original = found.ok_or(AppError::not_found("invoice"))?;
    let txn = change.txn();
    lock_order(txn, original.order_id, now).await?;
    if original.is_cancellation {
        return Err(AppError::Conflict(
            "a cancellation cannot be canceled".to_owned(),
        ));
    }
    if canceled(txn, original.id).await? {
        return Err(AppError::Conflict(
            "the invoice is canceled already".to_owned(),
        ));
    }
    let issued = cancellation_within(txn, &original, now).await?;
    change
        .commit(invoice_changed(
            &event,
            &issued,
            "voltgate.order.invoice.canceled",
        ))
        .await?;
    Ok(issued)
}

/// Cancels an order's valid invoice, if any, and issues a new one in the
/// same transaction (team permission `ChangeOrders`): after a change of the
/// invoice address, say. Returns the cancellation (if one was made) and the
/// new invoice.
///
/// # Errors
/// `INVALID_TRANSITION` for a canceled or expired order; as
/// [`access::on_event`].
pub async fn reissue(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    order_id: i32,
) -> Result<(Option<invoice::Model>, invoice::Model), AppError> {
    let (change, order, event) = order_for_change(db, principal, now, order_id).await?;
    let txn = change.txn();
    let order = lock_order(txn, order.id, now).await?;
    ensure_invoiceable(&order)?;
    let cancellation = match valid_invoice(txn, order.id).await? {
        Some(original) => Some(cancellation_within(txn, &original, now).await?),
        None => None,
    };
    let issued = issue_within(txn, &event, &order, now).await?;
    change
        .commit(invoice_changed(
            &event,
            &issued,
            "voltgate.order.invoice.reissued",
        ))
        .await?;
    Ok((cancellation, issued))
}

fn invoice_changed<'a>(
    event: &event::Model,
    invoice: &invoice::Model,
    action: &'a str,
) -> Change<'a> {
    Change::on_event(
        event,
        action,
        "order",
        invoice.order_id,
        json!({
            "invoice": invoice.full_invoice_no,
            "refers": invoice.refers_id,
        }),
    )
}

fn ensure_invoiceable(order: &order::Model) -> Result<(), AppError> {
    if matches!(order.status, OrderStatus::Pending | OrderStatus::Paid) {
        Ok(())
    } else {
        Err(AppError::refused(
            Reason::InvalidTransition,
            "a canceled or expired order gets no new invoice",
        ))
    }
}

/// The order's invoice that is neither a cancellation nor canceled.
async fn valid_invoice(
    db: &impl ConnectionTrait,
    order_id: i32,
) -> Result<Option<invoice::Model>, AppError> {
    let invoices = invoice::Entity::find()
        .filter(invoice::Column::OrderId.eq(order_id))
        .order_by_asc(invoice::Column::Id)
        .all(db)
        .await?;
    let canceled: Vec<i32> = invoices.iter().filter_map(|i| i.refers_id).collect();
    Ok(invoices
        .into_iter()
        .rev()
        .find(|i| !i.is_cancellation && !canceled.contains(&i.id)))
}

async fn canceled(db: &impl ConnectionTrait, invoice_id: i32) -> Result<bool, AppError> {
    Ok(invoice::Entity::find()
        .filter(invoice::Column::RefersId.eq(invoice_id))
        .one(db)
        .await?
        .is_some())
}

/// Takes the next number of `prefix` at the organizer, holding the prefix's
/// row locked until the caller's transaction ends.
async fn next_number(
    txn: &impl ConnectionTrait,
    organizer_id: i32,
    prefix: &str,
) -> Result<i32, AppError> {
    use crate::entities::invoice_number;
    invoice_number::Entity::insert(invoice_number::ActiveModel {
        organizer_id: Set(organizer_id),
        prefix: Set(prefix.to_owned()),
        last_number: Set(0),
    })
    .on_conflict_do_nothing_on([
        invoice_number::Column::OrganizerId,
        invoice_number::Column::Prefix,
    ])
    .exec(txn)
    .await?;
    invoice_number::Entity::update_many()
        .col_expr(
            invoice_number::Column::LastNumber,
            Expr::col(invoice_number::Column::LastNumber).add(1),
        )
        .filter(invoice_number::Column::OrganizerId.eq(organizer_id))
        .filter(invoice_number::Column::Prefix.eq(prefix))
        .exec(txn)
        .await?;
    let last: Option<i32> = invoice_number::Entity::find()
        .select_only()
        .column(invoice_number::Column::LastNumber)
        .filter(invoice_number::Column::OrganizerId.eq(organizer_id))
        .filter(invoice_number::Column::Prefix.eq(prefix))
        .into_tuple()
        .one(txn)
        .await?;
    last.ok_or_else(|| AppError::Internal(anyhow::anyhow!("invoice number row vanished")))
}

/// Stores `invoice` with the next number of its prefix and its `lines`.
async fn store(
    txn: &impl ConnectionTrait,
    mut invoice: invoice::ActiveModel,
    organizer_id: i32,
    prefix: &str,
    lines: Vec<invoice_line::ActiveModel>,
) -> Result<invoice::Model, AppError> {
    let number = next_number(txn, organizer_id, prefix).await?;
    invoice.prefix = Set(prefix.to_owned());
    invoice.invoice_no = Set(number);
    invoice.full_invoice_no = Set(format!("{prefix}{number:05}"));
    let invoice = invoice.insert(txn).await?;
    for (index, mut line) in lines.into_iter().enumerate() {
        line.invoice_id = Set(invoice.id);
        line.position = Set(i32::try_from(index + 1).unwrap_or(i32::MAX));
        line.insert(txn).await?;
    }
    Ok(invoice)
}

/// Issues an invoice for `order` in the caller's transaction, which holds the
/// order's row locked: its live positions and fees, the invoice address and
/// the event's settings as they are now.
///
/// # Errors
/// `INVALID_TRANSITION` for a canceled or expired order; on database errors.
pub(super) async fn issue_within(
    txn: &impl ConnectionTrait,
    event: &event::Model,
    order: &order::Model,
    now: DateTime<Utc>,
) -> Result<invoice::Model, AppError> {
    ensure_invoiceable(order)?;
    let settings = settings_of(txn, event).await?;
    let organizer = organizer::Entity::find_by_id(event.organizer_id)
        .one(txn)
        .await?
        .ok_or(AppError::not_found("organizer"))?;
    let address = invoice_address::Entity::find_by_id(order.id)
        .one(txn)
        .await?;
    let invoice_to = match &address {
        Some(address) => AddressInput::printed(address),
        None => order.email.clone(),
    };
    let invoice_from = if settings.address_from.trim().is_empty() {
        organizer.name.clone()
    } else {
        settings.address_from.clone()
    };
    let prefix = if settings.prefix.is_empty() {
        default_prefix(event)
    } else {
        settings.prefix.clone()
    };
    let lines = lines_of_order(txn, event, order).await?;
    // pretix's rule: the latest rate on or before the invoice's date; without
    // one the invoice shows only the event's currency.
    let foreign = match settings
        .foreign_currency_display
        .as_deref()
        .filter(|c| *c != event.currency)
    {
        Some(display) => super::exchange_rates::latest(
            txn,
            event.organizer_id,
            &event.currency,
            display,
            now.date_naive(),
        )
        .await?
        .map(|rate| (display.to_owned(), rate)),
        None => None,
    };
    let invoice = invoice::ActiveModel {
        organizer_id: Set(event.organizer_id),
        event_id: Set(event.id),
        order_id: Set(order.id),
        is_cancellation: Set(false),
        refers_id: Set(None),
        invoice_from: Set(invoice_from),
        invoice_to: Set(invoice_to),
        date: Set(now.date_naive()),
        locale: Set(settings.locale.clone()),
        currency: Set(event.currency.clone()),
        introductory_text: Set(settings.introductory_text.clone()),
        additional_text: Set(settings.additional_text.clone()),
        payment_provider_text: Set(String::new()),
        payment_provider_stamp: Set(payment_stamp(order)),
        footer_text: Set(settings.footer_text.clone()),
        foreign_currency_display: Set(foreign.as_ref().map(|(display, _)| display.clone())),
        foreign_currency_rate: Set(foreign.as_ref().map(|(_, rate)| rate.rate.clone())),
        foreign_currency_rate_date: Set(foreign.as_ref().map(|(_, rate)| rate.date)),
        foreign_currency_rate_source: Set(foreign.as_ref().map(|(_, rate)| rate.source.clone())),
        created_at: Set(now),
        ..Default::default()
    };
    store(txn, invoice, event.organizer_id, &prefix, lines).await
}

/// What the invoice stamps about payment.
fn payment_stamp(order: &order::Model) -> String {
    if order.status == OrderStatus::Paid {
        "paid".to_owned()
    } else {
        String::new()
    }
}

/// The lines of an order as an invoice lists them: live positions, then
/// live fees.
async fn lines_of_order(
    txn: &impl ConnectionTrait,
    event: &event::Model,
    order: &order::Model,
) -> Result<Vec<invoice_line::ActiveModel>, AppError> {
    let positions = order_position::Entity::find()
        .filter(order_position::Column::OrderId.eq(order.id))
        .filter(order_position::Column::Canceled.eq(false))
        .order_by_asc(order_position::Column::Positionid)
        .all(txn)
        .await?;
    let product_ids: Vec<i32> = positions.iter().map(|p| p.product_id).collect();
    let products: std::collections::HashMap<i32, product::Model> = product::Entity::find()
        .filter(product::Column::Id.is_in(product_ids))
        .all(txn)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let variation_ids: Vec<i32> = positions.iter().filter_map(|p| p.variation_id).collect();
    let variations: std::collections::HashMap<i32, product_variation::Model> =
        product_variation::Entity::find()
            .filter(product_variation::Column::Id.is_in(variation_ids))
            .all(txn)
            .await?
            .into_iter()
            .map(|v| (v.id, v))
            .collect();
    let date_ids: Vec<i32> = positions.iter().filter_map(|p| p.sub_event_id).collect();
    let dates: std::collections::HashMap<i32, sub_event::Model> = sub_event::Entity::find()
        .filter(sub_event::Column::Id.is_in(date_ids))
        .all(txn)
        .await?
        .into_iter()
        .map(|d| (d.id, d))
        .collect();
    let mut lines = Vec::with_capacity(positions.len());
    for position in positions {
        let name = products
            .get(&position.product_id)
            .map_or_else(|| "Product".to_owned(), |p| p.name.clone());
        let description = match position.variation_id.and_then(|v| variations.get(&v)) {
            Some(variation) => format!("{name} – {}", variation.value),
            None => name,
        };
        let date = position.sub_event_id.and_then(|d| dates.get(&d));
        let (from, to, location) = match date {
            Some(date) => (date.date_from, date.date_to, date.location.clone()),
            None => (event.date_from, event.date_to, event.location.clone()),
        };
        lines.push(invoice_line::ActiveModel {
            description: Set(description),
            gross_value_minor: Set(position.price_minor),
            tax_value_minor: Set(position.tax_value_minor),
            tax_rate_bp: Set(position.tax_rate_bp),
            tax_name: Set(tax_name(position.tax_rate_bp)),
            sub_event_id: Set(position.sub_event_id),
            event_date_from: Set(Some(from)),
            event_date_to: Set(to),
            event_location: Set(location),
            product_id: Set(Some(position.product_id)),
            variation_id: Set(position.variation_id),
            attendee_name: Set(position.attendee_name.clone()),
            ..Default::default()
        });
    }
    let fees = order_fee::Entity::find()
        .filter(order_fee::Column::OrderId.eq(order.id))
        .filter(order_fee::Column::Canceled.eq(false))
        .order_by_asc(order_fee::Column::Id)
        .all(txn)
        .await?;
    for fee in fees {
        let description = if fee.description.trim().is_empty() {
            fee.fee_type.replace('_', " ")
        } else {
            fee.description.clone()
        };
        lines.push(invoice_line::ActiveModel {
            description: Set(description),
            gross_value_minor: Set(fee.value_minor),
            tax_value_minor: Set(fee.tax_value_minor),
            tax_rate_bp: Set(fee.tax_rate_bp),
            tax_name: Set(tax_name(fee.tax_rate_bp)),
            sub_event_id: Set(None),
            event_date_from: Set(None),
            event_date_to: Set(None),
            event_location: Set(None),
            product_id: Set(None),
            variation_id: Set(None),
            attendee_name: Set(None),
            ..Default::default()
        });
    }
    Ok(lines)
}

fn tax_name(rate_bp: i32) -> String {
    if rate_bp == 0 {
        String::new()
    } else {
        "VAT".to_owned()
    }
}

/// Issues the cancellation of `original` in the caller's transaction: its
/// lines negated, its addresses and texts kept.
async fn cancellation_within(
    txn: &impl ConnectionTrait,
    original: &invoice::Model,
    now: DateTime<Utc>,
) -> Result<invoice::Model, AppError> {
    let lines = invoice_line::Entity::find()
        .filter(invoice_line::Column::InvoiceId.eq(original.id))
        .order_by_asc(invoice_line::Column::Position)
        .all(txn)
        .await?
        .into_iter()
        .map(|line| invoice_line::ActiveModel {
            description: Set(line.description),
            gross_value_minor: Set(-line.gross_value_minor),
            tax_value_minor: Set(-line.tax_value_minor),
            tax_rate_bp: Set(line.tax_rate_bp),
            tax_name: Set(line.tax_name),
            sub_event_id: Set(line.sub_event_id),
            event_date_from: Set(line.event_date_from),
            event_date_to: Set(line.event_date_to),
            event_location: Set(line.event_location),
            product_id: Set(line.product_id),
            variation_id: Set(line.variation_id),
            attendee_name: Set(line.attendee_name),
            ..Default::default()
        })
        .collect();
    let cancellation = invoice::ActiveModel {
        organizer_id: Set(original.organizer_id),
        event_id: Set(original.event_id),
        order_id: Set(original.order_id),
        is_cancellation: Set(true),
        refers_id: Set(Some(original.id)),
        invoice_from: Set(original.invoice_from.clone()),
        invoice_to: Set(original.invoice_to.clone()),
        date: Set(now.date_naive()),
        locale: Set(original.locale.clone()),
        currency: Set(original.currency.clone()),
        introductory_text: Set(String::new()),
        additional_text: Set(String::new()),
        payment_provider_text: Set(String::new()),
        payment_provider_stamp: Set(String::new()),
        footer_text: Set(original.footer_text.clone()),
        foreign_currency_display: Set(original.foreign_currency_display.clone()),
        foreign_currency_rate: Set(original.foreign_currency_rate.clone()),
        foreign_currency_rate_date: Set(original.foreign_currency_rate_date),
        foreign_currency_rate_source: Set(original.foreign_currency_rate_source.clone()),
        created_at: Set(now),
        ..Default::default()
    };
    // Cancellations share the original's sequence, as pretix numbers them by
    // default, so the books show one gap-free series per prefix.
    store(
        txn,
        cancellation,
        original.organizer_id,
        &original.prefix,
        lines,
    )
    .await
}

/// After an order was paid in the caller's transaction: issues its invoice
/// when the event's settings say so, the order has something to bill and no
/// valid invoice yet.
///
/// # Errors
/// On database errors.
pub(super) async fn on_paid(
    txn: &impl ConnectionTrait,
    order: &order::Model,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    if order.total_minor == 0 {
        return Ok(());
    }
    let event = event_of(txn, order.event_id).await?;
    if settings_of(txn, &event).await?.generate != InvoiceGeneration::Paid {
        return Ok(());
    }
    let order = super::orders::reload(txn, order.id).await?;
    if valid_invoice(txn, order.id).await?.is_none() {
        issue_within(txn, &event, &order, now).await?;
    }
    Ok(())
}

/// After an order was canceled or expired in the caller's transaction:
/// cancels its valid invoice, if any.
///
/// # Errors
/// On database errors.
pub(super) async fn on_canceled(
    txn: &impl ConnectionTrait,
    order: &order::Model,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    if let Some(original) = valid_invoice(txn, order.id).await? {
        cancellation_within(txn, &original, now).await?;
    }
    Ok(())
}

/// An order's invoices, oldest first.
///
/// # Errors
/// On database errors.
pub async fn of_order(
    db: &impl ConnectionTrait,
    order_id: i32,
) -> Result<Vec<invoice::Model>, AppError> {
    Ok(invoice::Entity::find()
        .filter(invoice::Column::OrderId.eq(order_id))
        .order_by_asc(invoice::Column::Id)
        .all(db)
        .await?)
}

/// An event's invoices (team permission `ViewOrders`), newest first, at most
/// `limit` after the invoice `before` (by id).
///
/// # Errors
/// As [`access::on_event`].
pub async fn of_event(
    db: &DatabaseConnection,
    principal: &Principal,
    event_id: i32,
    limit: u64,
    before: Option<i32>,
) -> Result<Vec<invoice::Model>, AppError> {
    access::on_event(db, principal, TeamPermission::ViewOrders, event_id).await?;
    let mut query = invoice::Entity::find()
        .filter(invoice::Column::EventId.eq(event_id))
        .order_by_desc(invoice::Column::Id)
        .limit(limit);
    if let Some(before) = before {
        query = query.filter(invoice::Column::Id.lt(before));
    }
    Ok(query.all(db).await?)
}

/// An invoice by id, for whoever may see its order: the team
/// (`ViewOrders`) or the order's account.
///
/// # Errors
/// `UNAUTHENTICATED` anonymously; `FORBIDDEN` (or `NOT_FOUND` for staff) as
/// [`access::on_event`].
pub async fn by_id(
    db: &DatabaseConnection,
    principal: &Principal,
    invoice_id: i32,
) -> Result<invoice::Model, AppError> {
    if matches!(principal, Principal::Anonymous) {
        return Err(AppError::Unauthenticated);
    }
    let found = invoice::Entity::find_by_id(invoice_id).one(db).await?;
    if let Some(invoice) = &found {
        let order = order::Entity::find_by_id(invoice.order_id).one(db).await?;
        if order
            .and_then(|o| o.user_id)
            .is_some_and(|user| principal.accounts().allows(user))
        {
            return Ok(invoice.clone());
        }
    }
    access::on_event(
        db,
        principal,
        TeamPermission::ViewOrders,
        found.as_ref().map_or(0, |i| i.event_id),
    )
    .await?;
    found.ok_or(AppError::not_found("invoice"))
}

/// An invoice's lines, in order.
///
/// # Errors
/// On database errors.
pub async fn lines_of(
    db: &impl ConnectionTrait,
    invoice_id: i32,
) -> Result<Vec<invoice_line::Model>, AppError> {
    Ok(invoice_line::Entity::find()
        .filter(invoice_line::Column::InvoiceId.eq(invoice_id))
        .order_by_asc(invoice_line::Column::Position)
        .all(db)
        .await?)
}
