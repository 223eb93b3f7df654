//! GraphQL for the catalog and customers' reservations: nearest stations,
//! availability, creating, listing and cancelling reservations, and their
//! access credential.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};

use super::bay_status;
use super::catalog::{self, Availability};
use super::loaders::BayById;
use super::reservations::{self, AccessSecret, NewReservation, Period, micros_to_time};
use crate::auth::guards::principal;
use crate::entities::reservation;
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::loader;
use crate::graphql::pagination::{IdConnection, connection, page_request};
use crate::graphql::scalars::DateTime;
use crate::graphql::types::{Bay, Station};
use crate::services::services;

impl Kind {
    pub const RESERVATION: Self = Self::named("Reservation");
}

/// Lifecycle of a reservation.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "reservation::ReservationStatus")]
pub enum ReservationStatus {
    Pending,
    Confirmed,
    /// A charging session runs.
    Active,
    Cancelled,
    Completed,
}

/// How the customer opens the bay.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "reservation::AccessMode")]
pub enum AccessMode {
    /// One of the customer's RFID badges.
    Rfid,
    /// A QR code shown to the kiosk.
    Qr,
    /// A code typed at the kiosk.
    Code,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ReservationPeriod {
    /// Not ended and not cancelled.
    Upcoming,
    /// Ended, cancelled or completed.
    Archived,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum BayAvailabilityState {
    Free,
    /// Reserved for part of the slot.
    Taken,
    /// The bay, its cabinet or its station is in maintenance or inactive.
    OutOfService,
}

/// A reservation of a bay for one slot.
pub struct Reservation(pub reservation::Model);

/// The credential a reservation opens with, without its secret.
#[derive(SimpleObject)]
pub struct ReservationAccess {
    pub mode: AccessMode,
    /// A safe hint: the last characters of the badge UID, code or QR token.
    pub hint: Option<String>,
    /// The window a temporary credential is accepted in (null for a badge).
    pub valid_from: Option<DateTime>,
    pub valid_until: Option<DateTime>,
    /// False once revoked (cancelled, regenerated) or for a removed badge.
    pub active: bool,
}

#[Object]
impl Reservation {
    async fn id(&self) -> ID {
        ids::encode(Kind::RESERVATION, self.0.id)
    }
    /// Human-readable reference, e.g. `VG-7KQ2M4XP`.
    async fn reference_code(&self) -> &str {
        &self.0.reference_code
    }
    async fn status(&self) -> ReservationStatus {
        self.0.status.into()
    }
    async fn access_mode(&self) -> AccessMode {
        self.0.auth_choice.into()
    }
    async fn starts_at(&self) -> DateTime {
        micros_to_time(self.0.starts_at_us).into()
    }
    async fn ends_at(&self) -> DateTime {
        micros_to_time(self.0.ends_at_us).into()
    }
    async fn duration_minutes(&self) -> i64 {
        (self.0.ends_at_us - self.0.starts_at_us) / 60_000_000
    }
    /// Whether the caller may cancel it now: the owner until the start, staff
    /// while it holds the bay.
    async fn can_cancel(&self, ctx: &Context<'_>) -> Result<bool> {
        let now = services(ctx)?.now();
        Ok(reservations::can_cancel(principal(ctx), &self.0, now))
    }
    async fn cancelled_at(&self) -> Option<DateTime> {
        self.0.cancelled_at_us.map(|us| micros_to_time(us).into())
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    async fn bay(&self, ctx: &Context<'_>) -> Result<Bay> {
        loader(ctx)?
            .load_one(BayById(self.0.bay_id))
            .await?
            .map(Bay::from)
            .ok_or_else(|| AppError::not_found("bay").into())
    }
    /// The credential it opens with; secrets are shown only when issued.
    async fn access(&self, ctx: &Context<'_>) -> Result<ReservationAccess> {
        let method = reservations::access_method(&services(ctx)?.db, &self.0).await?;
        let temporary = self.0.auth_choice != reservation::AccessMode::Rfid;
        let valid_from = method
            .as_ref()
            .filter(|_| temporary)
            .and_then(|m| {
                m.metadata
                    .get("valid_from_us")
                    .and_then(serde_json::Value::as_i64)
            })
            .map(|us| micros_to_time(us).into());
        Ok(ReservationAccess {
            mode: self.0.auth_choice.into(),
            hint: method.as_ref().map(|m| m.display_value.clone()),
            valid_from,
            valid_until: method
                .as_ref()
                .filter(|_| temporary)
                .and_then(|m| m.expires_at)
                .map(Into::into),
            active: method.is_some_and(|m| m.is_active),
        })
    }
}

/// A temporary credential in clear, returned once: when the reservation is
/// created and when it is regenerated.
#[derive(SimpleObject)]
pub struct IssuedAccess {
    pub mode: AccessMode,
    /// For `QR`, the text to encode in the QR code; for `CODE`, the code.
    pub content: String,
    pub valid_from: DateTime,
    pub valid_until: DateTime,
}

impl From<AccessSecret> for IssuedAccess {
    fn from(secret: AccessSecret) -> Self {
        Self {
            mode: secret.mode.into(),
            content: secret.content,
            valid_from: secret.valid_from.into(),
            valid_until: secret.valid_until.into(),
        }
    }
}

#[derive(SimpleObject)]
pub struct ReservationPayload {
    pub reservation: Reservation,
    /// The temporary credential, shown this once (null for RFID and on cancel).
    pub access: Option<IssuedAccess>,
}

/// A station and how far it is.
#[derive(SimpleObject)]
pub struct StationDistance {
    pub station: Station,
    pub distance_km: f64,
}

/// A bay and whether it can be reserved for the slot asked.
#[derive(SimpleObject)]
pub struct BayAvailability {
    pub bay: Bay,
    pub state: BayAvailabilityState,
    pub available: bool,
}

/// The reservation rules in force (configuration).
#[derive(SimpleObject)]
pub struct ReservationRules {
    pub durations_minutes: Vec<i64>,
    pub horizon_days: i64,
    /// Minutes before the start and after the end a temporary credential is accepted.
    pub access_margin_minutes: i64,
}

#[derive(InputObject)]
pub struct CreateReservationInput {
    pub bay_id: ID,
    pub starts_at: DateTime,
    /// One of `reservationRules.durationsMinutes`.
    pub duration_minutes: i64,
    pub access_mode: AccessMode,
    /// For `RFID`: one of your active badges (an `AuthMethod` ID).
    pub badge_id: Option<ID>,
}

#[derive(InputObject)]
pub struct ReservationIdInput {
    pub id: ID,
}

#[derive(Default)]
pub struct ReservationQuery;

#[Object]
impl ReservationQuery {
    /// Active stations nearest a point, nearest first, with their distance.
    async fn nearest_stations(
        &self,
        ctx: &Context<'_>,
        latitude: f64,
        longitude: f64,
        #[graphql(default = 10)] first: i32,
    ) -> Result<Vec<StationDistance>> {
        let db = &services(ctx)?.db;
        Ok(catalog::nearest(db, latitude, longitude, first)
            .await?
            .into_iter()
            .map(|(station, distance_km)| StationDistance {
                station: station.into(),
                distance_km: (distance_km * 1000.0).round() / 1000.0,
            })
            .collect())
    }

    /// Each bay of a station and whether it can be reserved for the slot.
    async fn bay_availability(
        &self,
        ctx: &Context<'_>,
        station_id: ID,
        starts_at: DateTime,
        duration_minutes: i64,
    ) -> Result<Vec<BayAvailability>> {
        let s = services(ctx)?;
        let station_id = ids::decode(&station_id, Kind::STATION, "stationId")?;
        let rows = catalog::availability(
            &s.db,
            &s.reservations,
            station_id,
            starts_at.0,
            duration_minutes,
            s.now(),
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|(bay, state)| BayAvailability {
                bay: bay.into(),
                available: state == Availability::Free,
                state: match state {
                    Availability::Free => BayAvailabilityState::Free,
                    Availability::Taken => BayAvailabilityState::Taken,
                    Availability::OutOfService => BayAvailabilityState::OutOfService,
                },
            })
            .collect())
    }

    /// The durations, horizon and access margin reservations follow.
    async fn reservation_rules(&self, ctx: &Context<'_>) -> Result<ReservationRules> {
        let settings = &services(ctx)?.reservations;
        Ok(ReservationRules {
            durations_minutes: settings.durations_minutes.clone(),
            horizon_days: settings.horizon_days,
            access_margin_minutes: settings.access_margin_minutes,
        })
    }

    /// The caller's reservations, upcoming (default) or archived.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity + 1")]
    async fn my_reservations(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "ReservationPeriod::Upcoming")] period: ReservationPeriod,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<IdConnection<Reservation>> {
        let me = principal(ctx).person()?.id;
        let s = services(ctx)?;
        let page = page_request(first, after.as_deref())?;
        let period = match period {
            ReservationPeriod::Upcoming => Period::Upcoming,
            ReservationPeriod::Archived => Period::Archived,
        };
        let rows =
            reservations::list(&s.db, principal(ctx), Some(me), period, s.now(), page).await?;
        Ok(connection(page, rows, |r| r.id, Reservation))
    }

    /// One reservation: one's own, or any for staff; null otherwise.
    async fn reservation(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Reservation>> {
        principal(ctx).person()?;
        let db = &services(ctx)?.db;
        let id = ids::decode(&id, Kind::RESERVATION, "id")?;
        match reservations::get(db, principal(ctx), id).await {
            Ok(row) => Ok(Some(Reservation(row))),
            Err(AppError::NotFound { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }
}

#[derive(Default)]
pub struct ReservationMutation;

#[Object]
impl ReservationMutation {
    /// Reserves a bay for a slot. Overlapping requests for one bay give exactly
    /// one reservation; the others are refused with `SLOT_TAKEN`.
    async fn create_reservation(
        &self,
        ctx: &Context<'_>,
        input: CreateReservationInput,
    ) -> Result<ReservationPayload> {
        let me = principal(ctx).person()?.id;
        let s = services(ctx)?;
        let request = NewReservation {
            bay_id: ids::decode(&input.bay_id, Kind::BAY, "bayId")?,
            starts_at: input.starts_at.0,
            duration_minutes: input.duration_minutes,
            mode: input.access_mode.into(),
            badge_id: input
                .badge_id
                .as_ref()
                .map(|b| ids::decode(b, Kind::AUTH_METHOD, "badgeId"))
                .transpose()?,
        };
        let (row, access, events) =
            reservations::create(&s.db, &s.reservations, me, request, s.now()).await?;
        bay_status::publish(s, events).await;
        Ok(ReservationPayload {
            reservation: Reservation(row),
            access: access.map(Into::into),
        })
    }

    /// Cancels a reservation: one's own until it starts; staff any that holds its bay.
    async fn cancel_reservation(
        &self,
        ctx: &Context<'_>,
        input: ReservationIdInput,
    ) -> Result<ReservationPayload> {
        principal(ctx).person()?;
        let s = services(ctx)?;
        let id = ids::decode(&input.id, Kind::RESERVATION, "id")?;
        let (row, events) = reservations::cancel(&s.db, principal(ctx), id, s.now()).await?;
        bay_status::publish(s, events).await;
        Ok(ReservationPayload {
            reservation: Reservation(row),
            access: None,
        })
    }

    /// Sends a QR or code reservation's credential to its owner by SMS (the
    /// notification outbox). The credential is issued anew (the previous one
    /// stops working) and is not returned: only the message carries it.
    /// Rate-limited per customer.
    async fn send_reservation_code(
        &self,
        ctx: &Context<'_>,
        input: ReservationIdInput,
    ) -> Result<ReservationPayload> {
        principal(ctx).person()?;
        let s = services(ctx)?;
        let id = ids::decode(&input.id, Kind::RESERVATION, "id")?;
        let row =
            reservations::send_code(&s.db, &s.reservations, principal(ctx), id, s.now()).await?;
        Ok(ReservationPayload {
            reservation: Reservation(row),
            access: None,
        })
    }

    /// Staff: revokes a QR or code reservation's credential at once (until
    /// it is regenerated); the owner is notified.
    async fn revoke_reservation_access(
        &self,
        ctx: &Context<'_>,
        input: ReservationIdInput,
    ) -> Result<ReservationPayload> {
        principal(ctx).staff()?;
        let s = services(ctx)?;
        let id = ids::decode(&input.id, Kind::RESERVATION, "id")?;
        let row =
            reservations::revoke_reservation_access(&s.db, principal(ctx), id, s.now()).await?;
        Ok(ReservationPayload {
            reservation: Reservation(row),
            access: None,
        })
    }

    /// Replaces a QR or code reservation's credential; the old one stops
    /// working and the new one is shown this once.
    async fn regenerate_reservation_access(
        &self,
        ctx: &Context<'_>,
        input: ReservationIdInput,
    ) -> Result<ReservationPayload> {
        principal(ctx).person()?;
        let s = services(ctx)?;
        let id = ids::decode(&input.id, Kind::RESERVATION, "id")?;
        let (row, secret) =
            reservations::regenerate_access(&s.db, &s.reservations, principal(ctx), id, s.now())
                .await?;
        Ok(ReservationPayload {
            reservation: Reservation(row),
            access: Some(secret.into()),
        })
    }
}
