//! Client events to the backend: a batched, HMAC-SHA256-signed webhook with retries and a
//! bounded buffer (seed 002's event buffer).
//!
//! [`Webhook::emit`] never waits: it puts the event into a channel bounded in events
//! (`webhook.buffer`) and in bytes (`webhook.buffer_bytes`, a publish event carries its message),
//! and a full channel drops the event and counts it (`gatehouse_webhook_dropped_total`). One sender task drains the
//! channel in batches (`batch_max` events or `flush_ms`, whichever first), signs the body
//! (`X-Gatehouse-Signature: sha256=<hex of HMAC-SHA256(secret, body)>`) and retries with
//! exponential backoff up to `max_attempts`. Events from one node are sent in order.

use crate::metrics::Metrics;
use cluster_config::{WebhookEvent, WebhookSection};
use globset::{Glob, GlobSet, GlobSetBuilder};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::value::RawValue;
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// One client event.
#[derive(Debug, Serialize)]
pub struct Event {
    /// `connect`, `disconnect`, `join`, `leave` or `publish`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Client id.
    pub client: String,
    /// User id.
    pub user: String,
    /// Room, for room events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// Seq of a published message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Payload of a published message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Box<RawValue>>,
    /// Close code of a disconnect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// Milliseconds since the Unix epoch.
    pub ts_ms: u64,
}

#[derive(Serialize)]
struct Batch<'a> {
    node: &'a str,
    sent_at_ms: u64,
    events: &'a [Event],
}

impl Event {
    /// Bytes this event holds (what counts against `webhook.buffer_bytes`).
    pub fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.client.len()
            + self.user.len()
            + self.room.as_ref().map_or(0, String::len)
            + self.data.as_ref().map_or(0, |d| d.get().len())
    }
}

/// Bytes of the events in the channel, against the configured bound.
struct Budget {
    used: std::sync::atomic::AtomicUsize,
    max: usize,
}

impl Budget {
    /// Takes `n` bytes if they fit.
    fn take(&self, n: usize) -> bool {
        use std::sync::atomic::Ordering;
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                (u + n <= self.max).then_some(u + n)
            })
            .is_ok()
    }

    fn give(&self, n: usize) {
        self.used.fetch_sub(n, std::sync::atomic::Ordering::AcqRel);
    }
}

/// The producer side; cheap to share.
pub struct Webhook {
    budget: Arc<Budget>,
    tx: Option<mpsc::Sender<Event>>,
    events: Vec<WebhookEvent>,
    publish_rooms: GlobSet,
    metrics: Arc<Metrics>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    crate::ids::now_micros() / 1000
}

impl Webhook {
    /// Starts the sender task when a URL is configured; returns the producer and the task.
    pub fn start(
        cfg: &WebhookSection,
        node: String,
        metrics: Arc<Metrics>,
    ) -> (Self, Option<JoinHandle<()>>) {
        let mut b = GlobSetBuilder::new();
        for g in &cfg.publish_rooms {
            if let Ok(g) = Glob::new(g) {
                b.add(g);
            }
        }
        let publish_rooms = b.build().unwrap_or_else(|_| GlobSet::empty());
        let budget = Arc::new(Budget {
            used: std::sync::atomic::AtomicUsize::new(0),
            max: cfg.buffer_bytes,
        });
        let (tx, task) = match (&cfg.url, &cfg.secret) {
            (Some(url), Some(secret)) => {
                let (tx, rx) = mpsc::channel(cfg.buffer);
                let sender = Sender {
                    url: url.clone(),
                    secret: secret.expose().as_bytes().to_vec(),
                    node,
                    batch_max: cfg.batch_max,
                    flush: cfg.flush_interval,
                    attempts: cfg.max_attempts,
                    timeout: cfg.timeout,
                    metrics: metrics.clone(),
                    budget: budget.clone(),
                };
                (Some(tx), Some(tokio::spawn(sender.run(rx))))
            }
            _ => (None, None),
        };
        (
            Self {
                budget,
                tx,
                events: cfg.events.clone(),
                publish_rooms,
                metrics,
            },
            task,
        )
    }

    /// Whether events of `kind` are sent at all.
    pub fn wants(&self, kind: WebhookEvent) -> bool {
        self.tx.is_some() && self.events.contains(&kind)
    }

    /// Whether publishes to `room` are sent.
    pub fn wants_publish(&self, room: &str) -> bool {
        self.wants(WebhookEvent::Publish) && self.publish_rooms.is_match(room)
    }

    /// Queues an event without waiting; a full buffer drops it and counts the drop.
    pub fn emit(&self, ev: Event) {
        let Some(tx) = &self.tx else { return };
        let size = ev.size();
        if !self.budget.take(size) {
            self.metrics.webhook_dropped.inc();
            return;
        }
        match tx.try_send(ev) {
            Ok(()) => {
                self.metrics.webhook_queue.inc();
            }
            Err(_) => {
                self.budget.give(size);
                self.metrics.webhook_dropped.inc();
            }
        }
    }

    /// Stops accepting events; the sender flushes what is queued and ends.
    pub fn close(&mut self) {
        self.tx = None;
    }
}

struct Sender {
    url: String,
    secret: Vec<u8>,
    node: String,
    batch_max: usize,
    flush: Duration,
    attempts: u32,
    timeout: Duration,
    metrics: Arc<Metrics>,
    /// Bytes of events buffered or in the batch under way: given back once a batch is done.
    budget: Arc<Budget>,
}

/// Signs `body` with `secret`: the `X-Gatehouse-Signature` header value.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("hmac takes any key length");
    m.update(body);
    let sig = m.finalize().into_bytes();
    let hex: String = sig.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

impl Sender {
    async fn run(self, mut rx: mpsc::Receiver<Event>) {
        let client = match reqwest::Client::builder().timeout(self.timeout).build() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "webhook client cannot start; events will be dropped");
                return;
            }
        };
        let mut batch: Vec<Event> = Vec::with_capacity(self.batch_max);
        loop {
            let Some(first) = rx.recv().await else { break };
            batch.push(first);
            let deadline = tokio::time::Instant::now() + self.flush;
            while batch.len() < self.batch_max {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(ev)) => batch.push(ev),
                    Ok(None) | Err(_) => break,
                }
            }
            self.send(&client, &batch).await;
            self.budget.give(batch.iter().map(Event::size).sum());
            batch.clear();
        }
    }

    async fn send(&self, client: &reqwest::Client, events: &[Event]) {
        let n = events.len() as i64;
        self.metrics.webhook_queue.dec_by(n);
        let body = match serde_json::to_vec(&Batch {
            node: &self.node,
            sent_at_ms: now_ms(),
            events,
        }) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "webhook batch cannot be encoded; dropped");
                self.metrics.webhook_dropped.inc_by(n as u64);
                return;
            }
        };
        let sig = signature(&self.secret, &body);
        let mut backoff = Duration::from_millis(100);
        for attempt in 1..=self.attempts {
            let res = client
                .post(&self.url)
                .header("content-type", "application/json")
                .header("x-gatehouse-signature", &sig)
                .body(body.clone())
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => {
                    self.metrics.webhook_delivered.inc_by(n as u64);
                    return;
                }
                Ok(r) => {
                    self.metrics.webhook_failures.inc();
                    let status = r.status();
                    let retryable = status.is_server_error()
                        || status == reqwest::StatusCode::REQUEST_TIMEOUT
                        || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
                    if !retryable {
                        tracing::error!(%status, events = n, "webhook refused the batch; not retrying a client error");
                        self.metrics.webhook_dropped.inc_by(n as u64);
                        return;
                    }
                    tracing::warn!(%status, attempt, events = n, "webhook refused");
                }
                Err(e) => {
                    self.metrics.webhook_failures.inc();
                    tracing::warn!(error = %e, attempt, events = n, "webhook failed");
                }
            }
            if attempt < self.attempts {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
        tracing::error!(
            events = n,
            attempts = self.attempts,
            "webhook batch dropped after retries"
        );
        self.metrics.webhook_dropped.inc_by(n as u64);
    }
}
