//! Ends a signed-in subscription when its credential expires or is revoked.
//!
//! The token is checked at `connection_init` only, so a subscription could
//! otherwise outlive the account's suspension or a password change. Every
//! stream of a signed-in connection ends with an `UNAUTHENTICATED` error at the
//! token's expiry, and is re-checked against the account every
//! [`RECHECK_EVERY`]; a technician's subscriptions also end (`FORBIDDEN`,
//! `ASSIGNMENT_REVOKED`) once a station assignment they were built with is
//! removed, deactivated or made an observer's. Queries and mutations sent over
//! the WebSocket are checked before they run. Anonymous operations (public data) are left alone.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextSubscribe,
};
use async_graphql::futures_util::stream::BoxStream;
use async_graphql::{Response, ServerError};
use futures_util::StreamExt;

use crate::auth::principal::{self, Principal};
use crate::error::ErrorCode;
use crate::services::ServiceContext;

pub const RECHECK_EVERY: Duration = Duration::from_secs(5);

/// Marks the context of operations that arrive over a WebSocket, whose principal
/// was read once, at `connection_init`.
pub struct WebSocketSession;

pub struct LiveSession;

impl ExtensionFactory for LiveSession {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LiveSessionExtension)
    }
}

struct LiveSessionExtension;

#[async_trait::async_trait]
impl Extension for LiveSessionExtension {
    /// Queries and mutations sent over a WebSocket check the session first, as an
    /// HTTP request does by reading the account.
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if ctx.data_opt::<WebSocketSession>().is_some()
            && let (Some(principal), Some(db)) = (
                ctx.data_opt::<Principal>(),
                ctx.data_opt::<ServiceContext>().map(|s| &s.db),
            )
            && let Some(expires_at) = principal.expires_at()
        {
            let expired = expires_at <= chrono::Utc::now().timestamp();
            if expired || !principal::still_valid(db, principal).await.unwrap_or(false) {
                return unauthenticated("the session was revoked or has expired");
            }
        }
        next.run(ctx, operation_name).await
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let stream = next.run(ctx, stream);
        let (Some(principal), Some(db)) = (
            ctx.data_opt::<Principal>(),
            ctx.data_opt::<ServiceContext>().map(|s| &s.db),
        ) else {
            return stream;
        };
        let Some(expires_at) = principal.expires_at() else {
            return stream;
        };
        let (principal, db) = (principal.clone(), db.clone());
        let ended = async move {
            let expires_in = Duration::from_secs(
                u64::try_from(expires_at - chrono::Utc::now().timestamp()).unwrap_or(0),
            );
            let expiry = tokio::time::sleep(expires_in);
            tokio::pin!(expiry);
            let mut recheck = tokio::time::interval(RECHECK_EVERY);
            loop {
                tokio::select! {
                    () = &mut expiry => return unauthenticated("the access token expired"),
                    _ = recheck.tick() => {
                        // A session that cannot be checked (database away) ends too.
                        if !principal::still_valid(&db, &principal).await.unwrap_or(false) {
                            return unauthenticated("the session was revoked");
                        }
                        // A technician who lost a station stops hearing of it.
                        if !principal::stations_still_held(&db, &principal).await.unwrap_or(false) {
                            return assignment_revoked();
                        }
                    }
                }
            }
        };
        let ended: Pin<Box<dyn Future<Output = Response> + Send>> = Box::pin(ended);
        // Yields the subscription's events until the session ends, then one error, then stops.
        futures_util::stream::unfold((stream, Some(ended)), |(mut stream, ended)| async move {
            let mut ended = ended?;
            tokio::select! {
                item = stream.next() => item.map(|response| (response, (stream, Some(ended)))),
                ending = &mut ended => Some((ending, (stream, None))),
            }
        })
        .boxed()
    }
}

fn assignment_revoked() -> Response {
    let reason = crate::error::Reason::AssignmentRevoked;
    let mut error = ServerError::new(
        "a station assignment this subscription relied on was removed; subscribe again",
        None,
    );
    let extensions = error.extensions.get_or_insert_with(Default::default);
    extensions.set("code", reason.code().as_str());
    extensions.set("reason", reason.as_str());
    Response::from_errors(vec![error])
}

fn unauthenticated(reason: &str) -> Response {
    let mut error = ServerError::new(reason, None);
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", ErrorCode::Unauthenticated.as_str());
    Response::from_errors(vec![error])
}
