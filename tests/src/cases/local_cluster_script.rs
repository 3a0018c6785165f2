//! `deploy/local-cluster.sh`: starts a detached three-node cluster from the example configs
//! (ports shifted by `BASE_PORT_OFFSET` so a developer's own cluster is left alone), prints a
//! table of the nodes, and `stop RUN_DIR` sends SIGTERM to each and reports exit status 0.

use crate::node::{binary, TempDir};
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local-cluster.sh")
}

/// Exit status of the script when a node found one of its ports taken.
const PORT_IN_USE: i32 = 3;

/// The script, with a clean `GATEHOUSE_*` environment, the test's binary and `run_dir`.
fn command(run_dir: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(script()).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("GATEHOUSE_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("GATEHOUSE_BIN", binary())
        .env("RUN_DIR", run_dir)
        .env("READY_TIMEOUT_S", "20")
        .env("STOP_TIMEOUT_S", "15")
        .stdin(std::process::Stdio::null());
    cmd
}

/// Runs the script to completion, bounded by `timeout`.
async fn run(run_dir: &Path, args: &[&str], extra_env: &[(&str, String)]) -> Output {
    let mut cmd = tokio::process::Command::from(command(run_dir, args));
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.kill_on_drop(true);
    let timeout = crate::wait::patience(Duration::from_secs(45));
    match tokio::time::timeout(timeout, cmd.output()).await {
        Ok(out) => out.unwrap(),
        Err(_) => panic!(
            "{} {args:?} did not finish within {timeout:?}",
            script().display()
        ),
    }
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Whether every port the script would use for 3 nodes at `offset` can be bound right now.
fn ports_free(offset: u16) -> bool {
    [8080u16, 9100, 7100]
        .iter()
        .all(|base| (1..=3).all(|i| TcpListener::bind(("127.0.0.1", base + offset + i)).is_ok()))
}

/// Stops whatever the script left running in `run_dir` if the test fails half-way.
struct StopOnDrop<'a>(&'a Path, bool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        if self.1 {
            let _ = command(self.0, &["stop", self.0.to_str().unwrap()])
                .env("STOP_TIMEOUT_S", "5")
                .output();
        }
    }
}

/// A row of the printed table: name, ws URL, admin URL, cluster address, pid.
struct Row {
    name: String,
    ws: String,
    admin: String,
    pid: i32,
}

fn table(stdout: &str) -> Vec<Row> {
    stdout
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                [name, ws, admin, _cluster, pid]
                    if name.starts_with("node-") && ws.starts_with("ws://") =>
                {
                    Some(Row {
                        name: (*name).to_owned(),
                        ws: (*ws).to_owned(),
                        admin: (*admin).to_owned(),
                        pid: pid.parse().ok()?,
                    })
                }
                _ => None,
            }
        })
        .collect()
}

fn alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None) != Err(Errno::ESRCH)
}

#[tokio::test]
async fn local_cluster_script_starts_three_nodes_detached_and_stops_them() {
    let dir = TempDir::new();
    let run_dir = dir.0.join("run");
    let mut guard = StopOnDrop(&run_dir, false);

    // A random offset whose ports are free; the script exits 3 if one was taken meanwhile.
    let mut started = None;
    for _ in 0..5 {
        let offset = 1000 + 10 * (rand::random::<u16>() % 1900);
        if !ports_free(offset) {
            continue;
        }
        guard.1 = true;
        let out = run(
            &run_dir,
            &["3", "--detach"],
            &[("BASE_PORT_OFFSET", offset.to_string())],
        )
        .await;
        if out.status.code() == Some(PORT_IN_USE) {
            continue;
        }
        assert!(out.status.success(), "start failed: {}", text(&out));
        started = Some((offset, out));
        break;
    }
    let (offset, out) = started.expect("no free port offset found in 5 tries");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();

    // The table names the three nodes with their shifted ports and live pids.
    let rows = table(&stdout);
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["node-a", "node-b", "node-c"], "{}", text(&out));
    for (i, r) in (1u16..).zip(&rows) {
        assert_eq!(r.ws, format!("ws://127.0.0.1:{}/ws", 8080 + offset + i));
        assert_eq!(r.admin, format!("http://127.0.0.1:{}", 9100 + offset + i));
        assert!(alive(r.pid), "{} (pid {}) is not running", r.name, r.pid);
        let pidfile = std::fs::read_to_string(run_dir.join(format!("{}.pid", r.name))).unwrap();
        assert_eq!(pidfile.trim(), r.pid.to_string());
    }
    assert!(stdout.contains("/admin/v1/cluster"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "deploy/local-cluster.sh stop {}",
            run_dir.display()
        )),
        "{stdout}"
    );
    let cookie = std::fs::metadata(run_dir.join("cookie")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(cookie.permissions().mode() & 0o777, 0o600);
    }

    // Any node sees all three active.
    let url = format!("{}/admin/v1/cluster", rows[1].admin);
    let http = reqwest::Client::new();
    let view = crate::wait::until("3 active nodes", Duration::from_secs(10), || {
        let req = http.get(&url).timeout(Duration::from_secs(2));
        async move {
            let v: serde_json::Value = req.send().await.ok()?.json().await.ok()?;
            let active = v["nodes"]
                .as_array()?
                .iter()
                .filter(|n| n["state"] == "active")
                .count();
            (active == 3).then_some(v)
        }
    })
    .await;
    assert_eq!(view["partial"], false, "{view}");
    let ready = http
        .get(format!(
            "{}/readyz",
            rows[0]
                .ws
                .replace("ws://", "http://")
                .trim_end_matches("/ws")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    // `stop RUN_DIR`: every node exits, each with status 0 reported.
    let out = run(&run_dir, &["stop", run_dir.to_str().unwrap()], &[]).await;
    guard.1 = false;
    assert!(out.status.success(), "stop failed: {}", text(&out));
    let stopped = String::from_utf8_lossy(&out.stdout);
    for r in &rows {
        assert!(
            stopped.lines().any(|l| l.contains(&r.name)
                && l.contains(&format!("pid {}", r.pid))
                && l.contains("exited with status 0")),
            "no exit status 0 reported for {}: {}",
            r.name,
            text(&out)
        );
        let exit = std::fs::read_to_string(run_dir.join(format!("{}.exit", r.name))).unwrap();
        assert_eq!(exit.trim(), "0", "{}", r.name);
        crate::wait::until(
            &format!("{} (pid {}) gone", r.name, r.pid),
            Duration::from_secs(2),
            || async { (!alive(r.pid)).then_some(()) },
        )
        .await;
    }
}
