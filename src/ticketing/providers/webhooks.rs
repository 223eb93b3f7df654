//! Webhook events of payment providers (`POST /webhooks/<provider>`), in
//! Stripe's format and signed by Stripe's scheme (`Stripe-Signature:
//! t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, several `v1` while a
//! secret is rotated).
//!
//! - An event is checked (signature in constant time, timestamp within the
//!   tolerance) before anything is stored; a refused one leaves no trace.
//! - It is recorded once, by its provider event id (a unique index: a
//!   redelivery, even concurrent, inserts nothing and is answered as a
//!   duplicate).
//! - It is applied in one transaction that first flips `processed` by a
//!   conditional `UPDATE`, so it is applied once whoever tries.
//! - When applying fails, the error is stored on the event and as a failure
//!   row, and [`RetryWebhookEvents`] tries again with backoff, up to the
//!   configured attempts; each replica claims an event's retry by moving its
//!   `next_attempt_at` with one conditional `UPDATE`.

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac as _};
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait, TryInsertResult,
};
use serde_json::{Value, json};
use sha2::Sha256;

use super::Outcome;
use super::outcomes::{self, Report};
use crate::entities::{payment_webhook_event, payment_webhook_failure};
use crate::error::AppError;
use crate::jobs::Job;
use crate::services::ServiceContext;

/// How long an event being applied is left alone by the retry job: longer
/// than applying one takes, short enough to retry one whose replica died.
const LEASE: TimeDelta = TimeDelta::seconds(60);

/// Most events one retry run takes.
const RETRY_BATCH: u64 = 50;

/// Why an event was refused before it was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such provider here, or it takes no webhooks (no secret configured).
    UnknownProvider,
    /// The signature header is missing, malformed or wrong, or its timestamp
    /// is outside the tolerance.
    BadSignature(&'static str),
    /// The body is not an event.
    Malformed(&'static str),
}

/// What became of an accepted event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Recorded now; `processed` says whether applying it succeeded (if not,
    /// the retry job tries again).
    Recorded { processed: bool },
    /// Recorded before: nothing changed.
    Duplicate,
}

type HmacSha256 = Hmac<Sha256>;

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Checks a `Stripe-Signature` header over `payload` against `secrets`.
///
/// # Errors
/// [`Refusal::BadSignature`] when the header has no timestamp or no `v1`
/// signature, the timestamp is further than `tolerance` from `now`, or no
/// signature matches any secret.
pub fn verify_signature(
    header: &str,
    payload: &[u8],
    secrets: &[String],
    now: DateTime<Utc>,
    tolerance: TimeDelta,
) -> Result<(), Refusal> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        match item.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", signature)) => signatures.extend(unhex(signature)),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(Refusal::BadSignature("no timestamp"))?;
    if signatures.is_empty() {
        return Err(Refusal::BadSignature("no v1 signature"));
    }
    let age = now.timestamp().saturating_sub(timestamp);
    if age.saturating_abs() > tolerance.num_seconds() {
        return Err(Refusal::BadSignature("timestamp outside the tolerance"));
    }
    let signed_prefix = format!("{timestamp}.");
    for secret in secrets {
        for signature in &signatures {
            let Ok(mut mac) = <HmacSha256 as hmac::KeyInit>::new_from_slice(secret.as_bytes())
            else {
                continue;
            };
            mac.update(signed_prefix.as_bytes());
            mac.update(payload);
            // `verify_slice` compares in constant time.
            if mac.verify_slice(signature).is_ok() {
                return Ok(());
            }
        }
    }
    Err(Refusal::BadSignature("no signature matches"))
}

/// The signature header a provider would send for `payload` at `timestamp`
/// (tests and the demo sign test webhooks with it).
pub fn sign(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let mut mac = <HmacSha256 as hmac::KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(payload);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={timestamp},v1={hex}")
}

/// Checks, records and applies one webhook delivery.
///
/// # Errors
/// `Ok(Err(refusal))` for an event refused before it was recorded;
/// `Err` on database errors while recording it (the provider delivers again).
pub async fn receive(
    services: &ServiceContext,
    provider: &str,
    signature: Option<&str>,
    body: &[u8],
) -> Result<Result<Received, Refusal>, AppError> {
    let Some(provider) = services
        .payments
        .get(provider)
        .filter(|p| !p.webhook_secrets().is_empty())
    else {
        return Ok(Err(Refusal::UnknownProvider));
    };
    let now = services.now();
    let Some(signature) = signature else {
        return Ok(Err(Refusal::BadSignature("no Stripe-Signature header")));
    };
    if let Err(refusal) = verify_signature(
        signature,
        body,
        provider.webhook_secrets(),
        now,
        services.payments.settings.webhook_tolerance(),
    ) {
        return Ok(Err(refusal));
    }
    let Ok(event) = serde_json::from_slice::<Value>(body) else {
        return Ok(Err(Refusal::Malformed("not JSON")));
    };
    let (Some(id), Some(kind)) = (event["id"].as_str(), event["type"].as_str()) else {
        return Ok(Err(Refusal::Malformed("an event has an id and a type")));
    };
    if id.is_empty() || id.len() > 200 || kind.len() > 100 {
        return Ok(Err(Refusal::Malformed("id or type too long")));
    }
    let object = &event["data"]["object"];
    let customer_id = object["customer"]
        .as_str()
        .map(|c| c.chars().take(200).collect::<String>());
    let row = payment_webhook_event::ActiveModel {
        provider: Set(provider.name().to_owned()),
        provider_event_id: Set(id.to_owned()),
        kind: Set(kind.to_owned()),
        livemode: Set(event["livemode"].as_bool().unwrap_or(false)),
        api_version: Set(event["api_version"]
            .as_str()
            .map(|v| v.chars().take(64).collect())),
        customer_id: Set(customer_id),
        payload: Set(String::from_utf8_lossy(body).into_owned()),
        processed: Set(false),
        processed_at: Set(None),
        attempts: Set(0),
        last_error: Set(None),
        // Applied right below; the retry job steps in only if that never ends.
        next_attempt_at: Set(now + LEASE),
        order_payment_id: Set(None),
        event_id: Set(None),
        created_at: Set(now),
        ..Default::default()
    };
    // Counted rows, not a returned id: a conflict then reads the same on
    // SQLite and PostgreSQL (no row inserted).
    let inserted = payment_webhook_event::Entity::insert(row)
        .on_conflict_do_nothing_on([
            payment_webhook_event::Column::Provider,
            payment_webhook_event::Column::ProviderEventId,
        ])
        .exec_without_returning(&services.db)
        .await?;
    if !matches!(inserted, TryInsertResult::Inserted(rows) if rows > 0) {
        return Ok(Ok(Received::Duplicate));
    }
    let webhook_id = payment_webhook_event::Entity::find()
        .filter(payment_webhook_event::Column::Provider.eq(provider.name()))
        .filter(payment_webhook_event::Column::ProviderEventId.eq(id))
        .one(&services.db)
        .await?
        .ok_or(AppError::not_found("webhook event"))?
        .id;
    let processed = process(services, webhook_id).await?;
    Ok(Ok(Received::Recorded { processed }))
}

/// Applies a recorded event unless it was applied already; true once it is.
/// A failure is stored (on the event, and as a failure row) and scheduled
/// for a retry.
///
/// # Errors
/// On database errors while storing the failure.
pub async fn process(services: &ServiceContext, webhook_id: i32) -> Result<bool, AppError> {
    let now = services.now();
    let txn = services.db.begin().await?;
    let claimed = payment_webhook_event::Entity::update_many()
        .col_expr(payment_webhook_event::Column::Processed, Expr::value(true))
        .col_expr(
            payment_webhook_event::Column::ProcessedAt,
            Expr::value(Some(now)),
        )
        .col_expr(
            payment_webhook_event::Column::Attempts,
            Expr::col(payment_webhook_event::Column::Attempts).add(1),
        )
        .col_expr(
            payment_webhook_event::Column::LastError,
            Expr::value(Option::<String>::None),
        )
        .filter(payment_webhook_event::Column::Id.eq(webhook_id))
        .filter(payment_webhook_event::Column::Processed.eq(false))
        .exec(&txn)
        .await?;
    if claimed.rows_affected != 1 {
        return Ok(true);
    }
    let row = payment_webhook_event::Entity::find_by_id(webhook_id)
        .one(&txn)
        .await?
        .ok_or(AppError::not_found("webhook event"))?;
    match apply_event(&txn, now, &row).await {
        Ok(about) => {
            if let Some((payment_id, event_id)) = about {
                payment_webhook_event::Entity::update_many()
                    .col_expr(
                        payment_webhook_event::Column::OrderPaymentId,
                        Expr::value(Some(payment_id)),
                    )
                    .col_expr(
                        payment_webhook_event::Column::EventId,
                        Expr::value(Some(event_id)),
                    )
                    .filter(payment_webhook_event::Column::Id.eq(webhook_id))
                    .exec(&txn)
                    .await?;
            }
            txn.commit().await?;
            // A paid order moves its quota units from ORDERED to GONE.
            if let Some((_, event_id)) = about {
                crate::ticketing::live::announce(services, [event_id]).await;
            }
            Ok(true)
        }
        Err(error) => {
            txn.rollback().await?;
            record_failure(services, now, &row, &error).await?;
            Ok(false)
        }
    }
}

/// What the team reads of a failure: the refusal's reason and message, or
/// only that it was internal (the cause is logged, never stored or shown).
fn failure_message(error: &AppError) -> String {
    match error {
        AppError::Internal(cause) => {
            tracing::error!(
                error = format!("{cause:#}"),
                "applying a webhook event failed"
            );
            "internal error".to_owned()
        }
        other => match other.reason() {
            Some(reason) => format!("{}: {}", reason.as_str(), other.message()),
            None => other.message(),
        },
    }
}

async fn record_failure(
    services: &ServiceContext,
    now: DateTime<Utc>,
    row: &payment_webhook_event::Model,
    error: &AppError,
) -> Result<(), AppError> {
    let message = failure_message(error);
    // `row.attempts` counts the failed try: the claim incremented it.
    let attempts = row.attempts;
    // The team of the payment's event sees the failure, when the payment is known.
    let payment = match payment_named(row) {
        Some(id) => outcomes::by_provider_id(&services.db, &row.provider, &id).await?,
        None => None,
    };
    let event_id = match &payment {
        Some(p) => crate::entities::order::Entity::find_by_id(p.order_id)
            .one(&services.db)
            .await?
            .map(|o| o.event_id),
        None => None,
    };
    let txn = services.db.begin().await?;
    payment_webhook_event::Entity::update_many()
        .col_expr(
            payment_webhook_event::Column::OrderPaymentId,
            Expr::value(payment.as_ref().map(|p| p.id)),
        )
        .col_expr(
            payment_webhook_event::Column::EventId,
            Expr::value(event_id),
        )
        .col_expr(
            payment_webhook_event::Column::Attempts,
            Expr::value(attempts),
        )
        .col_expr(
            payment_webhook_event::Column::LastError,
            Expr::value(Some(message.clone())),
        )
        .col_expr(
            payment_webhook_event::Column::NextAttemptAt,
            Expr::value(now + services.payments.settings.retry_after(attempts)),
        )
        .filter(payment_webhook_event::Column::Id.eq(row.id))
        .filter(payment_webhook_event::Column::Processed.eq(false))
        .exec(&txn)
        .await?;
    payment_webhook_failure::ActiveModel {
        webhook_event_id: Set(row.id),
        message: Set(message),
        data: Set(json!({ "attempt": attempts, "type": row.kind }).to_string()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(())
}

/// The provider's id of the payment an event is about, if it names one.
fn payment_named(row: &payment_webhook_event::Model) -> Option<String> {
    let event: Value = serde_json::from_str(&row.payload).ok()?;
    let object = &event["data"]["object"];
    let id = if row.kind == "charge.refunded" {
        object["payment_intent"].as_str()
    } else {
        object["id"]
            .as_str()
            .filter(|_| intent_outcome(&row.kind).is_some())
    };
    id.map(str::to_owned)
}

/// A payment intent event's outcome, by its type.
fn intent_outcome(kind: &str) -> Option<Outcome> {
    match kind {
        "payment_intent.succeeded" => Some(Outcome::Succeeded),
        "payment_intent.payment_failed" => Some(Outcome::Failed),
        "payment_intent.canceled" => Some(Outcome::Canceled),
        "payment_intent.processing" | "payment_intent.requires_action" => Some(Outcome::Pending),
        _ => None,
    }
}

/// Applies an event in `txn`; the payment and ticketing event it was about,
/// if any. Types it does not act on are recorded and left alone.
async fn apply_event(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    row: &payment_webhook_event::Model,
) -> Result<Option<(i32, i32)>, AppError> {
    let event: Value = serde_json::from_str(&row.payload)
        .map_err(|_| AppError::bad_input("payload", "not JSON"))?;
    let object = &event["data"]["object"];
    let known_payment = |id: Option<&str>| {
        let id = id.map(str::to_owned);
        async move {
            let id = id.ok_or_else(|| {
                AppError::bad_input("payload", "the event names no payment intent")
            })?;
            outcomes::by_provider_id(txn, &row.provider, &id)
                .await?
                .ok_or_else(|| {
                    AppError::Conflict(format!("no payment is known by the provider id {id}"))
                })
        }
    };
    if let Some(outcome) = intent_outcome(&row.kind) {
        let payment = known_payment(object["id"].as_str()).await?;
        let report = Report {
            outcome,
            state: object["status"].as_str().map(str::to_owned),
            charge_id: object["latest_charge"].as_str().map(str::to_owned),
        };
        let applied = outcomes::apply(txn, None, now, payment.id, &report).await?;
        return Ok(Some((payment.id, applied.order.event_id)));
    }
    if row.kind == "charge.refunded" {
        let payment = known_payment(object["payment_intent"].as_str()).await?;
        let refunded = object["amount_refunded"]
            .as_i64()
            .ok_or_else(|| AppError::bad_input("payload", "a refund without amount_refunded"))?;
        let applied =
            outcomes::apply_refund(txn, now, payment.id, object["id"].as_str(), refunded).await?;
        return Ok(Some((payment.id, applied.order.event_id)));
    }
    Ok(None)
}

/// The webhook events about an event's payments (team permission
/// `ViewOrders`), or, for staff and without an event, every event received
/// (those about no known payment included); oldest first, only those not
/// applied yet with `unprocessed_only`.
///
/// # Errors
/// As [`crate::ticketing::access::on_event`]; without an event, `FORBIDDEN`
/// to all but staff.
pub async fn of_event(
    db: &impl ConnectionTrait,
    principal: &crate::auth::Principal,
    event_id: Option<i32>,
    unprocessed_only: bool,
    page: crate::pagination::PageRequest,
) -> Result<crate::pagination::Page<payment_webhook_event::Model>, AppError> {
    let mut query = payment_webhook_event::Entity::find();
    match event_id {
        Some(event_id) => {
            crate::ticketing::access::on_event(
                db,
                principal,
                crate::auth::TeamPermission::ViewOrders,
                event_id,
            )
            .await?;
            query = query.filter(payment_webhook_event::Column::EventId.eq(event_id));
        }
        None => {
            if !principal.person()?.is_staff_member() {
                return Err(AppError::Forbidden);
            }
        }
    }
    if unprocessed_only {
        query = query.filter(payment_webhook_event::Column::Processed.eq(false));
    }
    crate::db::page_by_id(db, query, payment_webhook_event::Column::Id, page).await
}

/// The failed tries at applying a webhook event, oldest first.
///
/// # Errors
/// On database errors.
pub async fn failures_of(
    db: &impl ConnectionTrait,
    webhook_id: i32,
) -> Result<Vec<payment_webhook_failure::Model>, AppError> {
    Ok(payment_webhook_failure::Entity::find()
        .filter(payment_webhook_failure::Column::WebhookEventId.eq(webhook_id))
        .order_by_asc(payment_webhook_failure::Column::Id)
        .all(db)
        .await?)
}

/// Retries webhook events whose application failed, with backoff.
pub struct RetryWebhookEvents;

#[async_trait]
impl Job for RetryWebhookEvents {
    fn name(&self) -> &'static str {
        "retry_payment_webhook_events"
    }

    fn every(&self) -> TimeDelta {
        TimeDelta::seconds(2)
    }

    async fn run(&self, services: &ServiceContext) -> anyhow::Result<()> {
        let now = services.now();
        let due = payment_webhook_event::Entity::find()
            .filter(payment_webhook_event::Column::Processed.eq(false))
            .filter(
                payment_webhook_event::Column::Attempts
                    .lt(services.payments.settings.max_attempts()),
            )
            .filter(payment_webhook_event::Column::NextAttemptAt.lte(now))
            .order_by_asc(payment_webhook_event::Column::NextAttemptAt)
            .limit(RETRY_BATCH)
            .all(&services.db)
            .await
            .context("reading webhook events due for a retry")?;
        for row in due {
            // One replica takes each retry: the one whose UPDATE moved it.
            let leased = payment_webhook_event::Entity::update_many()
                .col_expr(
                    payment_webhook_event::Column::NextAttemptAt,
                    Expr::value(now + LEASE),
                )
                .filter(payment_webhook_event::Column::Id.eq(row.id))
                .filter(payment_webhook_event::Column::Processed.eq(false))
                .filter(payment_webhook_event::Column::NextAttemptAt.lte(now))
                .exec(&services.db)
                .await
                .context("leasing a webhook event")?;
            if leased.rows_affected == 1 {
                let processed = process(services, row.id)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e:?}"))
                    .context("retrying a webhook event")?;
                tracing::info!(
                    event = row.provider_event_id,
                    processed,
                    "payment webhook event retried"
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap_or_default()
    }

    #[test]
    fn a_signature_made_with_the_secret_is_accepted_within_the_tolerance() {
        let body = br#"{"id":"evt_1"}"#;
        let header = sign(SECRET, 1_000, body);
        let secrets = [SECRET.to_owned()];
        let tolerance = TimeDelta::seconds(300);
        assert_eq!(
            verify_signature(&header, body, &secrets, at(1_200), tolerance),
            Ok(())
        );
        assert_eq!(
            verify_signature(&header, body, &secrets, at(1_301), tolerance),
            Err(Refusal::BadSignature("timestamp outside the tolerance"))
        );
        assert_eq!(
            verify_signature(&header, b"{}", &secrets, at(1_000), tolerance),
            Err(Refusal::BadSignature("no signature matches"))
        );
    }

    #[test]
    fn any_of_several_signatures_and_secrets_may_match() {
        let body = b"{}";
        let good = sign(SECRET, 50, body);
        let v1 = good.split_once(",v1=").map(|(_, v)| v).unwrap_or_default();
        let header = format!("t=50,v1={},v0=zz,v1={v1}", "ab".repeat(32));
        let secrets = ["whsec_old".to_owned(), SECRET.to_owned()];
        assert_eq!(
            verify_signature(&header, body, &secrets, at(60), TimeDelta::seconds(300)),
            Ok(())
        );
        assert!(
            verify_signature("v1=00", body, &secrets, at(60), TimeDelta::seconds(300)).is_err()
        );
        assert!(verify_signature("t=50", body, &secrets, at(60), TimeDelta::seconds(300)).is_err());
    }
}
