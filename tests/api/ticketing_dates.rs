//! Per-date product settings (pretix `SubEventItem`,
//! `SubEventItemVariation`): a date's variation price wins over its product
//! price, which wins over the variation's and the product's own; a product
//! disabled on a date, or outside the date's window, cannot be bought there;
//! the storefront of a date shows the same prices and switches that the cart
//! charges; bad input is refused by field; every change is audited.

use sea_orm::{ColumnTrait as _, EntityTrait as _, PaginatorTrait as _, QueryFilter as _};
use serde_json::{Value, json};

use voltgate::entities::ticketing_log;

use crate::helpers::{TestApp, spawn_app};
use crate::ticketing::{CREATE_PRODUCT, Shop, code};

const SET: &str = "mutation($input: SetSubEventProductSettingsInput!) { setSubEventProductSettings(input: $input) { subEvent { id productSettings { productId variationId price { amount currency } disabled availableFrom availableUntil } } } }";
const CLEAR: &str = "mutation($input: ClearSubEventProductSettingsInput!) { clearSubEventProductSettings(input: $input) { subEvent { productSettings { productId } } } }";
const STOREFRONT: &str = "query($o: String!) { event(organizerSlug: $o, slug: \"finals\") { subEvents { id products { product { name } price { amount } onSale availability { state remainingQuantity isAvailable } variations { variation { value } price { amount } onSale } } } } }";
const ADD: &str = "mutation($input: AddToCartInput!) { addToCart(input: $input) { cart { positions { price { amount } } } } }";

/// An event series with a product, its variations and a quota per date.
pub struct Series {
    pub shop: Shop,
    pub product: String,
    pub variations: Vec<String>,
    pub dates: Vec<String>,
}

impl Series {
    /// `dates` dates, each with a quota of `size` for a product priced
    /// `price`, with a variation per `(value, own price)`.
    pub async fn open(
        app: &TestApp,
        slug: &str,
        price: &str,
        variations: &[(&str, Option<&str>)],
        dates: usize,
        size: i32,
    ) -> Self {
        let shop = Shop::open(app, slug).await;
        let created = shop
            .admin
            .gql(
                CREATE_PRODUCT,
                json!({ "input": { "eventId": shop.event, "name": "Seat", "kind": "ADMISSION", "price": price, "taxRate": "19" } }),
            )
            .await;
        let product = id(&created["data"]["createProduct"]["product"], &created);
        let mut variation_ids = Vec::new();
        for (value, own) in variations {
            let body = shop
                .admin
                .gql(
                    "mutation($p: ID!, $v: String!, $price: String) { createProductVariation(input: { productId: $p, value: $v, price: $price }) { variation { id } } }",
                    json!({ "p": product, "v": value, "price": own }),
                )
                .await;
            variation_ids.push(id(
                &body["data"]["createProductVariation"]["variation"],
                &body,
            ));
        }
        let mut date_ids = Vec::new();
        for n in 0..dates {
            let body = shop
                .admin
                .gql(
                    "mutation($e: ID!, $n: String!) { createSubEvent(input: { eventId: $e, name: $n, dateFrom: \"2027-06-01T18:00:00Z\" }) { subEvent { id } } }",
                    json!({ "e": shop.event, "n": format!("Day {n}") }),
                )
                .await;
            let date = id(&body["data"]["createSubEvent"]["subEvent"], &body);
            let quota = shop
                .admin
                .gql(
                    "mutation($input: CreateQuotaInput!) { createQuota(input: $input) { quota { id } } }",
                    json!({ "input": { "eventId": shop.event, "name": format!("Day {n}"), "size": size, "subEventId": date, "productIds": [product] } }),
                )
                .await;
            id(&quota["data"]["createQuota"]["quota"], &quota);
            date_ids.push(date);
        }
        Self {
            shop,
            product,
            variations: variation_ids,
            dates: date_ids,
        }
    }

    /// Adds one to a new cart on `date`: the answer of `addToCart`.
    pub async fn add(
        &self,
        app: &TestApp,
        date: &str,
        variation: Option<&str>,
        voucher: Option<&str>,
    ) -> Value {
        app.graphql(
            ADD,
            json!({ "input": { "productId": self.product, "subEventId": date, "variationId": variation, "voucherCode": voucher } }),
        )
        .await
    }
}

fn id(node: &Value, body: &Value) -> String {
    node["id"]
        .as_str()
        .unwrap_or_else(|| panic!("an id: {body}"))
        .to_owned()
}

fn charged(body: &Value) -> &str {
    body["data"]["addToCart"]["cart"]["positions"][0]["price"]["amount"]
        .as_str()
        .unwrap_or("refused")
}

async fn set(series: &Series, input: Value) -> Value {
    series.shop.admin.gql(SET, json!({ "input": input })).await
}

/// The storefront entry of the product on each date.
async fn storefront(app: &TestApp, slug: &str) -> Vec<Value> {
    let body = app.graphql(STOREFRONT, json!({ "o": slug })).await;
    body["data"]["event"]["subEvents"]
        .as_array()
        .unwrap_or_else(|| panic!("dates: {body}"))
        .iter()
        .map(|d| d["products"][0].clone())
        .collect()
}

#[tokio::test]
async fn a_date_sets_its_own_prices_and_the_cart_charges_them() {
    let app = spawn_app().await;
    let series = Series::open(
        &app,
        "dated",
        "40.00",
        &[("Balcony", Some("50.00")), ("Floor", None)],
        2,
        10,
    )
    .await;
    let [balcony, floor] = [&series.variations[0], &series.variations[1]];
    let [first, second] = [&series.dates[0], &series.dates[1]];

    let body = set(
        &series,
        json!({ "subEventId": first, "productId": series.product, "price": "30.00" }),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    let body = set(
        &series,
        json!({ "subEventId": first, "productId": series.product, "variationId": balcony, "price": "35.00" }),
    )
    .await;
    let settings = &body["data"]["setSubEventProductSettings"]["subEvent"]["productSettings"];
    assert_eq!(settings.as_array().map(Vec::len), Some(2), "{body}");
    assert_eq!(settings[0]["variationId"], Value::Null, "{body}");
    assert_eq!(
        settings[1]["price"],
        json!({ "amount": "35.00", "currency": "EUR" }),
        "{body}"
    );

    // Variation date price > product date price > variation price > product price.
    assert_eq!(
        charged(&series.add(&app, first, Some(balcony), None).await),
        "35.00"
    );
    assert_eq!(
        charged(&series.add(&app, first, Some(floor), None).await),
        "30.00"
    );
    assert_eq!(charged(&series.add(&app, first, None, None).await), "30.00");
    assert_eq!(
        charged(&series.add(&app, second, Some(balcony), None).await),
        "50.00"
    );
    assert_eq!(
        charged(&series.add(&app, second, None, None).await),
        "40.00"
    );

    let shown = storefront(&app, "dated").await;
    assert_eq!(shown[0]["price"]["amount"], "30.00", "{shown:?}");
    assert_eq!(
        shown[0]["variations"],
        json!([
            { "variation": { "value": "Balcony" }, "price": { "amount": "35.00" }, "onSale": true },
            { "variation": { "value": "Floor" }, "price": { "amount": "30.00" }, "onSale": true },
        ])
    );
    assert_eq!(shown[1]["price"]["amount"], "40.00", "{shown:?}");
    // Three positions of the first date are in carts.
    assert_eq!(
        shown[0]["availability"],
        json!({ "state": "OK", "remainingQuantity": 7, "isAvailable": true })
    );

    // Clearing the product's date price leaves the variation's.
    let cleared = series
        .shop
        .admin
        .gql(
            CLEAR,
            json!({ "input": { "subEventId": first, "productId": series.product } }),
        )
        .await;
    assert_eq!(
        cleared["data"]["clearSubEventProductSettings"]["subEvent"]["productSettings"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{cleared}"
    );
    assert_eq!(charged(&series.add(&app, first, None, None).await), "40.00");
    assert_eq!(
        charged(&series.add(&app, first, Some(balcony), None).await),
        "35.00"
    );
    assert_eq!(
        log_count(&app, "voltgate.subevent.product_settings.set").await,
        2
    );
    assert_eq!(
        log_count(&app, "voltgate.subevent.product_settings.cleared").await,
        1
    );
}

async fn log_count(app: &TestApp, action: &str) -> u64 {
    ticketing_log::Entity::find()
        .filter(ticketing_log::Column::ActionType.eq(action))
        .count(&app.db)
        .await
        .unwrap_or_default()
}

#[tokio::test]
async fn a_product_disabled_on_a_date_or_outside_its_window_there_is_not_on_sale() {
    let app = spawn_app().await;
    let series = Series::open(&app, "switched", "40.00", &[("Balcony", None)], 2, 10).await;
    let balcony = &series.variations[0];
    let [first, second] = [&series.dates[0], &series.dates[1]];

    let body = set(
        &series,
        json!({ "subEventId": first, "productId": series.product, "disabled": true }),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    let refused = series.add(&app, first, None, None).await;
    assert_eq!(code(&refused), "CONFLICT", "{refused}");
    assert_eq!(
        refused["errors"][0]["extensions"]["reason"], "NOT_ON_SALE",
        "{refused}"
    );
    assert_eq!(
        charged(&series.add(&app, second, None, None).await),
        "40.00"
    );

    // A variation disabled on the second date; the product stays on sale.
    set(
        &series,
        json!({ "subEventId": second, "productId": series.product, "variationId": balcony, "disabled": true }),
    )
    .await;
    let refused = series.add(&app, second, Some(balcony), None).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["reason"], "NOT_ON_SALE",
        "{refused}"
    );
    assert_eq!(
        charged(&series.add(&app, second, None, None).await),
        "40.00"
    );

    // A window that has not opened yet, then one that has closed.
    for window in [
        json!({ "availableFrom": "2099-01-01T00:00:00Z" }),
        json!({ "availableUntil": "2020-01-01T00:00:00Z" }),
    ] {
        let mut input = json!({ "subEventId": first, "productId": series.product });
        if let (Some(input), Some(window)) = (input.as_object_mut(), window.as_object()) {
            input.extend(window.clone());
        }
        let body = set(&series, input).await;
        assert!(body["errors"].is_null(), "{body}");
        let refused = series.add(&app, first, None, None).await;
        assert_eq!(
            refused["errors"][0]["extensions"]["reason"], "NOT_ON_SALE",
            "{window}: {refused}"
        );
    }
    let shown = storefront(&app, "switched").await;
    assert_eq!(shown[0]["onSale"], false, "{shown:?}");
    assert_eq!(shown[0]["availability"]["isAvailable"], false, "{shown:?}");
    assert_eq!(shown[1]["onSale"], true, "{shown:?}");
    assert_eq!(shown[1]["variations"][0]["onSale"], false, "{shown:?}");

    // An open window sells again.
    set(
        &series,
        json!({ "subEventId": first, "productId": series.product, "availableFrom": "2020-01-01T00:00:00Z", "availableUntil": "2099-01-01T00:00:00Z" }),
    )
    .await;
    assert_eq!(charged(&series.add(&app, first, None, None).await), "40.00");
}

#[tokio::test]
async fn bad_date_settings_are_refused_by_field() {
    let app = spawn_app().await;
    let series = Series::open(&app, "badly", "40.00", &[("Balcony", None)], 1, 10).await;
    let other = Series::open(&app, "elsewhere", "10.00", &[("Loge", None)], 1, 10).await;
    let date = &series.dates[0];
    let cases = [
        (
            json!({ "subEventId": date, "productId": series.product, "price": "-1.00" }),
            "price",
        ),
        (
            json!({ "subEventId": date, "productId": series.product, "price": "1.234" }),
            "price",
        ),
        (
            json!({ "subEventId": date, "productId": series.product, "availableFrom": "2027-02-01T00:00:00Z", "availableUntil": "2027-01-01T00:00:00Z" }),
            "availableUntil",
        ),
        (
            json!({ "subEventId": date, "productId": other.product }),
            "productId",
        ),
        (
            json!({ "subEventId": date, "productId": series.product, "variationId": other.variations[0] }),
            "variationId",
        ),
    ];
    for (input, field) in cases {
        let body = set(&series, input.clone()).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{input}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["field"], field,
            "{input}: {body}"
        );
    }
    // Another organizer's date is refused like one the caller may not change.
    let body = set(
        &series,
        json!({ "subEventId": other.dates[0], "productId": series.product }),
    )
    .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    assert_eq!(
        log_count(&app, "voltgate.subevent.product_settings.set").await,
        0
    );
}
