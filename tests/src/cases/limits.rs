//! Limits and back-pressure: inbound message and byte rate limits (`rate_limited` with
//! `retry_after_ms`, 1008 on sustained abuse), the slow consumer that never reads (4008, everyone
//! else unaffected), and server heartbeats (4009 after two missed pongs).

use crate::client::Ended;
use crate::{Client, Node};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn over_the_rate_requests_answer_rate_limited_with_retry_after() {
    let node = Node::builder()
        .toml("[limits]\nmsgs_per_sec = 5\nburst = 5")
        .start();
    let mut c = Client::connect(&node.ws_url("")).await;
    for i in 0..10u64 {
        c.send(json!({"op":"ping","id":i})).await;
    }
    let mut passed = 0;
    let mut limited = 0;
    for _ in 0..10 {
        let f = c.recv().await;
        assert_eq!(f["op"], "reply", "{f}");
        if f["ok"] == true {
            passed += 1;
        } else {
            assert_eq!(f["error"]["code"], "rate_limited");
            assert!(f["error"]["retry_after_ms"].as_u64().unwrap() > 0);
            limited += 1;
        }
    }
    assert_eq!(passed, 5, "the burst passes");
    assert_eq!(limited, 5);
    // Without an id, the answer is an error frame that still says when to retry.
    c.send(json!({"op":"ping"})).await;
    let f = c.recv().await;
    assert_eq!(
        (f["op"].clone(), f["code"].clone()),
        (json!("error"), json!("rate_limited"))
    );
    assert!(f["retry_after_ms"].as_u64().is_some());
    assert!(node.metric("gatehouse_rate_limited_total").await >= 5.0);
}

/// The byte rate of [`over_the_byte_rate_publishes_answer_rate_limited_and_pass_again_after_retry_after`].
const BYTES_PER_SEC: u64 = 65536;

#[tokio::test]
async fn over_the_byte_rate_publishes_answer_rate_limited_and_pass_again_after_retry_after() {
    // Plenty of messages per second, few bytes: only the byte bucket can refuse.
    let node = Node::builder()
        .toml(&format!(
            "[limits]\nmsgs_per_sec = 100000\nburst = 100000\nbytes_per_sec = {BYTES_PER_SEC}"
        ))
        .start();
    let mut c = Client::connect(&node.ws_url("")).await;
    c.join("bytes").await;
    let pad = "x".repeat(10 * 1024);
    let publish = |id: u64| json!({"id":id,"op":"publish","room":"bytes","data":{"pad":pad}});
    // ≈ 200 KiB at once: about six ~10 KiB frames fit the 64 KiB burst, the rest are refused.
    const N: u64 = 20;
    for id in 1..=N {
        c.send(publish(id)).await;
    }
    // A refusal is answered at once, a publish that passed when its room answers: replies may
    // overtake each other. The publisher's own room messages come in between.
    let mut replies = std::collections::BTreeMap::new();
    while replies.len() < N as usize {
        let (r, _) = c.recv_until(|f| f["op"] == "reply").await;
        let id = r["id"].as_u64().unwrap();
        assert!(replies.insert(id, r).is_none(), "two replies to {id}");
    }
    let (mut passed, mut limited) = (0, 0);
    for r in replies.values() {
        if r["ok"] == true {
            passed += 1;
        } else {
            byte_limited(r);
            limited += 1;
        }
    }
    assert!(passed >= 1, "the byte burst passes");
    assert!(
        limited >= 5,
        "{limited} of {N} refused: the byte limit did not bite"
    );
    assert!(node.metric("gatehouse_rate_limited_total").await >= f64::from(limited));
    // The connection stays open. A publish right after the burst is refused; after waiting the
    // `retry_after_ms` its reply gave, the same publish passes and is delivered.
    let mut waited = false;
    for id in N + 1.. {
        c.send(publish(id)).await;
        let (r, mut seen) = c
            .recv_until(|f| f["op"] == "reply" && f["id"] == json!(id))
            .await;
        if r["ok"] == true {
            let seq = r["result"]["seq"].clone();
            if !seen.iter().any(|f| f["op"] == "message" && f["seq"] == seq) {
                let (m, _) = c
                    .recv_until(|f| f["op"] == "message" && f["seq"] == seq)
                    .await;
                seen.push(m);
            }
            let m = seen.iter().find(|f| f["seq"] == seq).unwrap();
            assert_eq!(m["data"]["pad"].as_str().map(str::len), Some(pad.len()));
            break;
        }
        assert!(!waited, "still refused after waiting retry_after_ms: {r}");
        let retry_after_ms = byte_limited(&r);
        // The behaviour under test: the wait the node asked for is enough (not a readiness
        // wait; nothing else signals that the bucket refilled).
        tokio::time::sleep(Duration::from_millis(retry_after_ms)).await;
        waited = true;
    }
}

/// Checks that `r` is a `rate_limited` reply from the byte bucket; returns its `retry_after_ms`.
fn byte_limited(r: &serde_json::Value) -> u64 {
    assert_eq!(r["op"], "reply", "{r}");
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["error"]["code"], "rate_limited", "{r}");
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&format!("{BYTES_PER_SEC} bytes/s")), "{msg}");
    // A ~10 KiB frame refills in ~160 ms at 64 KiB/s.
    let retry_after_ms = r["error"]["retry_after_ms"].as_u64().unwrap();
    assert!((1..=1000).contains(&retry_after_ms), "{r}");
    retry_after_ms
}

#[tokio::test]
async fn a_client_over_its_limit_for_too_long_is_closed_with_1008() {
    let node = Node::builder()
        .toml("[limits]\nmsgs_per_sec = 2\nburst = 2\nabuse_close_after_s = 1")
        .start();
    let mut c = Client::connect(&node.ws_url("")).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let end = loop {
        assert!(tokio::time::Instant::now() < deadline, "never closed");
        c.send(json!({"op":"ping"})).await;
        match c.next(Duration::from_secs(5)).await {
            Ok(_) => tokio::task::yield_now().await,
            Err(e) => break e,
        }
    };
    assert!(matches!(end, Ended::Closed(1008, _)), "{end:?}");
}

#[tokio::test]
async fn a_slow_consumer_is_closed_with_4008_and_nobody_else_loses_anything() {
    let node = Node::builder()
        .toml("[limits]\nmsgs_per_sec = 100000\nburst = 100000\nbytes_per_sec = 1000000000\noutbound_queue = 1024\noutbound_queue_bytes = 2097152")
        .start();
    const N: u64 = 3000;
    let payload = "x".repeat(4000);
    let mut fast = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect(&node.ws_url("")).await;
        c.join("firehose").await;
        fast.push(c);
    }
    let mut slow = Client::connect_small_buffer(&node.ws_url(""), node.public).await;
    slow.join("firehose").await;
    let mut publisher = Client::connect(&node.ws_url("")).await;
    publisher.join("firehose").await;
    // Readers run concurrently with the publisher; the slow client reads nothing.
    let readers: Vec<_> = fast
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                while seqs.len() < N as usize {
                    let f = c.recv().await;
                    if f["op"] == "message" {
                        seqs.push(f["seq"].as_u64().unwrap());
                    }
                }
                seqs
            })
        })
        .collect();
    // The publisher is a member too: it reads its replies (and its own messages) as it goes.
    for i in 0..N {
        publisher
            .publish("firehose", json!({"i": i, "pad": payload}))
            .await;
    }
    for r in readers {
        let seqs = r.await.unwrap();
        assert_eq!(
            seqs,
            (1..=N).collect::<Vec<_>>(),
            "a fast member lost or reordered"
        );
    }
    // Now the slow client reads: what it got, then 4008.
    let (end, frames) = slow.expect_close(Duration::from_secs(10)).await;
    assert!(matches!(end, Ended::Closed(4008, _)), "{end:?}");
    let d = frames.last().unwrap();
    assert_eq!(d["op"], "disconnect");
    assert_eq!(d["reconnect"], true);
    assert!(node.metric("gatehouse_slow_consumer_closes_total").await >= 1.0);
}

#[tokio::test]
async fn a_client_that_misses_two_pongs_is_closed_with_4009() {
    let node = Node::builder().toml("[limits]\nheartbeat_ms = 200").start();
    let mut c = Client::connect(&node.ws_url("")).await;
    assert_eq!(c.welcome["heartbeat_ms"], 200);
    // A client that reads answers pings by itself and stays.
    let mut alive = Client::connect(&node.ws_url("")).await;
    // Not reading: no pongs go out.
    let start = std::time::Instant::now();
    let keepalive = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(150));
        for i in 0..8u64 {
            tick.tick().await;
            let (r, _) = alive.request(json!({"op":"ping"}), i).await;
            assert_eq!(r["ok"], true);
        }
        alive
    });
    // `c` reads nothing until the node reports a 4009 close.
    let closes = r#"gatehouse_closes_total{reason="4009"}"#;
    crate::wait::until("a 4009 close", Duration::from_secs(10), || async {
        (node.metric(closes).await >= 1.0).then_some(())
    })
    .await;
    let (end, _) = c.expect_close(Duration::from_secs(5)).await;
    assert!(matches!(end, Ended::Closed(4009, _)), "{end:?}");
    assert!(start.elapsed() >= Duration::from_millis(400));
    let alive = keepalive.await.unwrap();
    assert!(
        alive.welcome["client"].is_string(),
        "the reading client stayed connected"
    );
}
