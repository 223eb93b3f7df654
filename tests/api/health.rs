//! Health, readiness, metrics and GraphiQL.

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_and_readiness_report_every_dependency() {
    let app = spawn_app().await;
    let health = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("answers");
    assert_eq!(health.status(), 200);
    let ready = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("answers");
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.expect("JSON");
    assert_eq!(body["database"], "ok", "{body}");
    assert_eq!(body["bus"]["status"], "ok", "{body}");
    assert_eq!(body["mqtt"], "ok", "{body}");
}

#[tokio::test]
async fn metrics_count_graphql_operations_by_name() {
    let app = spawn_app().await;
    let name = "voltgate_graphql_requests_total{operation=\"CountMe\",outcome=\"ok\"}";
    let before = app.metric(name).await;
    app.graphql(
        "query CountMe { stations { totalCount } }",
        serde_json::json!({}),
    )
    .await;
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        crate::helpers::metric_value(&text, name) >= before + 1.0,
        "{text}"
    );
    assert!(
        text.contains("voltgate_graphql_request_duration_seconds"),
        "{text}"
    );
}

#[tokio::test]
async fn graphiql_is_served_with_its_assets_from_the_server_itself() {
    let app = spawn_app().await;
    let page = app
        .http
        .get(app.url("/graphql"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("answers");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(
        html.contains("/graphiql/graphiql.min.js"),
        "GraphiQL must load local assets"
    );
    assert!(
        !html.contains("unpkg.com") && !html.contains("cdn"),
        "no CDN in the page"
    );
    let asset = app
        .http
        .get(app.url("/graphiql/graphiql.min.js"))
        .send()
        .await
        .expect("answers");
    assert_eq!(asset.status(), 200);
    assert!(
        asset.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("application/javascript")
    );
    let missing = app
        .http
        .get(app.url("/graphiql/../Cargo.toml"))
        .send()
        .await
        .expect("answers");
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn websocket_connections_beyond_the_limit_are_refused() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let app = crate::helpers::spawn_app_with(&["--max-ws-connections", "1"]).await;
    let query = "subscription { bayStatusChanged { changedAt } }";
    let _first = app
        .subscribe("graphql-transport-ws", query, serde_json::json!({}))
        .await;

    let mut request = format!("ws://{}/graphql", app.addr)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!(
            "the second WebSocket should be refused, got {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
}

/// The introspection query GraphiQL sends (graphql-js `getIntrospectionQuery`,
/// with descriptions and deprecated input values), which the depth limit must allow.
const INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    description
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description isRepeatable locations args(includeDeprecated: true) { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description specifiedByURL
  fields(includeDeprecated: true) { name description args(includeDeprecated: true) { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue isDeprecated deprecationReason }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } }
}"#;

#[tokio::test]
async fn graphiql_can_introspect_the_schema() {
    let app = spawn_app().await;
    let body = app.graphql(INTROSPECTION, serde_json::json!({})).await;
    assert!(body["errors"].is_null(), "{}", body["errors"]);
    let types = body["data"]["__schema"]["types"]
        .as_array()
        .map(Vec::len)
        .unwrap_or_default();
    assert!(types > 20, "the schema's types are listed: {types}");
}
