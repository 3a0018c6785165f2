//! Sockets before admission: every socket the public listener accepted that is not a client
//! connection yet — still sending its PROXY header or request head, or served as plain HTTP by
//! actix-http. Strangers can open these by the thousand without ever finishing a head, so they
//! are bounded here, before any per-client state exists:
//!
//! - **per node** (`limits.max_pending_sockets`, split evenly over the public listener's
//!   workers, since each worker serves the sockets it accepted): at the cap the *oldest
//!   unfinished head* on that worker is dropped to make room, so a client that completes its
//!   head promptly is never refused because of strangers who do not (nginx and HAProxy shed
//!   the same way under a slowloris). With no unfinished head to drop (every socket is a plain
//!   HTTP exchange under way), the new socket is closed at once.
//! - **per client IP** (`limits.max_pending_sockets_per_ip`, the real client's address when a
//!   trusted proxy named it): over it the new socket is closed at once. The map holds only
//!   addresses with sockets pending, so it is bounded by the node cap.
//!
//! Every drop is counted in `gatehouse_pending_sockets_dropped_total{reason}` (`evicted`,
//! `node_full`, `per_ip`, `deadline`, `bad_proxy_header`); `gatehouse_pending_sockets` is the
//! current count. Owns the counts and the eviction order; what a head means is
//! [`super::front`]'s.

use crate::metrics::Metrics;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Why a pending socket was dropped (the metric's `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// The oldest unfinished head on a full worker, dropped for a newer socket.
    Evicted,
    /// The worker was full of plain HTTP exchanges: the new socket was closed.
    NodeFull,
    /// The client's address had too many sockets pending.
    PerIp,
    /// The head did not arrive within `limits.handshake_timeout_ms`.
    Deadline,
    /// A connection from a trusted proxy without a valid PROXY header.
    BadProxyHeader,
}

impl Dropped {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Evicted => "evicted",
            Self::NodeFull => "node_full",
            Self::PerIp => "per_ip",
            Self::Deadline => "deadline",
            Self::BadProxyHeader => "bad_proxy_header",
        }
    }
}

/// The node-wide part: caps and the per-IP counts.
pub struct Pending {
    per_worker: usize,
    per_ip: u32,
    by_ip: Mutex<HashMap<IpAddr, u32>>,
    metrics: Arc<Metrics>,
}

/// The signal that drops a pending socket, and whether it was given (the socket then no
/// longer counts, though its task has not run yet to close it).
#[derive(Default)]
pub struct DropSignal {
    notify: Notify,
    given: Cell<bool>,
}

impl DropSignal {
    /// Resolves once the socket is told to go.
    pub async fn notified(&self) {
        self.notify.notified().await;
    }
}

/// One worker's pending sockets: unfinished heads by age (each with the signal that drops it),
/// and how many are plain HTTP exchanges.
#[derive(Default)]
struct Local {
    next: u64,
    heads: BTreeMap<u64, Rc<DropSignal>>,
    http: usize,
}

thread_local! {
    static LOCAL: RefCell<Local> = RefCell::new(Local::default());
}

impl Pending {
    /// Caps: `node` sockets in all over `workers` workers, `per_ip` per client address.
    pub fn new(node: u32, per_ip: u32, workers: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        let workers = workers.max(1);
        Arc::new(Self {
            per_worker: (node as usize).div_ceil(workers).max(1),
            per_ip,
            by_ip: Mutex::new(HashMap::new()),
            metrics,
        })
    }

    /// Counts a drop.
    pub fn dropped(&self, why: Dropped) {
        Metrics::count(&self.metrics.pending_dropped, why.as_str());
    }

    /// A socket just accepted on this worker: a ticket in the head phase, or `None` (counted)
    /// when the worker is full of HTTP exchanges. At the cap, the oldest unfinished head is
    /// told to go.
    pub fn enter(self: &Arc<Self>) -> Option<Ticket> {
        let entered = LOCAL.with_borrow_mut(|l| {
            if l.heads.len() + l.http >= self.per_worker {
                match l.heads.pop_first() {
                    Some((_, oldest)) => {
                        oldest.given.set(true);
                        oldest.notify.notify_one();
                        self.metrics.pending_sockets.dec();
                        self.dropped(Dropped::Evicted);
                    }
                    None => return None,
                }
            }
            let id = l.next;
            l.next += 1;
            let evict = Rc::new(DropSignal::default());
            l.heads.insert(id, evict.clone());
            Some((id, evict))
        });
        let Some((id, evict)) = entered else {
            self.dropped(Dropped::NodeFull);
            return None;
        };
        self.metrics.pending_sockets.inc();
        Some(Ticket {
            pending: self.clone(),
            id,
            evict,
            ip: None,
            http: false,
        })
    }
}

/// One pending socket's place; dropping it frees the place.
pub struct Ticket {
    pending: Arc<Pending>,
    id: u64,
    evict: Rc<DropSignal>,
    ip: Option<IpAddr>,
    http: bool,
}

impl Ticket {
    /// Counts the socket against its client's address (the real client's, once a PROXY header
    /// named it); `false` (counted) when that address is over its cap.
    pub fn client(&mut self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let Ok(mut by_ip) = self.pending.by_ip.lock() else {
            return false;
        };
        let n = by_ip.entry(ip).or_insert(0);
        if *n >= self.pending.per_ip {
            if *n == 0 {
                by_ip.remove(&ip);
            }
            drop(by_ip);
            self.pending.dropped(Dropped::PerIp);
            return false;
        }
        *n += 1;
        self.ip = Some(ip);
        true
    }

    /// The signal that this socket is dropped to make room for a newer one.
    pub fn eviction(&self) -> Rc<DropSignal> {
        self.evict.clone()
    }

    /// The head is complete and goes to actix-http: the socket stays counted but is no longer
    /// the one to drop.
    pub fn hand_to_http(&mut self) {
        let id = self.id;
        LOCAL.with_borrow_mut(|l| {
            if l.heads.remove(&id).is_some() {
                l.http += 1;
            }
        });
        self.http = true;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let (id, http) = (self.id, self.http);
        let _ = LOCAL.try_with(|l| {
            let mut l = l.borrow_mut();
            if http {
                l.http -= 1;
            } else {
                l.heads.remove(&id);
            }
        });
        if !self.evict.given.get() {
            self.pending.metrics.pending_sockets.dec();
        }
        if let Some(ip) = self.ip {
            if let Ok(mut by_ip) = self.pending.by_ip.lock() {
                if let Some(n) = by_ip.get_mut(&ip) {
                    *n -= 1;
                    if *n == 0 {
                        by_ip.remove(&ip);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_oldest_head_makes_room_and_http_exchanges_are_never_dropped() {
        let p = Pending::new(3, 10, 1, Arc::new(Metrics::new()));
        let a = p.enter().expect("room");
        let mut b = p.enter().expect("room");
        b.hand_to_http();
        let c = p.enter().expect("room");
        // Full: the oldest unfinished head (a; b is an HTTP exchange) is told to go.
        let d = p.enter().expect("room made");
        tokio::time::timeout(std::time::Duration::from_secs(1), a.eviction().notified())
            .await
            .expect("a evicted");
        drop(a);
        drop(c);
        drop(d);
        // Only HTTP exchanges left and the worker full: a new socket is refused.
        let mut e = p.enter().expect("room");
        e.hand_to_http();
        let mut f = p.enter().expect("room");
        f.hand_to_http();
        assert!(p.enter().is_none(), "full of HTTP exchanges");
        drop(e);
        assert!(p.enter().is_some());
        drop(b);
        drop(f);
    }

    #[test]
    fn an_address_over_its_cap_is_refused_until_one_of_its_sockets_goes() {
        let p = Pending::new(100, 2, 1, Arc::new(Metrics::new()));
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let mut t1 = p.enter().unwrap();
        let mut t2 = p.enter().unwrap();
        let mut t3 = p.enter().unwrap();
        assert!(t1.client(ip) && t2.client(ip));
        assert!(!t3.client(ip), "third socket of one address");
        let mut other = p.enter().unwrap();
        assert!(other.client("10.1.2.4".parse().unwrap()));
        drop(t1);
        assert!(t3.client(ip));
        drop((t2, t3, other));
        assert!(
            p.by_ip.lock().unwrap().is_empty(),
            "no entry outlives its sockets"
        );
    }
}
