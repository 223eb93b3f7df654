//! Alert notifications through the notification outbox: a new alert is
//! queued for the technicians assigned to its station (active assignments,
//! observers included) and for staff; an open alert seen again is queued
//! once more when the re-notification interval has passed since the last
//! notification (`NotificationPolicy`). "Seen again" is counted
//! (`notification_count` past `notified_count`), never read from the
//! device's clock.
//!
//! The [`NotifyAlerts`] job claims due alerts (`jobs::claim_batch`) and moves
//! each one's `notified_at` by a conditional `UPDATE` that applies only if
//! nobody notified it since it was read, in the transaction that queues its
//! messages: replicas racing on one alert queue its messages once.

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};

use super::alerts::severities_from;
use crate::charging::outbox::{self, template};
use crate::entities::{AlertSeverity, alert, station_assignment, user};

/// When alerts are notified (configuration, `settings::SupervisionSettings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotificationPolicy {
    /// Alerts below this severity are never notified.
    pub min_severity: AlertSeverity,
    /// An open alert seen again is notified again once this long has passed
    /// since its last notification; `None` notifies each alert once.
    pub renotify_after: Option<TimeDelta>,
}

/// How many alerts one transaction notifies.
const BATCH: u64 = 50;

/// Queues the notifications of the alerts due at `now`, one batch per
/// transaction; returns how many alerts were notified.
///
/// # Errors
/// Database failures (the batch's transaction is then dropped whole).
pub async fn notify_due(
    db: &DatabaseConnection,
    policy: NotificationPolicy,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let mut notified = 0;
    loop {
        let (claimed, sent) = notify_batch(db, policy, now).await?;
        notified += sent;
        if claimed < BATCH {
            return Ok(notified);
        }
    }
}

async fn notify_batch(
    db: &DatabaseConnection,
    policy: NotificationPolicy,
    now: DateTime<Utc>,
) -> Result<(u64, u64), DbErr> {
    let mut due = Condition::any().add(alert::Column::NotifiedAt.is_null());
    if let Some(after) = policy.renotify_after {
        // Seen again since the last notification: counted, not compared with
        // `last_seen`, which is the device's clock.
        due = due.add(
            Condition::all()
                .add(alert::Column::NotifiedAt.lte(now - after))
                .add(
                    Expr::col(alert::Column::NotificationCount)
                        .gt(Expr::col(alert::Column::NotifiedCount)),
                ),
        );
    }
    let txn = db.begin().await?;
    let alerts = crate::jobs::claim_batch(
        &txn,
        alert::Entity::find()
            .filter(alert::Column::OpenKey.is_not_null())
            .filter(alert::Column::Severity.is_in(severities_from(policy.min_severity)))
            .filter(due)
            .order_by_asc(alert::Column::Id),
        BATCH,
    )
    .await?;
    let claimed = alerts.len() as u64;
    let staff = staff_members(&txn).await?;
    let mut sent = 0;
    for alert in alerts {
        let mut moved = alert::Entity::update_many()
            .col_expr(alert::Column::NotifiedAt, Expr::value(now))
            .col_expr(
                alert::Column::NotifiedCount,
                Expr::col(alert::Column::NotificationCount),
            )
            .filter(alert::Column::Id.eq(alert.id));
        moved = match alert.notified_at {
            Some(at) => moved.filter(alert::Column::NotifiedAt.eq(at)),
            None => moved.filter(alert::Column::NotifiedAt.is_null()),
        };
        if moved.exec(&txn).await?.rows_affected != 1 {
            continue;
        }
        let template = if alert.notified_at.is_none() {
            template::ALERT_RAISED
        } else {
            template::ALERT_REPEATED
        };
        let data = serde_json::json!({
            "alert_id": alert.id,
            "kind": alert.kind,
            "severity": alert.severity,
            "message": alert.message,
            "station_id": alert.station_id,
            "bay_id": alert.bay_id,
            "seen": alert.notification_count,
            "last_seen": alert.last_seen,
        });
        let mut recipients = technicians_of(&txn, alert.station_id).await?;
        recipients.extend(staff.iter().copied());
        recipients.sort_unstable();
        recipients.dedup();
        for user_id in recipients {
            outbox::queue(&txn, user_id, template, &data)
                .await
                .map_err(|err| DbErr::Custom(format!("queueing an alert notification: {err:?}")))?;
        }
        sent += 1;
    }
    txn.commit().await?;
    Ok((claimed, sent))
}

/// Active accounts with staff access.
async fn staff_members(db: &impl ConnectionTrait) -> Result<Vec<i32>, DbErr> {
    user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::IsActive.eq(true))
        .filter(
            Condition::any()
                .add(user::Column::IsStaff.eq(true))
                .add(user::Column::IsSuperuser.eq(true)),
        )
        .into_tuple()
        .all(db)
        .await
}

/// The technicians actively assigned to `station_id`.
async fn technicians_of(db: &impl ConnectionTrait, station_id: i32) -> Result<Vec<i32>, DbErr> {
    station_assignment::Entity::find()
        .select_only()
        .column(station_assignment::Column::UserId)
        .filter(station_assignment::Column::StationId.eq(station_id))
        .filter(station_assignment::Column::IsActive.eq(true))
        .into_tuple()
        .all(db)
        .await
}

/// Notifies due alerts.
pub struct NotifyAlerts;

#[async_trait::async_trait]
impl crate::jobs::Job for NotifyAlerts {
    fn name(&self) -> &'static str {
        "notify_alerts"
    }

    fn every(&self) -> TimeDelta {
        TimeDelta::seconds(1)
    }

    async fn run(&self, services: &crate::services::ServiceContext) -> anyhow::Result<()> {
        let policy = services.supervision.notification_policy();
        notify_due(&services.db, policy, services.now()).await?;
        Ok(())
    }
}
