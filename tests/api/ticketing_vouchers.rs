//! Vouchers and retried checkouts. Teams create vouchers (one or many), buyers use them by code; the
//! server computes the price, and a voucher is never redeemed more often
//! than its maximum, however many buyers race for it. A checkout retried with
//! its idempotency key returns the first order, also when the retries race.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use crate::ticketing::{CHECKOUT, CREATE_PRODUCT, Shop, checkout, code, reason};

const CREATE_VOUCHERS: &str = "mutation($input: CreateVouchersInput!) { createVouchers(input: $input) { vouchers { id code maxUsages redeemed priceMode value { amount } percent tag productIds } } }";
const ADD_WITH_VOUCHER: &str = "mutation($input: AddToCartInput!) { addToCart(input: $input) { cart { id positions { price { amount } voucherId } } } }";

async fn vouchers(shop: &Shop, input: Value) -> Value {
    let mut input = input;
    input["eventId"] = json!(shop.event);
    shop.admin
        .gql(CREATE_VOUCHERS, json!({ "input": input }))
        .await
}

async fn add(app: &TestApp, product: &str, quantity: i32, voucher: Option<&str>) -> Value {
    app.graphql(
        ADD_WITH_VOUCHER,
        json!({ "input": { "productId": product, "quantity": quantity, "voucherCode": voucher } }),
    )
    .await
}

fn cart_of(body: &Value) -> String {
    body["data"]["addToCart"]["cart"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a cart: {body}"))
        .to_owned()
}

async fn redeemed(shop: &Shop, slug: &str, tag: &str) -> Vec<i64> {
    let body = shop
        .admin
        .gql(
            "query($o: String!, $t: String) { event(organizerSlug: $o, slug: \"finals\") { vouchers(tag: $t) { nodes { redeemed } } } }",
            json!({ "o": slug, "t": tag }),
        )
        .await;
    body["data"]["event"]["vouchers"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("vouchers: {body}"))
        .iter()
        .map(|v| v["redeemed"].as_i64().unwrap_or(-1))
        .collect()
}

#[tokio::test]
async fn vouchers_set_prices_on_the_server_unlock_products_and_are_used_up() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "vouch").await;
    let seat = shop.product("Seat", "40.00", 100).await;
    let hidden = shop
        .admin
        .gql(
            CREATE_PRODUCT,
            json!({ "input": { "eventId": shop.event, "name": "Backstage", "kind": "ADMISSION", "price": "99.00", "hideWithoutVoucher": true, "totalQuantity": 1 } }),
        )
        .await;
    let hidden = hidden["data"]["createProduct"]["product"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a product: {hidden}"))
        .to_owned();

    // Bulk: named codes, and random ones.
    let half = vouchers(
        &shop,
        json!({ "codes": ["half-off", "HALF-2"], "priceMode": "PERCENT", "percent": "50", "tag": "press" }),
    )
    .await;
    let created = &half["data"]["createVouchers"]["vouchers"];
    assert_eq!(created[0]["code"], "HALF-OFF", "{half}");
    assert_eq!(created[1]["percent"], "50.00", "{half}");
    let random = vouchers(
        &shop,
        json!({ "count": 3, "priceMode": "COMPLIMENTARY", "tag": "crew", "showHiddenItems": true }),
    )
    .await;
    let codes: Vec<&str> = random["data"]["createVouchers"]["vouchers"]
        .as_array()
        .unwrap_or_else(|| panic!("vouchers: {random}"))
        .iter()
        .filter_map(|v| v["code"].as_str())
        .collect();
    assert_eq!(codes.len(), 3, "{random}");
    assert!(
        codes.iter().all(|c| c.len() == 16
            && c.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())),
        "{codes:?}"
    );

    // The price is the server's: half of 40.00, whatever the client thinks.
    let added = add(&app, &seat, 1, Some("half-off")).await;
    assert_eq!(
        added["data"]["addToCart"]["cart"]["positions"][0]["price"]["amount"], "20.00",
        "{added}"
    );
    assert_eq!(
        added["data"]["addToCart"]["cart"]["positions"][0]["voucherId"], created[0]["id"],
        "{added}"
    );
    let placed = checkout(&app, &cart_of(&added)).await;
    assert_eq!(
        placed["data"]["checkout"]["order"]["total"]["amount"], "20.00",
        "{placed}"
    );
    assert_eq!(redeemed(&shop, "vouch", "press").await, vec![1, 0]);

    // Used up: refused at the cart.
    let again = add(&app, &seat, 1, Some("HALF-OFF")).await;
    assert_eq!(
        (code(&again), reason(&again)),
        ("CONFLICT", "ALREADY_REDEEMED"),
        "{again}"
    );
    // Two positions need two usages.
    let two = add(&app, &seat, 2, Some("HALF-2")).await;
    assert_eq!(reason(&two), "ALREADY_REDEEMED", "{two}");

    // A hidden product needs a voucher that shows it; a complimentary order is paid at once.
    let without = add(&app, &hidden, 1, None).await;
    assert_eq!(reason(&without), "NOT_ON_SALE", "{without}");
    let press = add(&app, &hidden, 1, Some("HALF-2")).await;
    assert_eq!(reason(&press), "NOT_ON_SALE", "{press}");
    let crew = add(&app, &hidden, 1, Some(codes[0])).await;
    assert_eq!(
        crew["data"]["addToCart"]["cart"]["positions"][0]["price"]["amount"], "0.00",
        "{crew}"
    );
    let comp = checkout(&app, &cart_of(&crew)).await;
    assert_eq!(
        comp["data"]["checkout"]["order"]["status"], "PAID",
        "{comp}"
    );
    assert_eq!(
        comp["data"]["checkout"]["order"]["total"]["amount"], "0.00",
        "{comp}"
    );

    // Every change is in the audit log.
    let log = shop
        .admin
        .gql(
            "query { event(organizerSlug: \"vouch\", slug: \"finals\") { logEntries { actionType } } }",
            json!({}),
        )
        .await;
    let added_entries = log["data"]["event"]["logEntries"]
        .as_array()
        .unwrap_or_else(|| panic!("a log: {log}"))
        .iter()
        .filter(|e| e["actionType"] == "voltgate.voucher.added")
        .count();
    assert_eq!(added_entries, 2, "{log}");
}

#[tokio::test]
async fn vouchers_skip_quotas_and_enforce_minimum_usages_and_windows() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "quota-vouch").await;
    let seat = shop.product("Seat", "10.00", 1).await;
    let sold = add(&app, &seat, 1, None).await;
    let sold = checkout(&app, &cart_of(&sold)).await;
    assert!(sold["data"]["checkout"]["order"].is_object(), "{sold}");
    let full = add(&app, &seat, 1, None).await;
    assert_eq!(reason(&full), "SOLD_OUT", "{full}");

    vouchers(
        &shop,
        json!({ "codes": ["GUEST"], "allowIgnoreQuota": true, "priceMode": "SET", "value": "2.50" }),
    )
    .await;
    let guest = add(&app, &seat, 1, Some("guest")).await;
    assert_eq!(
        guest["data"]["addToCart"]["cart"]["positions"][0]["price"]["amount"], "2.50",
        "{guest}"
    );
    let placed = checkout(&app, &cart_of(&guest)).await;
    assert_eq!(
        placed["data"]["checkout"]["order"]["total"]["amount"], "2.50",
        "{placed}"
    );

    // A group voucher: at least two positions in its first order.
    let other = shop.product("Standing", "8.00", 50).await;
    vouchers(
        &shop,
        json!({ "codes": ["GROUP"], "maxUsages": 4, "minUsages": 2, "priceMode": "SUBTRACT", "value": "3.00" }),
    )
    .await;
    let one = add(&app, &other, 1, Some("GROUP")).await;
    let refused = checkout(&app, &cart_of(&one)).await;
    assert_eq!(code(&refused), "BAD_USER_INPUT", "{refused}");
    let two = add(&app, &other, 2, Some("GROUP")).await;
    let placed = checkout(&app, &cart_of(&two)).await;
    assert_eq!(
        placed["data"]["checkout"]["order"]["total"]["amount"], "10.00",
        "{placed}"
    );

    // Outside its window.
    vouchers(
        &shop,
        json!({ "codes": ["LATE"], "validUntil": "2020-01-01T00:00:00Z" }),
    )
    .await;
    let late = add(&app, &other, 1, Some("LATE")).await;
    assert_eq!(reason(&late), "EXPIRED", "{late}");
    vouchers(&shop, json!({ "codes": ["OFF"], "active": false })).await;
    let off = add(&app, &other, 1, Some("OFF")).await;
    assert_eq!(reason(&off), "EXPIRED", "{off}");

    // Only for the products (or a quota's products) it names.
    let only = vouchers(
        &shop,
        json!({ "codes": ["ONLY"], "maxUsages": 5, "productIds": [other], "priceMode": "SET", "value": "1.00" }),
    )
    .await;
    assert_eq!(
        only["data"]["createVouchers"]["vouchers"][0]["productIds"],
        json!([other]),
        "{only}"
    );
    let wrong = add(&app, &seat, 1, Some("ONLY")).await;
    assert_eq!(
        wrong["errors"][0]["extensions"]["field"], "voucherCode",
        "{wrong}"
    );
    let right = add(&app, &other, 1, Some("ONLY")).await;
    assert_eq!(
        right["data"]["addToCart"]["cart"]["positions"][0]["price"]["amount"], "1.00",
        "{right}"
    );
    let quotas = shop
        .admin
        .gql(
            "query { event(organizerSlug: \"quota-vouch\", slug: \"finals\") { quotas { id name } } }",
            json!({}),
        )
        .await;
    let seat_quota = quotas["data"]["event"]["quotas"][0]["id"].clone();
    assert_eq!(
        quotas["data"]["event"]["quotas"][0]["name"], "Seat",
        "{quotas}"
    );
    vouchers(
        &shop,
        json!({ "codes": ["SEATS"], "quotaId": seat_quota, "allowIgnoreQuota": true }),
    )
    .await;
    let seats = add(&app, &other, 1, Some("SEATS")).await;
    assert_eq!(code(&seats), "BAD_USER_INPUT", "{seats}");
    let seats = add(&app, &seat, 1, Some("SEATS")).await;
    assert!(seats["data"]["addToCart"].is_object(), "{seats}");

    let unknown = add(&app, &other, 1, Some("NOPE")).await;
    assert_eq!(code(&unknown), "BAD_USER_INPUT", "{unknown}");
    assert_eq!(
        unknown["errors"][0]["extensions"]["field"], "voucherCode",
        "{unknown}"
    );
}

#[tokio::test]
async fn bad_voucher_input_is_refused_precisely_and_changes_nothing() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "bad-vouch").await;
    let cases = [
        (
            json!({ "codes": ["A"], "priceMode": "PERCENT", "value": "1.00" }),
            "value",
        ),
        (
            json!({ "codes": ["A"], "priceMode": "PERCENT", "percent": "100.01" }),
            "percent",
        ),
        (json!({ "codes": ["A"], "priceMode": "SET" }), "value"),
        (json!({ "codes": ["A"], "blockQuota": true }), "blockQuota"),
        (
            json!({ "codes": ["A"], "productIds": [crate::helpers::global_id("Product", 999_999)] }),
            "productIds",
        ),
        (
            json!({ "codes": ["A"], "quotaId": crate::helpers::global_id("Quota", 999_999) }),
            "quotaId",
        ),
        (
            json!({ "codes": ["A"], "variationId": crate::helpers::global_id("ProductVariation", 999_999) }),
            "variationId",
        ),
        (json!({ "codes": ["A"], "maxUsages": 0 }), "maxUsages"),
        (
            json!({ "codes": ["A"], "maxUsages": 2, "minUsages": 3 }),
            "minUsages",
        ),
        (json!({ "codes": ["A", "a"] }), "codes"),
        (json!({ "codes": ["not ok"] }), "codes"),
        (json!({ "count": 1001 }), "codes"),
        (json!({}), "codes"),
        (
            json!({ "codes": ["A"], "validFrom": "2027-01-02T00:00:00Z", "validUntil": "2027-01-01T00:00:00Z" }),
            "validUntil",
        ),
    ];
    for (input, field) in cases {
        let body = vouchers(&shop, input.clone()).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{input}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["field"], field,
            "{input}: {body}"
        );
    }
    let first = vouchers(&shop, json!({ "codes": ["TWICE"] })).await;
    assert!(first["data"]["createVouchers"].is_object(), "{first}");
    // One taken code refuses the whole batch.
    let taken = vouchers(&shop, json!({ "codes": ["NEW", "twice"] })).await;
    assert_eq!(
        (code(&taken), reason(&taken)),
        ("CONFLICT", "CODE_TAKEN"),
        "{taken}"
    );
    let count = shop
        .admin
        .gql(
            "query { event(organizerSlug: \"bad-vouch\", slug: \"finals\") { vouchers { totalCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        count["data"]["event"]["vouchers"]["totalCount"], 1,
        "{count}"
    );
}

#[tokio::test]
async fn buyers_racing_for_a_voucher_redeem_exactly_its_usages() {
    let app = Arc::new(spawn_app().await);
    let shop = Shop::open(&app, "vouch-rush").await;
    let seat = shop.product("Seat", "30.00", 1000).await;
    vouchers(
        &shop,
        json!({ "codes": ["RUSH"], "maxUsages": 3, "priceMode": "PERCENT", "percent": "10", "tag": "rush" }),
    )
    .await;
    let buyers = (0..20).map(|_| {
        let (app, seat) = (Arc::clone(&app), seat.clone());
        tokio::spawn(async move {
            let added = add(&app, &seat, 1, Some("RUSH")).await;
            let Some(cart) = added["data"]["addToCart"]["cart"]["id"].as_str() else {
                return Err(format!("{}/{}", code(&added), reason(&added)));
            };
            let placed = app
                .graphql(
                    CHECKOUT,
                    json!({ "input": { "cartId": cart, "email": "buyer@example.com" } }),
                )
                .await;
            match placed["data"]["checkout"]["order"]["total"]["amount"].as_str() {
                Some(total) => Ok(total.to_owned()),
                None => Err(format!("{}/{}", code(&placed), reason(&placed))),
            }
        })
    });
    let mut orders = Vec::new();
    let mut refusals = Vec::new();
    for buyer in buyers {
        match buyer.await.expect("the buyer finishes") {
            Ok(total) => orders.push(total),
            Err(refusal) => refusals.push(refusal),
        }
    }
    assert_eq!(orders, vec!["27.00"; 3], "refusals: {refusals:?}");
    assert!(
        refusals.iter().all(|r| r == "CONFLICT/ALREADY_REDEEMED"),
        "everyone else is told it is used up: {refusals:?}"
    );
    assert_eq!(redeemed(&shop, "vouch-rush", "rush").await, vec![3]);
}

#[tokio::test]
async fn a_retried_checkout_returns_the_first_order_even_when_the_retries_race() {
    let app = Arc::new(spawn_app().await);
    let shop = Shop::open(&app, "retry").await;
    let seat = shop.product("Seat", "15.00", 100).await;
    let cart = cart_of(&add(&app, &seat, 2, None).await);
    let attempts = (0..12).map(|_| {
        let (app, cart) = (Arc::clone(&app), cart.clone());
        tokio::spawn(async move {
            app.graphql(
                CHECKOUT,
                json!({ "input": { "cartId": cart, "email": "buyer@example.com", "idempotencyKey": "pay-1" } }),
            )
            .await
        })
    });
    let mut codes = Vec::new();
    for attempt in attempts {
        let body = attempt.await.expect("the attempt finishes");
        let placed = &body["data"]["checkout"]["order"];
        assert_eq!(placed["total"]["amount"], "30.00", "{body}");
        assert_eq!(
            placed["positions"].as_array().map(Vec::len),
            Some(2),
            "{body}"
        );
        codes.push(placed["code"].as_str().unwrap_or_default().to_owned());
    }
    codes.dedup();
    assert_eq!(
        codes.len(),
        1,
        "every retry sees the first order: {codes:?}"
    );

    // A later retry too; another key on the spent cart is a new checkout, refused.
    let later = app
        .graphql(
            CHECKOUT,
            json!({ "input": { "cartId": cart, "email": "buyer@example.com", "idempotencyKey": "pay-1" } }),
        )
        .await;
    assert_eq!(
        later["data"]["checkout"]["order"]["code"],
        codes[0].as_str(),
        "{later}"
    );
    let other = app
        .graphql(
            CHECKOUT,
            json!({ "input": { "cartId": cart, "email": "buyer@example.com", "idempotencyKey": "pay-2" } }),
        )
        .await;
    assert_eq!(code(&other), "BAD_USER_INPUT", "{other}");
    let bad = app
        .graphql(
            CHECKOUT,
            json!({ "input": { "cartId": cart, "email": "buyer@example.com", "idempotencyKey": "" } }),
        )
        .await;
    assert_eq!(
        bad["errors"][0]["extensions"]["field"], "idempotencyKey",
        "{bad}"
    );

    let orders = shop
        .admin
        .gql(
            "query { event(organizerSlug: \"retry\", slug: \"finals\") { orders { totalCount } quotas { pending inCarts } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        orders["data"]["event"]["orders"]["totalCount"], 1,
        "{orders}"
    );
    assert_eq!(
        orders["data"]["event"]["quotas"][0],
        json!({ "pending": 2, "inCarts": 0 }),
        "{orders}"
    );
}
