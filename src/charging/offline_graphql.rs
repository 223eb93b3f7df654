//! GraphQL for offline kiosks: the signed cache (`terminalOfflineCache`),
//! the upload of events accepted offline (`terminalUploadEvents`), and the
//! staff view of what kiosks uploaded (`kioskOfflineEvents`).

use async_graphql::{Context, Enum, ID, InputObject, MergedObject, Object, Result, SimpleObject};

use super::offline::{self, EventKind, OfflineEvent};
use super::reservations_graphql::AccessMode;
use super::sessions_graphql::kiosk;
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};

use crate::auth::guards::principal;
use crate::db::{IdOrder, page_by_id_in};
use crate::entities::kiosk_offline_event;
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{IdConnection, connection, page_request};
use crate::graphql::scalars::DateTime;
use crate::services::services;

/// A signed offline cache of a cabinet's near-term reservations.
#[derive(SimpleObject)]
pub struct KioskOfflineCache {
    /// The JSON document, exactly as signed: verify, then parse.
    pub document: String,
    /// Ed25519 over the document's UTF-8 bytes, base64url without padding.
    pub signature: String,
    /// The signing public key, base64url (compare with `terminal { signingKey }`).
    pub public_key: String,
    pub key_id: String,
}

/// What a kiosk did while offline.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "OfflineKioskEventKind")]
pub enum KioskEventKind {
    /// It accepted the reservation's credential.
    Authenticated,
    /// It unlocked the bay: a session began.
    SessionStarted,
    /// The session ended at the bay.
    SessionStopped,
}

impl From<KioskEventKind> for EventKind {
    fn from(kind: KioskEventKind) -> Self {
        match kind {
            KioskEventKind::Authenticated => Self::Authenticated,
            KioskEventKind::SessionStarted => Self::SessionStarted,
            KioskEventKind::SessionStopped => Self::SessionStopped,
        }
    }
}

#[derive(InputObject)]
pub struct OfflineKioskEventInput {
    /// The kiosk's UUID for the event: uploading it again changes nothing.
    pub event_id: String,
    pub kind: KioskEventKind,
    pub bay: ID,
    pub reservation: ID,
    /// How the customer authenticated (defaults to the reservation's mode).
    pub method: Option<AccessMode>,
    /// The badge UID (required for RFID, which the cache cannot check), or
    /// the QR content or code, checked again by the server; never stored.
    pub credential: Option<String>,
    /// When it happened, on the kiosk's clock.
    pub at: DateTime,
}

#[derive(InputObject)]
pub struct TerminalUploadEventsInput {
    /// In the order they happened.
    pub events: Vec<OfflineKioskEventInput>,
}

/// What became of an uploaded event.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum OfflineEventOutcome {
    /// Reconciled and applied as the online path would.
    Applied,
    /// Stored, not applied: see `reason`.
    Conflict,
    /// Uploaded before: `recorded` is its first outcome.
    Duplicate,
    /// Stored, not judged yet (an earlier upload of it is being reconciled).
    Pending,
}

fn recorded(record: &kiosk_offline_event::Model) -> OfflineEventOutcome {
    match record.outcome.as_str() {
        offline::APPLIED => OfflineEventOutcome::Applied,
        offline::CONFLICT => OfflineEventOutcome::Conflict,
        _ => OfflineEventOutcome::Pending,
    }
}

/// One uploaded event's answer.
#[derive(SimpleObject)]
pub struct OfflineEventResult {
    pub event_id: String,
    /// This upload's answer.
    pub outcome: OfflineEventOutcome,
    /// The stored outcome (the first one, for a duplicate).
    pub recorded: OfflineEventOutcome,
    /// Why it conflicts: `CLOCK_SKEW`, `UNKNOWN_RESERVATION`, `WRONG_BAY`,
    /// `RESERVATION_CANCELLED`, `RESERVATION_COMPLETED`, `OUTSIDE_WINDOW`,
    /// `METHOD_MISMATCH`, `CREDENTIAL_REQUIRED`, `INVALID_CREDENTIAL`,
    /// `BAY_IN_MAINTENANCE`, `SESSION_ALREADY_OPEN`, `NO_OPEN_SESSION`.
    pub reason: Option<String>,
    pub detail: Option<String>,
    /// The charging session it opened or stopped.
    pub session_id: Option<ID>,
}

#[derive(SimpleObject)]
pub struct TerminalUploadEventsPayload {
    /// In the order sent.
    pub results: Vec<OfflineEventResult>,
}

impl Kind {
    pub const KIOSK_OFFLINE_EVENT: Self = Self::named("KioskOfflineEvent");
}

/// An event a kiosk accepted offline and uploaded, with what became of it.
pub struct KioskOfflineEvent(kiosk_offline_event::Model);

#[Object]
impl KioskOfflineEvent {
    async fn id(&self) -> ID {
        ids::encode(Kind::KIOSK_OFFLINE_EVENT, self.0.id)
    }
    /// The kiosk's own id of the event, unique per cabinet.
    async fn event_id(&self) -> &str {
        &self.0.event_id
    }
    async fn cabinet_id(&self) -> ID {
        ids::encode(Kind::CABINET, self.0.cabinet_id)
    }
    async fn bay_id(&self) -> ID {
        ids::encode(Kind::BAY, self.0.bay_id)
    }
    /// `authenticated`, `session_started` or `session_stopped`.
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn reservation_id(&self) -> Option<ID> {
        self.0
            .reservation_id
            .map(|id| ids::encode(Kind::RESERVATION, id))
    }
    /// `rfid`, `qr` or `code`, as the kiosk said.
    async fn method(&self) -> Option<&str> {
        self.0.method.as_deref()
    }
    /// When it happened, on the kiosk's clock.
    async fn occurred_at(&self) -> DateTime {
        self.0.occurred_at.into()
    }
    async fn received_at(&self) -> DateTime {
        self.0.received_at.into()
    }
    async fn outcome(&self) -> OfflineEventOutcome {
        recorded(&self.0)
    }
    /// Why it conflicts (as `OfflineEventResult.reason`).
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    async fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }
    /// The charging session it opened or stopped.
    async fn session_id(&self) -> Option<ID> {
        self.0
            .session_id
            .map(|id| ids::encode(Kind::CHARGING_SESSION, id))
    }
}

#[derive(InputObject, Default)]
pub struct KioskOfflineEventFilter {
    pub cabinet_id: Option<ID>,
    /// `APPLIED`, `CONFLICT` or `PENDING` (`DUPLICATE` is an answer, never stored).
    pub outcome: Option<OfflineEventOutcome>,
}

#[derive(Default)]
pub struct OfflineKioskQuery;

#[Object]
impl OfflineKioskQuery {
    /// A kiosk: its cabinet's near-term reservations, signed, to check
    /// credentials while offline (see `docs/charging.md`).
    async fn terminal_offline_cache(&self, ctx: &Context<'_>) -> Result<KioskOfflineCache> {
        let cabinet_id = kiosk(ctx)?;
        let services = services(ctx)?;
        let signer = services.signer.get(&services.db).await?;
        let signed = offline::download(services, &signer, cabinet_id).await?;
        Ok(KioskOfflineCache {
            document: signed.document,
            signature: signed.signature,
            public_key: signed.public_key,
            key_id: signed.key_id,
        })
    }

    /// Staff: the events kiosks accepted offline and uploaded, newest first,
    /// with what became of each (conflicts to look into).
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity + 1")]
    async fn kiosk_offline_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<KioskOfflineEventFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<IdConnection<KioskOfflineEvent>> {
        principal(ctx).staff()?;
        let page = page_request(first, after.as_deref())?;
        let filter = filter.unwrap_or_default();
        let mut query = kiosk_offline_event::Entity::find();
        if let Some(cabinet) =
            ids::decode_opt(filter.cabinet_id.as_ref(), Kind::CABINET, "cabinetId")?
        {
            query = query.filter(kiosk_offline_event::Column::CabinetId.eq(cabinet));
        }
        if let Some(outcome) = filter.outcome {
            let stored = match outcome {
                OfflineEventOutcome::Applied => offline::APPLIED,
                OfflineEventOutcome::Conflict => offline::CONFLICT,
                OfflineEventOutcome::Pending => offline::PENDING,
                OfflineEventOutcome::Duplicate => {
                    return Err(AppError::bad_input(
                        "outcome",
                        "DUPLICATE is an answer to an upload; nothing is stored as it",
                    )
                    .into());
                }
            };
            query = query.filter(kiosk_offline_event::Column::Outcome.eq(stored));
        }
        let rows = page_by_id_in(
            &services(ctx)?.db,
            query,
            kiosk_offline_event::Column::Id,
            IdOrder::Descending,
            page,
        )
        .await?;
        Ok(connection(page, rows, |row| row.id, KioskOfflineEvent))
    }
}

/// The kiosk's pairing and offline mutations, merged once here so the
/// schema's root stays within the compiler's type depth.
#[derive(MergedObject, Default)]
pub struct KioskTerminalMutation(
    super::pairing_graphql::PairingMutation,
    OfflineKioskMutation,
);

#[derive(Default)]
pub struct OfflineKioskMutation;

#[Object]
impl OfflineKioskMutation {
    /// A kiosk: uploads what it accepted offline. Every event is stored, then
    /// reconciled once; each gets its outcome.
    async fn terminal_upload_events(
        &self,
        ctx: &Context<'_>,
        input: TerminalUploadEventsInput,
    ) -> Result<TerminalUploadEventsPayload> {
        let cabinet_id = kiosk(ctx)?;
        let services = services(ctx)?;
        let mut events = Vec::with_capacity(input.events.len());
        for event in input.events {
            events.push(OfflineEvent {
                event_id: event.event_id,
                kind: event.kind.into(),
                bay_id: ids::decode(&event.bay, Kind::BAY, "bay")?,
                reservation_id: ids::decode(&event.reservation, Kind::RESERVATION, "reservation")?,
                method: event.method.map(Into::into),
                credential: event.credential,
                at: event.at.0,
            });
        }
        let answers = offline::upload(services, cabinet_id, events).await?;
        let results = answers
            .into_iter()
            .map(|answer| {
                let recorded = recorded(&answer.record);
                OfflineEventResult {
                    outcome: if answer.duplicate {
                        OfflineEventOutcome::Duplicate
                    } else {
                        recorded
                    },
                    recorded,
                    event_id: answer.record.event_id,
                    reason: answer.record.reason,
                    detail: answer.record.detail,
                    session_id: answer
                        .record
                        .session_id
                        .map(|id| ids::encode(Kind::CHARGING_SESSION, id)),
                }
            })
            .collect();
        Ok(TerminalUploadEventsPayload { results })
    }
}
