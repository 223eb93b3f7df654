//! Invoices: issued from the order as it is, never changed, corrected by
//! cancellation invoices, numbered without gaps or duplicates per organizer
//! and prefix, also when many are issued at once.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use crate::ticketing::{Shop, add_to_cart, code, reason};
use crate::ticketing_money::{buy, pay_in_full};

const INVOICE: &str = "id number invoiceNo prefix isCancellation isCanceled refers { number } invoiceFrom invoiceTo date currency footerText paymentProviderStamp total { amount currency } lines { position description grossValue { amount } taxValue { amount } taxRate taxName attendeeName } html";
const SETTINGS: &str = "mutation($input: UpdateInvoiceSettingsInput!) { updateInvoiceSettings(input: $input) { prefix addressFrom footerText generate renderer } }";
const ADDRESS: &str = "mutation($order: OrderReference!, $address: InvoiceAddressInput!) { setInvoiceAddress(order: $order, address: $address) { isBusiness company name country vatId } }";

fn issue_query() -> String {
    format!("mutation($id: ID!) {{ issueInvoice(orderId: $id) {{ {INVOICE} }} }}")
}

async fn issue(shop: &Shop, order: &str) -> Value {
    shop.admin.gql(&issue_query(), json!({ "id": order })).await
}

/// Checks out `quantity` of `product` anonymously: the order's id, event,
/// code and secret.
async fn buy_with_secret(app: &TestApp, product: &str, quantity: i32) -> (String, String, String) {
    let added = add_to_cart(app, product, quantity, None).await;
    let cart = added["data"]["addToCart"]["cart"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a cart: {added}"))
        .to_owned();
    let placed = crate::ticketing::checkout(app, &cart).await;
    let order = &placed["data"]["checkout"];
    let text = |v: &Value| {
        v.as_str()
            .unwrap_or_else(|| panic!("an order: {placed}"))
            .to_owned()
    };
    (
        text(&order["order"]["id"]),
        text(&order["order"]["code"]),
        text(&order["secret"]),
    )
}

#[tokio::test]
async fn an_invoice_copies_the_order_and_cancellations_correct_it() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "invoicing").await;
    let seat = shop.product("Seat", "119.00", 20).await;
    let (order, order_code, secret) = buy_with_secret(&app, &seat, 2).await;

    let settings = shop
        .admin
        .gql(
            SETTINGS,
            json!({ "input": { "eventId": shop.event, "prefix": "ARENA-", "addressFrom": "Arena GmbH\nMain Street 1", "footerText": "Arena GmbH <Register 42>" } }),
        )
        .await;
    assert_eq!(
        settings["data"]["updateInvoiceSettings"],
        json!({ "prefix": "ARENA-", "addressFrom": "Arena GmbH\nMain Street 1", "footerText": "Arena GmbH <Register 42>", "generate": "ADMIN", "renderer": "html" }),
        "{settings}"
    );
    let bad_prefix = shop
        .admin
        .gql(
            SETTINGS,
            json!({ "input": { "eventId": shop.event, "prefix": "<b>" } }),
        )
        .await;
    assert_eq!(code(&bad_prefix), "BAD_USER_INPUT", "{bad_prefix}");
    assert_eq!(bad_prefix["errors"][0]["extensions"]["field"], "prefix");

    // The buyer enters the address with the order's code and secret.
    let by_code =
        json!({ "code": { "eventId": shop.event, "code": order_code, "secret": secret } });
    let address = json!({ "isBusiness": true, "company": "Ada Ltd", "name": "Ada Lovelace", "street": "1 Analytical Row", "zipcode": "10115", "city": "Berlin", "country": "DE", "vatId": "DE123456789" });
    let set = app
        .graphql(ADDRESS, json!({ "order": by_code, "address": address }))
        .await;
    assert_eq!(
        set["data"]["setInvoiceAddress"],
        json!({ "isBusiness": true, "company": "Ada Ltd", "name": "Ada Lovelace", "country": "DE", "vatId": "DE123456789" }),
        "{set}"
    );
    let wrong_secret = app
        .graphql(
            ADDRESS,
            json!({ "order": { "code": { "eventId": shop.event, "code": order_code, "secret": "guess" } }, "address": address }),
        )
        .await;
    assert_eq!(code(&wrong_secret), "NOT_FOUND", "{wrong_secret}");
    let bad_country = app
        .graphql(
            ADDRESS,
            json!({ "order": by_code, "address": { "name": "Ada", "country": "Germany" } }),
        )
        .await;
    assert_eq!(code(&bad_country), "BAD_USER_INPUT", "{bad_country}");
    assert_eq!(bad_country["errors"][0]["extensions"]["field"], "country");
    let anonymous_by_id = app
        .graphql(
            ADDRESS,
            json!({ "order": { "id": order }, "address": address }),
        )
        .await;
    assert_eq!(
        code(&anonymous_by_id),
        "UNAUTHENTICATED",
        "{anonymous_by_id}"
    );

    // Only the team issues invoices.
    let anonymous = app.graphql(&issue_query(), json!({ "id": order })).await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED", "{anonymous}");
    let outsider = crate::ticketing::person(&app, "outsider").await;
    let forbidden = outsider.gql(&issue_query(), json!({ "id": order })).await;
    assert_eq!(code(&forbidden), "FORBIDDEN", "{forbidden}");

    let issued = issue(&shop, &order).await;
    let invoice = &issued["data"]["issueInvoice"];
    assert_eq!(invoice["number"], "ARENA-00001", "{issued}");
    assert_eq!(invoice["invoiceNo"], 1, "{issued}");
    assert_eq!(invoice["isCancellation"], false);
    assert_eq!(invoice["invoiceFrom"], "Arena GmbH\nMain Street 1");
    assert_eq!(
        invoice["invoiceTo"],
        "Ada Ltd\nAda Lovelace\n1 Analytical Row\n10115 Berlin\nDE\nVAT ID: DE123456789"
    );
    assert_eq!(
        invoice["date"],
        chrono::Utc::now().format("%Y-%m-%d").to_string()
    );
    assert_eq!(
        invoice["total"],
        json!({ "amount": "238.00", "currency": "EUR" })
    );
    assert_eq!(invoice["paymentProviderStamp"], "", "the order is not paid");
    assert_eq!(
        invoice["lines"][0],
        json!({ "position": 1, "description": "Seat", "grossValue": { "amount": "119.00" }, "taxValue": { "amount": "19.00" }, "taxRate": "19.00", "taxName": "VAT", "attendeeName": null }),
        "{issued}"
    );
    assert_eq!(invoice["lines"].as_array().map(Vec::len), Some(2));
    let html = invoice["html"].as_str().unwrap_or_default();
    assert!(html.contains("<h1>Invoice ARENA-00001</h1>"), "{html}");
    assert!(
        html.contains("Arena GmbH &lt;Register 42&gt;"),
        "escaped: {html}"
    );
    assert!(html.contains("238.00 EUR"), "{html}");

    // One valid invoice per order.
    let again = issue(&shop, &order).await;
    assert_eq!(code(&again), "CONFLICT", "{again}");

    // After an address change, reissuing cancels and replaces in one step.
    let changed = app
        .graphql(
            ADDRESS,
            json!({ "order": by_code, "address": { "name": "Ada King", "country": "GB" } }),
        )
        .await;
    assert!(changed["errors"].is_null(), "{changed}");
    let reissued = shop
        .admin
        .gql(
            &format!("mutation($id: ID!) {{ reissueInvoice(orderId: $id) {{ cancellation {{ {INVOICE} }} invoice {{ {INVOICE} }} }} }}"),
            json!({ "id": order }),
        )
        .await;
    let payload = &reissued["data"]["reissueInvoice"];
    assert_eq!(
        payload["cancellation"]["number"], "ARENA-00002",
        "{reissued}"
    );
    assert_eq!(payload["cancellation"]["isCancellation"], true);
    assert_eq!(payload["cancellation"]["refers"]["number"], "ARENA-00001");
    assert_eq!(payload["cancellation"]["total"]["amount"], "-238.00");
    assert_eq!(
        payload["cancellation"]["invoiceTo"], invoice["invoiceTo"],
        "a cancellation keeps the address it corrects"
    );
    assert!(
        payload["cancellation"]["html"]
            .as_str()
            .unwrap_or_default()
            .contains("Cancels invoice ARENA-00001")
    );
    assert_eq!(payload["invoice"]["number"], "ARENA-00003");
    assert_eq!(payload["invoice"]["invoiceTo"], "Ada King\nGB");

    // A cancellation cannot be canceled, nor an invoice twice.
    let cancel = |id: &Value| {
        let id = id.clone();
        let admin = &shop.admin;
        async move {
            admin
                .gql(
                    "mutation($id: ID!) { cancelInvoice(invoiceId: $id) { number refers { number } } }",
                    json!({ "id": id }),
                )
                .await
        }
    };
    let of_cancellation = cancel(&payload["cancellation"]["id"]).await;
    assert_eq!(code(&of_cancellation), "CONFLICT", "{of_cancellation}");
    let twice = cancel(&invoice["id"]).await;
    assert_eq!(code(&twice), "CONFLICT", "{twice}");

    // Canceling the order cancels its valid invoice in the same step.
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
    let seen = app
        .graphql(
            "query($e: ID!, $c: String!, $s: String!) { order(eventId: $e, code: $c, secret: $s) { invoiceAddress { name } invoices { number isCancellation isCanceled refers { number } } } }",
            json!({ "e": shop.event, "c": order_code, "s": secret }),
        )
        .await;
    assert_eq!(
        seen["data"]["order"],
        json!({
            "invoiceAddress": { "name": "Ada King" },
            "invoices": [
                { "number": "ARENA-00001", "isCancellation": false, "isCanceled": true, "refers": null },
                { "number": "ARENA-00002", "isCancellation": true, "isCanceled": false, "refers": { "number": "ARENA-00001" } },
                { "number": "ARENA-00003", "isCancellation": false, "isCanceled": true, "refers": null },
                { "number": "ARENA-00004", "isCancellation": true, "isCanceled": false, "refers": { "number": "ARENA-00003" } },
            ],
        }),
        "the buyer sees every invoice of the order: {seen}"
    );
    let no_new = issue(&shop, &order).await;
    assert_eq!(reason(&no_new), "INVALID_TRANSITION", "{no_new}");

    // The team lists the event's invoices, newest first.
    let listed = shop
        .admin
        .gql(
            "query($e: ID!) { invoices(eventId: $e, first: 2) { number } }",
            json!({ "e": shop.event }),
        )
        .await;
    assert_eq!(
        listed["data"]["invoices"],
        json!([{ "number": "ARENA-00004" }, { "number": "ARENA-00003" }]),
        "{listed}"
    );
    let not_listed = outsider
        .gql(
            "query($e: ID!) { invoices(eventId: $e) { number } }",
            json!({ "e": shop.event }),
        )
        .await;
    assert_eq!(code(&not_listed), "FORBIDDEN", "{not_listed}");
}

#[tokio::test]
async fn paid_orders_get_their_invoice_where_the_event_says_so() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "autoinvoice").await;
    let seat = shop.product("Seat", "50.00", 20).await;
    let set = shop
        .admin
        .gql(
            SETTINGS,
            json!({ "input": { "eventId": shop.event, "generate": "PAID" } }),
        )
        .await;
    assert!(set["errors"].is_null(), "{set}");

    let order = buy(&app, &[(&seat, 1)]).await;
    let before = order_invoices(&shop, "autoinvoice", &order).await;
    assert_eq!(
        before["invoices"],
        json!([]),
        "none while pending: {before}"
    );
    pay_in_full(&shop, &order, "2.50").await;
    let after = order_invoices(&shop, "autoinvoice", &order).await;
    assert_eq!(
        after["invoices"],
        json!([{ "number": "FINALS-00001", "paymentProviderStamp": "paid", "total": { "amount": "52.50" }, "lines": [{ "description": "Seat" }, { "description": "Payment fee" }] }]),
        "issued when paid, with the payment fee as a line: {after}"
    );

    // An unpaid order that expires has its invoice canceled with it.
    let unpaid = buy(&app, &[(&seat, 1)]).await;
    let issued = issue(&shop, &unpaid).await;
    assert_eq!(
        issued["data"]["issueInvoice"]["number"], "FINALS-00002",
        "{issued}"
    );
    let later = chrono::Utc::now() + chrono::TimeDelta::days(365);
    voltgate::ticketing::orders::expire_unpaid(&app.db, later)
        .await
        .unwrap_or_else(|e| panic!("expired: {e:?}"));
    let expired = order_invoices(&shop, "autoinvoice", &unpaid).await;
    assert_eq!(
        expired["invoices"],
        json!([
            { "number": "FINALS-00002", "paymentProviderStamp": "", "total": { "amount": "50.00" }, "lines": [{ "description": "Seat" }] },
            { "number": "FINALS-00003", "paymentProviderStamp": "", "total": { "amount": "-50.00" }, "lines": [{ "description": "Seat" }] },
        ]),
        "{expired}"
    );

    // A refund shows on the order.
    let refund = shop
        .admin
        .gql(
            "mutation($input: RefundOrderInput!) { refundOrder(input: $input) { refund { localId } } }",
            json!({ "input": { "orderId": order, "method": "MANUAL", "amount": "5.00" } }),
        )
        .await;
    assert!(refund["errors"].is_null(), "{refund}");
    let refunded = order_invoices(&shop, "autoinvoice", &order).await;
    assert_eq!(
        refunded["refunds"],
        json!([{ "localId": 1, "amount": { "amount": "5.00" }, "method": "MANUAL" }]),
        "{refunded}"
    );
}

/// `order` of the shop whose organizer is `slug`, with its invoices and refunds.
async fn order_invoices(shop: &Shop, slug: &str, order: &str) -> Value {
    let body = shop
        .admin
        .gql(
            "query($o: String!) { event(organizerSlug: $o, slug: \"finals\") { orders { nodes { id invoices { number paymentProviderStamp total { amount } lines { description } } refunds { localId amount { amount } method } } } } }",
            json!({ "o": slug }),
        )
        .await;
    body["data"]["event"]["orders"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .find(|o| o["id"] == order)
        .cloned()
        .unwrap_or_else(|| panic!("{order} in {body}"))
}

#[tokio::test]
async fn invoices_issued_at_once_take_every_number_once() {
    const ORDERS: usize = 24;
    let app = spawn_app().await;
    let shop = Shop::open(&app, "numbering").await;
    let seat = shop.product("Seat", "10.00", 100).await;
    let mut orders = Vec::with_capacity(ORDERS);
    for _ in 0..ORDERS {
        orders.push(buy(&app, &[(&seat, 1)]).await);
    }
    let issued =
        futures_util::future::join_all(orders.iter().map(|order| issue(&shop, order))).await;
    let mut numbers = BTreeSet::new();
    for body in &issued {
        assert!(body["errors"].is_null(), "every invoice is issued: {body}");
        let number = body["data"]["issueInvoice"]["invoiceNo"]
            .as_i64()
            .unwrap_or_else(|| panic!("{body}"));
        assert!(numbers.insert(number), "{number} given twice");
    }
    let expected: BTreeSet<i64> = (1..=i64::try_from(ORDERS).unwrap_or(0)).collect();
    assert_eq!(numbers, expected, "no gap, no duplicate");

    // And one more after the rush continues the series.
    let extra = buy(&app, &[(&seat, 1)]).await;
    let next = issue(&shop, &extra).await;
    assert_eq!(
        next["data"]["issueInvoice"]["number"],
        format!("FINALS-{:05}", ORDERS + 1),
        "{next}"
    );
}
