//! Questions at the door and buyers changing their answers: an entry asks the
//! ticket's unanswered `askDuringCheckin` questions (with the list's own
//! free-text ones), checks the answers as checkout does and stores them on
//! the position only when the entry is admitted; buyers change their answers
//! after checkout until the event's last date of modifications.

use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
use serde_json::{Value, json};

use voltgate::entities::ticketing_log;

use crate::checkin::{Venue, outcome};
use crate::client::TestUser;
use crate::helpers::{TestApp, spawn_app};
use crate::ticketing::{code, person, reason};

const REDEEM: &str = "mutation($input: RedeemTicketInput!) { redeemTicket(input: $input) {
    __typename
    ... on CheckinAccepted { checkin { id forced } }
    ... on CheckinNeedsAnswers { questions askedQuestions { id question type options required } }
    ... on CheckinRejected { reason }
} }";
const CREATE_QUESTION: &str =
    "mutation($input: CreateQuestionInput!) { createQuestion(input: $input) { question { id } } }";
const BUY: &str = "mutation($input: CheckoutInput!) { checkout(input: $input) { secret order { id code positions { id secret } } } }";
const ORDER_ANSWERS: &str = "query($e: ID!, $c: String!, $s: String!) { order(eventId: $e, code: $c, secret: $s) { canModifyAnswers positions { answers { question { question } answer } } } }";
const SET_ANSWERS: &str = "mutation($input: SetOrderPositionAnswersInput!) { setOrderPositionAnswers(input: $input) { position { id answers { question { question } answer } } } }";
const HISTORY: &str =
    "query($e: ID!) { checkinLists(eventId: $e) { checkins(first: 100) { totalCount } } }";

/// A bought ticket: its order (id, code, secret), its position and its secret.
struct Bought {
    order: String,
    code: String,
    secret: String,
    position: String,
    ticket: String,
}

/// Buys one unit of `product` as `buyer` (anonymously when `None`), after
/// answering `answers` on the cart; marks it paid when `paid`.
async fn buy(
    app: &TestApp,
    venue: &Venue,
    buyer: Option<&TestUser>,
    product: &str,
    answers: Value,
    paid: bool,
) -> Bought {
    let added = crate::ticketing::add_to_cart(app, product, 1, None).await;
    let cart = added["data"]["addToCart"]["cart"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a cart: {added}"))
        .to_owned();
    let cart_position = added["data"]["addToCart"]["cart"]["positions"][0]["id"].clone();
    if answers.as_array().is_some_and(|a| !a.is_empty()) {
        let set = app
            .graphql(
                "mutation($input: SetCartPositionAnswersInput!) { setCartPositionAnswers(input: $input) { position { id } } }",
                json!({ "input": { "cartId": cart, "positionId": cart_position, "answers": answers } }),
            )
            .await;
        assert!(set["errors"].is_null(), "{set}");
    }
    let input = json!({ "input": { "cartId": cart, "email": "buyer@example.com" } });
    let placed = match buyer {
        Some(buyer) => buyer.gql(BUY, input).await,
        None => app.graphql(BUY, input).await,
    };
    let order = &placed["data"]["checkout"]["order"];
    let bought = Bought {
        order: order["id"]
            .as_str()
            .unwrap_or_else(|| panic!("an order: {placed}"))
            .to_owned(),
        code: order["code"].as_str().unwrap_or_default().to_owned(),
        secret: placed["data"]["checkout"]["secret"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        position: order["positions"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        ticket: order["positions"][0]["secret"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    };
    if paid {
        let body = venue
            .shop
            .admin
            .gql(
                "mutation($id: ID!) { markOrderPaid(input: { orderId: $id }) { order { status } } }",
                json!({ "id": bought.order }),
            )
            .await;
        assert_eq!(
            body["data"]["markOrderPaid"]["order"]["status"], "PAID",
            "{body}"
        );
    }
    bought
}

pub(crate) async fn question(venue: &Venue, fields: Value) -> String {
    let mut input = fields;
    input["eventId"] = json!(venue.shop.event);
    let body = venue
        .shop
        .admin
        .gql(CREATE_QUESTION, json!({ "input": input }))
        .await;
    body["data"]["createQuestion"]["question"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a question: {body}"))
        .to_owned()
}

/// The door's questions for the venue's first product: a required colour
/// (choice), an optional phone number, a yes/no and a required follow-up to
/// "yes"; and a question buyers answer at checkout.
struct Door {
    colour: String,
    phone: String,
    assist: String,
    which: String,
    diet: String,
}

async fn door_questions(venue: &Venue) -> Door {
    let seat = &venue.products[0];
    let colour = question(
        venue,
        json!({ "question": "Wristband colour", "type": "CHOICE", "options": ["Red", "Blue"], "required": true, "askDuringCheckin": true, "productIds": [seat], "position": 1 }),
    )
    .await;
    let phone = question(
        venue,
        json!({ "question": "Emergency phone", "type": "PHONE_NUMBER", "askDuringCheckin": true, "productIds": [seat], "position": 2 }),
    )
    .await;
    let assist = question(
        venue,
        json!({ "question": "Needs assistance?", "type": "BOOLEAN", "askDuringCheckin": true, "productIds": [seat], "position": 3 }),
    )
    .await;
    let which = question(
        venue,
        json!({ "question": "Which assistance?", "type": "STRING", "required": true, "askDuringCheckin": true, "productIds": [seat], "position": 4, "dependencyQuestionId": assist, "dependencyValues": ["True"] }),
    )
    .await;
    let diet = question(
        venue,
        json!({ "question": "Diet", "type": "STRING", "productIds": [seat] }),
    )
    .await;
    Door {
        colour,
        phone,
        assist,
        which,
        diet,
    }
}

async fn scan(user: &TestUser, input: Value) -> Value {
    user.gql(REDEEM, json!({ "input": input })).await
}

/// The position's stored answers as (question, answer), in the order read.
async fn answers_of(app: &TestApp, venue: &Venue, bought: &Bought) -> Vec<(String, String)> {
    let body = app
        .graphql(
            ORDER_ANSWERS,
            json!({ "e": venue.shop.event, "c": bought.code, "s": bought.secret }),
        )
        .await;
    let mut answers: Vec<(String, String)> = body["data"]["order"]["positions"][0]["answers"]
        .as_array()
        .unwrap_or_else(|| panic!("answers: {body}"))
        .iter()
        .map(|a| {
            (
                a["question"]["question"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                a["answer"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    answers.sort();
    answers
}

fn asked_texts(body: &Value) -> Vec<String> {
    body["data"]["redeemTicket"]["askedQuestions"]
        .as_array()
        .unwrap_or_else(|| panic!("asked questions: {body}"))
        .iter()
        .map(|q| q["question"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn pair(question: &str, answer: &str) -> (String, String) {
    (question.to_owned(), answer.to_owned())
}

async fn recorded(venue: &Venue) -> i64 {
    let body = venue
        .shop
        .admin
        .gql(HISTORY, json!({ "e": venue.shop.event }))
        .await;
    body["data"]["checkinLists"][0]["checkins"]["totalCount"]
        .as_i64()
        .unwrap_or_else(|| panic!("a history: {body}"))
}

#[tokio::test]
async fn the_door_asks_unanswered_questions_then_admits_and_stores_the_answers() {
    let app = spawn_app().await;
    let venue = Venue::open(&app, "door-asks", &["Seat"]).await;
    let q = door_questions(&venue).await;
    let list = venue.list(json!({})).await;
    let (_, door) = venue.scanner(&app, "Main").await;
    let bought = buy(&app, &venue, None, &venue.products[0], json!([]), true).await;

    let asked = scan(&door, json!({ "secret": bought.ticket, "listIds": [list] })).await;
    assert_eq!(outcome(&asked).0, "CheckinNeedsAnswers", "{asked}");
    // The follow-up applies only after "yes"; the checkout question is not the door's.
    assert_eq!(
        asked["data"]["redeemTicket"]["askedQuestions"],
        json!([
            { "id": q.colour, "question": "Wristband colour", "type": "CHOICE", "options": ["Red", "Blue"], "required": true },
            { "id": q.phone, "question": "Emergency phone", "type": "PHONE_NUMBER", "options": [], "required": false },
            { "id": q.assist, "question": "Needs assistance?", "type": "BOOLEAN", "options": [], "required": false },
        ]),
        "{asked}"
    );
    assert_eq!(
        asked["data"]["redeemTicket"]["questions"],
        json!(["Wristband colour", "Emergency phone", "Needs assistance?"])
    );

    // "Yes" brings the required follow-up in: asked again, with it.
    let follow_up = scan(
        &door,
        json!({ "secret": bought.ticket, "listIds": [list], "answers": [
            { "questionId": q.colour, "answer": "Red" },
            { "questionId": q.phone, "answer": "" },
            { "questionId": q.assist, "answer": "yes" },
        ] }),
    )
    .await;
    assert_eq!(outcome(&follow_up).0, "CheckinNeedsAnswers", "{follow_up}");
    assert_eq!(
        asked_texts(&follow_up),
        [
            "Wristband colour",
            "Emergency phone",
            "Needs assistance?",
            "Which assistance?"
        ]
    );
    assert_eq!(recorded(&venue).await, 0, "asking records nothing");
    assert!(answers_of(&app, &venue, &bought).await.is_empty());

    let admitted = scan(
        &door,
        json!({ "secret": bought.ticket, "listIds": [list], "answers": [
            { "questionId": q.colour, "answer": "Red" },
            { "questionId": q.phone, "answer": "" },
            { "questionId": q.assist, "answer": "yes" },
            { "questionId": q.which, "answer": "Wheelchair" },
        ] }),
    )
    .await;
    assert_eq!(outcome(&admitted).0, "CheckinAccepted", "{admitted}");
    // The skipped optional question stores nothing.
    assert_eq!(
        answers_of(&app, &venue, &bought).await,
        [
            pair("Needs assistance?", "True"),
            pair("Which assistance?", "Wheelchair"),
            pair("Wristband colour", "Red"),
        ]
    );

    // Offline scanners get the questions and what each ticket answered.
    let download = door
        .gql(
            "query($l: ID!) { checkinDownload(listId: $l) { document } }",
            json!({ "l": list }),
        )
        .await;
    let document: Value = serde_json::from_str(
        download["data"]["checkinDownload"]["document"]
            .as_str()
            .unwrap_or_else(|| panic!("a download: {download}")),
    )
    .unwrap_or_else(|e| panic!("JSON: {e}"));
    let offline: Vec<&str> = document["rules"]["door_questions"]
        .as_array()
        .unwrap_or_else(|| panic!("door questions: {document}"))
        .iter()
        .filter_map(|q| q["question"].as_str())
        .collect();
    assert_eq!(
        offline,
        [
            "Wristband colour",
            "Emergency phone",
            "Needs assistance?",
            "Which assistance?"
        ]
    );
    assert_eq!(
        document["tickets"][0]["answers"][&q.colour], "Red",
        "{document}"
    );
    assert!(document["tickets"][0]["answers"].get(&q.diet).is_none());
}

#[tokio::test]
async fn questions_answered_already_are_not_asked_again() {
    let app = spawn_app().await;
    let venue = Venue::open(&app, "door-again", &["Seat"]).await;
    let q = door_questions(&venue).await;
    let list = venue.list(json!({})).await;
    let (_, door) = venue.scanner(&app, "Main").await;
    let bought = buy(&app, &venue, None, &venue.products[0], json!([]), true).await;

    // The team answered the colour beforehand.
    let set = venue
        .shop
        .admin
        .gql(
            SET_ANSWERS,
            json!({ "input": { "positionId": bought.position, "answers": [{ "questionId": q.colour, "value": "Blue" }] } }),
        )
        .await;
    assert!(set["errors"].is_null(), "{set}");
    let asked = scan(&door, json!({ "secret": bought.ticket, "listIds": [list] })).await;
    assert_eq!(
        asked_texts(&asked),
        ["Emergency phone", "Needs assistance?"],
        "{asked}"
    );
    let admitted = scan(
        &door,
        json!({ "secret": bought.ticket, "listIds": [list], "answers": [
            { "questionId": q.phone, "answer": "+49 30 1234567" },
            { "questionId": q.assist, "answer": "no" },
        ] }),
    )
    .await;
    assert_eq!(outcome(&admitted).0, "CheckinAccepted", "{admitted}");

    // Out and in again: everything is answered, nothing is asked.
    let out = scan(
        &door,
        json!({ "secret": bought.ticket, "listIds": [list], "type": "EXIT" }),
    )
    .await;
    assert_eq!(outcome(&out).0, "CheckinAccepted", "{out}");
    let again = scan(&door, json!({ "secret": bought.ticket, "listIds": [list] })).await;
    assert_eq!(outcome(&again).0, "CheckinAccepted", "{again}");
    assert_eq!(
        answers_of(&app, &venue, &bought).await,
        [
            pair("Emergency phone", "+49301234567"),
            pair("Needs assistance?", "False"),
            pair("Wristband colour", "Blue"),
        ]
    );
}

#[tokio::test]
async fn an_answer_that_does_not_fit_is_refused_and_nothing_is_recorded() {
    let app = spawn_app().await;
    let venue = Venue::open(&app, "door-invalid", &["Seat"]).await;
    let q = door_questions(&venue).await;
    let list = venue.list(json!({})).await;
    let (_, door) = venue.scanner(&app, "Main").await;
    let bought = buy(&app, &venue, None, &venue.products[0], json!([]), true).await;

    let not_an_option = scan(
        &door,
        json!({ "secret": bought.ticket, "listIds": [list], "answers": [
            { "questionId": q.colour, "answer": "Green" },
            { "questionId": q.phone, "answer": "" },
            { "questionId": q.assist, "answer": "no" },
        ] }),
    )
    .await;
    assert_eq!(code(&not_an_option), "BAD_USER_INPUT", "{not_an_option}");
    assert_eq!(not_an_option["errors"][0]["extensions"]["field"], "answers");
    assert!(
        not_an_option["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Wristband colour:")),
        "{not_an_option}"
    );
    let bad_phone = scan(
        &door,
        json!({ "secret": bought.ticket, "listIds": [list], "answers": [
            { "questionId": q.colour, "answer": "Red" },
            { "questionId": q.phone, "answer": "030 1234" },
            { "questionId": q.assist, "answer": "no" },
        ] }),
    )
    .await;
    assert_eq!(code(&bad_phone), "BAD_USER_INPUT", "{bad_phone}");
    // A question buyers answer at checkout is not the door's to answer.
    let not_the_doors = scan(
        &door,
        json!({ "secret": bought.ticket, "listIds": [list], "answers": [
            { "questionId": q.diet, "answer": "Vegan" },
        ] }),
    )
    .await;
    assert_eq!(code(&not_the_doors), "BAD_USER_INPUT", "{not_the_doors}");
    let both = scan(
        &door,
        json!({ "secret": bought.ticket, "listIds": [list], "answers": [
            { "questionId": q.colour, "question": "Wristband colour", "answer": "Red" },
        ] }),
    )
    .await;
    assert_eq!(code(&both), "BAD_USER_INPUT", "{both}");
    assert_eq!(recorded(&venue).await, 0);
    assert!(answers_of(&app, &venue, &bought).await.is_empty());
}

#[tokio::test]
async fn a_forced_scan_admits_without_answers() {
    let app = spawn_app().await;
    let venue = Venue::open(&app, "door-forced", &["Seat"]).await;
    let q = door_questions(&venue).await;
    let list = venue.list(json!({})).await;
    let (_, door) = venue.scanner(&app, "Main").await;
    let bought = buy(&app, &venue, None, &venue.products[0], json!([]), true).await;
    let forced = scan(
        &door,
        json!({ "secret": bought.ticket, "listIds": [list], "force": true }),
    )
    .await;
    assert_eq!(outcome(&forced).0, "CheckinAccepted", "{forced}");
    assert_eq!(forced["data"]["redeemTicket"]["checkin"]["forced"], true);
    assert!(answers_of(&app, &venue, &bought).await.is_empty());

    // An offline upload's answers are kept when they fit, and dropped (the
    // entry kept) when they do not or cannot be read.
    let other = buy(&app, &venue, None, &venue.products[0], json!([]), true).await;
    let third = buy(&app, &venue, None, &venue.products[0], json!([]), true).await;
    let fourth = buy(&app, &venue, None, &venue.products[0], json!([]), true).await;
    let uploaded = door
        .gql(
            "mutation($input: UploadCheckinsInput!) { uploadCheckins(input: $input) { results { nonce result { __typename } } } }",
            json!({ "input": { "listIds": [list], "scans": [
                { "secret": other.ticket, "scannedAt": chrono::Utc::now().to_rfc3339(), "nonce": "n-1",
                  "answers": [{ "questionId": q.colour, "answer": "Blue" }] },
                { "secret": third.ticket, "scannedAt": chrono::Utc::now().to_rfc3339(), "nonce": "n-2",
                  "answers": [{ "questionId": q.colour, "answer": "Green" }] },
                { "secret": fourth.ticket, "scannedAt": chrono::Utc::now().to_rfc3339(), "nonce": "n-3",
                  "answers": [{ "questionId": "not-an-id", "answer": "Blue" }] },
            ] } }),
        )
        .await;
    let results = &uploaded["data"]["uploadCheckins"]["results"];
    assert_eq!(
        results[0]["result"]["__typename"], "CheckinAccepted",
        "{uploaded}"
    );
    assert_eq!(
        results[1]["result"]["__typename"], "CheckinAccepted",
        "{uploaded}"
    );
    assert_eq!(
        results[2]["result"]["__typename"], "CheckinAccepted",
        "{uploaded}"
    );
    assert_eq!(
        answers_of(&app, &venue, &other).await,
        [pair("Wristband colour", "Blue")]
    );
    assert!(answers_of(&app, &venue, &third).await.is_empty());
    assert!(answers_of(&app, &venue, &fourth).await.is_empty());
}

#[tokio::test]
async fn a_rejected_scan_stores_no_answers() {
    let app = spawn_app().await;
    let venue = Venue::open(&app, "door-rejected", &["Seat"]).await;
    let q = door_questions(&venue).await;
    let list = venue.list(json!({ "allowEntryAfterExit": false })).await;
    let (_, door) = venue.scanner(&app, "Main").await;
    let answers = json!([
        { "questionId": q.colour, "answer": "Red" },
        { "questionId": q.phone, "answer": "" },
        { "questionId": q.assist, "answer": "no" },
    ]);

    // Judged before anything is asked: unpaid.
    let unpaid = buy(&app, &venue, None, &venue.products[0], json!([]), false).await;
    let body = scan(
        &door,
        json!({ "secret": unpaid.ticket, "listIds": [list], "answers": answers }),
    )
    .await;
    assert_eq!(
        outcome(&body),
        ("CheckinRejected".into(), "UNPAID".into()),
        "{body}"
    );
    assert!(answers_of(&app, &venue, &unpaid).await.is_empty());

    // Refused inside the admitting transaction: entered once already.
    let paid = buy(&app, &venue, None, &venue.products[0], json!([]), true).await;
    let forced = scan(
        &door,
        json!({ "secret": paid.ticket, "listIds": [list], "force": true }),
    )
    .await;
    assert_eq!(outcome(&forced).0, "CheckinAccepted", "{forced}");
    let second = scan(
        &door,
        json!({ "secret": paid.ticket, "listIds": [list], "answers": answers }),
    )
    .await;
    assert_eq!(
        outcome(&second),
        ("CheckinRejected".into(), "ALREADY_REDEEMED".into()),
        "{second}"
    );
    assert!(answers_of(&app, &venue, &paid).await.is_empty());
}

#[tokio::test]
async fn of_two_scans_at_once_only_the_admitted_one_stores_its_answers() {
    let app = spawn_app().await;
    let venue = Venue::open(&app, "door-race", &["Seat"]).await;
    let q = door_questions(&venue).await;
    let list = venue.list(json!({ "allowEntryAfterExit": false })).await;
    let (_, north) = venue.scanner(&app, "North").await;
    let (_, south) = venue.scanner(&app, "South").await;
    let bought = buy(&app, &venue, None, &venue.products[0], json!([]), true).await;
    let input = |colour: &str| {
        json!({ "secret": bought.ticket, "listIds": [list], "answers": [
            { "questionId": q.colour, "answer": colour },
            { "questionId": q.phone, "answer": "" },
            { "questionId": q.assist, "answer": "no" },
        ] })
    };
    let (red, blue) = tokio::join!(scan(&north, input("Red")), scan(&south, input("Blue")));
    let outcomes = [outcome(&red).0, outcome(&blue).0];
    let admitted: Vec<&str> = [("Red", &outcomes[0]), ("Blue", &outcomes[1])]
        .into_iter()
        .filter(|(_, o)| o.as_str() == "CheckinAccepted")
        .map(|(colour, _)| colour)
        .collect();
    assert_eq!(admitted.len(), 1, "{red} {blue}");
    assert!(
        outcomes.contains(&"CheckinRejected".to_owned()),
        "{red} {blue}"
    );
    assert_eq!(
        answers_of(&app, &venue, &bought).await,
        [
            pair("Needs assistance?", "False"),
            pair("Wristband colour", admitted[0]),
        ]
    );
}

#[tokio::test]
async fn exit_scans_never_ask() {
    let app = spawn_app().await;
    let venue = Venue::open(&app, "door-exit", &["Seat"]).await;
    door_questions(&venue).await;
    let list = venue.list(json!({})).await;
    let (_, door) = venue.scanner(&app, "Main").await;
    let bought = buy(&app, &venue, None, &venue.products[0], json!([]), true).await;
    let out = scan(
        &door,
        json!({ "secret": bought.ticket, "listIds": [list], "type": "EXIT" }),
    )
    .await;
    assert_eq!(outcome(&out).0, "CheckinAccepted", "{out}");
    let entry = scan(&door, json!({ "secret": bought.ticket, "listIds": [list] })).await;
    assert_eq!(outcome(&entry).0, "CheckinNeedsAnswers", "{entry}");
}

#[tokio::test]
async fn the_lists_own_questions_are_asked_with_the_events() {
    let app = spawn_app().await;
    let venue = Venue::open(&app, "door-both", &["Seat"]).await;
    let seat = venue.products[0].clone();
    question(
        &venue,
        json!({ "question": "Wristband colour", "type": "CHOICE", "options": ["Red", "Blue"], "required": true, "askDuringCheckin": true, "productIds": [seat] }),
    )
    .await;
    let list = venue.list(json!({ "questions": ["ID checked?"] })).await;
    let (_, door) = venue.scanner(&app, "Main").await;
    let bought = buy(&app, &venue, None, &seat, json!([]), true).await;
    let asked = scan(&door, json!({ "secret": bought.ticket, "listIds": [list] })).await;
    assert_eq!(
        asked["data"]["redeemTicket"]["questions"],
        json!(["ID checked?", "Wristband colour"]),
        "{asked}"
    );
    assert_eq!(asked_texts(&asked), ["Wristband colour"]);
    // Answered by the texts, as a scanner that shows only `questions` does.
    let admitted = scan(
        &door,
        json!({ "secret": bought.ticket, "listIds": [list], "answers": [
            { "question": "ID checked?", "answer": "yes" },
            { "question": "Wristband colour", "answer": "Blue" },
        ] }),
    )
    .await;
    assert_eq!(outcome(&admitted).0, "CheckinAccepted", "{admitted}");
    assert_eq!(
        answers_of(&app, &venue, &bought).await,
        [pair("Wristband colour", "Blue")]
    );
}

/// An event whose tickets ask a required size at checkout, and a door question.
async fn sized(app: &TestApp, slug: &str) -> (Venue, String, String) {
    let venue = Venue::open(app, slug, &["Seat"]).await;
    let seat = venue.products[0].clone();
    let size = question(
        &venue,
        json!({ "question": "T-shirt size", "type": "CHOICE", "options": ["S", "M", "L"], "required": true, "productIds": [seat] }),
    )
    .await;
    let colour = question(
        &venue,
        json!({ "question": "Wristband colour", "type": "CHOICE", "options": ["Red", "Blue"], "askDuringCheckin": true, "productIds": [seat] }),
    )
    .await;
    (venue, size, colour)
}

async fn change_as_buyer(
    app: &TestApp,
    venue: &Venue,
    bought: &Bought,
    secret: &str,
    answers: Value,
) -> Value {
    app.graphql(
        SET_ANSWERS,
        json!({ "input": {
            "positionId": bought.position,
            "answers": answers,
            "order": { "eventId": venue.shop.event, "code": bought.code, "secret": secret },
        } }),
    )
    .await
}

async fn update_event(venue: &Venue, fields: Value) {
    let mut input = fields;
    input["eventId"] = json!(venue.shop.event);
    let body = venue
        .shop
        .admin
        .gql(
            "mutation($input: UpdateEventInput!) { updateEvent(input: $input) { event { id lastOrderModificationDate } } }",
            json!({ "input": input }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
}

async fn can_modify(app: &TestApp, venue: &Venue, bought: &Bought) -> Value {
    let body = app
        .graphql(
            ORDER_ANSWERS,
            json!({ "e": venue.shop.event, "c": bought.code, "s": bought.secret }),
        )
        .await;
    body["data"]["order"]["canModifyAnswers"].clone()
}

#[tokio::test]
async fn a_buyer_changes_answers_with_the_order_secret_until_the_cut_off() {
    let app = spawn_app().await;
    let (venue, size, colour) = sized(&app, "buyer-changes").await;
    let bought = buy(
        &app,
        &venue,
        None,
        &venue.products[0],
        json!([{ "questionId": size, "value": "S" }]),
        false,
    )
    .await;
    assert_eq!(can_modify(&app, &venue, &bought).await, true);

    let changed = change_as_buyer(
        &app,
        &venue,
        &bought,
        &bought.secret,
        json!([{ "questionId": size, "value": "L" }]),
    )
    .await;
    assert!(changed["errors"].is_null(), "{changed}");
    assert_eq!(
        answers_of(&app, &venue, &bought).await,
        [pair("T-shirt size", "L")]
    );
    let logged = ticketing_log::Entity::find()
        .filter(ticketing_log::Column::ActionType.eq("voltgate.order.answers.changed"))
        .all(&app.db)
        .await
        .unwrap_or_default();
    assert_eq!(logged.len(), 1);
    assert!(
        logged[0].data.contains("\"by\":\"buyer\""),
        "{}",
        logged[0].data
    );

    // As at checkout: a required answer stays, the door's questions are the door's.
    let emptied = change_as_buyer(
        &app,
        &venue,
        &bought,
        &bought.secret,
        json!([{ "questionId": size }]),
    )
    .await;
    assert_eq!(code(&emptied), "BAD_USER_INPUT", "{emptied}");
    let not_an_option = change_as_buyer(
        &app,
        &venue,
        &bought,
        &bought.secret,
        json!([{ "questionId": size, "value": "XL" }]),
    )
    .await;
    assert_eq!(code(&not_an_option), "BAD_USER_INPUT", "{not_an_option}");
    let door = change_as_buyer(
        &app,
        &venue,
        &bought,
        &bought.secret,
        json!([{ "questionId": colour, "value": "Red" }]),
    )
    .await;
    assert_eq!(code(&door), "BAD_USER_INPUT", "{door}");

    // The event started: by default, that is the cut-off.
    update_event(&venue, json!({ "dateFrom": "2026-01-01T10:00:00Z" })).await;
    let late = change_as_buyer(
        &app,
        &venue,
        &bought,
        &bought.secret,
        json!([{ "questionId": size, "value": "M" }]),
    )
    .await;
    assert_eq!(
        (code(&late), reason(&late)),
        ("CONFLICT", "EXPIRED"),
        "{late}"
    );
    assert_eq!(can_modify(&app, &venue, &bought).await, false);

    // The event's last date of modifications overrides it, both ways.
    let later = (chrono::Utc::now() + chrono::TimeDelta::days(1)).to_rfc3339();
    update_event(&venue, json!({ "lastOrderModificationDate": later })).await;
    let allowed = change_as_buyer(
        &app,
        &venue,
        &bought,
        &bought.secret,
        json!([{ "questionId": size, "value": "M" }]),
    )
    .await;
    assert!(allowed["errors"].is_null(), "{allowed}");
    let earlier = (chrono::Utc::now() - chrono::TimeDelta::minutes(1)).to_rfc3339();
    update_event(&venue, json!({ "lastOrderModificationDate": earlier })).await;
    let refused = change_as_buyer(
        &app,
        &venue,
        &bought,
        &bought.secret,
        json!([{ "questionId": size, "value": "S" }]),
    )
    .await;
    assert_eq!(reason(&refused), "EXPIRED", "{refused}");
    assert_eq!(
        answers_of(&app, &venue, &bought).await,
        [pair("T-shirt size", "M")]
    );

    // The team is not bound by the cut-off.
    let team = venue
        .shop
        .admin
        .gql(
            SET_ANSWERS,
            json!({ "input": { "positionId": bought.position, "answers": [{ "questionId": size, "value": "S" }] } }),
        )
        .await;
    assert!(team["errors"].is_null(), "{team}");
}

#[tokio::test]
async fn a_wrong_secret_or_another_orders_position_is_not_found() {
    let app = spawn_app().await;
    let (venue, size, _) = sized(&app, "buyer-secret").await;
    let answers = json!([{ "questionId": size, "value": "S" }]);
    let bought = buy(
        &app,
        &venue,
        None,
        &venue.products[0],
        answers.clone(),
        true,
    )
    .await;
    let other = buy(&app, &venue, None, &venue.products[0], answers, true).await;
    let wrong = change_as_buyer(
        &app,
        &venue,
        &bought,
        "not-the-secret",
        json!([{ "questionId": size, "value": "L" }]),
    )
    .await;
    assert_eq!(code(&wrong), "NOT_FOUND", "{wrong}");
    // Another order's code and secret do not reach this position.
    let elsewhere = app
        .graphql(
            SET_ANSWERS,
            json!({ "input": {
                "positionId": bought.position,
                "answers": [{ "questionId": size, "value": "L" }],
                "order": { "eventId": venue.shop.event, "code": other.code, "secret": other.secret },
            } }),
        )
        .await;
    assert_eq!(code(&elsewhere), "NOT_FOUND", "{elsewhere}");
    // Anonymously, without the secret: who is asking?
    let anonymous = app
        .graphql(
            SET_ANSWERS,
            json!({ "input": { "positionId": bought.position, "answers": [] } }),
        )
        .await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED", "{anonymous}");
    assert_eq!(
        answers_of(&app, &venue, &bought).await,
        [pair("T-shirt size", "S")]
    );
}

#[tokio::test]
async fn the_orders_account_changes_its_answers_and_nobody_elses() {
    let app = spawn_app().await;
    let (venue, size, _) = sized(&app, "buyer-account").await;
    let ann = person(&app, "ann").await;
    let bob = person(&app, "bob").await;
    let bought = buy(
        &app,
        &venue,
        Some(&ann),
        &venue.products[0],
        json!([{ "questionId": size, "value": "S" }]),
        true,
    )
    .await;
    let input = json!({ "input": { "positionId": bought.position, "answers": [{ "questionId": size, "value": "M" }] } });
    let by_ann = ann.gql(SET_ANSWERS, input.clone()).await;
    assert!(by_ann["errors"].is_null(), "{by_ann}");
    let by_bob = bob.gql(SET_ANSWERS, input).await;
    assert_eq!(code(&by_bob), "FORBIDDEN", "{by_bob}");
    assert_eq!(
        answers_of(&app, &venue, &bought).await,
        [pair("T-shirt size", "M")]
    );
}

#[tokio::test]
async fn a_canceled_orders_answers_do_not_change() {
    let app = spawn_app().await;
    let (venue, size, _) = sized(&app, "buyer-canceled").await;
    let bought = buy(
        &app,
        &venue,
        None,
        &venue.products[0],
        json!([{ "questionId": size, "value": "S" }]),
        true,
    )
    .await;
    let canceled = venue
        .shop
        .admin
        .gql(
            "mutation($id: ID!) { cancelOrder(input: { orderId: $id }) { order { status } } }",
            json!({ "id": bought.order }),
        )
        .await;
    assert_eq!(
        canceled["data"]["cancelOrder"]["order"]["status"], "CANCELED",
        "{canceled}"
    );
    assert_eq!(can_modify(&app, &venue, &bought).await, false);
    let refused = change_as_buyer(
        &app,
        &venue,
        &bought,
        &bought.secret,
        json!([{ "questionId": size, "value": "L" }]),
    )
    .await;
    assert_eq!(
        (code(&refused), reason(&refused)),
        ("CONFLICT", "INVALID_TRANSITION"),
        "{refused}"
    );
    assert_eq!(
        answers_of(&app, &venue, &bought).await,
        [pair("T-shirt size", "S")]
    );
}

#[tokio::test]
async fn a_door_question_created_after_scans_is_asked_at_once() {
    let app = spawn_app().await;
    let venue = Venue::open(&app, "door-late", &["Seat"]).await;
    let list = venue.list(json!({})).await;
    let (_, door) = venue.scanner(&app, "Main").await;
    let first = buy(&app, &venue, None, &venue.products[0], json!([]), true).await;
    let second = buy(&app, &venue, None, &venue.products[0], json!([]), true).await;
    // The replica now knows the event asks nothing at the door.
    let admitted = scan(&door, json!({ "secret": first.ticket, "listIds": [list] })).await;
    assert_eq!(outcome(&admitted).0, "CheckinAccepted", "{admitted}");
    question(
        &venue,
        json!({ "question": "Wristband colour", "type": "CHOICE", "options": ["Red", "Blue"], "required": true, "askDuringCheckin": true, "productIds": [venue.products[0]] }),
    )
    .await;
    let asked = scan(&door, json!({ "secret": second.ticket, "listIds": [list] })).await;
    assert_eq!(outcome(&asked).0, "CheckinNeedsAnswers", "{asked}");
}
