//! The network task: polls the attached node's admin API about once a second and sends whole
//! snapshots to the UI; runs operator actions and reports their results; fails over to another
//! node's admin address (from the last `/cluster` answer) when the attached node stops answering.
//! The UI never awaits any of this: it only sends `Command`s and receives `event::NetEvent`s.
//!
//! Rooms and clients are paged, filtered and sorted by the API: the task asks only for the page
//! on screen (`Command::Lists`), at once when it changes and then about once a second, less often
//! when a page is slow to answer (`list_interval`), so a console stays cheap for the cluster.

use crate::event::{Event, NetEvent};
use crate::model::{
    ClientDetail, ClientsResp, ClusterResp, Detail, Lists, RoomDetail, RoomsResp, Snapshot,
};
use serde::de::DeserializeOwned;
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// How often the lists are refreshed.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Per-request timeout of the polls (the actions get longer: a migration may take a while).
const POLL_TIMEOUT: Duration = Duration::from_secs(4);
const ACTION_TIMEOUT: Duration = Duration::from_secs(65);
/// A list page is fetched again no sooner than this many times what the last one took, so that a
/// console on a huge cluster keeps the answering node's work for it small (a 250 ms page is
/// fetched every 1.25 s); the node list still comes every second.
const LIST_COST_FACTOR: u32 = 5;
const LIST_INTERVAL_MAX: Duration = Duration::from_secs(10);

/// How long to wait before fetching the list pages again, when the last fetch took `cost`.
pub fn list_interval(cost: Duration) -> Duration {
    (cost * LIST_COST_FACTOR).clamp(POLL_INTERVAL, LIST_INTERVAL_MAX)
}

/// Members asked for in a room drill-down (the API's largest page).
const MEMBER_LIMIT: u32 = 1000;

/// The drill-down the task should fetch on every poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Focus {
    Room(String),
    Client(String),
}

/// An operator action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Kick {
        client: String,
        reason: String,
    },
    Throttle {
        client: String,
        msgs_per_sec: u32,
        burst: u32,
    },
    Unthrottle {
        client: String,
    },
    Drain {
        node: String,
    },
    Undrain {
        node: String,
    },
    Migrate {
        room: String,
        to: String,
    },
}

impl Op {
    pub fn describe(&self) -> String {
        match self {
            Op::Kick { client, reason } => format!("kick {client} ({reason})"),
            Op::Throttle {
                client,
                msgs_per_sec,
                burst,
            } => format!("throttle {client} to {msgs_per_sec} msgs/s burst {burst}"),
            Op::Unthrottle { client } => format!("unthrottle {client}"),
            Op::Drain { node } => format!("drain {node}"),
            Op::Undrain { node } => format!("undrain {node}"),
            Op::Migrate { room, to } => format!("migrate {room} to {to}"),
        }
    }
}

/// What the UI asks of the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Focus(Option<Focus>),
    /// Which pages of the server-paged lists to fetch from now on.
    Lists(Lists),
    /// Attach to this admin URL (the operator's `:`).
    Attach(String),
    Op(Op),
    Refresh,
}

#[derive(Debug)]
enum FetchError {
    /// Transport failure or 502/503/504: the node is not serving.
    Unreachable(String),
    Other(String),
}

impl FetchError {
    fn text(&self) -> &str {
        match self {
            FetchError::Unreachable(s) | FetchError::Other(s) => s,
        }
    }
}

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    token: Option<String>,
}

impl Api {
    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let rb = self.http.request(method, url);
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    async fn get<T: DeserializeOwned>(&self, base: &str, path: &str) -> Result<T, FetchError> {
        let url = format!("{base}/admin/v1{path}");
        let resp = self
            .request(reqwest::Method::GET, &url)
            .timeout(POLL_TIMEOUT)
            .send()
            .await
            .map_err(|e| FetchError::Unreachable(transport_error(&e)))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| FetchError::Unreachable(transport_error(&e)))?;
        if !status.is_success() {
            let msg = format!("GET {path}: {}", http_error(status.as_u16(), &body));
            return Err(if matches!(status.as_u16(), 502..=504) {
                FetchError::Unreachable(msg)
            } else {
                FetchError::Other(msg)
            });
        }
        serde_json::from_str(&body).map_err(|e| FetchError::Other(format!("GET {path}: {e}")))
    }

    async fn run_op(&self, base: &str, op: &Op) -> Result<String, String> {
        use reqwest::Method;
        let (method, path, body) = match op {
            Op::Kick { client, reason } => (
                Method::POST,
                format!("/clients/{}/kick", enc(client)),
                Some(serde_json::json!({ "reason": reason })),
            ),
            Op::Throttle {
                client,
                msgs_per_sec,
                burst,
            } => (
                Method::POST,
                format!("/clients/{}/throttle", enc(client)),
                Some(serde_json::json!({ "msgs_per_sec": msgs_per_sec, "burst": burst })),
            ),
            Op::Unthrottle { client } => (
                Method::DELETE,
                format!("/clients/{}/throttle", enc(client)),
                None,
            ),
            Op::Drain { node } => (Method::POST, format!("/nodes/{}/drain", enc(node)), None),
            Op::Undrain { node } => (Method::POST, format!("/nodes/{}/undrain", enc(node)), None),
            Op::Migrate { room, to } => (
                Method::POST,
                format!("/rooms/{}/migrate", enc(room)),
                Some(serde_json::json!({ "to": to })),
            ),
        };
        let mut rb = self
            .request(method, &format!("{base}/admin/v1{path}"))
            .timeout(ACTION_TIMEOUT);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.map_err(|e| transport_error(&e))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| transport_error(&e))?;
        if (200..300).contains(&status) {
            Ok(format!("{status} {}", text.trim()))
        } else {
            Err(http_error(status, &text))
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `404 not_found: no such client` from an error body, or the raw body.
fn http_error(status: u16, body: &str) -> String {
    let parsed: Option<(String, String)> = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let e = v.get("error")?;
            Some((
                e.get("code")?.as_str()?.to_owned(),
                e.get("message")?.as_str()?.to_owned(),
            ))
        });
    match parsed {
        Some((code, message)) => format!("{status} {code}: {message}"),
        None => format!("{status} {}", body.trim()),
    }
}

fn transport_error(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Percent-encodes a path segment (room names may hold characters a URL path does not).
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `http://host:port` for a node's `admin_address`; a wildcard host takes the host of `via`.
pub fn admin_url(admin_address: &str, via: &str) -> String {
    let addr = admin_address.trim();
    if addr.starts_with("http://") || addr.starts_with("https://") {
        return addr.trim_end_matches('/').to_owned();
    }
    let (host, port) = match addr.rsplit_once(':') {
        Some((h, p)) => (h, p),
        None => (addr, "9100"),
    };
    let host = if matches!(host, "0.0.0.0" | "[::]" | "::" | "") {
        url_host(via).unwrap_or("127.0.0.1")
    } else {
        host
    };
    format!("http://{host}:{port}")
}

fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let hostport = rest.split('/').next()?;
    if let Some(end) = hostport.find(']') {
        return Some(&hostport[..=end]);
    }
    Some(hostport.rsplit_once(':').map_or(hostport, |(h, _)| h))
}

/// The network task. Ends when the UI drops its command sender.
pub async fn run(
    start_url: String,
    token: Option<String>,
    mut commands: UnboundedReceiver<Command>,
    events: UnboundedSender<Event>,
) {
    let http = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .build()
    {
        Ok(h) => h,
        Err(e) => {
            let _ = events.send(Event::Net(NetEvent::PollError(format!(
                "cannot build the HTTP client: {e}"
            ))));
            return;
        }
    };
    let mut poller = Poller {
        api: Api { http, token },
        current: start_url.trim_end_matches('/').to_owned(),
        known: Vec::new(),
        attached: None,
        focus: None,
        lists: Lists::default(),
        lists_due: tokio::time::Instant::now(),
        events,
    };
    let (url_tx, url_rx) = tokio::sync::watch::channel(poller.current.clone());
    tokio::spawn(stream_events(
        url_rx,
        poller.api.token.clone(),
        poller.events.clone(),
    ));
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                poller.poll(false).await;
                url_tx.send_if_modified(|u| {
                    let changed = *u != poller.current;
                    u.clone_from(&poller.current);
                    changed
                });
            }
            cmd = commands.recv() => {
                let Some(cmd) = cmd else { return };
                // Apply whatever else is queued too (a held PgDn), then poll once.
                let mut poll = poller.apply(cmd);
                while let Ok(more) = commands.try_recv() {
                    poll |= poller.apply(more);
                }
                if poll {
                    poller.poll(true).await;
                    url_tx.send_if_modified(|u| {
                        let changed = *u != poller.current;
                        u.clone_from(&poller.current);
                        changed
                    });
                    tick.reset();
                }
            }
        }
    }
}

/// Follows the attached node's `/admin/v1/events` WebSocket and forwards each event as a log
/// line; reconnects (to whatever node is attached now) with a short backoff.
async fn stream_events(
    mut url: tokio::sync::watch::Receiver<String>,
    token: Option<String>,
    events: UnboundedSender<Event>,
) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    loop {
        let base = url.borrow_and_update().clone();
        let ws_url = format!(
            "{}/admin/v1/events",
            base.replacen("https://", "wss://", 1)
                .replacen("http://", "ws://", 1)
        );
        let mut req = match ws_url.as_str().into_client_request() {
            Ok(r) => r,
            Err(_) => return,
        };
        if let Some(t) = &token {
            if let Ok(v) = format!("Bearer {t}").parse() {
                req.headers_mut().insert("authorization", v);
            }
        }
        if let Ok((mut ws, _)) = tokio_tungstenite::connect_async(req).await {
            loop {
                tokio::select! {
                    msg = ws.next() => match msg {
                        Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => {
                            if let Some(line) = describe_event(&t) {
                                if events.send(Event::Net(NetEvent::ServerEvent(line))).is_err() {
                                    return;
                                }
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => break,
                    },
                    changed = url.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        break;
                    }
                }
            }
        }
        if events.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One line of the Events view for a server event (`None` for the stream's hello).
pub fn describe_event(text: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let by = v["observed_by"].as_str().unwrap_or("?");
    let s = |k: &str| v[k].as_str().unwrap_or("?").to_owned();
    let what = match v["type"].as_str()? {
        "hello" => return None,
        "node_state" => format!("node {by}: now {}", s("state")),
        "peer_up" => format!("peer {} up", s("node")),
        "peer_down" => format!("peer {} DOWN ({})", s("node"), s("reason")),
        "peer_restarted" => format!("peer {} restarted", s("node")),
        "room_created" if v["restored"] == true => {
            format!("room {} restored from its replica", s("room"))
        }
        "room_created" => format!("room {} created", s("room")),
        "room_migrated" => format!("room {} moved {} -> {}", s("room"), s("from"), s("to")),
        "room_closed" => format!("room {} closed", s("room")),
        "client_kicked" => format!("client {} kicked ({})", s("client"), s("reason")),
        "client_throttled" if v["throttled"] == true => format!("client {} throttled", s("client")),
        "client_throttled" => format!("client {} unthrottled", s("client")),
        "lagged" => format!("missed {} events (console too slow)", v["missed"]),
        other => format!("{other}: {text}"),
    };
    Some(format!("[{by}] {what}"))
}

struct Poller {
    api: Api,
    current: String,
    /// Admin URLs of the nodes that were not `down` in the last `/cluster` answer.
    known: Vec<String>,
    /// The URL of the last successful poll.
    attached: Option<String>,
    focus: Option<Focus>,
    lists: Lists,
    /// When the list pages are to be fetched again on a tick.
    lists_due: tokio::time::Instant,
    events: UnboundedSender<Event>,
}

impl Poller {
    fn send(&self, ev: NetEvent) {
        let _ = self.events.send(Event::Net(ev));
    }

    /// Takes one command; says whether a poll should follow at once.
    fn apply(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Focus(f) => {
                self.focus = f;
                true
            }
            Command::Lists(l) => {
                self.lists = l;
                true
            }
            Command::Attach(url) => {
                self.current = url;
                self.attached = None;
                true
            }
            Command::Refresh => true,
            Command::Op(op) => {
                let api = self.api.clone();
                let base = self.current.clone();
                let events = self.events.clone();
                tokio::spawn(async move {
                    let result = api.run_op(&base, &op).await;
                    let _ = events.send(Event::Net(NetEvent::OpResult {
                        what: op.describe(),
                        result,
                    }));
                });
                false
            }
        }
    }

    /// One poll: the node list always, the list pages when `fresh` (something changed) or when
    /// they are due (see `list_interval`), and the open drill-down.
    async fn poll(&mut self, fresh: bool) {
        let base = self.current.clone();
        let taken_ms = now_ms();
        let cluster: ClusterResp = match self.api.get(&base, "/cluster").await {
            Ok(c) => c,
            Err(FetchError::Unreachable(e)) => {
                self.fail_over(&base, e);
                return;
            }
            Err(FetchError::Other(e)) => {
                self.send(NetEvent::PollError(e));
                return;
            }
        };
        if self.attached.as_deref() != Some(base.as_str()) {
            self.attached = Some(base.clone());
            self.send(NetEvent::Attached(base.clone()));
        }
        self.known = cluster
            .nodes
            .iter()
            .filter(|n| n.state != "down")
            .filter_map(|n| n.admin_address.as_deref())
            .map(|a| admin_url(a, &base))
            .collect();

        let detail = async {
            match &self.focus {
                None => None,
                Some(Focus::Room(r)) => Some(
                    self.api
                        .get::<RoomDetail>(
                            &base,
                            &format!("/rooms/{}?limit={MEMBER_LIMIT}", enc(r)),
                        )
                        .await
                        .map(Detail::Room),
                ),
                Some(Focus::Client(c)) => Some(
                    self.api
                        .get::<ClientDetail>(&base, &format!("/clients/{}", enc(c)))
                        .await
                        .map(Detail::Client),
                ),
            }
        };
        let lists_now = fresh || tokio::time::Instant::now() >= self.lists_due;
        let started = tokio::time::Instant::now();
        let rooms = async {
            let q = self.lists.rooms.as_ref().filter(|_| lists_now)?;
            let path = format!("/rooms{}", q.query_string());
            Some(self.api.get::<RoomsResp>(&base, &path).await.map(|mut r| {
                r.query = q.clone();
                r
            }))
        };
        let clients = async {
            let q = self.lists.clients.as_ref().filter(|_| lists_now)?;
            let path = format!("/clients{}", q.query_string());
            Some(
                self.api
                    .get::<ClientsResp>(&base, &path)
                    .await
                    .map(|mut c| {
                        c.query = q.clone();
                        c
                    }),
            )
        };
        let (rooms, clients, detail) = tokio::join!(rooms, clients, detail);
        if lists_now {
            self.lists_due = tokio::time::Instant::now() + list_interval(started.elapsed());
        }
        let mut errors = Vec::new();
        let rooms = rooms.and_then(|r| r.map_err(|e| errors.push(e.text().to_owned())).ok());
        let clients = clients.and_then(|c| c.map_err(|e| errors.push(e.text().to_owned())).ok());
        let detail = match detail {
            None => None,
            Some(d) => d.map_err(|e| errors.push(e.text().to_owned())).ok(),
        };
        self.send(NetEvent::Snapshot(Box::new(Snapshot {
            node_url: base,
            cluster,
            rooms,
            clients,
            detail,
            errors,
            taken_ms,
        })));
    }

    fn fail_over(&mut self, base: &str, error: String) {
        let next = self.known.iter().find(|u| u.as_str() != base).cloned();
        // Rotate so that a second failure tries the one after.
        if let Some(n) = &next {
            self.known.retain(|u| u != n);
            self.known.push(base.to_owned());
            self.current = n.clone();
        }
        self.attached = None;
        self.send(NetEvent::Unreachable {
            url: base.to_owned(),
            error,
            next,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_urls() {
        assert_eq!(
            admin_url("127.0.0.1:9701", "http://127.0.0.1:9100"),
            "http://127.0.0.1:9701"
        );
        assert_eq!(
            admin_url("0.0.0.0:9702", "http://10.0.0.5:9100/"),
            "http://10.0.0.5:9702"
        );
    }

    #[test]
    fn server_events_read_as_log_lines() {
        assert_eq!(
            describe_event(r#"{"type":"hello","observed_by":"node-a"}"#),
            None
        );
        assert_eq!(
            describe_event(r#"{"type":"peer_down","observed_by":"node-a","at_ms":1,"node":"node-c","reason":"silent"}"#).as_deref(),
            Some("[node-a] peer node-c DOWN (silent)")
        );
        assert_eq!(
            describe_event(r#"{"type":"room_migrated","observed_by":"node-b","room":"r","from":"node-b","to":"node-a"}"#).as_deref(),
            Some("[node-b] room r moved node-b -> node-a")
        );
    }

    #[test]
    fn slow_list_pages_are_fetched_less_often() {
        assert_eq!(list_interval(Duration::from_millis(20)), POLL_INTERVAL);
        assert_eq!(
            list_interval(Duration::from_millis(300)),
            Duration::from_millis(1500)
        );
        assert_eq!(list_interval(Duration::from_secs(4)), LIST_INTERVAL_MAX);
    }

    #[test]
    fn encodes_path_segments() {
        assert_eq!(enc("chat:lobby"), "chat:lobby");
        assert_eq!(enc("a b/c"), "a%20b%2Fc");
    }
}
