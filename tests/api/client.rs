//! A test client whose principals read as sentences:
//! `TestUser::technician(&app, "tom", &[station]).await.gql(query, vars)`.
//!
//! People are registered through the API and given roles and station
//! assignments in the database; kiosks, scanners and team tokens get
//! credentials signed with the test server's key.

#![allow(dead_code)]

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};
use voltgate::auth::TeamPermission;
use voltgate::auth::tokens::{Credential, TokenKeys};
use voltgate::entities::{RoleName, station_assignment, user};

use crate::helpers::TestApp;

/// The signing secret of every test server, so tests can mint credentials.
pub const TEST_JWT_SECRET: &str = "voltgate-test-signing-secret-0123456789";

/// Someone calling the API with a bearer token.
#[derive(Clone)]
pub struct TestUser {
    pub token: String,
    /// The account's id, for people.
    pub id: Option<i32>,
    url: String,
    http: reqwest::Client,
}

impl TestUser {
    fn new(app: &TestApp, token: String, id: Option<i32>) -> Self {
        Self {
            token,
            id,
            url: app.url("/graphql"),
            http: app.http.clone(),
        }
    }

    /// Whoever holds `token`.
    pub fn bearer(app: &TestApp, token: &str) -> Self {
        Self::new(app, token.to_owned(), None)
    }

    /// Posts a GraphQL operation with this user's token; the whole response body.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        post(&self.http, &self.url, Some(&self.token), query, variables).await
    }

    /// A registered customer.
    pub async fn customer(app: &TestApp, username: &str) -> Self {
        let (token, _) = app.register(username).await;
        let id = account_id(app, username).await;
        Self::new(app, token, Some(id))
    }

    /// A staff member.
    pub async fn staff(app: &TestApp, username: &str) -> Self {
        let token = app.staff(username).await;
        let id = account_id(app, username).await;
        Self::new(app, token, Some(id))
    }

    /// A customer who also holds `role`.
    pub async fn with_role(app: &TestApp, username: &str, role: RoleName) -> Self {
        let person = Self::customer(app, username).await;
        let id = person.id.expect("a person");
        voltgate::accounts::roles::assign(&app.db, id, role)
            .await
            .expect("role granted");
        person
    }

    /// A technician assigned to `stations` (database ids).
    pub async fn technician(app: &TestApp, username: &str, stations: &[i32]) -> Self {
        let person = Self::with_role(app, username, RoleName::Technician).await;
        let id = person.id.expect("a person");
        for station in stations {
            station_assignment::ActiveModel {
                user_id: Set(id),
                station_id: Set(*station),
                assigned_at: Set(chrono::Utc::now()),
                ..Default::default()
            }
            .insert(&app.db)
            .await
            .expect("station assigned");
        }
        person
    }

    /// A member of an organizer's team.
    pub async fn organizer(app: &TestApp, username: &str) -> Self {
        Self::with_role(app, username, RoleName::Organizer).await
    }

    /// The kiosk of a cabinet (database id).
    pub fn kiosk(app: &TestApp, cabinet: i32) -> Self {
        Self::credential(
            app,
            Credential::Kiosk {
                cabinet,
                credential: None,
            },
        )
    }

    /// A door scanner of an event, at a gate.
    pub fn scanner(app: &TestApp, event: i32, gate: &str) -> Self {
        Self::credential(
            app,
            Credential::Scanner {
                event,
                gate: gate.to_owned(),
                device: None,
            },
        )
    }

    /// A team API token allowed `permissions` on `events`.
    pub fn team(app: &TestApp, events: &[i32], permissions: &[TeamPermission]) -> Self {
        Self::credential(
            app,
            Credential::Team {
                team: 1,
                organizer: 1,
                events: Some(events.to_vec()),
                permissions: permissions.to_vec(),
            },
        )
    }

    fn credential(app: &TestApp, credential: Credential) -> Self {
        let (token, _) = keys()
            .issue_credential(
                credential,
                chrono::TimeDelta::minutes(10),
                chrono::Utc::now(),
            )
            .expect("signed");
        Self::new(app, token, None)
    }
}

/// Posts a GraphQL operation, with a bearer token when there is one; the whole
/// response body.
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Value {
    let request = http.post(url);
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    request
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("GraphQL answers JSON")
}

/// The test servers' token keys.
pub fn keys() -> TokenKeys {
    TokenKeys::new(
        TEST_JWT_SECRET.as_bytes(),
        &[],
        chrono::TimeDelta::minutes(15),
        chrono::TimeDelta::days(30),
    )
    .expect("a long enough secret")
}

async fn account_id(app: &TestApp, username: &str) -> i32 {
    user::Entity::find()
        .filter(user::Column::Username.eq(username))
        .one(&app.db)
        .await
        .expect("query")
        .expect("the account exists")
        .id
}
