//! Event meta properties (pretix `EventMetaProperty`, `EventMetaValue`,
//! `SubEventMetaValue`): a date's value wins over its event's, which wins
//! over the property's default; names are unique per organizer; a property
//! of another organizer is refused; deleting a property deletes its values;
//! every change is in the audit log.

use sea_orm::{ColumnTrait as _, EntityTrait as _, PaginatorTrait as _, QueryFilter as _};
use serde_json::{Value, json};

use voltgate::entities::{event_meta_value, sub_event_meta_value, ticketing_log};

use crate::client::TestUser;
use crate::helpers::{TestApp, global_id, spawn_app};
use crate::ticketing::{Shop, as_token, code, person};

const CREATE: &str = "mutation($input: CreateEventMetaPropertyInput!) { createEventMetaProperty(input: $input) { property { id name defaultValue } } }";
const SET_EVENT: &str = "mutation($e: ID!, $p: ID!, $v: String!) { setEventMetaValue(input: { eventId: $e, propertyId: $p, value: $v }) { event { meta { name value source } } } }";
const SET_DATE: &str = "mutation($d: ID!, $p: ID!, $v: String!) { setSubEventMetaValue(input: { subEventId: $d, propertyId: $p, value: $v }) { subEvent { meta { name value source } } } }";
const META: &str = "query($o: String!) { event(organizerSlug: $o, slug: \"finals\") { meta { name value source } subEvents { id meta { name value source } } } }";

async fn create(user: &TestUser, organizer: &str, name: &str, default: &str) -> Value {
    user.gql(
        CREATE,
        json!({ "input": { "organizerId": organizer, "name": name, "defaultValue": default } }),
    )
    .await
}

fn id_of(body: &Value) -> String {
    body["data"]["createEventMetaProperty"]["property"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a property: {body}"))
        .to_owned()
}

async fn sub_event(shop: &Shop) -> String {
    let body = shop
        .admin
        .gql(
            "mutation($e: ID!) { createSubEvent(input: { eventId: $e, name: \"Day 1\", dateFrom: \"2027-06-01T18:00:00Z\" }) { subEvent { id } } }",
            json!({ "e": shop.event }),
        )
        .await;
    body["data"]["createSubEvent"]["subEvent"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a date: {body}"))
        .to_owned()
}

/// `(name, value, source)` of each entry of a `meta` list.
fn entries(meta: &Value) -> Vec<(String, String, String)> {
    meta.as_array()
        .unwrap_or_else(|| panic!("a meta list: {meta}"))
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or_default().to_owned(),
                e["value"].as_str().unwrap_or_default().to_owned(),
                e["source"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn entry(name: &str, value: &str, source: &str) -> (String, String, String) {
    (name.to_owned(), value.to_owned(), source.to_owned())
}

async fn log_count(app: &TestApp, action: &str) -> u64 {
    ticketing_log::Entity::find()
        .filter(ticketing_log::Column::ActionType.eq(action))
        .count(&app.db)
        .await
        .unwrap_or_default()
}

#[tokio::test]
async fn a_date_value_wins_over_the_event_value_which_wins_over_the_default() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "meta").await;
    let date = sub_event(&shop).await;
    let genre = id_of(&create(&shop.admin, &shop.organizer, "genre", "rock").await);
    let hall = id_of(&create(&shop.admin, &shop.organizer, "hall", "main").await);
    let city = id_of(&create(&shop.admin, &shop.organizer, "city", "").await);

    let body = app.graphql(META, json!({ "o": "meta" })).await;
    let event = &body["data"]["event"];
    assert_eq!(
        entries(&event["meta"]),
        vec![
            entry("city", "", "DEFAULT"),
            entry("genre", "rock", "DEFAULT"),
            entry("hall", "main", "DEFAULT"),
        ],
        "{body}"
    );

    let set = shop
        .admin
        .gql(
            SET_EVENT,
            json!({ "e": shop.event, "p": genre, "v": "jazz" }),
        )
        .await;
    assert!(set["errors"].is_null(), "{set}");
    let set = shop
        .admin
        .gql(
            SET_EVENT,
            json!({ "e": shop.event, "p": hall, "v": "east" }),
        )
        .await;
    assert!(set["errors"].is_null(), "{set}");
    // Setting again changes the one value.
    let set = shop
        .admin
        .gql(
            SET_EVENT,
            json!({ "e": shop.event, "p": hall, "v": "west" }),
        )
        .await;
    assert!(set["errors"].is_null(), "{set}");
    let set = shop
        .admin
        .gql(SET_DATE, json!({ "d": date, "p": genre, "v": "blues" }))
        .await;
    assert_eq!(
        entries(&set["data"]["setSubEventMetaValue"]["subEvent"]["meta"]),
        vec![
            entry("city", "", "DEFAULT"),
            entry("genre", "blues", "SUB_EVENT"),
            entry("hall", "west", "EVENT"),
        ],
        "{set}"
    );
    let set = shop
        .admin
        .gql(SET_DATE, json!({ "d": date, "p": city, "v": "Lyon" }))
        .await;
    assert!(set["errors"].is_null(), "{set}");

    let body = app.graphql(META, json!({ "o": "meta" })).await;
    let event = &body["data"]["event"];
    assert_eq!(
        entries(&event["meta"]),
        vec![
            entry("city", "", "DEFAULT"),
            entry("genre", "jazz", "EVENT"),
            entry("hall", "west", "EVENT"),
        ],
        "{body}"
    );
    assert_eq!(
        entries(&event["subEvents"][0]["meta"]),
        vec![
            entry("city", "Lyon", "SUB_EVENT"),
            entry("genre", "blues", "SUB_EVENT"),
            entry("hall", "west", "EVENT"),
        ],
        "{body}"
    );

    // Clearing the date's value falls back to the event's; clearing the
    // event's to the default, which a property change then changes.
    let cleared = shop
        .admin
        .gql(
            "mutation($d: ID!, $p: ID!) { clearSubEventMetaValue(input: { subEventId: $d, propertyId: $p }) { subEvent { meta { name value source } } } }",
            json!({ "d": date, "p": genre }),
        )
        .await;
    assert_eq!(
        entries(&cleared["data"]["clearSubEventMetaValue"]["subEvent"]["meta"])[1],
        entry("genre", "jazz", "EVENT"),
        "{cleared}"
    );
    let cleared = shop
        .admin
        .gql(
            "mutation($e: ID!, $p: ID!) { clearEventMetaValue(input: { eventId: $e, propertyId: $p }) { event { id } } }",
            json!({ "e": shop.event, "p": genre }),
        )
        .await;
    assert!(cleared["errors"].is_null(), "{cleared}");
    let changed = shop
        .admin
        .gql(
            "mutation($p: ID!) { updateEventMetaProperty(input: { propertyId: $p, name: \"style\", defaultValue: \"pop\" }) { property { name defaultValue } } }",
            json!({ "p": genre }),
        )
        .await;
    assert_eq!(
        changed["data"]["updateEventMetaProperty"]["property"],
        json!({ "name": "style", "defaultValue": "pop" }),
        "{changed}"
    );
    let body = app.graphql(META, json!({ "o": "meta" })).await;
    assert_eq!(
        entries(&body["data"]["event"]["subEvents"][0]["meta"]),
        vec![
            entry("city", "Lyon", "SUB_EVENT"),
            entry("hall", "west", "EVENT"),
            entry("style", "pop", "DEFAULT"),
        ],
        "{body}"
    );

    assert_eq!(
        log_count(&app, "voltgate.event_meta_property.added").await,
        3
    );
    assert_eq!(
        log_count(&app, "voltgate.event_meta_property.changed").await,
        1
    );
    assert_eq!(log_count(&app, "voltgate.event.meta_value.set").await, 3);
    assert_eq!(
        log_count(&app, "voltgate.event.meta_value.cleared").await,
        1
    );
    assert_eq!(log_count(&app, "voltgate.subevent.meta_value.set").await, 2);
    assert_eq!(
        log_count(&app, "voltgate.subevent.meta_value.cleared").await,
        1
    );
}

#[tokio::test]
async fn names_and_values_are_checked_and_a_name_is_unique_per_organizer() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "meta").await;
    let other = Shop::open(&app, "other").await;
    let genre = id_of(&create(&shop.admin, &shop.organizer, "genre", "").await);

    let again = create(&shop.admin, &shop.organizer, "genre", "x").await;
    assert_eq!(code(&again), "CONFLICT", "{again}");
    // Another organizer may use the name.
    let theirs = id_of(&create(&other.admin, &other.organizer, "genre", "").await);
    // Renaming onto a taken name is a conflict too.
    let hall = id_of(&create(&shop.admin, &shop.organizer, "hall", "").await);
    let renamed = shop
        .admin
        .gql(
            "mutation($p: ID!) { updateEventMetaProperty(input: { propertyId: $p, name: \"genre\" }) { property { id } } }",
            json!({ "p": hall }),
        )
        .await;
    assert_eq!(code(&renamed), "CONFLICT", "{renamed}");

    for name in ["", "has space", "dash-ed", "é", &"n".repeat(51)] {
        let body = create(&shop.admin, &shop.organizer, name, "").await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{name:?}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], "name", "{body}");
    }
    let long = "v".repeat(2001);
    let body = create(&shop.admin, &shop.organizer, "long", &long).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["field"], "default",
        "{body}"
    );
    let body = shop
        .admin
        .gql(SET_EVENT, json!({ "e": shop.event, "p": genre, "v": long }))
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "value", "{body}");
    let ok = create(&shop.admin, &shop.organizer, "Max_50", &"v".repeat(2000)).await;
    assert!(ok["errors"].is_null(), "{ok}");

    // Another organizer's property is refused on this organizer's event and dates.
    let body = shop
        .admin
        .gql(SET_EVENT, json!({ "e": shop.event, "p": theirs, "v": "x" }))
        .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let date = sub_event(&shop).await;
    let body = shop
        .admin
        .gql(SET_DATE, json!({ "d": date, "p": theirs, "v": "x" }))
        .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    // Nor may the other organizer's team change this organizer's property.
    let body = other
        .admin
        .gql(
            "mutation($p: ID!) { deleteEventMetaProperty(input: { propertyId: $p }) { deletedPropertyId } }",
            json!({ "p": genre }),
        )
        .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
}

#[tokio::test]
async fn deleting_a_property_deletes_its_values() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "meta").await;
    let date = sub_event(&shop).await;
    let genre = id_of(&create(&shop.admin, &shop.organizer, "genre", "rock").await);
    let hall = id_of(&create(&shop.admin, &shop.organizer, "hall", "main").await);
    for p in [&genre, &hall] {
        let set = shop
            .admin
            .gql(SET_EVENT, json!({ "e": shop.event, "p": p, "v": "e" }))
            .await;
        assert!(set["errors"].is_null(), "{set}");
        let set = shop
            .admin
            .gql(SET_DATE, json!({ "d": date, "p": p, "v": "d" }))
            .await;
        assert!(set["errors"].is_null(), "{set}");
    }
    let deleted = shop
        .admin
        .gql(
            "mutation($p: ID!) { deleteEventMetaProperty(input: { propertyId: $p }) { deletedPropertyId } }",
            json!({ "p": genre }),
        )
        .await;
    assert_eq!(
        deleted["data"]["deleteEventMetaProperty"]["deletedPropertyId"], genre,
        "{deleted}"
    );
    let remaining_event = event_meta_value::Entity::find()
        .all(&app.db)
        .await
        .unwrap_or_default();
    let remaining_dates = sub_event_meta_value::Entity::find()
        .all(&app.db)
        .await
        .unwrap_or_default();
    assert_eq!(remaining_event.len(), 1);
    assert_eq!(remaining_dates.len(), 1);
    let body = app.graphql(META, json!({ "o": "meta" })).await;
    assert_eq!(
        entries(&body["data"]["event"]["meta"]),
        vec![entry("hall", "e", "EVENT")],
        "{body}"
    );
    assert_eq!(
        log_count(&app, "voltgate.event_meta_property.deleted").await,
        1
    );

    // Gone: staff are told so, others are refused.
    let again = shop
        .staff
        .gql(
            "mutation($p: ID!) { deleteEventMetaProperty(input: { propertyId: $p }) { deletedPropertyId } }",
            json!({ "p": genre }),
        )
        .await;
    assert_eq!(code(&again), "NOT_FOUND", "{again}");
    let body = shop
        .admin
        .gql(SET_EVENT, json!({ "e": shop.event, "p": genre, "v": "x" }))
        .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
}

#[tokio::test]
async fn only_teams_with_the_permission_define_properties_and_set_values() {
    let app = spawn_app().await;
    let shop = Shop::open(&app, "meta").await;
    let genre = id_of(&create(&shop.admin, &shop.organizer, "genre", "").await);
    let customer = person(&app, "carla").await;
    let member = person(&app, "mona").await;
    let settings = person(&app, "sam").await;

    // One team with the event permission only, one with the organizer settings.
    let mut secrets = Vec::new();
    for (user, permission) in [
        (&member, "CHANGE_EVENTS"),
        (&settings, "CHANGE_ORGANIZER_SETTINGS"),
    ] {
        let team = shop
            .admin
            .gql(
                "mutation($o: ID!, $p: TeamPermission!) { createTeam(input: { organizerId: $o, name: \"T\", allEvents: true, permissions: [$p] }) { team { id } } }",
                json!({ "o": shop.organizer, "p": permission }),
            )
            .await;
        let team = team["data"]["createTeam"]["team"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("a team: {team}"))
            .to_owned();
        let joined = shop
            .admin
            .gql(
                "mutation($t: ID!, $u: ID!) { addTeamMember(input: { teamId: $t, userId: $u }) { team { id } } }",
                json!({ "t": team, "u": global_id("User", user.id.unwrap_or_default()) }),
            )
            .await;
        assert!(joined["errors"].is_null(), "{joined}");
        let token = shop
            .admin
            .gql(
                "mutation($t: ID!) { createTeamApiToken(input: { teamId: $t, name: \"api\" }) { secret } }",
                json!({ "t": team }),
            )
            .await;
        secrets.push(
            token["data"]["createTeamApiToken"]["secret"]
                .as_str()
                .unwrap_or_else(|| panic!("a token: {token}"))
                .to_owned(),
        );
    }
    let input = |name: &str| json!({ "input": { "organizerId": shop.organizer, "name": name } });

    let body = app.graphql(CREATE, input("a")).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    let body = customer.gql(CREATE, input("b")).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    let body = member.gql(CREATE, input("c")).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    let body = settings.gql(CREATE, input("d")).await;
    assert!(body["errors"].is_null(), "{body}");
    let body = as_token(&app, &secrets[1], CREATE, input("e")).await;
    assert!(body["errors"].is_null(), "{body}");
    let body = as_token(&app, &secrets[0], CREATE, input("f")).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");

    let vars = json!({ "e": shop.event, "p": genre, "v": "x" });
    let body = app.graphql(SET_EVENT, vars.clone()).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    let body = customer.gql(SET_EVENT, vars.clone()).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    let body = settings.gql(SET_EVENT, vars.clone()).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    let body = member.gql(SET_EVENT, vars.clone()).await;
    assert!(body["errors"].is_null(), "{body}");
    let body = as_token(&app, &secrets[0], SET_EVENT, vars.clone()).await;
    assert!(body["errors"].is_null(), "{body}");
    let body = as_token(&app, &secrets[1], SET_EVENT, vars).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");

    // The log names who acted.
    let entries = ticketing_log::Entity::find()
        .filter(ticketing_log::Column::ActionType.eq("voltgate.event.meta_value.set"))
        .all(&app.db)
        .await
        .unwrap_or_default();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].user_id, member.id);
    assert!(entries[1].team_api_token_id.is_some());
}
