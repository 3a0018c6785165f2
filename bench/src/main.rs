//! `gatehouse-bench`: a load generator for Gatehouse nodes (client protocol v1).
//!
//! - `idle`: many joined, idle connections → connect rate and the node's RSS per connection.
//! - `fanout`: one room, K subscribers, one publisher at a fixed rate → delivered/s,
//!   publish→receive latency, loss, and the generator's own CPU use.
//!
//! Both print a human-readable summary and, with `--json`, one JSON line with every figure.
//! See `bench/README.md`.

mod fanout;
mod idle;
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
    /// K subscribers in one room and one publisher at a fixed rate: throughput, latency, loss.
    Fanout(fanout::FanoutArgs),
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
        Mode::Fanout(a) => {
            let r = rt.block_on(fanout::run(a, cli.threads))?;
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
