//! Everything the UI loop reacts to arrives as one `Event` on one channel: terminal input (read
//! on its own thread), network news (from the `client` task) and signals.

use crate::model::{Snapshot, Streamed};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

#[derive(Debug)]
pub enum Event {
    Term(crossterm::event::Event),
    Net(NetEvent),
    /// SIGTERM / SIGINT / SIGHUP delivered to the process.
    Signal,
}

/// What the network task reports.
#[derive(Debug, Clone, PartialEq)]
pub enum NetEvent {
    /// A whole poll: cluster, rooms, clients and the open drill-down.
    Snapshot(Box<Snapshot>),
    /// The first answer from an admin URL (at start, after a failover or a switch).
    Attached(String),
    /// The attached node did not answer; `next` is where the task goes now, if anywhere.
    Unreachable {
        url: String,
        error: String,
        next: Option<String>,
    },
    /// A call was refused or failed without the node being unreachable (401, 500, bad JSON).
    PollError(String),
    /// One frame of the attached node's `/admin/v1/events` stream.
    Stream(Streamed),
    /// The result of an operator action.
    OpResult {
        what: String,
        result: Result<String, String>,
    },
}

/// How long the input thread waits for a key before checking whether the UI has gone.
const INPUT_POLL: Duration = Duration::from_millis(200);

/// Reads terminal events on a plain thread (crossterm's reader blocks) until the UI goes away.
pub fn spawn_terminal_reader(tx: UnboundedSender<Event>) {
    std::thread::spawn(move || loop {
        if tx.is_closed() {
            return;
        }
        match crossterm::event::poll(INPUT_POLL) {
            Ok(true) => match crossterm::event::read() {
                Ok(ev) => {
                    if tx.send(Event::Term(ev)).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            },
            Ok(false) => {}
            Err(_) => return,
        }
    });
}

/// Turns SIGTERM, SIGINT and SIGHUP into `Event::Signal` (in raw mode Ctrl-C is a key instead).
pub fn spawn_signal_watch(tx: UnboundedSender<Event>) {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = hup.recv() => {}
        }
        let _ = tx.send(Event::Signal);
    });
}
