//! Bounds what a request may cost before async-graphql walks it.
//!
//! Every document, over HTTP or WebSocket, passes [`document_limits`] before
//! async-graphql parses it for itself (its recursion-depth and directive checks
//! walk the document with fragments expanded, so an unchecked fan-out would
//! already be fatal there). The HTTP edge checks a batch's documents itself and
//! marks them [`DocumentChecked`]; here they are not measured twice.
//!
//! A batch's operations also share one complexity budget: each operation waits
//! at validation until every operation of its batch has been validated, and none
//! runs when their complexities add up to more than the limit.

use std::any::TypeId;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest, NextRequest,
    NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{
    ErrorExtensionValues, Request, Response, ServerError, ServerResult, ValidationResult, Value,
    Variables,
};
use tokio::sync::Notify;

use super::document_limits::{self, DocumentLimits, LimitExceeded, Refusal};
use crate::error::ErrorCode;

/// Marks a request whose document the HTTP edge has already measured.
pub struct DocumentChecked;

/// The complexity budget shared by the operations of one batch.
pub struct BatchBudget {
    max: usize,
    /// Operations not yet past validation (or finished without reaching it).
    pending: AtomicUsize,
    spent: AtomicUsize,
    all_arrived: Notify,
}

impl BatchBudget {
    pub fn new(operations: usize, max_complexity: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max_complexity,
            pending: AtomicUsize::new(operations),
            spent: AtomicUsize::new(0),
            all_arrived: Notify::new(),
        })
    }

    /// Adds one operation's complexity and counts it as arrived.
    fn arrive(&self, complexity: usize) {
        self.spent.fetch_add(complexity, Ordering::SeqCst);
        if self.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.all_arrived.notify_waiters();
        }
    }

    /// Waits for the batch's other operations; true when the batch is within budget.
    async fn within_budget(&self) -> bool {
        loop {
            // Created before the check, so a notification in between is not lost.
            let arrived = self.all_arrived.notified();
            if self.pending.load(Ordering::SeqCst) == 0 {
                break;
            }
            arrived.await;
        }
        self.spent.load(Ordering::SeqCst) <= self.max
    }
}

/// The extension; created per request.
pub struct RequestGuard {
    limits: DocumentLimits,
}

impl RequestGuard {
    pub fn new(limits: DocumentLimits) -> Self {
        Self { limits }
    }
}

impl ExtensionFactory for RequestGuard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestGuardExtension {
            limits: self.limits,
            budget: OnceLock::new(),
            arrived: AtomicBool::new(false),
        })
    }
}

struct RequestGuardExtension {
    limits: DocumentLimits,
    /// The batch's budget, read from the request's data. Kept here because the
    /// outermost hook (`request`) runs before that data is attached to contexts.
    budget: OnceLock<Arc<BatchBudget>>,
    /// Whether this operation has counted itself in its batch's budget.
    arrived: AtomicBool,
}

impl RequestGuardExtension {
    fn arrive(&self, complexity: usize) {
        if let Some(budget) = self.budget.get()
            && !self.arrived.swap(true, Ordering::SeqCst)
        {
            budget.arrive(complexity);
        }
    }
}

#[async_trait::async_trait]
impl Extension for RequestGuardExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let response = next.run(ctx).await;
        // An operation that failed before validation must not keep its batch waiting.
        self.arrive(0);
        response
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if let Some(budget) = request
            .data
            .get(&TypeId::of::<Arc<BatchBudget>>())
            .and_then(|data| data.downcast_ref::<Arc<BatchBudget>>())
        {
            let _ = self.budget.set(Arc::clone(budget));
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if ctx.data_opt::<DocumentChecked>().is_none() {
            match document_limits::check(query, &self.limits) {
                Err(Refusal::Limit(exceeded)) => return Err(limit_error(&exceeded)),
                // async-graphql's own parse reports syntax errors with their position.
                Err(Refusal::Syntax(_)) | Ok(_) => {}
            }
        }
        next.run(ctx, query, variables).await
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await;
        let Some(budget) = self.budget.get() else {
            return result;
        };
        self.arrive(result.as_ref().map_or(0, |r| r.complexity));
        if !budget.within_budget().await {
            return Err(vec![coded(
                format!(
                    "the batch's operations together exceed the complexity limit of {} \
                     (VOLTGATE_MAX_QUERY_COMPLEXITY)",
                    budget.max
                ),
                "VOLTGATE_MAX_QUERY_COMPLEXITY",
            )]);
        }
        result
    }
}

/// The error of a document over a limit: `BAD_USER_INPUT`, naming the limit's setting.
pub fn limit_error(exceeded: &LimitExceeded) -> ServerError {
    coded(exceeded.message(), exceeded.limit.setting())
}

fn coded(message: String, limit: &str) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", Value::from(ErrorCode::BadUserInput.as_str()));
    extensions.set("limit", Value::from(limit));
    error.extensions = Some(extensions);
    error
}
