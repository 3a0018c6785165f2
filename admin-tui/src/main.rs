//! `gatehouse-tui`: the Gatehouse admin console, a terminal dashboard over a node's admin API
//! (`docs/admin-api.md`).
//!
//! ```text
//! gatehouse-tui [--node URL] [--token-file FILE] [--token TOKEN]
//! ```
//!
//! Attaches to one node's admin listener (default `http://127.0.0.1:9100`; the token comes from
//! `--token`, else `--token-file`, else `GATEHOUSE_ADMIN_TOKEN`) and shows the whole cluster:
//! 1 Cluster (nodes, drain progress, msgs/s sparklines), 2 Rooms (Enter: members; `h`: history,
//! newest first), 3 Clients (Enter: connections), 4 Events (the attached node's event stream,
//! what the console saw change between polls, actions, attach and failover). Rooms, clients and
//! a room's members and history are paged by the API, a screenful at a time; tables size their
//! columns by their content and the terminal's width. Keys: 1-4/Tab views, Up/Down/PgUp/PgDn,
//! Enter/Esc, `/` filter, `s` sort, `?` help, `q` quit; `k` kick, `t`/`T` throttle/unthrottle,
//! `j`/`l` join/leave a room, `d`/`u` drain/undrain, `m` migrate, `p` publish, `h` history. Every
//! action ends in the status line and the Events view.
//!
//! Layout (house style §9.8): `client` is the tokio network task (polls about every second,
//! speaking the typed admin API of `protocol::admin`, sends whole snapshots, runs actions, fails
//! over to another node's `admin_address` when the attached node stops answering); `event`
//! merges terminal input, network news and signals into one channel; `keymap` turns keys into
//! `action::Action`s (pure); `app::App::update` keeps navigation, prompts and the outbox and
//! hands the rest to the `views` (cluster, rooms, clients, events), each owning its state,
//! updating it and drawing it through `ui` (no I/O). The UI loop never awaits the network. The
//! terminal is restored on exit, on panic (ratatui's hook) and on Ctrl-C / SIGTERM.

mod action;
mod app;
mod client;
mod event;
mod keymap;
mod model;
mod ui;
mod views;

use anyhow::Context as _;
use clap::Parser;
use event::Event;
use std::process::ExitCode;
use tokio::sync::mpsc;

/// The Gatehouse admin console.
#[derive(Parser)]
#[command(name = "gatehouse-tui", version, about)]
struct Cli {
    /// Admin API of the node to attach to.
    #[arg(long, default_value = "http://127.0.0.1:9100")]
    node: String,
    /// File holding the admin token (else GATEHOUSE_ADMIN_TOKEN).
    #[arg(long)]
    token_file: Option<std::path::PathBuf>,
    /// The admin token itself (visible in the process list: prefer the file or the variable).
    #[arg(long)]
    token: Option<String>,
}

fn token(cli: &Cli) -> anyhow::Result<Option<String>> {
    if let Some(t) = &cli.token {
        return Ok(Some(t.trim().to_owned()));
    }
    if let Some(f) = &cli.token_file {
        let t = std::fs::read_to_string(f)
            .with_context(|| format!("reading the token file {}", f.display()))?;
        return Ok(Some(t.trim().to_owned()));
    }
    Ok(std::env::var("GATEHOUSE_ADMIN_TOKEN")
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty()))
}

fn normalize_url(node: &str) -> String {
    let n = node.trim().trim_end_matches('/');
    if n.contains("://") {
        n.to_owned()
    } else {
        format!("http://{n}")
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let token = match token(&cli) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("gatehouse-tui: {e:#}");
            return ExitCode::from(2);
        }
    };
    let url = normalize_url(&cli.node);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gatehouse-tui: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // `ratatui::init` enters raw mode and the alternate screen and installs a panic hook that
    // restores the terminal before the panic message prints.
    let mut terminal = ratatui::init();
    let result = rt.block_on(run(&mut terminal, url, token));
    ratatui::restore();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse-tui: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    terminal: &mut ratatui::DefaultTerminal,
    url: String,
    token: Option<String>,
) -> anyhow::Result<()> {
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<Event>();
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    event::spawn_terminal_reader(ev_tx.clone());
    event::spawn_signal_watch(ev_tx.clone());
    tokio::spawn(client::run(url.clone(), token, cmd_rx, ev_tx));

    let mut app = app::App::new(&url);
    loop {
        let height = terminal.size()?.height;
        // A page of rooms or clients is a screenful: the body less its borders and header.
        app.set_page_size(usize::from(height.saturating_sub(6)));
        for cmd in app.take_commands() {
            let _ = cmd_tx.send(cmd);
        }
        terminal.draw(|f| ui::render(&app, f))?;
        let Some(ev) = ev_rx.recv().await else { break };
        handle(&mut app, ev);
        // Apply whatever else is already queued before drawing again.
        while let Ok(ev) = ev_rx.try_recv() {
            handle(&mut app, ev);
        }
        if app.quit {
            break;
        }
    }
    Ok(())
}

fn handle(app: &mut app::App, ev: Event) {
    use crossterm::event::{Event as TermEvent, KeyEventKind};
    match ev {
        Event::Term(TermEvent::Key(k)) if k.kind != KeyEventKind::Release => {
            if let Some(a) = keymap::action_for(k, app.key_mode()) {
                app.update(a);
            }
        }
        Event::Term(_) => {}
        Event::Net(n) => app.on_net(n),
        Event::Signal => app.quit = true,
    }
}
