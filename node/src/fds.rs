//! The process's file-descriptor budget. Every client socket, every socket still sending its
//! head and every cluster link is a descriptor; a node that runs out cannot accept the client
//! that would have been served (`accept` fails with `EMFILE`). So, at start, the soft
//! `RLIMIT_NOFILE` is raised to the hard one (as the Go runtime and nginx's
//! `worker_rlimit_nofile` do), and the caps are checked against it: with
//! `limits.max_connections = 0` the node takes as many clients as fit beside
//! `limits.max_pending_sockets` and [`RESERVED`]; a configured cap that does not fit is kept and
//! warned about, naming the fields.
//!
//! Owns only that arithmetic and the one `setrlimit`; the caps are enforced by
//! `admission` and `http::pending`.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Descriptors kept for everything that is not a client socket: listeners, cluster links,
/// the webhook's and the admin API's connections, log files, the runtime's own.
pub const RESERVED: u64 = 256;

/// Raises the soft descriptor limit to the hard one; returns the limit in force.
pub fn raise_limit() -> Option<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return Some(hard);
    }
    Some(soft)
}

/// The connection cap to enforce: `configured` when set (0: unlimited), else what the
/// descriptor `limit` leaves beside `pending` sockets and [`RESERVED`]; and a warning when the
/// configured caps do not fit the limit.
pub fn connection_cap(configured: u32, pending: u32, limit: Option<u64>) -> (u32, Option<String>) {
    let Some(limit) = limit else {
        return (configured, None);
    };
    let room = limit.saturating_sub(RESERVED + u64::from(pending));
    if configured == 0 {
        let cap = u32::try_from(room).unwrap_or(u32::MAX).max(1);
        let warn = (room < 1024).then(|| {
            format!(
                "the file-descriptor limit ({limit}) leaves room for only {room} clients beside `limits.max_pending_sockets` ({pending}); raise `ulimit -n`"
            )
        });
        return (cap, warn);
    }
    let warn = (u64::from(configured) > room).then(|| {
        format!(
            "`limits.max_connections` ({configured}) and `limits.max_pending_sockets` ({pending}) do not fit the file-descriptor limit ({limit}, {RESERVED} kept for the node): clients past {room} will find the node out of descriptors; raise `ulimit -n` or lower the caps"
        )
    });
    (configured, warn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unset_cap_takes_what_the_descriptors_leave() {
        assert_eq!(connection_cap(0, 1024, Some(20_000)).0, 20_000 - 1024 - 256);
        assert!(connection_cap(0, 1024, Some(20_000)).1.is_none());
        let (cap, warn) = connection_cap(0, 1024, Some(1024));
        assert_eq!(cap, 1);
        assert!(warn.unwrap().contains("ulimit"));
        assert_eq!(connection_cap(0, 1024, None), (0, None));
    }

    #[test]
    fn a_set_cap_is_kept_and_warned_about_when_it_does_not_fit() {
        assert_eq!(connection_cap(5000, 1024, Some(20_000)), (5000, None));
        let (cap, warn) = connection_cap(50_000, 1024, Some(20_000));
        assert_eq!(cap, 50_000);
        assert!(warn.unwrap().contains("limits.max_connections"));
    }
}
