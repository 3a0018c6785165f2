//! The single-node admin API: stats, client listing, kick (4003), throttle and unthrottle
//! (taking effect on the live connection), token checks, audit counters.

use crate::client::Ended;
use crate::{Client, Node};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn stats_and_client_listing_describe_the_node() {
    let node = Node::start_default();
    let mut c = Client::connect(&node.ws_url("")).await;
    c.join("a").await;
    let s = crate::http::get_ok(&node.admin_url("/admin/v1/stats")).await;
    assert_eq!(s["connections"], 1);
    assert_eq!(s["state"], "active");
    assert!(s["rss_bytes"].as_u64().unwrap() > 0);
    let l = crate::http::get_ok(&node.admin_url(&format!("/admin/v1/clients?q={}", c.id()))).await;
    assert_eq!(l["total"], 1);
    assert_eq!(l["clients"][0]["id"], c.id());
    assert_eq!(l["clients"][0]["rooms"], 1);
    let rooms = crate::http::get_ok(&node.admin_url("/admin/v1/rooms")).await;
    assert_eq!(rooms["rooms"][0]["name"], "a");
    assert_eq!(rooms["rooms"][0]["members"], 1);
}

#[tokio::test]
async fn lists_sort_on_the_server_and_page_in_that_order() {
    let node = Node::start_default();
    // Client i joins i+1 rooms, from r2 down, and publishes i messages: r2 is the largest room
    // and the last by name; the last client sends the most.
    let mut clients = Vec::new();
    for i in 0..3u64 {
        let mut c = Client::connect(&node.ws_url("")).await;
        for r in 0..=i {
            c.join(&format!("r{}", 2 - r)).await;
        }
        for _ in 0..i {
            c.publish("r2", json!("x")).await;
        }
        clients.push(c);
    }
    let ids: Vec<String> = clients.iter().map(Client::id).collect();
    // Page through `sort=msgs_in` one row at a time: largest first, every client once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..4 {
        let mut url = node.admin_url("/admin/v1/clients?sort=msgs_in&limit=1");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={}", urlencode(c)));
        }
        let page = crate::http::get_ok(&url).await;
        assert_eq!(page["total"], 3);
        seen.push(page["clients"][0]["id"].as_str().unwrap().to_owned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let want: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, want, "clients by msgs_in, largest first");
    let rooms = crate::http::get_ok(&node.admin_url("/admin/v1/rooms?sort=members")).await;
    let names: Vec<&str> = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["r2", "r1", "r0"], "rooms by members, largest first");
    let (status, body) = crate::http::send(
        reqwest::Client::new().get(node.admin_url("/admin/v1/rooms?sort=colour")),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "bad_request");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn kick_closes_with_4003_and_is_counted() {
    let node = Node::start_default();
    let mut c = Client::connect(&node.ws_url("")).await;
    let r = reqwest::Client::new()
        .post(node.admin_url(&format!("/admin/v1/clients/{}/kick", c.id())))
        .json(&json!({"reason":"spamming"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (end, frames) = c.expect_close(Duration::from_secs(5)).await;
    assert_eq!(end, Ended::Closed(4003, "spamming".into()));
    assert_eq!(frames.last().unwrap()["reconnect"], false);
    assert_eq!(
        node.metric(r#"gatehouse_admin_actions_total{reason="kick"}"#)
            .await,
        1.0
    );
    let r = reqwest::Client::new()
        .post(node.admin_url("/admin/v1/clients/c_gone/kick"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn throttle_lowers_a_live_clients_limits_and_unthrottle_restores_them() {
    let node = Node::start_default();
    let mut c = Client::connect(&node.ws_url("")).await;
    let http = reqwest::Client::new();
    let url = node.admin_url(&format!("/admin/v1/clients/{}/throttle", c.id()));
    let r = http
        .post(&url)
        .json(&json!({"msgs_per_sec":1,"burst":1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The new limits reach the connection through its queue; retry until they bite.
    let deadline = tokio::time::Instant::now() + crate::wait::patience(Duration::from_secs(5));
    loop {
        c.send(json!({"op":"ping","id":1})).await;
        c.send(json!({"op":"ping","id":2})).await;
        let a = c.recv().await;
        let b = c.recv().await;
        assert!(a["op"] == "reply" && b["op"] == "reply", "{a} {b}");
        if a["ok"] == false || b["ok"] == false {
            let r = if a["ok"] == false { a } else { b };
            assert_eq!(r["error"]["code"], "rate_limited");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "throttle never applied"
        );
    }
    let (_, v) =
        crate::http::send(http.get(node.admin_url(&format!("/admin/v1/clients/{}", c.id())))).await;
    assert_eq!(v["throttled"], true);
    assert_eq!(v["rate_limit"]["msgs_per_sec"], 1);
    let r = http.delete(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (_, v) =
        crate::http::send(http.get(node.admin_url(&format!("/admin/v1/clients/{}", c.id())))).await;
    assert_eq!(v["throttled"], false);
    let bad = http
        .post(&url)
        .json(&json!({"msgs_per_sec":0,"burst":1}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let bad = http.post(&url).body("nope").send().await.unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn the_admin_token_is_required_when_configured() {
    let node = Node::builder()
        .env("GATEHOUSE_ADMIN_TOKEN", "adm-1")
        .start();
    let http = reqwest::Client::new();
    let r = http
        .get(node.admin_url("/admin/v1/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(node.admin_url("/admin/v1/stats"))
        .bearer_auth("adm-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The admin API is not on the public listener.
    let r = http.get(node.http("/admin/v1/stats")).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn the_event_stream_reports_rooms_and_operator_actions() {
    use futures_util::StreamExt;
    let node = Node::start_default();
    let url = format!("ws://{}/admin/v1/events", node.admin);
    let (mut events, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    async fn next_event(
        events: &mut tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    ) -> serde_json::Value {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(5), events.next())
                .await
                .expect("an event within 5 s")
                .expect("stream open")
                .unwrap();
            if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
                return serde_json::from_str(&t).unwrap();
            }
        }
    }
    let hello = next_event(&mut events).await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["observed_by"], "node-a");
    let mut c = Client::connect(&node.ws_url("")).await;
    c.join("evented").await;
    let ev = next_event(&mut events).await;
    assert_eq!(
        (ev["type"].clone(), ev["room"].clone()),
        (json!("room_created"), json!("evented"))
    );
    assert_eq!(ev["restored"], false);
    assert!(ev["at_ms"].as_u64().is_some());
    let r = reqwest::Client::new()
        .post(node.admin_url(&format!("/admin/v1/clients/{}/kick", c.id())))
        .json(&json!({"reason":"noise"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ev = next_event(&mut events).await;
    assert_eq!(
        (ev["type"].clone(), ev["client"].clone()),
        (json!("client_kicked"), json!(c.id()))
    );
    assert_eq!(ev["reason"], "noise");
}
