//! One execution per audience: identical subscriptions on a replica share it.
//!
//! Subscriptions with the same document, operation, variables and *audience*
//! (everything about the principal that can change what resolvers return: the
//! whole principal, token expiry included, so two callers that differ in any
//! right never share) join one group. The group runs the subscription once,
//! serializes each result once, and hands the same bytes to every member; each
//! connection only frames them with its own operation id. Members join and
//! leave at any time; the last one leaving ends the execution.
//!
//! A member too slow to keep up with its group (the group's buffer moved past
//! it) is told so and dropped, instead of holding the others back.
//!
//! Only subscription operations are grouped: a query or mutation sent over a
//! WebSocket runs for its caller alone. Subscription resolvers may rely on the
//! principal but not on per-connection metadata (IP, user agent), which a group
//! takes from its first member.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::parser::types::{OperationType, Selection};
use async_graphql::{Data, Request, Response, Value};
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use tokio::sync::{Notify, broadcast};

use crate::auth::principal::Principal;
use crate::graphql::AppSchema;
use crate::graphql::request_guard::DocumentChecked;
use crate::telemetry::names;

/// One result, serialized once for the whole group.
#[derive(Debug)]
pub struct Frame {
    pub json: Arc<str>,
    /// The result's `cursor`, if the operation selected one: what a member
    /// that falls behind after this result resumes from.
    pub cursor: Option<Arc<str>>,
}

/// What a member receives.
#[derive(Debug, Clone)]
pub enum Delivery {
    Payload(Arc<Frame>),
    /// The member fell behind its group and was dropped; the cursor is the
    /// last one it was given.
    Lagged {
        cursor: Option<Arc<str>>,
    },
}

/// What makes two subscriptions the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    query: String,
    operation_name: Option<String>,
    variables: String,
    /// The whole principal: any difference in rights (or token expiry) is another audience.
    audience: Principal,
}

struct Group {
    /// Taken when the execution ends, which closes the members' receivers.
    sender: Mutex<Option<broadcast::Sender<Arc<Frame>>>>,
    members: AtomicUsize,
    /// Signalled when the last member leaves.
    empty: Notify,
}

/// What runs an operation: the schema (a stand-in in unit tests).
pub trait Executes: Send + Sync + 'static {
    fn execute_stream(&self, request: Request, data: Arc<Data>) -> BoxStream<'static, Response>;
}

impl Executes for AppSchema {
    fn execute_stream(&self, request: Request, data: Arc<Data>) -> BoxStream<'static, Response> {
        self.execute_stream_with_session_data(request, data).boxed()
    }
}

/// The groups of one replica.
pub struct Groups {
    schema: Box<dyn Executes>,
    groups: Mutex<HashMap<GroupKey, Arc<Group>>>,
    /// Results a group keeps for members that have not read them yet.
    buffer: usize,
    stats: Counters,
}

/// This replica's counts (the metrics count across every instance in a process).
#[derive(Default)]
struct Counters {
    executions: AtomicUsize,
    results: AtomicUsize,
    deliveries: AtomicUsize,
}

/// A snapshot of [`Groups`]' activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupStats {
    /// Groups running now.
    pub groups: usize,
    /// Members of those groups.
    pub members: usize,
    /// Executions started since the start.
    pub executions: usize,
    /// Results the executions produced (each resolved and serialized once).
    pub results: usize,
    /// Results handed to members.
    pub deliveries: usize,
}

impl Groups {
    pub fn new(schema: impl Executes, buffer: usize) -> Arc<Self> {
        Arc::new(Self {
            schema: Box::new(schema),
            groups: Mutex::new(HashMap::new()),
            buffer: buffer.max(1),
            stats: Counters::default(),
        })
    }

    pub fn stats(&self) -> GroupStats {
        let groups = self.lock();
        GroupStats {
            groups: groups.len(),
            members: groups
                .values()
                .map(|g| g.members.load(Ordering::SeqCst))
                .sum(),
            executions: self.stats.executions.load(Ordering::SeqCst),
            results: self.stats.results.load(Ordering::SeqCst),
            deliveries: self.stats.deliveries.load(Ordering::SeqCst),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<GroupKey, Arc<Group>>> {
        self.groups.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `request` for the caller whose data is `data`: a subscription joins
    /// (or starts) its group; anything else runs alone.
    pub fn run(
        self: &Arc<Self>,
        request: Request,
        data: Arc<Data>,
    ) -> BoxStream<'static, Delivery> {
        let audience = data
            .get(&std::any::TypeId::of::<Principal>())
            .and_then(|p| p.downcast_ref::<Principal>())
            .cloned()
            .unwrap_or_default();
        let key = GroupKey {
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            variables: serde_json::to_string(&request.variables).unwrap_or_default(),
            audience,
        };
        let mut request = request;
        if !shareable(&mut request) {
            return self
                .schema
                .execute_stream(request, data)
                .map(|response| Delivery::Payload(frame(&response)))
                .boxed();
        }
        let (group, receiver) = self.join(key, &mut request, &data);
        let member = Member {
            group,
            source: Source::Group(receiver),
            received_any: false,
            last_cursor: None,
            groups: Arc::clone(self),
            fallback: Some((unparsed(request), data)),
        };
        futures_util::stream::unfold(member, Member::next).boxed()
    }

    fn join(
        self: &Arc<Self>,
        key: GroupKey,
        request: &mut Request,
        data: &Arc<Data>,
    ) -> (Arc<Group>, broadcast::Receiver<Arc<Frame>>) {
        let mut groups = self.lock();
        if let Some(group) = groups.get(&key)
            && let Some(receiver) = group.subscribe()
        {
            group.members.fetch_add(1, Ordering::SeqCst);
            return (Arc::clone(group), receiver);
        }
        let (sender, receiver) = broadcast::channel(self.buffer);
        let group = Arc::new(Group {
            sender: Mutex::new(Some(sender)),
            members: AtomicUsize::new(1),
            empty: Notify::new(),
        });
        groups.insert(key.clone(), Arc::clone(&group));
        drop(groups);
        self.stats.executions.fetch_add(1, Ordering::SeqCst);
        metrics::counter!(names::SUBSCRIPTION_EXECUTIONS).increment(1);
        metrics::gauge!(names::SUBSCRIPTION_GROUPS).increment(1.0);
        let results = self
            .schema
            .execute_stream(copy_of(request), Arc::clone(data));
        tokio::spawn(Arc::clone(self).execute(key, Arc::clone(&group), results));
        (group, receiver)
    }

    /// The group's one execution: each result serialized once, for every member.
    async fn execute(
        self: Arc<Self>,
        key: GroupKey,
        group: Arc<Group>,
        mut results: impl futures_util::Stream<Item = Response> + Unpin + Send,
    ) {
        loop {
            // Registered before the check, so a member leaving in between is seen.
            let emptied = group.empty.notified();
            if group.members.load(Ordering::SeqCst) == 0 && self.retire_if_empty(&key, &group) {
                return;
            }
            tokio::select! {
                () = emptied => {}
                result = results.next() => match result {
                    Some(response) => {
                        self.stats.results.fetch_add(1, Ordering::SeqCst);
                        metrics::counter!(names::SUBSCRIPTION_RESULTS).increment(1);
                        group.send(frame(&response));
                    }
                    None => break,
                },
            }
        }
        // The execution ended by itself: new subscribers start a new group.
        self.retire(&key, &group, &mut self.lock());
    }

    /// Retires the group if it still has no members; joiners count themselves
    /// under the same lock, so none can join a group that is going away.
    fn retire_if_empty(&self, key: &GroupKey, group: &Arc<Group>) -> bool {
        let mut groups = self.lock();
        if group.members.load(Ordering::SeqCst) > 0 {
            return false;
        }
        self.retire(key, group, &mut groups);
        true
    }

    fn retire(
        &self,
        key: &GroupKey,
        group: &Arc<Group>,
        groups: &mut HashMap<GroupKey, Arc<Group>>,
    ) {
        if groups.get(key).is_some_and(|g| Arc::ptr_eq(g, group)) {
            groups.remove(key);
            metrics::gauge!(names::SUBSCRIPTION_GROUPS).decrement(1.0);
        }
        // Members read what is left, then see the end.
        group
            .sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

impl Group {
    fn subscribe(&self) -> Option<broadcast::Receiver<Arc<Frame>>> {
        let sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        sender.as_ref().map(broadcast::Sender::subscribe)
    }

    fn send(&self, payload: Arc<Frame>) {
        let sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = sender.as_ref() {
            // No receiver now is fine: members may be between results.
            let _ = sender.send(payload);
        }
    }
}

/// Where a member's results come from.
enum Source {
    Group(broadcast::Receiver<Arc<Frame>>),
    /// Its own execution (see [`Member::fallback`]).
    Alone(BoxStream<'static, Arc<Frame>>),
    Ended,
}

/// One member's view of its group.
struct Member {
    group: Arc<Group>,
    groups: Arc<Groups>,
    source: Source,
    received_any: bool,
    last_cursor: Option<Arc<str>>,
    /// A member that joined a group just as its execution ended (after its last
    /// result) runs on its own instead, so it still sees what ended it (an
    /// error, say) and anything after.
    fallback: Option<(Request, Arc<Data>)>,
}

impl Member {
    async fn next(mut self) -> Option<(Delivery, Self)> {
        loop {
            match &mut self.source {
                Source::Group(receiver) => match receiver.recv().await {
                    Ok(payload) => {
                        self.received_any = true;
                        if payload.cursor.is_some() {
                            self.last_cursor.clone_from(&payload.cursor);
                        }
                        self.groups.stats.deliveries.fetch_add(1, Ordering::SeqCst);
                        metrics::counter!(names::SUBSCRIPTION_DELIVERIES).increment(1);
                        return Some((Delivery::Payload(payload), self));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.source = Source::Ended;
                        let cursor = self.last_cursor.clone();
                        return Some((Delivery::Lagged { cursor }, self));
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        let fallback = self.fallback.take();
                        match fallback {
                            Some((request, data)) if !self.received_any => {
                                let alone = self
                                    .groups
                                    .schema
                                    .execute_stream(request, data)
                                    .map(|response| frame(&response))
                                    .boxed();
                                self.source = Source::Alone(alone);
                            }
                            _ => return None,
                        }
                    }
                },
                Source::Alone(results) => {
                    let payload = results.next().await?;
                    return Some((Delivery::Payload(payload), self));
                }
                Source::Ended => return None,
            }
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if self.group.members.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.group.empty.notify_one();
        }
    }
}

/// The parts of a request that an execution reads (a WebSocket request carries
/// no data, uploads or extensions of its own: those come with the connection).
fn copy_of(request: &mut Request) -> Request {
    let mut copy = Request::new(request.query.clone()).variables(request.variables.clone());
    if let Some(name) = &request.operation_name {
        copy = copy.operation_name(name.clone());
    }
    // The edge measured and parsed the document once; the group's execution
    // keeps both instead of doing them again.
    if request
        .data
        .get(&std::any::TypeId::of::<DocumentChecked>())
        .is_some()
        && let Ok(document) = request.parsed_query()
    {
        copy.set_parsed_query(document.clone());
        copy = copy.data(DocumentChecked);
    }
    copy
}

/// `request` without its kept parse: a member holds its request only in case
/// it must run alone, and a parsed document per idle subscriber would cost
/// more memory than the subscriber itself.
fn unparsed(request: Request) -> Request {
    let mut plain = Request::new(request.query).variables(request.variables);
    if let Some(name) = request.operation_name {
        plain = plain.operation_name(name);
    }
    plain.data = request.data;
    plain
}

/// Whether identical subscribers may share the request's execution: it is a
/// subscription, and not one that resumes from a cursor (`after` given),
/// whose replayed events belong to its caller alone: a member joining its
/// group later would miss them. A document that does not parse is not
/// shareable: it runs alone and reports its own error.
fn shareable(request: &mut Request) -> bool {
    let variables = request.variables.clone();
    let operation_name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return false;
    };
    let mut operations = document.operations.iter();
    let selected = match &operation_name {
        Some(name) => operations.find(|(n, _)| n.is_some_and(|n| n.as_str() == name)),
        None => operations.next(),
    };
    let Some((_, operation)) = selected else {
        return false;
    };
    if operation.node.ty != OperationType::Subscription {
        return false;
    }
    let resumes = operation.node.selection_set.node.items.iter().any(|item| {
        let Selection::Field(field) = &item.node else {
            return false;
        };
        field.node.arguments.iter().any(|(name, value)| {
            name.node.as_str() == "after"
                && value
                    .node
                    .clone()
                    .into_const_with(|variable| {
                        Ok::<_, ()>(variables.get(&variable).cloned().unwrap_or(Value::Null))
                    })
                    .is_ok_and(|after| after != Value::Null)
        })
    });
    !resumes
}

/// A result as members receive it: serialized once, with its cursor.
pub fn frame(response: &Response) -> Arc<Frame> {
    Arc::new(Frame {
        json: serialize(response),
        cursor: cursor_of(response),
    })
}

/// The `cursor` of a subscription result: `{ "<field>": { "cursor": "…" } }`.
fn cursor_of(response: &Response) -> Option<Arc<str>> {
    let Value::Object(fields) = &response.data else {
        return None;
    };
    let (_, Value::Object(payload)) = fields.iter().next()? else {
        return None;
    };
    match payload.get("cursor")? {
        Value::String(cursor) => Some(cursor.as_str().into()),
        _ => None,
    }
}

pub fn serialize(response: &Response) -> Arc<str> {
    serde_json::to_string(response)
        .unwrap_or_else(|_| {
            r#"{"data":null,"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}]}"#
                .to_owned()
        })
        .into()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::mpsc;

    use super::*;

    /// Executions whose results the test sends by hand.
    struct Scripted {
        results: Mutex<Vec<mpsc::UnboundedReceiver<Response>>>,
    }

    impl Executes for Scripted {
        fn execute_stream(&self, _: Request, _: Arc<Data>) -> BoxStream<'static, Response> {
            let receiver = self
                .results
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            match receiver {
                Some(receiver) => futures_util::stream::unfold(receiver, |mut r| async move {
                    r.recv().await.map(|item| (item, r))
                })
                .boxed(),
                None => futures_util::stream::empty().boxed(),
            }
        }
    }

    fn scripted() -> (mpsc::UnboundedSender<Response>, Scripted) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let executes = Scripted {
            results: Mutex::new(vec![receiver]),
        };
        (sender, executes)
    }

    fn subscription() -> Request {
        Request::new("subscription { ticks }")
    }

    fn result(n: i32) -> Response {
        Response::new(Value::from(n))
    }

    async fn next(stream: &mut BoxStream<'static, Delivery>) -> Option<Delivery> {
        tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("an answer in time")
    }

    fn payload(delivery: Option<Delivery>) -> String {
        match delivery {
            Some(Delivery::Payload(payload)) => payload.json.to_string(),
            other => panic!("expected a payload, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_member_that_falls_behind_is_told_where_it_stopped_and_the_others_go_on() {
        let (results, executes) = scripted();
        let groups = Groups::new(executes, 1);
        let data = Arc::new(Data::default());
        let mut reader = groups.run(subscription(), Arc::clone(&data));
        let mut sleeper = groups.run(subscription(), Arc::clone(&data));
        assert_eq!(groups.stats().members, 2);

        results.send(tick(1)).expect("the execution runs");
        let first = r#"{"data":{"ticks":{"cursor":"c1"}}}"#;
        assert_eq!(payload(next(&mut reader).await), first);
        assert_eq!(payload(next(&mut sleeper).await), first);
        for n in 2..=4 {
            results.send(tick(n)).expect("the execution runs");
            assert_eq!(
                payload(next(&mut reader).await),
                format!(r#"{{"data":{{"ticks":{{"cursor":"c{n}"}}}}}}"#)
            );
        }
        // The sleeper read nothing while three results went by a buffer of one.
        match next(&mut sleeper).await {
            Some(Delivery::Lagged { cursor }) => {
                assert_eq!(cursor.as_deref(), Some("c1"), "the last one it was given");
            }
            other => panic!("expected a lag notice, got {other:?}"),
        }
        assert!(next(&mut sleeper).await.is_none(), "and its stream ends");
        drop(sleeper);

        results.send(result(5)).expect("the execution still runs");
        assert_eq!(payload(next(&mut reader).await), r#"{"data":5}"#);
        let stats = groups.stats();
        assert_eq!((stats.executions, stats.results), (1, 5), "{stats:?}");
    }

    fn tick(n: i32) -> Response {
        let value = serde_json::json!({ "ticks": { "cursor": format!("c{n}") } });
        Response::new(Value::from_json(value).expect("a GraphQL value"))
    }

    #[test]
    fn only_subscriptions_that_do_not_resume_are_shared() {
        let with = |query: &str, variables: serde_json::Value| {
            let variables = async_graphql::Variables::from_json(variables);
            shareable(&mut Request::new(query).variables(variables))
        };
        let follow = "subscription($a: String) { ticks(after: $a) }";
        assert!(with("subscription { ticks }", serde_json::json!({})));
        assert!(with(follow, serde_json::json!({})), "no cursor: live only");
        assert!(with(follow, serde_json::json!({ "a": null })));
        assert!(!with(follow, serde_json::json!({ "a": "c1" })), "replays");
        assert!(!with(
            r#"subscription { ticks(after: "c1") }"#,
            serde_json::json!({})
        ));
        assert!(
            !with("{ ticks }", serde_json::json!({})),
            "a query runs alone"
        );
        assert!(!with("subscription {", serde_json::json!({})));
    }

    #[tokio::test]
    async fn the_last_member_leaving_ends_the_execution() {
        let (results, executes) = scripted();
        let groups = Groups::new(executes, 8);
        let data = Arc::new(Data::default());
        let first = groups.run(subscription(), Arc::clone(&data));
        let second = groups.run(subscription(), Arc::clone(&data));
        drop(first);
        assert_eq!(groups.stats().groups, 1, "one member is left");
        drop(second);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while groups.stats().groups > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the group never ended"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(results.is_closed(), "the execution was dropped");
    }
}
