//! Check-in at the door: lists, scanner devices, redeeming tickets with
//! re-entry rules, nonces and forced uploads, and the live activity stream.
//! The concurrency tests run on SQLite by default and on PostgreSQL with
//! `DATABASE_URL`.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::client::TestUser;
use crate::helpers::{Subscription, TestApp, spawn_app};
use crate::ticketing::{CREATE_PRODUCT, Shop, add_to_cart, checkout, code};

pub const REDEEM: &str = "mutation($input: RedeemTicketInput!) { redeemTicket(input: $input) {
    __typename
    ... on CheckinAccepted { requiresAttention remaining checkin { id type forced gate successful } ticket { orderCode productName attendeeName requiresAttention } }
    ... on CheckinNeedsAnswers { questions ticket { orderCode } }
    ... on CheckinRejected { reason remaining checkin { id successful reason } ticket { orderCode productName } }
} }";

const CREATE_LIST: &str = "mutation($input: CheckinListInput!) { createCheckinList(input: $input) { list { id name allProducts productIds includePending allowMultipleEntries allowEntryAfterExit questions } } }";

const LISTS: &str = "query($e: ID!) { checkinLists(eventId: $e) { id status { positions checkedIn inside products { productId positions checkedIn inside } } checkins(first: 100) { totalCount nodes { type successful reason gate scannerId forced datetime } } } }";

/// An event with products and paid tickets, and its door staff.
pub struct Venue {
    pub shop: Shop,
    pub products: Vec<String>,
}

impl Venue {
    pub async fn open(app: &TestApp, slug: &str, products: &[&str]) -> Self {
        let shop = Shop::open(app, slug).await;
        let mut ids = Vec::new();
        for name in products {
            ids.push(shop.product(name, "10.00", 1000).await);
        }
        Self {
            shop,
            products: ids,
        }
    }

    /// `quantity` tickets of `product` in one order, paid when `paid`:
    /// their secrets and the order's id.
    pub async fn tickets(
        &self,
        app: &TestApp,
        product: &str,
        quantity: i32,
        paid: bool,
    ) -> (Vec<String>, String) {
        let added = add_to_cart(app, product, quantity, None).await;
        let cart = added["data"]["addToCart"]["cart"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("a cart: {added}"))
            .to_owned();
        let placed = checkout(app, &cart).await;
        let order = &placed["data"]["checkout"]["order"];
        let order_id = order["id"]
            .as_str()
            .unwrap_or_else(|| panic!("an order: {placed}"))
            .to_owned();
        if paid {
            let body = self
                .shop
                .admin
                .gql(
                    "mutation($id: ID!) { markOrderPaid(input: { orderId: $id }) { order { status } } }",
                    json!({ "id": order_id }),
                )
                .await;
            assert_eq!(
                body["data"]["markOrderPaid"]["order"]["status"], "PAID",
                "{body}"
            );
        }
        let secrets = order["positions"]
            .as_array()
            .unwrap_or_else(|| panic!("positions: {placed}"))
            .iter()
            .map(|p| p["secret"].as_str().unwrap_or_default().to_owned())
            .collect();
        (secrets, order_id)
    }

    /// A list with `settings` (merged into the input).
    pub async fn list(&self, settings: Value) -> String {
        let mut input = json!({ "eventId": self.shop.event, "name": "Main entrance" });
        if let (Some(input), Some(extra)) = (input.as_object_mut(), settings.as_object()) {
            input.extend(extra.clone());
        }
        let body = self
            .shop
            .admin
            .gql(CREATE_LIST, json!({ "input": input }))
            .await;
        body["data"]["createCheckinList"]["list"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("a list: {body}"))
            .to_owned()
    }

    /// A scanner device of the event at `gate`, signed in: its id and its user.
    pub async fn scanner(&self, app: &TestApp, gate: &str) -> (String, TestUser) {
        let issued = self
            .shop
            .admin
            .gql(
                "mutation($input: IssueScannerInput!) { issueScanner(input: $input) { credential scanner { id gate active } } }",
                json!({ "input": { "eventId": self.shop.event, "name": format!("Scanner {gate}"), "gate": gate } }),
            )
            .await;
        let credential = issued["data"]["issueScanner"]["credential"]
            .as_str()
            .unwrap_or_else(|| panic!("a credential: {issued}"))
            .to_owned();
        let session = session(app, &credential).await;
        let token = session["data"]["scannerSession"]["accessToken"]
            .as_str()
            .unwrap_or_else(|| panic!("a session: {session}"))
            .to_owned();
        (
            issued["data"]["issueScanner"]["scanner"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            TestUser::bearer(app, &token),
        )
    }
}

pub async fn session(app: &TestApp, credential: &str) -> Value {
    app.graphql(
        "mutation($c: String!) { scannerSession(input: { credential: $c }) { accessToken expiresAt scanner { gate } } }",
        json!({ "c": credential }),
    )
    .await
}

pub async fn scan(user: &TestUser, input: Value) -> Value {
    user.gql(REDEEM, json!({ "input": input })).await
}

pub fn outcome(body: &Value) -> (String, String) {
    let result = &body["data"]["redeemTicket"];
    (
        result["__typename"]
            .as_str()
            .unwrap_or_else(|| panic!("a result: {body}"))
            .to_owned(),
        result["reason"].as_str().unwrap_or("").to_owned(),
    )
}

/// The database id inside a global id.
fn decode_id(id: &str) -> i32 {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    text.rsplit(':')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a global id: {id}"))
}

fn accepted() -> (String, String) {
    ("CheckinAccepted".to_owned(), String::new())
}

fn rejected(reason: &str) -> (String, String) {
    ("CheckinRejected".to_owned(), reason.to_owned())
}

/// A list as `user` reads it (its status and history).
async fn list_of(user: &TestUser, venue: &Venue, list: &str) -> Value {
    let body = user.gql(LISTS, json!({ "e": venue.shop.event })).await;
    body["data"]["checkinLists"]
        .as_array()
        .and_then(|lists| lists.iter().find(|l| l["id"] == list))
        .cloned()
        .unwrap_or_else(|| panic!("list {list} in {body}"))
}

async fn status(user: &TestUser, venue: &Venue, list: &str) -> Value {
    list_of(user, venue, list).await["status"].clone()
}

async fn history(user: &TestUser, venue: &Venue, list: &str) -> Value {
    list_of(user, venue, list).await["checkins"].clone()
}

#[tokio::test]
async fn team_members_with_the_check_in_permission_manage_lists() {
    let app = spawn_app().await;
    let venue = Venue::open(&app, "lists", &["Seat", "Workshop"]).await;
    let (seat, workshop) = (&venue.products[0], &venue.products[1]);
    let created = venue
        .shop
        .admin
        .gql(
            CREATE_LIST,
            json!({ "input": { "eventId": venue.shop.event, "name": "Workshops", "productIds": [workshop], "questions": ["ID checked?"] } }),
        )
        .await;
    let list = &created["data"]["createCheckinList"]["list"];
    assert_eq!(list["allProducts"], false, "{created}");
    assert_eq!(list["productIds"], json!([workshop]));
    assert_eq!(list["allowEntryAfterExit"], true);
    assert_eq!(list["allowMultipleEntries"], false);
    assert_eq!(list["questions"], json!(["ID checked?"]));
    let list_id = list["id"].as_str().unwrap_or_default().to_owned();

    let updated = venue
        .shop
        .admin
        .gql(
            "mutation($input: UpdateCheckinListInput!) { updateCheckinList(input: $input) { list { name allProducts productIds includePending questions } } }",
            json!({ "input": { "listId": list_id, "name": "Everything", "productIds": [], "includePending": true, "questions": [] } }),
        )
        .await;
    assert_eq!(
        updated["data"]["updateCheckinList"]["list"],
        json!({ "name": "Everything", "allProducts": true, "productIds": [], "includePending": true, "questions": [] }),
        "{updated}"
    );

    // Paid and pending tickets show in the status, per product.
    venue.tickets(&app, seat, 2, true).await;
    venue.tickets(&app, workshop, 1, false).await;
    let figures = status(&venue.shop.admin, &venue, &list_id).await;
    assert_eq!(figures["positions"], 3, "{figures}");
    assert_eq!(figures["checkedIn"], 0);
    assert_eq!(figures["products"][0]["productId"], json!(seat));
    assert_eq!(figures["products"][0]["positions"], 2);

    // Bad input is precise and changes nothing.
    let other = Venue::open(&app, "elsewhere", &["Other"]).await;
    for (input, field) in [
        (
            json!({ "eventId": venue.shop.event, "name": "X", "productIds": [other.products[0]] }),
            "productIds",
        ),
        (json!({ "eventId": venue.shop.event, "name": "" }), "name"),
        (
            json!({ "eventId": venue.shop.event, "name": "X", "questions": [""] }),
            "questions",
        ),
        (
            json!({ "eventId": venue.shop.organizer, "name": "X" }),
            "eventId",
        ),
    ] {
        let body = venue
            .shop
            .admin
            .gql(CREATE_LIST, json!({ "input": input }))
            .await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    let lists = venue
        .shop
        .admin
        .gql(
            "query($e: ID!) { checkinLists(eventId: $e) { id } }",
            json!({ "e": venue.shop.event }),
        )
        .await;
    assert_eq!(
        lists["data"]["checkinLists"].as_array().map(Vec::len),
        Some(1),
        "{lists}"
    );

    // The other organizer's administrator cannot touch this list.
    let foreign = other
        .shop
        .admin
        .gql(
            "mutation($id: ID!) { deleteCheckinList(input: { listId: $id }) { ok } }",
            json!({ "id": list_id }),
        )
        .await;
    assert_eq!(code(&foreign), "FORBIDDEN", "{foreign}");
    let deleted = venue
        .shop
        .admin
        .gql(
            "mutation($id: ID!) { deleteCheckinList(input: { listId: $id }) { ok } }",
            json!({ "id": list_id }),
        )
        .await;
    assert_eq!(
        deleted["data"]["deleteCheckinList"]["ok"], true,
        "{deleted}"
    );

    // Each change is in the audit log.
    let log = venue
        .shop
        .admin
        .gql(
            "query { event(organizerSlug: \"lists\", slug: \"finals\") { logEntries { actionType } } }",
            json!({}),
        )
        .await;
    let actions = log["data"]["event"]["logEntries"].to_string();
    for action in [
        "voltgate.checkinlist.added",
        "voltgate.checkinlist.changed",
        "voltgate.checkinlist.deleted",
    ] {
        assert!(actions.contains(action), "{action} in {actions}");
    }
}

#[tokio::test]
async fn scanners_are_issued_once_scan_only_their_event_and_can_be_revoked() {
    let app = spawn_app().await;
    let venue = Venue::open(&app, "devices", &["Seat"]).await;
    let list = venue.list(json!({})).await;
    let (tickets, _) = venue.tickets(&app, &venue.products[0], 2, true).await;
    let issued = venue
        .shop
        .admin
        .gql(
            "mutation($input: IssueScannerInput!) { issueScanner(input: $input) { credential scanner { id gate active } } }",
            json!({ "input": { "eventId": venue.shop.event, "name": "North 1", "gate": "North" } }),
        )
        .await;
    let credential = issued["data"]["issueScanner"]["credential"]
        .as_str()
        .unwrap_or_else(|| panic!("a credential: {issued}"))
        .to_owned();
    let scanner_id = issued["data"]["issueScanner"]["scanner"]["id"].clone();
    // Shown once: the device list never shows it again.
    let devices = venue
        .shop
        .admin
        .gql(
            "query($e: ID!) { scannerDevices(eventId: $e) { id gate active } }",
            json!({ "e": venue.shop.event }),
        )
        .await;
    assert_eq!(
        devices["data"]["scannerDevices"],
        json!([{ "id": scanner_id, "gate": "North", "active": true }])
    );
    assert!(!devices.to_string().contains(&credential));

    let started = session(&app, &credential).await;
    assert_eq!(
        started["data"]["scannerSession"]["scanner"]["gate"], "North",
        "{started}"
    );
    let token = started["data"]["scannerSession"]["accessToken"]
        .as_str()
        .unwrap_or_default();
    let scanner = TestUser::bearer(&app, token);

    // It scans at its own gate and reads its lists...
    let body = scan(
        &scanner,
        json!({ "secret": tickets[0], "listIds": [list], "gate": "elsewhere" }),
    )
    .await;
    assert_eq!(outcome(&body), accepted(), "{body}");
    assert_eq!(body["data"]["redeemTicket"]["checkin"]["gate"], "North");
    assert_eq!(status(&scanner, &venue, &list).await["checkedIn"], 1);
    // ...and nothing else.
    for document in [
        format!(
            "mutation {{ createCheckinList(input: {{ eventId: \"{}\", name: \"X\" }}) {{ list {{ id }} }} }}",
            venue.shop.event
        ),
        format!(
            "query {{ scannerDevices(eventId: \"{}\") {{ id }} }}",
            venue.shop.event
        ),
        format!(
            "mutation {{ issueScanner(input: {{ eventId: \"{}\", name: \"X\", gate: \"X\" }}) {{ credential }} }}",
            venue.shop.event
        ),
        format!(
            "mutation {{ markOrderPaid(input: {{ orderId: \"{}\" }}) {{ order {{ id }} }} }}",
            crate::helpers::global_id("Order", 1)
        ),
        "{ me { id } }".to_owned(),
    ] {
        let body = scanner.gql(&document, json!({})).await;
        assert_eq!(code(&body), "FORBIDDEN", "{document}: {body}");
    }
    // Another event's lists are not its own.
    let other = Venue::open(&app, "other-devices", &["Seat"]).await;
    let other_list = other.list(json!({})).await;
    let body = scan(
        &scanner,
        json!({ "secret": tickets[1], "listIds": [other_list] }),
    )
    .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");

    // Revoked: its token stops at once, and the credential exchanges no more.
    let revoked = venue
        .shop
        .admin
        .gql(
            "mutation($id: ID!) { revokeScanner(input: { scannerId: $id }) { scanner { active revokedAt } } }",
            json!({ "id": scanner_id }),
        )
        .await;
    assert_eq!(
        revoked["data"]["revokeScanner"]["scanner"]["active"], false,
        "{revoked}"
    );
    let body = scan(&scanner, json!({ "secret": tickets[1], "listIds": [list] })).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    let again = session(&app, &credential).await;
    assert_eq!(code(&again), "UNAUTHENTICATED", "{again}");
    let unknown = session(&app, "vgs_not-a-credential").await;
    assert_eq!(code(&unknown), "UNAUTHENTICATED", "{unknown}");
}

#[tokio::test]
async fn entries_and_exits_follow_the_list_rules_and_every_scan_is_recorded() {
    let app = spawn_app().await;
    let venue = Venue::open(&app, "doors", &["Seat", "Parking"]).await;
    let (seat, parking) = (&venue.products[0], &venue.products[1]);
    let reentry = venue.list(json!({ "productIds": [seat] })).await;
    let once = venue
        .list(json!({ "name": "Once", "allowEntryAfterExit": false }))
        .await;
    let (_, door) = venue.scanner(&app, "Main").await;
    let (paid, paid_order) = venue.tickets(&app, seat, 2, true).await;
    let (pending, _) = venue.tickets(&app, seat, 1, false).await;
    let (parked, _) = venue.tickets(&app, parking, 1, true).await;
    let entry = |secret: &str, list: &str| json!({ "secret": secret, "listIds": [list] });
    let exit =
        |secret: &str, list: &str| json!({ "secret": secret, "listIds": [list], "type": "EXIT" });

    // Enter, refused while inside, leave, enter again.
    let first = scan(&door, entry(&paid[0], &reentry)).await;
    assert_eq!(outcome(&first), accepted(), "{first}");
    assert_eq!(
        first["data"]["redeemTicket"]["ticket"]["productName"],
        "Seat"
    );
    let twice = scan(&door, entry(&paid[0], &reentry)).await;
    assert_eq!(outcome(&twice), rejected("ALREADY_REDEEMED"), "{twice}");
    assert_eq!(
        twice["data"]["redeemTicket"]["checkin"]["successful"],
        false
    );
    assert_eq!(
        outcome(&scan(&door, exit(&paid[0], &reentry)).await),
        accepted()
    );
    assert_eq!(
        outcome(&scan(&door, entry(&paid[0], &reentry)).await),
        accepted()
    );
    // On a list without re-entry, an exit does not open the door again.
    assert_eq!(
        outcome(&scan(&door, entry(&paid[0], &once)).await),
        accepted()
    );
    assert_eq!(
        outcome(&scan(&door, exit(&paid[0], &once)).await),
        accepted()
    );
    assert_eq!(
        outcome(&scan(&door, entry(&paid[0], &once)).await),
        rejected("ALREADY_REDEEMED")
    );

    // Every other refusal, with its reason.
    assert_eq!(
        outcome(&scan(&door, entry(&pending[0], &reentry)).await),
        rejected("UNPAID")
    );
    assert_eq!(
        outcome(&scan(&door, entry(&parked[0], &reentry)).await),
        rejected("PRODUCT")
    );
    // A ticket valid on both lists scanned for at once is ambiguous.
    let both = json!({ "secret": paid[1], "listIds": [once, reentry] });
    assert_eq!(outcome(&scan(&door, both).await), rejected("AMBIGUOUS"));
    let unknown = scan(
        &door,
        entry("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &reentry),
    )
    .await;
    assert_eq!(outcome(&unknown), rejected("INVALID"), "{unknown}");
    assert!(unknown["data"]["redeemTicket"]["ticket"].is_null());
    for malformed in ["", "x", "' OR 1=1 --", &"z".repeat(5000)] {
        let body = scan(&door, entry(malformed, &reentry)).await;
        assert_eq!(outcome(&body), rejected("INVALID"), "{body}");
    }
    let canceled = venue
        .shop
        .admin
        .gql(
            "mutation($id: ID!) { cancelOrder(input: { orderId: $id }) { order { status } } }",
            json!({ "id": paid_order }),
        )
        .await;
    assert_eq!(
        canceled["data"]["cancelOrder"]["order"]["status"], "CANCELED",
        "{canceled}"
    );
    assert_eq!(
        outcome(&scan(&door, entry(&paid[1], &reentry)).await),
        rejected("CANCELED")
    );

    // The history holds every scan, rejected ones too, with where and who.
    let checkins = &history(&venue.shop.admin, &venue, &reentry).await;
    let history = checkins;
    // 4 on the first ticket, unpaid, product, 5 invalid, canceled (the
    // ambiguous scan is recorded on the first list it named).
    assert_eq!(checkins["totalCount"], 12, "{history}");
    assert_eq!(
        checkins["nodes"][1],
        json!({ "type": "ENTRY", "successful": false, "reason": "ALREADY_REDEEMED", "gate": "Main", "scannerId": checkins["nodes"][0]["scannerId"], "forced": false, "datetime": checkins["nodes"][1]["datetime"] })
    );
    assert!(checkins["nodes"][0]["scannerId"].is_string());

    // The first ticket is inside on the re-entry list, and counted per product.
    let figures = status(&venue.shop.admin, &venue, &reentry).await;
    assert_eq!(figures["checkedIn"], 1, "{figures}");
    assert_eq!(figures["inside"], 1, "{figures}");
    assert_eq!(
        figures["products"].as_array().map(Vec::len),
        Some(1),
        "only seats: {figures}"
    );
    let figures = status(&venue.shop.admin, &venue, &once).await;
    assert_eq!(
        (figures["checkedIn"].clone(), figures["inside"].clone()),
        (json!(1), json!(0))
    );
}

#[tokio::test]
async fn two_scanners_scanning_one_ticket_at_the_same_instant_admit_it_once() {
    let app = Arc::new(spawn_app().await);
    let venue = Venue::open(&app, "race", &["Seat"]).await;
    let list = venue.list(json!({})).await;
    let (tickets, _) = venue.tickets(&app, &venue.products[0], 5, true).await;
    let (_, north) = venue.scanner(&app, "North").await;
    let (_, south) = venue.scanner(&app, "South").await;
    let scanners = Arc::new([north, south]);
    for ticket in &tickets {
        let scans = (0..8).map(|i| {
            let (scanners, ticket, list) = (Arc::clone(&scanners), ticket.clone(), list.clone());
            tokio::spawn(async move {
                let body = scan(
                    &scanners[i % 2],
                    json!({ "secret": ticket, "listIds": [list] }),
                )
                .await;
                outcome(&body)
            })
        });
        let mut results = Vec::new();
        for handle in scans {
            results.push(handle.await.expect("the scan finishes"));
        }
        let admitted = results.iter().filter(|r| **r == accepted()).count();
        assert_eq!(admitted, 1, "one admission: {results:?}");
        assert!(
            results
                .iter()
                .all(|r| *r == accepted() || *r == rejected("ALREADY_REDEEMED")),
            "{results:?}"
        );
    }
    let figures = status(&venue.shop.admin, &venue, &list).await;
    assert_eq!(
        (figures["checkedIn"].clone(), figures["inside"].clone()),
        (json!(5), json!(5)),
        "{figures}"
    );
}

#[tokio::test]
async fn a_repeated_nonce_gets_the_first_answer_and_records_nothing_new() {
    let app = Arc::new(spawn_app().await);
    let venue = Venue::open(&app, "nonces", &["Seat"]).await;
    let list = venue.list(json!({})).await;
    let (tickets, _) = venue.tickets(&app, &venue.products[0], 2, true).await;
    let (_, door) = venue.scanner(&app, "Main").await;
    let door = Arc::new(door);
    let input = json!({ "secret": tickets[0], "listIds": [list], "nonce": "scan-0001" });
    let first = scan(&door, input.clone()).await;
    assert_eq!(outcome(&first), accepted(), "{first}");
    let again = scan(&door, input.clone()).await;
    assert_eq!(
        outcome(&again),
        accepted(),
        "the first answer, not ALREADY_REDEEMED: {again}"
    );
    assert_eq!(
        again["data"]["redeemTicket"]["checkin"]["id"],
        first["data"]["redeemTicket"]["checkin"]["id"]
    );
    // A person scanning with the same nonce is another scanner.
    let other = scan(&venue.shop.admin, input).await;
    assert_eq!(outcome(&other), rejected("ALREADY_REDEEMED"), "{other}");

    // Concurrent repeats of one nonce: one record, one answer for all.
    let repeats = (0..6).map(|_| {
        let (door, ticket, list) = (Arc::clone(&door), tickets[1].clone(), list.clone());
        tokio::spawn(async move {
            scan(
                &door,
                json!({ "secret": ticket, "listIds": [list], "nonce": "scan-0002" }),
            )
            .await
        })
    });
    all_accepted_as_one_record(repeats, "repeats of scan-0002").await;
    let history = history(&venue.shop.admin, &venue, &list).await;
    assert_eq!(history["totalCount"], 3, "{history}");
}

/// Awaits scans sent at once with one nonce: every one accepted, all
/// answered with the same record.
async fn all_accepted_as_one_record(
    scans: impl IntoIterator<Item = tokio::task::JoinHandle<Value>>,
    what: &str,
) {
    let mut ids = Vec::new();
    for handle in scans {
        let body = handle.await.expect("the scan finishes");
        assert_eq!(outcome(&body), accepted(), "{what}: {body}");
        ids.push(body["data"]["redeemTicket"]["checkin"]["id"].clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{what}: one record, {ids:?}");
}

/// A scanner that retries through a load balancer may reach two replicas
/// with one nonce at once: whichever stores it first, every answer is that
/// record's, and nothing else is recorded. On the defaults there is one
/// replica and the repeats meet in its lane. Several workers, as a server
/// runs, so the requests are handled in parallel.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_nonce_sent_to_two_replicas_at_once_is_recorded_once() {
    let app = spawn_app().await;
    let replica = app.replica().await;
    let venue = Venue::open(&app, "nonce-replicas", &["Seat"]).await;
    let list = venue.list(json!({})).await;
    let (tickets, _) = venue.tickets(&app, &venue.products[0], 8, true).await;
    let (_, door) = venue.scanner(&app, "Main").await;
    let doors = Arc::new([
        TestUser::bearer(&app, &door.token),
        TestUser::bearer(replica.as_ref().unwrap_or(&app), &door.token),
    ]);
    for (round, ticket) in tickets.iter().enumerate() {
        let input =
            json!({ "secret": ticket, "listIds": [list], "nonce": format!("retry-{round}") });
        let sent = (0..8).map(|i| {
            let (doors, input) = (Arc::clone(&doors), input.clone());
            tokio::spawn(async move { scan(&doors[i % 2], input).await })
        });
        all_accepted_as_one_record(sent, &format!("round {round}")).await;
    }
    let history = history(&venue.shop.admin, &venue, &list).await;
    assert_eq!(
        history["totalCount"],
        tickets.len(),
        "one record per nonce: {history}"
    );
}

/// A batch whose nonce another transaction (another replica's lane) stores
/// while the batch runs is decided again, and the scan is answered by that
/// record: the batch's own writes of that attempt are undone, so the ticket
/// is still outside and enters on its next scan. The other transaction is
/// held open by the test until the batch waits on its nonce, so the race
/// happens every time. PostgreSQL only: SQLite has one writer, so no other
/// transaction holds a nonce while a batch runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_loses_its_nonce_to_another_transaction_answers_with_that_record() {
    use sea_orm::{ConnectionTrait as _, DatabaseBackend, Statement, TransactionTrait as _};

    let app = spawn_app().await;
    if app.db.get_database_backend() != DatabaseBackend::Postgres {
        return;
    }
    let venue = Venue::open(&app, "nonce-lost", &["Seat"]).await;
    let list = venue.list(json!({})).await;
    let (tickets, _) = venue.tickets(&app, &venue.products[0], 2, true).await;
    let (_, door) = venue.scanner(&app, "Main").await;
    let first = scan(
        &door,
        json!({ "secret": tickets[0], "listIds": [list], "nonce": "first" }),
    )
    .await;
    assert_eq!(outcome(&first), accepted(), "{first}");

    // Another transaction records the scanner's next nonce for the second
    // ticket (a copy of the first record) and keeps it uncommitted.
    let other = app.db.begin().await.expect("a transaction");
    let stored = other
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "INSERT INTO checkins (event_id, list_id, position_id, kind, successful, reason, \
             forced, scanner_id, user_id, team_api_token_id, gate, note, answers, nonce_scope, \
             nonce, datetime, created_at) \
             SELECT event_id, list_id, (SELECT id FROM order_positions WHERE secret = $1), kind, \
             successful, reason, forced, scanner_id, user_id, team_api_token_id, 'Elsewhere', \
             note, answers, nonce_scope, 'taken', datetime, created_at \
             FROM checkins WHERE nonce = 'first' RETURNING id",
            [tickets[1].clone().into()],
        ))
        .await
        .expect("the other record")
        .expect("inserted");
    let taken: i32 = stored.try_get("", "id").expect("its id");

    let sent = {
        let (secret, list) = (tickets[1].clone(), list.clone());
        tokio::spawn(async move {
            scan(
                &door,
                json!({ "secret": secret, "listIds": [list], "nonce": "taken" }),
            )
            .await
        })
    };
    // The batch reaches the record's insert and waits for the other
    // transaction's nonce; only then does the other commit.
    let waiting = "SELECT COUNT(*) AS n FROM pg_stat_activity \
                   WHERE datname = current_database() AND wait_event_type = 'Lock'";
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let row = app
            .db
            .query_one_raw(Statement::from_string(DatabaseBackend::Postgres, waiting))
            .await
            .expect("pg_stat_activity")
            .expect("a count");
        if row.try_get::<i64>("", "n").expect("n") > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the batch never waited for the other transaction's nonce"
        );
        tokio::task::yield_now().await;
    }
    other.commit().await.expect("the other commits");

    let answer = sent.await.expect("the scan finishes");
    assert_eq!(outcome(&answer), accepted(), "{answer}");
    let record = answer["data"]["redeemTicket"]["checkin"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a record: {answer}"));
    assert_eq!(decode_id(record), taken, "answered by the other's record");
    assert_eq!(
        answer["data"]["redeemTicket"]["checkin"]["gate"],
        "Elsewhere"
    );

    let history = history(&venue.shop.admin, &venue, &list).await;
    assert_eq!(
        history["totalCount"], 2,
        "nothing of the lost attempt: {history}"
    );
    let door = &venue.scanner(&app, "Main").await.1;
    let next = scan(
        door,
        json!({ "secret": tickets[1], "listIds": [list], "nonce": "next" }),
    )
    .await;
    assert_eq!(
        outcome(&next),
        accepted(),
        "the lost attempt left the ticket outside: {next}"
    );
}

#[tokio::test]
async fn scans_of_one_ticket_queued_together_admit_it_once_and_repeats_share_the_first_answer() {
    let app = Arc::new(spawn_app().await);
    let venue = Venue::open(&app, "together", &["Seat"]).await;
    let list = venue.list(json!({})).await;
    let (tickets, _) = venue.tickets(&app, &venue.products[0], 2, true).await;
    let (_, north) = venue.scanner(&app, "North").await;
    let (_, south) = venue.scanner(&app, "South").await;
    let doors = Arc::new([north, south]);
    // Sixteen scans of one ticket at once (so that they share batches):
    // the north door sends one nonce eight times, the south door eight of
    // its own; and an exit of the other ticket, never admitted.
    let scans = (0..16).map(|i| {
        let door = i % 2;
        let nonce = if door == 0 {
            "north-1".to_owned()
        } else {
            format!("south-{i}")
        };
        let (doors, ticket, list) = (Arc::clone(&doors), tickets[0].clone(), list.clone());
        tokio::spawn(async move {
            scan(
                &doors[door],
                json!({ "secret": ticket, "listIds": [list], "nonce": nonce }),
            )
            .await
        })
    });
    let exit = {
        let (doors, ticket, list) = (Arc::clone(&doors), tickets[1].clone(), list.clone());
        tokio::spawn(async move {
            scan(
                &doors[1],
                json!({ "secret": ticket, "listIds": [list], "type": "EXIT", "nonce": "out-1" }),
            )
            .await
        })
    };
    let mut bodies = Vec::new();
    for handle in scans {
        bodies.push(handle.await.expect("the scan finishes"));
    }
    let exit = exit.await.expect("the exit finishes");
    assert_eq!(outcome(&exit), accepted(), "{exit}");

    let repeats: Vec<_> = bodies.iter().step_by(2).collect();
    let first = &repeats[0]["data"]["redeemTicket"];
    for body in &repeats {
        assert_eq!(
            body["data"]["redeemTicket"]["checkin"]["id"], first["checkin"]["id"],
            "one record for one nonce: {body}"
        );
        assert_eq!(outcome(body), outcome(repeats[0]), "{body}");
    }
    // Of the nine records (one per nonce), one admitted the ticket.
    let mut admitted = usize::from(outcome(repeats[0]) == accepted());
    for body in bodies.iter().skip(1).step_by(2) {
        match outcome(body) {
            o if o == accepted() => admitted += 1,
            o => assert_eq!(o, rejected("ALREADY_REDEEMED"), "{body}"),
        }
    }
    assert_eq!(admitted, 1, "one admission");
    let history = history(&venue.shop.admin, &venue, &list).await;
    assert_eq!(history["totalCount"], 10, "{history}");
    let figures = status(&venue.shop.admin, &venue, &list).await;
    assert_eq!(
        (figures["checkedIn"].clone(), figures["inside"].clone()),
        (json!(1), json!(1)),
        "{figures}"
    );
}

#[tokio::test]
async fn forced_scans_record_what_happened_offline() {
    let app = spawn_app().await;
    let venue = Venue::open(&app, "forced", &["Seat"]).await;
    let list = venue.list(json!({})).await;
    let (tickets, _) = venue.tickets(&app, &venue.products[0], 1, true).await;
    let (pending, _) = venue.tickets(&app, &venue.products[0], 1, false).await;
    let (_, door) = venue.scanner(&app, "Main").await;
    let earlier = (chrono::Utc::now() - chrono::TimeDelta::minutes(20)).to_rfc3339();
    let entry = scan(&door, json!({ "secret": tickets[0], "listIds": [list] })).await;
    assert_eq!(outcome(&entry), accepted());
    let forced = scan(
        &door,
        json!({ "secret": tickets[0], "listIds": [list], "force": true, "scannedAt": earlier, "nonce": "offline-1" }),
    )
    .await;
    assert_eq!(outcome(&forced), accepted(), "{forced}");
    assert_eq!(forced["data"]["redeemTicket"]["checkin"]["forced"], true);
    let unpaid = scan(
        &door,
        json!({ "secret": pending[0], "listIds": [list], "force": true }),
    )
    .await;
    assert_eq!(outcome(&unpaid), accepted(), "{unpaid}");
    // Unknown tickets stay unknown, forced or not.
    let unknown = scan(&door, json!({ "secret": "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", "listIds": [list], "force": true })).await;
    assert_eq!(outcome(&unknown), rejected("INVALID"));
    let history = history(&venue.shop.admin, &venue, &list).await;
    let nodes = &history["nodes"];
    assert_eq!(nodes[0]["forced"], false, "{history}");
    assert_eq!(nodes[1]["forced"], true);
    let recorded: chrono::DateTime<chrono::Utc> = nodes[1]["datetime"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("a time: {history}"));
    assert!(
        recorded < chrono::Utc::now() - chrono::TimeDelta::minutes(19),
        "the scan's own time"
    );
    let future = (chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    let body = scan(
        &door,
        json!({ "secret": tickets[0], "listIds": [list], "scannedAt": future }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["field"], "scannedAt",
        "{body}"
    );
}

#[tokio::test]
async fn a_list_with_questions_asks_them_before_admitting() {
    let app = spawn_app().await;
    let venue = Venue::open(&app, "questions", &["Seat"]).await;
    let list = venue
        .list(json!({ "questions": ["Wristband number?"] }))
        .await;
    let (tickets, _) = venue.tickets(&app, &venue.products[0], 1, true).await;
    let asked = scan(
        &venue.shop.admin,
        json!({ "secret": tickets[0], "listIds": [list] }),
    )
    .await;
    assert_eq!(outcome(&asked).0, "CheckinNeedsAnswers", "{asked}");
    assert_eq!(
        asked["data"]["redeemTicket"]["questions"],
        json!(["Wristband number?"])
    );
    let answered = scan(
        &venue.shop.admin,
        json!({ "secret": tickets[0], "listIds": [list], "gate": "Side", "answers": [{ "question": "Wristband number?", "answer": "042" }] }),
    )
    .await;
    assert_eq!(outcome(&answered), accepted(), "{answered}");
    assert_eq!(answered["data"]["redeemTicket"]["checkin"]["gate"], "Side");
    let history = history(&venue.shop.admin, &venue, &list).await;
    assert_eq!(history["totalCount"], 1, "asking records nothing");
}

#[tokio::test]
async fn scanning_is_rate_limited_per_scanner() {
    let app = spawn_app().await;
    let venue = Venue::open(&app, "limits", &["Seat"]).await;
    let list = venue.list(json!({})).await;
    let (_, door) = venue.scanner(&app, "Main").await;
    let principal =
        voltgate::auth::principal::authenticate(&app.db, &crate::client::keys(), &door.token)
            .await
            .expect("a scanner");
    let mut services = voltgate::services::ServiceContext::new(
        app.db.clone(),
        app.bus.clone(),
        Arc::new(crate::client::keys()),
        Arc::new(voltgate::auth::rate_limit::RateLimiter::default()),
    );
    services.checkin = voltgate::checkin::settings::CheckinSettings {
        scans_per_minute: 3,
        ..Default::default()
    };
    let list_id = decode_id(&list);
    let mut answers = Vec::new();
    for _ in 0..5 {
        let scan = voltgate::checkin::redeem::Scan {
            secret: "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC".to_owned(),
            list_ids: vec![list_id],
            ..Default::default()
        };
        let result =
            voltgate::checkin::redeem::redeem(&services, &principal, chrono::Utc::now(), scan)
                .await;
        answers.push(matches!(
            result,
            Err(voltgate::error::AppError::RateLimited)
        ));
    }
    assert_eq!(answers, [false, false, false, true, true]);
    // Another scanner has its own allowance.
    let (_, other) = venue.scanner(&app, "Side").await;
    let principal =
        voltgate::auth::principal::authenticate(&app.db, &crate::client::keys(), &other.token)
            .await
            .expect("a scanner");
    let scan = voltgate::checkin::redeem::Scan {
        secret: "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC".to_owned(),
        list_ids: vec![list_id],
        ..Default::default()
    };
    assert!(
        voltgate::checkin::redeem::redeem(&services, &principal, chrono::Utc::now(), scan)
            .await
            .is_ok()
    );
}

const ACTIVITY: &str = "subscription($e: ID!, $l: ID, $after: String) {
    checkinActivity(eventId: $e, listId: $l, after: $after) {
        cursor productName checkin { type successful reason } counts { checkedIn inside }
    }
}";

/// `door`'s dashboard of `list`, once it delivers: a subscription has no
/// ready signal, so `exiting` is scanned out (always accepted, counting nobody
/// in) until one is seen; returns the stream, drained, and the first exit seen.
async fn watching(
    app: &TestApp,
    venue: &Venue,
    door: &TestUser,
    list: &str,
    exiting: &str,
) -> (Subscription, Value) {
    let mut stream = Subscription::start_with(
        app.addr,
        "graphql-transport-ws",
        json!({ "authorization": format!("Bearer {}", door.token) }),
        ACTIVITY,
        json!({ "e": venue.shop.event, "l": list }),
    )
    .await;
    let mut first = None;
    for _ in 0..50 {
        scan(
            door,
            json!({ "secret": exiting, "listIds": [list], "type": "EXIT" }),
        )
        .await;
        if let Some(message) = stream.try_next(std::time::Duration::from_millis(200)).await {
            first = Some(message);
            break;
        }
    }
    let first = first.expect("the stream delivers scans");
    while stream
        .try_next(std::time::Duration::from_millis(300))
        .await
        .is_some()
    {}
    (stream, first)
}

/// Scans decided together in one batch of the door lane reach a dashboard in
/// the order they were decided: the checked-in count goes up one at a time,
/// never back. Several workers, as a server runs, so the scanners' requests
/// finish in parallel.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dashboard_sees_concurrent_scans_counted_up_in_order() {
    const TICKETS: usize = 40; // and one more for the exits
    let app = Arc::new(spawn_app().await);
    let venue = Venue::open(&app, "order", &["Seat"]).await;
    let list = venue.list(json!({})).await;
    let (tickets, _) = venue.tickets(&app, &venue.products[0], 41, true).await;
    let (_, door) = venue.scanner(&app, "Main").await;
    let (mut stream, _) = watching(&app, &venue, &door, &list, &tickets[TICKETS]).await;

    let door = Arc::new(door);
    let scans: Vec<_> = tickets[..TICKETS]
        .iter()
        .map(|ticket| {
            let (door, ticket, list) = (Arc::clone(&door), ticket.clone(), list.clone());
            tokio::spawn(async move {
                outcome(&scan(&door, json!({ "secret": ticket, "listIds": [list] })).await)
            })
        })
        .collect();
    for handle in scans {
        assert_eq!(handle.await.expect("the scan finishes"), accepted());
    }
    let mut counted = Vec::with_capacity(TICKETS);
    for _ in 0..TICKETS {
        let event = stream.next_event().await["data"]["checkinActivity"].clone();
        counted.push(event["counts"]["checkedIn"].as_i64().unwrap_or_default());
    }
    let expected: Vec<i64> = (1..=i64::try_from(TICKETS).expect("small")).collect();
    assert_eq!(counted, expected, "counted up one scan at a time");
}

#[tokio::test]
async fn door_dashboards_follow_scans_live_and_resume_from_a_cursor() {
    let app = spawn_app().await;
    let venue = Venue::open(&app, "live", &["Seat"]).await;
    let list = venue.list(json!({})).await;
    let other_list = venue.list(json!({ "name": "Other" })).await;
    let (tickets, _) = venue.tickets(&app, &venue.products[0], 3, true).await;
    let (_, door) = venue.scanner(&app, "Main").await;
    let (mut stream, first) = watching(&app, &venue, &door, &list, &tickets[2]).await;
    assert_eq!(
        first["payload"]["data"]["checkinActivity"]["checkin"]["type"], "EXIT",
        "{first}"
    );

    // Scans on another list are not this dashboard's.
    scan(
        &door,
        json!({ "secret": tickets[0], "listIds": [other_list] }),
    )
    .await;
    let admitted = scan(&door, json!({ "secret": tickets[0], "listIds": [list] })).await;
    assert_eq!(outcome(&admitted), accepted());
    let event = stream.next_event().await["data"]["checkinActivity"].clone();
    assert_eq!(
        event["checkin"],
        json!({ "type": "ENTRY", "successful": true, "reason": null }),
        "{event}"
    );
    assert_eq!(event["productName"], "Seat");
    assert_eq!(event["counts"], json!({ "checkedIn": 1, "inside": 1 }));
    let cursor = event["cursor"].as_str().unwrap_or_default().to_owned();

    // Resuming after that cursor delivers the scans missed since, in order.
    scan(&door, json!({ "secret": tickets[0], "listIds": [list] })).await;
    scan(&door, json!({ "secret": tickets[1], "listIds": [list] })).await;
    let mut resumed = Subscription::start_with(
        app.addr,
        "graphql-transport-ws",
        json!({ "authorization": format!("Bearer {}", venue.shop.admin.token) }),
        ACTIVITY,
        json!({ "e": venue.shop.event, "l": list, "after": cursor }),
    )
    .await;
    let missed = resumed.next_event().await["data"]["checkinActivity"].clone();
    assert_eq!(missed["checkin"]["reason"], "ALREADY_REDEEMED", "{missed}");
    let missed = resumed.next_event().await["data"]["checkinActivity"].clone();
    assert_eq!(
        missed["counts"],
        json!({ "checkedIn": 2, "inside": 2 }),
        "{missed}"
    );

    // Nobody else watches the doors.
    let (customer, _) = app.register("nosy").await;
    let mut refused = Subscription::start_with(
        app.addr,
        "graphql-transport-ws",
        json!({ "authorization": format!("Bearer {customer}") }),
        ACTIVITY,
        json!({ "e": venue.shop.event }),
    )
    .await;
    let message = refused.next_message().await;
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{message}"
    );
}

/// A product of `kind` with plenty of stock.
async fn product_of_kind(venue: &Venue, name: &str, kind: &str) -> String {
    let body = venue
        .shop
        .admin
        .gql(
            CREATE_PRODUCT,
            json!({ "input": { "eventId": venue.shop.event, "name": name, "kind": kind, "price": "5", "totalQuantity": 1000 } }),
        )
        .await;
    body["data"]["createProduct"]["product"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a product: {body}"))
        .to_owned()
}

/// One paid order of `lines` (product, quantity): the secret of its first position.
async fn paid_order(app: &TestApp, venue: &Venue, lines: &[(&str, i32)]) -> String {
    let mut cart: Option<String> = None;
    for (product, quantity) in lines {
        let added = add_to_cart(app, product, *quantity, cart.as_deref()).await;
        cart = Some(
            added["data"]["addToCart"]["cart"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("a cart: {added}"))
                .to_owned(),
        );
    }
    let placed = checkout(app, cart.as_deref().unwrap_or_default()).await;
    let order = &placed["data"]["checkout"]["order"];
    let paid = venue
        .shop
        .admin
        .gql(
            "mutation($id: ID!) { markOrderPaid(input: { orderId: $id }) { order { status } } }",
            json!({ "id": order["id"] }),
        )
        .await;
    assert_eq!(
        paid["data"]["markOrderPaid"]["order"]["status"], "PAID",
        "{paid}"
    );
    order["positions"][0]["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("a ticket: {placed}"))
        .to_owned()
}

#[tokio::test]
async fn door_checks_admit_holders_of_the_product_and_nobody_else() {
    let app = spawn_app().await;
    let venue = Venue::open(&app, "tutorials", &["Seat"]).await;
    let tutorial = product_of_kind(&venue, "Rust tutorial", "ADDON").await;
    let room = venue
        .list(json!({ "name": "Tutorial room", "productIds": [tutorial], "allowEntryAfterExit": false }))
        .await;
    let (_, door) = venue.scanner(&app, "Room 2").await;
    let holder = paid_order(&app, &venue, &[(&venue.products[0], 1), (&tutorial, 1)]).await;
    let (others, _) = venue.tickets(&app, &venue.products[0], 1, true).await;

    // The holder's ticket opens the tutorial door through the add-on bought with it.
    let admitted = scan(&door, json!({ "secret": holder, "listIds": [room] })).await;
    assert_eq!(outcome(&admitted), accepted(), "{admitted}");
    assert_eq!(
        admitted["data"]["redeemTicket"]["ticket"]["productName"],
        "Rust tutorial"
    );
    assert_eq!(
        admitted["data"]["redeemTicket"]["checkin"]["gate"],
        "Room 2"
    );
    let again = scan(&door, json!({ "secret": holder, "listIds": [room] })).await;
    assert_eq!(outcome(&again), rejected("ALREADY_REDEEMED"), "{again}");
    // A holder without the add-on is refused for the product.
    let refused = scan(&door, json!({ "secret": others[0], "listIds": [room] })).await;
    assert_eq!(outcome(&refused), rejected("PRODUCT"), "{refused}");
    let figures = status(&venue.shop.admin, &venue, &room).await;
    assert_eq!(
        figures["products"],
        json!([{ "productId": tutorial, "positions": 1, "checkedIn": 1, "inside": 1 }]),
        "{figures}"
    );
}

#[tokio::test]
async fn an_order_line_is_redeemed_at_most_its_quantity_and_the_last_unit_once() {
    let app = Arc::new(spawn_app().await);
    let venue = Venue::open(&app, "meals", &["Seat"]).await;
    let meal = product_of_kind(&venue, "Lunch", "MERCHANDISE").await;
    let counter = venue
        .list(
            json!({ "name": "Lunch counter", "productIds": [meal], "allowEntryAfterExit": false }),
        )
        .await;
    let badge = paid_order(&app, &venue, &[(&venue.products[0], 1), (&meal, 3)]).await;
    let (_, left) = venue.scanner(&app, "Counter A").await;
    let (_, right) = venue.scanner(&app, "Counter B").await;
    let redeem = json!({ "secret": badge, "listIds": [counter] });

    let first = scan(&left, redeem.clone()).await;
    assert_eq!(outcome(&first), accepted(), "{first}");
    assert_eq!(first["data"]["redeemTicket"]["remaining"], 2, "{first}");
    let second = scan(&right, redeem.clone()).await;
    assert_eq!(second["data"]["redeemTicket"]["remaining"], 1, "{second}");

    // Six scans race for the last unit: one gets it.
    let counters = Arc::new([left, right]);
    let racing = (0..6).map(|i| {
        let (counters, redeem) = (Arc::clone(&counters), redeem.clone());
        tokio::spawn(async move { scan(&counters[i % 2], redeem).await })
    });
    let mut won = 0;
    for handle in racing {
        let body = handle.await.expect("the scan finishes");
        match outcome(&body) {
            r if r == accepted() => won += 1,
            r => assert_eq!(r, rejected("ALREADY_REDEEMED"), "{body}"),
        }
        assert_eq!(body["data"]["redeemTicket"]["remaining"], 0, "{body}");
    }
    assert_eq!(won, 1, "the last unit is handed out once");
    let figures = status(&venue.shop.admin, &venue, &counter).await;
    assert_eq!(figures["checkedIn"], 3, "{figures}");
}

/// A door check asks its questions about the unit it is about to hand out:
/// once the first meal of an order line was answered for and taken, the
/// second is asked about again, and each keeps its own answer.
#[tokio::test]
async fn a_door_check_asks_about_the_unit_it_hands_out() {
    let app = spawn_app().await;
    let venue = Venue::open(&app, "meal-questions", &["Seat"]).await;
    let meal = product_of_kind(&venue, "Lunch", "MERCHANDISE").await;
    let course = crate::checkin_questions::question(
        &venue,
        json!({ "question": "Main course", "type": "STRING", "required": true, "askDuringCheckin": true, "productIds": [meal] }),
    )
    .await;
    let counter = venue
        .list(
            json!({ "name": "Lunch counter", "productIds": [meal], "allowEntryAfterExit": false }),
        )
        .await;
    let badge = paid_order(&app, &venue, &[(&venue.products[0], 1), (&meal, 2)]).await;
    let (_, till) = venue.scanner(&app, "Counter").await;
    let bare = json!({ "secret": badge, "listIds": [counter] });
    let answered = |answer: &str| {
        json!({ "secret": badge, "listIds": [counter], "answers": [
            { "questionId": course, "answer": answer },
        ] })
    };

    let first = scan(&till, bare.clone()).await;
    assert_eq!(outcome(&first).0, "CheckinNeedsAnswers", "{first}");
    let first = scan(&till, answered("Risotto")).await;
    assert_eq!(outcome(&first), accepted(), "{first}");
    assert_eq!(first["data"]["redeemTicket"]["remaining"], 1, "{first}");

    // The first meal's answer does not stand for the second one.
    let second = scan(&till, bare).await;
    assert_eq!(outcome(&second).0, "CheckinNeedsAnswers", "{second}");
    assert_eq!(
        second["data"]["redeemTicket"]["questions"],
        json!(["Main course"]),
        "{second}"
    );
    let second = scan(&till, answered("Curry")).await;
    assert_eq!(outcome(&second), accepted(), "{second}");
    assert_eq!(second["data"]["redeemTicket"]["remaining"], 0, "{second}");

    use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
    use voltgate::entities::question_answer;
    let mut stored: Vec<String> = question_answer::Entity::find()
        .filter(question_answer::Column::QuestionId.eq(decode_id(&course)))
        .all(&app.db)
        .await
        .expect("answers")
        .into_iter()
        .map(|a| a.answer)
        .collect();
    stored.sort();
    assert_eq!(stored, ["Curry", "Risotto"], "one answer per meal");
}

const DOWNLOAD: &str = "query($l: ID!, $since: String) { checkinDownload(listId: $l, since: $since) { document signature publicKey keyId } }";

const UPLOAD: &str = "mutation($input: UploadCheckinsInput!) { uploadCheckins(input: $input) { results { nonce result {
    __typename
    ... on CheckinAccepted { checkin { id type forced datetime } }
    ... on CheckinRejected { reason checkin { id } }
} } } }";

pub(crate) fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Verifies a download with nothing but the public key, as a scanner does, and parses it.
pub(crate) fn verified(public_key: &str, download: &Value) -> Value {
    use base64::Engine as _;
    use ed25519_dalek::Verifier as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let key: [u8; 32] = engine
        .decode(public_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .expect("a 32-byte key");
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key).expect("a public key");
    let signature: [u8; 64] = engine
        .decode(download["signature"].as_str().unwrap_or_default())
        .ok()
        .and_then(|b| b.try_into().ok())
        .expect("a 64-byte signature");
    let document = download["document"].as_str().unwrap_or_default();
    key.verify(
        document.as_bytes(),
        &ed25519_dalek::Signature::from_bytes(&signature),
    )
    .expect("the download is signed by the key");
    let tampered = document.replacen("\"v\":1", "\"v\":2", 1);
    assert!(
        key.verify(
            tampered.as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&signature)
        )
        .is_err(),
        "a changed document does not verify"
    );
    serde_json::from_str(document).expect("a JSON document")
}

#[tokio::test]
async fn offline_scanners_verify_downloads_follow_deltas_and_upload_their_scans() {
    let app = spawn_app().await;
    let venue = Venue::open(&app, "offline", &["Seat"]).await;
    let list = venue.list(json!({})).await;
    let (kept, _) = venue.tickets(&app, &venue.products[0], 2, true).await;
    let (dropped, dropped_order) = venue.tickets(&app, &venue.products[0], 1, true).await;
    let issued = venue
        .shop
        .admin
        .gql(
            "mutation($e: ID!) { issueScanner(input: { eventId: $e, name: \"Handheld\", gate: \"Field\" }) { credential } }",
            json!({ "e": venue.shop.event }),
        )
        .await;
    let credential = issued["data"]["issueScanner"]["credential"]
        .as_str()
        .unwrap_or_default();
    let started = app
        .graphql(
            "mutation($c: String!) { scannerSession(input: { credential: $c }) { accessToken signingKey signingKeyId } }",
            json!({ "c": credential }),
        )
        .await;
    let session = &started["data"]["scannerSession"];
    let public_key = session["signingKey"]
        .as_str()
        .unwrap_or_else(|| panic!("a key: {started}"));
    let door = TestUser::bearer(&app, session["accessToken"].as_str().unwrap_or_default());

    // The complete download: every valid ticket by hash, never by its code.
    let body = door.gql(DOWNLOAD, json!({ "l": list })).await;
    let download = &body["data"]["checkinDownload"];
    assert_eq!(download["keyId"], session["signingKeyId"], "{body}");
    let document = verified(public_key, download);
    assert_eq!(document["complete"], true);
    let hashes: Vec<String> = document["tickets"]
        .as_array()
        .unwrap_or_else(|| panic!("tickets: {document}"))
        .iter()
        .map(|t| t["secret_hash"].as_str().unwrap_or_default().to_owned())
        .collect();
    for secret in kept.iter().chain(&dropped) {
        assert!(
            hashes.contains(&sha256_hex(secret)),
            "{secret} in {hashes:?}"
        );
        assert!(
            !download["document"]
                .as_str()
                .unwrap_or_default()
                .contains(secret.as_str())
        );
    }
    let cursor = document["cursor"].as_str().unwrap_or_default().to_owned();

    // A cancellation: the next delta revokes its ticket.
    let canceled = venue
        .shop
        .admin
        .gql(
            "mutation($id: ID!) { cancelOrder(input: { orderId: $id }) { order { status } } }",
            json!({ "id": dropped_order }),
        )
        .await;
    assert_eq!(
        canceled["data"]["cancelOrder"]["order"]["status"], "CANCELED",
        "{canceled}"
    );
    let body = door
        .gql(DOWNLOAD, json!({ "l": list, "since": cursor }))
        .await;
    let delta = verified(public_key, &body["data"]["checkinDownload"]);
    assert_eq!(delta["complete"], false, "{delta}");
    assert_eq!(delta["since"], json!(cursor));
    assert!(
        delta["revoked"]
            .as_array()
            .is_some_and(|r| r.contains(&json!(sha256_hex(&dropped[0])))),
        "{delta}"
    );
    assert!(
        !delta["tickets"]
            .to_string()
            .contains(&sha256_hex(&dropped[0]))
    );
    let bad = door
        .gql(DOWNLOAD, json!({ "l": list, "since": "yesterday" }))
        .await;
    assert_eq!(bad["errors"][0]["extensions"]["field"], "since", "{bad}");

    // The scans made meanwhile, uploaded twice: one record each, one answer each.
    let at = |minutes: i64| (chrono::Utc::now() - chrono::TimeDelta::minutes(minutes)).to_rfc3339();
    let scans = json!({ "input": { "listIds": [list], "scans": [
        { "secret": kept[0], "scannedAt": at(30), "nonce": "field-1", "force": false },
        { "secret": kept[0], "type": "EXIT", "scannedAt": at(20), "nonce": "field-2" },
        { "secret": dropped[0], "scannedAt": at(10), "nonce": "field-3" },
        { "secret": "DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD", "scannedAt": at(5), "nonce": "field-4" },
    ] } });
    let first = door.gql(UPLOAD, scans.clone()).await;
    let results = first["data"]["uploadCheckins"]["results"].clone();
    let kinds: Vec<(Value, Value)> = results
        .as_array()
        .unwrap_or_else(|| panic!("results: {first}"))
        .iter()
        .map(|r| (r["nonce"].clone(), r["result"]["__typename"].clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (json!("field-1"), json!("CheckinAccepted")),
            (json!("field-2"), json!("CheckinAccepted")),
            (json!("field-3"), json!("CheckinAccepted")),
            (json!("field-4"), json!("CheckinRejected")),
        ],
        "{first}"
    );
    assert_eq!(results[0]["result"]["checkin"]["forced"], false);
    assert_eq!(
        results[2]["result"]["checkin"]["forced"], true,
        "the canceled ticket's scan happened"
    );
    assert_eq!(results[3]["result"]["reason"], "INVALID");
    let again = door.gql(UPLOAD, scans).await;
    assert_eq!(
        again["data"]["uploadCheckins"]["results"], results,
        "a retried upload answers alike"
    );
    let recorded = history(&venue.shop.admin, &venue, &list).await;
    assert_eq!(recorded["totalCount"], 4, "{recorded}");
    // The first ticket came and left; the canceled one's forced entry counts.
    let figures = status(&venue.shop.admin, &venue, &list).await;
    assert_eq!(
        (figures["checkedIn"].clone(), figures["inside"].clone()),
        (json!(2), json!(1)),
        "{figures}"
    );

    let missing = door
        .gql(
            UPLOAD,
            json!({ "input": { "listIds": [list], "scans": [{ "secret": kept[1], "scannedAt": at(1), "nonce": " " }] } }),
        )
        .await;
    assert_eq!(
        missing["errors"][0]["extensions"]["field"], "scans",
        "{missing}"
    );
}

#[tokio::test]
async fn the_demo_adds_a_list_and_a_working_scanner_to_the_first_event_once() {
    let app = spawn_app().await;
    assert!(
        voltgate::checkin::demo::seed(&app.db)
            .await
            .expect("the demo runs")
            .is_none(),
        "nothing without an event"
    );
    let venue = Venue::open(&app, "demo", &["Seat"]).await;
    let door = voltgate::checkin::demo::seed(&app.db)
        .await
        .expect("the demo runs")
        .expect("a list and a scanner");
    let started = session(&app, &door.credential).await;
    let token = started["data"]["scannerSession"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("a session: {started}"));
    let scanner = TestUser::bearer(&app, token);
    let lists = scanner
        .gql(
            "query($e: ID!) { checkinLists(eventId: $e) { name allProducts } }",
            json!({ "e": venue.shop.event }),
        )
        .await;
    assert_eq!(
        lists["data"]["checkinLists"],
        json!([{ "name": "Main entrance", "allProducts": true }]),
        "{lists}"
    );
    assert!(
        voltgate::checkin::demo::seed(&app.db)
            .await
            .expect("the demo runs")
            .is_none(),
        "a second run adds nothing"
    );
}

const BUY: &str = "mutation($input: CheckoutInput!) { checkout(input: $input) { secret order { id code positions { id secret } } } }";
const BLOCK: &str = "mutation($id: ID!) { blockTicket(input: { positionId: $id }) { ticket { id blocked valid } } }";
const UNBLOCK: &str =
    "mutation($id: ID!) { unblockTicket(input: { positionId: $id }) { ticket { id blocked } } }";
const REGENERATE: &str = "mutation($id: ID!) { regenerateTicketSecret(input: { positionId: $id }) { ticket { id secret } } }";

/// A paid order of `quantity` tickets of `product`: its code, its secret and
/// the (position id, ticket secret) of each ticket.
async fn bought(
    app: &TestApp,
    venue: &Venue,
    product: &str,
    quantity: i32,
) -> (String, String, Vec<(String, String)>) {
    let added = add_to_cart(app, product, quantity, None).await;
    let cart = added["data"]["addToCart"]["cart"]["id"].clone();
    let placed = app
        .graphql(
            BUY,
            json!({ "input": { "cartId": cart, "email": "holder@example.com" } }),
        )
        .await;
    let order = &placed["data"]["checkout"]["order"];
    let paid = venue
        .shop
        .admin
        .gql(
            "mutation($id: ID!) { markOrderPaid(input: { orderId: $id }) { order { status } } }",
            json!({ "id": order["id"] }),
        )
        .await;
    assert_eq!(
        paid["data"]["markOrderPaid"]["order"]["status"], "PAID",
        "{paid}"
    );
    let tickets = order["positions"]
        .as_array()
        .unwrap_or_else(|| panic!("positions: {placed}"))
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap_or_default().to_owned(),
                p["secret"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    (
        order["code"].as_str().unwrap_or_default().to_owned(),
        placed["data"]["checkout"]["secret"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        tickets,
    )
}

/// A download's document, parsed (its signature is checked elsewhere).
async fn document(user: &TestUser, list: &str, since: Option<&str>) -> Value {
    let body = user
        .gql(DOWNLOAD, json!({ "l": list, "since": since }))
        .await;
    serde_json::from_str(
        body["data"]["checkinDownload"]["document"]
            .as_str()
            .unwrap_or_else(|| panic!("a download: {body}")),
    )
    .expect("a JSON document")
}

fn has_hash(values: &Value, hash: &str) -> bool {
    values.to_string().contains(hash)
}

#[tokio::test]
async fn a_ticket_shows_its_secret_as_a_qr_code_to_whoever_may_read_it() {
    let app = spawn_app().await;
    let venue = Venue::open(&app, "qr", &["Seat"]).await;
    let (code, order_secret, tickets) = bought(&app, &venue, &venue.products[0], 1).await;
    let secret = &tickets[0].1;
    let query = "query($e: ID!, $c: String!, $s: String!) { order(eventId: $e, code: $c, secret: $s) { positions { secret svg: qrCode png: qrCode(format: PNG) } } }";
    let body = app
        .graphql(
            query,
            json!({ "e": venue.shop.event, "c": code, "s": order_secret }),
        )
        .await;
    let position = &body["data"]["order"]["positions"][0];
    assert_eq!(position["secret"], json!(secret), "{body}");
    assert_eq!(
        position["svg"],
        json!(voltgate::qr::svg(secret).expect("renders")),
        "the SVG is the code of the ticket's secret"
    );
    let png = position["png"]
        .as_str()
        .and_then(|p| p.strip_prefix("data:image/png;base64,"))
        .unwrap_or_else(|| panic!("a PNG data URL: {body}"));
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(png)
        .expect("base64");
    assert_eq!(bytes, voltgate::qr::png(secret).expect("renders"));

    // Whoever cannot read the order sees no code.
    let refused = app
        .graphql(
            query,
            json!({ "e": venue.shop.event, "c": code, "s": "not-the-order-secret" }),
        )
        .await;
    assert!(refused["data"]["order"].is_null(), "{refused}");
    assert!(!refused.to_string().contains("<svg"), "{refused}");
}

#[tokio::test]
async fn blocked_tickets_and_revoked_secrets_are_refused_and_offline_deltas_say_so() {
    let app = spawn_app().await;
    let venue = Venue::open(&app, "blocks", &["Seat"]).await;
    let list = venue.list(json!({})).await;
    let (_, door) = venue.scanner(&app, "Gate").await;
    let (_, _, tickets) = bought(&app, &venue, &venue.products[0], 2).await;
    let ((blocked_id, blocked_secret), (reissued_id, old_secret)) =
        (tickets[0].clone(), tickets[1].clone());
    let cursor = document(&door, &list, None).await["cursor"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let admin = &venue.shop.admin;

    // Blocking needs CHANGE_ORDERS: a scanner may not.
    let refused = door.gql(BLOCK, json!({ "id": blocked_id })).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );
    let body = admin.gql(BLOCK, json!({ "id": blocked_id })).await;
    assert_eq!(
        body["data"]["blockTicket"]["ticket"]["blocked"], true,
        "{body}"
    );
    let scanned = scan(
        &door,
        json!({ "secret": blocked_secret, "listIds": [list] }),
    )
    .await;
    assert_eq!(outcome(&scanned), rejected("BLOCKED"), "{scanned}");

    // A new secret: the old one is revoked, the new one admits.
    let body = admin.gql(REGENERATE, json!({ "id": reissued_id })).await;
    let new_secret = body["data"]["regenerateTicketSecret"]["ticket"]["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("a new secret: {body}"))
        .to_owned();
    assert_ne!(new_secret, old_secret);
    let scanned = scan(&door, json!({ "secret": old_secret, "listIds": [list] })).await;
    assert_eq!(outcome(&scanned), rejected("REVOKED"), "{scanned}");
    assert!(
        scanned["data"]["redeemTicket"]["ticket"]["orderCode"].is_string(),
        "{scanned}"
    );
    let scanned = scan(&door, json!({ "secret": new_secret, "listIds": [list] })).await;
    assert_eq!(outcome(&scanned), accepted(), "{scanned}");

    // The delta revokes the blocked ticket and the old secret, and lists the new one.
    let delta = document(&door, &list, Some(&cursor)).await;
    assert_eq!(delta["complete"], false, "{delta}");
    assert!(
        has_hash(&delta["revoked"], &sha256_hex(&blocked_secret)),
        "{delta}"
    );
    assert!(
        has_hash(&delta["revoked"], &sha256_hex(&old_secret)),
        "{delta}"
    );
    assert!(
        has_hash(&delta["tickets"], &sha256_hex(&new_secret)),
        "{delta}"
    );
    assert!(!has_hash(&delta["tickets"], &sha256_hex(&blocked_secret)));
    // A complete download knows the revoked secret too, so a scanner tells it apart.
    let complete = document(&door, &list, None).await;
    assert!(has_hash(&complete["revoked"], &sha256_hex(&old_secret)));

    // Unblocked, the ticket enters; the next delta lists it again.
    let cursor = delta["cursor"].as_str().unwrap_or_default().to_owned();
    let body = admin.gql(UNBLOCK, json!({ "id": blocked_id })).await;
    assert_eq!(
        body["data"]["unblockTicket"]["ticket"]["blocked"], false,
        "{body}"
    );
    let scanned = scan(
        &door,
        json!({ "secret": blocked_secret, "listIds": [list] }),
    )
    .await;
    assert_eq!(outcome(&scanned), accepted(), "{scanned}");
    let delta = document(&door, &list, Some(&cursor)).await;
    assert!(
        has_hash(&delta["tickets"], &sha256_hex(&blocked_secret)),
        "{delta}"
    );
}

#[tokio::test]
async fn offline_downloads_admit_holders_through_units_of_their_order_as_the_door_does() {
    let app = spawn_app().await;
    let venue = Venue::open(&app, "offline-units", &["Seat"]).await;
    let tutorial = product_of_kind(&venue, "Rust tutorial", "ADDON").await;
    let room = venue
        .list(json!({ "name": "Tutorial room", "productIds": [tutorial], "allowEntryAfterExit": false }))
        .await;
    let (_, door) = venue.scanner(&app, "Room 2").await;
    let holder = paid_order(&app, &venue, &[(&venue.products[0], 1), (&tutorial, 1)]).await;
    let (others, _) = venue.tickets(&app, &venue.products[0], 1, true).await;

    let download = document(&door, &room, None).await;
    let entry = download["tickets"]
        .as_array()
        .and_then(|t| {
            t.iter()
                .find(|e| e["secret_hash"] == json!(sha256_hex(&holder)))
        })
        .cloned()
        .unwrap_or_else(|| panic!("the holder's ticket in {download}"));
    assert_eq!(entry["product_name"], "Seat", "{entry}");
    assert_eq!(
        entry["units"][0]["product_name"], "Rust tutorial",
        "{entry}"
    );
    assert_eq!(entry["units"][0]["entries"], 0, "{entry}");
    assert!(
        !has_hash(&download["tickets"], &sha256_hex(&others[0])),
        "a holder without the add-on is not listed: {download}"
    );

    let admitted = scan(&door, json!({ "secret": holder, "listIds": [room] })).await;
    assert_eq!(outcome(&admitted), accepted(), "{admitted}");
    let download = document(&door, &room, None).await;
    let entry = download["tickets"]
        .as_array()
        .and_then(|t| {
            t.iter()
                .find(|e| e["secret_hash"] == json!(sha256_hex(&holder)))
        })
        .cloned()
        .unwrap_or_default();
    assert_eq!(entry["units"][0]["entries"], 1, "{download}");
}

#[tokio::test]
async fn the_demo_sells_tickets_that_the_demo_scanner_admits_and_runs_once() {
    let app = spawn_app().await;
    let sales = voltgate::ticketing::demo::seed(&app.db)
        .await
        .expect("the demo runs")
        .expect("demo ticketing data");
    assert_eq!(sales.orders, 4);
    assert!(sales.ticket_secrets.len() >= 5, "{sales:?}");
    assert_eq!(sales.voucher_codes.len(), 3);
    let door = voltgate::checkin::demo::seed(&app.db)
        .await
        .expect("the demo runs")
        .expect("a list and a scanner");
    assert_eq!(door.event_name, sales.event_name);
    assert!(
        voltgate::ticketing::demo::seed(&app.db)
            .await
            .expect("the demo runs")
            .is_none(),
        "a second run adds nothing"
    );

    let started = session(&app, &door.credential).await;
    let scanner = TestUser::bearer(
        &app,
        started["data"]["scannerSession"]["accessToken"]
            .as_str()
            .unwrap_or_else(|| panic!("a session: {started}")),
    );
    let lists = scanner
        .gql(
            "query($e: ID!) { checkinLists(eventId: $e) { id } }",
            json!({ "e": voltgate::graphql::ids::encode(voltgate::graphql::ids::Kind::EVENT, sales.event_id) }),
        )
        .await;
    let list = lists["data"]["checkinLists"][0]["id"].clone();
    let scanned = scan(
        &scanner,
        json!({ "secret": sales.ticket_secrets[0], "listIds": [list] }),
    )
    .await;
    assert_eq!(outcome(&scanned), accepted(), "{scanned}");
    let again = scan(
        &scanner,
        json!({ "secret": sales.ticket_secrets[0], "listIds": [list] }),
    )
    .await;
    assert_eq!(outcome(&again), rejected("ALREADY_REDEEMED"), "{again}");

    // The door staff account works the doors through its team.
    let signed_in = app
        .graphql(
            "mutation($l: String!, $p: String!) { login(input: { login: $l, password: $p }) { accessToken } }",
            json!({ "l": sales.door_staff.username, "p": sales.door_staff.password }),
        )
        .await;
    let staff = TestUser::bearer(
        &app,
        signed_in["data"]["login"]["accessToken"]
            .as_str()
            .unwrap_or_else(|| panic!("signed in: {signed_in}")),
    );
    let seen = staff
        .gql(
            "query($e: ID!) { checkinLists(eventId: $e) { name } }",
            json!({ "e": voltgate::graphql::ids::encode(voltgate::graphql::ids::Kind::EVENT, sales.event_id) }),
        )
        .await;
    assert_eq!(
        seen["data"]["checkinLists"],
        json!([{ "name": "Main entrance" }]),
        "{seen}"
    );
}

/// Every scan of `tickets` at once, spread over `doors`; their outcomes.
async fn scan_all(
    doors: &Arc<Vec<TestUser>>,
    tickets: &[String],
    list: &str,
    extra: Value,
) -> Vec<(String, String)> {
    let scans = tickets.iter().enumerate().map(|(i, ticket)| {
        let mut input = json!({ "secret": ticket, "listIds": [list] });
        if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
            input.extend(extra.clone());
        }
        let doors = Arc::clone(doors);
        tokio::spawn(async move { outcome(&scan(&doors[i % doors.len()], input).await) })
    });
    let mut outcomes = Vec::new();
    for handle in scans {
        outcomes.push(handle.await.expect("the scan finishes"));
    }
    outcomes
}

#[tokio::test]
async fn the_figures_follow_concurrent_entries_exits_and_forced_entries_exactly() {
    let app = Arc::new(spawn_app().await);
    let venue = Venue::open(&app, "figures", &["Seat"]).await;
    let list = venue.list(json!({ "allowEntryAfterExit": true })).await;
    let (tickets, _) = venue.tickets(&app, &venue.products[0], 40, true).await;
    let mut doors = Vec::new();
    for gate in ["A", "B", "C", "D"] {
        doors.push(venue.scanner(&app, gate).await.1);
    }
    let doors = Arc::new(doors);
    let figures = |checked_in: i64, inside: i64| json!([checked_in, inside]);
    let read = || async {
        let status = status(&venue.shop.admin, &venue, &list).await;
        json!([status["checkedIn"], status["inside"]])
    };

    // Four doors admit forty holders at once: the scans share batches.
    let entered = scan_all(&doors, &tickets, &list, json!({})).await;
    assert!(entered.iter().all(|o| *o == accepted()), "{entered:?}");
    assert_eq!(read().await, figures(40, 40));

    // Ten leave at once, and one of them leaves twice.
    let left = scan_all(&doors, &tickets[..10], &list, json!({ "type": "EXIT" })).await;
    assert!(left.iter().all(|o| *o == accepted()), "{left:?}");
    let again = scan(
        &doors[0],
        json!({ "secret": tickets[0], "listIds": [list], "type": "EXIT" }),
    )
    .await;
    assert_eq!(outcome(&again), accepted());
    assert_eq!(read().await, figures(40, 30));

    // One comes back; a forced entry of someone inside changes no figure;
    // a refused entry neither.
    let back = scan(
        &doors[1],
        json!({ "secret": tickets[0], "listIds": [list] }),
    )
    .await;
    assert_eq!(outcome(&back), accepted());
    let forced = scan(
        &doors[2],
        json!({ "secret": tickets[20], "listIds": [list], "force": true }),
    )
    .await;
    assert_eq!(outcome(&forced), accepted());
    let refused = scan(
        &doors[3],
        json!({ "secret": tickets[21], "listIds": [list] }),
    )
    .await;
    assert_eq!(outcome(&refused), rejected("ALREADY_REDEEMED"));
    assert_eq!(read().await, figures(40, 31));
}

#[tokio::test]
async fn a_changed_list_or_a_revoked_scanner_applies_to_the_very_next_scan() {
    let app = spawn_app().await;
    let venue = Venue::open(&app, "fresh", &["Seat"]).await;
    let list = venue.list(json!({ "allowEntryAfterExit": false })).await;
    let (tickets, _) = venue.tickets(&app, &venue.products[0], 2, true).await;
    let (scanner_id, door) = venue.scanner(&app, "North").await;
    let enter = |ticket: &str| json!({ "secret": ticket, "listIds": [list] });

    assert_eq!(outcome(&scan(&door, enter(&tickets[0])).await), accepted());
    assert_eq!(
        outcome(&scan(&door, enter(&tickets[0])).await),
        rejected("ALREADY_REDEEMED")
    );
    let updated = venue
        .shop
        .admin
        .gql(
            "mutation($input: UpdateCheckinListInput!) { updateCheckinList(input: $input) { list { allowMultipleEntries } } }",
            json!({ "input": { "listId": list, "allowMultipleEntries": true } }),
        )
        .await;
    assert_eq!(
        updated["data"]["updateCheckinList"]["list"]["allowMultipleEntries"], true,
        "{updated}"
    );
    assert_eq!(outcome(&scan(&door, enter(&tickets[0])).await), accepted());

    let revoked = venue
        .shop
        .admin
        .gql(
            "mutation($id: ID!) { revokeScanner(input: { scannerId: $id }) { scanner { active } } }",
            json!({ "id": scanner_id }),
        )
        .await;
    assert_eq!(
        revoked["data"]["revokeScanner"]["scanner"]["active"], false,
        "{revoked}"
    );
    let refused = scan(&door, enter(&tickets[1])).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{refused}"
    );
}
