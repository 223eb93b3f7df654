//! Exchange rates for the foreign-currency figures of invoices (pretix's
//! `Invoice.foreign_currency_*`): an organizer's teams (`ChangeOrganizerSettings`)
//! or staff enter a rate per currency pair and date (source `manual`; no rate
//! is ever fetched from outside). Rates are exact decimal strings; amounts are
//! converted in integers and rounded half up to the minor unit.
//!
//! An invoice of an event whose currency differs from the settings'
//! `foreign_currency_display` records the latest rate on or before its date;
//! with no such rate it is issued without foreign figures, as pretix does.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::json;

use super::audit::{Audited, Change};
use crate::auth::{Principal, TeamPermission};
use crate::entities::exchange_rate;
use crate::error::AppError;

/// The source of rates entered by a team or staff.
pub const MANUAL: &str = "manual";

/// The most digits a rate has after the point.
const MAX_SCALE: usize = 10;

/// An ISO 4217 code: three letters, stored in capitals.
///
/// # Errors
/// `BAD_USER_INPUT` on `field` otherwise.
pub fn parse_currency(field: &'static str, code: &str) -> Result<String, AppError> {
    let code = code.trim();
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(code.to_ascii_uppercase())
    } else {
        Err(AppError::bad_input(field, "a currency code such as EUR"))
    }
}

/// A rate as an integer and its number of decimals: `"1.0856"` is `(10856, 4)`.
fn digits_of(rate: &str) -> Option<(i128, u32)> {
    let (whole, fraction) = rate.split_once('.').unwrap_or((rate, ""));
    let ok = !whole.is_empty()
        && whole.len() <= 12
        && fraction.len() <= MAX_SCALE
        && whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
        && (rate.contains('.') != fraction.is_empty());
    if !ok {
        return None;
    }
    let mantissa: i128 = format!("{whole}{fraction}").parse().ok()?;
    Some((mantissa, u32::try_from(fraction.len()).ok()?))
}

/// A positive exact rate with at most 10 decimals, as it is stored (leading
/// zeros of the whole part and trailing zeros of the fraction dropped).
///
/// # Errors
/// `BAD_USER_INPUT` on `rate` otherwise.
pub fn parse_rate(rate: &str) -> Result<String, AppError> {
    let invalid = || AppError::bad_input("rate", "a positive decimal such as 1.0856");
    let rate = rate.trim();
    let (mantissa, _) = digits_of(rate).ok_or_else(invalid)?;
    if mantissa <= 0 {
        return Err(invalid());
    }
    let (whole, fraction) = rate.split_once('.').unwrap_or((rate, ""));
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    let fraction = fraction.trim_end_matches('0');
    Ok(if fraction.is_empty() {
        whole.to_owned()
    } else {
        format!("{whole}.{fraction}")
    })
}

/// `minor` units converted at `rate` (a stored rate), rounded half up (away
/// from zero for negative amounts); `None` for a rate that is not one.
pub fn convert(minor: i64, rate: &str) -> Option<i64> {
    let (mantissa, scale) = digits_of(rate)?;
    let divisor = 10_i128.checked_pow(scale)?;
    let product = i128::from(minor).checked_mul(mantissa)?;
    let rounded = (product.abs() * 2 + divisor) / (divisor * 2);
    i64::try_from(if product < 0 { -rounded } else { rounded }).ok()
}

/// What a rate is entered with.
#[derive(Debug, Clone)]
pub struct RateInput {
    pub from_currency: String,
    pub to_currency: String,
    pub date: NaiveDate,
    pub rate: String,
}

/// Sets the organizer's rate of a currency pair on a date (team permission
/// `ChangeOrganizerSettings`; source `manual`), replacing one entered for
/// that date before. Invoices issued before keep the rate they recorded.
///
/// # Errors
/// `BAD_USER_INPUT` on a bad currency or rate, or the same currency twice;
/// as [`super::access::on_organizer`].
pub async fn set_rate(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    organizer_id: i32,
    input: RateInput,
) -> Result<exchange_rate::Model, AppError> {
    let from = parse_currency("fromCurrency", &input.from_currency)?;
    let to = parse_currency("toCurrency", &input.to_currency)?;
    if from == to {
        return Err(AppError::bad_input(
            "toCurrency",
            "a currency other than fromCurrency",
        ));
    }
    let rate = parse_rate(&input.rate)?;
    let (change, organizer) = Audited::on_organizer(
        db,
        principal,
        now,
        TeamPermission::ChangeOrganizerSettings,
        organizer_id,
    )
    .await?;
    let row = exchange_rate::ActiveModel {
        organizer_id: Set(organizer.id),
        from_currency: Set(from.clone()),
        to_currency: Set(to.clone()),
        date: Set(input.date),
        rate: Set(rate.clone()),
        source: Set(MANUAL.to_owned()),
        created_at: Set(now),
        ..Default::default()
    };
    exchange_rate::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([
                exchange_rate::Column::OrganizerId,
                exchange_rate::Column::FromCurrency,
                exchange_rate::Column::ToCurrency,
                exchange_rate::Column::Date,
            ])
            .update_columns([
                exchange_rate::Column::Rate,
                exchange_rate::Column::Source,
                exchange_rate::Column::CreatedAt,
            ])
            .to_owned(),
        )
        .exec(change.txn())
        .await?;
    let stored = exchange_rate::Entity::find()
        .filter(exchange_rate::Column::OrganizerId.eq(organizer.id))
        .filter(exchange_rate::Column::FromCurrency.eq(from.clone()))
        .filter(exchange_rate::Column::ToCurrency.eq(to.clone()))
        .filter(exchange_rate::Column::Date.eq(input.date))
        .one(change.txn())
        .await?
        .ok_or(AppError::not_found("exchange rate"))?;
    change
        .commit(Change::on_organizer(
            organizer.id,
            "voltgate.exchange_rate.set",
            "exchange_rate",
            stored.id,
            json!({ "from": from, "to": to, "date": input.date, "rate": rate, "source": MANUAL }),
        ))
        .await?;
    Ok(stored)
}

/// The organizer's rates, newest date first (team permission
/// `ChangeOrganizerSettings`).
///
/// # Errors
/// As [`super::access::on_organizer`].
pub async fn rates_of(
    db: &impl ConnectionTrait,
    principal: &Principal,
    organizer_id: i32,
) -> Result<Vec<exchange_rate::Model>, AppError> {
    super::access::on_organizer(
        db,
        principal,
        TeamPermission::ChangeOrganizerSettings,
        organizer_id,
    )
    .await?;
    Ok(exchange_rate::Entity::find()
        .filter(exchange_rate::Column::OrganizerId.eq(organizer_id))
        .order_by_desc(exchange_rate::Column::Date)
        .order_by_asc(exchange_rate::Column::FromCurrency)
        .order_by_asc(exchange_rate::Column::ToCurrency)
        .all(db)
        .await?)
}

/// The organizer's latest rate from `from` to `to` on or before `on`.
///
/// # Errors
/// On database errors.
pub async fn latest(
    db: &impl ConnectionTrait,
    organizer_id: i32,
    from: &str,
    to: &str,
    on: NaiveDate,
) -> Result<Option<exchange_rate::Model>, AppError> {
    Ok(exchange_rate::Entity::find()
        .filter(exchange_rate::Column::OrganizerId.eq(organizer_id))
        .filter(exchange_rate::Column::FromCurrency.eq(from))
        .filter(exchange_rate::Column::ToCurrency.eq(to))
        .filter(exchange_rate::Column::Date.lte(on))
        .order_by_desc(exchange_rate::Column::Date)
        .one(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_exact_decimals() {
        assert_eq!(parse_rate("1.0856").ok().as_deref(), Some("1.0856"));
        assert_eq!(parse_rate(" 007.50 ").ok().as_deref(), Some("7.5"));
        assert_eq!(parse_rate("0.000001").ok().as_deref(), Some("0.000001"));
        for bad in [
            "",
            "0",
            "0.000",
            "-1",
            "1.",
            ".5",
            "1e3",
            "1,5",
            "1.12345678901",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn conversions_round_half_up_to_the_minor_unit() {
        // 19.00 at 1.0856 is 20.6264 → 20.63.
        assert_eq!(convert(1900, "1.0856"), Some(2063));
        // 0.50 at 0.5 is 0.25 exactly; 0.01 at 0.5 is 0.005 → 0.01.
        assert_eq!(convert(50, "0.5"), Some(25));
        assert_eq!(convert(1, "0.5"), Some(1));
        assert_eq!(convert(-1, "0.5"), Some(-1));
        assert_eq!(convert(1234, "25.3"), Some(31220));
        assert_eq!(convert(1, "x"), None);
    }

    #[test]
    fn currencies_are_three_letters() {
        assert_eq!(parse_currency("c", "chf").ok().as_deref(), Some("CHF"));
        for bad in ["", "EU", "EURO", "E1R"] {
            assert!(parse_currency("c", bad).is_err(), "{bad:?}");
        }
    }
}
