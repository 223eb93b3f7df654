//! One execution per audience: identical subscriptions share one execution,
//! subscribers with different rights never do, and the last one leaving ends it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{PATIENCE, Subscription, TestApp, global_id, report_until_seen, spawn_app};

const BAY_STATUS: &str = "subscription Live($bay: ID) {
  bayStatusChanged(bayId: $bay) { bay { id } lockState deviceStatus changedAt }
}";

/// Waits until the server's groups satisfy `condition`.
async fn groups_until(app: &TestApp, condition: impl Fn(usize, usize) -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let stats = app.subscription_groups.stats();
        if condition(stats.groups, stats.members) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the groups never got there: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn subscribe(app: &TestApp, init: Value, variables: &Value) -> Subscription {
    Subscription::start_with(
        app.addr,
        "graphql-transport-ws",
        init,
        BAY_STATUS,
        variables.clone(),
    )
    .await
}

#[tokio::test]
async fn a_hundred_identical_public_subscribers_cause_one_execution_per_event() {
    let app = spawn_app().await;
    let bay = app.seed(1, 1, 1).await.remove(0);
    let variables = json!({ "bay": global_id("Bay", bay.bay_id) });
    let device = app.device(&bay).await;
    let mut first = subscribe(&app, json!({}), &variables).await;
    report_until_seen(&device, &mut first, "idle", "locked").await;

    let mut others = Vec::new();
    for _ in 0..99 {
        others.push(subscribe(&app, json!({}), &variables).await);
    }
    groups_until(&app, |groups, members| groups == 1 && members == 100).await;
    let before = app.subscription_groups.stats();

    device
        .report(chrono::Utc::now(), "charging", "unlocked")
        .await;
    let expected = first.next_event().await;
    assert_eq!(
        expected["data"]["bayStatusChanged"]["deviceStatus"], "CHARGING",
        "{expected}"
    );
    for other in &mut others {
        assert_eq!(
            other.next_event().await,
            expected,
            "the same result for all"
        );
    }
    let after = app.subscription_groups.stats();
    assert_eq!(after.executions, before.executions, "no new execution");
    assert_eq!(after.results, before.results + 1, "resolved once");
    assert_eq!(
        after.deliveries,
        before.deliveries + 100,
        "delivered 100 times"
    );
}

#[tokio::test]
async fn subscribers_whose_rights_differ_never_share_an_execution() {
    let app = spawn_app().await;
    let bay = app.seed(1, 1, 1).await.remove(0);
    let variables = json!({ "bay": global_id("Bay", bay.bay_id) });
    let (alice, _) = app.register("alice").await;
    let (bob, _) = app.register("bob").await;
    let bearer = |token: &str| json!({ "authorization": format!("Bearer {token}") });

    let _anonymous = subscribe(&app, json!({}), &variables).await;
    let _alice = subscribe(&app, bearer(&alice), &variables).await;
    let _alice_again = subscribe(&app, bearer(&alice), &variables).await;
    let _bob = subscribe(&app, bearer(&bob), &variables).await;
    // Anonymous, Alice's token (twice: one group) and Bob's: three audiences.
    groups_until(&app, |groups, members| groups == 3 && members == 4).await;
}

#[tokio::test]
async fn the_last_subscriber_leaving_ends_the_execution() {
    let app = spawn_app().await;
    let bay = app.seed(1, 1, 1).await.remove(0);
    let variables = json!({ "bay": global_id("Bay", bay.bay_id) });
    let first = subscribe(&app, json!({}), &variables).await;
    let second = subscribe(&app, json!({}), &variables).await;
    groups_until(&app, |groups, members| groups == 1 && members == 2).await;
    drop(first);
    groups_until(&app, |groups, members| groups == 1 && members == 1).await;
    drop(second);
    groups_until(&app, |groups, _| groups == 0).await;

    // A new subscriber starts a new execution, and it streams.
    let executions = app.subscription_groups.stats().executions;
    let mut again = subscribe(&app, json!({}), &variables).await;
    let device = app.device(&bay).await;
    report_until_seen(&device, &mut again, "idle", "locked").await;
    assert_eq!(app.subscription_groups.stats().executions, executions + 1);
}

#[tokio::test]
async fn a_failing_subscription_answers_every_subscriber_with_its_error() {
    let app = spawn_app().await;
    let unknown = json!({ "bay": global_id("Bay", 999_999) });
    for _ in 0..3 {
        let mut subscriber = subscribe(&app, json!({}), &unknown).await;
        let message = subscriber.next_message().await;
        assert_eq!(
            message["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
            "{message}"
        );
    }
}
