//! `gatehouse-bench`: a load generator for Gatehouse nodes (client protocol v1) and the peers
//! it is compared with (`--target gatehouse|socketio|ws|uws|naive`, see `proto.rs`).
//!
//! - `idle`: many joined, idle connections → connect rate and the server's RSS per connection.
//! - `hotroom`: N connections into one room, C in flight → joined connections/s, connect→joined
//!   latency, and with `--presence` the presence events every member receives.
//! - `fanout`: one room, K subscribers, one publisher at a fixed rate (or `--saturate`) →
//!   delivered/s, publish→receive latency, loss, and the generator's own CPU use.
//! - `rooms`: R rooms × S subscribers, P publishers; same figures.
//! - `cluster`: like `fanout`/`rooms` over several nodes, plus inter-node messages per publish.
//! - `members`: many authenticated members of one room, held and checked (order, gaps,
//!   closes, drain reconnects) while the room is listed, moved, drained and failed over
//!   (`big-room.sh`).
//!
//! Each prints a human-readable summary and, with `--json`, one JSON line with every figure.
//! See `bench/README.md`.

mod hotroom;
mod idle;
mod load;
mod members;
mod proto;
mod report;
mod setup;
mod sys;
mod ws;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "gatehouse-bench", version, about)]
struct Cli {
    /// Also print one JSON line with every figure (last line on stdout).
    #[arg(long, global = true)]
    json: bool,
    /// Runtime worker threads: 1 = current-thread runtime (cheapest when the generator is
    /// pinned to one core), more = multi-threaded.
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Open N connections, join each to one of R rooms, measure connect rate and the node's
    /// RSS per connection.
    Idle(idle::IdleArgs),
    /// N connections into ONE room, C in flight: joined connections/s and connect→joined
    /// latency (with --presence: the presence events every member receives).
    Hotroom(hotroom::HotRoomArgs),
    /// K subscribers in one room and one publisher at a fixed rate (or --saturate):
    /// throughput, latency, loss.
    Fanout(load::LoadArgs),
    /// R rooms × S subscribers, P publishers (chat-like load).
    Rooms(load::LoadArgs),
    /// Subscribers spread over several nodes (--url per node), publishers on the first;
    /// inter-node messages per publish from /metrics.
    Cluster(load::LoadArgs),
    /// Many members (one JWT each from --tokens) of ONE room, held open: every room message
    /// checked for order and gaps, figures written to --status; until SIGTERM or --hold.
    Members(members::MembersArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_all()
            .build()
    }
    .context("build the tokio runtime")?;
    let (summary, json) = match cli.mode {
        Mode::Idle(a) => {
            let r = rt.block_on(idle::run(a, cli.threads))?;
            (r.summary(), serde_json::to_string(&r)?)
        }
        Mode::Hotroom(a) => {
            let r = rt.block_on(hotroom::run(a, cli.threads))?;
            (r.summary(), serde_json::to_string(&r)?)
        }
        Mode::Fanout(a) => load(&rt, "fanout", a, cli.threads)?,
        Mode::Rooms(a) => load(&rt, "rooms", a, cli.threads)?,
        Mode::Cluster(a) => load(&rt, "cluster", a, cli.threads)?,
        Mode::Members(a) => {
            let r = rt.block_on(members::run(a))?;
            (r.summary(), serde_json::to_string(&r)?)
        }
    };
    println!("{summary}");
    if cli.json {
        println!("{json}");
    }
    // Dropping the runtime would wait for nothing useful: thousands of sockets close on exit.
    rt.shutdown_background();
    Ok(())
}

fn load(
    rt: &tokio::runtime::Runtime,
    mode: &'static str,
    a: load::LoadArgs,
    threads: usize,
) -> Result<(String, String)> {
    let r = rt.block_on(load::run(mode, a, threads))?;
    Ok((r.summary(), serde_json::to_string(&r)?))
}
