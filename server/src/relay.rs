//! The relay between hub instances: Redis pub/sub.
//!
//! Every event an instance publishes on its [`EventBus`] is also published on
//! the Redis channel `<prefix>:events`, and every instance delivers what it
//! receives there from the *others* to its own subscribers. So a liaison
//! message posted on one instance reaches a subscriber connected to another,
//! and a consent withdrawn on one makes every instance's subscriptions on the
//! patient re-check their access at once.
//!
//! Redis is optional and never in the request path:
//! - publishing only queues the event for a background task; a request never
//!   waits for Redis and never fails because of it;
//! - while Redis is down, events still reach this instance's own subscribers;
//!   the outage is logged once and shown by `/ready` (`"redis":
//!   "unavailable"`); both tasks retry with a growing pause (up to 5 s);
//! - events published while Redis is down wait in a bounded queue (4,096)
//!   and go out, late, when it is back; beyond that they are dropped (and
//!   counted). Redis pub/sub itself delivers at most once: what an instance
//!   published while *this* instance's subscription was down never reaches
//!   it. So when the link comes back, each instance delivers
//!   [`HubEvent::RelayRecovered`] locally: caches empty themselves, and
//!   subscriptions re-check access and tell their clients that events may
//!   have been missed (`EVENTS_MISSED`). Likewise, an instance that had to
//!   drop events from its full queue announces it to the others with its
//!   next publication, and they do the same.
//!
//! Queued events go out in pipelines of up to 256 `PUBLISH`es a round trip.
//! A pipeline that times out is sent again on a new connection; Redis may
//! still run the first when it resumes, so each message carries an id and
//! a receiver drops one it has seen (the last 8,192), rather than deliver —
//! and audit — an event twice.
//!
//! Events carry ids and kinds, never patient data (see `renkei_schema::events`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use redis::AsyncConnectionConfig;
use renkei_schema::events::{EventBus, EventRelay, HubEvent};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use uuid::Uuid;

/// Events waiting to be published while Redis is slow or down; past this,
/// new ones are dropped (and counted).
const QUEUE: usize = 4096;
/// How long to wait for Redis to accept a connection or answer a command.
const TIMEOUT: Duration = Duration::from_secs(1);
/// How often an idle subscription connection is checked (PING).
const HEARTBEAT: Duration = Duration::from_secs(5);
/// The longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// At most this many queued events go out in one round trip to Redis (a
/// pipeline of `PUBLISH`es): one write batch of 500 records is 500 events,
/// and a round trip per event let the queue overflow under a few writers
/// while Redis was healthy.
const PIPELINE: usize = 256;
/// Ids of the messages received last, kept to drop a repeat
/// ([`Seen`]).
const SEEN: usize = 8192;

/// What travels on the channel: the event and the instance it came from, so
/// an instance ignores its own events (it delivered them locally already),
/// and the message's own id: a `PUBLISH` that timed out is sent again, but
/// Redis may still run the first when it resumes — the receiver drops the
/// repeat, which would otherwise be delivered (and audited) twice.
#[derive(Serialize, Deserialize)]
struct Envelope {
    origin: Uuid,
    /// Absent from instances of before: such messages are not de-duplicated.
    #[serde(default)]
    id: Option<Uuid>,
    event: HubEvent,
}

/// The ids of the messages received last, oldest first out.
#[derive(Default)]
struct Seen {
    order: std::collections::VecDeque<Uuid>,
    ids: std::collections::HashSet<Uuid>,
}

impl Seen {
    /// Whether `id` is new (and now remembered).
    fn first_time(&mut self, id: Uuid) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > SEEN
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        true
    }
}

/// The relay's state, for `/ready` and the logs.
#[derive(Default)]
pub struct RelayHealth {
    publisher_up: AtomicBool,
    subscriber_up: AtomicBool,
    dropped: AtomicU64,
}

impl RelayHealth {
    /// Both directions of the link work.
    pub fn is_up(&self) -> bool {
        self.publisher_up.load(Ordering::Relaxed) && self.subscriber_up.load(Ordering::Relaxed)
    }

    /// Events that could not be queued for other instances since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

struct RedisRelay {
    origin: Uuid,
    queue: mpsc::Sender<String>,
    health: Arc<RelayHealth>,
}

impl EventRelay for RedisRelay {
    fn relay(&self, event: &HubEvent) {
        if matches!(event, HubEvent::RelayRecovered) {
            return;
        }
        let envelope = Envelope {
            origin: self.origin,
            id: Some(Uuid::now_v7()),
            event: event.clone(),
        };
        let Ok(text) = serde_json::to_string(&envelope) else {
            tracing::error!(?event, "an event could not be serialised for the relay");
            return;
        };
        if self.queue.try_send(text).is_err() {
            let dropped = self.health.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(
                    dropped,
                    "the relay queue is full (Redis slow or down): events are not reaching other instances"
                );
            }
        }
    }
}

/// Connects the bus to Redis: starts the publishing and the subscribing task
/// and attaches the relay. Fails only on a malformed URL; an unreachable
/// Redis is retried in the background.
pub fn start(url: &str, prefix: &str, bus: &EventBus) -> anyhow::Result<Arc<RelayHealth>> {
    let client = redis::Client::open(url)
        .with_context(|| format!("RENKEI_REDIS_URL {:?} is not a Redis URL", redact(url)))?;
    let channel = format!("{prefix}:events");
    let origin = Uuid::now_v7();
    let health = Arc::new(RelayHealth::default());
    let (queue, rx) = mpsc::channel(QUEUE);
    tokio::spawn(publish(
        client.clone(),
        channel.clone(),
        origin,
        rx,
        health.clone(),
    ));
    tokio::spawn(subscribe(
        client,
        channel,
        origin,
        bus.clone(),
        health.clone(),
    ));
    bus.set_relay(Arc::new(RedisRelay {
        origin,
        queue,
        health: health.clone(),
    }));
    tracing::info!(redis = %redact(url), prefix, "relaying events between instances through Redis");
    Ok(health)
}

fn config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(TIMEOUT))
        .set_response_timeout(Some(TIMEOUT))
}

/// A pause that doubles after each failure, up to [`MAX_BACKOFF`].
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Backoff(Duration::from_millis(100))
    }
    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(MAX_BACKOFF);
    }
}

/// Marks one direction up or down, logging the transitions only.
fn set(flag: &AtomicBool, up: bool, what: &str, error: Option<&redis::RedisError>) {
    let was = flag.swap(up, Ordering::Relaxed);
    match (was, up) {
        (false, true) => tracing::info!("Redis {what}: connected"),
        (true, false) => tracing::error!(
            error = error.map(|e| e.to_string()).unwrap_or_default(),
            "Redis {what}: connection lost; events of this instance reach its own subscribers only until it is back"
        ),
        _ => {}
    }
}

async fn publish(
    client: redis::Client,
    channel: String,
    origin: Uuid,
    mut rx: mpsc::Receiver<String>,
    health: Arc<RelayHealth>,
) {
    let mut backoff = Backoff::new();
    // What was sent and not acknowledged, sent again first.
    let mut pending: Vec<String> = Vec::new();
    // Dropped events the other instances have been told of: when the count
    // grows, they are sent a `RelayRecovered` (they re-check access and
    // empty their caches) before anything else.
    let mut announced = 0;
    let recovered = || {
        serde_json::to_string(&Envelope {
            origin,
            id: Some(Uuid::now_v7()),
            event: HubEvent::RelayRecovered,
        })
        .unwrap_or_default()
    };
    loop {
        let mut con = match client
            .get_multiplexed_async_connection_with_config(&config())
            .await
        {
            Ok(con) => con,
            Err(e) => {
                set(&health.publisher_up, false, "publisher", Some(&e));
                backoff.wait().await;
                continue;
            }
        };
        set(&health.publisher_up, true, "publisher", None);
        backoff = Backoff::new();
        loop {
            let dropped = health.dropped();
            if pending.is_empty() && dropped > announced {
                pending.push(recovered());
                announced = dropped;
            }
            if pending.is_empty() {
                // Idle: check the connection now and then, so that /ready
                // tells the truth without traffic.
                match tokio::time::timeout(HEARTBEAT, rx.recv()).await {
                    Ok(Some(m)) => pending.push(m),
                    Ok(None) => return,
                    Err(_) => {
                        if let Err(e) = redis::cmd("PING").query_async::<()>(&mut con).await {
                            set(&health.publisher_up, false, "publisher", Some(&e));
                            break;
                        }
                        continue;
                    }
                }
            }
            // With what else is queued, up to PIPELINE, in one round trip.
            while pending.len() < PIPELINE {
                match rx.try_recv() {
                    Ok(m) => pending.push(m),
                    Err(_) => break,
                }
            }
            let mut pipe = redis::pipe();
            for message in &pending {
                pipe.cmd("PUBLISH").arg(&channel).arg(message).ignore();
            }
            if let Err(e) = pipe.query_async::<()>(&mut con).await {
                set(&health.publisher_up, false, "publisher", Some(&e));
                // Sent again once the connection is back (a receiver drops
                // what it already had: [`Seen`]).
                break;
            }
            pending.clear();
        }
        backoff.wait().await;
    }
}

async fn subscribe(
    client: redis::Client,
    channel: String,
    origin: Uuid,
    bus: EventBus,
    health: Arc<RelayHealth>,
) {
    let mut backoff = Backoff::new();
    // Whether events from other instances may have been missed: after a lost
    // connection, and after failed attempts at start (the instance served
    // alone meanwhile).
    let mut missed = false;
    let mut seen = Seen::default();
    loop {
        let pubsub = match tokio::time::timeout(TIMEOUT, client.get_async_pubsub()).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                set(&health.subscriber_up, false, "subscriber", Some(&e));
                missed = true;
                backoff.wait().await;
                continue;
            }
            Err(_) => {
                set(&health.subscriber_up, false, "subscriber (timed out)", None);
                missed = true;
                backoff.wait().await;
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        match tokio::time::timeout(TIMEOUT, sink.subscribe(&channel)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                set(&health.subscriber_up, false, "subscriber", Some(&e));
                missed = true;
                backoff.wait().await;
                continue;
            }
            Err(_) => {
                set(&health.subscriber_up, false, "subscriber (timed out)", None);
                missed = true;
                backoff.wait().await;
                continue;
            }
        }
        set(&health.subscriber_up, true, "subscriber", None);
        backoff = Backoff::new();
        if std::mem::take(&mut missed) {
            // Whatever the others published meanwhile is lost: let caches
            // and subscriptions catch up.
            bus.deliver_local(HubEvent::RelayRecovered);
        }
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else { break };
                    let payload: String = match message.get_payload() {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::warn!(error = %e, "a relay message was not text; ignored");
                            continue;
                        }
                    };
                    match serde_json::from_str::<Envelope>(&payload) {
                        Ok(envelope) if envelope.origin == origin => {}
                        // A repeat of a message sent again after a timeout.
                        Ok(Envelope { id: Some(id), .. }) if !seen.first_time(id) => {}
                        Ok(envelope) => bus.deliver_local(envelope.event),
                        // Another version of the hub, or something else on the
                        // channel: never fatal.
                        Err(e) => tracing::warn!(error = %e, "a relay message could not be read; ignored"),
                    }
                }
                _ = tokio::time::sleep(HEARTBEAT) => {
                    // A subscribed connection answers PING with an array
                    // (`["pong", ""]`) under RESP2: any answer means alive.
                    match tokio::time::timeout(TIMEOUT, sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => {
                            set(&health.subscriber_up, false, "subscriber", Some(&e));
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
        }
        set(&health.subscriber_up, false, "subscriber", None);
        missed = true;
        backoff.wait().await;
    }
}

/// A Redis URL without its password, for logs and messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "(unparsable URL)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_delivered_once_whatever_the_repeats() {
        let mut seen = Seen::default();
        let first = Uuid::now_v7();
        assert!(seen.first_time(first));
        assert!(!seen.first_time(first), "a repeat is dropped");
        // Bounded: the oldest ids are let go.
        for _ in 0..SEEN {
            assert!(seen.first_time(Uuid::now_v7()));
        }
        assert_eq!(seen.order.len(), SEEN);
        assert_eq!(seen.ids.len(), SEEN);
        assert!(seen.first_time(first), "forgotten after SEEN others");
    }

    #[test]
    fn a_message_of_an_instance_of_before_still_reads() {
        let origin = Uuid::now_v7();
        let text = serde_json::to_string(&Envelope {
            origin,
            id: None,
            event: HubEvent::RelayRecovered,
        })
        .unwrap();
        let mut old: serde_json::Value = serde_json::from_str(&text).unwrap();
        old.as_object_mut().unwrap().remove("id");
        let read: Envelope = serde_json::from_value(old).unwrap();
        assert_eq!(read.origin, origin);
        assert!(read.id.is_none());
    }

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(
            redact("redis://:s3cret@10.0.0.1:6379/0"),
            "redis://:***@10.0.0.1:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[test]
    fn a_bad_url_is_refused_at_start() {
        let bus = EventBus::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt
            .block_on(async { start("http://nope", "renkei", &bus).map(|_| ()) })
            .unwrap_err();
        assert!(err.to_string().contains("not a Redis URL"), "{err}");
    }
}
