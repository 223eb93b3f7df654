//! Add-ons (pretix `ItemAddOn`, django-program `AddOn`): an add-on is a
//! product of an add-on category, added to a position of the same cart whose
//! product has a rule for that category; checkout checks each position's
//! add-ons against its rules, and the order keeps who carries what.

use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
use serde_json::{Value, json};

use voltgate::entities::cart_position;

use crate::helpers::{TestApp, spawn_app};
use crate::ticketing::{CREATE_PRODUCT, Shop, add_to_cart, checkout, code, reason};

const RULE: &str = "mutation($input: CreateProductAddOnRuleInput!) { createProductAddOnRule(input: $input) { rule { id minCount maxCount addonCategory { name isAddon } } } }";
const ADD: &str = "mutation($input: AddToCartInput!) { addToCart(input: $input) { cart { id positions { id addonTo product { name } addons { product { name } } } } } }";

fn field(body: &Value) -> &str {
    body["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or("none")
}

fn message(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap_or("none")
}

/// A shop selling seats with add-ons: "Extras" is an add-on category with a
/// workshop and a T-shirt, "Merch" a plain one with a cap.
struct AddOnShop {
    shop: Shop,
    seat: String,
    workshop: String,
    shirt: String,
    cap: String,
    extras: String,
    merch: String,
}

async fn category(shop: &Shop, name: &str, is_addon: bool) -> String {
    let body = shop
        .admin
        .gql(
            "mutation($e: ID!, $n: String!, $a: Boolean!) { createProductCategory(input: { eventId: $e, name: $n, isAddon: $a }) { category { id } } }",
            json!({ "e": shop.event, "n": name, "a": is_addon }),
        )
        .await;
    body["data"]["createProductCategory"]["category"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a category: {body}"))
        .to_owned()
}

async fn product_in(shop: &Shop, category: &str, name: &str, fields: Value) -> Value {
    let mut input = json!({ "eventId": shop.event, "categoryId": category, "name": name, "kind": "ADDON", "price": "15.00", "totalQuantity": 20 });
    if let (Some(input), Some(fields)) = (input.as_object_mut(), fields.as_object()) {
        input.extend(fields.clone());
    }
    shop.admin
        .gql(CREATE_PRODUCT, json!({ "input": input }))
        .await
}

fn product_id(body: &Value) -> String {
    body["data"]["createProduct"]["product"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a product: {body}"))
        .to_owned()
}

async fn rule(shop: &Shop, product: &str, category: &str, min: i32, max: i32) -> Value {
    shop.admin
        .gql(
            RULE,
            json!({ "input": { "productId": product, "addonCategoryId": category, "minCount": min, "maxCount": max } }),
        )
        .await
}

async fn open(app: &TestApp, slug: &str) -> AddOnShop {
    let shop = Shop::open(app, slug).await;
    let seat = shop.product("Seat", "20.00", 50).await;
    let extras = category(&shop, "Extras", true).await;
    let merch = category(&shop, "Merch", false).await;
    let workshop =
        product_id(&product_in(&shop, &extras, "Workshop", json!({ "slug": "workshop" })).await);
    let shirt = product_id(&product_in(&shop, &extras, "T-shirt", json!({})).await);
    let cap = product_id(&product_in(&shop, &merch, "Cap", json!({ "kind": "MERCHANDISE" })).await);
    let created = rule(&shop, &seat, &extras, 0, 2).await;
    assert!(created["errors"].is_null(), "{created}");
    AddOnShop {
        shop,
        seat,
        workshop,
        shirt,
        cap,
        extras,
        merch,
    }
}

/// Adds `product` to `cart` as an add-on to `parent`.
async fn add_on(app: &TestApp, cart: &str, product: &str, parent: &str, quantity: i32) -> Value {
    app.graphql(
        ADD,
        json!({ "input": { "cartId": cart, "productId": product, "addonTo": parent, "quantity": quantity } }),
    )
    .await
}

/// A cart with one seat: the cart's id and the seat's position.
async fn seat_cart(app: &TestApp, shop: &AddOnShop) -> (String, String) {
    let body = add_to_cart(app, &shop.seat, 1, None).await;
    let cart = &body["data"]["addToCart"]["cart"];
    (
        cart["id"]
            .as_str()
            .unwrap_or_else(|| panic!("a cart: {body}"))
            .to_owned(),
        cart["positions"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn an_add_on_rides_on_a_ticket_of_its_cart_into_the_order() {
    let app = spawn_app().await;
    let s = open(&app, "extras").await;
    let rules = app
        .graphql(
            "query { event(organizerSlug: \"extras\", slug: \"finals\") { products { name slug addOnRules { minCount maxCount addonCategory { name isAddon } } } } }",
            json!({}),
        )
        .await;
    let products = &rules["data"]["event"]["products"];
    assert_eq!(
        products[0]["addOnRules"],
        json!([{ "minCount": 0, "maxCount": 2, "addonCategory": { "name": "Extras", "isAddon": true } }]),
        "{rules}"
    );
    assert_eq!(products[1]["slug"], "workshop", "{rules}");

    let (cart, seat) = seat_cart(&app, &s).await;
    let added = add_on(&app, &cart, &s.workshop, &seat, 1).await;
    let positions = &added["data"]["addToCart"]["cart"]["positions"];
    assert_eq!(
        positions,
        &json!([
            { "id": seat, "addonTo": null, "product": { "name": "Seat" }, "addons": [{ "product": { "name": "Workshop" } }] },
            { "id": positions[1]["id"], "addonTo": seat, "product": { "name": "Workshop" }, "addons": [] },
        ]),
        "{added}"
    );
    let added = add_on(&app, &cart, &s.shirt, &seat, 1).await;
    assert!(added["errors"].is_null(), "{added}");
    // An add-on's hold ends with its ticket's, never after it.
    let held = app
        .graphql(
            "query($c: String!) { cart(id: $c) { positions { expires } } }",
            json!({ "c": cart }),
        )
        .await;
    let expiries = &held["data"]["cart"]["positions"];
    assert!(expiries[0]["expires"].is_string(), "{held}");
    assert_eq!(expiries[1]["expires"], expiries[0]["expires"], "{held}");
    assert_eq!(expiries[2]["expires"], expiries[0]["expires"], "{held}");
    // A cap is not an add-on: it sells alone, in the same cart.
    let cap = add_to_cart(&app, &s.cap, 1, Some(&cart)).await;
    assert!(cap["errors"].is_null(), "{cap}");

    let placed = app
        .graphql(
            "mutation($c: String!) { checkout(input: { cartId: $c, email: \"b@example.com\" }) { order { id positions { id positionid addonTo product { name } addons { positionid } } } } }",
            json!({ "c": cart }),
        )
        .await;
    let positions = &placed["data"]["checkout"]["order"]["positions"];
    let seat_position = &positions[0]["id"];
    assert_eq!(
        positions,
        &json!([
            { "id": seat_position, "positionid": 1, "addonTo": null, "product": { "name": "Seat" }, "addons": [{ "positionid": 2 }, { "positionid": 3 }] },
            { "id": positions[1]["id"], "positionid": 2, "addonTo": seat_position, "product": { "name": "Workshop" }, "addons": [] },
            { "id": positions[2]["id"], "positionid": 3, "addonTo": seat_position, "product": { "name": "T-shirt" }, "addons": [] },
            { "id": positions[3]["id"], "positionid": 4, "addonTo": null, "product": { "name": "Cap" }, "addons": [] },
        ]),
        "{placed}"
    );

    // Orders are canceled whole: the ticket never goes without its add-ons.
    let canceled = s
        .shop
        .admin
        .gql(
            "mutation($o: ID!) { cancelOrder(input: { orderId: $o }) { order { positions { canceled } } } }",
            json!({ "o": placed["data"]["checkout"]["order"]["id"] }),
        )
        .await;
    assert_eq!(
        canceled["data"]["cancelOrder"]["order"]["positions"],
        json!([{ "canceled": true }, { "canceled": true }, { "canceled": true }, { "canceled": true }]),
        "{canceled}"
    );
}

#[tokio::test]
async fn add_ons_outside_their_rules_are_refused_when_added() {
    let app = spawn_app().await;
    let s = open(&app, "strict").await;
    let (cart, seat) = seat_cart(&app, &s).await;
    let (other_cart, other_seat) = seat_cart(&app, &s).await;

    let alone = add_to_cart(&app, &s.workshop, 1, Some(&cart)).await;
    assert_eq!(field(&alone), "addonTo", "{alone}");
    let elsewhere = add_on(&app, &cart, &s.workshop, &other_seat, 1).await;
    assert_eq!(field(&elsewhere), "addonTo", "{elsewhere}");
    let no_rule = add_on(&app, &cart, &s.cap, &seat, 1).await;
    assert_eq!(field(&no_rule), "addonTo", "{no_rule}");
    let two = add_on(&app, &cart, &s.workshop, &seat, 2).await;
    assert_eq!(field(&two), "addonTo", "{two}");

    let first = add_on(&app, &cart, &s.workshop, &seat, 1).await;
    let workshop_position = first["data"]["addToCart"]["cart"]["positions"][1]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("an add-on: {first}"))
        .to_owned();
    let again = add_on(&app, &cart, &s.workshop, &seat, 1).await;
    assert_eq!(field(&again), "addonTo", "{again}");
    let nested = add_on(&app, &cart, &s.shirt, &workshop_position, 1).await;
    assert_eq!(field(&nested), "addonTo", "{nested}");
    let shirt = add_on(&app, &cart, &s.shirt, &seat, 1).await;
    assert!(shirt["errors"].is_null(), "{shirt}");

    // A third extra passes the rule's maximum of two.
    let third = product_id(&product_in(&s.shop, &s.extras, "Poster", json!({})).await);
    let over = add_on(&app, &cart, &third, &seat, 1).await;
    assert_eq!(code(&over), "BAD_USER_INPUT", "{over}");
    assert_eq!(field(&over), "quantity", "{over}");

    let placed = checkout(&app, &other_cart).await;
    assert!(placed["errors"].is_null(), "{placed}");

    // A ticket whose hold has run out takes no more add-ons.
    let (late_cart, late_seat) = seat_cart(&app, &s).await;
    cart_position::Entity::update_many()
        .col_expr(
            cart_position::Column::Expires,
            sea_orm::sea_query::Expr::value(chrono::Utc::now() - chrono::TimeDelta::minutes(1)),
        )
        .filter(cart_position::Column::CartId.eq(late_cart.as_str()))
        .exec(&app.db)
        .await
        .unwrap_or_else(|e| panic!("expired: {e}"));
    let late = add_on(&app, &late_cart, &s.workshop, &late_seat, 1).await;
    assert_eq!(field(&late), "addonTo", "{late}");
    assert!(message(&late).contains("expired"), "{late}");
}

#[tokio::test]
async fn checkout_checks_every_ticket_against_its_rules() {
    let app = spawn_app().await;
    let s = open(&app, "gate").await;
    let edit = "mutation($input: UpdateProductAddOnRuleInput!) { updateProductAddOnRule(input: $input) { rule { minCount maxCount } } }";
    let rules = app
        .graphql(
            "query { event(organizerSlug: \"gate\", slug: \"finals\") { products { addOnRules { id } } } }",
            json!({}),
        )
        .await;
    let rule_id = rules["data"]["event"]["products"][0]["addOnRules"][0]["id"].clone();

    // At least one extra per seat.
    let changed = s
        .shop
        .admin
        .gql(
            edit,
            json!({ "input": { "ruleId": rule_id, "minCount": 1 } }),
        )
        .await;
    assert_eq!(
        changed["data"]["updateProductAddOnRule"]["rule"],
        json!({ "minCount": 1, "maxCount": 2 }),
        "{changed}"
    );
    let (cart, seat) = seat_cart(&app, &s).await;
    let refused = checkout(&app, &cart).await;
    assert_eq!(code(&refused), "BAD_USER_INPUT", "{refused}");
    assert_eq!(field(&refused), "cartId", "{refused}");
    assert!(
        message(&refused).contains("Seat takes 1 to 2 add-ons from Extras"),
        "{refused}"
    );

    // Two extras were fine when added; the maximum dropped to one since.
    for product in [&s.workshop, &s.shirt] {
        let added = add_on(&app, &cart, product, &seat, 1).await;
        assert!(added["errors"].is_null(), "{added}");
    }
    let changed = s
        .shop
        .admin
        .gql(
            edit,
            json!({ "input": { "ruleId": rule_id, "maxCount": 1 } }),
        )
        .await;
    assert!(changed["errors"].is_null(), "{changed}");
    let refused = checkout(&app, &cart).await;
    assert_eq!(field(&refused), "cartId", "{refused}");
    assert!(message(&refused).contains("(2 chosen)"), "{refused}");

    // An add-on whose ticket left the cart is refused.
    let (lonely_cart, lonely_seat) = seat_cart(&app, &s).await;
    let added = add_on(&app, &lonely_cart, &s.workshop, &lonely_seat, 1).await;
    assert!(added["errors"].is_null(), "{added}");
    cart_position::Entity::delete_many()
        .filter(cart_position::Column::CartId.eq(lonely_cart.as_str()))
        .filter(cart_position::Column::AddonTo.is_null())
        .exec(&app.db)
        .await
        .unwrap_or_else(|e| panic!("deleted: {e}"));
    let refused = checkout(&app, &lonely_cart).await;
    assert_eq!(field(&refused), "cartId", "{refused}");
    assert!(
        message(&refused).contains("Workshop is an add-on without its ticket"),
        "{refused}"
    );
}

#[tokio::test]
async fn add_on_rules_and_slugs_are_checked_when_created() {
    let app = spawn_app().await;
    let s = open(&app, "rules").await;
    for (category, min, max, expected) in [
        (&s.merch, 0, 1, "addonCategoryId"),
        (&s.extras, 2, 1, "minCount"),
        (&s.extras, -1, 1, "minCount"),
        (&s.extras, 0, 0, "maxCount"),
    ] {
        let body = rule(&s.shop, &s.cap, category, min, max).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(field(&body), expected, "{body}");
    }
    let twice = rule(&s.shop, &s.seat, &s.extras, 0, 1).await;
    assert_eq!(code(&twice), "CONFLICT", "{twice}");
    let malformed = s
        .shop
        .admin
        .gql(
            "mutation($p: ID!) { createProductAddOnRule(input: { productId: $p, addonCategoryId: \"x\" }) { rule { id } } }",
            json!({ "p": s.cap }),
        )
        .await;
    assert_eq!(field(&malformed), "addonCategoryId", "{malformed}");

    let taken = product_in(
        &s.shop,
        &s.extras,
        "Workshop 2",
        json!({ "slug": "workshop" }),
    )
    .await;
    assert_eq!(reason(&taken), "SLUG_TAKEN", "{taken}");
    let bad = product_in(
        &s.shop,
        &s.extras,
        "Workshop 3",
        json!({ "slug": "Work Shop" }),
    )
    .await;
    assert_eq!(field(&bad), "slug", "{bad}");

    let rules = app
        .graphql(
            "query { event(organizerSlug: \"rules\", slug: \"finals\") { products { addOnRules { id } } } }",
            json!({}),
        )
        .await;
    let rule_id = rules["data"]["event"]["products"][0]["addOnRules"][0]["id"].clone();
    let deleted = s
        .shop
        .admin
        .gql(
            "mutation($r: ID!) { deleteProductAddOnRule(input: { ruleId: $r }) { deletedRuleId } }",
            json!({ "r": rule_id }),
        )
        .await;
    assert_eq!(
        deleted["data"]["deleteProductAddOnRule"]["deletedRuleId"],
        rule_id
    );
    // Without the rule, a seat takes no extras.
    let (cart, seat) = seat_cart(&app, &s).await;
    let refused = add_on(&app, &cart, &s.workshop, &seat, 1).await;
    assert_eq!(field(&refused), "addonTo", "{refused}");
}

#[tokio::test]
async fn a_products_slug_is_changed_checked_and_cleared() {
    let app = spawn_app().await;
    let s = open(&app, "slugs").await;
    let set_slug = |product: &str, slug: Value| {
        s.shop.admin.gql(
            "mutation($p: ID!, $slug: String) { updateProduct(input: { productId: $p, slug: $slug }) { product { slug name } } }",
            json!({ "p": product, "slug": slug }),
        )
    };
    let taken = set_slug(&s.cap, json!("workshop")).await;
    assert_eq!(reason(&taken), "SLUG_TAKEN", "{taken}");
    let bad = set_slug(&s.cap, json!("Cap Hat")).await;
    assert_eq!(field(&bad), "slug", "{bad}");

    let named = set_slug(&s.cap, json!("cap")).await;
    assert_eq!(
        named["data"]["updateProduct"]["product"]["slug"], "cap",
        "{named}"
    );
    assert_eq!(
        named["data"]["updateProduct"]["product"]["name"], "Cap",
        "{named}"
    );
    // Clearing the workshop's slug frees it for another product.
    let cleared = set_slug(&s.workshop, Value::Null).await;
    assert!(cleared["errors"].is_null(), "{cleared}");
    let moved = set_slug(&s.cap, json!("workshop")).await;
    assert_eq!(
        moved["data"]["updateProduct"]["product"]["slug"], "workshop",
        "{moved}"
    );
    // A patch without the slug keeps it.
    let renamed = s
        .shop
        .admin
        .gql(
            "mutation($p: ID!) { updateProduct(input: { productId: $p, name: \"Cap 2\" }) { product { slug name } } }",
            json!({ "p": s.cap }),
        )
        .await;
    assert_eq!(
        renamed["data"]["updateProduct"]["product"]["slug"], "workshop",
        "{renamed}"
    );
}
