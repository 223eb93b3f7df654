//! Money: the transaction ledger and the sales reports summed from it.

use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::helpers::spawn_app;
use crate::ticketing::{Shop, add_to_cart, checkout};

const REPORT: &str = "query($id: ID!) { salesReport(eventId: $id) { byProduct { productId feeType sales { count gross { amount currency } tax { amount } } } byDay { day sales { count gross { amount } } } byOrderStatus { status sales { count gross { amount } } } } }";

/// Checks out `items` (product, quantity) in one cart; returns the order's id.
pub async fn buy(app: &TestApp, items: &[(&str, i32)]) -> String {
    let mut cart: Option<String> = None;
    for (product, quantity) in items {
        let added = add_to_cart(app, product, *quantity, cart.as_deref()).await;
        cart = Some(
            added["data"]["addToCart"]["cart"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("a cart: {added}"))
                .to_owned(),
        );
    }
    let placed = checkout(app, cart.as_deref().unwrap_or_default()).await;
    placed["data"]["checkout"]["order"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("an order: {placed}"))
        .to_owned()
}

pub async fn report(shop: &Shop) -> Value {
    let body = shop.admin.gql(REPORT, json!({ "id": shop.event })).await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["salesReport"].clone()
}

/// Pays `order` in full with a manual payment carrying `fee`.
pub async fn pay_in_full(shop: &Shop, order: &str, fee: &str) -> Value {
    let created = shop
        .admin
        .gql(
            "mutation($input: CreateOrderPaymentInput!) { createOrderPayment(input: $input) { payment { id } } }",
            json!({ "input": { "orderId": order, "method": "MANUAL", "fee": fee } }),
        )
        .await;
    let payment = created["data"]["createOrderPayment"]["payment"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a payment: {created}"))
        .to_owned();
    let confirmed = shop
        .admin
        .gql(
            "mutation($id: ID!) { confirmOrderPayment(input: { paymentId: $id }) { payment { id state } order { status } } }",
            json!({ "id": payment }),
        )
        .await;
    assert_eq!(
        confirmed["data"]["confirmOrderPayment"]["order"]["status"], "PAID",
        "{confirmed}"
    );
    confirmed["data"]["confirmOrderPayment"]["payment"].clone()
}

#[tokio::test]
async fn the_sales_report_matches_the_orders_after_checkouts_payments_and_cancellations() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "ledger").await;
    let seat = shop.product("Seat", "10.00", 20).await;
    let lounge = shop.product("Lounge", "25.00", 20).await;

    let pending = buy(&app, &[(&seat, 2), (&lounge, 1)]).await;
    let canceled = buy(&app, &[(&seat, 1)]).await;
    let paid = buy(&app, &[(&lounge, 1)]).await;
    let cancel = shop
        .admin
        .gql(
            "mutation($id: ID!) { cancelOrder(input: { orderId: $id }) { order { status } } }",
            json!({ "id": canceled }),
        )
        .await;
    assert_eq!(
        cancel["data"]["cancelOrder"]["order"]["status"], "CANCELED",
        "{cancel}"
    );
    pay_in_full(&shop, &paid, "1.50").await;

    let report = report(&shop).await;
    // The canceled seat came and went: 2 seats remain, in the pending order;
    // products come first, then fees.
    assert_eq!(
        report["byProduct"],
        json!([
            { "productId": seat, "feeType": null, "sales": { "count": 2, "gross": { "amount": "20.00", "currency": "EUR" }, "tax": { "amount": "3.20" } } },
            { "productId": lounge, "feeType": null, "sales": { "count": 2, "gross": { "amount": "50.00", "currency": "EUR" }, "tax": { "amount": "7.98" } } },
            { "productId": null, "feeType": "payment", "sales": { "count": 1, "gross": { "amount": "1.50", "currency": "EUR" }, "tax": { "amount": "0.00" } } },
        ]),
        "{report}"
    );
    let by_status: Vec<Value> = report["byOrderStatus"]
        .as_array()
        .unwrap_or_else(|| panic!("{report}"))
        .clone();
    let status = |name: &str| {
        by_status
            .iter()
            .find(|s| s["status"] == name)
            .map(|s| s["sales"].clone())
            .unwrap_or_else(|| panic!("{name} in {report}"))
    };
    assert_eq!(
        status("PENDING"),
        json!({ "count": 3, "gross": { "amount": "45.00" } })
    );
    assert_eq!(
        status("PAID"),
        json!({ "count": 2, "gross": { "amount": "26.50" } })
    );
    assert_eq!(
        status("CANCELED"),
        json!({ "count": 0, "gross": { "amount": "0.00" } })
    );

    // Everything happened today: one day holding what the live orders total.
    let orders = shop
        .admin
        .gql(
            "query { event(organizerSlug: \"ledger\", slug: \"finals\") { orders { nodes { id status total { amount } } } } }",
            json!({}),
        )
        .await;
    let live_total: i64 = orders["data"]["event"]["orders"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{orders}"))
        .iter()
        .filter(|o| o["status"] != "CANCELED")
        .filter_map(|o| {
            o["total"]["amount"]
                .as_str()?
                .replace('.', "")
                .parse::<i64>()
                .ok()
        })
        .sum();
    assert_eq!(live_total, 7150, "{orders}");
    assert_eq!(
        report["byDay"],
        json!([{ "day": chrono::Utc::now().format("%Y-%m-%d").to_string(), "sales": { "count": 5, "gross": { "amount": "71.50" } } }]),
        "{report} {pending}"
    );
}

const REFUND: &str = "mutation($input: RefundOrderInput!) { refundOrder(input: $input) { refund { localId state source method amount { amount } executionDate } credit { id amount { amount } remainingAmount { amount } status } order { status payments { state } } } }";
const APPLY_CREDIT: &str = "mutation($o: ID!, $c: ID!) { applyStoreCredit(input: { orderId: $o, creditId: $c }) { payment { state method amount { amount } } order { status } } }";
const CREDITS: &str = "query($e: ID!) { storeCredits(eventId: $e) { id amount { amount } remainingAmount { amount } status } }";

/// `buyer` checks out `quantity` of `product`; returns the order's id.
async fn buy_as(buyer: &crate::client::TestUser, product: &str, quantity: i32) -> String {
    let added = buyer
        .gql(
            crate::ticketing::ADD_TO_CART,
            json!({ "input": { "productId": product, "quantity": quantity } }),
        )
        .await;
    let cart = added["data"]["addToCart"]["cart"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a cart: {added}"))
        .to_owned();
    let placed = buyer
        .gql(
            crate::ticketing::CHECKOUT,
            json!({ "input": { "cartId": cart, "email": "buyer@example.com" } }),
        )
        .await;
    placed["data"]["checkout"]["order"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("an order: {placed}"))
        .to_owned()
}

#[tokio::test]
async fn refunds_give_back_at_most_what_was_paid_and_store_credit_pays_later_orders() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "refunds").await;
    let seat = shop.product("Seat", "25.00", 20).await;
    let carla = crate::ticketing::person(&app, "carla").await;
    let mallory = crate::ticketing::person(&app, "mallory").await;

    let first = buy_as(&carla, &seat, 2).await;
    pay_in_full(&shop, &first, "0").await;

    let partial = shop
        .admin
        .gql(
            REFUND,
            json!({ "input": { "orderId": first, "method": "MANUAL", "amount": "10.00", "comment": "one seat moved" } }),
        )
        .await;
    let refund = &partial["data"]["refundOrder"];
    assert_eq!(refund["refund"]["amount"]["amount"], "10.00", "{partial}");
    assert_eq!(refund["refund"]["state"], "DONE", "{partial}");
    assert_eq!(refund["refund"]["method"], "MANUAL", "{partial}");
    assert!(refund["refund"]["executionDate"].is_string(), "{partial}");
    assert_eq!(
        refund["order"],
        json!({ "status": "PAID", "payments": [{ "state": "CONFIRMED" }] }),
        "a partial refund leaves the order paid: {partial}"
    );

    // 40.00 of the 50.00 paid are left: a cent more is refused and stores nothing.
    for (input, field) in [
        (
            json!({ "orderId": first, "method": "MANUAL", "amount": "40.01" }),
            "amount",
        ),
        (
            json!({ "orderId": first, "method": "MANUAL", "amount": "0" }),
            "amount",
        ),
        (
            json!({ "orderId": first, "method": "STORE_CREDIT", "creditExpires": "2020-01-01T00:00:00Z" }),
            "creditExpires",
        ),
    ] {
        let body = shop.admin.gql(REFUND, json!({ "input": input })).await;
        assert_eq!(
            crate::ticketing::code(&body),
            "BAD_USER_INPUT",
            "{input}: {body}"
        );
        assert_eq!(
            body["errors"][0]["extensions"]["field"], field,
            "{input}: {body}"
        );
    }

    // The rest as store credit, canceling the order.
    let full = shop
        .admin
        .gql(
            REFUND,
            json!({ "input": { "orderId": first, "method": "STORE_CREDIT", "cancel": true } }),
        )
        .await;
    let refund = &full["data"]["refundOrder"];
    assert_eq!(refund["refund"]["localId"], 2, "{full}");
    assert_eq!(refund["refund"]["amount"]["amount"], "40.00", "{full}");
    assert_eq!(
        refund["order"],
        json!({ "status": "CANCELED", "payments": [{ "state": "REFUNDED" }] }),
        "{full}"
    );
    assert_eq!(
        refund["credit"]["remainingAmount"]["amount"], "40.00",
        "{full}"
    );
    assert_eq!(refund["credit"]["status"], "AVAILABLE", "{full}");
    let credit = refund["credit"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a credit: {full}"))
        .to_owned();
    let nothing_left = shop
        .admin
        .gql(
            REFUND,
            json!({ "input": { "orderId": first, "method": "MANUAL" } }),
        )
        .await;
    assert_eq!(
        crate::ticketing::code(&nothing_left),
        "BAD_USER_INPUT",
        "{nothing_left}"
    );

    // The ledger: the canceled order's seats came and went.
    let sales = report(&shop).await;
    assert_eq!(
        sales["byProduct"],
        json!([{ "productId": seat, "feeType": null, "sales": { "count": 0, "gross": { "amount": "0.00", "currency": "EUR" }, "tax": { "amount": "0.00" } } }]),
        "{sales}"
    );

    // Mallory may neither see nor spend Carla's credit.
    let hers = buy_as(&mallory, &seat, 1).await;
    let stolen = mallory
        .gql(APPLY_CREDIT, json!({ "o": hers, "c": credit }))
        .await;
    assert_eq!(
        crate::ticketing::code(&stolen),
        "BAD_USER_INPUT",
        "{stolen}"
    );
    assert_eq!(
        stolen["errors"][0]["extensions"]["field"], "creditId",
        "{stolen}"
    );
    let on_hers = carla
        .gql(APPLY_CREDIT, json!({ "o": hers, "c": credit }))
        .await;
    assert_eq!(
        on_hers["errors"][0]["extensions"]["field"], "orderId",
        "{on_hers}"
    );
    let seen = mallory.gql(CREDITS, json!({ "e": shop.event })).await;
    assert_eq!(seen["data"]["storeCredits"], json!([]), "{seen}");

    // Carla pays a later 25.00 order with it: 15.00 remain.
    let second = buy_as(&carla, &seat, 1).await;
    let applied = carla
        .gql(APPLY_CREDIT, json!({ "o": second, "c": credit }))
        .await;
    assert_eq!(
        applied["data"]["applyStoreCredit"],
        json!({ "payment": { "state": "CONFIRMED", "method": "STORE_CREDIT", "amount": { "amount": "25.00" } }, "order": { "status": "PAID" } }),
        "{applied}"
    );
    let mine = carla.gql(CREDITS, json!({ "e": shop.event })).await;
    assert_eq!(
        mine["data"]["storeCredits"],
        json!([{ "id": credit, "amount": { "amount": "40.00" }, "remainingAmount": { "amount": "15.00" }, "status": "AVAILABLE" }]),
        "{mine}"
    );

    // Once expired, it pays nothing.
    {
        use sea_orm::sea_query::Expr;
        use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
        use voltgate::entities::store_credit;
        store_credit::Entity::update_many()
            .col_expr(
                store_credit::Column::Expires,
                Expr::value(chrono::Utc::now() - chrono::TimeDelta::minutes(1)),
            )
            .filter(store_credit::Column::UserId.eq(carla.id.unwrap_or_default()))
            .exec(&app.db)
            .await
            .unwrap_or_else(|e| panic!("expired: {e}"));
    }
    let third = buy_as(&carla, &seat, 1).await;
    let expired = carla
        .gql(APPLY_CREDIT, json!({ "o": third, "c": credit }))
        .await;
    assert_eq!(crate::ticketing::reason(&expired), "EXPIRED", "{expired}");
    let mine = carla.gql(CREDITS, json!({ "e": shop.event })).await;
    assert_eq!(
        mine["data"]["storeCredits"][0]["status"], "EXPIRED",
        "{mine}"
    );
    assert_eq!(
        mine["data"]["storeCredits"][0]["remainingAmount"]["amount"], "15.00",
        "{mine}"
    );
}

#[tokio::test]
async fn one_credit_spent_on_many_orders_at_once_never_pays_more_than_it_holds() {
    const ORDERS: usize = 8;
    let app = spawn_app().await;
    let shop = Shop::open(&app, "creditrace").await;
    let seat = shop.product("Seat", "25.00", 50).await;
    let dana = crate::ticketing::person(&app, "dana").await;

    // A 40.00 credit from a refunded order.
    let first = buy_as(&dana, &seat, 1).await;
    pay_in_full(&shop, &first, "15.00").await;
    let refunded = shop
        .admin
        .gql(
            REFUND,
            json!({ "input": { "orderId": first, "method": "STORE_CREDIT", "cancel": true } }),
        )
        .await;
    assert_eq!(
        refunded["data"]["refundOrder"]["credit"]["remainingAmount"]["amount"], "40.00",
        "{refunded}"
    );
    let credit = refunded["data"]["refundOrder"]["credit"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a credit: {refunded}"))
        .to_owned();

    let mut orders = Vec::with_capacity(ORDERS);
    for _ in 0..ORDERS {
        orders.push(buy_as(&dana, &seat, 1).await);
    }
    let answers = futures_util::future::join_all(
        orders
            .iter()
            .map(|order| dana.gql(APPLY_CREDIT, json!({ "o": order, "c": credit }))),
    )
    .await;
    let mut spent = 0_i64;
    let mut paid_orders = 0;
    for answer in &answers {
        if answer["errors"].is_null() {
            let payment = &answer["data"]["applyStoreCredit"];
            spent += payment["payment"]["amount"]["amount"]
                .as_str()
                .and_then(|a| a.replace('.', "").parse::<i64>().ok())
                .unwrap_or_else(|| panic!("{answer}"));
            if payment["order"]["status"] == "PAID" {
                paid_orders += 1;
            }
        } else {
            assert_eq!(
                crate::ticketing::reason(answer),
                "ALREADY_REDEEMED",
                "a losing order learns the credit is spent: {answer}"
            );
        }
    }
    assert_eq!(spent, 4000, "exactly what the credit held is spent");
    assert_eq!(paid_orders, 1, "40.00 pays one 25.00 order in full");
    let mine = dana.gql(CREDITS, json!({ "e": shop.event })).await;
    assert_eq!(
        mine["data"]["storeCredits"][0]["remainingAmount"]["amount"], "0.00",
        "{mine}"
    );
    assert_eq!(
        mine["data"]["storeCredits"][0]["status"], "APPLIED",
        "{mine}"
    );
}
