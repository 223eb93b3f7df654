//! Alert notifications through the outbox: a new alert is queued once for
//! its station's technicians and staff, never for another station's
//! technician, however many replicas notify at once; an open alert seen again
//! is notified again after the re-notification interval.

use chrono::{SubsecRound as _, Utc};
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
use serde_json::json;

use crate::client::TestUser;
use crate::helpers::{PATIENCE, SeededBay, TestApp, TestDevice, spawn_app_with};
use voltgate::entities::{alert, notification_outbox};
use voltgate::supervision::notifications::{self, NotificationPolicy};

async fn smoke(device: &TestDevice, bay: &SeededBay, at: chrono::DateTime<Utc>) {
    let payload = json!({ "v": 1, "ts": at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "value": 1.0, "unit": "" });
    device
        .publish(
            &format!("{}/bays/{}/sensors/smoke", bay.prefix, bay.number),
            payload.to_string().into_bytes(),
        )
        .await;
}

/// The users the outbox holds `template` messages for, sorted.
async fn queued(app: &TestApp, template: &str) -> Vec<i32> {
    let mut users: Vec<i32> = notification_outbox::Entity::find()
        .filter(notification_outbox::Column::Template.eq(template))
        .all(&app.db)
        .await
        .expect("query")
        .into_iter()
        .map(|row| row.user_id)
        .collect();
    users.sort_unstable();
    users
}

async fn wait_queued(app: &TestApp, template: &str, count: usize) -> Vec<i32> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let users = queued(app, template).await;
        if users.len() >= count {
            return users;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{template}: only {users:?} queued"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn the_alert(app: &TestApp) -> alert::Model {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(found) = alert::Entity::find().one(&app.db).await.expect("query") {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "no alert raised");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_new_alert_is_queued_once_for_its_technicians_and_staff_and_repeats_after_the_interval() {
    let app = spawn_app_with(&["--alert-renotify-secs", "1"]).await;
    let mut bays = app.seed(2, 1, 1).await;
    let (here, there) = (bays.remove(0), bays.remove(0));
    let tom = TestUser::technician(&app, "tom", &[here.station_id]).await;
    let ann = TestUser::technician(&app, "ann", &[there.station_id]).await;
    let staff = TestUser::staff(&app, "warden").await;
    let device = app.device(&here).await;

    smoke(&device, &here, Utc::now().trunc_subsecs(6)).await;
    the_alert(&app).await;
    // Replicas notifying at once (and this app's own job) still queue it once.
    let policy = NotificationPolicy {
        min_severity: voltgate::entities::AlertSeverity::Medium,
        renotify_after: None,
    };
    let run = || notifications::notify_due(&app.db, policy, Utc::now());
    let (a, b, c) = tokio::join!(run(), run(), run());
    let notified = a.expect("notify") + b.expect("notify") + c.expect("notify");
    assert!(notified <= 1, "one notification at most: {notified}");

    let mut expected = vec![tom.id.expect("tom"), staff.id.expect("staff")];
    expected.sort_unstable();
    assert_eq!(wait_queued(&app, "alert_raised", 2).await, expected);
    let notified_at = the_alert(&app).await.notified_at;
    assert!(notified_at.is_some(), "the alert records its notification");
    assert!(
        !queued(&app, "alert_raised")
            .await
            .contains(&ann.id.expect("ann")),
        "another station's technician is not told"
    );

    // Seen again after the interval: told again, once.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    smoke(&device, &here, Utc::now().trunc_subsecs(6)).await;
    assert_eq!(wait_queued(&app, "alert_repeated", 2).await, expected);
    assert_eq!(queued(&app, "alert_raised").await, expected, "no new alert");
    assert!(the_alert(&app).await.notified_at > notified_at);
}

#[tokio::test]
async fn alerts_below_the_notified_severity_are_not_queued() {
    let app = spawn_app_with(&["--alert-notify-min-severity", "critical"]).await;
    let bays = app.seed(1, 1, 1).await;
    let staff = TestUser::staff(&app, "warden").await;
    let device = app.device(&bays[0]).await;
    // HIGH: below the configured minimum.
    device
        .report(Utc::now().trunc_subsecs(6), "online", "blocked")
        .await;
    the_alert(&app).await;
    smoke(&device, &bays[0], Utc::now().trunc_subsecs(6)).await;
    assert_eq!(
        wait_queued(&app, "alert_raised", 1).await,
        vec![staff.id.expect("staff")]
    );
    let notified: Vec<_> = alert::Entity::find()
        .all(&app.db)
        .await
        .expect("query")
        .into_iter()
        .map(|a| (a.kind, a.notified_at.is_some()))
        .collect();
    assert!(
        notified.contains(&(voltgate::entities::AlertKind::LockBlocked, false)),
        "{notified:?}"
    );
}

#[tokio::test]
async fn an_alert_from_a_device_whose_clock_runs_behind_is_still_notified_again() {
    let app = spawn_app_with(&["--alert-renotify-secs", "1"]).await;
    let bays = app.seed(1, 1, 1).await;
    let staff = TestUser::staff(&app, "warden").await;
    let device = app.device(&bays[0]).await;
    // Ten minutes behind the server: every sighting is older than the
    // server's notification of it.
    let behind = chrono::TimeDelta::minutes(10);

    smoke(&device, &bays[0], Utc::now().trunc_subsecs(6) - behind).await;
    let expected = vec![staff.id.expect("staff")];
    assert_eq!(wait_queued(&app, "alert_raised", 1).await, expected);
    let first = the_alert(&app).await;
    assert!(first.notified_at.is_some_and(|at| at > first.last_seen));

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    smoke(&device, &bays[0], Utc::now().trunc_subsecs(6) - behind).await;
    assert_eq!(wait_queued(&app, "alert_repeated", 1).await, expected);
    let again = the_alert(&app).await;
    assert_eq!(again.notification_count, 2);
    assert_eq!(again.notified_count, 2, "the repeat is counted as told");
}
