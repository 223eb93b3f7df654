//! Payment fees per event and provider: starting a provider payment adds the
//! fee for the open balance to the order as a payment fee (an order fee, so it
//! is in the total, the ledger and the invoice), and a payment that fails or
//! is canceled takes it off again (`payments`).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::json;

use super::Providers;
use crate::auth::{Principal, TeamPermission};
use crate::entities::payment_provider_fee;
use crate::error::AppError;
use crate::ticketing::audit::{Audited, Change};

/// The largest fixed fee, in minor units.
pub const MAX_FIXED_MINOR: i64 = 1_000_000;

/// The fee for paying `balance_minor` with a provider charging `fee`: its
/// fixed part plus its percentage of the balance, rounded half up.
pub fn fee_for(fee: &payment_provider_fee::Model, balance_minor: i64) -> i64 {
    let part = (i128::from(balance_minor) * i128::from(fee.percent_bp) + 5_000) / 10_000;
    fee.fixed_minor + i64::try_from(part).unwrap_or(i64::MAX - fee.fixed_minor)
}

/// The fee an event charges for `provider`, if any.
///
/// # Errors
/// On database errors.
pub async fn of_provider(
    db: &impl ConnectionTrait,
    event_id: i32,
    provider: &str,
) -> Result<Option<payment_provider_fee::Model>, AppError> {
    Ok(payment_provider_fee::Entity::find()
        .filter(payment_provider_fee::Column::EventId.eq(event_id))
        .filter(payment_provider_fee::Column::Provider.eq(provider))
        .one(db)
        .await?)
}

/// The fees an event charges, by provider.
///
/// # Errors
/// On database errors.
pub async fn of_event(
    db: &impl ConnectionTrait,
    event_id: i32,
) -> Result<Vec<payment_provider_fee::Model>, AppError> {
    Ok(payment_provider_fee::Entity::find()
        .filter(payment_provider_fee::Column::EventId.eq(event_id))
        .order_by_asc(payment_provider_fee::Column::Provider)
        .all(db)
        .await?)
}

/// Sets the fee an event charges for paying with `provider` (team permission
/// `CHANGE_EVENTS`); zero and zero charges nothing.
///
/// # Errors
/// `BAD_USER_INPUT` on a provider not offered, a negative or too large fixed
/// part, or a percentage outside 0 to 100; as [`Audited::on_event`].
#[allow(clippy::too_many_arguments)]
pub async fn set(
    db: &DatabaseConnection,
    providers: &Providers,
    principal: &Principal,
    now: DateTime<Utc>,
    event_id: i32,
    provider: &str,
    fixed_minor: i64,
    percent_bp: i32,
) -> Result<payment_provider_fee::Model, AppError> {
    if providers.get(provider).is_none() {
        return Err(AppError::bad_input(
            "provider",
            format!("not offered; offered: {}", providers.names().join(", ")),
        ));
    }
    if !(0..=MAX_FIXED_MINOR).contains(&fixed_minor) {
        return Err(AppError::bad_input("fixed", "between 0 and 10000.00"));
    }
    if !(0..=10_000).contains(&percent_bp) {
        return Err(AppError::bad_input("percent", "between 0 and 100"));
    }
    let (change, event) =
        Audited::on_event(db, principal, now, TeamPermission::ChangeEvents, event_id).await?;
    let txn = change.txn();
    payment_provider_fee::Entity::insert(payment_provider_fee::ActiveModel {
        event_id: Set(event.id),
        provider: Set(provider.to_owned()),
        fixed_minor: Set(fixed_minor),
        percent_bp: Set(percent_bp),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::columns([
            payment_provider_fee::Column::EventId,
            payment_provider_fee::Column::Provider,
        ])
        .update_columns([
            payment_provider_fee::Column::FixedMinor,
            payment_provider_fee::Column::PercentBp,
        ])
        .to_owned(),
    )
    .exec(txn)
    .await?;
    let fee = of_provider(txn, event.id, provider)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("the fee was not stored")))?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.event.payment_fee.changed",
            "event",
            event.id,
            json!({ "provider": provider, "fixed_minor": fixed_minor, "percent_bp": percent_bp }),
        ))
        .await?;
    Ok(fee)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fee(fixed_minor: i64, percent_bp: i32) -> payment_provider_fee::Model {
        payment_provider_fee::Model {
            id: 1,
            event_id: 1,
            provider: "test".to_owned(),
            fixed_minor,
            percent_bp,
        }
    }

    #[test]
    fn a_fee_is_its_fixed_part_plus_its_share_rounded_half_up() {
        assert_eq!(fee_for(&fee(25, 0), 10_000), 25);
        assert_eq!(fee_for(&fee(0, 290), 10_000), 290, "2.9 % of 100.00");
        assert_eq!(fee_for(&fee(25, 290), 4_950), 25 + 144, "143.55 rounds up");
        assert_eq!(fee_for(&fee(0, 250), 1), 0, "0.025 rounds down");
        assert_eq!(fee_for(&fee(0, 0), 123_456), 0);
    }
}
