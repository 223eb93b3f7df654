//! Domain refusals carry a machine-readable `extensions.reason` beside the code.

use serde_json::json;

use crate::client::TestUser;
use crate::helpers::spawn_app;

#[tokio::test]
async fn a_taken_username_is_refused_with_its_reason() {
    let app = spawn_app().await;
    app.register("cleo").await;
    let again = app
        .graphql(
            "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }",
            json!({ "input": {
                "username": "cleo", "email": "other@example.com", "password": "Correct-horse-42",
                "acceptTerms": true, "acceptPrivacyPolicy": true,
            }}),
        )
        .await;
    let extensions = &again["errors"][0]["extensions"];
    assert_eq!(extensions["code"], "CONFLICT", "{again}");
    assert_eq!(extensions["reason"], "USERNAME_TAKEN", "{again}");

    // Refusals for who the caller is carry no reason: the code says it all.
    let customer = TestUser::customer(&app, "dora").await;
    let refused = customer.gql("{ users { totalCount } }", json!({})).await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN");
    assert!(refused["errors"][0]["extensions"]["reason"].is_null());
}
