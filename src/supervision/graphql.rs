//! GraphQL of supervision: alerts (list, take in charge, resolve, close), the
//! live `alertChanged` stream, and supervision's dashboard figure.
//!
//! Only staff and technicians reach any of it, and a technician only the
//! alerts of their assigned stations: lists go through
//! `alert::Entity::visible_to`, and the stream filters every event by the
//! subscriber's station scope (subscription groups never mix principals).

use async_graphql::{Context, Enum, ID, Object, Result, Subscription};
use futures_util::{Stream, StreamExt as _};

use super::alerts::{self, AlertFilter};
use crate::auth::Scope;
use crate::auth::guards::principal;
use crate::bus::{AlertChange, DomainEvent, Topic};
use crate::entities::{self, RoleName, alert};
use crate::error::{AppError, Reason};
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{IdConnection, connection, page_request};
use crate::graphql::scalars::DateTime;
use crate::realtime::follow::follow;
use crate::services::services;

impl Kind {
    pub const ALERT: Self = Self::named("Alert");
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entities::AlertSeverity")]
pub enum AlertSeverity {
    Low,
    Medium,
    High,
    Critical,
}

/// `NEW` when raised, `ACTIVE` once its condition is seen again, `IN_PROGRESS`
/// when taken in charge, `RESOLVED`, then `CLOSED` by staff.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entities::AlertStatus")]
pub enum AlertStatus {
    New,
    Active,
    InProgress,
    Resolved,
    Closed,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entities::AlertKind")]
pub enum AlertKind {
    OverTemperature,
    Smoke,
    OverCurrent,
    VoltageOutOfRange,
    DeviceOffline,
    CommandFailed,
    LockBlocked,
    SessionError,
    MacMismatch,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::bus::AlertChange")]
pub enum AlertChangeKind {
    Raised,
    /// Its condition was seen again.
    Updated,
    Acknowledged,
    Resolved,
    Closed,
}

/// An operational alert of a station.
pub struct Alert(pub alert::Model);

#[Object]
impl Alert {
    async fn id(&self) -> ID {
        ids::encode(Kind::ALERT, self.0.id)
    }
    async fn kind(&self) -> AlertKind {
        self.0.kind.into()
    }
    async fn severity(&self) -> AlertSeverity {
        self.0.severity.into()
    }
    async fn status(&self) -> AlertStatus {
        self.0.status.into()
    }
    /// Raised by every announced change of this alert: of two states of one
    /// alert, the one with the higher revision is the later. A client that
    /// fetched it (after `CURSOR_EXPIRED`, say) ignores events with a lower
    /// revision than what it fetched.
    async fn revision(&self) -> i64 {
        self.0.revision
    }
    async fn message(&self) -> &str {
        &self.0.message
    }
    async fn station_id(&self) -> ID {
        ids::encode(Kind::STATION, self.0.station_id)
    }
    async fn bay_id(&self) -> Option<ID> {
        self.0.bay_id.map(|id| ids::encode(Kind::BAY, id))
    }
    async fn device_id(&self) -> Option<ID> {
        self.0.device_id.map(|id| ids::encode(Kind::DEVICE, id))
    }
    /// The charging session it is about (`SESSION_ERROR`: the latest failed one).
    async fn session_id(&self) -> Option<ID> {
        self.0
            .session_id
            .map(|id| ids::encode(Kind::CHARGING_SESSION, id))
    }
    /// When it was raised.
    async fn raised_at(&self) -> DateTime {
        self.0.raised_at.into()
    }
    async fn first_seen(&self) -> DateTime {
        self.0.first_seen.into()
    }
    /// When its condition was last seen (device time).
    async fn last_seen(&self) -> DateTime {
        self.0.last_seen.into()
    }
    /// How many times its condition was seen while it was open.
    async fn notification_count(&self) -> i32 {
        self.0.notification_count
    }
    async fn notified_at(&self) -> Option<DateTime> {
        self.0.notified_at.map(Into::into)
    }
    async fn assigned_technician_id(&self) -> Option<ID> {
        self.0
            .assigned_technician_id
            .map(|id| ids::encode(Kind::USER, id))
    }
    async fn acknowledged_by_id(&self) -> Option<ID> {
        self.0
            .acknowledged_by_id
            .map(|id| ids::encode(Kind::USER, id))
    }
    async fn acknowledged_at(&self) -> Option<DateTime> {
        self.0.acknowledged_at.map(Into::into)
    }
    async fn resolved_by_id(&self) -> Option<ID> {
        self.0.resolved_by_id.map(|id| ids::encode(Kind::USER, id))
    }
    async fn resolved_at(&self) -> Option<DateTime> {
        self.0.resolved_at.map(Into::into)
    }
    async fn resolution_note(&self) -> Option<&str> {
        self.0.resolution_note.as_deref()
    }
}

/// A change of an alert, live.
pub struct AlertChangeEvent {
    alert: alert::Model,
    change: AlertChange,
    cursor: String,
}

#[Object(name = "AlertChange")]
impl AlertChangeEvent {
    /// This change's place in the stream; resubscribe with `after` set to it.
    async fn cursor(&self) -> &str {
        &self.cursor
    }
    async fn change(&self) -> AlertChangeKind {
        self.change.into()
    }
    async fn alert(&self) -> Alert {
        Alert(self.alert.clone())
    }
}

#[derive(Default)]
pub struct AlertQuery;

#[Object]
impl AlertQuery {
    /// Alerts of the stations the caller supervises (staff: all; technicians:
    /// their assigned stations), newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity + 1")]
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        station_id: Option<ID>,
        statuses: Option<Vec<AlertStatus>>,
        min_severity: Option<AlertSeverity>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<IdConnection<Alert>> {
        let principal = principal(ctx);
        principal.require(RoleName::Technician)?;
        let page = page_request(first, after.as_deref())?;
        let filter = AlertFilter {
            station_id: ids::decode_opt(station_id.as_ref(), Kind::STATION, "stationId")?,
            statuses: statuses
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            min_severity: min_severity.map(Into::into),
        };
        let rows = alerts::list(&services(ctx)?.db, principal, &filter, page).await?;
        Ok(connection(page, rows, |row| row.id, Alert))
    }

    /// One alert the caller supervises; null otherwise.
    async fn alert(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Alert>> {
        let principal = principal(ctx);
        principal.require(RoleName::Technician)?;
        let id = ids::decode(&id, Kind::ALERT, "id")?;
        match alerts::get(&services(ctx)?.db, principal, id).await {
            Ok(found) => Ok(Some(Alert(found))),
            Err(crate::error::AppError::NotFound { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }
}

#[derive(Default)]
pub struct AlertMutation;

#[Object]
impl AlertMutation {
    /// Takes an alert in charge (`IN_PROGRESS`), acknowledged by the caller.
    async fn acknowledge_alert(&self, ctx: &Context<'_>, id: ID) -> Result<Alert> {
        let principal = principal(ctx);
        let person = principal.require(RoleName::Technician)?;
        let services = services(ctx)?;
        let id = ids::decode(&id, Kind::ALERT, "id")?;
        let updated =
            alerts::acknowledge(&services.db, principal, id, person.id, services.now()).await?;
        publish(services, &updated, AlertChange::Acknowledged).await;
        Ok(Alert(updated))
    }

    /// Resolves an open alert, with a note of what was done.
    async fn resolve_alert(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(validator(max_length = 2000))] note: Option<String>,
    ) -> Result<Alert> {
        let principal = principal(ctx);
        let person = principal.require(RoleName::Technician)?;
        let services = services(ctx)?;
        let id = ids::decode(&id, Kind::ALERT, "id")?;
        let updated =
            alerts::resolve(&services.db, principal, id, person.id, note, services.now()).await?;
        publish(services, &updated, AlertChange::Resolved).await;
        Ok(Alert(updated))
    }

    /// Closes a resolved alert (staff).
    async fn close_alert(&self, ctx: &Context<'_>, id: ID) -> Result<Alert> {
        let principal = principal(ctx);
        principal.staff()?;
        let services = services(ctx)?;
        let id = ids::decode(&id, Kind::ALERT, "id")?;
        let updated = alerts::close(&services.db, principal, id).await?;
        publish(services, &updated, AlertChange::Closed).await;
        Ok(Alert(updated))
    }
}

/// Announces a change that is already stored; a bus failure is logged, the
/// change stands.
async fn publish(
    services: &crate::services::ServiceContext,
    alert: &alert::Model,
    change: AlertChange,
) {
    let event = DomainEvent::AlertChanged(crate::bus::AlertChanged {
        alert: alert.clone(),
        change,
    });
    if let Err(err) = services.bus.publish(event).await {
        tracing::error!(
            error = format!("{err:#}"),
            "alert change stored but not published"
        );
    }
}

#[derive(Default)]
pub struct AlertSubscription;

#[Subscription]
impl AlertSubscription {
    /// Alerts raised, seen again, taken in charge, resolved and closed, live,
    /// in the stations the caller supervises; narrowed to `stationIds` and to
    /// `minSeverity` and above. With `after` (the last `cursor` received), the
    /// changes missed since come first.
    async fn alert_changed(
        &self,
        ctx: &Context<'_>,
        station_ids: Option<Vec<ID>>,
        min_severity: Option<AlertSeverity>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<AlertChangeEvent>> + use<>> {
        let principal = principal(ctx);
        let person = principal.require(RoleName::Technician)?.id;
        let scope = principal.stations();
        let wanted: Option<Vec<i32>> = station_ids
            .map(|ids| {
                ids.iter()
                    .map(|id| ids::decode(id, Kind::STATION, "stationIds"))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let severities =
            alerts::severities_from(min_severity.map_or(entities::AlertSeverity::Low, Into::into));
        let steps = follow(services(ctx)?.bus.as_ref(), Topic::Alerts, after.as_deref()).await?;
        Ok(steps.filter_map(move |step| {
            let item = match step {
                Err(lagging) => Some(Err(lagging.into())),
                Ok(step) => match &step.event.envelope.event {
                    DomainEvent::AlertChanged(changed)
                        if scope.allows(changed.alert.station_id)
                            && wanted
                                .as_ref()
                                .is_none_or(|w| w.contains(&changed.alert.station_id))
                            && severities.contains(&changed.alert.severity) =>
                    {
                        Some(Ok(AlertChangeEvent {
                            alert: changed.alert.clone(),
                            change: changed.change,
                            cursor: step.cursor,
                        }))
                    }
                    // Staff see every station whatever their assignments.
                    DomainEvent::AssignmentChanged(changed)
                        if changed.revoked
                            && changed.user_id == person
                            && scope != Scope::All
                            && scope.allows(changed.station_id) =>
                    {
                        Some(Err(AppError::refused(
                            Reason::AssignmentRevoked,
                            "your assignment to a station of this subscription was removed; subscribe again",
                        )
                        .into()))
                    }
                    _ => None,
                },
            };
            async move { item }
        })
        // A revocation is the stream's last item.
        .scan(false, |ended, item| {
            let next = (!*ended).then(|| {
                *ended = item.is_err();
                item
            });
            async move { next }
        }))
    }
}

/// Supervision's figure on the administration dashboard.
#[derive(Default)]
pub struct SupervisionFigures;

#[Object]
impl SupervisionFigures {
    /// Alerts still open (new, active or in progress).
    async fn open_alerts(&self, ctx: &Context<'_>) -> Result<u64> {
        Ok(alerts::count_open(&services(ctx)?.db, principal(ctx)).await?)
    }
}
