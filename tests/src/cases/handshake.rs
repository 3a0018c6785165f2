//! The two ways into `/ws`: a complete upgrade head in the first bytes is answered by the
//! node's own handshake (`http::front`); a head that arrives in pieces or is larger than the
//! front reads goes through actix-http. Both must admit, refuse and answer alike.

use crate::{Client, Node};
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn head(node: &Node, extra: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n",
        node.public
    )
}

/// Sends `parts` with a pause between them (so the node sees the head in pieces), then reads
/// the HTTP answer: after a `101`, its head and the first WebSocket frame's payload; after a
/// refusal (the node closes), the whole answer and its JSON body.
async fn raw_upgrade(node: &Node, parts: &[&str]) -> (String, Option<Value>) {
    let mut s = TcpStream::connect(node.public).await.unwrap();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            // The behaviour under test: the rest of the head arrives after the node has looked
            // at the first bytes (nothing client-side can observe that; it is not a readiness
            // wait).
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        s.write_all(p.as_bytes()).await.unwrap();
    }
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, s.read(&mut chunk))
            .await
            .expect("an answer within 5 s")
            .unwrap();
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            assert!(n > 0, "closed before the head: {buf:?}");
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end + 4]).to_string();
        if !head.starts_with("HTTP/1.1 101") {
            tokio::time::timeout_at(deadline, s.read_to_end(&mut buf))
                .await
                .expect("a refusal closes the connection")
                .unwrap();
            let body = serde_json::from_slice(&buf[end + 4..]).expect("a JSON body");
            return (head, Some(body));
        }
        let frame = &buf[end + 4..];
        // A text frame with a 16-bit length (the welcome is 126..65535 bytes).
        if frame.len() >= 4 {
            assert_eq!(frame[0], 0x81, "a final text frame");
            assert_eq!(frame[1], 126);
            let len = usize::from(u16::from_be_bytes([frame[2], frame[3]]));
            if frame.len() >= 4 + len {
                let v = serde_json::from_slice(&frame[4..4 + len]).unwrap();
                return (head, Some(v));
            }
        }
        assert!(n > 0, "closed before the welcome");
    }
}

#[tokio::test]
async fn a_head_in_pieces_and_a_head_in_one_piece_are_both_welcomed() {
    let node = Node::start_default();
    let whole = head(&node, "");
    for parts in [vec![whole.as_str()], vec![&whole[..20], &whole[20..]]] {
        let (answer, welcome) = raw_upgrade(&node, &parts).await;
        let lower = answer.to_ascii_lowercase();
        assert!(lower.contains("\r\nconnection: upgrade\r\n"), "{answer}");
        assert!(lower.contains("\r\nupgrade: websocket\r\n"), "{answer}");
        // RFC 6455 §1.3's example key and answer.
        assert!(
            answer.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "accept key: {answer}"
        );
        let welcome = welcome.expect("a welcome after the 101");
        assert_eq!(welcome["op"], "welcome");
        assert_eq!(welcome["protocol"], 1);
    }
}

#[tokio::test]
async fn a_head_larger_than_the_front_reads_is_served_through_actix_http() {
    let node = Node::start_default();
    let pad = "x".repeat(6000);
    let mut c = Client::connect_with(&node.ws_url(""), &[("x-padding", pad.as_str())])
        .await
        .expect("a long head is still welcomed");
    c.join("long").await;
}

#[tokio::test]
async fn refusals_are_the_same_whichever_way_the_head_arrives() {
    let node = Node::builder()
        .toml("[auth]\nallowed_origins = [\"https://app.example.com\"]")
        .start();
    let bad = head(&node, "Origin: https://evil.example\r\n");
    let whole = raw_upgrade(&node, &[bad.as_str()]).await;
    let pieces = raw_upgrade(&node, &[&bad[..30], &bad[30..]]).await;
    for (answer, body) in [&whole, &pieces] {
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{answer}"
        );
        let body = body.as_ref().expect("a body");
        assert_eq!(body["error"]["code"], "forbidden", "{body}");
    }
    assert_eq!(whole.1, pieces.1, "the same refusal either way");
    let good = head(&node, "Origin: https://app.example.com\r\n");
    let (ok, welcome) = raw_upgrade(&node, &[&good[..30], &good[30..]]).await;
    assert!(ok.starts_with("HTTP/1.1 101"), "{ok}");
    assert_eq!(welcome.expect("welcome")["op"], "welcome");
}
