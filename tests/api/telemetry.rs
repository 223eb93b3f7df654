//! Charging telemetry: samples stored against the session open on the bay,
//! once per device time, raising the session's energy; read back raw or
//! downsampled; latest values per bay; technicians see their stations only.

use chrono::{TimeDelta, Utc};
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait, EntityTrait as _, PaginatorTrait as _, QueryFilter,
    QueryOrder as _, Set,
};
use serde_json::{Value, json};
use voltgate::entities::{charging_session, reservation, session_telemetry};

use crate::client::TestUser;
use crate::helpers::{PATIENCE, SeededBay, TestApp, TestDevice, global_id, spawn_app};

/// A session charging on `bay` for `customer`, opened a minute ago.
pub async fn charging_session(app: &TestApp, bay: &SeededBay, customer: &TestUser) -> i32 {
    let now = Utc::now();
    let user_id = customer.id.expect("a person");
    let cabinet_id = voltgate::entities::bay::Entity::find_by_id(bay.bay_id)
        .one(&app.db)
        .await
        .expect("query")
        .expect("the bay")
        .cabinet_id;
    let booked = reservation::ActiveModel {
        reference_code: Set(format!("T{}", bay.bay_id)),
        user_id: Set(user_id),
        bay_id: Set(bay.bay_id),
        auth_method_id: Set(None),
        auth_choice: Set(reservation::AccessMode::Code),
        starts_at_us: Set((now - TimeDelta::minutes(2)).timestamp_micros()),
        ends_at_us: Set((now + TimeDelta::minutes(30)).timestamp_micros()),
        status: Set(reservation::ReservationStatus::Active),
        cancelled_at_us: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&app.db)
    .await
    .expect("a reservation");
    charging_session::ActiveModel {
        reservation_id: Set(booked.id),
        user_id: Set(user_id),
        bay_id: Set(bay.bay_id),
        cabinet_id: Set(cabinet_id),
        state: Set(charging_session::SessionState::Charging),
        method: Set(reservation::AccessMode::Code),
        opened_at: Set(now - TimeDelta::minutes(1)),
        state_changed_at: Set(now - TimeDelta::minutes(1)),
        plug_timeout_secs: Set(60),
        plug_deadline_us: Set(None),
        start_command_id: Set(None),
        charging_since: Set(Some(now - TimeDelta::minutes(1))),
        ended_at: Set(None),
        energy_kwh: Set(None),
        error: Set(None),
        ..Default::default()
    }
    .insert(&app.db)
    .await
    .expect("a session")
    .id
}

/// Publishes a telemetry sample from `bay`'s device.
pub async fn sample(
    device: &TestDevice,
    bay: &SeededBay,
    at: chrono::DateTime<Utc>,
    current_a: f64,
    voltage_v: f64,
    energy_kwh: f64,
) {
    let payload = json!({ "v": 1, "ts": at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "session": null, "current_a": current_a, "voltage_v": voltage_v, "energy_kwh": energy_kwh });
    device
        .publish(
            &format!("{}/bays/{}/telemetry", bay.prefix, bay.number),
            payload.to_string().into_bytes(),
        )
        .await;
}

async fn stored_samples(app: &TestApp, session: i32) -> u64 {
    session_telemetry::Entity::find()
        .filter(session_telemetry::Column::SessionId.eq(session))
        .count(&app.db)
        .await
        .expect("count")
}

/// Waits until `session` has `count` samples stored.
async fn wait_stored(app: &TestApp, session: i32, count: u64) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let stored = stored_samples(app, session).await;
        if stored >= count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {stored} of {count} samples stored"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Waits until `rows` finds something.
async fn wait_for<E: sea_orm::EntityTrait>(app: &TestApp, rows: sea_orm::Select<E>, what: &str)
where
    E::Model: Sync,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while rows.clone().count(&app.db).await.expect("count") == 0 {
        assert!(tokio::time::Instant::now() < deadline, "{what} never came");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

const SERIES: &str = "query($s: ID!, $b: Int, $from: DateTime) {
  sessionTelemetry(sessionId: $s, bucketSeconds: $b, from: $from) {
    at samples energyKwh currentA { avg min max } voltageV { avg min max } } }";

#[tokio::test]
async fn samples_are_stored_once_against_the_session_and_read_back_downsampled() {
    let app = spawn_app().await;
    let bays = app.seed(2, 1, 1).await;
    let (bay, other_bay) = (&bays[0], &bays[1]);
    let customer = TestUser::customer(&app, "ada").await;
    let session = charging_session(&app, bay, &customer).await;
    let device = app.device(bay).await;

    // Six samples in two 10-second buckets; the third is redelivered before
    // the rest (one bay's messages are applied in order).
    let start =
        chrono::DateTime::from_timestamp(Utc::now().timestamp() / 10 * 10 - 30, 0).expect("a time");
    let values = [
        (10.0, 230.0),
        (20.0, 231.0),
        (30.0, 229.0),
        (40.0, 232.0),
        (50.0, 228.0),
        (60.0, 230.0),
    ];
    for (n, (current, voltage)) in values.iter().enumerate() {
        let at = start + TimeDelta::seconds(n as i64 * 3 + if n >= 3 { 1 } else { 0 });
        sample(&device, bay, at, *current, *voltage, 0.5 * (n as f64 + 1.0)).await;
        if n == 2 {
            sample(&device, bay, at, *current, *voltage, 1.5).await;
        }
    }
    wait_stored(&app, session, 6).await;
    assert_eq!(
        stored_samples(&app, session).await,
        6,
        "a redelivery is stored once"
    );

    // A bay with no session stores nothing: its sample is handled before the
    // sensor reading that follows it on the same bay.
    let idle = app.device(other_bay).await;
    sample(&idle, other_bay, Utc::now(), 5.0, 230.0, 0.1).await;
    let reading = json!({ "v": 1, "ts": Utc::now().to_rfc3339(), "value": 20.0, "unit": "C" });
    idle.publish(
        &format!(
            "{}/bays/{}/sensors/temperature",
            other_bay.prefix, other_bay.number
        ),
        reading.to_string().into_bytes(),
    )
    .await;
    wait_for(
        &app,
        voltgate::entities::sensor_reading::Entity::find(),
        "the reading",
    )
    .await;
    assert_eq!(
        session_telemetry::Entity::find()
            .count(&app.db)
            .await
            .expect("count"),
        6
    );

    let session_id = global_id("ChargingSession", session);
    let raw = customer.gql(SERIES, json!({ "s": session_id })).await;
    let points = raw["data"]["sessionTelemetry"]
        .as_array()
        .unwrap_or_else(|| panic!("{raw}"));
    assert_eq!(points.len(), 6, "{raw}");
    assert_eq!(points[0]["samples"], 1);
    assert_eq!(points[5]["energyKwh"], 3.0);

    let bucketed = customer
        .gql(SERIES, json!({ "s": session_id, "b": 10 }))
        .await;
    let buckets = bucketed["data"]["sessionTelemetry"]
        .as_array()
        .unwrap_or_else(|| panic!("{bucketed}"));
    let summary: Vec<(i64, f64, f64, f64, f64)> = buckets
        .iter()
        .map(|b| {
            (
                b["samples"].as_i64().expect("samples"),
                b["currentA"]["avg"].as_f64().expect("avg"),
                b["currentA"]["min"].as_f64().expect("min"),
                b["currentA"]["max"].as_f64().expect("max"),
                b["energyKwh"].as_f64().expect("energy"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![(3, 20.0, 10.0, 30.0, 1.5), (3, 50.0, 40.0, 60.0, 3.0)],
        "{bucketed}"
    );
    let later = customer
        .gql(
            SERIES,
            json!({ "s": session_id, "from": (start + TimeDelta::seconds(10)).to_rfc3339() }),
        )
        .await;
    assert_eq!(
        later["data"]["sessionTelemetry"].as_array().map(Vec::len),
        Some(3),
        "{later}"
    );

    // The session's energy is its meter's total, and it shows the live values.
    let read = customer
        .gql(
            "query($s: ID!) { chargingSession(id: $s) { energyKwh currentA voltageV } }",
            json!({ "s": session_id }),
        )
        .await;
    assert_eq!(
        read["data"]["chargingSession"],
        json!({ "energyKwh": 3.0, "currentA": 60.0, "voltageV": 230.0 }),
        "{read}"
    );

    let refused = customer
        .gql(SERIES, json!({ "s": session_id, "b": 0 }))
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{refused}"
    );
}

const LATEST: &str = "{ latestTelemetry { bayId sessionId currentA energyKwh } }";

#[tokio::test]
async fn technicians_read_the_telemetry_of_their_stations_only() {
    let app = spawn_app().await;
    let bays = app.seed(2, 1, 1).await;
    let (mine, theirs) = (&bays[0], &bays[1]);
    let customer = TestUser::customer(&app, "ben").await;
    let my_session = charging_session(&app, mine, &customer).await;
    let their_session = charging_session(&app, theirs, &customer).await;
    for bay in [mine, theirs] {
        let device = app.device(bay).await;
        sample(&device, bay, Utc::now(), 16.0, 230.0, 0.2).await;
        sample(
            &device,
            bay,
            Utc::now() + TimeDelta::milliseconds(5),
            17.0,
            231.0,
            0.3,
        )
        .await;
    }
    wait_stored(&app, my_session, 2).await;
    wait_stored(&app, their_session, 2).await;

    let technician = TestUser::technician(&app, "tess", &[mine.station_id]).await;
    let latest = technician.gql(LATEST, json!({})).await;
    assert_eq!(
        latest["data"]["latestTelemetry"],
        json!([{ "bayId": global_id("Bay", mine.bay_id), "sessionId": global_id("ChargingSession", my_session),
            "currentA": 17.0, "energyKwh": 0.3 }]),
        "{latest}"
    );
    let staff = TestUser::staff(&app, "sam").await;
    let everything = staff.gql(LATEST, json!({})).await;
    assert_eq!(
        everything["data"]["latestTelemetry"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "{everything}"
    );

    let own = technician
        .gql(
            SERIES,
            json!({ "s": global_id("ChargingSession", my_session) }),
        )
        .await;
    assert_eq!(
        own["data"]["sessionTelemetry"].as_array().map(Vec::len),
        Some(2),
        "{own}"
    );
    let other = technician
        .gql(
            SERIES,
            json!({ "s": global_id("ChargingSession", their_session) }),
        )
        .await;
    assert_eq!(
        other["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{other}"
    );
    let stranger = TestUser::customer(&app, "eve").await;
    let peek = stranger
        .gql(
            SERIES,
            json!({ "s": global_id("ChargingSession", my_session) }),
        )
        .await;
    assert_eq!(
        peek["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{peek}"
    );
    let customers_latest = stranger.gql(LATEST, json!({})).await;
    assert_eq!(
        customers_latest["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{customers_latest}"
    );
}

#[tokio::test]
async fn a_sensor_and_its_readings_are_listed_for_its_station_only() {
    let app = spawn_app().await;
    let bays = app.seed(2, 1, 1).await;
    let (mine, theirs) = (&bays[0], &bays[1]);
    let device = app.device(mine).await;
    let at = Utc::now();
    for (n, value) in [21.0, 22.5].iter().enumerate() {
        let payload = json!({ "v": 1, "ts": (at + TimeDelta::seconds(n as i64)).to_rfc3339(), "value": value, "unit": "C" });
        device
            .publish(
                &format!("{}/bays/{}/sensors/temperature", mine.prefix, mine.number),
                payload.to_string().into_bytes(),
            )
            .await;
    }
    let device_row = voltgate::entities::device::Entity::find()
        .filter(voltgate::entities::device::Column::BayId.eq(mine.bay_id))
        .one(&app.db)
        .await
        .expect("query")
        .expect("a device");
    let device_id = global_id("Device", device_row.id);
    let staff = TestUser::staff(&app, "sue").await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let sensor_id = loop {
        let listed = staff
            .gql(
                "query($d: ID!) { deviceSensors(deviceId: $d) { id kind unit } }",
                json!({ "d": device_id }),
            )
            .await;
        let sensors = &listed["data"]["deviceSensors"];
        if sensors.as_array().is_some_and(|s| !s.is_empty()) {
            assert_eq!(sensors[0]["kind"], "temperature", "{listed}");
            break sensors[0]["id"].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no sensor: {listed}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let readings = "query($s: ID!) { sensorReadings(sensorId: $s) { value at } }";
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let read = staff.gql(readings, json!({ "s": sensor_id })).await;
        let values: Vec<Value> = read["data"]["sensorReadings"]
            .as_array()
            .unwrap_or_else(|| panic!("{read}"))
            .iter()
            .map(|r| r["value"].clone())
            .collect();
        if values.len() == 2 {
            assert_eq!(values, vec![json!(22.5), json!(21.0)], "newest first");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{read}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let outsider = TestUser::technician(&app, "otto", &[theirs.station_id]).await;
    let refused = outsider.gql(readings, json!({ "s": sensor_id })).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{refused}"
    );
}

/// Stores a sample of `session` at `bay` directly, `at` its device time.
async fn stored_sample(
    app: &TestApp,
    bay: &SeededBay,
    session: i32,
    at: chrono::DateTime<Utc>,
    current_a: f64,
) {
    let device_id = crate::device_commands::stored_device(app, bay).await.id;
    session_telemetry::ActiveModel {
        session_id: Set(session),
        device_id: Set(device_id),
        bay_id: Set(bay.bay_id),
        current_a: Set(current_a),
        voltage_v: Set(230.0),
        energy_kwh: Set(1.0),
        ts: Set(at),
        ts_us: Set(at.timestamp_micros()),
        received_at: Set(at),
        ..Default::default()
    }
    .insert(&app.db)
    .await
    .expect("sample stored");
}

#[tokio::test]
async fn a_bays_latest_sample_is_of_its_newest_session_with_samples() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 2).await;
    // The station's second bay never sampled.
    let bay = &bays[0];
    let customer = TestUser::customer(&app, "lena").await;
    let staff = TestUser::staff(&app, "stan").await;
    let first = charging_session(&app, bay, &customer).await;
    let now = Utc::now();
    stored_sample(&app, bay, first, now - TimeDelta::seconds(40), 12.0).await;
    stored_sample(&app, bay, first, now - TimeDelta::seconds(30), 13.0).await;
    stored_sample(&app, bay, first, now - TimeDelta::seconds(35), 11.0).await;

    // The first session ends and the next one opens on the bay, no sample yet.
    let mut ended: charging_session::ActiveModel = charging_session::Entity::find_by_id(first)
        .one(&app.db)
        .await
        .expect("query")
        .expect("the session")
        .into();
    ended.state = Set(charging_session::SessionState::Stopped);
    ended.ended_at = Set(Some(now - TimeDelta::seconds(20)));
    let ended = ended.update(&app.db).await.expect("ended");
    let mut next: charging_session::ActiveModel = ended.into();
    next.id = sea_orm::ActiveValue::NotSet;
    next.state = Set(charging_session::SessionState::Charging);
    next.opened_at = Set(now - TimeDelta::seconds(10));
    next.ended_at = Set(None);
    let second = next.insert(&app.db).await.expect("the next session").id;

    let latest = |body: Value| body["data"]["latestTelemetry"].clone();
    let expected = |session: i32, current: f64| {
        json!([{ "bayId": global_id("Bay", bay.bay_id), "sessionId": global_id("ChargingSession", session),
            "currentA": current, "energyKwh": 1.0 }])
    };
    // The bay that never sampled is not listed.
    assert_eq!(
        latest(staff.gql(LATEST, json!({})).await),
        expected(first, 13.0),
        "the ended session's latest by device time"
    );
    stored_sample(&app, bay, second, now - TimeDelta::seconds(5), 16.0).await;
    assert_eq!(
        latest(staff.gql(LATEST, json!({})).await),
        expected(second, 16.0)
    );
}

#[tokio::test]
async fn retention_prunes_samples_older_than_the_cutoff_in_the_order_they_were_stored() {
    // The app's own prune job keeps everything, so only the calls below prune.
    let app = crate::helpers::spawn_app_with(&["--telemetry-retention-days", "0"]).await;
    let bays = app.seed(1, 1, 1).await;
    let customer = TestUser::customer(&app, "cleo").await;
    let session = charging_session(&app, &bays[0], &customer).await;
    let now = Utc::now();
    // Stored in this order: 91 days old after one of 89, and 95 after the
    // newest, as samples delivered late are.
    for days in [120, 100, 89, 91, 1, 95] {
        stored_sample(&app, &bays[0], session, now - TimeDelta::days(days), 16.0).await;
    }
    let cutoff = now - TimeDelta::days(90);
    let prune = voltgate::supervision::telemetry::prune;
    // Batches of the first two stored: 120 and 100, then 91 (beside 89),
    // then none among 89 and 1: the sample of 95 days stored after them waits
    // until they are old too.
    assert_eq!(prune(&app.db, cutoff, 2).await.expect("prune"), 2);
    assert_eq!(prune(&app.db, cutoff, 2).await.expect("prune"), 1);
    assert_eq!(prune(&app.db, cutoff, 2).await.expect("prune"), 0);
    assert_eq!(stored_samples(&app, session).await, 3);
    let left: Vec<i64> = session_telemetry::Entity::find()
        .order_by_asc(session_telemetry::Column::Id)
        .all(&app.db)
        .await
        .expect("samples")
        .iter()
        .map(|sample| (now - sample.ts).num_days())
        .collect();
    assert_eq!(
        left,
        vec![89, 1, 95],
        "newer samples and the late one are kept"
    );
    // A cutoff past every sample but the newest takes the late one with them.
    assert_eq!(
        prune(&app.db, now - TimeDelta::days(2), 5)
            .await
            .expect("prune"),
        2
    );
    assert_eq!(stored_samples(&app, session).await, 1);
}

#[tokio::test]
async fn a_burst_of_samples_from_several_bays_is_stored_once_each_with_each_sessions_total() {
    // Batches then hold several samples of several bays, redeliveries among them.
    let app = crate::helpers::spawn_app_with(&["--ingest-batch-linger-us", "2000"]).await;
    let bays = app.seed(1, 1, 3).await;
    let customer = TestUser::customer(&app, "dora").await;
    let mut sessions = Vec::new();
    for bay in &bays {
        sessions.push(charging_session(&app, bay, &customer).await);
    }
    let start = Utc::now() - TimeDelta::seconds(30);
    const SAMPLES: i64 = 40;
    let bursts = bays.iter().enumerate().map(|(nth, bay)| {
        let app = &app;
        async move {
            let device = app.device(bay).await;
            for n in 0..SAMPLES {
                let at = start + TimeDelta::milliseconds(n * 100);
                // The meter's largest total comes mid-burst; later samples
                // report less, as a sample applied out of order would.
                let energy = if n == SAMPLES / 2 {
                    10.0 + nth as f64
                } else {
                    n as f64 / 100.0
                };
                sample(&device, bay, at, 16.0, 230.0, energy).await;
                if n % 5 == 0 {
                    sample(&device, bay, at, 16.0, 230.0, energy).await;
                }
            }
            // Kept connected until everything queued is sent.
            device
        }
    });
    let _devices = futures_util::future::join_all(bursts).await;
    // A bay's messages are applied in order: once its last sample is stored,
    // so is everything it sent before.
    let last_us = (start + TimeDelta::milliseconds((SAMPLES - 1) * 100)).timestamp_micros();
    for (nth, session) in sessions.iter().enumerate() {
        let last = session_telemetry::Entity::find()
            .filter(session_telemetry::Column::SessionId.eq(*session))
            .filter(session_telemetry::Column::TsUs.eq(last_us));
        wait_for(&app, last, "the last sample").await;
        assert_eq!(
            stored_samples(&app, *session).await,
            SAMPLES as u64,
            "redeliveries are stored once"
        );
        let stored = charging_session::Entity::find_by_id(*session)
            .one(&app.db)
            .await
            .expect("query")
            .expect("the session");
        assert_eq!(stored.energy_kwh, Some(10.0 + nth as f64));
    }
}

#[tokio::test]
async fn a_batch_of_many_sessions_stores_each_sample_once_and_keeps_each_sessions_largest_total() {
    // One worker that lingers: the burst is one batch of more sessions and
    // samples than the statements take as arms (on PostgreSQL they then
    // come as one JSON parameter each).
    let app = crate::helpers::spawn_app_with(&[
        "--mqtt-workers",
        "1",
        "--ingest-batch-linger-us",
        "500000",
    ])
    .await;
    const BAYS: usize = 70;
    let bays = app.seed(1, 1, BAYS as u32).await;
    let customer = TestUser::customer(&app, "ida").await;
    let mut sessions = Vec::new();
    let mut devices = Vec::new();
    for bay in &bays {
        sessions.push(charging_session(&app, bay, &customer).await);
        devices.push(app.device(bay).await);
    }
    let start = Utc::now() - TimeDelta::seconds(30);
    let later = start + TimeDelta::seconds(1);
    let bursts = bays
        .iter()
        .zip(&devices)
        .enumerate()
        .map(|(nth, (bay, device))| {
            let total = 2.0 + nth as f64 / 8.0;
            async move {
                sample(device, bay, start, 16.0, 230.0, total).await;
                // A redelivery, then a sample reporting less (out of order).
                sample(device, bay, start, 16.0, 230.0, total).await;
                sample(device, bay, later, 8.0, 231.5, 1.0).await;
            }
        });
    futures_util::future::join_all(bursts).await;
    for (nth, session) in sessions.iter().enumerate() {
        wait_stored(&app, *session, 2).await;
        let stored = session_telemetry::Entity::find()
            .filter(session_telemetry::Column::SessionId.eq(*session))
            .all(&app.db)
            .await
            .expect("query");
        let mut seen: Vec<(i64, f64, f64)> = stored
            .iter()
            .map(|row| (row.ts_us, row.current_a, row.voltage_v))
            .collect();
        seen.sort_by_key(|row| row.0);
        assert_eq!(
            seen,
            vec![
                (start.timestamp_micros(), 16.0, 230.0),
                (later.timestamp_micros(), 8.0, 231.5)
            ],
            "session {nth}: each sample once, with its values"
        );
        assert!(stored.iter().all(|row| row.bay_id == bays[nth].bay_id));
        let session = charging_session::Entity::find_by_id(*session)
            .one(&app.db)
            .await
            .expect("query")
            .expect("the session");
        assert_eq!(session.energy_kwh, Some(2.0 + nth as f64 / 8.0));
    }
}

/// Ends `session` and opens another on `bay` behind the server's back: no
/// event announces either, as when another process changed them.
async fn replace_session_silently(
    app: &TestApp,
    bay: &SeededBay,
    customer: &TestUser,
    session: i32,
    ended_at: chrono::DateTime<Utc>,
) -> i32 {
    charging_session::Entity::update_many()
        .col_expr(
            charging_session::Column::State,
            sea_orm::sea_query::Expr::value(charging_session::SessionState::Stopped),
        )
        .col_expr(
            charging_session::Column::EndedAt,
            sea_orm::sea_query::Expr::value(Some(ended_at)),
        )
        .filter(charging_session::Column::Id.eq(session))
        .exec(&app.db)
        .await
        .expect("the session ended");
    reservation::Entity::update_many()
        .col_expr(
            reservation::Column::ReferenceCode,
            sea_orm::sea_query::Expr::value(format!("OLD{session}")),
        )
        .filter(reservation::Column::BayId.eq(bay.bay_id))
        .exec(&app.db)
        .await
        .expect("the old reservation renamed");
    charging_session(app, bay, customer).await
}

#[tokio::test]
async fn a_remembered_session_that_ended_is_never_given_the_samples_after_its_end() {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let bay = &bays[0];
    let customer = TestUser::customer(&app, "erin").await;
    let first = charging_session(&app, bay, &customer).await;
    let device = app.device(bay).await;
    // The ingestion now remembers the first session as the bay's.
    sample(
        &device,
        bay,
        Utc::now() - TimeDelta::seconds(5),
        16.0,
        230.0,
        1.0,
    )
    .await;
    wait_stored(&app, first, 1).await;

    let ended_at = Utc::now();
    let second = replace_session_silently(&app, bay, &customer, first, ended_at).await;
    sample(
        &device,
        bay,
        ended_at + TimeDelta::seconds(1),
        16.0,
        230.0,
        0.2,
    )
    .await;
    wait_stored(&app, second, 1).await;
    assert_eq!(
        stored_samples(&app, first).await,
        1,
        "nothing after its end"
    );
    let ended = charging_session::Entity::find_by_id(first)
        .one(&app.db)
        .await
        .expect("query")
        .expect("the session");
    assert_eq!(ended.energy_kwh, Some(1.0), "its energy stays its own");
    let current = charging_session::Entity::find_by_id(second)
        .one(&app.db)
        .await
        .expect("query")
        .expect("the session");
    assert_eq!(current.energy_kwh, Some(0.2));
}

#[tokio::test]
async fn a_batch_of_samples_is_one_change_per_session_carrying_its_latest_values() {
    // A long linger gathers the burst into one batch or a few.
    let app = crate::helpers::spawn_app_with(&["--ingest-batch-linger-us", "500000"]).await;
    let bays = app.seed(1, 1, 1).await;
    let bay = &bays[0];
    let customer = TestUser::customer(&app, "fay").await;
    let session = charging_session(&app, bay, &customer).await;
    let mut follow = crate::helpers::Subscription::start_with(
        app.addr,
        "graphql-transport-ws",
        json!({ "authorization": format!("Bearer {}", customer.token) }),
        "subscription($s: ID) { chargeStateChanged(sessionId: $s) { state energyKwh currentA } }",
        json!({ "s": global_id("ChargingSession", session) }),
    )
    .await;
    let device = app.device(bay).await;
    let start = Utc::now() - TimeDelta::seconds(20);
    const SAMPLES: i64 = 10;
    for n in 0..SAMPLES {
        let at = start + TimeDelta::seconds(n);
        sample(&device, bay, at, n as f64, 230.0, n as f64 / 10.0).await;
    }
    wait_stored(&app, session, SAMPLES as u64).await;
    let mut changes = Vec::new();
    while let Some(message) = follow.try_next(std::time::Duration::from_millis(700)).await {
        changes.push(message["payload"]["data"]["chargeStateChanged"].clone());
    }
    let last = changes.last().unwrap_or_else(|| panic!("no change seen"));
    assert_eq!(
        (
            &last["state"],
            last["energyKwh"].as_f64(),
            last["currentA"].as_f64()
        ),
        (&json!("CHARGING"), Some(0.9), Some(9.0)),
        "{changes:?}"
    );
    assert!(
        changes.len() < SAMPLES as usize,
        "one change per batch, not per sample: {changes:?}"
    );
}

#[tokio::test]
async fn over_current_raises_one_alert_a_sample_within_the_limit_ends_it_and_a_resolved_one_frees_the_condition()
 {
    let app = spawn_app().await;
    let bays = app.seed(1, 1, 1).await;
    let bay = &bays[0];
    let customer = TestUser::customer(&app, "gil").await;
    let staff = TestUser::staff(&app, "hal").await;
    let _session = charging_session(&app, bay, &customer).await;
    let device = app.device(bay).await;
    let start = Utc::now() - TimeDelta::seconds(30);
    let at = |n: i64| start + TimeDelta::seconds(n);

    sample(&device, bay, at(0), 16.0, 230.0, 0.1).await;
    sample(&device, bay, at(1), 45.0, 230.0, 0.2).await;
    let raised = crate::alert_rules::wait_alert(&staff, "OVER_CURRENT", |_| true).await;
    sample(&device, bay, at(2), 46.0, 230.0, 0.3).await;
    let again =
        crate::alert_rules::wait_alert(&staff, "OVER_CURRENT", |a| a["notificationCount"] == 2)
            .await;
    assert_eq!(again["id"], raised["id"]);
    sample(&device, bay, at(3), 16.0, 230.0, 0.4).await;
    let ended =
        crate::alert_rules::wait_alert(&staff, "OVER_CURRENT", |a| a["status"] == "RESOLVED").await;
    assert_eq!(ended["id"], raised["id"]);

    // Raised again, then resolved by a person: the next sample over the
    // limit opens a new alert, and the next within it ends that one.
    sample(&device, bay, at(4), 45.0, 230.0, 0.5).await;
    let second = crate::alert_rules::wait_alert(&staff, "OVER_CURRENT", |a| {
        a["status"] == "NEW" && a["id"] != raised["id"]
    })
    .await;
    let resolved = staff
        .gql(
            "mutation($id: ID!) { resolveAlert(id: $id, note: \"fuse replaced\") { status } }",
            json!({ "id": second["id"] }),
        )
        .await;
    assert_eq!(
        resolved["data"]["resolveAlert"]["status"], "RESOLVED",
        "{resolved}"
    );
    sample(&device, bay, at(5), 45.0, 230.0, 0.6).await;
    let third = crate::alert_rules::wait_alert(&staff, "OVER_CURRENT", |a| {
        a["status"] == "NEW" && a["id"] != raised["id"] && a["id"] != second["id"]
    })
    .await;
    sample(&device, bay, at(6), 16.0, 230.0, 0.7).await;
    crate::alert_rules::wait_alert(&staff, "OVER_CURRENT", |a| {
        a["id"] == third["id"] && a["status"] == "RESOLVED"
    })
    .await;
}
