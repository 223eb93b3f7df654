//! Editing the catalog, dates, vouchers and teams: partial updates that keep
//! what is left out and clear what is set to null, the validation of
//! creation, refusals of deletions of what sold or is held, teams that never
//! lock the organizer out, quotas that shrink below what is taken (live and
//! while buyers race), prices that never change carts or orders, and one
//! audit entry per change.

use std::sync::Arc;

use sea_orm::{ColumnTrait as _, EntityTrait as _, PaginatorTrait as _, QueryFilter as _};
use serde_json::{Value, json};

use voltgate::entities::{organizer, team, ticketing_log};

use crate::helpers::{Subscription, TestApp, global_id, spawn_app};
use crate::ticketing::{ADD_TO_CART, Shop, add_to_cart, as_token, checkout, code, person, reason};

const UPDATE_PRODUCT: &str = "mutation($input: UpdateProductInput!) { updateProduct(input: $input) { product { id name price { amount } maxPerOrder availableUntil categoryId description } } }";
const UPDATE_QUOTA: &str = "mutation($input: UpdateQuotaInput!) { updateQuota(input: $input) { quota { id size paid pending inCarts productIds subEventId availability { state remainingQuantity } } } }";
const UPDATE_VOUCHER: &str = "mutation($input: UpdateVoucherInput!) { updateVoucher(input: $input) { voucher { code maxUsages redeemed priceMode value { amount } tag updatedAt } } }";
const UPDATE_TEAM: &str = "mutation($input: UpdateTeamInput!) { updateTeam(input: $input) { team { name allEvents eventIds permissions } } }";
const UPDATE_DATE: &str = "mutation($input: UpdateSubEventInput!) { updateSubEvent(input: $input) { subEvent { name location dateTo } } }";
const QUOTAS: &str = "query($o: String!) { event(organizerSlug: $o, slug: \"finals\") { quotas { id size paid pending inCarts availability { state remainingQuantity } } } }";

/// One call by the shop's administrator: `mutation` with `{ input }`.
async fn change(shop: &Shop, mutation: &str, input: Value) -> Value {
    shop.admin.gql(mutation, json!({ "input": input })).await
}

/// The id at `path` of a successful answer.
fn id_at(body: &Value, path: &str) -> String {
    body.pointer(path)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("an id at {path}: {body}"))
        .to_owned()
}

/// Asserts a refusal's code and reason (or field, for bad input).
fn assert_refused(body: &Value, expected_code: &str, detail: &str) {
    assert_eq!(code(body), expected_code, "{body}");
    let got = if expected_code == "BAD_USER_INPUT" {
        body["errors"][0]["extensions"]["field"]
            .as_str()
            .unwrap_or("none")
    } else {
        reason(body)
    };
    assert_eq!(got, detail, "{body}");
    assert!(
        !body.to_string().to_lowercase().contains("sql"),
        "no SQL in errors: {body}"
    );
}

async fn log_count(app: &TestApp, action: &str) -> u64 {
    ticketing_log::Entity::find()
        .filter(ticketing_log::Column::ActionType.eq(action))
        .count(&app.db)
        .await
        .unwrap_or_default()
}

/// The first quota of the event: `(id, json)`.
async fn only_quota(shop: &Shop, slug: &str) -> (String, Value) {
    let body = shop.admin.gql(QUOTAS, json!({ "o": slug })).await;
    let quota = body["data"]["event"]["quotas"][0].clone();
    (id_at(&quota, "/id"), quota)
}

/// The organizer's first team, made with it.
async fn administrators(app: &TestApp, slug: &str) -> String {
    let organizer = organizer::Entity::find()
        .filter(organizer::Column::Slug.eq(slug))
        .one(&app.db)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("organizer {slug}"));
    let admins = team::Entity::find()
        .filter(team::Column::OrganizerId.eq(organizer.id))
        .filter(team::Column::Name.eq("Administrators"))
        .one(&app.db)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("the administrators of {slug}"));
    global_id("Team", admins.id)
}

async fn cart_of(app: &TestApp, product: &str, quantity: i32) -> String {
    let added = add_to_cart(app, product, quantity, None).await;
    id_at(&added, "/data/addToCart/cart/id")
}

async fn sub_event(shop: &Shop, name: &str) -> String {
    let body = shop
        .admin
        .gql(
            "mutation($e: ID!, $n: String!) { createSubEvent(input: { eventId: $e, name: $n, dateFrom: \"2027-06-01T18:00:00Z\" }) { subEvent { id } } }",
            json!({ "e": shop.event, "n": name }),
        )
        .await;
    id_at(&body, "/data/createSubEvent/subEvent/id")
}

async fn voucher(shop: &Shop, code: &str) -> String {
    let body = change(
        shop,
        "mutation($input: CreateVouchersInput!) { createVouchers(input: $input) { vouchers { id } } }",
        json!({ "eventId": shop.event, "codes": [code], "maxUsages": 3, "priceMode": "SET", "value": "5.00" }),
    )
    .await;
    id_at(&body, "/data/createVouchers/vouchers/0/id")
}

#[tokio::test]
async fn a_changed_price_applies_to_new_carts_and_never_to_existing_carts_or_orders() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "reprice").await;
    let product = shop.product("Seat", "20.00", 10).await;
    let ordered = cart_of(&app, &product, 1).await;
    let placed = checkout(&app, &ordered).await;
    let order = placed["data"]["checkout"]["order"].clone();
    assert_eq!(order["total"]["amount"], "20.00", "{placed}");
    let held = cart_of(&app, &product, 2).await;

    let changed = change(
        &shop,
        UPDATE_PRODUCT,
        json!({ "productId": product, "price": "30.00", "name": "Front seat" }),
    )
    .await;
    assert_eq!(
        changed["data"]["updateProduct"]["product"]["price"]["amount"], "30.00",
        "{changed}"
    );
    assert_eq!(
        changed["data"]["updateProduct"]["product"]["name"],
        "Front seat"
    );

    let later = checkout(&app, &held).await;
    assert_eq!(
        later["data"]["checkout"]["order"]["total"]["amount"], "40.00",
        "the cart keeps the price it was filled at: {later}"
    );
    let lookup = app
        .graphql(
            "query($e: ID!, $c: String!, $s: String!) { order(eventId: $e, code: $c, secret: $s) { total { amount } positions { price { amount } } } }",
            json!({ "e": shop.event, "c": order["code"], "s": placed["data"]["checkout"]["secret"] }),
        )
        .await;
    assert_eq!(
        lookup["data"]["order"]["total"]["amount"], "20.00",
        "{lookup}"
    );
    let fresh = add_to_cart(&app, &product, 1, None).await;
    let fresh = checkout(&app, &id_at(&fresh, "/data/addToCart/cart/id")).await;
    assert_eq!(
        fresh["data"]["checkout"]["order"]["total"]["amount"], "30.00",
        "{fresh}"
    );
    assert_eq!(log_count(&app, "voltgate.product.changed").await, 1);
}

#[tokio::test]
async fn updates_keep_what_is_left_out_and_clear_what_is_set_to_null() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "partial").await;
    let category = change(
        &shop,
        "mutation($input: CreateProductCategoryInput!) { createProductCategory(input: $input) { category { id } } }",
        json!({ "eventId": shop.event, "name": "Seats" }),
    )
    .await;
    let category = id_at(&category, "/data/createProductCategory/category/id");
    let product = shop.product("Seat", "20.00", 10).await;

    let set = change(
        &shop,
        UPDATE_PRODUCT,
        json!({ "productId": product, "maxPerOrder": 4, "availableUntil": "2027-05-01T00:00:00Z", "categoryId": category }),
    )
    .await;
    let kept = change(
        &shop,
        UPDATE_PRODUCT,
        json!({ "productId": product, "description": "Row A" }),
    )
    .await;
    assert_eq!(
        kept["data"]["updateProduct"]["product"],
        json!({
            "id": product, "name": "Seat", "price": { "amount": "20.00" }, "maxPerOrder": 4,
            "availableUntil": "2027-05-01T00:00:00.000000Z", "categoryId": category, "description": "Row A",
        }),
        "{set} {kept}"
    );
    let cleared = change(
        &shop,
        UPDATE_PRODUCT,
        json!({ "productId": product, "maxPerOrder": null, "availableUntil": null, "categoryId": null }),
    )
    .await;
    let cleared = &cleared["data"]["updateProduct"]["product"];
    assert_eq!(
        (
            &cleared["maxPerOrder"],
            &cleared["availableUntil"],
            &cleared["categoryId"],
            &cleared["description"]
        ),
        (&Value::Null, &Value::Null, &Value::Null, &json!("Row A")),
        "{cleared}"
    );

    // A variation's own price, a date's location, a voucher's tag.
    let variation = change(
        &shop,
        "mutation($input: CreateProductVariationInput!) { createProductVariation(input: $input) { variation { id } } }",
        json!({ "productId": product, "value": "Balcony", "price": "25.00" }),
    )
    .await;
    let variation = id_at(&variation, "/data/createProductVariation/variation/id");
    let repriced = change(
        &shop,
        "mutation($input: UpdateProductVariationInput!) { updateProductVariation(input: $input) { variation { value description price { amount } } } }",
        json!({ "variationId": variation, "price": null, "description": "Upstairs" }),
    )
    .await;
    assert_eq!(
        repriced["data"]["updateProductVariation"]["variation"],
        json!({ "value": "Balcony", "description": "Upstairs", "price": null }),
        "{repriced}"
    );
    let date = sub_event(&shop, "Day 1").await;
    let located = change(
        &shop,
        UPDATE_DATE,
        json!({ "subEventId": date, "location": "Hall", "dateTo": "2027-06-01T23:00:00Z" }),
    )
    .await;
    let unlocated = change(
        &shop,
        UPDATE_DATE,
        json!({ "subEventId": date, "location": null }),
    )
    .await;
    assert_eq!(
        unlocated["data"]["updateSubEvent"]["subEvent"],
        json!({ "name": "Day 1", "location": null, "dateTo": "2027-06-01T23:00:00.000000Z" }),
        "{located} {unlocated}"
    );
    let code = voucher(&shop, "PARTIAL").await;
    let tagged = change(
        &shop,
        UPDATE_VOUCHER,
        json!({ "voucherId": code, "tag": "press", "code": "press-2027" }),
    )
    .await;
    let untagged = change(
        &shop,
        UPDATE_VOUCHER,
        json!({ "voucherId": code, "tag": null, "priceMode": "PERCENT", "value": null, "percent": "10" }),
    )
    .await;
    let untagged = &untagged["data"]["updateVoucher"]["voucher"];
    assert_eq!(
        (
            &untagged["code"],
            &untagged["tag"],
            &untagged["priceMode"],
            &untagged["value"]
        ),
        (
            &json!("PRESS-2027"),
            &Value::Null,
            &json!("PERCENT"),
            &Value::Null
        ),
        "{tagged} {untagged}"
    );
    assert!(untagged["updatedAt"].is_string(), "{untagged}");
    for action in [
        "voltgate.product.changed",
        "voltgate.product.variation.changed",
        "voltgate.subevent.changed",
        "voltgate.voucher.changed",
    ] {
        let expected = match action {
            "voltgate.product.changed" => 3,
            "voltgate.product.variation.changed" => 1,
            _ => 2,
        };
        assert_eq!(log_count(&app, action).await, expected, "{action}");
    }
}

#[tokio::test]
async fn bad_changes_are_refused_as_at_creation_with_the_field() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "bad-edits").await;
    let other = Shop::open(&app, "elsewhere").await;
    let product = shop.product("Seat", "20.00", 10).await;
    let foreign = other.product("Theirs", "1.00", 1).await;
    let (quota, _) = only_quota(&shop, "bad-edits").await;
    let date = sub_event(&shop, "Day 1").await;
    let bad_voucher = voucher(&shop, "BAD").await;
    let variation = change(
        &shop,
        "mutation($input: CreateProductVariationInput!) { createProductVariation(input: $input) { variation { id } } }",
        json!({ "productId": product, "value": "Balcony" }),
    )
    .await;
    let variation = id_at(&variation, "/data/createProductVariation/variation/id");
    let cases = [
        (
            UPDATE_PRODUCT,
            json!({ "productId": product, "name": "" }),
            "name",
        ),
        (
            UPDATE_PRODUCT,
            json!({ "productId": product, "taxRate": "101" }),
            "taxRate",
        ),
        (
            UPDATE_PRODUCT,
            json!({ "productId": product, "price": "1.234" }),
            "price",
        ),
        (
            UPDATE_PRODUCT,
            json!({ "productId": product, "minPerOrder": 5, "maxPerOrder": 2 }),
            "minPerOrder",
        ),
        (
            UPDATE_PRODUCT,
            json!({ "productId": product, "availableFrom": "2027-05-01T00:00:00Z", "availableUntil": "2027-04-01T00:00:00Z" }),
            "availableUntil",
        ),
        (
            UPDATE_PRODUCT,
            json!({ "productId": product, "categoryId": global_id("ProductCategory", 9999) }),
            "categoryId",
        ),
        (
            UPDATE_QUOTA,
            json!({ "quotaId": quota, "size": -1 }),
            "size",
        ),
        (
            UPDATE_QUOTA,
            json!({ "quotaId": quota, "productIds": [foreign] }),
            "productIds",
        ),
        (
            UPDATE_QUOTA,
            json!({ "quotaId": quota, "subEventId": global_id("SubEvent", 9999) }),
            "subEventId",
        ),
        (
            UPDATE_DATE,
            json!({ "subEventId": date, "dateTo": "2020-01-01T00:00:00Z" }),
            "dateTo",
        ),
        (
            UPDATE_DATE,
            json!({ "subEventId": date, "name": " " }),
            "name",
        ),
        (
            UPDATE_VOUCHER,
            json!({ "voucherId": bad_voucher, "priceMode": "SUBTRACT", "value": null }),
            "value",
        ),
        (
            UPDATE_VOUCHER,
            json!({ "voucherId": bad_voucher, "minUsages": 4 }),
            "minUsages",
        ),
        (
            UPDATE_VOUCHER,
            json!({ "voucherId": bad_voucher, "blockQuota": true }),
            "blockQuota",
        ),
        (
            UPDATE_VOUCHER,
            json!({ "voucherId": bad_voucher, "code": "no spaces" }),
            "code",
        ),
        (
            UPDATE_VOUCHER,
            json!({ "voucherId": bad_voucher, "productIds": [foreign] }),
            "productIds",
        ),
        (
            UPDATE_TEAM,
            json!({ "teamId": administrators(&app, "bad-edits").await, "eventIds": [other.event] }),
            "eventIds",
        ),
        (
            "mutation($input: UpdateProductVariationInput!) { updateProductVariation(input: $input) { variation { id } } }",
            json!({ "variationId": variation, "value": "" }),
            "value",
        ),
    ];
    for (mutation, input, field) in cases {
        let body = change(&shop, mutation, input).await;
        assert_refused(&body, "BAD_USER_INPUT", field);
    }

    // A code another voucher of the event uses; a voucher of another
    // organizer's event is refused like one the caller may not change.
    voucher(&shop, "TAKEN").await;
    let taken = change(
        &shop,
        UPDATE_VOUCHER,
        json!({ "voucherId": bad_voucher, "code": "taken" }),
    )
    .await;
    assert_refused(&taken, "CONFLICT", "CODE_TAKEN");
    let theirs = change(
        &shop,
        UPDATE_PRODUCT,
        json!({ "productId": foreign, "name": "Mine" }),
    )
    .await;
    assert_eq!(code(&theirs), "FORBIDDEN", "{theirs}");
    let unknown = change(
        &shop,
        UPDATE_PRODUCT,
        json!({ "productId": global_id("Product", 9999), "name": "X" }),
    )
    .await;
    assert_eq!(code(&unknown), "FORBIDDEN", "{unknown}");
    let staff = shop
        .staff
        .gql(
            UPDATE_PRODUCT,
            json!({ "input": { "productId": global_id("Product", 9999), "name": "X" } }),
        )
        .await;
    assert_eq!(code(&staff), "NOT_FOUND", "{staff}");
    assert_eq!(log_count(&app, "voltgate.product.changed").await, 0);
}

#[tokio::test]
async fn what_sold_or_is_held_cannot_be_deleted_and_the_rest_goes() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "deletes").await;
    let delete = |mutation: &'static str, field: &'static str, id: String| {
        let shop = &shop;
        async move {
            shop.admin
                .gql(
                    &format!("mutation($id: ID!) {{ {mutation}(input: {{ {field}: $id }}) {{ __typename }} }}"),
                    json!({ "id": id }),
                )
                .await
        }
    };

    // A product that was ordered: deactivate it instead.
    let sold = shop.product("Sold", "10.00", 5).await;
    let order = checkout(&app, &cart_of(&app, &sold, 1).await).await;
    assert!(order["data"]["checkout"]["order"].is_object(), "{order}");
    let refused = delete("deleteProduct", "productId", sold.clone()).await;
    assert_refused(&refused, "CONFLICT", "IN_USE");
    let deactivated = change(
        &shop,
        UPDATE_PRODUCT,
        json!({ "productId": sold, "active": false }),
    )
    .await;
    assert!(deactivated["errors"].is_null(), "{deactivated}");

    // A product a cart holds, one a voucher names, and a free one.
    let held = shop.product("Held", "10.00", 5).await;
    cart_of(&app, &held, 1).await;
    let refused = delete("deleteProduct", "productId", held.clone()).await;
    assert_refused(&refused, "CONFLICT", "IN_USE");
    let named = shop.product("Named", "10.00", 5).await;
    let named_voucher = change(
        &shop,
        "mutation($input: CreateVouchersInput!) { createVouchers(input: $input) { vouchers { id } } }",
        json!({ "eventId": shop.event, "codes": ["NAMED"], "productIds": [named] }),
    )
    .await;
    assert!(named_voucher["errors"].is_null(), "{named_voucher}");
    let refused = delete("deleteProduct", "productId", named.clone()).await;
    assert_refused(&refused, "CONFLICT", "IN_USE");
    let free = shop.product("Free", "10.00", 5).await;
    let variation = change(
        &shop,
        "mutation($input: CreateProductVariationInput!) { createProductVariation(input: $input) { variation { id } } }",
        json!({ "productId": free, "value": "Blue" }),
    )
    .await;
    let variation = id_at(&variation, "/data/createProductVariation/variation/id");
    let gone = delete("deleteProductVariation", "variationId", variation).await;
    assert!(gone["errors"].is_null(), "{gone}");
    let gone = delete("deleteProduct", "productId", free.clone()).await;
    assert!(gone["errors"].is_null(), "{gone}");
    let names = shop
        .admin
        .gql(
            "{ event(organizerSlug: \"deletes\", slug: \"finals\") { products { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        names["data"]["event"]["products"],
        json!([{ "name": "Sold" }, { "name": "Held" }, { "name": "Named" }]),
        "{names}"
    );

    // A voucher: refused while a cart holds it and once redeemed (its usages
    // then never go below what was redeemed); never used, deleted.
    let reactivated = change(
        &shop,
        UPDATE_PRODUCT,
        json!({ "productId": sold, "active": true }),
    )
    .await;
    assert!(reactivated["errors"].is_null(), "{reactivated}");
    let redeemed = voucher(&shop, "USED").await;
    let added = app
        .graphql(
            ADD_TO_CART,
            json!({ "input": { "productId": sold, "quantity": 2, "voucherCode": "used" } }),
        )
        .await;
    let cart = id_at(&added, "/data/addToCart/cart/id");
    let refused = delete("deleteVoucher", "voucherId", redeemed.clone()).await;
    assert_refused(&refused, "CONFLICT", "IN_USE");
    let placed = checkout(&app, &cart).await;
    assert!(placed["data"]["checkout"]["order"].is_object(), "{placed}");
    let refused = delete("deleteVoucher", "voucherId", redeemed.clone()).await;
    assert_refused(&refused, "CONFLICT", "IN_USE");
    let fewer = change(
        &shop,
        UPDATE_VOUCHER,
        json!({ "voucherId": redeemed, "maxUsages": 1 }),
    )
    .await;
    assert_refused(&fewer, "BAD_USER_INPUT", "maxUsages");
    let exact = change(
        &shop,
        UPDATE_VOUCHER,
        json!({ "voucherId": redeemed, "maxUsages": 2 }),
    )
    .await;
    assert_eq!(
        exact["data"]["updateVoucher"]["voucher"]["redeemed"], 2,
        "{exact}"
    );
    let refused = delete("deleteProduct", "productId", named.clone()).await;
    assert_refused(&refused, "CONFLICT", "IN_USE");
    let unused = voucher(&shop, "UNUSED").await;
    let gone = delete("deleteVoucher", "voucherId", unused).await;
    assert!(gone["errors"].is_null(), "{gone}");

    // A quota that carts hold is refused; one that only orders count goes,
    // and its product is then in no quota.
    let quotas = shop.admin.gql(QUOTAS, json!({ "o": "deletes" })).await;
    let quota_ids: Vec<String> = quotas["data"]["event"]["quotas"]
        .as_array()
        .unwrap_or_else(|| panic!("quotas: {quotas}"))
        .iter()
        .map(|q| id_at(q, "/id"))
        .collect();
    let refused = delete("deleteQuota", "quotaId", quota_ids[1].clone()).await;
    assert_refused(&refused, "CONFLICT", "IN_USE");
    let gone = delete("deleteQuota", "quotaId", quota_ids[0].clone()).await;
    assert!(gone["errors"].is_null(), "{gone}");
    let unsellable = add_to_cart(&app, &sold, 1, None).await;
    assert_eq!(reason(&unsellable), "SOLD_OUT", "{unsellable}");

    // A date with orders is refused; one without goes with its quota.
    let day_one = sub_event(&shop, "Day 1").await;
    let day_two = sub_event(&shop, "Day 2").await;
    let dated = shop.product("Dated", "5.00", 0).await;
    for date in [&day_one, &day_two] {
        let created = change(
            &shop,
            "mutation($input: CreateQuotaInput!) { createQuota(input: $input) { quota { id } } }",
            json!({ "eventId": shop.event, "name": "Day", "size": 5, "subEventId": date, "productIds": [dated] }),
        )
        .await;
        assert!(created["errors"].is_null(), "{created}");
    }
    let bought = app
        .graphql(
            ADD_TO_CART,
            json!({ "input": { "productId": dated, "quantity": 1, "subEventId": day_one } }),
        )
        .await;
    let placed = checkout(&app, &id_at(&bought, "/data/addToCart/cart/id")).await;
    assert!(placed["data"]["checkout"]["order"].is_object(), "{placed}");
    let refused = delete("deleteSubEvent", "subEventId", day_one).await;
    assert_refused(&refused, "CONFLICT", "IN_USE");
    let before = log_count(&app, "voltgate.quota.deleted").await;
    let gone = delete("deleteSubEvent", "subEventId", day_two).await;
    assert!(gone["errors"].is_null(), "{gone}");
    assert_eq!(
        log_count(&app, "voltgate.quota.deleted").await,
        before,
        "the date's entry covers its quotas"
    );
    let left = shop.admin.gql(QUOTAS, json!({ "o": "deletes" })).await;
    assert_eq!(
        left["data"]["event"]["quotas"].as_array().map(Vec::len),
        Some(5),
        "held, named, the deleted product's, dated day one and the dated product's own: {left}"
    );

    // A category: its products stay, in no category.
    let category = change(
        &shop,
        "mutation($input: CreateProductCategoryInput!) { createProductCategory(input: $input) { category { id } } }",
        json!({ "eventId": shop.event, "name": "Seats" }),
    )
    .await;
    let category = id_at(&category, "/data/createProductCategory/category/id");
    change(
        &shop,
        UPDATE_PRODUCT,
        json!({ "productId": held, "categoryId": category }),
    )
    .await;
    let gone = delete("deleteProductCategory", "categoryId", category).await;
    assert!(gone["errors"].is_null(), "{gone}");
    let moved = change(&shop, UPDATE_PRODUCT, json!({ "productId": held })).await;
    assert_eq!(
        moved["data"]["updateProduct"]["product"]["categoryId"],
        Value::Null,
        "{moved}"
    );

    for action in [
        "voltgate.product.deleted",
        "voltgate.product.variation.deleted",
        "voltgate.voucher.deleted",
        "voltgate.quota.deleted",
        "voltgate.subevent.deleted",
        "voltgate.category.deleted",
    ] {
        assert_eq!(log_count(&app, action).await, 1, "{action}");
    }
}

#[tokio::test]
async fn no_change_to_teams_locks_the_organizer_out() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "lockout").await;
    let admins = administrators(&app, "lockout").await;
    let admin_id = global_id("User", shop.admin.id.unwrap_or_default());

    let deleted = change(
        &shop,
        "mutation($input: DeleteTeamInput!) { deleteTeam(input: $input) { deletedTeamId } }",
        json!({ "teamId": admins }),
    )
    .await;
    assert_refused(&deleted, "CONFLICT", "WOULD_LOCK_OUT");
    let demoted = change(
        &shop,
        UPDATE_TEAM,
        json!({ "teamId": admins, "permissions": ["CHANGE_ITEMS"] }),
    )
    .await;
    assert_refused(&demoted, "CONFLICT", "WOULD_LOCK_OUT");
    let left = shop
        .admin
        .gql(
            "mutation($t: ID!, $u: ID!) { removeTeamMember(input: { teamId: $t, userId: $u }) { team { id } } }",
            json!({ "t": admins, "u": admin_id }),
        )
        .await;
    assert_refused(&left, "CONFLICT", "WOULD_LOCK_OUT");

    // With a second team that may change teams and has a member, the first
    // may give that up; then the second is the last one.
    let keeper = person(&app, "keeper").await;
    let second = change(
        &shop,
        "mutation($input: CreateTeamInput!) { createTeam(input: $input) { team { id } } }",
        json!({ "organizerId": shop.organizer, "name": "Owners", "permissions": ["CHANGE_TEAMS"] }),
    )
    .await;
    let second = id_at(&second, "/data/createTeam/team/id");
    let joined = shop
        .admin
        .gql(
            "mutation($t: ID!, $u: ID!) { addTeamMember(input: { teamId: $t, userId: $u }) { team { id } } }",
            json!({ "t": second, "u": global_id("User", keeper.id.unwrap_or_default()) }),
        )
        .await;
    assert!(joined["errors"].is_null(), "{joined}");
    let demoted = change(
        &shop,
        UPDATE_TEAM,
        json!({ "teamId": admins, "name": "Box office", "permissions": ["CHANGE_ITEMS", "VIEW_ORDERS"], "allEvents": false, "eventIds": [shop.event] }),
    )
    .await;
    assert_eq!(
        demoted["data"]["updateTeam"]["team"],
        json!({ "name": "Box office", "allEvents": false, "eventIds": [shop.event], "permissions": ["CHANGE_ITEMS", "VIEW_ORDERS"] }),
        "{demoted}"
    );
    let refused = keeper
        .gql(
            "mutation($input: DeleteTeamInput!) { deleteTeam(input: $input) { deletedTeamId } }",
            json!({ "input": { "teamId": second } }),
        )
        .await;
    assert_refused(&refused, "CONFLICT", "WOULD_LOCK_OUT");
    // The former administrator lost the permission with the change.
    let lost = change(
        &shop,
        UPDATE_TEAM,
        json!({ "teamId": second, "name": "Mine" }),
    )
    .await;
    assert_eq!(code(&lost), "FORBIDDEN", "{lost}");

    // Deleting a team ends its tokens at once.
    let scratch = keeper
        .gql(
            "mutation($input: CreateTeamInput!) { createTeam(input: $input) { team { id } } }",
            json!({ "input": { "organizerId": shop.organizer, "name": "Scratch", "allEvents": true, "permissions": ["CHANGE_ITEMS"] } }),
        )
        .await;
    let scratch = id_at(&scratch, "/data/createTeam/team/id");
    let token = keeper
        .gql(
            "mutation($t: ID!) { createTeamApiToken(input: { teamId: $t, name: \"till\" }) { secret } }",
            json!({ "t": scratch }),
        )
        .await;
    let secret = id_at(&token, "/data/createTeamApiToken/secret");
    let product =
        "mutation($input: CreateProductInput!) { createProduct(input: $input) { product { id } } }";
    let input = json!({ "input": { "eventId": shop.event, "name": "Cap", "kind": "MERCHANDISE", "price": "9" } });
    let before = as_token(&app, &secret, product, input.clone()).await;
    assert!(before["errors"].is_null(), "{before}");
    let gone = keeper
        .gql(
            "mutation($input: DeleteTeamInput!) { deleteTeam(input: $input) { deletedTeamId } }",
            json!({ "input": { "teamId": scratch } }),
        )
        .await;
    assert_eq!(
        gone["data"]["deleteTeam"]["deletedTeamId"],
        json!(scratch),
        "{gone}"
    );
    let after = as_token(&app, &secret, product, input).await;
    assert_eq!(code(&after), "UNAUTHENTICATED", "{after}");
    assert_eq!(log_count(&app, "voltgate.team.changed").await, 1);
    assert_eq!(log_count(&app, "voltgate.team.deleted").await, 1);
}

const AVAILABILITY_CHANGED: &str = "subscription($e: ID!) { availabilityChanged(eventId: $e) { quotas { quotaId availability { state remainingQuantity } } } }";

fn first_quota(message: &Value) -> Value {
    message["payload"]["data"]["availabilityChanged"]["quotas"][0]["availability"].clone()
}

#[tokio::test]
async fn a_quota_shrinks_below_what_is_taken_grows_again_and_storefronts_see_both() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "resize").await;
    let product = shop.product("Seat", "20.00", 10).await;
    let (quota, _) = only_quota(&shop, "resize").await;
    let mut storefront = Subscription::start(
        app.addr,
        "graphql-transport-ws",
        AVAILABILITY_CHANGED,
        json!({ "e": shop.event }),
    )
    .await;

    // A subscription has no ready signal: rename the quota until a change is
    // seen (each change is announced), then hold six seats.
    let mut probes = 0;
    loop {
        probes += 1;
        assert!(probes <= 50, "the storefront sees quota changes");
        change(
            &shop,
            UPDATE_QUOTA,
            json!({ "quotaId": quota, "name": format!("Seats {probes}") }),
        )
        .await;
        if storefront
            .try_next(std::time::Duration::from_millis(200))
            .await
            .is_some()
        {
            break;
        }
    }
    let added = add_to_cart(&app, &product, 6, None).await;
    let cart = id_at(&added, "/data/addToCart/cart/id");
    while storefront
        .try_next(std::time::Duration::from_millis(300))
        .await
        .is_some()
    {}

    let shrunk = change(&shop, UPDATE_QUOTA, json!({ "quotaId": quota, "size": 4 })).await;
    assert_eq!(
        shrunk["data"]["updateQuota"]["quota"]["availability"],
        json!({ "state": "RESERVED", "remainingQuantity": 0 }),
        "{shrunk}"
    );
    assert_eq!(
        shrunk["data"]["updateQuota"]["quota"]["inCarts"], 6,
        "{shrunk}"
    );
    assert_eq!(
        first_quota(&storefront.next_message().await),
        json!({ "state": "RESERVED", "remainingQuantity": 0 })
    );
    let refused = add_to_cart(&app, &product, 1, None).await;
    assert_refused(&refused, "CONFLICT", "SOLD_OUT");

    // Checked out, the units are pending orders: the state says so.
    let placed = checkout(&app, &cart).await;
    assert!(placed["data"]["checkout"]["order"].is_object(), "{placed}");
    let (_, after) = only_quota(&shop, "resize").await;
    assert_eq!(
        after["availability"],
        json!({ "state": "ORDERED", "remainingQuantity": 0 }),
        "{after}"
    );
    while storefront
        .try_next(std::time::Duration::from_millis(300))
        .await
        .is_some()
    {}

    let grown = change(&shop, UPDATE_QUOTA, json!({ "quotaId": quota, "size": 8 })).await;
    assert_eq!(
        grown["data"]["updateQuota"]["quota"]["availability"],
        json!({ "state": "OK", "remainingQuantity": 2 }),
        "{grown}"
    );
    assert_eq!(
        first_quota(&storefront.next_message().await),
        json!({ "state": "OK", "remainingQuantity": 2 })
    );
    let added = add_to_cart(&app, &product, 2, None).await;
    assert!(added["data"]["addToCart"]["cart"].is_object(), "{added}");
    let unlimited = change(
        &shop,
        UPDATE_QUOTA,
        json!({ "quotaId": quota, "size": null, "productIds": [product] }),
    )
    .await;
    assert_eq!(
        unlimited["data"]["updateQuota"]["quota"]["availability"],
        json!({ "state": "OK", "remainingQuantity": null }),
        "{unlimited}"
    );
    assert_eq!(
        unlimited["data"]["updateQuota"]["quota"]["productIds"],
        json!([product])
    );
    assert_eq!(log_count(&app, "voltgate.quota.changed").await, probes + 3);
}

#[tokio::test]
async fn buyers_racing_a_shrinking_quota_never_get_more_than_its_size_allowed_when_they_bought() {
    let app = Arc::new(spawn_app().await);
    let shop = Arc::new(Shop::open(&app, "shrink-race").await);
    let product = shop.product("Seat", "10.00", 40).await;
    let (quota, _) = only_quota(&shop, "shrink-race").await;

    let buyer = |app: Arc<TestApp>, product: String| async move {
        let added = add_to_cart(&app, &product, 1, None).await;
        let Some(cart) = added["data"]["addToCart"]["cart"]["id"].as_str() else {
            return Err(format!("{}/{}", code(&added), reason(&added)));
        };
        let placed = checkout(&app, cart).await;
        placed["data"]["checkout"]["order"]["code"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("checkout failed: {placed}"))
    };
    let mut buyers = Vec::new();
    for _ in 0..30 {
        buyers.push(tokio::spawn(buyer(Arc::clone(&app), product.clone())));
    }
    // Some have bought before the change is sent, others buy while it runs.
    let mut early = Vec::new();
    for buyer in buyers.drain(..4) {
        early.push(buyer.await.expect("the buyer finishes"));
    }
    let shrink = {
        let (shop, quota) = (Arc::clone(&shop), quota.clone());
        tokio::spawn(async move {
            change(&shop, UPDATE_QUOTA, json!({ "quotaId": quota, "size": 12 })).await
        })
    };
    for _ in 0..50 {
        buyers.push(tokio::spawn(buyer(Arc::clone(&app), product.clone())));
    }
    let shrunk = shrink.await.expect("the change finishes");
    let at_change = &shrunk["data"]["updateQuota"]["quota"];
    let taken_at_change = ["paid", "pending", "inCarts"]
        .iter()
        .map(|counter| {
            at_change[counter]
                .as_i64()
                .unwrap_or_else(|| panic!("{shrunk}"))
        })
        .sum::<i64>();

    let mut orders = 0_i64;
    let mut refusals = Vec::new();
    let mut outcomes = early;
    for buyer in buyers {
        outcomes.push(buyer.await.expect("the buyer finishes"));
    }
    for outcome in outcomes {
        match outcome {
            Ok(_) => orders += 1,
            Err(refusal) => refusals.push(refusal),
        }
    }
    assert!(
        refusals.iter().all(|r| r == "CONFLICT/SOLD_OUT"),
        "only sold-out refusals: {refusals:?}"
    );
    // Units taken after the change count against the new size; those taken
    // before it stay (the quota is then over its size, as pretix allows).
    assert!(taken_at_change >= 4, "four bought before: {shrunk}");
    assert_eq!(
        orders,
        taken_at_change.max(12),
        "taken at the change: {taken_at_change}"
    );
    let (_, after) = only_quota(&shop, "shrink-race").await;
    assert_eq!(after["pending"], json!(orders), "{after}");
    assert_eq!(after["inCarts"], 0, "{after}");
    assert_eq!(after["availability"]["remainingQuantity"], 0, "{after}");
    let late = add_to_cart(&app, &product, 1, None).await;
    assert_refused(&late, "CONFLICT", "SOLD_OUT");
}
