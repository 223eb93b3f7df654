//! Questions and answers (pretix `Question`, `QuestionAnswer`): questions are
//! asked for their products, answered on cart positions, checked by type and
//! copied to the order at checkout; a required question that applies must be
//! answered, a dependent one applies only after the right answer; hidden
//! questions and their answers are for the team.

use sea_orm::{ColumnTrait as _, EntityTrait as _, PaginatorTrait as _, QueryFilter as _};
use serde_json::{Value, json};

use voltgate::entities::{question_answer, ticketing_log};

use crate::helpers::{TestApp, spawn_app};
use crate::ticketing::{Shop, add_to_cart, checkout, code};

const CREATE: &str = "mutation($input: CreateQuestionInput!) { createQuestion(input: $input) { question { id identifier type productIds dependencyQuestionId dependencyValues options } } }";
const ANSWER: &str = "mutation($input: SetCartPositionAnswersInput!) { setCartPositionAnswers(input: $input) { position { id answers { question { question } answer values } } } }";
const QUESTIONS: &str = "query($o: String!) { event(organizerSlug: $o, slug: \"finals\") { questions { question type required hidden } } }";
const ORDER_ANSWERS: &str = "query($e: ID!, $c: String!, $s: String!) { order(eventId: $e, code: $c, secret: $s) { positions { id answers { question { identifier } answer values } } } }";

/// Creates a question from `fields` (with the shop's event) and returns it.
async fn question(shop: &Shop, fields: Value) -> Value {
    let mut input = fields;
    input["eventId"] = json!(shop.event);
    let body = shop.admin.gql(CREATE, json!({ "input": input })).await;
    body["data"]["createQuestion"]["question"].clone()
}

fn id(question: &Value) -> String {
    question["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a question: {question}"))
        .to_owned()
}

fn field(body: &Value) -> &str {
    body["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or("none")
}

fn message(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap_or("none")
}

/// A cart with one unit of `product`: its id and the position's id.
async fn cart_with(app: &TestApp, product: &str) -> (String, String) {
    let body = add_to_cart(app, product, 1, None).await;
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

async fn answer(app: &TestApp, cart: &str, position: &str, answers: Value) -> Value {
    app.graphql(
        ANSWER,
        json!({ "input": { "cartId": cart, "positionId": position, "answers": answers } }),
    )
    .await
}

/// The order a checkout placed, read by its code and secret with its answers.
async fn placed_order(app: &TestApp, shop: &Shop, placed: &Value) -> Value {
    let order = &placed["data"]["checkout"];
    assert!(order["order"]["code"].is_string(), "{placed}");
    app.graphql(
        ORDER_ANSWERS,
        json!({ "e": shop.event, "c": order["order"]["code"], "s": order["secret"] }),
    )
    .await
}

/// Answers still held by cart positions.
async fn cart_answers_left(app: &TestApp) -> u64 {
    question_answer::Entity::find()
        .filter(question_answer::Column::CartPositionId.is_not_null())
        .count(&app.db)
        .await
        .unwrap_or(99)
}

/// The questions and their answers of the event's team-set-up shop: a
/// required size for tickets, a yes/no, a required follow-up to "yes", and a
/// hidden note.
struct Asked {
    ticket: String,
    size: String,
    vegan: String,
    allergy: String,
    note: String,
}

async fn asked(shop: &Shop) -> Asked {
    let ticket = shop.product("Seat", "20.00", 50).await;
    let size = question(
        shop,
        json!({ "question": "T-shirt size", "type": "CHOICE", "required": true, "productIds": [ticket], "options": ["S", "M", "L"], "identifier": "size" }),
    )
    .await;
    let vegan = question(
        shop,
        json!({ "question": "Vegan?", "type": "BOOLEAN", "productIds": [ticket], "identifier": "vegan", "position": 1 }),
    )
    .await;
    let allergy = question(
        shop,
        json!({ "question": "Which allergies?", "type": "STRING", "required": true, "productIds": [ticket], "identifier": "allergy", "position": 2, "dependencyQuestionId": vegan["id"], "dependencyValues": ["True"] }),
    )
    .await;
    let note = question(
        shop,
        json!({ "question": "Internal note", "type": "TEXT", "productIds": [ticket], "identifier": "note", "hidden": true, "position": 3 }),
    )
    .await;
    Asked {
        ticket,
        size: id(&size),
        vegan: id(&vegan),
        allergy: id(&allergy),
        note: id(&note),
    }
}

#[tokio::test]
async fn answers_are_given_on_the_cart_required_ones_checked_and_copied_to_the_order() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "asks").await;
    let q = asked(&shop).await;

    // The public sees the questions that are not hidden, in order; the team all.
    let public = app.graphql(QUESTIONS, json!({ "o": "asks" })).await;
    let texts: Vec<&str> = public["data"]["event"]["questions"]
        .as_array()
        .unwrap_or_else(|| panic!("questions: {public}"))
        .iter()
        .filter_map(|q| q["question"].as_str())
        .collect();
    assert_eq!(
        texts,
        ["T-shirt size", "Vegan?", "Which allergies?"],
        "{public}"
    );
    let team = shop.admin.gql(QUESTIONS, json!({ "o": "asks" })).await;
    assert_eq!(
        team["data"]["event"]["questions"][3],
        json!({ "question": "Internal note", "type": "TEXT", "required": false, "hidden": true }),
        "{team}"
    );

    let (cart, position) = cart_with(&app, &q.ticket).await;
    let refused = checkout(&app, &cart).await;
    assert_eq!(code(&refused), "BAD_USER_INPUT", "{refused}");
    assert_eq!(field(&refused), "answers", "{refused}");
    assert!(message(&refused).contains("T-shirt size"), "{refused}");

    // "Yes" makes the follow-up apply, and it is required.
    let answered = answer(
        &app,
        &cart,
        &position,
        json!([{ "questionId": q.size, "value": "M" }, { "questionId": q.vegan, "value": "yes" }]),
    )
    .await;
    assert_eq!(
        answered["data"]["setCartPositionAnswers"]["position"]["answers"],
        json!([
            { "question": { "question": "T-shirt size" }, "answer": "M", "values": ["M"] },
            { "question": { "question": "Vegan?" }, "answer": "True", "values": ["True"] },
        ]),
        "{answered}"
    );
    let refused = checkout(&app, &cart).await;
    assert_eq!(field(&refused), "answers", "{refused}");
    assert!(message(&refused).contains("Which allergies?"), "{refused}");

    let answered = answer(
        &app,
        &cart,
        &position,
        json!([{ "questionId": q.allergy, "value": "nuts" }, { "questionId": q.size, "value": "L" }]),
    )
    .await;
    assert!(answered["errors"].is_null(), "{answered}");
    let placed = checkout(&app, &cart).await;
    let read = placed_order(&app, &shop, &placed).await;
    let position = &read["data"]["order"]["positions"][0];
    assert_eq!(
        position["answers"],
        json!([
            { "question": { "identifier": "size" }, "answer": "L", "values": ["L"] },
            { "question": { "identifier": "vegan" }, "answer": "True", "values": ["True"] },
            { "question": { "identifier": "allergy" }, "answer": "nuts", "values": ["nuts"] },
        ]),
        "{read}"
    );
    // The cart's answers left with its positions.
    assert_eq!(cart_answers_left(&app).await, 0);

    // The team answers the hidden question; the buyer does not see it.
    let order_position = position["id"].as_str().unwrap_or_default();
    let set = shop
        .admin
        .gql(
            "mutation($p: ID!, $n: ID!, $a: ID!) { setOrderPositionAnswers(input: { positionId: $p, answers: [{ questionId: $n, value: \"VIP\" }, { questionId: $a }] }) { position { answers { question { identifier } answer } } } }",
            json!({ "p": order_position, "n": q.note, "a": q.allergy }),
        )
        .await;
    assert_eq!(
        set["data"]["setOrderPositionAnswers"]["position"]["answers"],
        json!([
            { "question": { "identifier": "size" }, "answer": "L" },
            { "question": { "identifier": "vegan" }, "answer": "True" },
            { "question": { "identifier": "note" }, "answer": "VIP" },
        ]),
        "{set}"
    );
    let read = placed_order(&app, &shop, &placed).await;
    let identifiers: Vec<&str> = read["data"]["order"]["positions"][0]["answers"]
        .as_array()
        .unwrap_or_else(|| panic!("answers: {read}"))
        .iter()
        .filter_map(|a| a["question"]["identifier"].as_str())
        .collect();
    assert_eq!(identifiers, ["size", "vegan"], "{read}");
    let logged = ticketing_log::Entity::find()
        .filter(ticketing_log::Column::ActionType.eq("voltgate.order.answers.changed"))
        .count(&app.db)
        .await
        .unwrap_or_default();
    assert_eq!(logged, 1);

    // "No": the follow-up does not apply, so it is not required.
    let (cart, position) = cart_with(&app, &q.ticket).await;
    let answered = answer(
        &app,
        &cart,
        &position,
        json!([{ "questionId": q.size, "value": "S" }, { "questionId": q.vegan, "value": "false" }]),
    )
    .await;
    assert!(answered["errors"].is_null(), "{answered}");
    let placed = checkout(&app, &cart).await;
    assert!(placed["errors"].is_null(), "{placed}");
}

#[tokio::test]
async fn answers_that_do_not_fit_their_question_are_refused_naming_it() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "typed").await;
    let q = asked(&shop).await;
    let other = shop.product("Parking", "5.00", 10).await;
    let mut typed = Vec::new();
    for (kind, text) in [
        ("NUMBER", "Age"),
        ("DATE", "Birthday"),
        ("EMAIL", "Work email"),
        ("PHONE_NUMBER", "Phone"),
        ("COUNTRY_CODE", "Country"),
        ("CHOICE_MULTIPLE", "Workshops"),
    ] {
        let options = if kind == "CHOICE_MULTIPLE" {
            json!(["A", "B", "C"])
        } else {
            json!([])
        };
        let created = question(
            &shop,
            json!({ "question": text, "type": kind, "productIds": [q.ticket], "options": options }),
        )
        .await;
        assert!(
            created["identifier"].as_str().is_some_and(|i| i.len() == 8),
            "a generated identifier: {created}"
        );
        typed.push(id(&created));
    }
    let (cart, position) = cart_with(&app, &q.ticket).await;
    for (question, value, named) in [
        (&typed[0], json!({ "value": "twelve" }), "Age"),
        (&typed[1], json!({ "value": "2027-02-30" }), "Birthday"),
        (&typed[2], json!({ "value": "nobody" }), "Work email"),
        (&typed[3], json!({ "value": "030 1234" }), "Phone"),
        (&typed[4], json!({ "value": "Germany" }), "Country"),
        (&typed[5], json!({ "values": ["A", "Z"] }), "Workshops"),
        (&q.size, json!({ "value": "XL" }), "T-shirt size"),
        (&q.note, json!({ "value": "hi" }), "Internal note"),
    ] {
        let mut one = value;
        one["questionId"] = json!(question);
        let body = answer(&app, &cart, &position, json!([one])).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{named}: {body}");
        assert_eq!(field(&body), "answers", "{body}");
        assert!(message(&body).starts_with(named), "{named}: {body}");
    }
    let fine = answer(
        &app,
        &cart,
        &position,
        json!([
            { "questionId": typed[0], "value": "42.5" },
            { "questionId": typed[3], "value": "+33 1 23 45 67 89" },
            { "questionId": typed[4], "value": "fr" },
            { "questionId": typed[5], "values": ["C", "A"] },
        ]),
    )
    .await;
    let answers = &fine["data"]["setCartPositionAnswers"]["position"]["answers"];
    let values: Vec<&Value> = answers
        .as_array()
        .unwrap_or_else(|| panic!("answers: {fine}"))
        .iter()
        .map(|a| &a["values"])
        .collect();
    assert_eq!(
        values,
        [
            &json!(["42.5"]),
            &json!(["+33123456789"]),
            &json!(["FR"]),
            &json!(["A", "C"])
        ],
        "{fine}"
    );

    // A question of another product, a position of another cart.
    let (other_cart, other_position) = cart_with(&app, &other).await;
    let body = answer(
        &app,
        &other_cart,
        &other_position,
        json!([{ "questionId": q.size, "value": "M" }]),
    )
    .await;
    assert_eq!(field(&body), "answers", "{body}");
    let body = answer(
        &app,
        &other_cart,
        &position,
        json!([{ "questionId": q.size, "value": "M" }]),
    )
    .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
}

#[tokio::test]
async fn questions_are_checked_when_created_and_changed() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "quiz").await;
    let q = asked(&shop).await;
    let create = |fields: Value| {
        let mut input = fields;
        input["eventId"] = json!(shop.event);
        let admin = &shop.admin;
        async move { admin.gql(CREATE, json!({ "input": input })).await }
    };
    for (fields, expected) in [
        (json!({ "question": "Size", "type": "CHOICE" }), "options"),
        (
            json!({ "question": "Name", "type": "STRING", "options": ["a"] }),
            "options",
        ),
        (json!({ "question": " ", "type": "STRING" }), "question"),
        (
            json!({ "question": "Q", "type": "STRING", "identifier": "no spaces" }),
            "identifier",
        ),
        (
            json!({ "question": "Q", "type": "STRING", "dependencyQuestionId": q.allergy, "dependencyValues": ["x"] }),
            "dependencyValues",
        ),
        (
            json!({ "question": "Q", "type": "STRING", "dependencyQuestionId": q.size, "dependencyValues": ["XL"] }),
            "dependencyValues",
        ),
        (
            json!({ "question": "Q", "type": "STRING", "dependencyQuestionId": q.size }),
            "dependencyValues",
        ),
    ] {
        let body = create(fields.clone()).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{fields}: {body}");
        assert_eq!(field(&body), expected, "{fields}: {body}");
    }
    let body = create(json!({ "question": "Again", "type": "STRING", "identifier": "size" })).await;
    assert_eq!(code(&body), "CONFLICT", "{body}");

    // The vegan question depends on nothing; making it depend on its own
    // follow-up would be a circle.
    let update = "mutation($input: UpdateQuestionInput!) { updateQuestion(input: $input) { question { dependencyQuestionId dependencyValues productIds } } }";
    let body = shop
        .admin
        .gql(
            update,
            json!({ "input": { "questionId": q.vegan, "dependencyQuestionId": q.size, "dependencyValues": ["L"] } }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let body = shop
        .admin
        .gql(
            update,
            json!({ "input": { "questionId": q.size, "dependencyQuestionId": q.vegan, "dependencyValues": ["True"] } }),
        )
        .await;
    assert_eq!(field(&body), "dependencyQuestionId", "{body}");
    let body = shop
        .admin
        .gql(
            update,
            json!({ "input": { "questionId": q.vegan, "dependencyQuestionId": null, "productIds": [] } }),
        )
        .await;
    assert_eq!(
        body["data"]["updateQuestion"]["question"],
        json!({ "dependencyQuestionId": null, "dependencyValues": [], "productIds": [] }),
        "{body}"
    );

    // Deleting a question frees the ones depending on it.
    let body = shop
        .admin
        .gql(
            "mutation($q: ID!) { deleteQuestion(input: { questionId: $q }) { deletedQuestionId } }",
            json!({ "q": q.vegan }),
        )
        .await;
    assert_eq!(
        body["data"]["deleteQuestion"]["deletedQuestionId"],
        json!(q.vegan)
    );
    let body = shop
        .admin
        .gql(
            "query { event(organizerSlug: \"quiz\", slug: \"finals\") { questions { identifier dependencyQuestionId } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["event"]["questions"],
        json!([
            { "identifier": "size", "dependencyQuestionId": null },
            { "identifier": "allergy", "dependencyQuestionId": null },
            { "identifier": "note", "dependencyQuestionId": null },
        ]),
        "{body}"
    );
    for action in [
        "voltgate.question.added",
        "voltgate.question.changed",
        "voltgate.question.deleted",
    ] {
        let logged = ticketing_log::Entity::find()
            .filter(ticketing_log::Column::ActionType.eq(action))
            .count(&app.db)
            .await
            .unwrap_or_default();
        assert!(logged >= 1, "{action}");
    }
}

#[tokio::test]
async fn answers_set_at_once_to_one_question_leave_exactly_one_answer() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "racing").await;
    let q = asked(&shop).await;
    let (cart, position) = cart_with(&app, &q.ticket).await;
    let sizes = ["S", "M", "L"];
    let calls = (0..12).map(|n| {
        let (app, cart, position, size) = (&app, &cart, &position, &q.size);
        async move {
            answer(
                app,
                cart,
                position,
                json!([{ "questionId": size, "value": sizes[n % 3] }]),
            )
            .await
        }
    });
    for body in futures_util::future::join_all(calls).await {
        assert!(body["errors"].is_null(), "{body}");
    }
    let stored = question_answer::Entity::find()
        .filter(question_answer::Column::CartPositionId.is_not_null())
        .all(&app.db)
        .await
        .unwrap_or_default();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(sizes.contains(&stored[0].answer.as_str()));
}

#[tokio::test]
async fn an_answer_given_while_its_cart_is_checked_out_reaches_the_order_or_is_refused() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "answering-late").await;
    let ticket = shop.product("Seat", "20.00", 100).await;
    let remark = id(&question(
        &shop,
        json!({ "question": "Anything else?", "type": "STRING", "productIds": [ticket], "identifier": "remark" }),
    )
    .await);
    let mut carts = Vec::new();
    for _ in 0..20 {
        let (cart, position) = cart_with(&app, &ticket).await;
        let first = answer(
            &app,
            &cart,
            &position,
            json!([{ "questionId": remark, "value": "early" }]),
        )
        .await;
        assert!(first["errors"].is_null(), "{first}");
        carts.push((cart, position));
    }
    // Each cart's answer is changed while the cart is checked out: the change
    // either is stored before the checkout reads the cart, or finds the
    // position gone (a new answer's row would wait on the position's lock for
    // its foreign key; a changed one has no such check).
    let races = carts.iter().map(|(cart, position)| {
        let (app, remark) = (&app, &remark);
        async move {
            tokio::join!(
                answer(
                    app,
                    cart,
                    position,
                    json!([{ "questionId": remark, "value": "late" }]),
                ),
                checkout(app, cart),
            )
        }
    });
    for (answered, placed) in futures_util::future::join_all(races).await {
        let read = placed_order(&app, &shop, &placed).await;
        let answers = &read["data"]["order"]["positions"][0]["answers"];
        if answered["errors"].is_null() {
            assert_eq!(
                answers,
                &json!([{ "question": { "identifier": "remark" }, "answer": "late", "values": ["late"] }]),
                "an acknowledged answer was lost: {read}"
            );
        } else {
            assert_eq!(code(&answered), "NOT_FOUND", "{answered}");
            assert_eq!(
                answers,
                &json!([{ "question": { "identifier": "remark" }, "answer": "early", "values": ["early"] }]),
                "{read}"
            );
        }
    }
    // Nothing is left behind on positions that are gone.
    assert_eq!(cart_answers_left(&app).await, 0);
}
