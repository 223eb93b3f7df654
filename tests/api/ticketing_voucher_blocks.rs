//! Vouchers that block quota (pretix's `block_quota`): their unused usages
//! are kept from everyone else, a cart with the voucher uses the kept units
//! (never new ones as well), an expired cart gives them back to the voucher,
//! a voucher whose validity ended releases them, and voucher holders racing
//! normal buyers for a small quota never oversell it.

use std::sync::Arc;

use serde_json::{Value, json};
use voltgate::bus::memory::MemoryBus;
use voltgate::jobs::Job as _;

use crate::helpers::{TestApp, spawn_app};
use crate::ticketing::{Shop, add_to_cart, checkout, code, reason};

const CREATE: &str = "mutation($input: CreateVouchersInput!) { createVouchers(input: $input) { vouchers { code blockQuota blocked } } }";
const ADD: &str = "mutation($input: AddToCartInput!) { addToCart(input: $input) { cart { id } } }";

async fn vouchers(shop: &Shop, input: Value) -> Value {
    let mut input = input;
    input["eventId"] = json!(shop.event);
    shop.admin.gql(CREATE, json!({ "input": input })).await
}

/// The event's only quota: `(inCarts, blocked, pending, remainingQuantity, state)`.
async fn quota(shop: &Shop, slug: &str) -> (i64, i64, i64, i64, String) {
    let body = shop
        .admin
        .gql(
            "query($o: String!) { event(organizerSlug: $o, slug: \"finals\") { quotas { inCarts blocked pending availability { state remainingQuantity } } } }",
            json!({ "o": slug }),
        )
        .await;
    let q = &body["data"]["event"]["quotas"][0];
    let n = |v: &Value| v.as_i64().unwrap_or_else(|| panic!("a quota: {body}"));
    (
        n(&q["inCarts"]),
        n(&q["blocked"]),
        n(&q["pending"]),
        n(&q["availability"]["remainingQuantity"]),
        q["availability"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

async fn add_with(app: &TestApp, product: &str, quantity: i32, voucher: &str) -> Value {
    app.graphql(
        ADD,
        json!({ "input": { "productId": product, "quantity": quantity, "voucherCode": voucher } }),
    )
    .await
}

fn cart_of(body: &Value) -> Option<String> {
    body["data"]["addToCart"]["cart"]["id"]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test]
async fn a_blocking_voucher_keeps_its_units_from_other_buyers() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "blocking").await;
    let seat = shop.product("Seat", "20.00", 5).await;

    let created = vouchers(
        &shop,
        json!({ "codes": ["vip"], "maxUsages": 3, "blockQuota": true, "productIds": [seat] }),
    )
    .await;
    assert_eq!(
        created["data"]["createVouchers"]["vouchers"][0],
        json!({ "code": "VIP", "blockQuota": true, "blocked": 3 }),
        "{created}"
    );
    assert_eq!(quota(&shop, "blocking").await, (0, 3, 0, 2, "OK".into()));

    // Others get only what the voucher does not keep.
    let others = add_to_cart(&app, &seat, 2, None).await;
    assert!(cart_of(&others).is_some(), "{others}");
    let refused = add_to_cart(&app, &seat, 1, None).await;
    assert_eq!(reason(&refused), "SOLD_OUT", "{refused}");
    assert_eq!(
        quota(&shop, "blocking").await,
        (2, 3, 0, 0, "RESERVED".into())
    );

    // The holder's cart uses the kept units: nothing new is taken.
    let held = add_with(&app, &seat, 2, "VIP").await;
    let held = cart_of(&held).unwrap_or_else(|| panic!("a cart: {held}"));
    assert_eq!(
        quota(&shop, "blocking").await,
        (4, 1, 0, 0, "RESERVED".into())
    );
    let placed = checkout(&app, &held).await;
    assert_eq!(
        placed["data"]["checkout"]["order"]["status"], "PENDING",
        "{placed}"
    );
    assert_eq!(
        quota(&shop, "blocking").await,
        (2, 1, 2, 0, "RESERVED".into())
    );

    // Its last usage is still kept; a second use of two is refused.
    let refused = add_with(&app, &seat, 2, "VIP").await;
    assert_eq!(reason(&refused), "ALREADY_REDEEMED", "{refused}");

    // Nothing is left to block: a new blocking voucher, or a bulk of them, is
    // refused whole.
    let refused = vouchers(
        &shop,
        json!({ "codes": ["more"], "blockQuota": true, "productIds": [seat] }),
    )
    .await;
    assert_eq!(reason(&refused), "SOLD_OUT", "{refused}");
    let listed = shop
        .admin
        .gql(
            "{ event(organizerSlug: \"blocking\", slug: \"finals\") { vouchers { totalCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["data"]["event"]["vouchers"]["totalCount"], 1,
        "{listed}"
    );
}

#[tokio::test]
async fn bulk_blocking_vouchers_take_their_units_all_or_none() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "bulkblock").await;
    let seat = shop.product("Seat", "20.00", 5).await;
    let refused = vouchers(
        &shop,
        json!({ "count": 3, "maxUsages": 2, "blockQuota": true, "productIds": [seat] }),
    )
    .await;
    assert_eq!(reason(&refused), "SOLD_OUT", "{refused}");
    assert_eq!(quota(&shop, "bulkblock").await, (0, 0, 0, 5, "OK".into()));
    let made = vouchers(
        &shop,
        json!({ "count": 2, "maxUsages": 2, "blockQuota": true, "productIds": [seat] }),
    )
    .await;
    assert!(made["errors"].is_null(), "{made}");
    assert_eq!(quota(&shop, "bulkblock").await, (0, 4, 0, 1, "OK".into()));
}

#[tokio::test]
async fn an_expired_cart_gives_units_back_to_the_voucher_and_an_ended_voucher_releases_them() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "blockend").await;
    let seat = shop.product("Seat", "20.00", 2).await;
    let until = (chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    let made = vouchers(
        &shop,
        json!({ "codes": ["LATE"], "maxUsages": 2, "blockQuota": true, "productIds": [seat], "validUntil": until }),
    )
    .await;
    assert!(made["errors"].is_null(), "{made}");
    let held = add_with(&app, &seat, 1, "LATE").await;
    assert!(cart_of(&held).is_some(), "{held}");
    assert_eq!(
        quota(&shop, "blockend").await,
        (1, 1, 0, 0, "RESERVED".into())
    );

    let (clock, services) = crate::ticketing::job_replica(&app, Arc::new(MemoryBus::default()));
    let job = voltgate::ticketing::jobs::ExpireHolds;
    clock.advance(chrono::TimeDelta::minutes(31));
    job.run(&services).await.expect("the cart expires");
    job.run(&services).await.expect("nothing moves twice");
    // Back to the voucher, not to everyone.
    assert_eq!(
        quota(&shop, "blockend").await,
        (0, 2, 0, 0, "RESERVED".into())
    );
    let refused = add_to_cart(&app, &seat, 1, None).await;
    assert_eq!(reason(&refused), "SOLD_OUT", "{refused}");

    // Once its validity ended, the voucher keeps nothing.
    clock.advance(chrono::TimeDelta::hours(1));
    job.run(&services).await.expect("the block is released");
    job.run(&services).await.expect("nothing is released twice");
    assert_eq!(quota(&shop, "blockend").await, (0, 0, 0, 2, "OK".into()));
    let bought = add_to_cart(&app, &seat, 2, None).await;
    assert!(cart_of(&bought).is_some(), "{bought}");
}

#[tokio::test]
async fn voucher_holders_and_buyers_racing_for_a_small_quota_never_oversell_it() {
    let app = Arc::new(spawn_app().await);
    let shop = Shop::open(&app, "blockrush").await;
    let seat = shop.product("Seat", "10.00", 10).await;
    let made = vouchers(
        &shop,
        json!({ "codes": ["H1", "H2", "H3", "H4"], "blockQuota": true, "productIds": [seat] }),
    )
    .await;
    assert!(made["errors"].is_null(), "{made}");

    let buy = |voucher: Option<&'static str>| {
        let (app, seat) = (Arc::clone(&app), seat.clone());
        tokio::spawn(async move {
            let added = match voucher {
                Some(code) => add_with(&app, &seat, 1, code).await,
                None => add_to_cart(&app, &seat, 1, None).await,
            };
            let Some(cart) = cart_of(&added) else {
                return Err(format!("{}/{}", code(&added), reason(&added)));
            };
            let placed = checkout(&app, &cart).await;
            placed["data"]["checkout"]["order"]["code"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("checkout failed: {placed}"))
        })
    };
    let mut racers = Vec::new();
    for n in 0..60 {
        racers.push((false, buy(None)));
        if n % 15 == 0 {
            let code = ["H1", "H2", "H3", "H4"][n / 15];
            racers.push((true, buy(Some(code))));
        }
    }
    let (mut holders, mut buyers, mut refusals) = (0, 0, Vec::new());
    for (holder, racer) in racers {
        match racer.await.expect("the racer finishes") {
            Ok(_) if holder => holders += 1,
            Ok(_) => buyers += 1,
            Err(refusal) => refusals.push((holder, refusal)),
        }
    }
    assert_eq!(holders, 4, "every holder gets the kept seat: {refusals:?}");
    assert_eq!(buyers, 6, "the others share what is not kept: {refusals:?}");
    assert!(
        refusals
            .iter()
            .all(|(holder, r)| !holder && r == "CONFLICT/SOLD_OUT"),
        "{refusals:?}"
    );
    assert_eq!(
        quota(&shop, "blockrush").await,
        (0, 0, 10, 0, "ORDERED".into())
    );
}

#[tokio::test]
async fn blocking_vouchers_need_one_product_or_a_quota() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "blockbad").await;
    let seat = shop.product("Seat", "20.00", 5).await;
    let other = shop.product("Other", "20.00", 5).await;
    let sized = shop
        .admin
        .gql(
            "mutation($p: ID!) { createProductVariation(input: { productId: $p, value: \"XL\" }) { variation { id } } }",
            json!({ "p": other }),
        )
        .await;
    assert!(sized["errors"].is_null(), "{sized}");
    let cases = [
        (json!({ "codes": ["A"], "blockQuota": true }), "blockQuota"),
        (
            json!({ "codes": ["A"], "blockQuota": true, "productIds": [seat, other] }),
            "blockQuota",
        ),
        (
            json!({ "codes": ["A"], "blockQuota": true, "allowIgnoreQuota": true, "productIds": [seat] }),
            "blockQuota",
        ),
        (
            json!({ "codes": ["A"], "blockQuota": true, "productIds": [other] }),
            "variationId",
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
    assert_eq!(quota(&shop, "blockbad").await, (0, 0, 0, 5, "OK".into()));
}
