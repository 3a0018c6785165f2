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
