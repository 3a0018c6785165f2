//! `gatehouse`: run a node, or check a config file (`gatehouse check-config FILE`).
//! Errors end here: a bad config exits 64 with a message naming the file and field.

use clap::{Parser, Subcommand};
use cluster_config::{load, render, Overrides, SystemEnv};
use std::path::PathBuf;
use std::process::ExitCode;

/// The system allocator behind a per-thread cache of the blocks a handshake borrows
/// (`node::memory::cache`).
#[global_allocator]
static ALLOC: node::memory::cache::HandshakeBlocks = node::memory::cache::HandshakeBlocks;

/// Gatehouse: a clustered WebSocket gateway.
#[derive(Parser)]
#[command(name = "gatehouse", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// TOML config file (defaults are embedded; every field is optional).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Logical node name (e.g. node-a).
    #[arg(long)]
    name: Option<String>,
    /// Public listener: WebSocket, backend API, health, metrics.
    #[arg(long)]
    listen: Option<String>,
    /// Admin API listener.
    #[arg(long)]
    admin_listen: Option<String>,
    /// Cluster listener.
    #[arg(long)]
    cluster_listen: Option<String>,
    /// Host other nodes use to reach this one.
    #[arg(long)]
    advertise: Option<String>,
    /// Seed peers, comma-separated host:port.
    #[arg(long)]
    seeds: Option<String>,
    /// Exit when a drain started through the admin API completes.
    #[arg(long)]
    exit_when_drained: bool,
    /// Log format: text or json.
    #[arg(long)]
    log_format: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a config file and print the effective config with secrets redacted.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let overrides = Overrides {
        name: cli.name,
        listen: cli.listen,
        admin_listen: cli.admin_listen,
        cluster_listen: cli.cluster_listen,
        advertise: cli.advertise,
        seeds: cli.seeds,
        exit_when_drained: cli.exit_when_drained,
        log_format: cli.log_format,
    };
    if let Some(Command::CheckConfig { file }) = cli.command {
        return match load(Some(&file), &SystemEnv, &overrides) {
            Ok(c) => {
                #[allow(clippy::print_stdout)]
                {
                    println!(
                        "# {}: valid\n{}",
                        file.display(),
                        render::effective_toml(&c)
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("gatehouse: {e}");
                ExitCode::from(1)
            }
        };
    }
    let config = match load(cli.config.as_deref(), &SystemEnv, &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gatehouse: {e}");
            return ExitCode::from(64);
        }
    };
    node::telemetry::init(&config.log);
    node::memory::tune_allocator();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gatehouse: cannot start the runtime: {e}");
            return ExitCode::from(70);
        }
    };
    match rt.block_on(node::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let e = anyhow::Error::from(e);
            tracing::error!(error = %format!("{e:#}"), "gatehouse stopped");
            eprintln!("gatehouse: {e:#}");
            ExitCode::from(1)
        }
    }
}
