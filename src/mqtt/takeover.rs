//! Taking over the MQTT session of a replica that died.
//!
//! Each replica ingests through a persistent session in the replicas' shared
//! subscription, and the broker keeps routing that subscription's messages to
//! a member whose connection is gone: they would wait in its session until it
//! came back, or be lost when the session expired. So each replica leaves a
//! Will on [`topic::replica_gone_topic`] naming its client id. When its
//! connection drops without a DISCONNECT (after `VOLTGATE_MQTT_TAKEOVER_DELAY`,
//! 0 by default), the broker publishes the Will; every other replica hears it,
//! connects under the dead replica's client id (clean start off, so the
//! session and its messages are resumed, with a session expiry of zero, so the
//! session ends with this connection), unsubscribes (the broker routes no more
//! messages to that session), ingests what the session held, the messages the
//! dead replica had received but not acknowledged among them, and disconnects.
//!
//! A takeover connection carries no Will, so it never sets off another. A
//! replica that comes back while its session is being taken over takes it
//! back (the broker disconnects the takeover and redelivers to the owner what
//! the takeover had not acknowledged) and subscribes again, since the takeover
//! unsubscribed the session. Several replicas hearing the same Will take the
//! session over in turn; each acknowledges what it applied, and the reports'
//! own rules (only newer state applies, a sample is stored once) make a
//! redelivery harmless.
//!
//! One case sets off a Will of a live replica: a takeover that arrives after
//! the replica's connection dropped and it reconnected (a network blip) takes
//! its session from it, and the broker publishes the Will of the connection
//! it closes. Replicas therefore take over one client id at most once per
//! [`COOLDOWN`], so such a chain ends; a Will delay of a few seconds
//! (`VOLTGATE_MQTT_TAKEOVER_DELAY`) avoids it altogether, since a session
//! resumed within the delay does not publish its owner's Will, at the cost of
//! that much more time before a dead replica's messages flow again.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{LastWill, LastWillProperties, Packet, Publish};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions as ClientOptions};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::ingest::{
    AckEvent, Incoming, Ingest, MqttOptions, acknowledge_in_order, client_options_as, route,
    start_workers, subscriptions,
};
use super::topic;
use crate::telemetry::names;

/// How long a drained session must stay quiet, everything received acknowledged,
/// before the takeover ends it.
const QUIET: Duration = Duration::from_millis(500);
/// How often the takeover checks for quiet.
const TICK: Duration = Duration::from_millis(50);
/// A takeover never holds a session longer than this, whatever keeps arriving.
const LONGEST: Duration = Duration::from_secs(120);
/// A replica takes over one client id at most this often.
const COOLDOWN: Duration = Duration::from_secs(5);
/// Longest client id taken from a notice.
const MAX_CLIENT_ID_BYTES: usize = 256;

/// Whether replicas announce their death and take over each other's sessions.
pub(super) fn enabled(options: &MqttOptions) -> bool {
    options.shared && options.takeover_delay_secs.is_some()
}

/// The Will a replica leaves: its client id on the gone topic, after the delay.
pub(super) fn will(options: &MqttOptions) -> LastWill {
    LastWill::new(
        topic::replica_gone_topic(&options.topic_root),
        options.client_id.as_bytes().to_vec(),
        QoS::AtLeastOnce,
        false,
        Some(LastWillProperties {
            delay_interval: options.takeover_delay_secs.filter(|&secs| secs > 0),
            payload_format_indicator: Some(1),
            message_expiry_interval: None,
            content_type: None,
            response_topic: None,
            correlation_data: None,
            user_properties: Vec::new(),
        }),
    )
}

/// The replica's takeovers.
pub(super) struct Takeovers {
    options: MqttOptions,
    ingest: Arc<Ingest>,
    notice_topic: String,
    state: std::sync::Mutex<State>,
}

/// Which sessions the replica is draining now, and when it last started on each.
#[derive(Default)]
struct State {
    running: HashMap<String, AbortHandle>,
    started: HashMap<String, Instant>,
}

impl State {
    /// Whether to take `client_id` over now: not while a takeover of it runs,
    /// nor within [`COOLDOWN`] of the last one; if so, it counts as started.
    fn admit(&mut self, client_id: &str, now: Instant) -> bool {
        self.started
            .retain(|_, at| now.saturating_duration_since(*at) < COOLDOWN);
        if self.running.contains_key(client_id) || self.started.contains_key(client_id) {
            return false;
        }
        self.started.insert(client_id.to_owned(), now);
        true
    }
}

impl Takeovers {
    pub(super) fn new(options: MqttOptions, ingest: Arc<Ingest>) -> Self {
        Self {
            notice_topic: topic::replica_gone_topic(&options.topic_root),
            options,
            ingest,
            state: std::sync::Mutex::new(State::default()),
        }
    }

    /// Whether `publish` announces a replica gone rather than carrying a device message.
    pub(super) fn is_notice(&self, publish: &Publish) -> bool {
        publish.topic == self.notice_topic.as_bytes()
    }

    /// Starts taking over the session a notice names, unless it is this
    /// replica's own or already being taken over here.
    pub(super) fn notice(self: &Arc<Self>, payload: &[u8]) {
        let Some(client_id) = gone_client_id(payload, &self.options.client_id) else {
            return;
        };
        // Held while spawning, so the task cannot remove its entry before it is in.
        let mut state = self.lock_state();
        if !state.admit(&client_id, Instant::now()) {
            return;
        }
        tracing::warn!(%client_id, "a replica is gone; taking over its MQTT session");
        let this = Arc::clone(self);
        let id = client_id.clone();
        let task = tokio::spawn(async move {
            let outcome = match this.take_over(&id).await {
                Ok(0) => "empty",
                Ok(messages) => {
                    tracing::info!(client_id = %id, messages, "taken-over MQTT session drained and ended");
                    "drained"
                }
                Err(err) => {
                    tracing::warn!(client_id = %id, error = %err, "MQTT session takeover ended early");
                    "failed"
                }
            };
            metrics::counter!(names::MQTT_TAKEOVERS, "outcome" => outcome).increment(1);
            this.lock_state().running.remove(&id);
        });
        state.running.insert(client_id, task.abort_handle());
    }

    /// Stops every takeover (the server is shutting down); the sessions' owners
    /// or another replica get what was not acknowledged.
    pub(super) fn abort_all(&self) {
        for (_, task) in self.lock_state().running.drain() {
            task.abort();
        }
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Resumes `client_id`'s session, ingests what it held and ends it; returns
    /// how many messages it held.
    async fn take_over(&self, client_id: &str) -> anyhow::Result<u64> {
        let (client, mut eventloop) =
            AsyncClient::new(takeover_client_options(&self.options, client_id), 64);
        let session_present = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match eventloop.poll().await? {
                    Event::Incoming(Packet::ConnAck(ack)) => {
                        return anyhow::Ok(ack.session_present);
                    }
                    _ => continue,
                }
            }
        })
        .await
        .map_err(|_| anyhow::anyhow!("no answer from the broker within 5 s"))??;
        if !session_present {
            end(&client, &mut eventloop).await;
            return Ok(0);
        }
        // The session keeps what the broker already routed to it; unsubscribing
        // stops the broker routing more, so it can be drained to the end.
        for filter in subscriptions(&self.options) {
            client.try_unsubscribe(filter)?;
        }

        let (acks, ack_queue) = mpsc::unbounded_channel();
        let acknowledged = Arc::new(AtomicU64::new(0));
        let mut tasks = vec![tokio::spawn(acknowledge_in_order(
            ack_queue,
            client.clone(),
            Arc::clone(&acknowledged),
        ))];
        let queues = start_workers(self.options.workers, &self.ingest, &acks, &mut tasks);
        let drained = self
            .drain(client_id, &mut eventloop, &queues, &acks, &acknowledged)
            .await;
        drop((queues, acks));
        if drained.is_err() {
            for task in &tasks {
                task.abort();
            }
            return drained;
        }
        // Everything received is acknowledged: the workers and the acker end
        // with their queues, and the DISCONNECT follows the last acknowledgement.
        for task in tasks {
            let _ = task.await;
        }
        end(&client, &mut eventloop).await;
        drained
    }

    /// Receives until the session has been quiet for [`QUIET`] with everything
    /// received acknowledged; returns how many messages arrived.
    async fn drain(
        &self,
        client_id: &str,
        eventloop: &mut EventLoop,
        queues: &[mpsc::Sender<Incoming>],
        acks: &mpsc::UnboundedSender<AckEvent>,
        acknowledged: &AtomicU64,
    ) -> anyhow::Result<u64> {
        let started = Instant::now();
        let mut received = 0_u64;
        let mut last_activity = Instant::now();
        while started.elapsed() < LONGEST {
            match tokio::time::timeout(TICK, eventloop.poll()).await {
                Ok(Ok(Event::Incoming(Packet::Publish(publish)))) => {
                    if self.is_notice(&publish) {
                        // Other replicas hear the notices the dead one missed.
                        let _ = acks.send(AckEvent::Done(received, Box::new(publish)));
                    } else {
                        metrics::counter!(names::MQTT_TAKEN_OVER).increment(1);
                        if !route(queues, received, publish).await {
                            anyhow::bail!("the takeover's workers stopped");
                        }
                    }
                    received += 1;
                    last_activity = Instant::now();
                }
                Ok(Ok(Event::Incoming(Packet::Disconnect(disconnect)))) => {
                    // Its owner came back (session taken over): it gets the rest.
                    anyhow::bail!(
                        "the broker ended the takeover: {:?}",
                        disconnect.reason_code
                    );
                }
                Ok(Ok(_)) | Err(_) => {}
                Ok(Err(err)) => anyhow::bail!("connection lost: {err}"),
            }
            if acknowledged.load(Ordering::Acquire) < received {
                last_activity = Instant::now();
            } else if last_activity.elapsed() >= QUIET {
                return Ok(received);
            }
        }
        tracing::warn!(%client_id, "a taken-over MQTT session kept receiving for {LONGEST:?}; ending it");
        Ok(received)
    }
}

/// How a takeover connects under the dead replica's client id: resuming its
/// session, ending it with the connection, without a Will of its own.
fn takeover_client_options(options: &MqttOptions, client_id: &str) -> ClientOptions {
    let mut client_options = client_options_as(options, client_id);
    client_options
        .set_clean_start(false)
        .set_session_expiry_interval(Some(0));
    client_options
}

/// Sends DISCONNECT and drives the connection until it has gone out.
async fn end(client: &AsyncClient, eventloop: &mut EventLoop) {
    if client.try_disconnect().is_err() {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
}

/// The client id a notice names, if it is one to take over: not this replica's
/// own, and a plausible client id.
fn gone_client_id(payload: &[u8], own: &str) -> Option<String> {
    let id = std::str::from_utf8(payload).ok()?.trim();
    let plausible = !id.is_empty()
        && id.len() <= MAX_CLIENT_ID_BYTES
        && !id.chars().any(char::is_control)
        && id != own;
    plausible.then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_names_another_replica() {
        assert_eq!(
            gone_client_id(b"voltgate-b", "voltgate-a").as_deref(),
            Some("voltgate-b")
        );
        assert_eq!(gone_client_id(b"voltgate-a", "voltgate-a"), None, "own");
        assert_eq!(gone_client_id(b"", "voltgate-a"), None);
        assert_eq!(gone_client_id(b"a\nb", "voltgate-a"), None);
        assert_eq!(gone_client_id(&[0xff, 0xfe], "voltgate-a"), None);
        assert_eq!(gone_client_id(&[b'x'; 300], "voltgate-a"), None);
    }

    #[test]
    fn one_client_id_is_taken_over_once_per_cooldown() {
        let mut state = State::default();
        let start = Instant::now();
        assert!(state.admit("a", start));
        assert!(
            !state.admit("a", start + Duration::from_secs(1)),
            "again too soon"
        );
        assert!(
            state.admit("b", start + Duration::from_secs(1)),
            "another replica"
        );
        assert!(state.admit("a", start + COOLDOWN), "after the cooldown");
    }

    #[test]
    fn a_takeover_resumes_the_session_ends_it_and_leaves_no_will() {
        let options =
            takeover_client_options(&crate::mqtt::ingest::tests::options(true, Some(0)), "dead");
        assert_eq!(options.client_id(), "dead");
        assert!(!options.clean_start());
        assert_eq!(options.session_expiry_interval(), Some(0));
        assert!(options.last_will().is_none());
        assert!(options.manual_acks());
    }
}
