//! Admission before the WebSocket upgrade: the `Origin` allow-list (actix does not check it)
//! and the per-IP, per-user and per-node connection caps (answered 429 / 503 before upgrading).
//!
//! Counts live in one small mutex-guarded table; an [`AdmitGuard`] held by the connection gives
//! its slot back when dropped, so a count can never leak.

use crate::ids::UserId;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Too many connections from this address.
    #[error("too many connections from this address (limit {0})")]
    PerIp(u32),
    /// Too many connections for this user.
    #[error("too many connections for this user (limit {0})")]
    PerUser(u32),
    /// The node is full.
    #[error("node at its connection limit ({0})")]
    NodeFull(u32),
}

#[derive(Default)]
struct Counts {
    ip: HashMap<IpAddr, u32>,
    user: HashMap<UserId, u32>,
    total: u32,
}

/// Connection caps.
pub struct Admission {
    per_ip: u32,
    per_user: u32,
    total: u32,
    counts: Mutex<Counts>,
}

/// A held connection slot; dropping it frees the slot.
pub struct AdmitGuard {
    adm: Arc<Admission>,
    ip: IpAddr,
    /// `None`: an anonymous client, not counted per user.
    user: Option<UserId>,
}

/// IPv6 clients are counted per /64, as one host usually owns a whole /64.
fn key_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

impl Admission {
    /// Caps of 0 mean unlimited.
    pub fn new(per_ip: u32, per_user: u32, total: u32) -> Arc<Self> {
        Arc::new(Self {
            per_ip,
            per_user,
            total,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// Takes a slot for a connection from `ip` as `user`, or says why not.
    ///
    /// `user` is `None` for an anonymous client (no token): its id was made for this
    /// connection, so a per-user count of it would only cost an entry per connection; such
    /// clients are held by the per-IP and per-node caps.
    pub fn try_admit(
        self: &Arc<Self>,
        ip: IpAddr,
        user: Option<&UserId>,
    ) -> Result<AdmitGuard, Refusal> {
        let ip = key_of(ip);
        let mut c = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.total > 0 && c.total >= self.total {
            return Err(Refusal::NodeFull(self.total));
        }
        if self.per_ip > 0 && c.ip.get(&ip).copied().unwrap_or(0) >= self.per_ip {
            return Err(Refusal::PerIp(self.per_ip));
        }
        if let Some(user) = user {
            if self.per_user > 0 && c.user.get(user).copied().unwrap_or(0) >= self.per_user {
                return Err(Refusal::PerUser(self.per_user));
            }
        }
        *c.ip.entry(ip).or_default() += 1;
        if let Some(user) = user {
            *c.user.entry(user.clone()).or_default() += 1;
        }
        c.total += 1;
        Ok(AdmitGuard {
            adm: self.clone(),
            ip,
            user: user.cloned(),
        })
    }
}

impl Drop for AdmitGuard {
    fn drop(&mut self) {
        let mut c = self
            .adm
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.ip.remove(&self.ip);
            }
        }
        if let Some(user) = &self.user {
            if let Some(n) = c.user.get_mut(user) {
                *n -= 1;
                if *n == 0 {
                    c.user.remove(user);
                }
            }
        }
    }
}

/// Whether a browser `Origin` may open a WebSocket. No `Origin` (a non-browser client) is
/// allowed; an empty allow-list allows every origin; `*` in the list allows every origin.
pub fn origin_allowed(allowed: &[String], origin: Option<&str>) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    if allowed.is_empty() {
        return true;
    }
    let origin = origin.trim_end_matches('/');
    allowed
        .iter()
        .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_ip_and_user_and_frees_on_drop() {
        let a = Admission::new(2, 3, 0);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let u = UserId::new("u");
        let g1 = a.try_admit(ip, Some(&u)).unwrap();
        let _g2 = a.try_admit(ip, Some(&u)).unwrap();
        assert_eq!(a.try_admit(ip, Some(&u)).err(), Some(Refusal::PerIp(2)));
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let _g3 = a.try_admit(other, Some(&u)).unwrap();
        assert_eq!(
            a.try_admit(other, Some(&u)).err(),
            Some(Refusal::PerUser(3))
        );
        drop(g1);
        assert!(a.try_admit(other, Some(&UserId::new("v"))).is_ok());
    }

    #[test]
    fn anonymous_clients_are_held_by_the_ip_and_node_caps_and_keep_no_user_entry() {
        let a = Admission::new(2, 1, 3);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let g1 = a.try_admit(ip, None).unwrap();
        let _g2 = a.try_admit(ip, None).unwrap();
        assert_eq!(a.try_admit(ip, None).err(), Some(Refusal::PerIp(2)));
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let _g3 = a.try_admit(other, None).unwrap();
        assert_eq!(a.try_admit(other, None).err(), Some(Refusal::NodeFull(3)));
        assert!(a.counts.lock().unwrap().user.is_empty());
        drop(g1);
        assert!(a.try_admit(other, None).is_ok());
    }

    #[test]
    fn origins() {
        let list = vec!["https://app.example.com".to_owned()];
        assert!(origin_allowed(&list, None));
        assert!(origin_allowed(&list, Some("https://app.example.com")));
        assert!(!origin_allowed(&list, Some("https://evil.example")));
        assert!(origin_allowed(&[], Some("https://evil.example")));
    }
}
