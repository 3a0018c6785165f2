//! The network task: polls the attached node's admin API about once a second and sends whole
//! snapshots to the UI; runs operator actions and reports their results; fails over to another
//! node's admin address (from the last `/cluster` answer) when the attached node stops answering.
//! The UI never awaits any of this: it only sends `Command`s and receives `event::NetEvent`s.
//!
//! Rooms and clients are paged, filtered and sorted by the API: the task asks only for the page
//! on screen (`Command::Lists`), at once when it changes and then about once a second, less often
//! when a page is slow to answer (`list_interval`), so a console stays cheap for the cluster.
//!
//! Speaks the typed API only (`protocol::admin`, through [`api`]); the event stream is followed
//! by [`stream`]. Owns no UI state.

mod api;
mod stream;

pub use api::admin_url;

use crate::event::{Event, NetEvent};
use crate::model::{Answer, Detail, Lists, RoomPage, Snapshot};
use api::{Api, FetchError};
use protocol::admin::{
    percent_encode as enc, ClientDetail, ClientsResponse, ClusterResponse, HistoryResponse,
    ListQuery, PresenceResponse, RoomDetail, RoomsResponse,
};
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// How often the lists are refreshed.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// A list page is fetched again no sooner than this many times what the last one took, so that a
/// console on a huge cluster keeps the answering node's work for it small (a 250 ms page is
/// fetched every 1.25 s); the node list still comes every second.
const LIST_COST_FACTOR: u32 = 5;
const LIST_INTERVAL_MAX: Duration = Duration::from_secs(10);

/// How long to wait before fetching the list pages again, when the last fetch took `cost`.
pub fn list_interval(cost: Duration) -> Duration {
    (cost * LIST_COST_FACTOR).clamp(POLL_INTERVAL, LIST_INTERVAL_MAX)
}

/// The drill-down the task should fetch on every poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Focus {
    /// A room's figures, and the page of its pane on screen.
    Room {
        name: String,
        pane: RoomPane,
    },
    Client(String),
}

/// The pane of an open room and the page of it on screen (paged by the API, as the lists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomPane {
    /// `GET /rooms/{room}/presence`.
    Members(ListQuery),
    /// `GET /rooms/{room}/history`, newest first.
    History(ListQuery),
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
    /// Publish `data` (JSON text) into `room` as the backend.
    Publish {
        room: String,
        data: String,
    },
    /// Make every connection of `client` join `room`.
    Join {
        client: String,
        room: String,
    },
    /// Make every connection of `client` leave `room`.
    Leave {
        client: String,
        room: String,
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
            Op::Publish { room, data } => format!("publish {data} to {room}"),
            Op::Join { client, room } => format!("join {client} to {room}"),
            Op::Leave { client, room } => format!("remove {client} from {room}"),
        }
    }
}

/// What the UI asks of the task.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "a few commands a second at most: not worth a box"
)]
pub enum Command {
    Focus(Option<Focus>),
    /// Which pages of the server-paged lists to fetch from now on.
    Lists(Lists),
    /// Attach to this admin URL (the operator's `:`).
    Attach(String),
    Op(Op),
    Refresh,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
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
    tokio::spawn(stream::follow(
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
        let cluster: ClusterResponse = match self.api.get(&base, "/cluster").await {
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
            .filter_map(|n| n.stats())
            .map(|n| admin_url(&n.admin_address, &base))
            .collect();

        let detail = async {
            match &self.focus {
                None => None,
                Some(Focus::Room { name, pane }) => Some(self.room(&base, name, pane).await),
                Some(Focus::Client(c)) => Some(
                    self.api
                        .get::<ClientDetail>(&base, &format!("/clients/{}", enc(c)))
                        .await
                        .map(|d| (Detail::Client(d), None)),
                ),
            }
        };
        let lists_now = fresh || tokio::time::Instant::now() >= self.lists_due;
        let started = tokio::time::Instant::now();
        let rooms = async {
            let q = self.lists.rooms.as_ref().filter(|_| lists_now)?;
            Some(self.page::<RoomsResponse>(&base, "/rooms", q).await)
        };
        let clients = async {
            let q = self.lists.clients.as_ref().filter(|_| lists_now)?;
            Some(self.page::<ClientsResponse>(&base, "/clients", q).await)
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
            Some(Err(e)) => {
                errors.push(e.text().to_owned());
                None
            }
            Some(Ok((d, page_error))) => {
                errors.extend(page_error.map(|e| e.text().to_owned()));
                Some(d)
            }
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

    /// The open room: its figures (`/rooms/{room}`, no members: its pane pages them) and the
    /// page of its pane, asked at once; the pane's failure comes second.
    async fn room(
        &self,
        base: &str,
        name: &str,
        pane: &RoomPane,
    ) -> Result<(Detail, Option<FetchError>), FetchError> {
        let room = enc(name);
        let info_path = format!("/rooms/{room}?limit=1");
        let info = self.api.get::<RoomDetail>(base, &info_path);
        let page = async {
            match pane {
                RoomPane::Members(q) => self
                    .page::<PresenceResponse>(base, &format!("/rooms/{room}/presence"), q)
                    .await
                    .map(RoomPage::Members),
                RoomPane::History(q) => self
                    .page::<HistoryResponse>(base, &format!("/rooms/{room}/history"), q)
                    .await
                    .map(RoomPage::History),
            }
        };
        let (info, page) = tokio::join!(info, page);
        let (page, error) = match page {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e)),
        };
        Ok((Detail::Room(Box::new(info?), page), error))
    }

    /// One page of a list, with the request it answers.
    async fn page<T: serde::de::DeserializeOwned>(
        &self,
        base: &str,
        list: &str,
        query: &ListQuery,
    ) -> Result<Answer<T>, FetchError> {
        let path = format!("{list}{}", query.query_string());
        let page = self.api.get::<T>(base, &path).await?;
        Ok(Answer {
            query: query.clone(),
            page,
        })
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
    fn slow_list_pages_are_fetched_less_often() {
        assert_eq!(list_interval(Duration::from_millis(20)), POLL_INTERVAL);
        assert_eq!(
            list_interval(Duration::from_millis(300)),
            Duration::from_millis(1500)
        );
        assert_eq!(list_interval(Duration::from_secs(4)), LIST_INTERVAL_MAX);
    }
}
