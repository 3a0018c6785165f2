//! End to end: the real `gatehouse-tui` binary in a pseudo-terminal of 80×24 and of 160×48,
//! attached to one node of a real three-node cluster with real WebSocket clients, driven only by
//! the console's keys, and judged by what its screen shows (read through the `vt100` terminal
//! emulator) and by what the clients and nodes then do:
//!
//! - `3`, PgDn, PgUp, `s`: the Clients view pages through five connections more than a screenful
//!   holds, a screenful at a time, sorted by the API;
//! - `/` + a client id + Enter: the Clients view asks the API for that client only, and shows its
//!   id and user whole;
//! - `k`, reason, Enter, `y`: the client's socket closes with 4003;
//! - `/`, Ctrl-U, another id, Enter, `t`, `1` Enter, `1` Enter, `y`: that client's publishes
//!   get `rate_limited` within a second;
//! - `2`, `/lobby` Enter, `p`, a message, Enter, `y`: a member of the room gets it, from the
//!   backend;
//! - `h`: the room's history, newest first, the message just published on top; `h`: its members;
//! - `1`, Down Down, `d`, `y`: node-2 reaches `drained`, on screen;
//! - `q`: the console exits 0 and leaves the alternate screen.
//!
//! With `GATEHOUSE_PTY_CAPTURE=<dir>` the screens along the way are written there as text
//! (`<cols>x<rows>-<step>.txt`, the console section of `docs/admin-console.md` shows them).
//!
//! Every wait polls with a deadline; the console and the nodes are ended by the guards that
//! started them.

#![allow(clippy::unwrap_used)]

use integration_tests::client::{Client, Ended};
use integration_tests::cluster::{builder, plan, wait_active};
use integration_tests::wait::patience;
use integration_tests::Node;
use portable_pty::{Child, CommandBuilder, MasterPty, PtySize};
use serde_json::json;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const COOKIE: &str = "tui-pty-test-cookie-0123456789abcdef";

/// The console running in a pseudo-terminal; killed on drop if it is still running.
struct Console {
    child: Box<dyn Child + Send + Sync>,
    writer: Box<dyn Write + Send>,
    parser: Arc<Mutex<vt100::Parser>>,
    _master: Box<dyn MasterPty + Send>,
    size: (u16, u16),
}

impl Console {
    fn start(admin_url: &str, rows: u16, cols: u16) -> Console {
        let pair = portable_pty::native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pseudo-terminal");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_gatehouse-tui"));
        cmd.args(["--node", admin_url]);
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("GATEHOUSE_ADMIN_TOKEN");
        let child = pair.slave.spawn_command(cmd).expect("gatehouse-tui starts");
        // Only the child holds the terminal's slave side now: its exit ends the reader.
        drop(pair.slave);
        let parser = Arc::new(Mutex::new(vt100::Parser::new(rows, cols, 0)));
        let mut reader = pair.master.try_clone_reader().expect("pty reader");
        {
            let parser = parser.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => parser.lock().unwrap().process(&buf[..n]),
                    }
                }
            });
        }
        let writer = pair.master.take_writer().expect("pty writer");
        Console {
            child,
            writer,
            parser,
            _master: pair.master,
            size: (cols, rows),
        }
    }

    /// With `GATEHOUSE_PTY_CAPTURE=<dir>`, writes the screen to `<dir>/<cols>x<rows>-<step>.txt`.
    fn capture(&self, step: &str) {
        let Some(dir) = std::env::var_os("GATEHOUSE_PTY_CAPTURE") else {
            return;
        };
        let (cols, rows) = self.size;
        let path = std::path::Path::new(&dir).join(format!("{cols}x{rows}-{step}.txt"));
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(path, self.screen());
    }

    /// What the terminal shows now, one line per row.
    fn screen(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// Types keys (text, or escape sequences such as Down `\x1b[B`).
    fn keys(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    /// Polls the screen until `ok` holds for it, or fails showing the screen.
    async fn until(&self, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + patience(timeout);
        let mut poll = tokio::time::interval(Duration::from_millis(20));
        loop {
            poll.tick().await;
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            if Instant::now() >= deadline {
                panic!("timed out after {timeout:?} waiting for {what}; the screen:\n{s}");
            }
        }
    }

    /// Waits until the screen shows `text`.
    async fn shows(&self, text: &str, timeout: Duration) -> String {
        self.until(&format!("{text:?} on screen"), timeout, |s| {
            s.contains(text)
        })
        .await
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The screen line holding `needle`, if any (not the list's title, which names its filter).
fn line_with<'a>(screen: &'a str, needle: &str) -> Option<&'a str> {
    screen
        .lines()
        .find(|l| l.contains(needle) && !l.contains("filter \""))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_finds_kicks_throttles_publishes_and_drains_through_the_console_at_80x24() {
    operator_session(24, 80).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_finds_kicks_throttles_publishes_and_drains_through_the_console_at_160x48() {
    operator_session(48, 160).await;
}

/// The whole session in a terminal of `rows`×`cols`.
async fn operator_session(rows: u16, cols: u16) {
    let m = plan(3);
    let seeds = [m[0].cluster_port];
    let nodes: Vec<Node> = m
        .iter()
        .map(|x| builder(x, &seeds, COOKIE, "").start())
        .collect();
    let names = ["node-0", "node-1", "node-2"];
    for n in &nodes {
        wait_active(n, &names, Duration::from_secs(20)).await;
    }
    // A bystander on node-0, the client to kick on node-1, the one to throttle on node-2.
    let mut bystander = Client::connect(&nodes[0].ws_url("")).await;
    bystander.join("lobby").await;
    let mut victim = Client::connect(&nodes[1].ws_url("")).await;
    victim.join("lobby").await;
    let mut noisy = Client::connect(&nodes[2].ws_url("")).await;
    noisy.join("lobby").await;
    let (victim_id, noisy_id) = (victim.id(), noisy.id());
    let noisy_user = noisy.welcome["user"].as_str().unwrap().to_owned();
    // A page is a screenful (the body less its borders and header); enough others, spread over
    // the nodes, for the Clients list to need a second page of five.
    let page = usize::from(rows) - 6;
    let total = page + 5;
    let mut crowd = Vec::new();
    for i in 0..total - 3 {
        crowd.push(Client::connect(&nodes[i % 3].ws_url("")).await);
    }

    let mut tui = Console::start(&format!("http://{}", nodes[0].admin), rows, cols);
    // 1 Cluster: every node, by name, active.
    tui.until("three active nodes", Duration::from_secs(10), |s| {
        names
            .iter()
            .all(|n| line_with(s, n).is_some_and(|l| l.contains("active")))
    })
    .await;

    tui.capture("cluster");
    // 3 Clients: a screenful a page; PgDn, PgUp fetch the others.
    tui.keys("3");
    let first = format!("Clients 1-{page} of {total} · sort");
    tui.shows(&format!("{first} id "), Duration::from_secs(5))
        .await;
    tui.capture("clients");
    tui.keys("\x1b[6~");
    tui.shows(
        &format!("Clients {}-{total} of {total} · sort id · p2 ", page + 1),
        Duration::from_secs(5),
    )
    .await;
    tui.keys("\x1b[5~");
    tui.shows(&format!("{first} id "), Duration::from_secs(5))
        .await;
    // `s` sorts on the server: the title loses its `loading…` once the API answered.
    tui.keys("s");
    tui.shows(&format!("{first} user ─"), Duration::from_secs(5))
        .await;
    tui.keys("ssss");
    tui.shows(&format!("{first} id ─"), Duration::from_secs(5))
        .await;
    // Filtered on the server to the victim.
    tui.keys(&format!("/{victim_id}\r"));
    let s = tui
        .shows(
            &format!("Clients 1-1 of 1 · sort id · filter \"{victim_id}\""),
            Duration::from_secs(5),
        )
        .await;
    let row = line_with(&s, &victim_id).unwrap_or_else(|| panic!("no row for the victim:\n{s}"));
    assert!(row.contains("node-1"), "{row}");
    assert!(!s.contains(&noisy_id), "the filter hides the others:\n{s}");

    // k: reason, Enter, y. The socket closes with 4003.
    tui.keys("k");
    tui.shows("reason:", Duration::from_secs(2)).await;
    tui.keys("spam\r");
    tui.shows("y to confirm", Duration::from_secs(2)).await;
    tui.keys("y");
    tui.shows(&format!("ok: kick {victim_id}"), Duration::from_secs(5))
        .await;
    match victim.expect_close(Duration::from_secs(5)).await {
        (Ended::Closed(code, reason), _) => {
            assert_eq!(code, 4003, "{reason}");
            assert_eq!(reason, "spam");
        }
        other => panic!("the kicked client saw {other:?}"),
    }
    // The list follows: the filter now matches nobody.
    tui.shows("Clients 0 of 0 ", Duration::from_secs(5)).await;

    // t: 1 msg/s, burst 1, y. Publishes get `rate_limited` within a second.
    tui.keys(&format!("/\x15{noisy_id}\r"));
    tui.shows(&format!("filter \"{noisy_id}\""), Duration::from_secs(5))
        .await;
    let s = tui
        .until("the noisy client's row", Duration::from_secs(5), |s| {
            s.contains("Clients 1-1 of 1") && s.contains(&noisy_id)
        })
        .await;
    // Its id and its user, whole.
    let row = line_with(&s, &noisy_id).unwrap();
    assert!(row.contains(&noisy_user), "{row}\n{s}");
    tui.keys("t");
    tui.shows("msgs/s:", Duration::from_secs(2)).await;
    tui.keys("1\r");
    tui.shows("burst:", Duration::from_secs(2)).await;
    tui.keys("1\r");
    tui.shows("y to confirm", Duration::from_secs(2)).await;
    tui.keys("y");
    tui.shows(&format!("ok: throttle {noisy_id}"), Duration::from_secs(5))
        .await;
    let throttled_at = Instant::now();
    let mut limited = None;
    for id in 1..=50u64 {
        let (reply, _) = noisy
            .request(json!({"op":"publish","room":"lobby","data":id}), id)
            .await;
        if reply["ok"] == false && reply["error"]["code"] == "rate_limited" {
            limited = Some(throttled_at.elapsed());
            break;
        }
        if throttled_at.elapsed() > Duration::from_secs(1) {
            break;
        }
    }
    let limited = limited.expect("a publish answered rate_limited");
    assert!(limited <= Duration::from_secs(1), "took {limited:?}");
    // The console shows the throttle in force.
    tui.until("the throttled flag", Duration::from_secs(5), |s| {
        line_with(s, &noisy_id).is_some_and(|l| l.trim_end_matches(['│', ' ']).ends_with("yes"))
    })
    .await;

    // 2 Rooms, the lobby, p, a message, Enter, y: its members get it from the backend.
    tui.keys("2");
    tui.shows("Rooms 1-", Duration::from_secs(5)).await;
    tui.keys("/lobby\r");
    tui.until("the lobby alone", Duration::from_secs(5), |s| {
        s.contains("Rooms 1-1 of 1 · sort name · filter \"lobby\" ─")
    })
    .await;
    tui.capture("rooms");
    tui.keys("p");
    tui.shows("publish to lobby (JSON or text):", Duration::from_secs(2))
        .await;
    tui.keys(r#"{"note":"hello"}"#);
    tui.keys("\r");
    tui.shows(
        r#"publish {"note":"hello"} to lobby? y to confirm"#,
        Duration::from_secs(2),
    )
    .await;
    tui.keys("y");
    tui.shows(
        r#"ok: publish {"note":"hello"} to lobby"#,
        Duration::from_secs(5),
    )
    .await;
    let (m, _) = bystander
        .recv_until(|f| f["op"] == "message" && f["from"]["backend"] == true)
        .await;
    assert_eq!(m["data"]["note"], "hello");
    let published = m["seq"].as_u64().unwrap();
    // h: the room's history, newest first: the message just published on top, the noisy
    // client's below it.
    tui.keys("h");
    let s = tui
        .until(
            "the message on top of the history",
            Duration::from_secs(5),
            |s| {
                s.contains("history 1-")
                    && s.lines()
                        .find(|l| l.contains("SEQ") && l.contains("DATA"))
                        .is_some()
                    && line_with(s, r#"{"note":"hello"}"#).is_some_and(|l| {
                        l.contains("backend") && l.contains(&published.to_string())
                    })
            },
        )
        .await;
    tui.capture("history");
    let rows_shown: Vec<&str> = s
        .lines()
        .skip_while(|l| !(l.contains("SEQ") && l.contains("DATA")))
        .skip(1)
        .collect();
    assert!(
        rows_shown[0].contains(r#"{"note":"hello"}"#),
        "the newest first:\n{s}"
    );
    assert!(
        rows_shown[1].contains(&noisy_id) && rows_shown[1].contains(&noisy_user),
        "the noisy client's publish below it, its id and user whole:\n{s}"
    );
    // h: its members (the bystander and the noisy client), paged by the API.
    tui.keys("h");
    tui.shows("members 1-2 of 2", Duration::from_secs(5)).await;
    tui.capture("members");
    tui.keys("\x1b");
    tui.shows("Rooms 1-1 of 1", Duration::from_secs(5)).await;

    // 1 Cluster, third node, d, y: node-2 drains, on screen.
    tui.keys("1");
    tui.shows("selected node (d drain", Duration::from_secs(2))
        .await;
    tui.keys("\x1b[B\x1b[B");
    tui.shows("node-2  admin", Duration::from_secs(2)).await;
    tui.keys("d");
    tui.shows("drain node-2? y to confirm", Duration::from_secs(2))
        .await;
    tui.keys("y");
    tui.shows("ok: drain node-2", Duration::from_secs(5)).await;
    tui.until("node-2 drained", Duration::from_secs(20), |s| {
        line_with(s, "node-2 ").is_some_and(|l| l.contains("drained"))
    })
    .await;
    tui.capture("drained");
    let state = integration_tests::cluster::state_of(&nodes[0], "node-2").await;
    assert_eq!(state.as_deref(), Some("drained"));

    // 4 Events: the operator's actions and what the attached node streamed.
    tui.keys("4");
    tui.until(
        "the publish in the event log",
        Duration::from_secs(5),
        |s| s.contains("Events ") && s.contains("operator published"),
    )
    .await;
    tui.capture("events");

    // q: the console exits 0 and restores the terminal.
    tui.keys("q");
    let deadline = Instant::now() + patience(Duration::from_secs(5));
    let mut poll = tokio::time::interval(Duration::from_millis(20));
    let status = loop {
        poll.tick().await;
        if let Some(st) = tui.child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "the console did not quit");
    };
    assert!(status.success(), "{status:?}");
    let deadline = Instant::now() + patience(Duration::from_secs(2));
    while tui.parser.lock().unwrap().screen().alternate_screen() {
        assert!(
            Instant::now() < deadline,
            "the console did not leave the alternate screen"
        );
        poll.tick().await;
    }
    drop((bystander, crowd));
}
