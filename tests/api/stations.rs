//! Station, cabinet and bay queries.

use serde_json::json;

use crate::helpers::{global_id, spawn_app};

const STATIONS: &str = "query Stations($first: Int, $after: String, $filter: StationFilterInput) {
  stations(first: $first, after: $after, filter: $filter) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { id name status
      cabinets { number mqttPrefix bays { id number status lockState device { status slotId } } } } }
  }
}";

#[tokio::test]
async fn stations_list_their_cabinets_bays_and_devices() {
    let app = spawn_app().await;
    app.seed(3, 2, 2).await;

    let body = app.graphql(STATIONS, json!({ "first": 2 })).await;
    let stations = &body["data"]["stations"];
    assert_eq!(stations["totalCount"], 3, "{body}");
    assert_eq!(stations["pageInfo"]["hasNextPage"], true);
    let first = &stations["edges"][0]["node"];
    assert_eq!(first["status"], "ACTIVE");
    assert_eq!(first["cabinets"].as_array().map(Vec::len), Some(2));
    let cabinet = &first["cabinets"][0];
    assert_eq!(cabinet["mqttPrefix"], format!("{}/1/1", app.topic_root));
    assert_eq!(cabinet["bays"][1]["number"], 2);
    assert_eq!(cabinet["bays"][0]["lockState"], "LOCKED");
    assert_eq!(cabinet["bays"][0]["status"], "AVAILABLE");
    assert_eq!(cabinet["bays"][0]["device"]["status"], "PROVISIONED");
    assert_eq!(cabinet["bays"][0]["device"]["slotId"], 1);

    let cursor = stations["pageInfo"]["endCursor"].clone();
    let next = app
        .graphql(STATIONS, json!({ "first": 2, "after": cursor }))
        .await;
    let edges = next["data"]["stations"]["edges"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(edges.len(), 1, "{next}");
    assert_eq!(edges[0]["node"]["id"], global_id("Station", 3));
    assert_eq!(next["data"]["stations"]["pageInfo"]["hasNextPage"], false);
}

#[tokio::test]
async fn stations_filter_by_status() {
    let app = spawn_app().await;
    app.seed(2, 1, 1).await;
    let body = app
        .graphql(STATIONS, json!({ "filter": { "status": "MAINTENANCE" } }))
        .await;
    assert_eq!(body["data"]["stations"]["totalCount"], 0, "{body}");
    let body = app
        .graphql(STATIONS, json!({ "filter": { "status": "ACTIVE" } }))
        .await;
    assert_eq!(body["data"]["stations"]["totalCount"], 2, "{body}");
}

#[tokio::test]
async fn a_station_is_found_by_id_and_an_unknown_one_is_null() {
    let app = spawn_app().await;
    app.seed(1, 1, 1).await;
    let query = "query Station($id: ID!) { station(id: $id) { id name bays { number cabinet { number } station { id } } } }";

    let body = app
        .graphql(query, json!({ "id": global_id("Station", 1) }))
        .await;
    assert_eq!(
        body["data"]["station"]["bays"][0]["station"]["id"],
        global_id("Station", 1),
        "{body}"
    );
    assert_eq!(body["data"]["station"]["bays"][0]["cabinet"]["number"], 1);

    let body = app
        .graphql(query, json!({ "id": global_id("Station", 999) }))
        .await;
    assert!(body["data"]["station"].is_null(), "{body}");
    assert!(body["errors"].is_null(), "{body}");
}

#[tokio::test]
async fn malformed_ids_and_cursors_are_bad_user_input() {
    let app = spawn_app().await;
    let body = app
        .graphql("{ station(id: \"QmF5OjE\") { id } }", json!({}))
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "a Bay ID is not a Station ID: {body}"
    );
    assert_eq!(body["errors"][0]["extensions"]["field"], "id");

    let body = app.graphql(STATIONS, json!({ "after": "garbage" })).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
    assert_eq!(body["errors"][0]["extensions"]["field"], "after");

    let body = app
        .graphql("{ stations(first: 101) { totalCount } }", json!({}))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "first", "{body}");
}

#[tokio::test]
async fn invalid_queries_get_a_code_and_no_internals() {
    let app = spawn_app().await;
    for query in [
        "{ stations { nope } }",
        "{ stations ",
        "query { station(id: 5) { id } }",
    ] {
        let body = app.graphql(query, json!({})).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn queries_beyond_the_depth_and_complexity_limits_are_refused() {
    let app = spawn_app().await;
    let deep = format!(
        "{{ stations {{ edges {{ node {}name{} }} }} }}",
        "cabinets { station { ".repeat(8),
        " } }".repeat(8)
    );
    let body = app.graphql(&deep, json!({})).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("too deep"),
        "{body}"
    );

    let wide = format!(
        "{{ stations(first: 100) {{ edges {{ node {{ {} }} }} }} }}",
        (0..40)
            .map(|i| format!("n{i}: name"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let body = app.graphql(&wide, json!({})).await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("complex"),
        "{body}"
    );
}

#[tokio::test]
async fn oversized_request_bodies_are_refused() {
    let app = spawn_app_small_body().await;
    let padding = " ".repeat(4096);
    let response = app
        .http
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"query":"{{ stations {{ totalCount }} }}{padding}"}}"#
        ))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), 413);
    // And the server keeps serving.
    let body = app.graphql("{ stations { totalCount } }", json!({})).await;
    assert_eq!(body["data"]["stations"]["totalCount"], 0, "{body}");
}

async fn spawn_app_small_body() -> crate::helpers::TestApp {
    crate::helpers::spawn_app_with(&["--max-body-bytes", "1024"]).await
}
