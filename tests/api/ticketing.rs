//! Ticketing: organizers and their teams set up an event, buyers fill carts
//! and check out, and a quota is never oversold, however many buyers race.

use std::sync::Arc;

use serde_json::{Value, json};
use voltgate::auth::rate_limit::RateLimiter;
use voltgate::bus::memory::MemoryBus;
use voltgate::jobs::Job as _;
use voltgate::services::{ManualClock, ServiceContext};

use crate::client::{TestUser, keys};
use crate::helpers::{TestApp, global_id, spawn_app, spawn_app_with};

pub fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("none")
}

pub fn reason(body: &Value) -> &str {
    body["errors"][0]["extensions"]["reason"]
        .as_str()
        .unwrap_or("none")
}

/// Posts with `Authorization: Token <secret>` (a team API token).
pub async fn as_token(app: &TestApp, secret: &str, query: &str, variables: Value) -> Value {
    app.http
        .post(app.url("/graphql"))
        .header("Authorization", format!("Token {secret}"))
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("JSON")
}

/// A person registered through the service (not the API, whose per-address
/// limit a test with many people would meet), signed in with a minted token.
pub async fn person(app: &TestApp, username: &str) -> TestUser {
    let account = voltgate::accounts::registration::register(
        &app.db,
        voltgate::accounts::registration::Registration {
            username: username.to_owned(),
            email: format!("{username}@example.com"),
            password: "Correct-horse-battery-42".to_owned(),
            phone: None,
            full_name: None,
            accept_terms: true,
            accept_privacy_policy: true,
            accept_notifications: false,
        },
        None,
    )
    .await
    .unwrap_or_else(|e| panic!("registered: {e:?}"));
    let (token, _) = keys()
        .issue_access(account.id, account.token_version, chrono::Utc::now())
        .unwrap_or_else(|e| panic!("signed: {e:?}"));
    let mut user = TestUser::bearer(app, &token);
    user.id = Some(account.id);
    user
}

/// An organizer with its administrator and one live event.
pub struct Shop {
    pub staff: TestUser,
    pub admin: TestUser,
    pub organizer: String,
    pub event: String,
}

pub const CREATE_PRODUCT: &str =
    "mutation($input: CreateProductInput!) { createProduct(input: $input) { product { id } } }";
pub const ADD_TO_CART: &str = "mutation($input: AddToCartInput!) { addToCart(input: $input) { cart { id positions { id expires } } } }";
pub const CHECKOUT: &str = "mutation($input: CheckoutInput!) { checkout(input: $input) { secret order { id code status total { amount currency } positions { positionid secret ticketKey valid price { amount } taxValue { amount } } } } }";
pub const AVAILABILITY: &str = "query($o: String!, $e: String!) { event(organizerSlug: $o, slug: $e) { products { name availability { state remainingQuantity isAvailable } } } }";

impl Shop {
    pub async fn open(app: &TestApp, slug: &str) -> Self {
        let staff = TestUser::staff(app, &format!("{slug}-staff")).await;
        let admin = TestUser::organizer(app, &format!("{slug}-admin")).await;
        let created = staff
            .gql(
                "mutation($input: CreateOrganizerInput!) { createOrganizer(input: $input) { organizer { id slug } } }",
                json!({ "input": { "name": "Arena", "slug": slug, "adminUserId": global_id("User", admin.id.expect("a person")) } }),
            )
            .await;
        let organizer = created["data"]["createOrganizer"]["organizer"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("an organizer: {created}"))
            .to_owned();
        let event = admin
            .gql(
                "mutation($input: CreateEventInput!) { createEvent(input: $input) { event { id live } } }",
                json!({ "input": {
                    "organizerId": organizer, "name": "Finals", "slug": "finals", "currency": "EUR",
                    "dateFrom": "2027-06-01T18:00:00Z", "timeZone": "Europe/Paris", "live": true,
                } }),
            )
            .await;
        let event_id = event["data"]["createEvent"]["event"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("an event: {event}"))
            .to_owned();
        Self {
            staff,
            admin,
            organizer,
            event: event_id,
        }
    }

    /// A product with a quota of `total` (its total quantity).
    pub async fn product(&self, name: &str, price: &str, total: i32) -> String {
        let body = self
            .admin
            .gql(
                CREATE_PRODUCT,
                json!({ "input": { "eventId": self.event, "name": name, "kind": "ADMISSION", "price": price, "taxRate": "19", "totalQuantity": total } }),
            )
            .await;
        body["data"]["createProduct"]["product"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("a product: {body}"))
            .to_owned()
    }
}

pub async fn add_to_cart(app: &TestApp, product: &str, quantity: i32, cart: Option<&str>) -> Value {
    app.graphql(
        ADD_TO_CART,
        json!({ "input": { "productId": product, "quantity": quantity, "cartId": cart } }),
    )
    .await
}

pub async fn checkout(app: &TestApp, cart: &str) -> Value {
    app.graphql(
        CHECKOUT,
        json!({ "input": { "cartId": cart, "email": "buyer@example.com" } }),
    )
    .await
}

/// A replica for running jobs (the hold expiry) whose clock the test moves,
/// publishing on `bus`.
pub fn job_replica(
    app: &TestApp,
    bus: voltgate::bus::SharedBus,
) -> (Arc<ManualClock>, ServiceContext) {
    let clock = Arc::new(ManualClock::at(chrono::Utc::now()));
    let mut services = ServiceContext::new(
        app.db.clone(),
        bus,
        Arc::new(keys()),
        Arc::new(RateLimiter::disabled()),
    );
    services.clock = clock.clone();
    (clock, services)
}

async fn availability(app: &TestApp, slug: &str) -> Value {
    let body = app
        .graphql(AVAILABILITY, json!({ "o": slug, "e": "finals" }))
        .await;
    body["data"]["event"]["products"][0]["availability"].clone()
}

#[tokio::test]
async fn an_organizer_sells_tickets_from_cart_to_paid_order() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "arena").await;
    let product = shop.product("Seat", "49.50", 2).await;
    assert_eq!(
        availability(&app, "arena").await,
        json!({ "state": "OK", "remainingQuantity": 2, "isAvailable": true })
    );

    // Two seats held by a cart: nothing is left, because of the cart.
    let added = add_to_cart(&app, &product, 2, None).await;
    let cart = added["data"]["addToCart"]["cart"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a cart: {added}"))
        .to_owned();
    assert_eq!(
        added["data"]["addToCart"]["cart"]["positions"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(availability(&app, "arena").await["state"], "RESERVED");
    let late = add_to_cart(&app, &product, 1, None).await;
    assert_eq!(
        (code(&late), reason(&late)),
        ("CONFLICT", "SOLD_OUT"),
        "{late}"
    );

    // Checkout: a pending order with two tickets, prices computed on the server.
    let placed = checkout(&app, &cart).await;
    let order = &placed["data"]["checkout"]["order"];
    assert_eq!(order["status"], "PENDING", "{placed}");
    assert_eq!(
        order["total"],
        json!({ "amount": "99.00", "currency": "EUR" })
    );
    let positions = order["positions"].as_array().cloned().unwrap_or_default();
    assert_eq!(positions.len(), 2);
    for position in &positions {
        let key = position["ticketKey"].as_str().unwrap_or_default();
        assert_eq!(key.len(), 64, "a SHA-256 key: {position}");
        assert_eq!(position["valid"], false, "not valid before payment");
        assert_eq!(position["taxValue"]["amount"], "7.90");
    }
    assert_ne!(positions[0]["ticketKey"], positions[1]["ticketKey"]);
    assert_eq!(availability(&app, "arena").await["state"], "ORDERED");
    let again = checkout(&app, &cart).await;
    assert_eq!(
        code(&again),
        "BAD_USER_INPUT",
        "a cart checks out once: {again}"
    );

    // The team marks it paid: sold out for good, and the tickets are valid.
    let order_id = order["id"].as_str().unwrap_or_default().to_owned();
    let paid = shop
        .admin
        .gql(
            "mutation($id: ID!) { markOrderPaid(input: { orderId: $id }) { order { status } } }",
            json!({ "id": order_id }),
        )
        .await;
    assert_eq!(
        paid["data"]["markOrderPaid"]["order"]["status"], "PAID",
        "{paid}"
    );
    assert_eq!(
        availability(&app, "arena").await,
        json!({ "state": "GONE", "remainingQuantity": 0, "isAvailable": false })
    );

    // A buyer without an account reaches the order with its code and secret.
    let lookup = "query($e: ID!, $c: String!, $s: String!) { order(eventId: $e, code: $c, secret: $s) { status positions { valid } } }";
    let vars = |secret: &str| json!({ "e": shop.event, "c": order["code"], "s": secret });
    let secret = placed["data"]["checkout"]["secret"]
        .as_str()
        .unwrap_or_default();
    let found = app.graphql(lookup, vars(secret)).await;
    assert_eq!(found["data"]["order"]["status"], "PAID", "{found}");
    assert_eq!(found["data"]["order"]["positions"][0]["valid"], true);
    let wrong = app.graphql(lookup, vars("not-the-secret")).await;
    assert_eq!(code(&wrong), "NOT_FOUND");

    // Every change is in the audit log, with who made it.
    let log = shop
        .admin
        .gql(
            "query { event(organizerSlug: \"arena\", slug: \"finals\") { logEntries { actionType userId } } }",
            json!({}),
        )
        .await;
    let actions: Vec<String> = log["data"]["event"]["logEntries"]
        .as_array()
        .unwrap_or_else(|| panic!("log entries: {log}"))
        .iter()
        .map(|e| e["actionType"].as_str().unwrap_or_default().to_owned())
        .collect();
    for action in [
        "voltgate.event.created",
        "voltgate.product.added",
        "voltgate.quota.added",
        "voltgate.order.placed",
        "voltgate.order.paid",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
    assert_eq!(
        log["data"]["event"]["logEntries"][0]["userId"],
        json!(global_id("User", shop.admin.id.unwrap_or_default()))
    );
}

#[tokio::test]
async fn two_hundred_buyers_racing_for_the_last_ten_seats_get_exactly_ten_orders() {
    let app = Arc::new(spawn_app().await);
    let shop = Shop::open(&app, "rush").await;
    let product = shop.product("Last seats", "10.00", 10).await;

    let buyers = (0..200).map(|_| {
        let (app, product) = (Arc::clone(&app), product.clone());
        tokio::spawn(async move {
            let added = add_to_cart(&app, &product, 1, None).await;
            let Some(cart) = added["data"]["addToCart"]["cart"]["id"].as_str() else {
                return Err(format!("{}/{}", code(&added), reason(&added)));
            };
            let placed = checkout(&app, cart).await;
            match placed["data"]["checkout"]["order"]["code"].as_str() {
                Some(code) => Ok(code.to_owned()),
                None => Err(format!("checkout failed: {placed}")),
            }
        })
    });
    let mut orders = Vec::new();
    let mut refusals = Vec::new();
    for buyer in buyers {
        match buyer.await.expect("the buyer finishes") {
            Ok(code) => orders.push(code),
            Err(refusal) => refusals.push(refusal),
        }
    }
    assert_eq!(
        orders.len(),
        10,
        "exactly ten orders; refusals: {refusals:?}"
    );
    assert!(
        refusals.iter().all(|r| r == "CONFLICT/SOLD_OUT"),
        "everyone else is told it is sold out: {refusals:?}"
    );
    orders.sort();
    orders.dedup();
    assert_eq!(orders.len(), 10, "order codes are unique");

    let quotas = shop
        .admin
        .gql(
            "query { event(organizerSlug: \"rush\", slug: \"finals\") { quotas { size paid pending inCarts availability { state remainingQuantity } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        quotas["data"]["event"]["quotas"][0],
        json!({ "size": 10, "paid": 0, "pending": 10, "inCarts": 0, "availability": { "state": "ORDERED", "remainingQuantity": 0 } }),
        "{quotas}"
    );
}

/// Racing requests of one event share a batch of the event's lane: each is
/// decided against what the ones before it in the batch took.
#[tokio::test]
async fn racing_requests_are_decided_one_after_the_other_within_their_batch() {
    let app = Arc::new(spawn_app().await);
    let shop = Shop::open(&app, "batched").await;
    let limited = |name: &str, field: &str| json!({ "input": { "eventId": shop.event, "name": name, "kind": "ADMISSION", "price": "5.00", "totalQuantity": 100, field: 3 } });
    let scarf = shop
        .admin
        .gql(CREATE_PRODUCT, limited("Scarf", "maxPerOrder"))
        .await;
    let scarf = scarf["data"]["createProduct"]["product"]["id"]
        .as_str()
        .expect("a product")
        .to_owned();
    let pass = shop
        .admin
        .gql(CREATE_PRODUCT, limited("Pass", "limitPerUser"))
        .await;
    let pass = pass["data"]["createProduct"]["product"]["id"]
        .as_str()
        .expect("a product")
        .to_owned();

    // Twelve adds of one scarf race into one cart allowing three per order.
    let first = add_to_cart(&app, &scarf, 1, None).await;
    let cart = first["data"]["addToCart"]["cart"]["id"]
        .as_str()
        .expect("a cart")
        .to_owned();
    let adds = (0..12).map(|_| {
        let (app, scarf, cart) = (Arc::clone(&app), scarf.clone(), cart.clone());
        tokio::spawn(async move { add_to_cart(&app, &scarf, 1, Some(&cart)).await })
    });
    let mut refused = Vec::new();
    for add in adds {
        let body = add.await.expect("the add finishes");
        if body["errors"].is_array() {
            refused.push(format!(
                "{}:{}",
                code(&body),
                body["errors"][0]["extensions"]["field"]
            ));
        }
    }
    assert_eq!(refused.len(), 10, "two more fit the cart: {refused:?}");
    assert!(
        refused.iter().all(|r| r == "BAD_USER_INPUT:\"quantity\""),
        "{refused:?}"
    );
    let held = app
        .graphql(
            "query($id: String!) { cart(id: $id) { positions { id } } }",
            json!({ "id": cart }),
        )
        .await;
    assert_eq!(
        held["data"]["cart"]["positions"].as_array().map(Vec::len),
        Some(3),
        "{held}"
    );

    // One account checks out five carts of a pass limited to three each at once.
    let fan = person(&app, "batched-fan").await;
    let carts = carts_of_one(&fan, &pass, 5).await;
    let checkouts = carts.into_iter().map(|cart| {
        let fan = fan.clone();
        tokio::spawn(async move {
            fan.gql(
                CHECKOUT,
                json!({ "input": { "cartId": cart, "email": "fan@example.com" } }),
            )
            .await
        })
    });
    let mut placed = 0;
    let mut over = 0;
    for checkout in checkouts {
        let body = checkout.await.expect("the checkout finishes");
        if body["data"]["checkout"]["order"]["code"].is_string() {
            placed += 1;
        } else if code(&body) == "CONFLICT" {
            over += 1;
        } else {
            panic!("an unexpected answer: {body}");
        }
    }
    assert_eq!((placed, over), (3, 2), "three passes per account");
}

/// `count` new carts of `buyer`, each holding one of `product`.
async fn carts_of_one(buyer: &TestUser, product: &str, count: usize) -> Vec<String> {
    let mut carts = Vec::with_capacity(count);
    for _ in 0..count {
        let added = buyer
            .gql(
                ADD_TO_CART,
                json!({ "input": { "productId": product, "quantity": 1 } }),
            )
            .await;
        carts.push(
            added["data"]["addToCart"]["cart"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("a cart: {added}"))
                .to_owned(),
        );
    }
    carts
}

/// A per-account limit holds when two replicas' lanes check out carts of one
/// account at once: each batch reads what the account bought only once it
/// holds the quotas, i.e. after the other replica's batch committed. (With the
/// in-process bus there is one replica, and the race runs on it.)
#[tokio::test]
async fn a_per_account_limit_holds_when_replicas_check_out_at_once() {
    let app = spawn_app().await;
    let replica = app.replica().await;
    let other: &TestApp = replica.as_ref().unwrap_or(&app);
    let shop = Shop::open(&app, "replicated").await;
    let pass = shop
        .admin
        .gql(
            CREATE_PRODUCT,
            json!({ "input": { "eventId": shop.event, "name": "Pass", "kind": "ADMISSION", "price": "5.00", "totalQuantity": 100, "limitPerUser": 1 } }),
        )
        .await;
    let pass = pass["data"]["createProduct"]["product"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a product: {pass}"))
        .to_owned();
    let fan = person(&app, "replicated-fan").await;
    let elsewhere = TestUser::bearer(other, &fan.token);
    let carts = carts_of_one(&fan, &pass, 8).await;
    let checkouts = carts.into_iter().enumerate().map(|(index, cart)| {
        let buyer = if index % 2 == 0 { &fan } else { &elsewhere }.clone();
        tokio::spawn(async move {
            buyer
                .gql(
                    CHECKOUT,
                    json!({ "input": { "cartId": cart, "email": "fan@example.com" } }),
                )
                .await
        })
    });
    let mut placed = 0;
    for checkout in checkouts {
        let body = checkout.await.expect("the checkout finishes");
        if body["data"]["checkout"]["order"]["code"].is_string() {
            placed += 1;
        } else {
            assert_eq!(code(&body), "CONFLICT", "{body}");
        }
    }
    assert_eq!(placed, 1, "one pass per account, whichever replica sold it");
}

/// A cart holds at most `VOLTGATE_CART_MAX_POSITIONS` positions, however
/// many adds race into it; a refused add takes nothing from the quota.
#[tokio::test]
async fn a_cart_holds_at_most_the_configured_positions_even_when_adds_race() {
    let app = Arc::new(spawn_app_with(&["--cart-max-positions", "5"]).await);
    let shop = Shop::open(&app, "bounded").await;
    let seat = shop.product("Seat", "5.00", 100).await;
    let first = add_to_cart(&app, &seat, 3, None).await;
    let cart = first["data"]["addToCart"]["cart"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a cart: {first}"))
        .to_owned();
    let over = add_to_cart(&app, &seat, 3, Some(&cart)).await;
    assert_eq!(code(&over), "BAD_USER_INPUT", "{over}");
    assert_eq!(
        over["errors"][0]["extensions"]["field"], "quantity",
        "{over}"
    );

    let adds = (0..8).map(|_| {
        let (app, seat, cart) = (Arc::clone(&app), seat.clone(), cart.clone());
        tokio::spawn(async move { add_to_cart(&app, &seat, 1, Some(&cart)).await })
    });
    let mut accepted = 0;
    for add in adds {
        let body = add.await.expect("the add finishes");
        if body["errors"].is_array() {
            assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
        } else {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 2, "two more fit a cart of five");
    assert_eq!(
        availability(&app, "bounded").await["remainingQuantity"],
        95,
        "the refused adds hold nothing"
    );
}

/// Each replica remembers which event's lane a cart goes to. A cart emptied
/// by the expiry job and reused for another event is checked out right on a
/// replica that still remembers its first event: that lane applies it under
/// the usual locks, so the order and the quotas are the new event's. (With
/// the in-process bus there is one replica, which remembers the reuse.)
#[tokio::test]
async fn a_cart_reused_for_another_event_is_ordered_for_it_on_any_replica() {
    let app = spawn_app().await;
    let replica = app.replica().await;
    let other: &TestApp = replica.as_ref().unwrap_or(&app);
    let first = Shop::open(&app, "first-event").await;
    let second = Shop::open(&app, "second-event").await;
    let early = first.product("Early", "5.00", 5).await;
    let late = second.product("Late", "7.00", 5).await;

    let added = add_to_cart(other, &early, 1, None).await;
    let cart = added["data"]["addToCart"]["cart"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a cart: {added}"))
        .to_owned();
    let (clock, services) = job_replica(&app, Arc::new(MemoryBus::default()));
    clock.advance(chrono::TimeDelta::minutes(31));
    voltgate::ticketing::jobs::ExpireHolds
        .run(&services)
        .await
        .expect("the hold expires");
    let reused = add_to_cart(&app, &late, 1, Some(&cart)).await;
    assert_eq!(
        reused["data"]["addToCart"]["cart"]["id"], cart,
        "an emptied cart takes another event's product: {reused}"
    );

    let placed = checkout(other, &cart).await;
    let order = &placed["data"]["checkout"]["order"];
    assert_eq!(order["status"], "PENDING", "{placed}");
    assert_eq!(order["total"]["amount"], "7.00", "{placed}");
    assert_eq!(
        availability(&app, "second-event").await["remainingQuantity"],
        4,
        "the second event's quota counts the order"
    );
    assert_eq!(
        availability(&app, "first-event").await,
        json!({ "state": "OK", "remainingQuantity": 5, "isAvailable": true }),
        "the first event's quota gave its hold back and sold nothing"
    );
    let again = checkout(other, &cart).await;
    assert_eq!(
        code(&again),
        "BAD_USER_INPUT",
        "a cart orders once: {again}"
    );
}

#[tokio::test]
async fn an_expired_cart_frees_its_quota() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "expiry").await;
    let product = shop.product("Only seat", "5.00", 1).await;
    let added = add_to_cart(&app, &product, 1, None).await;
    let cart = added["data"]["addToCart"]["cart"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a cart: {added}"))
        .to_owned();
    assert_eq!(availability(&app, "expiry").await["state"], "RESERVED");

    // The job, on a replica whose clock is past the hold (30 minutes).
    let (clock, services) = job_replica(&app, Arc::new(MemoryBus::default()));
    let job = voltgate::ticketing::jobs::ExpireHolds;
    job.run(&services).await.expect("nothing expired yet");
    assert_eq!(availability(&app, "expiry").await["state"], "RESERVED");
    clock.advance(chrono::TimeDelta::minutes(31));
    job.run(&services).await.expect("the hold expires");
    job.run(&services)
        .await
        .expect("a second run releases nothing twice");
    assert_eq!(
        availability(&app, "expiry").await,
        json!({ "state": "OK", "remainingQuantity": 1, "isAvailable": true })
    );
    let empty = checkout(&app, &cart).await;
    assert_eq!(code(&empty), "BAD_USER_INPUT", "{empty}");

    // Someone else buys the freed seat.
    let other = add_to_cart(&app, &product, 1, None).await;
    let other_cart = other["data"]["addToCart"]["cart"]["id"]
        .as_str()
        .unwrap_or_default();
    let placed = checkout(&app, other_cart).await;
    assert_eq!(
        placed["data"]["checkout"]["order"]["status"], "PENDING",
        "{placed}"
    );
}

#[tokio::test]
async fn team_api_tokens_are_shown_once_act_for_their_team_and_can_be_revoked() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "tokens").await;
    let team = shop
        .admin
        .gql(
            "mutation($input: CreateTeamInput!) { createTeam(input: $input) { team { id permissions allEvents } } }",
            json!({ "input": { "organizerId": shop.organizer, "name": "Box office", "eventIds": [shop.event], "permissions": ["CHANGE_ITEMS", "VIEW_ORDERS"] } }),
        )
        .await;
    let team_id = team["data"]["createTeam"]["team"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a team: {team}"))
        .to_owned();
    let issued = shop
        .admin
        .gql(
            "mutation($t: ID!) { createTeamApiToken(input: { teamId: $t, name: \"till 1\" }) { secret token { id active } } }",
            json!({ "t": team_id }),
        )
        .await;
    let secret = issued["data"]["createTeamApiToken"]["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("a token: {issued}"))
        .to_owned();
    let token_id = issued["data"]["createTeamApiToken"]["token"]["id"].clone();

    // The token acts with the team's permissions on the team's event.
    let created = as_token(
        &app,
        &secret,
        CREATE_PRODUCT,
        json!({ "input": { "eventId": shop.event, "name": "Scarf", "kind": "MERCHANDISE", "price": "15" } }),
    )
    .await;
    assert!(
        created["data"]["createProduct"]["product"]["id"].is_string(),
        "{created}"
    );
    let orders = as_token(
        &app,
        &secret,
        "query { event(organizerSlug: \"tokens\", slug: \"finals\") { orders { totalCount } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        orders["data"]["event"]["orders"]["totalCount"], 0,
        "{orders}"
    );
    let refused = as_token(
        &app,
        &secret,
        "mutation($id: ID!) { updateEvent(input: { eventId: $id, name: \"Renamed\" }) { event { name } } }",
        json!({ "id": shop.event }),
    )
    .await;
    assert_eq!(
        code(&refused),
        "FORBIDDEN",
        "not a permission of the team: {refused}"
    );

    // The audit log names the token.
    let log = shop
        .admin
        .gql(
            "query { event(organizerSlug: \"tokens\", slug: \"finals\") { logEntries(last: 1) { actionType teamApiTokenId userId } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        log["data"]["event"]["logEntries"][0],
        json!({ "actionType": "voltgate.product.added", "teamApiTokenId": token_id, "userId": null }),
        "{log}"
    );

    // Revoked, it stops at once; a made-up token never worked.
    let revoked = shop
        .admin
        .gql(
            "mutation($id: ID!) { revokeTeamApiToken(input: { tokenId: $id }) { token { active } } }",
            json!({ "id": token_id }),
        )
        .await;
    assert_eq!(
        revoked["data"]["revokeTeamApiToken"]["token"]["active"], false,
        "{revoked}"
    );
    let after = as_token(
        &app,
        &secret,
        CREATE_PRODUCT,
        json!({ "input": { "eventId": shop.event, "name": "Cap", "kind": "MERCHANDISE", "price": "9" } }),
    )
    .await;
    assert_eq!(code(&after), "UNAUTHENTICATED", "{after}");
    let forged = as_token(&app, "made-up", CREATE_PRODUCT, json!({ "input": { "eventId": shop.event, "name": "Cap", "kind": "MERCHANDISE", "price": "9" } })).await;
    assert_eq!(code(&forged), "UNAUTHENTICATED");
}

#[tokio::test]
async fn bad_ticketing_input_gets_precise_errors() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "inputs").await;
    let cases = [
        (
            json!({ "eventId": shop.event, "name": "X", "kind": "ADMISSION", "price": "1.234" }),
            "price",
        ),
        (
            json!({ "eventId": shop.event, "name": "X", "kind": "ADMISSION", "price": "-1" }),
            "price",
        ),
        (
            json!({ "eventId": shop.event, "name": "X", "kind": "ADMISSION", "price": "1", "taxRate": "101" }),
            "taxRate",
        ),
        (
            json!({ "eventId": shop.event, "name": "", "kind": "ADMISSION", "price": "1" }),
            "name",
        ),
        (
            json!({ "eventId": shop.event, "name": "X", "kind": "ADMISSION", "price": "1", "minPerOrder": 3, "maxPerOrder": 2 }),
            "minPerOrder",
        ),
        (
            json!({ "eventId": shop.organizer, "name": "X", "kind": "ADMISSION", "price": "1" }),
            "eventId",
        ),
    ];
    for (input, field) in cases {
        let body = shop
            .admin
            .gql(CREATE_PRODUCT, json!({ "input": input }))
            .await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    let taken = shop
        .admin
        .gql(
            "mutation($input: CreateEventInput!) { createEvent(input: $input) { event { id } } }",
            json!({ "input": { "organizerId": shop.organizer, "name": "Again", "slug": "finals", "currency": "EUR", "dateFrom": "2027-06-01T18:00:00Z" } }),
        )
        .await;
    assert_eq!(
        (code(&taken), reason(&taken)),
        ("CONFLICT", "SLUG_TAKEN"),
        "{taken}"
    );

    // A product of an event that is not live cannot be bought.
    let closed = shop
        .admin
        .gql(
            "mutation($id: ID!) { updateEvent(input: { eventId: $id, live: false }) { event { live } } }",
            json!({ "id": shop.event }),
        )
        .await;
    assert_eq!(
        closed["data"]["updateEvent"]["event"]["live"], false,
        "{closed}"
    );
    let product = shop.product("Hidden", "1", 5).await;
    let body = add_to_cart(&app, &product, 1, None).await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let body = add_to_cart(&app, &product, 0, None).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert!(
        !body.to_string().to_lowercase().contains("sql"),
        "no SQL leaks: {body}"
    );
}

const AVAILABILITY_CHANGED: &str = "subscription($e: ID!) {
    availabilityChanged(eventId: $e) { eventId cursor quotas { quotaId availability { state remainingQuantity isAvailable } } }
}";

/// The availability of the event's only quota in a change.
fn only_quota(change: &Value) -> Value {
    change["data"]["availabilityChanged"]["quotas"][0]["availability"].clone()
}

/// A storefront watching the shop's event, once it is seen to be watching:
/// a subscription has no ready signal, so seats of `product` are added to
/// one cart until a change arrives, and the changes still coming are let
/// pass. Returns the subscription, the cart and the first change seen.
async fn watch_holding(
    app: &TestApp,
    shop: &Shop,
    product: &str,
) -> (crate::helpers::Subscription, String, Value) {
    let mut storefront = crate::helpers::Subscription::start(
        app.addr,
        "graphql-transport-ws",
        AVAILABILITY_CHANGED,
        json!({ "e": shop.event }),
    )
    .await;
    let mut cart = None;
    let mut seen = None;
    for _ in 0..50 {
        let added = add_to_cart(app, product, 1, cart.as_deref()).await;
        cart = added["data"]["addToCart"]["cart"]["id"]
            .as_str()
            .map(str::to_owned);
        if let Some(message) = storefront
            .try_next(std::time::Duration::from_millis(200))
            .await
        {
            seen = Some(message);
            break;
        }
    }
    let cart = cart.expect("a cart");
    let first = seen.expect("the storefront sees the hold");
    while storefront
        .try_next(std::time::Duration::from_millis(300))
        .await
        .is_some()
    {}
    (storefront, cart, first)
}

#[tokio::test]
async fn storefronts_see_carts_orders_cancellations_and_expiries_take_and_release_quota_live() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "live-shop").await;
    let product = shop.product("Seat", "20.00", 100).await;
    let (mut storefront, cart, first) = watch_holding(&app, &shop, &product).await;
    assert_eq!(
        first["payload"]["data"]["availabilityChanged"]["eventId"],
        shop.event
    );
    let in_cart =
        add_to_cart(&app, &product, 1, Some(&cart)).await["data"]["addToCart"]["cart"]["positions"]
            .as_array()
            .map_or(0, Vec::len);
    let left = 100 - i64::try_from(in_cart).unwrap_or(100);
    assert_eq!(
        only_quota(&storefront.next_event().await),
        json!({ "state": "OK", "remainingQuantity": left, "isAvailable": true })
    );

    // The checkout moves the holds to a pending order: what is left stays.
    let placed = checkout(&app, &cart).await;
    let order = placed["data"]["checkout"]["order"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("an order: {placed}"))
        .to_owned();
    assert_eq!(
        only_quota(&storefront.next_event().await)["remainingQuantity"],
        left
    );

    // Canceling the order gives every seat back.
    let canceled = shop
        .admin
        .gql(
            "mutation($id: ID!) { cancelOrder(input: { orderId: $id }) { order { status } } }",
            json!({ "id": order }),
        )
        .await;
    assert_eq!(
        canceled["data"]["cancelOrder"]["order"]["status"], "CANCELED",
        "{canceled}"
    );
    assert_eq!(
        only_quota(&storefront.next_event().await)["remainingQuantity"],
        100
    );

    // Selling the last seats shows the quota reserved; their expiry frees them.
    let held = add_to_cart(&app, &product, 100, None).await;
    assert!(
        held["data"]["addToCart"]["cart"]["id"].is_string(),
        "{held}"
    );
    assert_eq!(
        only_quota(&storefront.next_event().await),
        json!({ "state": "RESERVED", "remainingQuantity": 0, "isAvailable": false })
    );
    let (clock, services) = job_replica(&app, app.bus.clone());
    clock.advance(chrono::TimeDelta::minutes(31));
    voltgate::ticketing::jobs::ExpireHolds
        .run(&services)
        .await
        .expect("the holds expire");
    assert_eq!(
        only_quota(&storefront.next_event().await),
        json!({ "state": "OK", "remainingQuantity": 100, "isAvailable": true })
    );

    // An event that is not live is not watched by strangers.
    let draft = shop
        .admin
        .gql(
            "mutation($input: CreateEventInput!) { createEvent(input: $input) { event { id } } }",
            json!({ "input": {
                "organizerId": shop.organizer, "name": "Draft", "slug": "draft", "currency": "EUR",
                "dateFrom": "2027-06-01T18:00:00Z",
            } }),
        )
        .await;
    let draft = draft["data"]["createEvent"]["event"]["id"].clone();
    let mut stranger = crate::helpers::Subscription::start(
        app.addr,
        "graphql-transport-ws",
        AVAILABILITY_CHANGED,
        json!({ "e": draft }),
    )
    .await;
    let refused = stranger.next_message().await;
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{refused}"
    );
}

#[tokio::test]
async fn adding_to_a_cart_extends_the_holds_of_its_positions() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "extend").await;
    let product = shop.product("Seat", "5.00", 10).await;
    let first = add_to_cart(&app, &product, 1, None).await;
    let cart = first["data"]["addToCart"]["cart"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a cart: {first}"))
        .to_owned();
    let expiry = |body: &Value, i: usize| -> chrono::DateTime<chrono::Utc> {
        body["data"]["addToCart"]["cart"]["positions"][i]["expires"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("position {i} with an expiry: {body}"))
    };
    let held_until = expiry(&first, 0);
    // The second addition starts a later hold.
    let started = held_until - chrono::TimeDelta::minutes(30);
    while chrono::Utc::now() <= started + chrono::TimeDelta::milliseconds(5) {
        tokio::task::yield_now().await;
    }
    let second = add_to_cart(&app, &product, 1, Some(&cart)).await;
    let (a, b) = (expiry(&second, 0), expiry(&second, 1));
    assert!(a > held_until, "the first hold is extended: {second}");
    assert_eq!(a, b, "the cart's positions expire together: {second}");
    let read = app
        .graphql(
            "query($id: String!) { cart(id: $id) { positions { expires } } }",
            json!({ "id": cart }),
        )
        .await;
    let stored: Vec<&str> = read["data"]["cart"]["positions"]
        .as_array()
        .unwrap_or_else(|| panic!("the cart: {read}"))
        .iter()
        .filter_map(|p| p["expires"].as_str())
        .collect();
    assert_eq!(stored.len(), 2, "{read}");
    assert_eq!(stored[0], stored[1], "stored as answered: {read}");
}

#[tokio::test]
async fn deleting_a_blocking_voucher_announces_the_units_it_gives_back() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "unblock").await;
    let product = shop.product("Seat", "20.00", 10).await;
    let created = shop
        .admin
        .gql(
            "mutation($input: CreateVouchersInput!) { createVouchers(input: $input) { vouchers { id blocked } } }",
            json!({ "input": { "eventId": shop.event, "codes": ["keep"], "maxUsages": 4,
                "blockQuota": true, "productIds": [product] } }),
        )
        .await;
    let voucher = created["data"]["createVouchers"]["vouchers"][0]["id"].clone();
    assert!(voucher.is_string(), "{created}");
    let (mut storefront, cart, _) = watch_holding(&app, &shop, &product).await;
    let held = app
        .graphql(
            "query($id: String!) { cart(id: $id) { positions { id } } }",
            json!({ "id": cart }),
        )
        .await["data"]["cart"]["positions"]
        .as_array()
        .map_or(0, Vec::len);
    let held = i64::try_from(held).unwrap_or_default();
    assert!(held >= 1);
    let deleted = shop
        .admin
        .gql(
            "mutation($id: ID!) { deleteVoucher(input: { voucherId: $id }) { deletedVoucherId } }",
            json!({ "id": voucher }),
        )
        .await;
    assert_eq!(
        deleted["data"]["deleteVoucher"]["deletedVoucherId"], voucher,
        "{deleted}"
    );
    assert_eq!(
        only_quota(&storefront.next_event().await),
        json!({ "state": "OK", "remainingQuantity": 10 - held, "isAvailable": true })
    );
}
