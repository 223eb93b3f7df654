//! Every ticketing operation × (anonymous, customer, team member without the
//! permission, team member with it, team API token with it): the first three
//! are refused, the last two are let through.

use serde_json::{Value, json};

use crate::client::TestUser;
use crate::helpers::{TestApp, global_id, spawn_app};
use crate::ticketing::{Shop, add_to_cart, as_token, checkout, code, person};

/// Who calls.
enum Caller<'a> {
    Anonymous,
    Person(&'a TestUser),
    Token(&'a str),
}

async fn call(app: &TestApp, caller: &Caller<'_>, document: &str) -> Value {
    match caller {
        Caller::Anonymous => app.graphql(document, json!({})).await,
        Caller::Person(user) => user.gql(document, json!({})).await,
        Caller::Token(secret) => as_token(app, secret, document, json!({})).await,
    }
}

async fn team(shop: &Shop, organizer: &str, events: &[&str], permissions: &[&str]) -> String {
    let body = shop
        .admin
        .gql(
            "mutation($input: CreateTeamInput!) { createTeam(input: $input) { team { id } } }",
            json!({ "input": { "organizerId": organizer, "name": "Team", "eventIds": events, "permissions": permissions } }),
        )
        .await;
    body["data"]["createTeam"]["team"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a team: {body}"))
        .to_owned()
}

async fn join(shop: &Shop, team: &str, user: &TestUser) {
    let body = shop
        .admin
        .gql(
            "mutation($t: ID!, $u: ID!) { addTeamMember(input: { teamId: $t, userId: $u }) { team { id } } }",
            json!({ "t": team, "u": global_id("User", user.id.unwrap_or_default()) }),
        )
        .await;
    assert!(body["data"]["addTeamMember"].is_object(), "{body}");
}

async fn token(shop: &Shop, team: &str) -> (String, String) {
    let body = shop
        .admin
        .gql(
            "mutation($t: ID!) { createTeamApiToken(input: { teamId: $t, name: \"api\" }) { secret token { id } } }",
            json!({ "t": team }),
        )
        .await;
    (
        body["data"]["createTeamApiToken"]["secret"]
            .as_str()
            .unwrap_or_else(|| panic!("a token: {body}"))
            .to_owned(),
        body["data"]["createTeamApiToken"]["token"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// What a call that deletes an object gets instead of each placeholder: a
/// new object made by the mutation, read at the path.
const FRESH: [(&str, &str, &str); 8] = [
    (
        "{fresh_property}",
        "mutation($o: ID!, $n: String!) { createEventMetaProperty(input: { organizerId: $o, name: $n }) { property { id } } }",
        "/data/createEventMetaProperty/property/id",
    ),
    (
        "{fresh_category}",
        "mutation($e: ID!, $n: String!) { createProductCategory(input: { eventId: $e, name: $n }) { category { id } } }",
        "/data/createProductCategory/category/id",
    ),
    (
        "{fresh_product}",
        "mutation($e: ID!, $n: String!) { createProduct(input: { eventId: $e, name: $n, kind: ADDON, price: \"1.00\" }) { product { id } } }",
        "/data/createProduct/product/id",
    ),
    (
        "{fresh_variation}",
        "mutation($p: ID!, $n: String!) { createProductVariation(input: { productId: $p, value: $n }) { variation { id } } }",
        "/data/createProductVariation/variation/id",
    ),
    (
        "{fresh_quota}",
        "mutation($e: ID!, $p: ID!, $n: String!) { createQuota(input: { eventId: $e, name: $n, size: 5, productIds: [$p] }) { quota { id } } }",
        "/data/createQuota/quota/id",
    ),
    (
        "{fresh_date}",
        "mutation($e: ID!, $n: String!) { createSubEvent(input: { eventId: $e, name: $n, dateFrom: \"2027-01-01T00:00:00Z\" }) { subEvent { id } } }",
        "/data/createSubEvent/subEvent/id",
    ),
    (
        "{fresh_voucher}",
        "mutation($e: ID!, $n: String!) { createVouchers(input: { eventId: $e, codes: [$n] }) { vouchers { id } } }",
        "/data/createVouchers/vouchers/0/id",
    ),
    (
        "{fresh_team}",
        "mutation($o: ID!, $n: String!) { createTeam(input: { organizerId: $o, name: $n, permissions: [] }) { team { id } } }",
        "/data/createTeam/team/id",
    ),
];

async fn fresh_object(
    shop: &Shop,
    placeholder: &str,
    organizer: &str,
    event: &str,
    product: &str,
    name: &str,
) -> String {
    let (_, mutation, path) = FRESH
        .iter()
        .find(|(p, _, _)| *p == placeholder)
        .unwrap_or_else(|| panic!("a placeholder: {placeholder}"));
    let body = shop
        .admin
        .gql(
            mutation,
            json!({ "o": organizer, "e": event, "p": product, "n": name }),
        )
        .await;
    body.pointer(path)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{placeholder}: {body}"))
        .to_owned()
}

#[tokio::test]
async fn every_ticketing_operation_checks_the_team_permission_for_its_event() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "perms").await;
    let (org, event) = (shop.organizer.clone(), shop.event.clone());
    let product = shop.product("Seat", "20.00", 100).await;
    let cart = add_to_cart(&app, &product, 1, None).await;
    let cart = cart["data"]["addToCart"]["cart"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let placed = checkout(&app, &cart).await;
    let order = placed["data"]["checkout"]["order"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("an order: {placed}"))
        .to_owned();

    let mut payments = Vec::new();
    for _ in 0..3 {
        let created = shop
            .admin
            .gql(
                "mutation($o: ID!) { createOrderPayment(input: { orderId: $o, method: MANUAL, amount: \"1.00\" }) { payment { id } } }",
                json!({ "o": order }),
            )
            .await;
        payments.push(
            created["data"]["createOrderPayment"]["payment"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("a payment: {created}"))
                .to_owned(),
        );
    }
    let [failing, canceling, confirming] = [&payments[0], &payments[1], &payments[2]];
    let code_and_secret = &placed["data"]["checkout"];
    let started = app
        .graphql(
            "mutation($input: StartOrderPaymentInput!) { startOrderPayment(input: $input) { payment { id } } }",
            json!({ "input": {
                "eventId": event, "provider": "test",
                "code": code_and_secret["order"]["code"], "secret": code_and_secret["secret"],
            } }),
        )
        .await;
    let provider_payment = started["data"]["startOrderPayment"]["payment"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a provider payment: {started}"))
        .to_owned();

    let customer = person(&app, "carla").await;
    let customer_id = global_id("User", customer.id.unwrap_or_default());
    // Mallory is on a team of this organizer without permissions, and on a
    // team with every permission of another organizer.
    let mallory = person(&app, "mallory").await;
    let nothing = team(&shop, &org, &[], &[]).await;
    join(&shop, &nothing, &mallory).await;
    let elsewhere = shop
        .staff
        .gql(
            "mutation($u: ID!) { createOrganizer(input: { name: \"Other\", slug: \"other\", adminUserId: $u }) { organizer { id } } }",
            json!({ "u": global_id("User", mallory.id.unwrap_or_default()) }),
        )
        .await;
    assert!(
        elsewhere["data"]["createOrganizer"].is_object(),
        "{elsewhere}"
    );
    let scratch = team(&shop, &org, &[], &[]).await;
    let (_, scratch_token) = token(&shop, &scratch).await;

    let issued = shop
        .admin
        .gql(
            "mutation($o: ID!) { issueInvoice(orderId: $o) { id } }",
            json!({ "o": order }),
        )
        .await;
    let invoice = issued["data"]["issueInvoice"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("an invoice: {issued}"))
        .to_owned();

    // Objects the matrix changes; each call that deletes one gets a fresh one.
    let fresh = |placeholder: &'static str, n: String| {
        let (shop, org, event, product) = (&shop, org.clone(), event.clone(), product.clone());
        async move { fresh_object(shop, placeholder, &org, &event, &product, &n).await }
    };
    let property = fresh("{fresh_property}", "genre".to_owned()).await;
    let category = fresh("{fresh_category}", "kept".to_owned()).await;
    let variation = fresh("{fresh_variation}", "kept".to_owned()).await;
    let quota = fresh("{fresh_quota}", "kept".to_owned()).await;
    let voucher = fresh("{fresh_voucher}", "KEPT".to_owned()).await;
    let dated = shop
        .admin
        .gql(
            "mutation($e: ID!) { createSubEvent(input: { eventId: $e, name: \"D\", dateFrom: \"2027-01-01T00:00:00Z\" }) { subEvent { id } } }",
            json!({ "e": event }),
        )
        .await;
    let date = dated["data"]["createSubEvent"]["subEvent"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a date: {dated}"))
        .to_owned();

    // Questions and add-on rules: one of each the matrix changes, fresh ones
    // for each call that deletes one, and a position of the order.
    let fresh_question = |text: String| {
        let admin = &shop.admin;
        let event = event.clone();
        async move {
            let body = admin
                .gql(
                    "mutation($e: ID!, $q: String!) { createQuestion(input: { eventId: $e, question: $q, type: STRING }) { question { id } } }",
                    json!({ "e": event, "q": text }),
                )
                .await;
            body["data"]["createQuestion"]["question"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("a question: {body}"))
                .to_owned()
        }
    };
    let asked = fresh_question("Size?".to_owned()).await;
    let fresh_category = |name: String| {
        let admin = &shop.admin;
        let event = event.clone();
        async move {
            let body = admin
                .gql(
                    "mutation($e: ID!, $n: String!) { createProductCategory(input: { eventId: $e, name: $n, isAddon: true }) { category { id } } }",
                    json!({ "e": event, "n": name }),
                )
                .await;
            body["data"]["createProductCategory"]["category"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("a category: {body}"))
                .to_owned()
        }
    };
    let fresh_rule = |name: String| {
        let admin = &shop.admin;
        let product = product.clone();
        let category = fresh_category(name);
        async move {
            let body = admin
                .gql(
                    "mutation($p: ID!, $c: ID!) { createProductAddOnRule(input: { productId: $p, addonCategoryId: $c }) { rule { id } } }",
                    json!({ "p": product, "c": category.await }),
                )
                .await;
            body["data"]["createProductAddOnRule"]["rule"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("a rule: {body}"))
                .to_owned()
        }
    };
    let add_on_rule = fresh_rule("Extras".to_owned()).await;
    let read = app
        .graphql(
            "query($e: ID!, $c: String!, $s: String!) { order(eventId: $e, code: $c, secret: $s) { positions { id } } }",
            json!({ "e": event, "c": code_and_secret["order"]["code"], "s": code_and_secret["secret"] }),
        )
        .await;
    let order_position = read["data"]["order"]["positions"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a position: {read}"))
        .to_owned();
    let operations: Vec<(&str, &str, String)> = vec![
        (
            "createEvent",
            "CREATE_EVENTS",
            format!(
                "mutation {{ createEvent(input: {{ organizerId: \"{org}\", name: \"E\", slug: \"e-{{n}}\", currency: \"EUR\", dateFrom: \"2027-01-01T00:00:00Z\" }}) {{ event {{ id }} }} }}"
            ),
        ),
        (
            "updateEvent",
            "CHANGE_EVENTS",
            format!(
                "mutation {{ updateEvent(input: {{ eventId: \"{event}\", location: \"Hall {{n}}\" }}) {{ event {{ id }} }} }}"
            ),
        ),
        (
            "createSubEvent",
            "CHANGE_EVENTS",
            format!(
                "mutation {{ createSubEvent(input: {{ eventId: \"{event}\", name: \"D\", dateFrom: \"2027-01-01T00:00:00Z\" }}) {{ subEvent {{ id }} }} }}"
            ),
        ),
        (
            "logEntries",
            "CHANGE_EVENTS",
            "{ event(organizerSlug: \"perms\", slug: \"finals\") { logEntries { id } } }"
                .to_owned(),
        ),
        (
            "createTeam",
            "CHANGE_TEAMS",
            format!(
                "mutation {{ createTeam(input: {{ organizerId: \"{org}\", name: \"T\", permissions: [] }}) {{ team {{ id }} }} }}"
            ),
        ),
        (
            "addTeamMember",
            "CHANGE_TEAMS",
            format!(
                "mutation {{ addTeamMember(input: {{ teamId: \"{scratch}\", userId: \"{customer_id}\" }}) {{ team {{ id }} }} }}"
            ),
        ),
        (
            "removeTeamMember",
            "CHANGE_TEAMS",
            format!(
                "mutation {{ removeTeamMember(input: {{ teamId: \"{scratch}\", userId: \"{customer_id}\" }}) {{ team {{ id }} }} }}"
            ),
        ),
        (
            "createTeamApiToken",
            "CHANGE_TEAMS",
            format!(
                "mutation {{ createTeamApiToken(input: {{ teamId: \"{scratch}\", name: \"t\" }}) {{ secret }} }}"
            ),
        ),
        (
            "revokeTeamApiToken",
            "CHANGE_TEAMS",
            format!(
                "mutation {{ revokeTeamApiToken(input: {{ tokenId: \"{scratch_token}\" }}) {{ token {{ id }} }} }}"
            ),
        ),
        (
            "createProductCategory",
            "CHANGE_ITEMS",
            format!(
                "mutation {{ createProductCategory(input: {{ eventId: \"{event}\", name: \"C\" }}) {{ category {{ id }} }} }}"
            ),
        ),
        (
            "createProduct",
            "CHANGE_ITEMS",
            format!(
                "mutation {{ createProduct(input: {{ eventId: \"{event}\", name: \"P\", kind: ADDON, price: \"2.50\" }}) {{ product {{ id }} }} }}"
            ),
        ),
        (
            "createProductVariation",
            "CHANGE_ITEMS",
            format!(
                "mutation {{ createProductVariation(input: {{ productId: \"{product}\", value: \"Balcony\" }}) {{ variation {{ id }} }} }}"
            ),
        ),
        (
            "createQuota",
            "CHANGE_ITEMS",
            format!(
                "mutation {{ createQuota(input: {{ eventId: \"{event}\", name: \"Q\", size: 5, productIds: [\"{product}\"] }}) {{ quota {{ id }} }} }}"
            ),
        ),
        (
            "quotas",
            "VIEW_ORDERS",
            "{ event(organizerSlug: \"perms\", slug: \"finals\") { quotas { id } } }".to_owned(),
        ),
        (
            "orders",
            "VIEW_ORDERS",
            "{ event(organizerSlug: \"perms\", slug: \"finals\") { orders { totalCount } } }"
                .to_owned(),
        ),
        (
            "createVouchers",
            "CHANGE_VOUCHERS",
            format!(
                "mutation {{ createVouchers(input: {{ eventId: \"{event}\", codes: [\"V{{n}}\"] }}) {{ vouchers {{ id }} }} }}"
            ),
        ),
        (
            "vouchers",
            "VIEW_VOUCHERS",
            "{ event(organizerSlug: \"perms\", slug: \"finals\") { vouchers { totalCount } } }"
                .to_owned(),
        ),
        (
            "createOrderPayment",
            "CHANGE_ORDERS",
            format!(
                "mutation {{ createOrderPayment(input: {{ orderId: \"{order}\", method: MANUAL, amount: \"1.00\" }}) {{ payment {{ id }} }} }}"
            ),
        ),
        (
            "failOrderPayment",
            "CHANGE_ORDERS",
            format!(
                "mutation {{ failOrderPayment(input: {{ paymentId: \"{failing}\" }}) {{ payment {{ id }} }} }}"
            ),
        ),
        (
            "cancelOrderPayment",
            "CHANGE_ORDERS",
            format!(
                "mutation {{ cancelOrderPayment(input: {{ paymentId: \"{canceling}\" }}) {{ payment {{ id }} }} }}"
            ),
        ),
        (
            "confirmOrderPayment",
            "CHANGE_ORDERS",
            format!(
                "mutation {{ confirmOrderPayment(input: {{ paymentId: \"{confirming}\" }}) {{ payment {{ id }} }} }}"
            ),
        ),
        (
            "simulateTestPayment",
            "CHANGE_ORDERS",
            format!(
                "mutation {{ simulateTestPayment(input: {{ paymentId: \"{provider_payment}\", outcome: FAILED }}) {{ payment {{ id }} }} }}"
            ),
        ),
        (
            "refreshOrderPayment",
            "CHANGE_ORDERS",
            format!(
                "mutation {{ refreshOrderPayment(input: {{ paymentId: \"{provider_payment}\" }}) {{ payment {{ id }} }} }}"
            ),
        ),
        (
            "paymentWebhookEvents",
            "VIEW_ORDERS",
            format!("{{ paymentWebhookEvents(eventId: \"{event}\") {{ totalCount }} }}"),
        ),
        (
            "markOrderPaid",
            "CHANGE_ORDERS",
            format!(
                "mutation {{ markOrderPaid(input: {{ orderId: \"{order}\" }}) {{ order {{ id }} }} }}"
            ),
        ),
        (
            "cancelOrder",
            "CHANGE_ORDERS",
            format!(
                "mutation {{ cancelOrder(input: {{ orderId: \"{order}\" }}) {{ order {{ id }} }} }}"
            ),
        ),
        (
            "salesReport",
            "VIEW_ORDERS",
            format!("{{ salesReport(eventId: \"{event}\") {{ byDay {{ day }} }} }}"),
        ),
        (
            "refundOrder",
            "CHANGE_ORDERS",
            format!(
                "mutation {{ refundOrder(input: {{ orderId: \"{order}\", method: MANUAL, amount: \"0.01\" }}) {{ refund {{ id }} }} }}"
            ),
        ),
        (
            "invoiceSettings",
            "CHANGE_EVENTS",
            format!("{{ invoiceSettings(eventId: \"{event}\") {{ prefix }} }}"),
        ),
        (
            "updateInvoiceSettings",
            "CHANGE_EVENTS",
            format!(
                "mutation {{ updateInvoiceSettings(input: {{ eventId: \"{event}\", footerText: \"{{n}}\" }}) {{ prefix }} }}"
            ),
        ),
        (
            "setInvoiceAddress",
            "CHANGE_ORDERS",
            format!(
                "mutation {{ setInvoiceAddress(order: {{ id: \"{order}\" }}, address: {{ name: \"N {{n}}\" }}) {{ name }} }}"
            ),
        ),
        (
            "invoice",
            "VIEW_ORDERS",
            format!("{{ invoice(id: \"{invoice}\") {{ number }} }}"),
        ),
        (
            "invoices",
            "VIEW_ORDERS",
            format!("{{ invoices(eventId: \"{event}\") {{ number }} }}"),
        ),
        (
            "issueInvoice",
            "CHANGE_ORDERS",
            format!("mutation {{ issueInvoice(orderId: \"{order}\") {{ id }} }}"),
        ),
        (
            "cancelInvoice",
            "CHANGE_ORDERS",
            format!("mutation {{ cancelInvoice(invoiceId: \"{invoice}\") {{ id }} }}"),
        ),
        (
            "reissueInvoice",
            "CHANGE_ORDERS",
            format!("mutation {{ reissueInvoice(orderId: \"{order}\") {{ invoice {{ id }} }} }}"),
        ),
        (
            "createEventMetaProperty",
            "CHANGE_ORGANIZER_SETTINGS",
            format!(
                "mutation {{ createEventMetaProperty(input: {{ organizerId: \"{org}\", name: \"p{{n}}\" }}) {{ property {{ id }} }} }}"
            ),
        ),
        (
            "updateEventMetaProperty",
            "CHANGE_ORGANIZER_SETTINGS",
            format!(
                "mutation {{ updateEventMetaProperty(input: {{ propertyId: \"{property}\", defaultValue: \"d{{n}}\" }}) {{ property {{ id }} }} }}"
            ),
        ),
        (
            "deleteEventMetaProperty",
            "CHANGE_ORGANIZER_SETTINGS",
            "mutation { deleteEventMetaProperty(input: { propertyId: \"{fresh_property}\" }) { deletedPropertyId } }"
                .to_owned(),
        ),
        (
            "setPaymentProviderFee",
            "CHANGE_EVENTS",
            format!(
                "mutation {{ setPaymentProviderFee(input: {{ eventId: \"{event}\", provider: \"test\", fixed: \"{{n}}\", percent: \"1\" }}) {{ fee {{ provider }} }} }}"
            ),
        ),
        (
            "setEventMetaValue",
            "CHANGE_EVENTS",
            format!(
                "mutation {{ setEventMetaValue(input: {{ eventId: \"{event}\", propertyId: \"{property}\", value: \"v{{n}}\" }}) {{ event {{ id }} }} }}"
            ),
        ),
        (
            "clearEventMetaValue",
            "CHANGE_EVENTS",
            format!(
                "mutation {{ clearEventMetaValue(input: {{ eventId: \"{event}\", propertyId: \"{property}\" }}) {{ event {{ id }} }} }}"
            ),
        ),
        (
            "setSubEventMetaValue",
            "CHANGE_EVENTS",
            format!(
                "mutation {{ setSubEventMetaValue(input: {{ subEventId: \"{date}\", propertyId: \"{property}\", value: \"v{{n}}\" }}) {{ subEvent {{ id }} }} }}"
            ),
        ),
        (
            "clearSubEventMetaValue",
            "CHANGE_EVENTS",
            format!(
                "mutation {{ clearSubEventMetaValue(input: {{ subEventId: \"{date}\", propertyId: \"{property}\" }}) {{ subEvent {{ id }} }} }}"
            ),
        ),
        (
            "createQuestion",
            "CHANGE_ITEMS",
            format!(
                "mutation {{ createQuestion(input: {{ eventId: \"{event}\", question: \"Q{{n}}\", type: NUMBER }}) {{ question {{ id }} }} }}"
            ),
        ),
        (
            "updateQuestion",
            "CHANGE_ITEMS",
            format!(
                "mutation {{ updateQuestion(input: {{ questionId: \"{asked}\", question: \"Q{{n}}\" }}) {{ question {{ id }} }} }}"
            ),
        ),
        (
            "deleteQuestion",
            "CHANGE_ITEMS",
            "mutation { deleteQuestion(input: { questionId: \"{fresh_question}\" }) { deletedQuestionId } }"
                .to_owned(),
        ),
        (
            "setOrderPositionAnswers",
            "CHANGE_ORDERS",
            format!(
                "mutation {{ setOrderPositionAnswers(input: {{ positionId: \"{order_position}\", answers: [] }}) {{ position {{ id }} }} }}"
            ),
        ),
        (
            "createProductAddOnRule",
            "CHANGE_ITEMS",
            "mutation { createProductAddOnRule(input: { productId: \"{product}\", addonCategoryId: \"{fresh_addon_category}\" }) { rule { id } } }"
                .replace("{product}", &product),
        ),
        (
            "updateProductAddOnRule",
            "CHANGE_ITEMS",
            format!(
                "mutation {{ updateProductAddOnRule(input: {{ ruleId: \"{add_on_rule}\", position: {{n}} }}) {{ rule {{ id }} }} }}"
            ),
        ),
        (
            "deleteProductAddOnRule",
            "CHANGE_ITEMS",
            "mutation { deleteProductAddOnRule(input: { ruleId: \"{fresh_rule}\" }) { deletedRuleId } }"
                .to_owned(),
        ),
        (
            "updateProductCategory",
            "CHANGE_ITEMS",
            format!(
                "mutation {{ updateProductCategory(input: {{ categoryId: \"{category}\", name: \"C{{n}}\" }}) {{ category {{ id }} }} }}"
            ),
        ),
        (
            "deleteProductCategory",
            "CHANGE_ITEMS",
            "mutation { deleteProductCategory(input: { categoryId: \"{fresh_category}\" }) { deletedCategoryId } }"
                .to_owned(),
        ),
        (
            "updateProduct",
            "CHANGE_ITEMS",
            format!(
                "mutation {{ updateProduct(input: {{ productId: \"{product}\", description: \"d{{n}}\" }}) {{ product {{ id }} }} }}"
            ),
        ),
        (
            "deleteProduct",
            "CHANGE_ITEMS",
            "mutation { deleteProduct(input: { productId: \"{fresh_product}\" }) { deletedProductId } }"
                .to_owned(),
        ),
        (
            "updateProductVariation",
            "CHANGE_ITEMS",
            format!(
                "mutation {{ updateProductVariation(input: {{ variationId: \"{variation}\", value: \"V{{n}}\" }}) {{ variation {{ id }} }} }}"
            ),
        ),
        (
            "deleteProductVariation",
            "CHANGE_ITEMS",
            "mutation { deleteProductVariation(input: { variationId: \"{fresh_variation}\" }) { deletedVariationId } }"
                .to_owned(),
        ),
        (
            "updateQuota",
            "CHANGE_ITEMS",
            format!(
                "mutation {{ updateQuota(input: {{ quotaId: \"{quota}\", name: \"Q{{n}}\" }}) {{ quota {{ id }} }} }}"
            ),
        ),
        (
            "deleteQuota",
            "CHANGE_ITEMS",
            "mutation { deleteQuota(input: { quotaId: \"{fresh_quota}\" }) { deletedQuotaId } }"
                .to_owned(),
        ),
        (
            "updateSubEvent",
            "CHANGE_EVENTS",
            format!(
                "mutation {{ updateSubEvent(input: {{ subEventId: \"{date}\", name: \"D{{n}}\" }}) {{ subEvent {{ id }} }} }}"
            ),
        ),
        (
            "deleteSubEvent",
            "CHANGE_EVENTS",
            "mutation { deleteSubEvent(input: { subEventId: \"{fresh_date}\" }) { deletedSubEventId } }"
                .to_owned(),
        ),
        (
            "updateVoucher",
            "CHANGE_VOUCHERS",
            format!(
                "mutation {{ updateVoucher(input: {{ voucherId: \"{voucher}\", comment: \"c{{n}}\" }}) {{ voucher {{ id }} }} }}"
            ),
        ),
        (
            "deleteVoucher",
            "CHANGE_VOUCHERS",
            "mutation { deleteVoucher(input: { voucherId: \"{fresh_voucher}\" }) { deletedVoucherId } }"
                .to_owned(),
        ),
        (
            "updateTeam",
            "CHANGE_TEAMS",
            format!(
                "mutation {{ updateTeam(input: {{ teamId: \"{scratch}\", name: \"T{{n}}\" }}) {{ team {{ id }} }} }}"
            ),
        ),
        (
            "deleteTeam",
            "CHANGE_TEAMS",
            "mutation { deleteTeam(input: { teamId: \"{fresh_team}\" }) { deletedTeamId } }"
                .to_owned(),
        ),
        (
            "setSubEventProductSettings",
            "CHANGE_EVENTS",
            format!(
                "mutation {{ setSubEventProductSettings(input: {{ subEventId: \"{date}\", productId: \"{product}\", price: \"{{n}}.00\" }}) {{ subEvent {{ id }} }} }}"
            ),
        ),
        (
            "clearSubEventProductSettings",
            "CHANGE_EVENTS",
            format!(
                "mutation {{ clearSubEventProductSettings(input: {{ subEventId: \"{date}\", productId: \"{product}\" }}) {{ subEvent {{ id }} }} }}"
            ),
        ),
        (
            "setExchangeRate",
            "CHANGE_ORGANIZER_SETTINGS",
            format!(
                "mutation {{ setExchangeRate(input: {{ organizerId: \"{org}\", fromCurrency: \"EUR\", toCurrency: \"CHF\", date: \"2027-01-01\", rate: \"0.{{n}}\" }}) {{ exchangeRate {{ rate }} }} }}"
            ),
        ),
    ];

    let mut n = 0;
    for (operation, permission, document) in &operations {
        // A member and a token holding only this permission, on this event.
        let granted = team(&shop, &org, &[event.as_str()], &[*permission]).await;
        let member = person(&app, &format!("m{}", operation.to_lowercase())).await;
        join(&shop, &granted, &member).await;
        let (secret, _) = token(&shop, &granted).await;
        let callers = [
            ("anonymous", Caller::Anonymous, Some("UNAUTHENTICATED")),
            ("a customer", Caller::Person(&customer), Some("FORBIDDEN")),
            (
                "a member without it",
                Caller::Person(&mallory),
                Some("FORBIDDEN"),
            ),
            ("a member with it", Caller::Person(&member), None),
            ("a token with it", Caller::Token(&secret), None),
        ];
        for (who, caller, refusal) in &callers {
            n += 1;
            let mut document = document.replace("{n}", &n.to_string());
            for (placeholder, _, _) in FRESH {
                if document.contains(placeholder) {
                    let object = fresh(placeholder, format!("DOOMED{n}")).await;
                    document = document.replace(placeholder, &object);
                }
            }
            if document.contains("{fresh_question}") {
                let fresh = fresh_question(format!("Doomed {n}?")).await;
                document = document.replace("{fresh_question}", &fresh);
            }
            if document.contains("{fresh_rule}") {
                let fresh = fresh_rule(format!("Doomed {n}")).await;
                document = document.replace("{fresh_rule}", &fresh);
            }
            if document.contains("{fresh_addon_category}") {
                let fresh = fresh_category(format!("Extras {n}")).await;
                document = document.replace("{fresh_addon_category}", &fresh);
            }
            let body = call(&app, caller, &document).await;
            let answer = code(&body);
            match refusal {
                Some(expected) => assert_eq!(answer, *expected, "{operation} as {who}: {body}"),
                None => assert!(
                    !["UNAUTHENTICATED", "FORBIDDEN", "INTERNAL"].contains(&answer),
                    "{operation} as {who}: {body}"
                ),
            }
        }
    }
}
