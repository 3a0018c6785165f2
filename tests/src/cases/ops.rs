//! Operational endpoints and shutdown: health, readiness, metrics that move, SIGTERM closing
//! clients with 1001 and exiting 0.

use crate::client::Ended;
use crate::{Client, Node};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let node = Node::start_default();
    let h = crate::http::get_ok(&node.http("/healthz")).await;
    assert_eq!(h["status"], "ok");
    let r = reqwest::get(node.http("/readyz")).await.unwrap();
    assert_eq!(r.status(), 200);
    let before_conns = node.metric("gatehouse_connections_total").await;
    let before_in = node.metric("gatehouse_messages_in_total").await;
    let mut c = Client::connect(&node.ws_url("")).await;
    c.join("m").await;
    c.publish("m", json!(1)).await;
    assert_eq!(
        node.metric("gatehouse_connections_total").await,
        before_conns + 1.0
    );
    assert_eq!(node.metric("gatehouse_connections_active").await, 1.0);
    assert!(node.metric("gatehouse_messages_in_total").await >= before_in + 2.0);
    assert!(node.metric("gatehouse_messages_out_total").await >= 3.0);
    assert!(node.metric("gatehouse_joins_total").await >= 1.0);
    assert!(node.metric("gatehouse_rooms_active").await >= 1.0);
    assert!(node.metric("gatehouse_publishes_total").await >= 1.0);
    // The heap in use (glibc's statistics, read at the scrape): more than nothing, less than
    // the whole process.
    let heap = node.metric("gatehouse_heap_bytes").await;
    assert!(heap > 64.0 * 1024.0, "heap {heap}");
    let text = reqwest::get(node.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "gatehouse_publish_deliver_latency_seconds_bucket",
        "gatehouse_webhook_queue",
        "gatehouse_webhook_failures_total",
        "gatehouse_slow_consumer_closes_total",
        "gatehouse_bytes_in_total",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
}

#[tokio::test]
async fn metrics_count_bytes_both_ways_and_sample_publish_to_deliver_latency() {
    let node = Node::start_default();
    let mut publisher = Client::connect(&node.ws_url("")).await;
    let mut reader = Client::connect(&node.ws_url("")).await;
    publisher.join("lat").await;
    reader.join("lat").await;
    let latency = "gatehouse_publish_deliver_latency_seconds_count";
    let (in_before, out_before, latency_before) = (
        node.metric("gatehouse_bytes_in_total").await,
        node.metric("gatehouse_bytes_out_total").await,
        node.metric(latency).await,
    );
    // The node records the latency of one delivery in 8 (`LATENCY_SAMPLE`, per connection or
    // per worker): 2 members × 40 publishes give every sampler several turns.
    const N: u64 = 40;
    for i in 0..N {
        publisher.publish("lat", json!({"i": i})).await;
    }
    let mut seqs = Vec::new();
    while seqs.len() < N as usize {
        let f = reader.recv().await;
        if f["op"] == "message" {
            seqs.push(f["seq"].as_u64().unwrap());
        }
    }
    assert_eq!(seqs, (1..=N).collect::<Vec<_>>());
    let count = crate::wait::until("latency samples", Duration::from_secs(10), || async {
        let n = node.metric(latency).await;
        (n > latency_before).then_some(n)
    })
    .await;
    assert!(count > 0.0);
    let (in_after, out_after) = (
        node.metric("gatehouse_bytes_in_total").await,
        node.metric("gatehouse_bytes_out_total").await,
    );
    // At least the publish frames came in, and each went out to both members.
    assert!(in_after > in_before, "bytes in: {in_before} → {in_after}");
    assert!(
        out_after > out_before,
        "bytes out: {out_before} → {out_after}"
    );
    assert!(
        out_after - out_before >= (2 * N * 20) as f64,
        "bytes out: {out_before} → {out_after}"
    );
}

#[tokio::test]
async fn sigterm_closes_clients_with_1001_and_exits_zero() {
    let mut node = Node::start_default();
    let mut c = Client::connect(&node.ws_url("")).await;
    c.join("bye").await;
    node.sigterm();
    let (end, frames) = c.expect_close(Duration::from_secs(10)).await;
    assert!(matches!(end, Ended::Closed(1001, _)), "{end:?}");
    let d = frames.last().unwrap();
    assert_eq!(d["op"], "disconnect");
    assert_eq!(d["reconnect"], true);
    assert_eq!(node.wait_exit(Duration::from_secs(15)), Some(0));
}
