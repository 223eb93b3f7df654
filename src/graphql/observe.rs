//! A schema extension for what every operation needs: metrics by operation, and a
//! stable `extensions.code` on every error, including the ones async-graphql
//! raises itself (syntax, validation, depth and complexity limits).

use std::sync::Arc;
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextRequest, NextSubscribe,
};
use async_graphql::{Response, Value};
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;

use crate::error::ErrorCode;
use crate::telemetry::names;

pub struct Observe;

impl ExtensionFactory for Observe {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ObserveExtension)
    }
}

struct ObserveExtension;

#[async_trait::async_trait]
impl Extension for ObserveExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        with_codes(next.run(ctx).await)
    }

    /// Subscriptions (over WebSocket) skip `request`: their responses get codes here.
    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream).map(with_codes).boxed()
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let started = Instant::now();
        let response = next.run(ctx, operation_name).await;
        let operation = operation_label(operation_name);
        let outcome = if response.errors.is_empty() {
            "ok"
        } else {
            "error"
        };
        metrics::counter!(names::GRAPHQL_REQUESTS, "operation" => operation.clone(), "outcome" => outcome).increment(1);
        metrics::histogram!(names::GRAPHQL_DURATION, "operation" => operation)
            .record(started.elapsed().as_secs_f64());
        response
    }
}

/// Gives every error without a code `BAD_USER_INPUT`: such errors come from
/// parsing, validation or input coercion, all of which describe a request the
/// client must change.
fn with_codes(mut response: Response) -> Response {
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", Value::from(ErrorCode::BadUserInput.as_str()));
        }
    }
    response
}

/// Operation names are client-chosen: keep only well-formed, short ones as labels.
fn operation_label(name: Option<&str>) -> String {
    match name {
        Some(n)
            if !n.is_empty()
                && n.len() <= 64
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            n.to_owned()
        }
        Some(_) => "invalid".to_owned(),
        None => "anonymous".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::operation_label;

    #[test]
    fn operation_labels_are_bounded() {
        assert_eq!(operation_label(Some("Stations")), "Stations");
        assert_eq!(operation_label(None), "anonymous");
        assert_eq!(operation_label(Some("x{}")), "invalid");
        assert_eq!(operation_label(Some(&"a".repeat(65))), "invalid");
    }
}
