//! Provider payments: a buyer starts one, the provider settles it (the test
//! provider through the team or a signed test webhook, a Stripe-compatible
//! API through its signed webhooks), and the order is paid exactly once,
//! however often or concurrently an event is delivered. No call leaves the
//! machine: the Stripe API is a small axum server inside the test.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use voltgate::entities::{payment_provider_customer, payment_webhook_event, ticketing_log};
use voltgate::ticketing::providers::webhooks::sign;

use crate::client::TestUser;
use crate::helpers::{PATIENCE, TestApp, spawn_app_with};
use crate::ticketing::{ADD_TO_CART, CHECKOUT, Shop, code, person, reason};

const STRIPE_KEY: &str = "sk_test_voltgate";
const STRIPE_WEBHOOK_SECRET: &str = "whsec_stripe_for_tests";
const TEST_WEBHOOK_SECRET: &str = "whsec_test_provider_for_tests";

const START: &str = "mutation($input: StartOrderPaymentInput!) { startOrderPayment(input: $input) { clientSecret redirectUrl payment { id localId state method provider providerPaymentId providerState processInitiated amount { amount } } order { id status } } }";
const SIMULATE: &str = "mutation($id: ID!, $outcome: TestPaymentOutcome!) { simulateTestPayment(input: { paymentId: $id, outcome: $outcome }) { payment { state providerState providerChargeId } order { status } } }";
const ORDER: &str = "query($e: ID!, $c: String!, $s: String!) { order(eventId: $e, code: $c, secret: $s) { status payments { localId state method provider providerState } refunds { method source amount { amount } } } }";
const WEBHOOK_EVENTS: &str = "query($e: ID!) { paymentWebhookEvents(eventId: $e) { totalCount nodes { providerEventId type processed attempts lastError paymentId failures { message } } } }";

/// A pending order: its id, code and secret.
struct Pending {
    code: String,
    secret: String,
}

/// Checks out one seat, as `buyer` or anonymously.
async fn pending_order(app: &TestApp, product: &str, buyer: Option<&TestUser>) -> Pending {
    let input = json!({ "input": { "productId": product, "quantity": 1 } });
    let cart = match buyer {
        Some(buyer) => buyer.gql(ADD_TO_CART, input).await,
        None => app.graphql(ADD_TO_CART, input).await,
    };
    let cart = cart["data"]["addToCart"]["cart"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a cart: {cart}"))
        .to_owned();
    let input = json!({ "input": { "cartId": cart, "email": "buyer@example.com" } });
    let placed = match buyer {
        Some(buyer) => buyer.gql(CHECKOUT, input).await,
        None => app.graphql(CHECKOUT, input).await,
    };
    let order = &placed["data"]["checkout"];
    Pending {
        code: order["order"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("an order: {placed}"))
            .to_owned(),
        secret: order["secret"].as_str().unwrap_or_default().to_owned(),
    }
}

async fn start(app: &TestApp, shop: &Shop, order: &Pending, provider: &str) -> Value {
    app.graphql(
        START,
        json!({ "input": { "eventId": shop.event, "code": order.code, "secret": order.secret, "provider": provider } }),
    )
    .await
}

fn order_id(body: &Value) -> Value {
    body["data"]["startOrderPayment"]["order"]["id"].clone()
}

fn started<'a>(body: &'a Value, field: &str) -> &'a str {
    body["data"]["startOrderPayment"]["payment"][field]
        .as_str()
        .unwrap_or_else(|| panic!("a started payment: {body}"))
}

async fn order_of(app: &TestApp, shop: &Shop, order: &Pending) -> Value {
    let body = app
        .graphql(
            ORDER,
            json!({ "e": shop.event, "c": order.code, "s": order.secret }),
        )
        .await;
    body["data"]["order"].clone()
}

/// A provider event in Stripe's shape about `object`.
fn event(id: &str, kind: &str, object: Value) -> Vec<u8> {
    json!({
        "id": id, "object": "event", "type": kind, "livemode": false,
        "api_version": "2024-06-20", "data": { "object": object },
    })
    .to_string()
    .into_bytes()
}

/// Delivers a webhook with a signature header made by `secret` at `timestamp`.
async fn deliver(
    app: &TestApp,
    provider: &str,
    body: &[u8],
    signature: Option<String>,
) -> (u16, Value) {
    let mut request = app
        .http
        .post(app.url(&format!("/webhooks/{provider}")))
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("Stripe-Signature", signature);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn signed(secret: &str, body: &[u8]) -> Option<String> {
    Some(sign(secret, chrono::Utc::now().timestamp(), body))
}

/// What the stand-in Stripe API was asked, and the intents it made.
#[derive(Default)]
struct StripeLog {
    requests: Vec<(String, String, HeaderMap)>,
    intents: HashMap<String, Value>,
    customers: usize,
}

type Log = Arc<Mutex<StripeLog>>;

fn form(body: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

async fn create_customer(State(log): State<Log>, headers: HeaderMap, body: String) -> Json<Value> {
    let mut log = log.lock().expect("the log");
    log.customers += 1;
    let id = format!("cus_mock_{}", log.customers);
    log.requests.push(("/v1/customers".into(), body, headers));
    Json(json!({ "id": id, "object": "customer" }))
}

async fn create_intent(State(log): State<Log>, headers: HeaderMap, body: String) -> Json<Value> {
    let mut log = log.lock().expect("the log");
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    log.requests
        .push(("/v1/payment_intents".into(), body.clone(), headers));
    // Stripe answers a repeated idempotency key with the first answer.
    let next = log.intents.len() + 1;
    let fields = form(&body);
    let intent = log.intents.entry(key).or_insert_with(|| {
        json!({
            "id": format!("pi_mock_{next}"), "object": "payment_intent",
            "amount": fields.get("amount").and_then(|a| a.parse::<i64>().ok()),
            "currency": fields.get("currency"), "customer": fields.get("customer"),
            "status": "requires_payment_method",
            "client_secret": format!("pi_mock_{next}_secret_abc"),
        })
    });
    Json(intent.clone())
}

async fn read_intent(State(log): State<Log>, Path(id): Path<String>) -> Json<Value> {
    let mut log = log.lock().expect("the log");
    log.requests.push((
        format!("/v1/payment_intents/{id}"),
        String::new(),
        HeaderMap::new(),
    ));
    Json(
        json!({ "id": id, "object": "payment_intent", "status": "succeeded", "latest_charge": "ch_mock" }),
    )
}

async fn create_refund(State(log): State<Log>, headers: HeaderMap, body: String) -> Json<Value> {
    let mut log = log.lock().expect("the log");
    log.requests.push(("/v1/refunds".into(), body, headers));
    let n = log.requests.iter().filter(|r| r.0 == "/v1/refunds").count();
    Json(json!({ "id": format!("re_mock_{n}"), "object": "refund", "status": "succeeded" }))
}

/// Starts the stand-in Stripe API; its base URL and what it was asked.
async fn stripe_stand_in() -> (String, Log) {
    let log: Log = Arc::default();
    let router = Router::new()
        .route("/v1/customers", post(create_customer))
        .route("/v1/payment_intents", post(create_intent))
        .route("/v1/payment_intents/{id}", get(read_intent))
        .route("/v1/refunds", post(create_refund))
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), log)
}

/// A server offering both providers, its Stripe pointed at the stand-in,
/// retrying failed webhook events after a second.
async fn spawn_with_providers(stripe_base: &str) -> TestApp {
    spawn_app_with(&[
        "--stripe-secret-key",
        STRIPE_KEY,
        "--stripe-api-base",
        stripe_base,
        "--stripe-webhook-secrets",
        &format!("whsec_old_one,{STRIPE_WEBHOOK_SECRET}"),
        "--test-provider-webhook-secret",
        TEST_WEBHOOK_SECRET,
        "--payment-webhook-retry-secs",
        "1",
    ])
    .await
}

async fn log_entries(app: &TestApp, action: &str) -> u64 {
    ticketing_log::Entity::find()
        .filter(ticketing_log::Column::ActionType.eq(action))
        .count(&app.db)
        .await
        .expect("the log")
}

async fn webhook_rows(app: &TestApp) -> u64 {
    payment_webhook_event::Entity::find()
        .count(&app.db)
        .await
        .expect("webhook events")
}

#[tokio::test]
async fn a_test_provider_payment_settled_by_the_team_marks_the_order_paid() {
    let (stripe, _) = stripe_stand_in().await;
    let app = spawn_with_providers(&stripe).await;
    let shop = Shop::open(&app, "testpay").await;
    let product = shop.product("Seat", "25.00", 10).await;
    let offered = app.graphql("{ paymentProviders }", json!({})).await;
    assert_eq!(
        offered["data"]["paymentProviders"],
        json!(["test", "stripe"]),
        "{offered}"
    );

    let order = pending_order(&app, &product, None).await;
    let first = start(&app, &shop, &order, "test").await;
    let payment = &first["data"]["startOrderPayment"]["payment"];
    assert_eq!(
        (
            &payment["state"],
            &payment["method"],
            &payment["provider"],
            &payment["amount"]["amount"],
            &payment["processInitiated"]
        ),
        (
            &json!("PENDING"),
            &json!("PROVIDER"),
            &json!("test"),
            &json!("25.00"),
            &json!(true)
        ),
        "{first}"
    );
    assert!(started(&first, "providerPaymentId").starts_with("test_pi_"));
    assert!(
        first["data"]["startOrderPayment"]["clientSecret"].is_string(),
        "{first}"
    );
    // Starting again (a reload of the payment page) returns the same payment.
    let again = start(&app, &shop, &order, "test").await;
    assert_eq!(started(&again, "id"), started(&first, "id"), "{again}");

    // The buyer needs the secret, and a provider that is offered.
    let wrong = app
        .graphql(
            START,
            json!({ "input": { "eventId": shop.event, "code": order.code, "secret": "nope", "provider": "test" } }),
        )
        .await;
    assert_eq!(code(&wrong), "NOT_FOUND", "{wrong}");
    let signed_out = app
        .graphql(
            START,
            json!({ "input": { "eventId": shop.event, "code": order.code, "provider": "test" } }),
        )
        .await;
    assert_eq!(code(&signed_out), "UNAUTHENTICATED", "{signed_out}");
    let unknown = start(&app, &shop, &order, "paypal").await;
    assert_eq!(
        (
            code(&unknown),
            unknown["errors"][0]["extensions"]["field"].as_str()
        ),
        ("BAD_USER_INPUT", Some("provider")),
        "{unknown}"
    );

    let paid = shop
        .admin
        .gql(
            SIMULATE,
            json!({ "id": started(&first, "id"), "outcome": "SUCCEEDED" }),
        )
        .await;
    assert_eq!(
        paid["data"]["simulateTestPayment"],
        json!({ "payment": { "state": "CONFIRMED", "providerState": "succeeded", "providerChargeId": paid["data"]["simulateTestPayment"]["payment"]["providerChargeId"] }, "order": { "status": "PAID" } }),
        "{paid}"
    );
    let twice = shop
        .admin
        .gql(
            SIMULATE,
            json!({ "id": started(&first, "id"), "outcome": "SUCCEEDED" }),
        )
        .await;
    assert_eq!(
        twice["data"]["simulateTestPayment"]["order"]["status"], "PAID",
        "{twice}"
    );
    assert_eq!(log_entries(&app, "voltgate.order.paid").await, 1);
    let paid_order = start(&app, &shop, &order, "test").await;
    assert_eq!(reason(&paid_order), "INVALID_TRANSITION", "{paid_order}");

    // A signed test webhook fails another order's payment.
    let other = pending_order(&app, &product, None).await;
    let failing = start(&app, &shop, &other, "test").await;
    let body = event(
        "evt_test_failed",
        "payment_intent.payment_failed",
        json!({ "id": started(&failing, "providerPaymentId"), "object": "payment_intent", "status": "requires_payment_method" }),
    );
    let (status, answer) = deliver(&app, "test", &body, signed(TEST_WEBHOOK_SECRET, &body)).await;
    assert_eq!(
        (status, &answer),
        (200, &json!({ "received": true, "processed": true }))
    );
    assert_eq!(
        order_of(&app, &shop, &other).await,
        json!({ "status": "PENDING", "payments": [{ "localId": 1, "state": "FAILED", "method": "PROVIDER", "provider": "test", "providerState": "requires_payment_method" }], "refunds": [] })
    );
    // A failed payment starts over as a new one.
    let retried = start(&app, &shop, &other, "test").await;
    assert_eq!(
        retried["data"]["startOrderPayment"]["payment"]["localId"], 2,
        "{retried}"
    );

    // Two open payments (the balance changed in between) both succeed: the
    // order is paid once, and the second counts as an overpayment.
    let third = pending_order(&app, &product, None).await;
    let whole = start(&app, &shop, &third, "test").await;
    let order_id = whole["data"]["startOrderPayment"]["order"]["id"].clone();
    let manual = shop
        .admin
        .gql(
            "mutation($o: ID!) { createOrderPayment(input: { orderId: $o, method: MANUAL, amount: \"5.00\" }) { payment { id } } }",
            json!({ "o": order_id }),
        )
        .await;
    let confirmed = shop
        .admin
        .gql(
            "mutation($id: ID!) { confirmOrderPayment(input: { paymentId: $id }) { order { status } } }",
            json!({ "id": manual["data"]["createOrderPayment"]["payment"]["id"] }),
        )
        .await;
    assert_eq!(
        confirmed["data"]["confirmOrderPayment"]["order"]["status"], "PENDING",
        "{confirmed}"
    );
    let rest = start(&app, &shop, &third, "test").await;
    assert_eq!(
        rest["data"]["startOrderPayment"]["payment"]["amount"]["amount"], "20.00",
        "{rest}"
    );
    for (payment, status) in [(&rest, "PAID"), (&whole, "PAID")] {
        let settled = shop
            .admin
            .gql(
                SIMULATE,
                json!({ "id": started(payment, "id"), "outcome": "SUCCEEDED" }),
            )
            .await;
        assert_eq!(
            (
                &settled["data"]["simulateTestPayment"]["payment"]["state"],
                &settled["data"]["simulateTestPayment"]["order"]["status"]
            ),
            (&json!("CONFIRMED"), &json!(status)),
            "{settled}"
        );
    }
    assert_eq!(log_entries(&app, "voltgate.order.paid").await, 2);

    // Starts racing for one order make one payment.
    let raced = pending_order(&app, &product, None).await;
    let starts = (0..5).map(|_| start(&app, &shop, &raced, "test"));
    let answers = futures_util::future::join_all(starts).await;
    let ids: std::collections::BTreeSet<&str> = answers.iter().map(|a| started(a, "id")).collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
}

#[tokio::test]
async fn a_stripe_payment_starts_at_the_api_and_its_signed_webhook_pays_the_order_once() {
    let (stripe, log) = stripe_stand_in().await;
    let app = spawn_with_providers(&stripe).await;
    let shop = Shop::open(&app, "stripepay").await;
    let product = shop.product("Seat", "40.00", 10).await;
    let buyer = person(&app, "stripe-buyer").await;

    // The signed-in owner needs no secret, and becomes a Stripe customer.
    let order = pending_order(&app, &product, Some(&buyer)).await;
    let owner_start =
        json!({ "input": { "eventId": shop.event, "code": order.code, "provider": "stripe" } });
    let first = buyer.gql(START, owner_start.clone()).await;
    assert_eq!(started(&first, "providerPaymentId"), "pi_mock_1", "{first}");
    assert_eq!(started(&first, "providerState"), "requires_payment_method");
    assert_eq!(
        first["data"]["startOrderPayment"]["clientSecret"], "pi_mock_1_secret_abc",
        "{first}"
    );
    {
        let log = log.lock().expect("the log");
        let (path, body, headers) = &log.requests[1];
        assert_eq!(path, "/v1/payment_intents");
        let fields = form(body);
        assert_eq!(fields.get("amount").map(String::as_str), Some("4000"));
        assert_eq!(fields.get("currency").map(String::as_str), Some("eur"));
        assert_eq!(
            fields.get("customer").map(String::as_str),
            Some("cus_mock_1")
        );
        assert_eq!(
            headers.get("authorization").and_then(|v| v.to_str().ok()),
            Some(format!("Bearer {STRIPE_KEY}").as_str())
        );
        assert!(headers.get("idempotency-key").is_some());
    }
    // A second start reuses the open payment without asking Stripe again.
    let again = buyer.gql(START, owner_start).await;
    assert_eq!(started(&again, "id"), started(&first, "id"), "{again}");
    // The buyer's next order reuses the customer.
    let second = pending_order(&app, &product, Some(&buyer)).await;
    let second_start = buyer
        .gql(
            START,
            json!({ "input": { "eventId": shop.event, "code": second.code, "provider": "stripe" } }),
        )
        .await;
    assert_eq!(started(&second_start, "providerPaymentId"), "pi_mock_2");
    {
        let log = log.lock().expect("the log");
        assert_eq!(log.customers, 1, "one customer per account and provider");
        assert_eq!(log.intents.len(), 2);
        assert_eq!(log.requests.len(), 3);
    }
    let customers = payment_provider_customer::Entity::find()
        .all(&app.db)
        .await
        .expect("customers");
    assert_eq!(
        customers
            .iter()
            .map(|c| (c.provider.as_str(), c.customer_id.as_str()))
            .collect::<Vec<_>>(),
        vec![("stripe", "cus_mock_1")]
    );

    // The succeeded event pays the first order.
    let succeeded = event(
        "evt_1",
        "payment_intent.succeeded",
        json!({ "id": "pi_mock_1", "object": "payment_intent", "status": "succeeded", "latest_charge": "ch_1", "customer": "cus_mock_1" }),
    );
    let (status, answer) = deliver(
        &app,
        "stripe",
        &succeeded,
        signed(STRIPE_WEBHOOK_SECRET, &succeeded),
    )
    .await;
    assert_eq!(
        (status, &answer),
        (200, &json!({ "received": true, "processed": true }))
    );
    assert_eq!(order_of(&app, &shop, &order).await["status"], "PAID");
    let (status, answer) = deliver(
        &app,
        "stripe",
        &succeeded,
        signed(STRIPE_WEBHOOK_SECRET, &succeeded),
    )
    .await;
    assert_eq!(
        (status, &answer),
        (200, &json!({ "received": true, "duplicate": true }))
    );

    // Ten deliveries of one new event at once: recorded once, paid once.
    let second_paid = event(
        "evt_2",
        "payment_intent.succeeded",
        json!({ "id": "pi_mock_2", "object": "payment_intent", "status": "succeeded", "latest_charge": "ch_2" }),
    );
    let deliveries = (0..10).map(|_| {
        let body = second_paid.clone();
        let app = &app;
        async move { deliver(app, "stripe", &body, signed(STRIPE_WEBHOOK_SECRET, &body)).await }
    });
    let answers = futures_util::future::join_all(deliveries).await;
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    let applied = answers
        .iter()
        .filter(|(_, a)| a == &json!({ "received": true, "processed": true }))
        .count();
    assert_eq!(applied, 1, "{answers:?}");
    assert_eq!(order_of(&app, &shop, &second).await["status"], "PAID");
    assert_eq!(log_entries(&app, "voltgate.order.paid").await, 2);
    assert_eq!(webhook_rows(&app).await, 2);

    // Stripe reports refunds as running totals: a replay records nothing more.
    for (id, refunded) in [("evt_r1", 1500), ("evt_r2", 1500), ("evt_r3", 4000)] {
        let body = event(
            id,
            "charge.refunded",
            json!({ "id": "ch_1", "object": "charge", "payment_intent": "pi_mock_1", "amount_refunded": refunded }),
        );
        let (status, _) =
            deliver(&app, "stripe", &body, signed(STRIPE_WEBHOOK_SECRET, &body)).await;
        assert_eq!(status, 200);
    }
    let refunded = order_of(&app, &shop, &order).await;
    assert_eq!(
        (&refunded["refunds"], &refunded["payments"][0]["state"]),
        (
            &json!([
                { "method": "PROVIDER", "source": "EXTERNAL", "amount": { "amount": "15.00" } },
                { "method": "PROVIDER", "source": "EXTERNAL", "amount": { "amount": "25.00" } },
            ]),
            &json!("REFUNDED")
        ),
        "{refunded}"
    );

    // The team refunds through Stripe; Stripe's event about it records nothing more.
    let refund = |amount: Option<&str>| {
        let admin = shop.admin.clone();
        let input = json!({ "input": { "orderId": order_id(&second_start), "method": "PROVIDER", "amount": amount } });
        async move {
            admin
                .gql(
                    "mutation($input: RefundOrderInput!) { refundOrder(input: $input) { refund { state method source amount { amount } } order { status } } }",
                    input,
                )
                .await
        }
    };
    let part = refund(Some("10.00")).await;
    assert_eq!(
        part["data"]["refundOrder"]["refund"],
        json!({ "state": "DONE", "method": "PROVIDER", "source": "ADMIN", "amount": { "amount": "10.00" } }),
        "{part}"
    );
    {
        let log = log.lock().expect("the log");
        let (path, body, _) = log.requests.last().expect("a request");
        assert_eq!(
            (path.as_str(), form(body)),
            (
                "/v1/refunds",
                HashMap::from([
                    ("payment_intent".to_owned(), "pi_mock_2".to_owned()),
                    ("amount".to_owned(), "1000".to_owned())
                ])
            )
        );
    }
    let echoed = event(
        "evt_r4",
        "charge.refunded",
        json!({ "id": "ch_2", "object": "charge", "payment_intent": "pi_mock_2", "amount_refunded": 1000 }),
    );
    let (status, _) = deliver(
        &app,
        "stripe",
        &echoed,
        signed(STRIPE_WEBHOOK_SECRET, &echoed),
    )
    .await;
    assert_eq!(status, 200);
    let rest = refund(None).await;
    assert_eq!(
        rest["data"]["refundOrder"]["refund"]["amount"]["amount"], "30.00",
        "{rest}"
    );
    let second_refunded = order_of(&app, &shop, &second).await;
    assert_eq!(
        (
            second_refunded["refunds"].as_array().map(Vec::len),
            &second_refunded["payments"][0]["state"]
        ),
        (Some(2), &json!("REFUNDED")),
        "{second_refunded}"
    );
    let nothing_left = refund(None).await;
    assert_eq!(code(&nothing_left), "BAD_USER_INPUT", "{nothing_left}");

    // The team follows the events; reading Stripe again changes nothing paid.
    let seen = shop
        .admin
        .gql(WEBHOOK_EVENTS, json!({ "e": shop.event }))
        .await;
    let events = &seen["data"]["paymentWebhookEvents"];
    assert_eq!(events["totalCount"], 6, "{seen}");
    assert_eq!(
        events["nodes"][0],
        json!({ "providerEventId": "evt_1", "type": "payment_intent.succeeded", "processed": true, "attempts": 1, "lastError": null, "paymentId": started(&first, "id"), "failures": [] }),
        "{seen}"
    );
    let refreshed = shop
        .admin
        .gql(
            "mutation($id: ID!) { refreshOrderPayment(input: { paymentId: $id }) { payment { state providerState } order { status } } }",
            json!({ "id": started(&second_start, "id") }),
        )
        .await;
    assert_eq!(
        refreshed["data"]["refreshOrderPayment"],
        json!({ "payment": { "state": "REFUNDED", "providerState": "succeeded" }, "order": { "status": "PAID" } }),
        "{refreshed}"
    );
    assert_eq!(log_entries(&app, "voltgate.order.paid").await, 2);
}

#[tokio::test]
async fn bad_signatures_and_stale_timestamps_are_refused_and_store_nothing() {
    let (stripe, _) = stripe_stand_in().await;
    let app = spawn_with_providers(&stripe).await;
    let body = event(
        "evt_forged",
        "payment_intent.succeeded",
        json!({ "id": "pi_mock_1", "object": "payment_intent", "status": "succeeded" }),
    );
    // Out of the 300 s tolerance by a minute each way, so that the seconds
    // passing between here and the server's check cannot bring one back in.
    let now = chrono::Utc::now().timestamp();
    let refused = [
        signed("whsec_someone_else", &body),
        Some(sign(STRIPE_WEBHOOK_SECRET, now - 360, &body)),
        Some(sign(STRIPE_WEBHOOK_SECRET, now + 360, &body)),
        Some("t=abc,v1=zz".to_owned()),
        Some(format!("t={now}")),
        None,
    ];
    for signature in refused {
        let (status, answer) = deliver(&app, "stripe", &body, signature.clone()).await;
        assert_eq!(status, 400, "{signature:?}: {answer}");
    }
    // A body altered after signing.
    let signature = signed(STRIPE_WEBHOOK_SECRET, &body);
    let mut altered = body.clone();
    altered.push(b' ');
    assert_eq!(deliver(&app, "stripe", &altered, signature).await.0, 400);
    // Signed but not an event.
    let not_event = b"{\"hello\":1}".to_vec();
    assert_eq!(
        deliver(
            &app,
            "stripe",
            &not_event,
            signed(STRIPE_WEBHOOK_SECRET, &not_event)
        )
        .await
        .0,
        400
    );
    // No such provider; a body over the limit.
    assert_eq!(
        deliver(&app, "paypal", &body, signed(STRIPE_WEBHOOK_SECRET, &body))
            .await
            .0,
        404
    );
    let huge = vec![b' '; 70 * 1024];
    assert_eq!(
        deliver(&app, "stripe", &huge, signed(STRIPE_WEBHOOK_SECRET, &huge))
            .await
            .0,
        413
    );
    assert_eq!(webhook_rows(&app).await, 0);

    // A server with no webhook secrets takes no events at all.
    let bare = crate::helpers::spawn_app().await;
    assert_eq!(
        deliver(&bare, "test", &body, signed(TEST_WEBHOOK_SECRET, &body))
            .await
            .0,
        404
    );
    assert_eq!(
        deliver(&bare, "stripe", &body, signed(STRIPE_WEBHOOK_SECRET, &body))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn an_event_that_cannot_be_applied_is_stored_with_its_error_and_retried_until_it_is() {
    let (stripe, _) = stripe_stand_in().await;
    let app = spawn_with_providers(&stripe).await;
    let shop = Shop::open(&app, "retrypay").await;
    let product = shop.product("Seat", "10.00", 10).await;

    // The event arrives before the payment it names is stored.
    let early = event(
        "evt_early",
        "payment_intent.succeeded",
        json!({ "id": "pi_mock_1", "object": "payment_intent", "status": "succeeded" }),
    );
    let (status, answer) = deliver(
        &app,
        "stripe",
        &early,
        signed(STRIPE_WEBHOOK_SECRET, &early),
    )
    .await;
    assert_eq!(
        (status, &answer),
        (200, &json!({ "received": true, "processed": false }))
    );
    let stored = payment_webhook_event::Entity::find()
        .one(&app.db)
        .await
        .expect("the event")
        .expect("stored");
    assert_eq!(
        (
            stored.processed,
            stored.attempts,
            stored.last_error.as_deref()
        ),
        (
            false,
            1,
            Some("no payment is known by the provider id pi_mock_1")
        )
    );

    // Its payment unknown, it belongs to no event: staff see it, teams do not yet.
    let unmatched =
        "{ paymentWebhookEvents(unprocessedOnly: true) { nodes { providerEventId lastError } } }";
    let by_staff = shop.staff.gql(unmatched, json!({})).await;
    assert_eq!(
        by_staff["data"]["paymentWebhookEvents"]["nodes"],
        json!([{ "providerEventId": "evt_early", "lastError": "no payment is known by the provider id pi_mock_1" }]),
        "{by_staff}"
    );
    let by_team = shop.admin.gql(unmatched, json!({})).await;
    assert_eq!(code(&by_team), "FORBIDDEN", "{by_team}");

    let order = pending_order(&app, &product, None).await;
    let first = start(&app, &shop, &order, "stripe").await;
    assert_eq!(started(&first, "providerPaymentId"), "pi_mock_1", "{first}");

    // The retry job applies it once the payment exists.
    let deadline = tokio::time::Instant::now() + PATIENCE + PATIENCE;
    loop {
        if order_of(&app, &shop, &order).await["status"] == "PAID" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the retry job never applied the event"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let seen = shop
        .admin
        .gql(WEBHOOK_EVENTS, json!({ "e": shop.event }))
        .await;
    let node = &seen["data"]["paymentWebhookEvents"]["nodes"][0];
    assert_eq!(
        (
            &node["processed"],
            &node["lastError"],
            &node["failures"][0]["message"]
        ),
        (
            &json!(true),
            &Value::Null,
            &json!("no payment is known by the provider id pi_mock_1")
        ),
        "{seen}"
    );
    assert!(node["attempts"].as_i64().unwrap_or(0) >= 2, "{seen}");
    assert_eq!(log_entries(&app, "voltgate.order.paid").await, 1);
}

const SET_FEE: &str = "mutation($input: SetPaymentProviderFeeInput!) { setPaymentProviderFee(input: $input) { fee { provider fixed percent } } }";

#[tokio::test]
async fn a_provider_fee_is_added_to_the_order_and_taken_off_when_the_payment_fails() {
    let (stripe, _) = stripe_stand_in().await;
    let app = spawn_with_providers(&stripe).await;
    let shop = Shop::open(&app, "feepay").await;
    let product = shop.product("Seat", "49.50", 10).await;
    let fee = |provider: &str, fixed: &str, percent: &str| json!({ "input": { "eventId": shop.event, "provider": provider, "fixed": fixed, "percent": percent } });

    // Refused: a provider not offered, a share over 100 %, a negative fixed
    // part, and a buyer without the team's permission.
    for (input, field) in [
        (fee("paypal", "0.25", "1"), "provider"),
        (fee("test", "0.25", "100.01"), "percent"),
        (fee("test", "-1", "0"), "fixed"),
    ] {
        let refused = shop.admin.gql(SET_FEE, input).await;
        assert_eq!(code(&refused), "BAD_USER_INPUT", "{refused}");
        assert_eq!(
            refused["errors"][0]["extensions"]["field"], field,
            "{refused}"
        );
    }
    let buyer = person(&app, "fee-buyer").await;
    let refused = buyer.gql(SET_FEE, fee("test", "9.99", "0")).await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");

    let set = shop.admin.gql(SET_FEE, fee("test", "0.25", "2.9")).await;
    assert_eq!(
        set["data"]["setPaymentProviderFee"]["fee"],
        json!({ "provider": "test", "fixed": "0.25", "percent": "2.90" }),
        "{set}"
    );
    let shown = app
        .graphql(
            "query { event(organizerSlug: \"feepay\", slug: \"finals\") { paymentProviderFees { provider fixed percent } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        shown["data"]["event"]["paymentProviderFees"],
        json!([{ "provider": "test", "fixed": "0.25", "percent": "2.90" }]),
        "the storefront shows the fee before paying: {shown}"
    );

    // 49.50 + 0.25 + 2.9 % of 49.50 (1.4355, rounded to 1.44) = 51.19.
    let order = pending_order(&app, &product, None).await;
    let first = start(&app, &shop, &order, "test").await;
    assert_eq!(started(&first, "state"), "PENDING", "{first}");
    assert_eq!(
        first["data"]["startOrderPayment"]["payment"]["amount"]["amount"], "51.19",
        "{first}"
    );
    let again = start(&app, &shop, &order, "test").await;
    assert_eq!(
        started(&again, "id"),
        started(&first, "id"),
        "a retry reuses the payment and its fee"
    );
    let totals = "query($e: ID!, $c: String!, $s: String!) { order(eventId: $e, code: $c, secret: $s) { total { amount } fees { feeType value { amount } canceled } } }";
    let vars = json!({ "e": shop.event, "c": order.code, "s": order.secret });
    let with_fee = app.graphql(totals, vars.clone()).await;
    assert_eq!(
        with_fee["data"]["order"],
        json!({ "total": { "amount": "51.19" }, "fees": [{ "feeType": "payment", "value": { "amount": "1.69" }, "canceled": false }] }),
        "one payment fee, in the total: {with_fee}"
    );

    let failed = shop
        .admin
        .gql(
            SIMULATE,
            json!({ "id": started(&first, "id"), "outcome": "FAILED" }),
        )
        .await;
    assert_eq!(
        failed["data"]["simulateTestPayment"]["payment"]["state"], "FAILED",
        "{failed}"
    );
    let without = app.graphql(totals, vars).await;
    assert_eq!(
        without["data"]["order"],
        json!({ "total": { "amount": "49.50" }, "fees": [{ "feeType": "payment", "value": { "amount": "1.69" }, "canceled": true }] }),
        "the failed payment's fee leaves the total: {without}"
    );
}
