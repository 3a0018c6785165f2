//! The one place that builds the tracing subscriber: text or JSON lines on stderr, filtered by
//! `log.level` (a `tracing` directive such as `info` or `node=debug,info`).
//!
//! Unless `log.level` names `ractor_cluster` itself, ractor_cluster's per-session lines are left
//! out ([`QUIET_RACTOR`]): it writes two or three per cluster link that closes, which a stranger
//! on the cluster port could turn into a line per connection; the cluster manager logs what
//! matters about peers (joined, down, fenced, refused) and refusals before authentication are
//! rate-limited (`cluster::handshake`).

use cluster_config::{LogFormat, LogSection};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber.
pub fn init(cfg: &LogSection) {
    let filter = EnvFilter::try_new(directives(&cfg.level))
        .unwrap_or_else(|_| EnvFilter::new(directives("info")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true);
    let res = match cfg.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A subscriber already installed (tests) is fine.
    let _ = res;
}

/// ractor_cluster's targets that log per session, capped: session open/close lines (info) and
/// "node session exited" (warn, one per closed link). Framing errors stay (warn).
pub const QUIET_RACTOR: &str = "ractor_cluster::net::session=warn,ractor_cluster::node::node_session=warn,ractor_cluster::node=error";

/// `level` with [`QUIET_RACTOR`] added, unless it already says something about ractor_cluster.
fn directives(level: &str) -> String {
    if level.contains("ractor_cluster") {
        level.to_owned()
    } else {
        format!("{level},{QUIET_RACTOR}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ractor_cluster_is_quieted_unless_named() {
        assert!(super::directives("info").starts_with("info,ractor_cluster::"));
        assert_eq!(
            super::directives("ractor_cluster=debug"),
            "ractor_cluster=debug"
        );
    }
}
