//! Raising, refreshing and ending alerts.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{
    ActiveEnum as _, ActiveValue::NotSet, ColumnTrait, ConnectionTrait, EntityTrait, Iterable as _,
    PaginatorTrait, QueryFilter, QuerySelect, Set,
};

use crate::auth::Principal;
use crate::db::FindOr as _;
use crate::entities::{AlertKind, AlertSeverity, AlertStatus, alert};
use crate::error::{AppError, AppResult, Reason};
use crate::pagination::{Page, PageRequest};

/// What an alert is about: where, and what raised it.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub kind: AlertKind,
    pub severity: AlertSeverity,
    pub message: String,
    pub station_id: i32,
    pub bay_id: Option<i32>,
    pub device_id: Option<i32>,
    pub reading_id: Option<i32>,
    /// The charging session it is about, if one.
    pub session_id: Option<i32>,
}

impl Condition {
    /// The open alert's identity: one open alert per subject and kind.
    pub(crate) fn open_key(&self) -> String {
        let subject = match (self.device_id, self.bay_id) {
            (Some(device), _) => format!("device{device}"),
            (None, Some(bay)) => format!("bay{bay}"),
            (None, None) => format!("station{}", self.station_id),
        };
        // The kind as stored: one name for a kind, kept by its enum.
        format!("{subject}:{}", self.kind.to_value())
    }
}

pub use crate::bus::AlertChange as Change;

/// For each of `conditions`, whether its alert is open: one query, however
/// many, so a batch of reports that end nothing (nearly all) costs one
/// statement in all instead of one each.
///
/// # Errors
/// Database failures.
pub async fn open_among(
    db: &impl ConnectionTrait,
    conditions: &[Condition],
) -> Result<Vec<bool>, sea_orm::DbErr> {
    if conditions.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = conditions.iter().map(Condition::open_key).collect();
    let open: std::collections::HashSet<String> = alert::Entity::find()
        .select_only()
        .column(alert::Column::OpenKey)
        .filter(alert::Column::OpenKey.is_in(keys.iter().cloned()))
        .into_tuple::<Option<String>>()
        .all(db)
        .await?
        .into_iter()
        .flatten()
        .collect();
    Ok(keys.iter().map(|key| open.contains(key)).collect())
}

/// Raises the alert of `condition`, or refreshes the open one: `last_seen`
/// moves on, `notification_count` grows, a `NEW` alert becomes `ACTIVE`.
/// One statement (an upsert on the open condition), so replicas seeing the
/// condition at once still leave one open alert.
///
/// # Errors
/// Database failures.
pub async fn raise(
    db: &impl ConnectionTrait,
    condition: &Condition,
    at: DateTime<Utc>,
) -> Result<(alert::Model, Change), sea_orm::DbErr> {
    let key = condition.open_key();
    let row = alert::ActiveModel {
        id: NotSet,
        kind: Set(condition.kind),
        severity: Set(condition.severity),
        status: Set(AlertStatus::New),
        message: Set(condition.message.clone()),
        station_id: Set(condition.station_id),
        bay_id: Set(condition.bay_id),
        device_id: Set(condition.device_id),
        reading_id: Set(condition.reading_id),
        session_id: Set(condition.session_id),
        raised_at: Set(at),
        first_seen: Set(at),
        last_seen: Set(at),
        notified_at: Set(None),
        notification_count: Set(1),
        notified_count: Set(0),
        assigned_technician_id: Set(None),
        acknowledged_by_id: Set(None),
        acknowledged_at: Set(None),
        resolved_by_id: Set(None),
        resolved_at: Set(None),
        resolution_note: Set(None),
        open_key: Set(Some(key.clone())),
        revision: Set(1),
    };
    let seen_again = OnConflict::column(alert::Column::OpenKey)
        .update_columns([
            alert::Column::LastSeen,
            alert::Column::Message,
            alert::Column::ReadingId,
            alert::Column::SessionId,
        ])
        .value(
            alert::Column::NotificationCount,
            Expr::col((alert::Entity, alert::Column::NotificationCount)).add(1),
        )
        .value(alert::Column::Revision, alert::next_revision())
        .value(
            alert::Column::Status,
            Expr::case(
                Expr::col((alert::Entity, alert::Column::Status)).eq(Expr::value(AlertStatus::New)),
                Expr::value(AlertStatus::Active),
            )
            .finally(Expr::col((alert::Entity, alert::Column::Status))),
        )
        .to_owned();
    alert::Entity::insert(row)
        .on_conflict(seen_again)
        .exec_without_returning(db)
        .await?;
    let stored = alert::Entity::find()
        .filter(alert::Column::OpenKey.eq(key))
        .one(db)
        .await?
        .ok_or_else(|| sea_orm::DbErr::RecordNotFound("the alert just raised".into()))?;
    let change = if stored.notification_count == 1 {
        Change::Raised
    } else {
        Change::Updated
    };
    Ok((stored, change))
}

/// Ends the open alert of `condition`'s subject and kind, if there is one,
/// because its condition is over.
///
/// # Errors
/// Database failures.
pub async fn recover(
    db: &impl ConnectionTrait,
    condition: &Condition,
    at: DateTime<Utc>,
) -> Result<Option<alert::Model>, sea_orm::DbErr> {
    let key = condition.open_key();
    let Some(open) = alert::Entity::find()
        .filter(alert::Column::OpenKey.eq(key.clone()))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let ended = alert::Entity::update_many()
        .col_expr(alert::Column::Status, Expr::value(AlertStatus::Resolved))
        .col_expr(alert::Column::ResolvedAt, Expr::value(at))
        .col_expr(
            alert::Column::ResolutionNote,
            Expr::value("the condition ended by itself"),
        )
        .col_expr(alert::Column::OpenKey, Expr::value(Option::<String>::None))
        .col_expr(alert::Column::Revision, alert::next_revision())
        .filter(alert::Column::Id.eq(open.id))
        .filter(alert::Column::OpenKey.eq(key))
        .exec(db)
        .await?;
    if ended.rows_affected == 0 {
        return Ok(None);
    }
    alert::Entity::find_by_id(open.id).one(db).await
}

/// What a report's verdict does to its alert within a batch: `Raise`
/// raises (or refreshes) it; `Recover` ends it when `open` holds it, read
/// for the batch beforehand. `open` (device, kind) is kept current, so a
/// later report of the batch ends an alert an earlier one raised.
/// `condition` builds the alert's condition from its kind, severity and
/// message.
///
/// # Errors
/// Database failures.
pub async fn follow_verdict(
    db: &impl ConnectionTrait,
    verdict: super::rules::Verdict,
    device_id: i32,
    condition: impl Fn(AlertKind, AlertSeverity, String) -> Condition,
    open: &mut std::collections::HashSet<(i32, AlertKind)>,
    at: DateTime<Utc>,
) -> Result<Option<(alert::Model, Change)>, sea_orm::DbErr> {
    use super::rules::Verdict;
    match verdict {
        Verdict::Raise {
            kind,
            severity,
            message,
        } => {
            open.insert((device_id, kind));
            raise(db, &condition(kind, severity, message), at)
                .await
                .map(Some)
        }
        Verdict::Recover(kind) if open.remove(&(device_id, kind)) => {
            let over = condition(kind, AlertSeverity::Low, String::new());
            Ok(recover(db, &over, at)
                .await?
                .map(|ended| (ended, Change::Resolved)))
        }
        Verdict::Recover(_) | Verdict::Nothing => Ok(None),
    }
}

/// Raises (or refreshes) the alert of `condition` while it `holds`, ends the
/// open one once it no longer does.
///
/// # Errors
/// Database failures.
pub async fn raise_or_recover(
    db: &impl ConnectionTrait,
    condition: &Condition,
    holds: bool,
    at: DateTime<Utc>,
) -> Result<Option<(alert::Model, Change)>, sea_orm::DbErr> {
    if holds {
        return raise(db, condition, at).await.map(Some);
    }
    Ok(recover(db, condition, at)
        .await?
        .map(|ended| (ended, Change::Resolved)))
}

/// The bus event of an alert's change, published after its commit.
pub fn event((alert, change): (alert::Model, Change)) -> crate::bus::DomainEvent {
    crate::bus::DomainEvent::AlertChanged(crate::bus::AlertChanged { alert, change })
}

/// One alert `principal` supervises.
///
/// # Errors
/// `NOT_FOUND` when it does not exist or is not theirs to see.
pub async fn get(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: i32,
) -> AppResult<alert::Model> {
    alert::Entity::visible_to(principal)
        .filter(alert::Column::Id.eq(id))
        .one_or_not_found(db, "alert")
        .await
}

/// Refuses an observer of the alert's station.
fn may_act(principal: &Principal, alert: &alert::Model) -> AppResult<()> {
    if principal.acting_stations().allows(alert.station_id) {
        Ok(())
    } else {
        Err(AppError::refused(
            Reason::ObserverOnly,
            "you observe this station: you cannot act on its alerts",
        ))
    }
}

/// A person takes an open alert in charge: `IN_PROGRESS`, acknowledged by
/// them, assigned to them unless it was assigned already.
///
/// # Errors
/// `NOT_FOUND` outside their stations; `FORBIDDEN` (`OBSERVER_ONLY`) where
/// they only observe; `INVALID_TRANSITION` unless it is `NEW` or `ACTIVE`.
pub async fn acknowledge(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: i32,
    by: i32,
    at: DateTime<Utc>,
) -> AppResult<alert::Model> {
    let current = get(db, principal, id).await?;
    may_act(principal, &current)?;
    let taken = alert::Entity::update_many()
        .col_expr(alert::Column::Status, Expr::value(AlertStatus::InProgress))
        .col_expr(alert::Column::AcknowledgedById, Expr::value(by))
        .col_expr(alert::Column::AcknowledgedAt, Expr::value(at))
        .col_expr(
            alert::Column::AssignedTechnicianId,
            Expr::value(current.assigned_technician_id.unwrap_or(by)),
        )
        .col_expr(alert::Column::Revision, alert::next_revision())
        .filter(alert::Column::Id.eq(id))
        .filter(alert::Column::Status.is_in([AlertStatus::New, AlertStatus::Active]))
        .exec(db)
        .await?;
    if taken.rows_affected == 0 {
        return Err(AppError::refused(
            Reason::InvalidTransition,
            "only a new or active alert can be taken in charge",
        ));
    }
    get(db, principal, id).await
}

/// A person resolves an open alert, with a note of what was done.
///
/// # Errors
/// `NOT_FOUND` outside their stations; `FORBIDDEN` (`OBSERVER_ONLY`) where
/// they only observe; `INVALID_TRANSITION` when it is not open.
pub async fn resolve(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: i32,
    by: i32,
    note: Option<String>,
    at: DateTime<Utc>,
) -> AppResult<alert::Model> {
    let current = get(db, principal, id).await?;
    may_act(principal, &current)?;
    let resolved = alert::Entity::update_many()
        .col_expr(alert::Column::Status, Expr::value(AlertStatus::Resolved))
        .col_expr(alert::Column::ResolvedById, Expr::value(by))
        .col_expr(alert::Column::ResolvedAt, Expr::value(at))
        .col_expr(alert::Column::ResolutionNote, Expr::value(note))
        .col_expr(alert::Column::OpenKey, Expr::value(Option::<String>::None))
        .col_expr(alert::Column::Revision, alert::next_revision())
        .filter(alert::Column::Id.eq(id))
        .filter(alert::Column::Status.is_in([
            AlertStatus::New,
            AlertStatus::Active,
            AlertStatus::InProgress,
        ]))
        .exec(db)
        .await?;
    if resolved.rows_affected == 0 {
        return Err(AppError::refused(
            Reason::InvalidTransition,
            "only an open alert can be resolved",
        ));
    }
    get(db, principal, id).await
}

/// Staff close a resolved alert.
///
/// # Errors
/// `NOT_FOUND`; `INVALID_TRANSITION` unless it is `RESOLVED`.
pub async fn close(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: i32,
) -> AppResult<alert::Model> {
    get(db, principal, id).await?;
    let closed = alert::Entity::update_many()
        .col_expr(alert::Column::Status, Expr::value(AlertStatus::Closed))
        .col_expr(alert::Column::Revision, alert::next_revision())
        .filter(alert::Column::Id.eq(id))
        .filter(alert::Column::Status.eq(AlertStatus::Resolved))
        .exec(db)
        .await?;
    if closed.rows_affected == 0 {
        return Err(AppError::refused(
            Reason::InvalidTransition,
            "only a resolved alert can be closed",
        ));
    }
    get(db, principal, id).await
}

/// Which alerts a list shows.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub station_id: Option<i32>,
    /// Only these statuses (all when empty).
    pub statuses: Vec<AlertStatus>,
    pub min_severity: Option<AlertSeverity>,
}

/// The alerts `principal` supervises, newest first.
///
/// # Errors
/// Database failures.
pub async fn list(
    db: &impl ConnectionTrait,
    principal: &Principal,
    filter: &AlertFilter,
    page: PageRequest,
) -> AppResult<Page<alert::Model>> {
    let mut query = alert::Entity::visible_to(principal);
    if let Some(station) = filter.station_id {
        query = query.filter(alert::Column::StationId.eq(station));
    }
    if !filter.statuses.is_empty() {
        query = query.filter(alert::Column::Status.is_in(filter.statuses.clone()));
    }
    if let Some(min) = filter.min_severity {
        query = query.filter(alert::Column::Severity.is_in(severities_from(min)));
    }
    crate::db::page_by_id_in(
        db,
        query,
        alert::Column::Id,
        crate::db::IdOrder::Descending,
        page,
    )
    .await
}

/// Severities at or above `min` (stored as text, so compared by membership).
pub fn severities_from(min: AlertSeverity) -> Vec<AlertSeverity> {
    AlertSeverity::iter().filter(|s| *s >= min).collect()
}

/// Open alerts in `principal`'s stations (the dashboards' figure).
///
/// # Errors
/// Database failures.
pub async fn count_open(db: &impl ConnectionTrait, principal: &Principal) -> AppResult<u64> {
    Ok(alert::Entity::visible_to(principal)
        .filter(alert::Column::OpenKey.is_not_null())
        .count(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveModelTrait as _, EntityTrait as _};

    use super::*;
    use crate::auth::principal::tests::person;
    use crate::entities::{RoleName, UserStatus, station, user};

    /// Every announced change of an alert raises its revision, so the bus
    /// can tell which of two announcements of it is the later.
    #[tokio::test]
    async fn each_change_of_an_alert_raises_its_revision() {
        let db = crate::db::testing::any_database().await;
        crate::seed::testing::one_cabinet(&db, 1).await;
        let station = station::Entity::find()
            .one(&db)
            .await
            .expect("query")
            .expect("a station");
        let now = Utc::now();
        let staff = user::ActiveModel {
            username: Set("staff".into()),
            email: Set("staff@example.test".into()),
            password_hash: Set(String::new()),
            status: Set(UserStatus::Active),
            is_active: Set(true),
            is_staff: Set(true),
            is_superuser: Set(false),
            failed_attempts: Set(0),
            date_joined: Set(now),
            full_name: Set("Staff".into()),
            locale: Set("en".into()),
            timezone: Set("UTC".into()),
            needs_password_change: Set(false),
            auth_backend: Set("native".into()),
            token_version: Set(0),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&db)
        .await
        .expect("a staff account");
        let principal = Principal::Person(person(staff.id, &[RoleName::Administrator], &[]));
        let condition = Condition {
            kind: AlertKind::Smoke,
            severity: AlertSeverity::Critical,
            message: "smoke".into(),
            station_id: station.id,
            bay_id: None,
            device_id: None,
            reading_id: None,
            session_id: None,
        };

        let (raised, _) = raise(&db, &condition, now).await.expect("raised");
        let (seen_again, _) = raise(&db, &condition, now).await.expect("raised");
        let taken = acknowledge(&db, &principal, raised.id, staff.id, now)
            .await
            .expect("taken in charge");
        let resolved = resolve(&db, &principal, raised.id, staff.id, None, now)
            .await
            .expect("resolved");
        let closed = close(&db, &principal, raised.id).await.expect("closed");
        let (again, _) = raise(&db, &condition, now).await.expect("raised");
        let ended = recover(&db, &condition, now)
            .await
            .expect("recovered")
            .expect("an open alert");
        assert_eq!(
            [&raised, &seen_again, &taken, &resolved, &closed].map(|a| a.revision),
            [1, 2, 3, 4, 5]
        );
        assert_ne!(again.id, raised.id, "a new alert once the first is closed");
        assert_eq!([again.revision, ended.revision], [1, 2]);
    }
}
