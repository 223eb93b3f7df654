//! Resumable subscriptions: every event carries a cursor, and a subscriber that
//! comes back with `after` gets exactly what it missed, in order, then live
//! events. With Redis configured it comes back to another replica.

use std::time::Duration;

use chrono::{DateTime, SubsecRound as _, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::helpers::{SeededBay, Subscription, TestApp, TestDevice, global_id, spawn_app};

const FOLLOW: &str = "subscription($s: ID, $after: String) {
    bayStatusChanged(stationId: $s, after: $after) { cursor lockState changedAt bay { revision } }
}";

fn station_of(bay: &SeededBay, after: Option<&str>) -> Value {
    json!({ "s": global_id("Station", bay.station_id), "after": after })
}

/// One received change: its cursor and when it happened.
#[derive(Debug, Clone, PartialEq)]
struct Change {
    cursor: String,
    changed_at: DateTime<Utc>,
}

fn change_of(payload: &Value) -> Change {
    let change = &payload["data"]["bayStatusChanged"];
    Change {
        cursor: change["cursor"]
            .as_str()
            .unwrap_or_else(|| panic!("a cursor: {payload}"))
            .to_owned(),
        changed_at: change["changedAt"]
            .as_str()
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
            .unwrap_or_else(|| panic!("a changedAt: {payload}"))
            .with_timezone(&Utc),
    }
}

/// Changes received until none comes for a while.
async fn drain(subscription: &mut Subscription) -> Vec<Change> {
    let mut changes = Vec::new();
    while let Some(message) = subscription.try_next(Duration::from_millis(500)).await {
        assert_eq!(message["type"], "next", "{message}");
        changes.push(change_of(&message["payload"]));
    }
    changes
}

/// Changes received until one happened at `last`.
async fn until(subscription: &mut Subscription, last: DateTime<Utc>) -> Vec<Change> {
    let mut changes = Vec::new();
    while changes.last().is_none_or(|c: &Change| c.changed_at != last) {
        changes.push(change_of(&subscription.next_event().await));
    }
    changes
}

/// Reports (one per ms, from now) until `subscription` has seen one, then lets
/// the stragglers land; returns what it saw.
async fn reports_until_seen(device: &TestDevice, subscription: &mut Subscription) -> Vec<Change> {
    for _ in 0..25 {
        device.report(Utc::now(), "idle", "locked").await;
        if let Some(message) = subscription.try_next(Duration::from_millis(400)).await {
            let mut changes = vec![change_of(&message["payload"])];
            changes.extend(drain(subscription).await);
            return changes;
        }
    }
    panic!("no event reached the subscriber");
}

/// `count` reports with increasing times; returns those times.
async fn report_burst(device: &TestDevice, count: i64) -> Vec<DateTime<Utc>> {
    // Reports carry microseconds; compare at that precision.
    let start = Utc::now().trunc_subsecs(6) + TimeDelta::milliseconds(5);
    let stamps: Vec<_> = (0..count)
        .map(|i| start + TimeDelta::milliseconds(i))
        .collect();
    for (i, at) in stamps.iter().enumerate() {
        let lock = if i % 2 == 0 { "unlocked" } else { "locked" };
        device.report(*at, "idle", lock).await;
    }
    stamps
}

#[tokio::test]
async fn a_subscriber_that_comes_back_with_its_cursor_gets_exactly_what_it_missed() {
    let app = spawn_app().await;
    let bay = app.seed(1, 1, 1).await.remove(0);
    let replica = app.replica().await;
    let comeback: &TestApp = replica.as_ref().unwrap_or(&app);
    let device = app.device(&bay).await;
    let protocol = "graphql-transport-ws";

    // A watcher stays throughout: it tells when the missed events have happened.
    let mut watcher = app
        .subscribe(protocol, FOLLOW, station_of(&bay, None))
        .await;
    let mut leaving = app
        .subscribe(protocol, FOLLOW, station_of(&bay, None))
        .await;
    let seen = reports_until_seen(&device, &mut leaving).await;
    let last_seen = seen.last().cloned().expect("at least one change");
    drain(&mut watcher).await;
    drop(leaving);

    let missed = report_burst(&device, 5).await;
    let watched = until(&mut watcher, missed[4]).await;
    assert_eq!(
        watched.iter().map(|c| c.changed_at).collect::<Vec<_>>(),
        missed,
        "all five changes happened, in order"
    );

    let mut back = comeback
        .subscribe(protocol, FOLLOW, station_of(&bay, Some(&last_seen.cursor)))
        .await;
    let replayed = until(&mut back, missed[4]).await;
    assert_eq!(
        replayed, watched,
        "exactly the missed changes, with the cursors the watcher got, in order"
    );
    assert!(
        back.try_next(Duration::from_millis(500)).await.is_none(),
        "nothing twice"
    );
    // Another client resuming from the same cursor while the first still
    // follows gets the whole replay too: a resume is never shared.
    let mut second = comeback
        .subscribe(protocol, FOLLOW, station_of(&bay, Some(&last_seen.cursor)))
        .await;
    assert_eq!(until(&mut second, missed[4]).await, watched);

    let live = report_burst(&device, 1).await;
    let next = change_of(&back.next_event().await);
    assert_eq!(next.changed_at, live[0], "then live changes follow");
    assert_eq!(next, change_of(&watcher.next_event().await));
}

#[tokio::test]
async fn cursors_increase_and_belong_to_their_subscription() {
    let app = spawn_app().await;
    let mut bays = app.seed(2, 1, 1).await;
    let (bay, other_bay) = (bays.remove(0), bays.remove(0));
    let device = app.device(&bay).await;
    let mut watcher = app
        .subscribe("graphql-transport-ws", FOLLOW, station_of(&bay, None))
        .await;
    reports_until_seen(&device, &mut watcher).await;
    let stamps = report_burst(&device, 3).await;
    let changes = until(&mut watcher, stamps[2]).await;
    let cursors: Vec<&str> = changes.iter().map(|c| c.cursor.as_str()).collect();
    let mut distinct = cursors.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), cursors.len(), "{cursors:?}");

    // A cursor of one station's stream is not a cursor of another's.
    let mut elsewhere = app
        .subscribe(
            "graphql-transport-ws",
            FOLLOW,
            station_of(&other_bay, Some(cursors[0])),
        )
        .await;
    let refused = elsewhere.next_event().await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{refused}"
    );
    assert_eq!(refused["errors"][0]["extensions"]["field"], "after");
}

#[tokio::test]
async fn a_cursor_past_the_retained_events_is_refused_with_cursor_expired() {
    let app = spawn_app().await;
    let bay = app.seed(1, 1, 1).await.remove(0);
    let device = app.device(&bay).await;
    let mut watcher = app
        .subscribe("graphql-transport-ws", FOLLOW, station_of(&bay, None))
        .await;
    let seen = reports_until_seen(&device, &mut watcher).await;
    let cursor = &seen[0].cursor;
    let (epoch, rest) = cursor.split_once('.').expect("epoch.topic.position");
    let (topic, _) = rest.split_once('.').expect("topic.position");

    for (why, stale) in [
        (
            "before what the topic retains",
            format!("{epoch}.{topic}.1-0"),
        ),
        ("of an earlier history", format!("zz0.{topic}.1-0")),
    ] {
        let mut late = app
            .subscribe(
                "graphql-transport-ws",
                FOLLOW,
                station_of(&bay, Some(&stale)),
            )
            .await;
        let refused = late.next_event().await;
        let extensions = &refused["errors"][0]["extensions"];
        assert_eq!(extensions["reason"], "CURSOR_EXPIRED", "{why}: {refused}");
        assert_eq!(extensions["code"], "CONFLICT", "{why}");
    }

    for garbage in ["", "not a cursor", "a.s1.x-1", &"9".repeat(500)] {
        let mut confused = app
            .subscribe(
                "graphql-transport-ws",
                FOLLOW,
                station_of(&bay, Some(garbage)),
            )
            .await;
        let refused = confused.next_event().await;
        assert_eq!(
            refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{garbage:?}: {refused}"
        );
    }
}

/// A change of `bay` put straight on the bus, as the ingestion does after a commit.
fn synthetic_change(bay: &SeededBay, n: i64) -> voltgate::bus::DomainEvent {
    use voltgate::entities::{BayStatus, LockState, bay as bay_entity};
    voltgate::bus::DomainEvent::BayStatusChanged(voltgate::bus::BayStatusChanged {
        bay: bay_entity::Model {
            id: bay.bay_id,
            station_id: bay.station_id,
            cabinet_id: 1,
            number: bay.number,
            status: BayStatus::Available,
            lock_state: if n % 2 == 0 {
                LockState::Locked
            } else {
                LockState::Unlocked
            },
            revision: n,
        },
        device_status: None,
        changed_at: Utc::now(),
        repeat: false,
    })
}

/// Publishes changes of `bay` (revisions 1, 2, …) straight on the bus until
/// `subscription` sees one (a subscription has no "ready" signal); the last
/// revision published.
async fn until_live(app: &TestApp, bay: &SeededBay, subscription: &mut Subscription) -> i64 {
    let mut n = 0;
    loop {
        n += 1;
        app.bus
            .publish(synthetic_change(bay, n))
            .await
            .expect("published");
        if subscription
            .try_next(Duration::from_millis(200))
            .await
            .is_some()
        {
            return n;
        }
        assert!(n < 50, "the subscription never went live");
    }
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_is_ended_with_the_cursor_to_resume_from() {
    let app = crate::helpers::spawn_app_with(&[
        "--ws-queue-messages",
        "4",
        "--subscription-buffer",
        "64",
        "--event-retention-events",
        "1000000",
    ])
    .await;
    let bay = app.seed(1, 1, 1).await.remove(0);
    let mut sleeper = app
        .subscribe("graphql-transport-ws", FOLLOW, station_of(&bay, None))
        .await;
    let mut n = until_live(&app, &bay, &mut sleeper).await;
    let mut last_cursor = drain(&mut sleeper).await.pop().map(|c| c.cursor);

    // It stops reading. Events keep coming, in small bursts the server keeps up
    // with, until the socket and then its queue are full and its subscription
    // gives up on it, which ends its membership of the group.
    let mut published = 0;
    while app.subscription_groups.stats().members > 0 {
        let chunk: Vec<_> = (0..32).map(|i| synthetic_change(&bay, n + i)).collect();
        n += 32;
        app.bus.publish_all(chunk).await.expect("published");
        published += 32;
        assert!(
            published <= 400_000,
            "a client that reads nothing was never let go"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    // Reading again, it finds the events it was sent, then the notice, whose
    // cursor is the last of those.
    let notice = loop {
        let message = sleeper.next_message().await;
        let errors = match message["type"].as_str() {
            Some("next") if message["payload"]["errors"].is_null() => {
                last_cursor = Some(change_of(&message["payload"]).cursor);
                continue;
            }
            Some("next") => message["payload"]["errors"].clone(),
            Some("error") => message["payload"].clone(),
            _ => panic!("unexpected message {message}"),
        };
        break errors[0]["extensions"].clone();
    };
    assert_eq!(notice["reason"], "SUBSCRIBER_LAGGING", "{notice}");
    let cursor = notice["cursor"].as_str().expect("a cursor to resume from");
    assert_eq!(
        Some(cursor.to_owned()),
        last_cursor,
        "the last one it was sent"
    );

    // Resuming from it picks up right after.
    let mut resumed = app
        .subscribe(
            "graphql-transport-ws",
            FOLLOW,
            station_of(&bay, Some(cursor)),
        )
        .await;
    let first = change_of(&resumed.next_event().await);
    assert_ne!(first.cursor, cursor);
}

/// Two changes of one bay reach the bus in the other order than their
/// writes (their revisions): subscribers get the newer and never the older
/// after it, through the whole delivery path, on either bus.
#[tokio::test]
async fn an_older_state_of_a_bay_that_arrives_late_reaches_no_subscriber() {
    let app = crate::helpers::spawn_app().await;
    let bay = app.seed(1, 1, 1).await.remove(0);
    let mut watcher = app
        .subscribe("graphql-transport-ws", FOLLOW, station_of(&bay, None))
        .await;
    let n = until_live(&app, &bay, &mut watcher).await;
    drain(&mut watcher).await;

    // Revisions alternate the lock: even locked, odd unlocked.
    let base = (n + 10) / 2 * 2;
    for revision in [base + 2, base + 1, base + 3, base + 4] {
        app.bus
            .publish(synthetic_change(&bay, revision))
            .await
            .expect("published");
    }
    let mut seen = Vec::new();
    let mut revisions = Vec::new();
    for _ in 0..3 {
        let event = watcher.next_event().await;
        let change = &event["data"]["bayStatusChanged"];
        seen.push(change["lockState"].clone());
        revisions.push(change["bay"]["revision"].clone());
    }
    assert_eq!(
        revisions,
        [json!(base + 2), json!(base + 3), json!(base + 4)],
        "each state with its revision"
    );
    assert_eq!(
        seen,
        [json!("LOCKED"), json!("UNLOCKED"), json!("LOCKED")],
        "revisions {}, {} and {}; not the late {}",
        base + 2,
        base + 3,
        base + 4,
        base + 1
    );
}
