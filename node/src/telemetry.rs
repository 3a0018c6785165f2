//! The one place that builds the tracing subscriber: text or JSON lines on stderr, filtered by
//! `log.level` (a `tracing` directive such as `info` or `node=debug,info`).

use cluster_config::{LogFormat, LogSection};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber.
pub fn init(cfg: &LogSection) {
    let filter = EnvFilter::try_new(&cfg.level).unwrap_or_else(|_| EnvFilter::new("info"));
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
