//! Smoke runs of every load-generator scenario against real Gatehouse nodes: seconds each, small
//! N, no timing assertions — only that the generator ran and counted connections and deliveries
//! sanely (everything published reached every subscriber, nothing lost, nobody closed).
//!
//! This file lives in the bench package on purpose: a package with integration tests gets its
//! binaries built by `cargo test`/`cargo nextest run`, so `gatehouse-bench` is always built with
//! the suite (the node binary likewise, through `node/tests`). The nodes are started by the
//! end-to-end harness (`integration-tests`).

#![allow(clippy::unwrap_used)]

use integration_tests::cluster::{builder, plan, wait_active};
use integration_tests::node::Node;
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
