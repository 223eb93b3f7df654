//! Payments: a team records payments with their fees, confirms them, and the
//! order is paid once confirmed payments cover its total (also when two are
//! confirmed at once).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::helpers::spawn_app;
use crate::ticketing::{Shop, add_to_cart, checkout, code, reason};

const CREATE_PAYMENT: &str = "mutation($input: CreateOrderPaymentInput!) { createOrderPayment(input: $input) { payment { id localId state method amount { amount } feeId } order { status total { amount } } } }";
const CONFIRM: &str = "mutation($id: ID!) { confirmOrderPayment(input: { paymentId: $id }) { payment { state paymentDate } order { status total { amount } } } }";
const CANCEL: &str = "mutation($id: ID!) { cancelOrderPayment(input: { paymentId: $id }) { payment { state } order { total { amount } } } }";
const FAIL: &str =
    "mutation($id: ID!) { failOrderPayment(input: { paymentId: $id }) { payment { state } } }";

async fn pending_order(app: &crate::helpers::TestApp, shop: &Shop, price: &str) -> String {
    let product = shop.product("Seat", price, 10).await;
    let cart = add_to_cart(app, &product, 1, None).await;
    let cart = cart["data"]["addToCart"]["cart"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a cart: {cart}"))
        .to_owned();
    let placed = checkout(app, &cart).await;
    placed["data"]["checkout"]["order"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("an order: {placed}"))
        .to_owned()
}

async fn pay(shop: &Shop, input: Value) -> Value {
    shop.admin
        .gql(CREATE_PAYMENT, json!({ "input": input }))
        .await
}

fn payment_id(body: &Value) -> String {
    body["data"]["createOrderPayment"]["payment"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a payment: {body}"))
        .to_owned()
}

#[tokio::test]
async fn payments_with_fees_mark_the_order_paid_once_they_cover_its_total() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "pay").await;
    let order = pending_order(&app, &shop, "40.00").await;

    let first = pay(
        &shop,
        json!({ "orderId": order, "method": "MANUAL", "amount": "10.00", "reference": "bank 1" }),
    )
    .await;
    assert_eq!(
        first["data"]["createOrderPayment"]["payment"],
        json!({ "id": first["data"]["createOrderPayment"]["payment"]["id"], "localId": 1, "state": "CREATED", "method": "MANUAL", "amount": { "amount": "10.00" }, "feeId": null }),
        "{first}"
    );
    let confirmed = shop
        .admin
        .gql(CONFIRM, json!({ "id": payment_id(&first) }))
        .await;
    assert_eq!(
        confirmed["data"]["confirmOrderPayment"]["order"]["status"], "PENDING",
        "10.00 of 40.00 does not pay it: {confirmed}"
    );
    assert!(
        confirmed["data"]["confirmOrderPayment"]["payment"]["paymentDate"].is_string(),
        "{confirmed}"
    );

    // A fee is an order fee: it raises the total; canceling its payment takes it off.
    let costly = pay(
        &shop,
        json!({ "orderId": order, "method": "MANUAL", "fee": "2.00" }),
    )
    .await;
    assert_eq!(
        costly["data"]["createOrderPayment"]["order"]["total"]["amount"], "42.00",
        "{costly}"
    );
    assert_eq!(
        costly["data"]["createOrderPayment"]["payment"]["amount"]["amount"], "32.00",
        "the open balance after the fee: {costly}"
    );
    let canceled = shop
        .admin
        .gql(CANCEL, json!({ "id": payment_id(&costly) }))
        .await;
    assert_eq!(
        canceled["data"]["cancelOrderPayment"],
        json!({ "payment": { "state": "CANCELED" }, "order": { "total": { "amount": "40.00" } } }),
        "{canceled}"
    );
    let again = shop
        .admin
        .gql(FAIL, json!({ "id": payment_id(&costly) }))
        .await;
    assert_eq!(reason(&again), "INVALID_TRANSITION", "{again}");

    let rest = pay(
        &shop,
        json!({ "orderId": order, "method": "MANUAL", "fee": "1.50" }),
    )
    .await;
    assert_eq!(
        rest["data"]["createOrderPayment"]["payment"]["amount"]["amount"], "31.50",
        "{rest}"
    );
    let paid = shop
        .admin
        .gql(CONFIRM, json!({ "id": payment_id(&rest) }))
        .await;
    assert_eq!(
        paid["data"]["confirmOrderPayment"]["order"],
        json!({ "status": "PAID", "total": { "amount": "41.50" } }),
        "{paid}"
    );
    let twice = shop
        .admin
        .gql(CONFIRM, json!({ "id": payment_id(&rest) }))
        .await;
    assert_eq!(reason(&twice), "INVALID_TRANSITION", "{twice}");
    let more = pay(&shop, json!({ "orderId": order, "method": "MANUAL" })).await;
    assert_eq!(reason(&more), "INVALID_TRANSITION", "{more}");

    let seen = shop
        .admin
        .gql(
            "query { event(organizerSlug: \"pay\", slug: \"finals\") { quotas { paid pending } orders { nodes { payments { localId state } fees { feeType value { amount } canceled } } } logEntries { actionType } } }",
            json!({}),
        )
        .await;
    let event = &seen["data"]["event"];
    assert_eq!(
        event["quotas"][0],
        json!({ "paid": 1, "pending": 0 }),
        "{seen}"
    );
    assert_eq!(
        event["orders"]["nodes"][0]["payments"],
        json!([
            { "localId": 1, "state": "CONFIRMED" },
            { "localId": 2, "state": "CANCELED" },
            { "localId": 3, "state": "CONFIRMED" },
        ]),
        "{seen}"
    );
    assert_eq!(
        event["orders"]["nodes"][0]["fees"],
        json!([
            { "feeType": "payment", "value": { "amount": "2.00" }, "canceled": true },
            { "feeType": "payment", "value": { "amount": "1.50" }, "canceled": false },
        ]),
        "{seen}"
    );
    let actions: Vec<&str> = event["logEntries"]
        .as_array()
        .unwrap_or_else(|| panic!("a log: {seen}"))
        .iter()
        .filter_map(|e| e["actionType"].as_str())
        .collect();
    for action in [
        "voltgate.order.payment.started",
        "voltgate.order.payment.confirmed",
        "voltgate.order.payment.canceled",
        "voltgate.order.paid",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
}

#[tokio::test]
async fn bad_payment_input_is_refused_precisely_and_changes_nothing() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "bad-pay").await;
    let order = pending_order(&app, &shop, "5.00").await;
    for (input, field) in [
        (json!({ "orderId": order, "method": "PROVIDER" }), "method"),
        (
            json!({ "orderId": order, "method": "STORE_CREDIT" }),
            "method",
        ),
        (
            json!({ "orderId": order, "method": "MANUAL", "amount": "0" }),
            "amount",
        ),
        (
            json!({ "orderId": order, "method": "MANUAL", "amount": "-1" }),
            "amount",
        ),
        (
            json!({ "orderId": order, "method": "MANUAL", "fee": "1.234" }),
            "fee",
        ),
        (
            json!({ "orderId": order, "method": "MANUAL", "reference": "x".repeat(201) }),
            "reference",
        ),
    ] {
        let body = pay(&shop, input.clone()).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{input}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["field"], field,
            "{input}: {body}"
        );
    }
    // A refused amount after a fee leaves neither the fee nor the payment.
    let refused = pay(
        &shop,
        json!({ "orderId": order, "method": "MANUAL", "fee": "1.00", "amount": "0.00" }),
    )
    .await;
    assert_eq!(code(&refused), "BAD_USER_INPUT", "{refused}");
    let seen = shop
        .admin
        .gql(
            "query { event(organizerSlug: \"bad-pay\", slug: \"finals\") { orders { nodes { total { amount } payments { id } fees { id } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        seen["data"]["event"]["orders"]["nodes"][0],
        json!({ "total": { "amount": "5.00" }, "payments": [], "fees": [] }),
        "{seen}"
    );
}

#[tokio::test]
async fn two_payments_confirmed_at_once_both_count_and_pay_the_order_once() {
    let app = Arc::new(spawn_app().await);
    let shop = Arc::new(Shop::open(&app, "pay-race").await);
    let order = pending_order(&app, &shop, "20.00").await;
    let halves = [
        payment_id(
            &pay(
                &shop,
                json!({ "orderId": order, "method": "MANUAL", "amount": "10.00" }),
            )
            .await,
        ),
        payment_id(
            &pay(
                &shop,
                json!({ "orderId": order, "method": "MANUAL", "amount": "10.00" }),
            )
            .await,
        ),
    ];
    let confirmations = halves.map(|id| {
        let shop = Arc::clone(&shop);
        tokio::spawn(async move { shop.admin.gql(CONFIRM, json!({ "id": id })).await })
    });
    for confirmation in confirmations {
        let body = confirmation.await.expect("the confirmation finishes");
        assert_eq!(
            body["data"]["confirmOrderPayment"]["payment"]["state"], "CONFIRMED",
            "{body}"
        );
    }
    let seen = shop
        .admin
        .gql(
            "query { event(organizerSlug: \"pay-race\", slug: \"finals\") { quotas { paid pending } orders { nodes { status } } logEntries { actionType } } }",
            json!({}),
        )
        .await;
    let event = &seen["data"]["event"];
    assert_eq!(event["orders"]["nodes"][0]["status"], "PAID", "{seen}");
    assert_eq!(
        event["quotas"][0],
        json!({ "paid": 1, "pending": 0 }),
        "{seen}"
    );
    let paid_entries = event["logEntries"]
        .as_array()
        .unwrap_or_else(|| panic!("a log: {seen}"))
        .iter()
        .filter(|e| e["actionType"] == "voltgate.order.paid")
        .count();
    assert_eq!(paid_entries, 1, "{seen}");
}
