//! Foreign-currency figures on invoices (pretix's `Invoice.foreign_currency_*`):
//! teams enter exchange rates (source `manual`); an invoice of an event whose
//! currency differs from the settings' display currency records the latest
//! rate on or before its date and shows its taxes in both currencies; without
//! a rate it is issued with the event's currency only, as pretix does.

use serde_json::{Value, json};

use crate::helpers::spawn_app;
use crate::ticketing::{Shop, code};
use crate::ticketing_money::buy;

const SET_RATE: &str = "mutation($input: SetExchangeRateInput!) { setExchangeRate(input: $input) { exchangeRate { fromCurrency toCurrency date rate source } } }";
const SETTINGS: &str = "mutation($e: ID!, $c: String) { updateInvoiceSettings(input: { eventId: $e, foreignCurrencyDisplay: $c }) { foreignCurrencyDisplay } }";
const REISSUE: &str = "mutation($id: ID!) { reissueInvoice(orderId: $id) { invoice { foreignCurrencyDisplay foreignCurrencyRate foreignCurrencyRateDate foreignCurrencyRateSource html } } }";

async fn set_rate(shop: &Shop, to: &str, date: &str, rate: &str) -> Value {
    shop.admin
        .gql(
            SET_RATE,
            json!({ "input": { "organizerId": shop.organizer, "fromCurrency": "EUR", "toCurrency": to, "date": date, "rate": rate } }),
        )
        .await
}

async fn display_in(shop: &Shop, currency: Option<&str>) {
    let body = shop
        .admin
        .gql(SETTINGS, json!({ "e": shop.event, "c": currency }))
        .await;
    assert_eq!(
        body["data"]["updateInvoiceSettings"]["foreignCurrencyDisplay"],
        json!(currency),
        "{body}"
    );
}

#[tokio::test]
async fn invoices_show_their_taxes_at_the_latest_rate_on_or_before_their_date() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "francs").await;
    let seat = shop.product("Seat", "49.50", 10).await;
    let order = buy(&app, &[(&seat, 1)]).await;

    let older = set_rate(&shop, "chf", "2020-01-01", "0.8").await;
    assert_eq!(
        older["data"]["setExchangeRate"]["exchangeRate"],
        json!({ "fromCurrency": "EUR", "toCurrency": "CHF", "date": "2020-01-01", "rate": "0.8", "source": "manual" }),
        "{older}"
    );
    // Entered again for the same day: replaced, not added.
    set_rate(&shop, "CHF", "2026-01-02", "0.95").await;
    let latest = set_rate(&shop, "CHF", "2026-01-02", "0.9000").await;
    assert_eq!(
        latest["data"]["setExchangeRate"]["exchangeRate"]["rate"], "0.9",
        "{latest}"
    );
    // A rate for a later day than the invoice's is not used.
    set_rate(&shop, "CHF", "2099-01-01", "2").await;
    let rates = shop
        .admin
        .gql(
            "query { organizer(slug: \"francs\") { exchangeRates { date rate } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        rates["data"]["organizer"]["exchangeRates"],
        json!([
            { "date": "2099-01-01", "rate": "2" },
            { "date": "2026-01-02", "rate": "0.9" },
            { "date": "2020-01-01", "rate": "0.8" },
        ]),
        "{rates}"
    );
    let hidden = app
        .graphql(
            "query { organizer(slug: \"francs\") { exchangeRates { rate } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&hidden), "UNAUTHENTICATED", "{hidden}");

    display_in(&shop, Some("CHF")).await;
    let issued = shop.admin.gql(REISSUE, json!({ "id": order })).await;
    let invoice = &issued["data"]["reissueInvoice"]["invoice"];
    assert_eq!(invoice["foreignCurrencyDisplay"], "CHF", "{issued}");
    assert_eq!(invoice["foreignCurrencyRate"], "0.9", "{issued}");
    assert_eq!(invoice["foreignCurrencyRateDate"], "2026-01-02", "{issued}");
    assert_eq!(invoice["foreignCurrencyRateSource"], "manual", "{issued}");
    // 49.50 with 19 % tax: 7.90 tax, 41.60 net; at 0.9: 7.11, 37.44, 44.55.
    let html = invoice["html"].as_str().unwrap_or_default();
    assert!(
        html.contains("1:0.9 as published by manual on 2026-01-02"),
        "{html}"
    );
    for figure in ["37.44 CHF", "7.11 CHF", "44.55 CHF", "7.90 EUR"] {
        assert!(html.contains(figure), "{figure}: {html}");
    }

    // Without a rate for the display currency: the event's currency only.
    display_in(&shop, Some("USD")).await;
    let issued = shop.admin.gql(REISSUE, json!({ "id": order })).await;
    let invoice = &issued["data"]["reissueInvoice"]["invoice"];
    assert_eq!(invoice["foreignCurrencyDisplay"], Value::Null, "{issued}");
    assert_eq!(invoice["foreignCurrencyRate"], Value::Null, "{issued}");
    let html = invoice["html"].as_str().unwrap_or_default();
    assert!(!html.contains("conversion rate"), "{html}");
    assert!(html.contains("49.50 EUR"), "{html}");

    // The display currency is the event's own: nothing to convert.
    display_in(&shop, Some("EUR")).await;
    let issued = shop.admin.gql(REISSUE, json!({ "id": order })).await;
    assert_eq!(
        issued["data"]["reissueInvoice"]["invoice"]["foreignCurrencyRate"],
        Value::Null,
        "{issued}"
    );
}

#[tokio::test]
async fn bad_rates_and_display_currencies_are_refused_by_field() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "badrates").await;
    let cases = [
        (("CHF", "2026-01-01", "abc"), "rate"),
        (("CHF", "2026-01-01", "0"), "rate"),
        (("CHF", "2026-01-01", "-1.5"), "rate"),
        (("CHF", "2026-13-01", "1.1"), "date"),
        (("EURO", "2026-01-01", "1.1"), "toCurrency"),
        (("EUR", "2026-01-01", "1.1"), "toCurrency"),
    ];
    for ((to, date, rate), field) in cases {
        let body = set_rate(&shop, to, date, rate).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{to} {date} {rate}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["field"], field,
            "{to} {date} {rate}: {body}"
        );
    }
    let body = shop
        .admin
        .gql(SETTINGS, json!({ "e": shop.event, "c": "francs" }))
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["field"], "foreignCurrencyDisplay",
        "{body}"
    );
    // Another organizer's team may not set this organizer's rates.
    let other = Shop::open(&app, "otherrates").await;
    let body = other
        .admin
        .gql(
            SET_RATE,
            json!({ "input": { "organizerId": shop.organizer, "fromCurrency": "EUR", "toCurrency": "CHF", "date": "2026-01-01", "rate": "1" } }),
        )
        .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
}
