//! The backend API: publish, send-to-user, disconnect, presence, history; API key checks; JSON
//! errors for bad requests and unknown routes.

use crate::client::Ended;
use crate::tokens;
use crate::{Client, Node};
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn backend_publish_reaches_members_in_order_with_the_clients_own_messages() {
    let node = Node::start_default();
    let http = reqwest::Client::new();
    let mut c = Client::connect(&node.ws_url("")).await;
    c.join("news").await;
    let (_, r) = crate::http::send(
        http.post(node.http("/api/v1/rooms/news/publish"))
            .json(&json!({"data":{"headline":"hello"}})),
    )
    .await;
    assert_eq!(r["seq"], 1);
    assert!(r["epoch"].is_string());
    let m = c.recv().await;
    assert_eq!(m["op"], "message");
    assert_eq!(m["seq"], 1);
    assert_eq!(m["from"], json!({"backend": true}));
    assert_eq!(m["data"]["headline"], "hello");
    assert_eq!(c.publish("news", json!("mine")).await, 2);

    let (_, p) = crate::http::send(http.get(node.http("/api/v1/rooms/news/presence"))).await;
    assert_eq!(p["count"], 1);
    assert_eq!(p["members"][0]["client"], c.id());

    let (_, h) =
        crate::http::send(http.get(node.http("/api/v1/rooms/news/history?since_seq=1&limit=10")))
            .await;
    assert_eq!(h["epoch"], m["epoch"]);
    let seqs: Vec<u64> = h["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![2]);
}

#[tokio::test]
async fn send_to_user_reaches_every_connection_of_that_user() {
    let node = Node::builder()
        .env("GATEHOUSE_JWT_SECRET", tokens::SECRET)
        .start();
    let t = tokens::user("u-7", 600);
    let mut a = Client::connect(&node.ws_url(&format!("token={t}"))).await;
    let mut b = Client::connect(&node.ws_url(&format!("token={t}"))).await;
    let mut other = Client::connect(&node.ws_url("")).await;
    let (_, r) = crate::http::send(
        reqwest::Client::new()
            .post(node.http("/api/v1/users/u-7/send"))
            .json(&json!({"data":{"note":"for you"}})),
    )
    .await;
    assert_eq!(r["delivered"], 2);
    for c in [&mut a, &mut b] {
        assert_eq!(
            c.recv().await,
            json!({"op":"direct","data":{"note":"for you"}})
        );
    }
    let (r, seen) = other.request(json!({"op":"ping"}), 1).await;
    assert_eq!(r["ok"], true);
    assert!(seen.is_empty());
}

#[tokio::test]
async fn disconnect_closes_the_client_with_the_given_code() {
    let node = Node::start_default();
    let mut c = Client::connect(&node.ws_url("")).await;
    let http = reqwest::Client::new();
    let r = http
        .post(node.http(&format!("/api/v1/clients/{}/disconnect", c.id())))
        .json(&json!({"code":4003,"reason":"banned"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (end, frames) = c.expect_close(Duration::from_secs(5)).await;
    assert_eq!(end, Ended::Closed(4003, "banned".into()));
    assert_eq!(frames.last().unwrap()["op"], "disconnect");
    let (status, body) =
        crate::http::send(http.post(node.http("/api/v1/clients/c_nobody/disconnect"))).await;
    assert_eq!(
        (status, body),
        (200, json!({"disconnected": 0})),
        "disconnect is idempotent"
    );
    let r = http
        .post(node.http("/api/v1/clients/c_x/disconnect"))
        .json(&json!({"code":1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn the_api_key_is_required_when_configured_and_errors_are_json() {
    let node = Node::builder().env("GATEHOUSE_API_KEY", "k-123").start();
    let http = reqwest::Client::new();
    let url = node.http("/api/v1/rooms/r/publish");
    let r = http
        .post(&url)
        .json(&json!({"data":1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let r = http
        .post(&url)
        .bearer_auth("wrong")
        .json(&json!({"data":1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(&url)
        .bearer_auth("k-123")
        .json(&json!({"data":1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(&url)
        .bearer_auth("k-123")
        .json(&json!({"nodata":1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .post(node.http("/api/v1/rooms/bad%20room/publish"))
        .bearer_auth("k-123")
        .json(&json!({"data":1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "room_invalid");
    let (status, body) = crate::http::send(
        http.get(node.http("/api/v1/rooms/r/history?limit=many"))
            .bearer_auth("k-123"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["code"], "bad_request",
        "query errors are JSON too"
    );
    let (status, body) = crate::http::send(
        http.get(node.http("/api/v1/rooms/never-used/history"))
            .bearer_auth("k-123"),
    )
    .await;
    assert_eq!((status, body["messages"].clone()), (200, json!([])));
    let (status, _) = crate::http::send(
        http.post(&url)
            .header("authorization", "bearer k-123")
            .json(&json!({"data":1})),
    )
    .await;
    assert_eq!(status, 200, "the bearer scheme is case-insensitive");
    let r = http.get(node.http("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}
