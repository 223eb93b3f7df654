//! Demo charging data for `seed --demo`: a driver account with reservations
//! (one usable now with a code to type at the kiosk, a few upcoming) and a
//! session charging at another bay with some telemetry. Only once: nothing
//! is added when the driver exists.

use chrono::{TimeDelta, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};

use super::reservations::{self, NewReservation};
use super::session_state::SessionEvent;
use super::sessions::{self, Opening};
use super::settings::{KioskSettings, ReservationSettings};
use crate::entities::reservation::AccessMode;
use crate::entities::{bay, charging_session, device, session_telemetry, user};
use crate::ticketing::demo::{DemoAccount, account};

/// The driver's username.
pub const DRIVER: &str = "demo.driver";

/// What the demo created, secrets included (shown once).
pub struct ChargingDemo {
    pub driver: DemoAccount,
    /// The reference and code of the reservation usable now, and its bay.
    pub reference: String,
    pub code: String,
    pub bay_number: i32,
    pub upcoming: usize,
    pub session_id: i32,
}

fn failed(what: &str, err: &crate::error::AppError) -> anyhow::Error {
    anyhow::anyhow!("demo charging: {what}: {}", err.message())
}

/// Seeds the demo reservations and session on the first cabinet's bays (it
/// needs three); `None` when already done or there are too few bays.
///
/// # Errors
/// On database errors.
pub async fn seed(db: &DatabaseConnection) -> anyhow::Result<Option<ChargingDemo>> {
    if user::Entity::find()
        .filter(user::Column::Username.eq(DRIVER))
        .one(db)
        .await?
        .is_some()
    {
        return Ok(None);
    }
    let Some(first) = bay::Entity::find()
        .order_by_asc(bay::Column::Id)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let bays = bay::Entity::find()
        .filter(bay::Column::CabinetId.eq(first.cabinet_id))
        .order_by_asc(bay::Column::Number)
        .all(db)
        .await?;
    let [now_bay, later_bay, charging_bay, ..] = bays.as_slice() else {
        return Ok(None);
    };
    let (driver_id, driver) = account(db, DRIVER, "Demo Driver").await?;
    let settings = ReservationSettings::default();
    let now = Utc::now();
    let book = |bay_id: i32, starts_in: TimeDelta, minutes: i64, mode: AccessMode| {
        reservations::create(
            db,
            &settings,
            driver_id,
            NewReservation {
                bay_id,
                starts_at: now + starts_in,
                duration_minutes: minutes,
                mode,
                badge_id: None,
            },
            now,
        )
    };
    let (usable, secret, _) = book(now_bay.id, TimeDelta::zero(), 120, AccessMode::Code)
        .await
        .map_err(|e| failed("reservation", &e))?;
    let code = secret.map(|s| s.content).unwrap_or_default();
    let mut upcoming = 0;
    for (bay_id, hours, mode) in [
        (now_bay.id, 3, AccessMode::Qr),
        (later_bay.id, 5, AccessMode::Code),
        (later_bay.id, 24, AccessMode::Qr),
    ] {
        book(bay_id, TimeDelta::hours(hours), 60, mode)
            .await
            .map_err(|e| failed("reservation", &e))?;
        upcoming += 1;
    }

    // A session already charging, as if a driver had authenticated a while ago.
    let (running, _, _) = book(charging_bay.id, TimeDelta::zero(), 90, AccessMode::Code)
        .await
        .map_err(|e| failed("reservation", &e))?;
    let txn = db.begin().await?;
    let (session, _) = sessions::open_in(
        &txn,
        Opening {
            cabinet_id: charging_bay.cabinet_id,
            bay: charging_bay,
            row: &running,
            method: AccessMode::Code,
            plug_timeout: KioskSettings::default().plug_timeout(),
            at: now,
        },
    )
    .await
    .map_err(|e| failed("session", &e))?;
    let mut session = session;
    for event in [SessionEvent::Unlocked, SessionEvent::ChargeStarted] {
        if let Ok((moved, _)) = sessions::apply(&txn, &session, event, now, None).await? {
            session = moved;
        }
    }
    if let Some(meter) = device::Entity::find()
        .filter(device::Column::BayId.eq(charging_bay.id))
        .one(&txn)
        .await?
    {
        let mut energy = 0.0;
        for minute in (1..=10).rev() {
            let ts = now - TimeDelta::minutes(minute);
            energy += 0.35;
            session_telemetry::ActiveModel {
                session_id: Set(session.id),
                device_id: Set(meter.id),
                bay_id: Set(charging_bay.id),
                current_a: Set(31.5),
                voltage_v: Set(229.0),
                energy_kwh: Set(energy),
                ts: Set(ts),
                ts_us: Set(ts.timestamp_micros()),
                received_at: Set(ts),
                ..Default::default()
            }
            .insert(&txn)
            .await?;
        }
        charging_session::Entity::update_many()
            .col_expr(
                charging_session::Column::EnergyKwh,
                sea_orm::sea_query::Expr::value(energy),
            )
            .filter(charging_session::Column::Id.eq(session.id))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(Some(ChargingDemo {
        driver,
        reference: usable.reference_code,
        code,
        bay_number: now_bay.number,
        upcoming,
        session_id: session.id,
    }))
}
