//! The webhook: a local HTTP receiver gets batched, HMAC-SHA256-signed client events; a failed
//! delivery is retried.

use crate::{Client, Node};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "webhook-secret";

/// One received request: signature header and body.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A minimal HTTP/1.1 receiver on loopback; answers 500 to the first `fail_first` requests.
async fn receiver(fail_first: usize) -> (std::net::SocketAddr, Received) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let got: Received = Arc::default();
    let seen = got.clone();
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            // One request per connection is enough for the test; keep-alive is answered with close.
            let mut buf = Vec::new();
            let mut tmp = [0u8; 4096];
            let header_end = loop {
                let k = s.read(&mut tmp).await.unwrap_or(0);
                if k == 0 {
                    break None;
                }
                buf.extend_from_slice(&tmp[..k]);
                if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break Some(p + 4);
                }
            };
            let Some(he) = header_end else { continue };
            let head = String::from_utf8_lossy(&buf[..he]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            while buf.len() < he + len {
                let k = s.read(&mut tmp).await.unwrap_or(0);
                if k == 0 {
                    break;
                }
                buf.extend_from_slice(&tmp[..k]);
            }
            let sig = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    (k.eq_ignore_ascii_case("x-gatehouse-signature")).then(|| v.trim().to_owned())
                })
                .unwrap_or_default();
            n += 1;
            let status = if n <= fail_first {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            if n > fail_first {
                seen.lock().unwrap().push((sig, buf[he..he + len].to_vec()));
            }
            let resp =
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = s.write_all(resp.as_bytes()).await;
        }
    });
    (addr, got)
}

fn sign(body: &[u8]) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    m.update(body);
    let hex: String = m
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

#[tokio::test]
async fn client_events_arrive_signed_in_batches_and_failures_are_retried() {
    let (addr, got) = receiver(1).await;
    let node = Node::builder()
        .env("GATEHOUSE_WEBHOOK_SECRET", SECRET)
        .toml(&format!(
            "[webhook]\nurl = \"http://{addr}/events\"\nflush_ms = 50\npublish_rooms = [\"orders:*\"]"
        ))
        .start();
    let mut c = Client::connect(&node.ws_url("")).await;
    c.join("orders:1").await;
    c.publish("orders:1", json!({"total": 5})).await;
    c.join("chat").await;
    c.publish("chat", json!("not sent")).await;
    let id = c.id();
    drop(c);

    let events: Vec<Value> = crate::wait::until("webhook events", Duration::from_secs(15), || {
        let got = got.clone();
        async move {
            let batches = got.lock().unwrap().clone();
            let mut evs = Vec::new();
            for (sig, body) in &batches {
                assert_eq!(
                    sig,
                    &sign(body),
                    "signature must be HMAC-SHA256 over the body"
                );
                let v: Value = serde_json::from_slice(body).unwrap();
                assert!(v["node"].is_string());
                evs.extend(v["events"].as_array().unwrap().iter().cloned());
            }
            evs.iter().any(|e| e["type"] == "disconnect").then_some(evs)
        }
    })
    .await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        vec![
            "connect",
            "join",
            "publish",
            "join",
            "leave",
            "leave",
            "disconnect"
        ],
        "{events:?}"
    );
    let mut left: Vec<&str> = events[4..6]
        .iter()
        .map(|e| e["room"].as_str().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        vec!["chat", "orders:1"],
        "closing leaves every joined room"
    );
    assert!(events.iter().all(|e| e["client"] == id.as_str()));
    let publish = &events[2];
    assert_eq!(publish["room"], "orders:1");
    assert_eq!(publish["seq"], 1);
    assert_eq!(publish["data"], json!({"total": 5}));
    assert!(
        node.metric("gatehouse_webhook_failures_total").await >= 1.0,
        "the first attempt failed and was retried"
    );
    assert!(node.metric("gatehouse_webhook_delivered_total").await >= 5.0);
}
