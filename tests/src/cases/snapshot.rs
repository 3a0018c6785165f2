//! Room snapshots set by the backend: stored compressed, delivered right after the join reply,
//! then only messages newer than the snapshot.

use crate::{Client, Node};
use serde_json::{json, Value};

#[tokio::test]
async fn a_joining_client_gets_reply_then_snapshot_then_newer_messages() {
    let node = Node::builder()
        .toml("[limits]\nmsgs_per_sec = 10000\nburst = 10000")
        .start();
    let http = reqwest::Client::new();
    let mut p = Client::connect(&node.ws_url("")).await;
    p.join("board:1").await;
    for i in 0..3 {
        p.publish("board:1", json!({ "i": i })).await;
    }
    let cells: Vec<u32> = (0..2000).collect();
    let (_, r) = crate::http::send(
        http.put(node.http("/api/v1/rooms/board:1/snapshot"))
            .json(&json!({"data": {"cells": cells}})),
    )
    .await;
    assert_eq!(r["seq"], 3);
    for i in 3..5 {
        p.publish("board:1", json!({ "i": i })).await;
    }
    let mut c = Client::connect(&node.ws_url("")).await;
    c.send(json!({"id":1,"op":"join","room":"board:1","last":50}))
        .await;
    let reply = c.recv().await;
    assert_eq!(reply["op"], "reply");
    assert_eq!(reply["result"]["seq"], 5);
    let snap = c.recv().await;
    assert_eq!(snap["op"], "snapshot");
    assert_eq!(snap["seq"], 3);
    assert_eq!(snap["data"]["cells"].as_array().unwrap().len(), 2000);
    assert_eq!(c.recv().await["seq"], 4);
    assert_eq!(c.recv().await["seq"], 5);

    let (_, got) = crate::http::send(http.get(node.http("/api/v1/rooms/board:1/snapshot"))).await;
    assert_eq!(got["seq"], 3);
    assert_eq!(got["data"]["cells"][1999], 1999);
}

#[tokio::test]
async fn missing_and_oversized_snapshots_are_refused_clearly() {
    let node = Node::builder()
        .toml("[rooms]\nmax_snapshot_bytes = 1000")
        .start();
    let http = reqwest::Client::new();
    let r = http
        .get(node.http("/api/v1/rooms/none/snapshot"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let big = "x".repeat(5000);
    let r = http
        .put(node.http("/api/v1/rooms/big/snapshot"))
        .json(&json!({ "data": big }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let r = http
        .put(node.http("/api/v1/rooms/ok/snapshot"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
}
