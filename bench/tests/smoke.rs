//! Smoke runs of every load-generator scenario against real Gatehouse nodes: seconds each, small
//! N, no timing assertions — only that the generator ran and counted connections and deliveries
//! sanely (everything published reached every subscriber, nothing lost, nobody closed).
//!
//! This file lives in the bench package on purpose: a package with integration tests gets its
//! binaries built by `cargo test`/`cargo nextest run`, so `gatehouse-bench` is always built with
//! the suite (the node binary likewise, through `node/tests`). The nodes are started by the
//! end-to-end harness (`integration-tests`).

#![allow(clippy::unwrap_used)]

use integration_tests::cluster::{builder, builder_with, plan, wait_active};
use integration_tests::node::Node;
use integration_tests::wait::until;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

/// Limits lifted as in `bench/bench.toml`.
const LIFTED: &str = "[auth]\nmax_connections_per_ip = 1000000\n[limits]\nmsgs_per_sec = 1000000\nburst = 1000000\nbytes_per_sec = 1000000000\noutbound_queue = 4096\noutbound_queue_bytes = 8388608\n";

/// Runs `gatehouse-bench --json ARGS…` and returns its JSON report (the last stdout line).
fn bench(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse-bench"))
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "gatehouse-bench {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().rfind(|l| l.starts_with('{')).unwrap();
    serde_json::from_str(line).unwrap()
}

fn node() -> Node {
    Node::builder().toml(LIFTED).start()
}

/// Everything published reached every subscriber once, in order, and nobody was closed.
fn assert_delivered(r: &Value, subscribers: u64) {
    assert_eq!(r["subscribers_joined"], subscribers, "{r}");
    assert_eq!(r["connect_failed"], 0, "{r}");
    let expected = r["expected_deliveries"].as_u64().unwrap();
    assert!(expected > 0, "{r}");
    assert_eq!(r["received_deliveries"], expected, "{r}");
    assert_eq!(r["lost_deliveries"], 0, "{r}");
    assert_eq!(r["out_of_order"], 0, "{r}");
    assert_eq!(r["subscribers_closed"], 0, "{r}");
    assert_eq!(r["publish_errors"], 0, "{r}");
    assert_eq!(r["publish_acked"], r["published"], "{r}");
    assert_eq!(r["join_epochs"], 1, "{r}");
    assert!(r["latency"]["samples"].as_u64().unwrap() > 0, "{r}");
    assert!(r["generator_cpu_pct"].as_f64().unwrap() >= 0.0, "{r}");
}

#[test]
fn idle_counts_connections_joins_and_memory() {
    let n = node();
    let url = n.ws_url("");
    let pid = n.pid().to_string();
    let r = bench(&[
        "idle",
        "--url",
        &url,
        "--connections",
        "60",
        "--rooms",
        "6",
        "--pid",
        &pid,
        "--settle-max",
        "5",
    ]);
    assert_eq!(r["target"], "gatehouse");
    assert_eq!(r["connected"], 60, "{r}");
    assert_eq!(r["joined"], 60, "{r}");
    assert_eq!(r["closed_by_server"], 0, "{r}");
    assert!(r["connects_per_s"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["node_rss_after_kib"].as_u64().unwrap() > 0, "{r}");
}

#[test]
fn fanout_delivers_every_message_to_every_subscriber() {
    let n = node();
    let url = n.ws_url("");
    let pid = n.pid().to_string();
    let r = bench(&[
        "fanout",
        "--url",
        &url,
        "--pid",
        &pid,
        "--subscribers",
        "20",
        "--rate",
        "40",
        "--warmup",
        "0.5",
        "--seconds",
        "1",
    ]);
    assert_eq!(r["mode"], "fanout");
    assert_delivered(&r, 20);
    assert_eq!(
        r["expected_deliveries"],
        r["published"].as_u64().unwrap() * 20
    );
    assert!(r["node_cpu_pct"].as_f64().is_some(), "{r}");
}

#[test]
fn fanout_saturation_runs_steps() {
    let n = node();
    let url = n.ws_url("");
    let r = bench(&[
        "fanout",
        "--url",
        &url,
        "--subscribers",
        "10",
        "--saturate",
        "--rate",
        "20",
        "--max-steps",
        "2",
        "--bisect",
        "1",
        "--warmup",
        "0.3",
        "--seconds",
        "0.7",
    ]);
    let steps = r["steps"].as_array().unwrap();
    assert!((1..=3).contains(&steps.len()), "{r}");
    assert!(steps[0]["delivered_per_s"].as_f64().unwrap() > 0.0, "{r}");
    // A step's rate grows by the step factor.
    if steps.len() >= 2 {
        assert!(
            steps[1]["target_rate"].as_f64().unwrap() > steps[0]["target_rate"].as_f64().unwrap()
        );
    }
}

#[test]
fn rooms_spread_subscribers_and_publishers() {
    let n = node();
    let url = n.ws_url("");
    let r = bench(&[
        "rooms",
        "--url",
        &url,
        "--rooms",
        "4",
        "--subscribers",
        "5",
        "--publishers",
        "2",
        "--rate",
        "40",
        "--warmup",
        "0.5",
        "--seconds",
        "1",
    ]);
    assert_eq!(r["mode"], "rooms");
    assert_delivered(&r, 20);
    // Each message reaches the 5 subscribers of its room only.
    assert_eq!(
        r["expected_deliveries"],
        r["published"].as_u64().unwrap() * 5
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_spreads_subscribers_and_reads_inter_node_messages() {
    let members = plan(2);
    let seeds: Vec<u16> = members.iter().map(|m| m.cluster_port).collect();
    let nodes: Vec<Node> = members
        .iter()
        .map(|m| builder(m, &seeds, "bench-smoke-cookie", LIFTED).start())
        .collect();
    for n in &nodes {
        wait_active(n, &["node-0", "node-1"], Duration::from_secs(30)).await;
    }
    let (u0, u1) = (nodes[0].ws_url(""), nodes[1].ws_url(""));
    let r = tokio::task::spawn_blocking(move || {
        bench(&[
            "cluster",
            "--url",
            &u0,
            "--url",
            &u1,
            "--subscribers",
            "20",
            "--rate",
            "30",
            "--warmup",
            "0.5",
            "--seconds",
            "1",
        ])
    })
    .await
    .unwrap();
    assert_eq!(r["mode"], "cluster");
    assert_delivered(&r, 20);
    let per_publish = r["inter_node_msgs_per_publish"].as_f64().unwrap();
    assert!((0.0..=10.0).contains(&per_publish), "{r}");
}

/// A `members` run over two nodes, held until `act` has been done to node-1 and its 10
/// clients have moved to node-0; returns the run's JSON report and its per-client lines.
async fn members_moved_off_node_1(
    name: &str,
    node_lines: &str,
    act: impl FnOnce(&mut Vec<Node>),
) -> (Value, Vec<Value>) {
    let members = plan(2);
    let seeds: Vec<u16> = members.iter().map(|m| m.cluster_port).collect();
    let mut nodes: Vec<Node> = members
        .iter()
        .map(|m| builder_with(m, &seeds, "bench-smoke-cookie", node_lines, LIFTED).start())
        .collect();
    for n in &nodes {
        wait_active(n, &["node-0", "node-1"], Duration::from_secs(30)).await;
    }
    let dir = std::env::temp_dir().join(format!("bench-smoke-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (status, clients) = (dir.join("status.json"), dir.join("clients.jsonl"));
    let child = Command::new(env!("CARGO_BIN_EXE_gatehouse-bench"))
        .args([
            "--json",
            "members",
            "--url",
            &nodes[0].ws_url(""),
            "--url",
            &nodes[1].ws_url(""),
        ])
        .args([
            "--room",
            "smoke-storm",
            "--connections",
            "20",
            "--reconnect",
            "--lost-jitter-ms",
            "100",
        ])
        .args(["--status-ms", "100", "--status"])
        .arg(&status)
        .arg("--clients")
        .arg(&clients)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let read = |p: std::path::PathBuf| async move {
        let s: Value = serde_json::from_slice(&std::fs::read(&p).ok()?).ok()?;
        Some(s)
    };
    until("20 members joined", Duration::from_secs(30), || async {
        read(status.clone()).await.filter(|s| s["joined_now"] == 20)
    })
    .await;
    act(&mut nodes);
    until(
        "node-1's 10 members back on node-0",
        Duration::from_secs(30),
        || async {
            read(status.clone()).await.filter(|s| {
                s["moved_clients"] == 10 && s["reconnecting"] == 0 && s["joined_now"] == 20
            })
        },
    )
    .await;
    // SIGTERM: the run ends and writes its report and the per-client lines.
    assert!(Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().rfind(|l| l.starts_with('{')).unwrap();
    let report: Value = serde_json::from_str(line).unwrap();
    let lines: Vec<Value> = std::fs::read_to_string(&clients)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    (report, lines)
}

/// Every member of node-1 moved once, to node-0, with nothing lost or duplicated.
fn assert_moved(r: &Value, clients: &[Value]) {
    assert_eq!(r["moves"], 10, "{r}");
    assert_eq!(r["moved_clients"], 10, "{r}");
    assert_eq!(r["gaps"], 0, "{r}");
    assert_eq!(r["dups"], 0, "{r}");
    assert_eq!(r["move_from_connect"]["samples"], 10, "{r}");
    assert!(
        r["move_from_close"]["max_ms"].as_f64().unwrap()
            >= r["move_from_connect"]["max_ms"].as_f64().unwrap(),
        "{r}"
    );
    assert_eq!(clients.len(), 20);
    for c in clients {
        let moves = c["moves"].as_array().unwrap();
        if c["home"] == 1 {
            assert_eq!(moves.len(), 1, "{c}");
            assert_eq!(moves[0]["to"], 0, "{c}");
            assert_eq!(c["url"], 0, "{c}");
        } else {
            assert!(moves.is_empty(), "{c}");
        }
        assert_eq!(c["state"], "joined", "{c}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn members_time_their_move_when_their_node_drains() {
    let (r, clients) = members_moved_off_node_1("drain", "drain_jitter_ms = 200\n", |nodes| {
        nodes[1].sigterm()
    })
    .await;
    assert_moved(&r, &clients);
    // A drain: `reconnect`, close 1012, and the room (moved first, if node-1 owned it) is
    // recovered on the first try.
    assert_eq!(r["closes"]["1012"], 10, "{r}");
    assert_eq!(r["moves_recovered"], 10, "{r}");
    assert_eq!(r["moves_refused"], 0, "{r}");
}

#[tokio::test(flavor = "multi_thread")]
async fn members_fail_over_when_their_node_is_killed() {
    // Dropping a node kills it (SIGKILL): its members see the connection end without a close
    // frame and go to node-0; whether the room comes back recovered depends on its replica.
    let (r, clients) = members_moved_off_node_1("kill", "", |nodes| drop(nodes.pop())).await;
    assert_moved(&r, &clients);
    let lost: u64 = r["closes"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("lost: "))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum();
    assert_eq!(lost, 10, "{r}");
    let answered =
        r["moves_recovered"].as_u64().unwrap() + r["moves_not_recovered"].as_u64().unwrap();
    assert_eq!(answered, 10, "{r}");
}
