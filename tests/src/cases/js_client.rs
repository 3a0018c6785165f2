//! The browser and Node.js client (`clients/js/`, `@gatehouse/client`), tested by its own npm
//! scripts and run from here, so the suite's one command covers it:
//!
//! - `clients/js/scripts/test.sh`: the package's unit tests (Node's test runner, fake timers)
//!   and its integration tests against real nodes (this suite's `gatehouse` binary, passed as
//!   `GATEHOUSE_BIN`; `ws` as the WebSocket): join/publish/history/presence, a drain of the
//!   client's node, kill -9 of the room's owner, a kick, an expired token, the README example;
//! - `clients/js/scripts/test-browser.sh`: Debian's Chromium (driven by playwright-core) runs
//!   the chat demo twice through HAProxy (`deploy/haproxy/haproxy.cfg`) in front of
//!   `deploy/local-cluster.sh 3` while `deploy/rolling-upgrade.sh` replaces every node.
//!
//! The scripts install what they need: the npm packages with `npm ci` from the committed
//! lockfile (`clients/js/scripts/setup.sh`, under a lock, so both tests may run at once), and
//! Chromium and HAProxy from Debian's packages (`clients/js/scripts/install-system-deps.sh`).
//! Both tests are `#[ignore]`d so that a quick `cargo nextest run` stays quick and offline; the
//! suite command (`--run-ignored all`) runs them. Each script runs in a process group of its own,
//! bounded here (270 s, below the suite's limit for these tests); if this test process is killed
//! first, the script's watchdog (`clients/js/scripts/watchdog.sh`) sees its stdin close and stops
//! the group, the browser test its cluster too.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn js_dir() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("clients/js")
}

/// Runs `clients/js/scripts/<script>` with the suite's node binary, bounded by `timeout`; on
/// timeout its process group (the script, node, Chromium, HAProxy) gets SIGTERM, then SIGKILL
/// after a 30 s grace. Returns the exit status and the combined output.
fn run(script: &str, timeout: Duration) -> (Option<i32>, String) {
    let mut child = Command::new("bash")
        .arg(js_dir().join("scripts").join(script))
        .current_dir(js_dir())
        .env("GATEHOUSE_BIN", crate::node::binary())
        // The script's group stops itself when this stdin closes: this test process is gone
        // (the suite's time limit kills the test's own process group, not this one).
        .env("JS_TESTS_STOP_ON_STDIN_EOF", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout ends everything it started and nothing else.
        .process_group(0)
        .spawn()
        .expect("bash runs");
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let readers: Vec<_> = [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ]
    .into_iter()
    .map(|mut pipe| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    })
    .collect();
    let deadline = Instant::now() + crate::wait::patience(timeout);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            // SIGTERM first: the browser test then stops its cluster, whose nodes run in process
            // groups of their own (deploy/local-cluster.sh); SIGKILL for whatever is left. The
            // closed stdin ends the script's watchdog.
            drop(child.stdin.take());
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGTERM);
            let grace = Instant::now() + Duration::from_secs(30);
            loop {
                // Reap the script when it is done; the group lives on while anything of it does.
                let _ = child.try_wait();
                let alive = nix::sys::signal::killpg(pgid, None).is_ok();
                if !alive || Instant::now() >= grace {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // The script is done: its watchdog (clients/js/scripts/watchdog.sh) sees EOF and ends.
    drop(child.stdin.take());
    let text = readers
        .into_iter()
        .map(|r| r.join().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n--- stderr ---\n");
    match status {
        Some(s) => (s.code(), text),
        None => (None, format!("{text}\n(killed after {timeout:?})")),
    }
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[test]
#[ignore = "npm ci, then the client's unit tests and its integration tests against real nodes (about a minute); run with --run-ignored all"]
fn js_client_unit_and_integration_tests_pass() {
    let (code, text) = run("test.sh", Duration::from_secs(270));
    assert_eq!(
        code,
        Some(0),
        "clients/js/scripts/test.sh failed:\n{}",
        tail(&text, 300)
    );
    // The spec reporter's summary, once for the unit tests and once for the integration tests.
    let passes = text.lines().filter(|l| l.contains("fail 0")).count();
    assert!(passes >= 2, "no test summary in:\n{}", tail(&text, 100));
    for line in text
        .lines()
        .filter(|l| l.contains("drain: reader moved") || l.contains("kill -9 of the owner:"))
    {
        eprintln!("{}", line.trim());
    }
}

#[test]
#[ignore = "installs Chromium and HAProxy (apt) and npm packages, then a rolling upgrade under two browser pages (about a minute); run with --run-ignored all"]
fn js_client_browser_chat_survives_a_rolling_upgrade_through_haproxy() {
    let (code, text) = run("test-browser.sh", Duration::from_secs(270));
    let result = text
        .lines()
        .find_map(|l| l.strip_prefix("JS-BROWSER-E2E "))
        .map(str::to_owned);
    assert_eq!(
        code,
        Some(0),
        "clients/js/scripts/test-browser.sh failed:\n{}",
        tail(&text, 200)
    );
    let result = result.unwrap_or_else(|| panic!("no result line in:\n{}", tail(&text, 100)));
    let v: serde_json::Value = serde_json::from_str(&result).unwrap();
    assert_eq!(v["ok"], true, "{result}");
    assert_eq!(v["problems"], serde_json::json!([]), "{result}");
    for page in v["pages"].as_array().unwrap() {
        assert_eq!(page["gaps"], 0, "{page}");
        assert!(page["reconnects"].as_u64().unwrap() >= 1, "{page}");
    }
    for line in text.lines().filter(|l| l.starts_with("[browser-e2e")) {
        eprintln!("{line}");
    }
}
