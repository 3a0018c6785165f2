//! Bad input from real clients: every error code and the protocol close codes, and the
//! connection staying open wherever the contract says it does.

use crate::client::Ended;
use crate::{Client, Node};
use serde_json::json;
use std::time::Duration;

async fn still_open(c: &mut Client) {
    let (r, _) = c.request(json!({"op":"ping"}), 77).await;
    assert_eq!(r, json!({"op":"reply","id":77,"ok":true,"result":{}}));
}

#[tokio::test]
async fn malformed_frames_get_error_frames_and_the_connection_stays_open() {
    let node = Node::start_default();
    let mut c = Client::connect(&node.ws_url("")).await;
    for bad in ["not json", "[1,2]", "42", "{\"op\":", "\"str\""] {
        c.send_text(bad).await;
        let e = c.recv().await;
        assert_eq!(e["op"], "error", "{bad}: {e}");
        assert_eq!(e["code"], "bad_frame");
        assert!(e["message"].as_str().unwrap().contains("JSON object"));
    }
    c.send_binary(vec![1, 2, 3]).await;
    assert_eq!(c.recv().await["code"], "bad_frame");
    // Without an id, an unknown op is an error frame.
    c.send(json!({"op":"fly"})).await;
    let e = c.recv().await;
    assert_eq!(
        (e["op"].clone(), e["code"].clone()),
        (json!("error"), json!("unknown_op"))
    );
    ping_pong(&mut c).await;
}

async fn ping_pong(c: &mut Client) {
    c.send(json!({"op":"ping"})).await;
    assert_eq!(c.recv().await, json!({"op":"pong"}));
    c.send(json!({"op":"ping","id":1})).await;
    assert_eq!(
        c.recv().await,
        json!({"op":"reply","id":1,"ok":true,"result":{}})
    );
}

#[tokio::test]
async fn requests_with_an_id_get_failed_replies_with_the_contract_codes() {
    let node = Node::builder().toml("[limits]\nmax_rooms = 2").start();
    let mut c = Client::connect(&node.ws_url("")).await;
    let cases = [
        (json!({"op":"fly"}), "unknown_op"),
        (json!({"op":"join"}), "bad_request"),
        (json!({"op":"join","room":5}), "bad_request"),
        (json!({"op":"join","room":"has space"}), "room_invalid"),
        (json!({"op":"join","room":"x".repeat(129)}), "room_invalid"),
        (
            json!({"op":"join","room":"r","since":{"seq":"a"}}),
            "bad_request",
        ),
        (json!({"op":"publish","room":"r"}), "bad_request"),
        (
            json!({"op":"publish","room":"notjoined","data":1}),
            "not_joined",
        ),
        (json!({"op":"presence","room":"notjoined"}), "not_joined"),
    ];
    for (i, (req, code)) in cases.into_iter().enumerate() {
        let (r, _) = c.request(req.clone(), i as u64).await;
        assert_eq!(r["ok"], false, "{req}");
        assert_eq!(r["error"]["code"], code, "{req}: {r}");
        assert!(r["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    c.join("one").await;
    c.join("two").await;
    let (r, _) = c.request(json!({"op":"join","room":"three"}), 50).await;
    assert_eq!(r["error"]["code"], "too_many_rooms");
    still_open(&mut c).await;
}

#[tokio::test]
async fn an_oversized_message_closes_with_1009() {
    let node = Node::builder()
        .toml("[limits]\nmax_message_bytes = 1024")
        .start();
    let mut c = Client::connect(&node.ws_url("")).await;
    assert_eq!(c.welcome["limits"]["max_message_bytes"], 1024);
    // Every rate a client is held to, so it can pace itself (the defaults here).
    assert_eq!(c.welcome["limits"]["bytes_per_sec"], 1_048_576);
    assert_eq!(c.welcome["limits"]["room_creates_per_sec"], 2);
    assert_eq!(c.welcome["limits"]["room_creates_burst"], 20);
    c.send(json!({"op":"ping","pad":"x".repeat(2000)})).await;
    let (end, _) = c.expect_close(Duration::from_secs(5)).await;
    assert!(matches!(end, Ended::Closed(1009, _)), "{end:?}");
}
