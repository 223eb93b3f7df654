//! GraphQL for mobile pairing: the kiosk's `terminalCreatePairing`,
//! `terminalPairing`, `terminalConsumePairing` and `terminalPairingChanged`;
//! the customer's `pairing(token)` and `authorizePairing`.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject, Subscription};
use futures_util::{Stream, StreamExt};

use super::badge_links_graphql::kiosk_cabinet;
use super::pairing::{self, PairingView};
use super::reservations_graphql::Reservation;
use super::sessions_graphql::ChargingSession;
use crate::auth::guards::principal;
use crate::entities::kiosk_pairing::{self, PairingState};
use crate::graphql::ids::{self, Kind};
use crate::graphql::scalars::DateTime;
use crate::services::services;

impl Kind {
    pub const KIOSK_PAIRING: Self = Self::named("KioskPairing");
}

/// Where a mobile pairing stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum KioskPairingState {
    /// Waiting for a customer to authorize a reservation.
    Pending,
    /// A customer authorized a reservation; the kiosk may consume it.
    Authorized,
    /// The kiosk opened the session.
    Consumed,
    /// Its time ran out before it was consumed.
    Expired,
}

impl From<PairingView> for KioskPairingState {
    fn from(view: PairingView) -> Self {
        match view {
            PairingView::Pending => Self::Pending,
            PairingView::Authorized => Self::Authorized,
            PairingView::Consumed => Self::Consumed,
            PairingView::Expired => Self::Expired,
        }
    }
}

/// A kiosk's mobile pairing, as the kiosk sees it.
pub struct KioskPairing {
    row: kiosk_pairing::Model,
    now: chrono::DateTime<chrono::Utc>,
}

#[Object]
impl KioskPairing {
    async fn id(&self) -> ID {
        ids::encode(Kind::KIOSK_PAIRING, self.row.id)
    }
    async fn state(&self) -> KioskPairingState {
        pairing::view(&self.row, self.now).into()
    }
    async fn expires_at(&self) -> DateTime {
        pairing::expires_at(&self.row).into()
    }
    /// The bay of the authorized reservation, where the session will open.
    async fn reservation_id(&self) -> Option<ID> {
        self.row
            .reservation_id
            .map(|id| ids::encode(Kind::RESERVATION, id))
    }
    /// The session it opened, once consumed.
    async fn session_id(&self) -> Option<ID> {
        self.row
            .session_id
            .map(|id| ids::encode(Kind::CHARGING_SESSION, id))
    }
}

/// A new pairing: show `qrSvg` (or `qrContent`) on the kiosk's screen.
#[derive(SimpleObject)]
pub struct CreatePairingPayload {
    pub pairing: KioskPairing,
    /// What the QR code holds: `voltgate:pairing:<token>`. Shown this once.
    pub qr_content: String,
    /// The QR code as an SVG document.
    pub qr_svg: String,
}

/// A pairing opened on the customer's phone.
pub struct CustomerPairing {
    row: kiosk_pairing::Model,
    now: chrono::DateTime<chrono::Utc>,
}

#[Object]
impl CustomerPairing {
    async fn state(&self) -> KioskPairingState {
        pairing::view(&self.row, self.now).into()
    }
    async fn expires_at(&self) -> DateTime {
        pairing::expires_at(&self.row).into()
    }
    async fn cabinet_id(&self) -> ID {
        ids::encode(Kind::CABINET, self.row.cabinet_id)
    }
    /// Your reservations usable at this kiosk now; authorize one of them.
    async fn reservations(&self, ctx: &Context<'_>) -> Result<Vec<Reservation>> {
        let me = principal(ctx).person()?;
        let rows = pairing::usable_reservations(services(ctx)?, me.id, self.row.cabinet_id).await?;
        Ok(rows.into_iter().map(Reservation).collect())
    }
    /// The reservation you authorized.
    async fn reservation_id(&self) -> Option<ID> {
        self.row
            .reservation_id
            .map(|id| ids::encode(Kind::RESERVATION, id))
    }
}

#[derive(Default)]
pub struct PairingQuery;

#[Object]
impl PairingQuery {
    /// The signed-in customer: the pairing a kiosk's QR code shows (its
    /// content or the bare token), with the reservations usable there now.
    async fn pairing(&self, ctx: &Context<'_>, token: String) -> Result<CustomerPairing> {
        let me = principal(ctx).person()?;
        let services = services(ctx)?;
        let row = pairing::open_for_customer(services, me.id, &token).await?;
        Ok(CustomerPairing {
            row,
            now: services.now(),
        })
    }

    /// A kiosk: one of its pairings.
    async fn terminal_pairing(&self, ctx: &Context<'_>, id: ID) -> Result<KioskPairing> {
        let cabinet_id = kiosk_cabinet(ctx)?;
        let id = ids::decode(&id, Kind::KIOSK_PAIRING, "id")?;
        let services = services(ctx)?;
        let row = pairing::for_kiosk(services, cabinet_id, id).await?;
        Ok(KioskPairing {
            row,
            now: services.now(),
        })
    }
}

#[derive(InputObject)]
pub struct AuthorizePairingInput {
    /// The QR code's content or the bare token.
    pub token: String,
    /// One of the reservations `pairing(token)` lists.
    pub reservation_id: ID,
}

#[derive(InputObject)]
pub struct ConsumePairingInput {
    pub pairing: ID,
}

#[derive(SimpleObject)]
pub struct AuthorizePairingPayload {
    pub state: KioskPairingState,
}

#[derive(SimpleObject)]
pub struct ConsumePairingPayload {
    pub pairing: KioskPairing,
    pub session: ChargingSession,
}

#[derive(Default)]
pub struct PairingMutation;

#[Object]
impl PairingMutation {
    /// A kiosk: a new pairing token, valid 3 minutes, shown as a QR code.
    async fn terminal_create_pairing(&self, ctx: &Context<'_>) -> Result<CreatePairingPayload> {
        let cabinet_id = kiosk_cabinet(ctx)?;
        let services = services(ctx)?;
        let issued = pairing::create(services, cabinet_id).await?;
        let qr_content = issued.qr_content();
        Ok(CreatePairingPayload {
            qr_svg: crate::qr::svg(&qr_content)?,
            qr_content,
            pairing: KioskPairing {
                row: issued.row,
                now: services.now(),
            },
        })
    }

    /// The signed-in customer: lets the kiosk open a session for one of their
    /// reservations usable there now.
    async fn authorize_pairing(
        &self,
        ctx: &Context<'_>,
        input: AuthorizePairingInput,
    ) -> Result<AuthorizePairingPayload> {
        let me = principal(ctx).person()?;
        let reservation_id =
            ids::decode(&input.reservation_id, Kind::RESERVATION, "reservationId")?;
        let services = services(ctx)?;
        let row = pairing::authorize(services, me.id, &input.token, reservation_id).await?;
        Ok(AuthorizePairingPayload {
            state: pairing::view(&row, services.now()).into(),
        })
    }

    /// A kiosk: consumes an authorized pairing, which opens the session and
    /// unlocks the bay, like `terminalAuthenticate`.
    async fn terminal_consume_pairing(
        &self,
        ctx: &Context<'_>,
        input: ConsumePairingInput,
    ) -> Result<ConsumePairingPayload> {
        let cabinet_id = kiosk_cabinet(ctx)?;
        let id = ids::decode(&input.pairing, Kind::KIOSK_PAIRING, "pairing")?;
        let services = services(ctx)?;
        let (row, session) = pairing::consume(services, cabinet_id, id).await?;
        Ok(ConsumePairingPayload {
            pairing: KioskPairing {
                row,
                now: services.now(),
            },
            session: ChargingSession(session),
        })
    }
}

/// A change of a pairing, as `terminalPairingChanged` delivers it.
#[derive(SimpleObject)]
pub struct PairingChangedEvent {
    pub pairing_id: ID,
    pub state: KioskPairingState,
    pub session_id: Option<ID>,
    pub at: DateTime,
    /// Give it as `after` to resume after this event.
    pub cursor: String,
}

#[derive(Default)]
pub struct PairingSubscription;

#[Subscription]
impl PairingSubscription {
    /// A kiosk: one of its pairings' changes, live (authorized, consumed).
    async fn terminal_pairing_changed(
        &self,
        ctx: &Context<'_>,
        pairing_id: ID,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<PairingChangedEvent>> + use<>> {
        let cabinet_id = kiosk_cabinet(ctx)?;
        let id = ids::decode(&pairing_id, Kind::KIOSK_PAIRING, "pairingId")?;
        let services = services(ctx)?;
        pairing::for_kiosk(services, cabinet_id, id).await?;
        let steps = crate::realtime::follow::follow(
            services.bus.as_ref(),
            crate::bus::Topic::KioskPairing(id),
            after.as_deref(),
        )
        .await?;
        Ok(steps.filter_map(move |step| {
            let item = match step {
                Err(lagging) => Some(Err(lagging.into())),
                Ok(step) => match &step.event.envelope.event {
                    crate::bus::DomainEvent::KioskPairingChanged(changed)
                        if changed.cabinet_id == cabinet_id =>
                    {
                        Some(Ok(PairingChangedEvent {
                            pairing_id: ids::encode(Kind::KIOSK_PAIRING, changed.pairing_id),
                            state: match changed.state {
                                PairingState::Pending => KioskPairingState::Pending,
                                PairingState::Authorized => KioskPairingState::Authorized,
                                PairingState::Consumed => KioskPairingState::Consumed,
                            },
                            session_id: changed
                                .session_id
                                .map(|id| ids::encode(Kind::CHARGING_SESSION, id)),
                            at: changed.at.into(),
                            cursor: step.cursor,
                        }))
                    }
                    _ => None,
                },
            };
            async move { item }
        }))
    }
}
