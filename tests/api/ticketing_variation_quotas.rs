//! Quotas per variation (pretix `Quota.variations`): a quota linked to a
//! product counts a position of variation V of it when it names no variation
//! of that product, or names V. Two variations with quotas of their own sell
//! out one at a time; a quota naming none counts them all; buyers racing for
//! one variation's last units never get more; an expired hold gives its
//! variation's unit back; vouchers naming such a quota, storefronts and
//! dates follow the same rule; bad links are refused by field.

use std::sync::Arc;

use serde_json::{Value, json};
use voltgate::bus::memory::MemoryBus;
use voltgate::jobs::Job as _;

use crate::helpers::{TestApp, spawn_app};
use crate::ticketing::{CHECKOUT, CREATE_PRODUCT, Shop, code, reason};

const CREATE_QUOTA: &str = "mutation($input: CreateQuotaInput!) { createQuota(input: $input) { quota { id variationIds variations { value } } } }";
const UPDATE_QUOTA: &str = "mutation($input: UpdateQuotaInput!) { updateQuota(input: $input) { quota { id productIds variationIds } } }";
const ADD: &str = "mutation($input: AddToCartInput!) { addToCart(input: $input) { cart { id positions { id } } } }";
const STOREFRONT: &str = "query($o: String!) { event(organizerSlug: $o, slug: \"finals\") { products { name availability { state remainingQuantity isAvailable } variations { value availability { state remainingQuantity isAvailable } } } } }";
const QUOTAS: &str = "query($o: String!) { event(organizerSlug: $o, slug: \"finals\") { quotas { name inCarts pending blocked availability { state remainingQuantity } } } }";

/// A shop selling one product with variations, and no quota yet.
struct Seats {
    shop: Shop,
    slug: &'static str,
    product: String,
    /// By value, in creation order.
    variations: Vec<String>,
}

impl Seats {
    async fn open(app: &TestApp, slug: &'static str, values: &[&str]) -> Self {
        let shop = Shop::open(app, slug).await;
        let body = shop
            .admin
            .gql(
                CREATE_PRODUCT,
                json!({ "input": { "eventId": shop.event, "name": "Seat", "kind": "ADMISSION", "price": "30.00", "taxRate": "19" } }),
            )
            .await;
        let product = id_at(&body, "/data/createProduct/product/id");
        let mut variations = Vec::new();
        for value in values {
            let body = shop
                .admin
                .gql(
                    "mutation($p: ID!, $v: String!) { createProductVariation(input: { productId: $p, value: $v }) { variation { id } } }",
                    json!({ "p": product, "v": value }),
                )
                .await;
            variations.push(id_at(&body, "/data/createProductVariation/variation/id"));
        }
        Self {
            shop,
            slug,
            product,
            variations,
        }
    }

    /// A quota of `size` over the product, naming `variations`.
    async fn quota(&self, name: &str, size: i32, variations: &[&String]) -> String {
        let body = self
            .create_quota(json!({ "name": name, "size": size, "productIds": [self.product], "variationIds": variations }))
            .await;
        id_at(&body, "/data/createQuota/quota/id")
    }

    async fn create_quota(&self, input: Value) -> Value {
        let mut input = input;
        input["eventId"] = json!(self.shop.event);
        self.shop
            .admin
            .gql(CREATE_QUOTA, json!({ "input": input }))
            .await
    }

    /// The storefront's product entry: its availability and its variations'.
    async fn storefront(&self, app: &TestApp) -> Value {
        let body = app.graphql(STOREFRONT, json!({ "o": self.slug })).await;
        body["data"]["event"]["products"][0].clone()
    }

    /// A variation's availability as buyers see it.
    async fn variation(&self, app: &TestApp, index: usize) -> Value {
        self.storefront(app).await["variations"][index]["availability"].clone()
    }

    /// Each quota's `(name, inCarts)`, as the team sees them.
    async fn held(&self) -> Vec<(String, i64)> {
        let body = self.shop.admin.gql(QUOTAS, json!({ "o": self.slug })).await;
        body["data"]["event"]["quotas"]
            .as_array()
            .unwrap_or_else(|| panic!("quotas: {body}"))
            .iter()
            .map(|q| {
                (
                    q["name"].as_str().unwrap_or_default().to_owned(),
                    q["inCarts"].as_i64().unwrap_or(-1),
                )
            })
            .collect()
    }
}

fn id_at(body: &Value, path: &str) -> String {
    body.pointer(path)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("an id at {path}: {body}"))
        .to_owned()
}

fn field(body: &Value) -> &str {
    body["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or("none")
}

async fn add(app: &TestApp, product: &str, variation: Option<&String>, quantity: i32) -> Value {
    app.graphql(
        ADD,
        json!({ "input": { "productId": product, "variationId": variation, "quantity": quantity } }),
    )
    .await
}

fn cart_of(body: &Value) -> Option<&str> {
    body["data"]["addToCart"]["cart"]["id"].as_str()
}

fn ok(remaining: i64) -> Value {
    json!({ "state": "OK", "remainingQuantity": remaining, "isAvailable": true })
}

fn reserved() -> Value {
    json!({ "state": "RESERVED", "remainingQuantity": 0, "isAvailable": false })
}

#[tokio::test]
async fn two_variations_with_their_own_quotas_sell_out_one_at_a_time() {
    let app = spawn_app().await;
    let seats = Seats::open(&app, "split", &["Balcony", "Floor"]).await;
    let (balcony, floor) = (&seats.variations[0], &seats.variations[1]);
    let created = seats
        .create_quota(json!({ "name": "Balcony", "size": 2, "productIds": [seats.product], "variationIds": [balcony] }))
        .await;
    assert_eq!(
        created["data"]["createQuota"]["quota"]["variationIds"],
        json!([balcony]),
        "{created}"
    );
    assert_eq!(
        created["data"]["createQuota"]["quota"]["variations"],
        json!([{ "value": "Balcony" }])
    );
    seats.quota("Floor", 3, &[floor]).await;
    let front = seats.storefront(&app).await;
    assert_eq!(front["variations"][0]["availability"], ok(2), "{front}");
    assert_eq!(front["variations"][1]["availability"], ok(3), "{front}");
    // The product shows its best variation.
    assert_eq!(front["availability"], ok(3), "{front}");

    // The balcony sells out; the floor does not move.
    let held = add(&app, &seats.product, Some(balcony), 2).await;
    assert!(cart_of(&held).is_some(), "{held}");
    assert_eq!(seats.variation(&app, 0).await, reserved());
    assert_eq!(seats.variation(&app, 1).await, ok(3));
    assert_eq!(
        seats.held().await,
        vec![("Balcony".to_owned(), 2), ("Floor".to_owned(), 0)]
    );
    let late = add(&app, &seats.product, Some(balcony), 1).await;
    assert_eq!(
        (code(&late), reason(&late)),
        ("CONFLICT", "SOLD_OUT"),
        "{late}"
    );

    // The floor still sells, to the last seat, then it is sold out too.
    let floor_cart = add(&app, &seats.product, Some(floor), 3).await;
    let floor_cart = cart_of(&floor_cart)
        .unwrap_or_else(|| panic!("a floor cart: {floor_cart}"))
        .to_owned();
    let placed = app
        .graphql(
            CHECKOUT,
            json!({ "input": { "cartId": floor_cart, "email": "buyer@example.com" } }),
        )
        .await;
    assert_eq!(
        placed["data"]["checkout"]["order"]["status"], "PENDING",
        "{placed}"
    );
    let front = seats.storefront(&app).await;
    assert_eq!(
        front["variations"][1]["availability"],
        json!({ "state": "ORDERED", "remainingQuantity": 0, "isAvailable": false })
    );
    assert_eq!(front["availability"]["isAvailable"], false, "{front}");
    let late = add(&app, &seats.product, Some(floor), 1).await;
    assert_eq!(reason(&late), "SOLD_OUT", "{late}");

    // Once quotas name variations, a position must choose one.
    let none = add(&app, &seats.product, None, 1).await;
    assert_eq!(
        (code(&none), field(&none)),
        ("BAD_USER_INPUT", "variationId"),
        "{none}"
    );
}

#[tokio::test]
async fn a_quota_naming_no_variation_counts_every_variation() {
    let app = spawn_app().await;
    let seats = Seats::open(&app, "shared", &["Balcony", "Floor"]).await;
    let (balcony, floor) = (&seats.variations[0], &seats.variations[1]);
    seats.quota("Venue", 3, &[]).await;
    seats.quota("Balcony", 10, &[balcony]).await;
    assert_eq!(seats.variation(&app, 0).await, ok(3));
    assert_eq!(seats.variation(&app, 1).await, ok(3));

    let first = add(&app, &seats.product, Some(balcony), 2).await;
    assert!(cart_of(&first).is_some(), "{first}");
    // The venue quota counts the balcony too: one seat left for both.
    assert_eq!(seats.variation(&app, 0).await, ok(1));
    assert_eq!(seats.variation(&app, 1).await, ok(1));
    let second = add(&app, &seats.product, Some(floor), 1).await;
    assert!(cart_of(&second).is_some(), "{second}");
    assert_eq!(
        seats.held().await,
        vec![("Venue".to_owned(), 3), ("Balcony".to_owned(), 2)]
    );
    for variation in [balcony, floor] {
        let late = add(&app, &seats.product, Some(variation), 1).await;
        assert_eq!(reason(&late), "SOLD_OUT", "{late}");
    }
    assert_eq!(seats.variation(&app, 0).await, reserved());
    assert_eq!(seats.variation(&app, 1).await, reserved());
}

#[tokio::test]
async fn forty_buyers_racing_for_the_last_five_units_of_one_variation_get_exactly_five() {
    let app = Arc::new(spawn_app().await);
    let seats = Seats::open(&app, "variation-rush", &["Front row", "Back"]).await;
    let (front_row, back) = (seats.variations[0].clone(), seats.variations[1].clone());
    seats.quota("Front row", 5, &[&front_row]).await;
    seats.quota("Back", 100, &[&back]).await;

    // Forty race for the front row while ten buy the back, in the same batches.
    let buyers = (0..50).map(|n| {
        let app = Arc::clone(&app);
        let product = seats.product.clone();
        let variation = if n % 5 == 4 {
            back.clone()
        } else {
            front_row.clone()
        };
        tokio::spawn(async move {
            let added = add(&app, &product, Some(&variation), 1).await;
            let Some(cart) = cart_of(&added) else {
                return (
                    variation,
                    Err(format!("{}/{}", code(&added), reason(&added))),
                );
            };
            let placed = app
                .graphql(
                    CHECKOUT,
                    json!({ "input": { "cartId": cart, "email": "buyer@example.com" } }),
                )
                .await;
            let result = match placed["data"]["checkout"]["order"]["code"].as_str() {
                Some(code) => Ok(code.to_owned()),
                None => Err(format!("checkout failed: {placed}")),
            };
            (variation, result)
        })
    });
    let (mut front_orders, mut back_orders, mut refusals) = (0, 0, Vec::new());
    for buyer in buyers {
        let (variation, result) = buyer.await.expect("the buyer finishes");
        match result {
            Ok(_) if variation == front_row => front_orders += 1,
            Ok(_) => back_orders += 1,
            Err(refusal) => refusals.push(refusal),
        }
    }
    assert_eq!(front_orders, 5, "refusals: {refusals:?}");
    assert_eq!(back_orders, 10, "refusals: {refusals:?}");
    assert_eq!(refusals.len(), 35);
    assert!(
        refusals.iter().all(|r| r == "CONFLICT/SOLD_OUT"),
        "{refusals:?}"
    );
    let quotas = seats
        .shop
        .admin
        .gql(QUOTAS, json!({ "o": seats.slug }))
        .await;
    assert_eq!(
        quotas["data"]["event"]["quotas"],
        json!([
            { "name": "Front row", "inCarts": 0, "pending": 5, "blocked": 0, "availability": { "state": "ORDERED", "remainingQuantity": 0 } },
            { "name": "Back", "inCarts": 0, "pending": 10, "blocked": 0, "availability": { "state": "OK", "remainingQuantity": 90 } },
        ]),
        "{quotas}"
    );
}

#[tokio::test]
async fn an_expired_hold_gives_its_variation_its_unit_back() {
    let app = spawn_app().await;
    let seats = Seats::open(&app, "variation-expiry", &["Balcony", "Floor"]).await;
    let (balcony, floor) = (&seats.variations[0], &seats.variations[1]);
    seats.quota("Balcony", 1, &[balcony]).await;
    seats.quota("Floor", 4, &[floor]).await;
    let held = add(&app, &seats.product, Some(balcony), 1).await;
    assert!(cart_of(&held).is_some(), "{held}");
    assert_eq!(seats.variation(&app, 0).await, reserved());

    let (clock, services) = crate::ticketing::job_replica(&app, Arc::new(MemoryBus::default()));
    clock.advance(chrono::TimeDelta::minutes(31));
    voltgate::ticketing::jobs::ExpireHolds
        .run(&services)
        .await
        .expect("the hold expires");
    assert_eq!(seats.variation(&app, 0).await, ok(1));
    assert_eq!(seats.variation(&app, 1).await, ok(4));
    assert_eq!(
        seats.held().await,
        vec![("Balcony".to_owned(), 0), ("Floor".to_owned(), 0)]
    );
    let again = add(&app, &seats.product, Some(balcony), 1).await;
    assert!(cart_of(&again).is_some(), "the freed seat sells: {again}");
}

#[tokio::test]
async fn variation_links_are_validated_and_follow_catalog_changes() {
    let app = spawn_app().await;
    let seats = Seats::open(&app, "variation-checks", &["Balcony", "Floor", "Box"]).await;
    let (balcony, floor, boxed) = (
        &seats.variations[0],
        &seats.variations[1],
        &seats.variations[2],
    );
    let other = seats
        .shop
        .admin
        .gql(
            CREATE_PRODUCT,
            json!({ "input": { "eventId": seats.shop.event, "name": "Parking", "kind": "MERCHANDISE", "price": "5.00", "taxRate": "19" } }),
        )
        .await;
    let other = id_at(&other, "/data/createProduct/product/id");
    let elsewhere = Seats::open(&app, "variation-elsewhere", &["Stalls"]).await;

    // A variation of a product the quota does not count, of another event,
    // or an id of another kind.
    for (variations, products) in [
        (json!([balcony]), json!([other])),
        (json!([elsewhere.variations[0]]), json!([seats.product])),
        (json!([seats.product]), json!([seats.product])),
    ] {
        let refused = seats
            .create_quota(json!({ "name": "Bad", "size": 1, "productIds": products, "variationIds": variations }))
            .await;
        assert_eq!(
            (code(&refused), field(&refused)),
            ("BAD_USER_INPUT", "variationIds"),
            "{refused}"
        );
        assert!(!refused.to_string().to_lowercase().contains("sql"));
    }

    let quota = seats.quota("Upstairs", 5, &[balcony, boxed]).await;
    let update = |input: Value| {
        let admin = &seats.shop.admin;
        let mut input = input;
        input["quotaId"] = json!(quota);
        async move { admin.gql(UPDATE_QUOTA, json!({ "input": input })).await }
    };
    let refused = update(json!({ "variationIds": [elsewhere.variations[0]] })).await;
    assert_eq!(field(&refused), "variationIds", "{refused}");
    let changed = update(json!({ "variationIds": [floor, balcony] })).await;
    let mut named = vec![balcony.clone(), floor.clone()];
    named.sort();
    let mut got: Vec<String> =
        serde_json::from_value(changed["data"]["updateQuota"]["quota"]["variationIds"].clone())
            .unwrap_or_default();
    got.sort();
    assert_eq!(got, named, "{changed}");

    // Deleting a variation the quota names among others drops it; deleting
    // the one it names alone would make it count every variation.
    let delete = |variation: &String| {
        let admin = &seats.shop.admin;
        let variation = variation.clone();
        async move {
            admin
                .gql(
                    "mutation($v: ID!) { deleteProductVariation(input: { variationId: $v }) { deletedVariationId } }",
                    json!({ "v": variation }),
                )
                .await
        }
    };
    let gone = delete(floor).await;
    assert_eq!(
        gone["data"]["deleteProductVariation"]["deletedVariationId"], *floor,
        "{gone}"
    );
    let kept = update(json!({})).await;
    assert_eq!(
        kept["data"]["updateQuota"]["quota"]["variationIds"],
        json!([balcony]),
        "{kept}"
    );
    let refused = delete(balcony).await;
    assert_eq!(
        (code(&refused), reason(&refused)),
        ("CONFLICT", "IN_USE"),
        "{refused}"
    );

    // Taking the product off the quota takes its named variations with it.
    let moved = update(json!({ "productIds": [other] })).await;
    assert_eq!(
        moved["data"]["updateQuota"]["quota"],
        json!({ "id": quota, "productIds": [other], "variationIds": [] }),
        "{moved}"
    );
    let free = delete(balcony).await;
    assert!(free["errors"].is_null(), "no quota names it now: {free}");
}

#[tokio::test]
async fn vouchers_naming_or_blocking_a_variations_quota_follow_its_variations() {
    let app = spawn_app().await;
    let seats = Seats::open(&app, "variation-vouchers", &["Balcony", "Floor"]).await;
    let (balcony, floor) = (&seats.variations[0], &seats.variations[1]);
    let balcony_quota = seats.quota("Balcony", 3, &[balcony]).await;
    seats.quota("Floor", 3, &[floor]).await;
    let create = |input: Value| {
        let admin = &seats.shop.admin;
        let mut input = input;
        input["eventId"] = json!(seats.shop.event);
        async move {
            admin
                .gql(
                    "mutation($input: CreateVouchersInput!) { createVouchers(input: $input) { vouchers { code blocked } } }",
                    json!({ "input": input }),
                )
                .await
        }
    };
    let made = create(json!({ "codes": ["UPSTAIRS"], "quotaId": balcony_quota, "priceMode": "SET", "value": "10.00" })).await;
    assert!(made["errors"].is_null(), "{made}");
    let with_voucher = |variation: &String| json!({ "input": { "productId": seats.product, "variationId": variation, "voucherCode": "UPSTAIRS" } });
    let wrong = app.graphql(ADD, with_voucher(floor)).await;
    assert_eq!(
        (code(&wrong), field(&wrong)),
        ("BAD_USER_INPUT", "voucherCode"),
        "the balcony's quota does not count the floor: {wrong}"
    );
    let right = app.graphql(ADD, with_voucher(balcony)).await;
    assert!(cart_of(&right).is_some(), "{right}");

    // A voucher blocking the product's quota must choose a variation, and
    // then keeps a unit of that variation's quota only.
    let unchosen =
        create(json!({ "codes": ["KEEP"], "productIds": [seats.product], "blockQuota": true }))
            .await;
    assert_eq!(field(&unchosen), "variationId", "{unchosen}");
    let kept = create(json!({ "codes": ["KEEP"], "productIds": [seats.product], "variationId": floor, "blockQuota": true, "maxUsages": 2 })).await;
    assert!(kept["errors"].is_null(), "{kept}");
    let quotas = seats
        .shop
        .admin
        .gql(QUOTAS, json!({ "o": seats.slug }))
        .await;
    let blocked: Vec<i64> = quotas["data"]["event"]["quotas"]
        .as_array()
        .map(|qs| {
            qs.iter()
                .map(|q| q["blocked"].as_i64().unwrap_or(-1))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(blocked, vec![0, 2], "{quotas}");
    assert_eq!(seats.variation(&app, 1).await, ok(1));
    assert_eq!(seats.variation(&app, 0).await, ok(2));
}

#[tokio::test]
async fn a_date_shows_and_sells_each_variation_by_its_own_quota() {
    let app = spawn_app().await;
    let series = crate::ticketing_dates::Series::open(
        &app,
        "variation-dates",
        "40.00",
        &[("Balcony", None), ("Floor", None)],
        1,
        10,
    )
    .await;
    let (date, balcony) = (&series.dates[0], &series.variations[0]);
    let quota = series
        .shop
        .admin
        .gql(
            CREATE_QUOTA,
            json!({ "input": { "eventId": series.shop.event, "name": "Balcony", "size": 1, "subEventId": date, "productIds": [series.product], "variationIds": [balcony] } }),
        )
        .await;
    id_at(&quota, "/data/createQuota/quota/id");
    let front = || async {
        let body = app
            .graphql(
                "query { event(organizerSlug: \"variation-dates\", slug: \"finals\") { subEvents { products { availability { state remainingQuantity } variations { variation { value } onSale availability { state remainingQuantity isAvailable } } } } } }",
                json!({}),
            )
            .await;
        body["data"]["event"]["subEvents"][0]["products"][0].clone()
    };
    let shown = front().await;
    // The date's quota of 10 counts both; the balcony's own has 1.
    assert_eq!(shown["variations"][0]["availability"], ok(1), "{shown}");
    assert_eq!(shown["variations"][1]["availability"], ok(10));
    assert_eq!(
        shown["availability"],
        json!({ "state": "OK", "remainingQuantity": 10 })
    );

    let held = series.add(&app, date, Some(balcony.as_str()), None).await;
    assert!(held["errors"].is_null(), "{held}");
    let shown = front().await;
    assert_eq!(
        shown["variations"][0]["availability"],
        reserved(),
        "{shown}"
    );
    assert_eq!(shown["variations"][0]["onSale"], false);
    assert_eq!(shown["variations"][1]["availability"], ok(9));
    let late = series.add(&app, date, Some(balcony.as_str()), None).await;
    assert_eq!(reason(&late), "SOLD_OUT", "{late}");
    let floor = series
        .add(&app, date, Some(series.variations[1].as_str()), None)
        .await;
    assert!(floor["errors"].is_null(), "{floor}");
}

const AVAILABILITY_CHANGED: &str = "subscription($e: ID!) {
    availabilityChanged(eventId: $e) { quotas { productIds variationIds availability { state remainingQuantity } } }
}";

#[tokio::test]
async fn storefronts_see_live_which_variations_each_quota_counts() {
    let app = spawn_app().await;
    let seats = Seats::open(&app, "variation-live", &["Balcony", "Floor"]).await;
    let balcony = &seats.variations[0];
    seats.quota("Balcony", 50, &[balcony]).await;
    seats.quota("Venue", 100, &[]).await;
    let mut storefront = crate::helpers::Subscription::start(
        app.addr,
        "graphql-transport-ws",
        AVAILABILITY_CHANGED,
        json!({ "e": seats.shop.event }),
    )
    .await;
    // A subscription has no ready signal: hold seats until a change is seen.
    let mut seen = None;
    for _ in 0..40 {
        let held = add(&app, &seats.product, Some(balcony), 1).await;
        assert!(cart_of(&held).is_some(), "{held}");
        if let Some(message) = storefront
            .try_next(std::time::Duration::from_millis(200))
            .await
        {
            seen = Some(message);
            break;
        }
    }
    let change = seen.expect("the storefront sees a hold");
    let quotas = &change["payload"]["data"]["availabilityChanged"]["quotas"];
    assert_eq!(quotas[0]["productIds"], json!([seats.product]), "{change}");
    assert_eq!(quotas[0]["variationIds"], json!([balcony]), "{change}");
    assert_eq!(quotas[1]["variationIds"], json!([]), "{change}");
    // Both quotas counted the same balcony holds.
    let left = |q: &Value| {
        q["availability"]["remainingQuantity"]
            .as_i64()
            .unwrap_or(-1)
    };
    assert_eq!(50 - left(&quotas[0]), 100 - left(&quotas[1]), "{change}");
}
