//! The operator's room actions of the admin API against real nodes (`docs/admin-api.md`):
//! publish into a room as the backend, a room's history newest first and its presence (both
//! paged), and a client's connections made to join or leave a room — on one node, with a
//! client on another node of a cluster, through the token's `rooms` claim, each audited,
//! counted and streamed as an event, and every bad input answered with its 4xx.

use crate::cluster::{builder, plan, wait_active};
use crate::events::Events;
use crate::wait::until;
use crate::{Client, Node};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const COOKIE: &str = "admin-ops-test-cookie-0123456789abcdef";

/// `POST {path}` with a JSON body on `node`'s admin API: (status, body).
async fn post(node: &Node, path: &str, body: Value) -> (u16, Value) {
    crate::http::send(node.admin_request(Method::POST, path).json(&body)).await
}

/// `GET {path}` on `node`'s admin API: (status, body).
async fn get(node: &Node, path: &str) -> (u16, Value) {
    crate::http::send(node.admin_request(Method::GET, path)).await
}

/// Waits for the audit line of `action` on `subject` in `node`'s (JSON) log.
async fn audited(node: &Node, action: &str, subject: &str) {
    let (want, subject) = (
        format!(r#""action":"{action}""#),
        format!(r#""subject":"{subject}""#),
    );
    until(
        &format!("an audit line for {action} {subject}"),
        Duration::from_secs(5),
        || {
            let found = node.logs().iter().any(|l| {
                l.contains(r#""target":"audit""#) && l.contains(&want) && l.contains(&subject)
            });
            async move { found.then_some(()) }
        },
    )
    .await;
}

/// The seqs of a history page, in the order given.
fn seqs(page: &Value) -> Vec<u64> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

/// Every page of a room's history, following `next_cursor` (at most 100 pages).
async fn all_pages(node: &Node, room: &str, limit: usize) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut path = format!("/admin/v1/rooms/{room}/history?limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = get(node, &path).await;
        assert_eq!(status, 200, "{path}: {page}");
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        pages.push(page);
        if cursor.is_none() {
            return pages;
        }
    }
    panic!("history of {room} did not end within 100 pages");
}

#[tokio::test]
async fn an_operator_publishes_as_the_backend_and_reads_history_newest_first_and_presence() {
    let node = Node::start_default();
    let mut events = Events::open(node.admin).await;
    let mut member = Client::connect(&node.ws_url("")).await;
    member.join("ops:board").await;

    // Publish: the member gets it from the backend; the answer says where it went.
    let (status, body) = post(
        &node,
        "/admin/v1/rooms/ops:board/publish",
        json!({"data":{"text":"maintenance at 18:00"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["room"].clone(), body["seq"].clone()),
        (json!("ops:board"), json!(1))
    );
    let epoch = body["epoch"].as_str().unwrap().to_owned();
    let (m, _) = member.recv_until(|f| f["op"] == "message").await;
    assert_eq!(m["from"], json!({"backend": true}));
    assert_eq!(m["data"]["text"], "maintenance at 18:00");
    assert_eq!(
        (m["seq"].clone(), m["epoch"].clone()),
        (json!(1), json!(epoch))
    );
    let ev = events.until(|e| e["type"] == "room_published").await;
    assert_eq!(
        (ev["room"].clone(), ev["seq"].clone()),
        (json!("ops:board"), json!(1))
    );
    assert_eq!(
        node.metric(r#"gatehouse_admin_actions_total{reason="publish"}"#)
            .await,
        1.0
    );
    audited(&node, "publish", "ops:board").await;

    // Four more, one of them from the member: seqs 1..=5.
    for i in 2..=4 {
        let (status, _) = post(
            &node,
            "/admin/v1/rooms/ops:board/publish",
            json!({ "data": i }),
        )
        .await;
        assert_eq!(status, 200);
    }
    assert_eq!(member.publish("ops:board", json!("from a client")).await, 5);

    // History, newest first, two a page: 5 4 | 3 2 | 1.
    let pages = all_pages(&node, "ops:board", 2).await;
    let got: Vec<Vec<u64>> = pages.iter().map(seqs).collect();
    assert_eq!(got, vec![vec![5, 4], vec![3, 2], vec![1]]);
    let first = &pages[0];
    assert_eq!(
        (first["seq"].clone(), first["epoch"].clone()),
        (json!(5), json!(epoch))
    );
    assert_eq!(first["messages"][0]["data"], "from a client");
    assert_eq!(first["messages"][0]["from"]["client"], member.id());
    assert_eq!(first["messages"][1]["from"], json!({"backend": true}));
    assert!(first["messages"][0]["published_ms"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(first["next_cursor"], json!(format!("{epoch}:4")));
    assert_eq!(
        pages[2]["messages"][0]["data"]["text"],
        "maintenance at 18:00"
    );
    // The default page holds them all; a cursor of another epoch finds nothing of it.
    let (_, whole) = get(&node, "/admin/v1/rooms/ops:board/history").await;
    assert_eq!(seqs(&whole), vec![5, 4, 3, 2, 1]);
    assert_eq!(whole["next_cursor"], Value::Null);
    let (status, other) = get(&node, "/admin/v1/rooms/ops:board/history?cursor=0badc0de:3").await;
    assert_eq!(status, 200, "{other}");
    assert_eq!(
        (seqs(&other), other["next_cursor"].clone()),
        (vec![], Value::Null)
    );

    // Presence: a page of members by client id, and their number.
    let mut second = Client::connect(&node.ws_url("")).await;
    second.join("ops:board").await;
    let (status, p) = get(&node, "/admin/v1/rooms/ops:board/presence?limit=1").await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        (p["total"].clone(), p["room"].clone()),
        (json!(2), json!("ops:board"))
    );
    let mut ids = [member.id(), second.id()];
    ids.sort();
    assert_eq!(p["members"][0]["client"], json!(ids[0]));
    assert_eq!(p["members"][0]["node"], "node-a");
    let cursor = p["next_cursor"].as_str().unwrap().to_owned();
    let (_, p) = get(
        &node,
        &format!("/admin/v1/rooms/ops:board/presence?limit=1&cursor={cursor}"),
    )
    .await;
    assert_eq!(p["members"][0]["client"], json!(ids[1]));
    assert_eq!(p["next_cursor"], Value::Null);

    // Reads are not actions: not counted.
    assert_eq!(
        node.metric(r#"gatehouse_admin_actions_total{reason="publish"}"#)
            .await,
        4.0
    );
}

#[tokio::test]
async fn room_operations_answer_bad_input_with_its_4xx() {
    let node = Node::start_default();
    let publish = |data: Value| post(&node, "/admin/v1/rooms/ops:x/publish", data);
    // The body: `data` required, not null, nothing else; JSON.
    for (body, code) in [
        (json!({}), "bad_request"),
        (json!({"data": null}), "bad_request"),
        (json!({"data": 1, "from": "me"}), "bad_request"),
    ] {
        let (status, b) = publish(body.clone()).await;
        assert_eq!(
            (status, b["error"]["code"].as_str()),
            (400, Some(code)),
            "{body}: {b}"
        );
    }
    let (status, b) = crate::http::send(
        node.admin_request(Method::POST, "/admin/v1/rooms/ops:x/publish")
            .body("not json"),
    )
    .await;
    assert_eq!(status, 400, "{b}");
    // A message over `limits.max_message_bytes` (64 KiB): 413, inside the body's allowance and
    // past it.
    let big = "x".repeat(65_536);
    let (status, b) = publish(json!({ "data": big })).await;
    assert_eq!(
        (status, b["error"]["code"].as_str()),
        (413, Some("payload_too_large")),
        "{b}"
    );
    let huge = "x".repeat(80_000);
    let (status, _) = publish(json!({ "data": huge })).await;
    assert_eq!(status, 413);
    // A bad room name.
    let (status, b) = post(
        &node,
        "/admin/v1/rooms/bad%20name/publish",
        json!({"data":1}),
    )
    .await;
    assert_eq!(
        (status, b["error"]["code"].as_str()),
        (400, Some("room_invalid")),
        "{b}"
    );
    // Reads of a room that is not running: 404; a bad cursor: 400.
    for path in [
        "/admin/v1/rooms/ops:nowhere/history",
        "/admin/v1/rooms/ops:nowhere/presence",
    ] {
        let (status, b) = get(&node, path).await;
        assert_eq!(
            (status, b["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
    let (status, _) = publish(json!({"data": "now it runs"})).await;
    assert_eq!(status, 200);
    for path in [
        "/admin/v1/rooms/ops:x/history?cursor=nope",
        "/admin/v1/rooms/ops:x/presence?cursor=a%20b",
        "/admin/v1/rooms/ops:x/history?limit=-1",
    ] {
        let (status, b) = get(&node, path).await;
        assert_eq!(
            (status, b["error"]["code"].as_str()),
            (400, Some("bad_request")),
            "{path}: {b}"
        );
    }
    // Join and leave: `{"room":…}` only, a valid name, at most 4096 bytes, a client that is
    // connected.
    let c = Client::connect(&node.ws_url("")).await;
    let join = format!("/admin/v1/clients/{}/join", c.id());
    for (body, status_code) in [
        (json!({}), (400, "bad_request")),
        (json!({"room": "ops:x", "also": 1}), (400, "bad_request")),
        (json!({"room": "bad name"}), (400, "room_invalid")),
        (
            json!({"room": "x".repeat(5000)}),
            (413, "payload_too_large"),
        ),
    ] {
        let (status, b) = post(&node, &join, body).await;
        assert_eq!(
            (status, b["error"]["code"].as_str().unwrap()),
            status_code,
            "{b}"
        );
    }
    for op in ["join", "leave"] {
        let (status, b) = post(
            &node,
            &format!("/admin/v1/clients/c_gone/{op}"),
            json!({"room":"ops:x"}),
        )
        .await;
        assert_eq!(
            (status, b["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{op}: {b}"
        );
    }
    // None of these was an action.
    for reason in ["publish", "join", "leave"] {
        let want = if reason == "publish" { 1.0 } else { 0.0 };
        let n = node
            .metric(&format!(
                r#"gatehouse_admin_actions_total{{reason="{reason}"}}"#
            ))
            .await;
        assert_eq!(n, want, "{reason}");
    }
}

#[tokio::test]
async fn a_history_page_of_large_messages_keeps_its_newest_within_4_mib() {
    let node = Node::builder()
        .toml("[rooms]\nhistory_max_bytes = 16777216\nmemory_budget_bytes = 67108864")
        .start();
    // 100 messages of 60 000 bytes: 6 MB, more than a page holds.
    let data = "y".repeat(60_000);
    for i in 0..100 {
        let (status, b) = post(
            &node,
            "/admin/v1/rooms/ops:big/publish",
            json!({ "data": format!("{i:03}{data}") }),
        )
        .await;
        assert_eq!(status, 200, "{b}");
    }
    let pages = all_pages(&node, "ops:big", 100).await;
    let got: Vec<u64> = pages.iter().flat_map(seqs).collect();
    assert_eq!(
        got,
        (1..=100).rev().collect::<Vec<u64>>(),
        "every message once, newest first"
    );
    assert!(pages.len() >= 2, "6 MB does not fit one page");
    let first = seqs(&pages[0]);
    assert_eq!(first[0], 100, "the first page starts at the newest");
    let bytes: usize = pages[0]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["data"].as_str().unwrap().len())
        .sum();
    assert!(bytes <= 4 << 20, "{bytes} bytes in a page");
    assert!(first.len() >= 60, "a page holds what fits: {}", first.len());
}

#[tokio::test]
async fn an_operator_makes_a_client_join_and_leave_a_room() {
    let node = Node::start_default();
    let mut events = Events::open(node.admin).await;
    let mut c = Client::connect(&node.ws_url("")).await;
    c.join("ops:home").await;
    let join = format!("/admin/v1/clients/{}/join", c.id());
    let leave = format!("/admin/v1/clients/{}/leave", c.id());

    let (status, b) = post(&node, &join, json!({"room":"ops:pulled"})).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(
        b,
        json!({"already_joined": 0, "client": c.id(), "joined": 1, "room": "ops:pulled"})
    );
    let joined = c.recv().await;
    assert_eq!(joined["op"], "joined", "{joined}");
    assert_eq!(
        (joined["room"].clone(), joined["seq"].clone()),
        (json!("ops:pulled"), json!(0))
    );
    assert_eq!(joined["members"], 1);
    let ev = events.until(|e| e["type"] == "client_joined").await;
    assert_eq!(
        (ev["client"].clone(), ev["room"].clone()),
        (json!(c.id()), json!("ops:pulled"))
    );
    // A member now: it gets the room's messages and may publish there.
    let (_, p) = post(
        &node,
        "/admin/v1/rooms/ops:pulled/publish",
        json!({"data":"welcome"}),
    )
    .await;
    assert_eq!(p["seq"], 1);
    let (m, _) = c.recv_until(|f| f["op"] == "message").await;
    assert_eq!(
        (m["room"].clone(), m["data"].clone()),
        (json!("ops:pulled"), json!("welcome"))
    );
    assert_eq!(c.publish("ops:pulled", json!("thanks")).await, 2);
    let (_, list) = get(&node, &format!("/admin/v1/clients/{}", c.id())).await;
    assert_eq!(list["rooms"], 2);
    // Again: already a member.
    let (status, b) = post(&node, &join, json!({"room":"ops:pulled"})).await;
    assert_eq!(
        (status, b["joined"].clone(), b["already_joined"].clone()),
        (200, json!(0), json!(1))
    );

    // Leave: told with `left`, no more messages, its own publish refused.
    let (status, b) = post(&node, &leave, json!({"room":"ops:pulled"})).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(
        b,
        json!({"client": c.id(), "left": 1, "room": "ops:pulled"})
    );
    let (left, _) = c.recv_until(|f| f["op"] == "left").await;
    assert_eq!(left["room"], "ops:pulled");
    let ev = events.until(|e| e["type"] == "client_left").await;
    assert_eq!(ev["room"], "ops:pulled");
    let (r, _) = c
        .request(json!({"op":"publish","room":"ops:pulled","data":1}), 7)
        .await;
    assert_eq!(r["error"]["code"], "not_joined", "{r}");
    let (status, b) = post(&node, &leave, json!({"room":"ops:pulled"})).await;
    assert_eq!(
        (status, b["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{b}"
    );
    // The room it joined itself is untouched.
    assert_eq!(c.publish("ops:home", json!("still here")).await, 1);

    for (reason, n) in [("join", 2.0), ("leave", 1.0)] {
        let got = node
            .metric(&format!(
                r#"gatehouse_admin_actions_total{{reason="{reason}"}}"#
            ))
            .await;
        assert_eq!(got, n, "{reason}");
    }
    for action in ["join", "leave"] {
        audited(&node, action, &c.id()).await;
    }
}

#[tokio::test]
async fn an_operator_join_holds_to_the_rooms_claim_and_the_room_cap() {
    let node = Node::builder()
        .env("GATEHOUSE_JWT_SECRET", crate::tokens::SECRET)
        .toml("[auth]\nrequired = true\n[limits]\nmax_rooms = 2")
        .start();
    let claims = json!({"sub": "u-claim", "exp": crate::tokens::now() + 600, "rooms": ["chat:*"]});
    let token = crate::tokens::hs256(&claims);
    let mut c = Client::connect(&node.ws_url(&format!("token={token}"))).await;
    let join = format!("/admin/v1/clients/{}/join", c.id());
    let (status, b) = post(&node, &join, json!({"room":"admin:secrets"})).await;
    assert_eq!(
        (status, b["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{b}"
    );
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("admin:secrets"),
        "{b}"
    );
    for room in ["chat:a", "chat:b"] {
        let (status, b) = post(&node, &join, json!({ "room": room })).await;
        assert_eq!(status, 200, "{b}");
        let (f, _) = c.recv_until(|f| f["op"] == "joined").await;
        assert_eq!(f["room"], room);
    }
    let (status, b) = post(&node, &join, json!({"room":"chat:c"})).await;
    assert_eq!(
        (status, b["error"]["code"].as_str()),
        (409, Some("too_many_rooms")),
        "{b}"
    );
    // Refusals are not actions.
    assert_eq!(
        node.metric(r#"gatehouse_admin_actions_total{reason="join"}"#)
            .await,
        2.0
    );
}

#[tokio::test]
async fn room_operations_reach_clients_and_rooms_on_other_nodes() {
    let m = plan(3);
    let seeds = [m[0].cluster_port];
    let nodes: Vec<Node> = m
        .iter()
        .map(|x| builder(x, &seeds, COOKIE, "[rooms]\nhistory_max_bytes = 16777216").start())
        .collect();
    for n in &nodes {
        wait_active(n, &["node-0", "node-1", "node-2"], Duration::from_secs(20)).await;
    }
    // The client is on node-2; the operator talks to node-0 and node-1.
    let mut far = Client::connect(&nodes[2].ws_url("")).await;
    let room = "ops:far";
    let (status, b) = post(
        &nodes[0],
        &format!("/admin/v1/clients/{}/join", far.id()),
        json!({ "room": room }),
    )
    .await;
    assert_eq!((status, b["joined"].clone()), (200, json!(1)), "{b}");
    let (f, _) = far.recv_until(|f| f["op"] == "joined").await;
    assert_eq!(f["room"], room);
    // Published through node-1: the far client gets every message.
    for i in 1..=5 {
        let (status, b) = post(
            &nodes[1],
            &format!("/admin/v1/rooms/{room}/publish"),
            json!({ "data": { "n": i } }),
        )
        .await;
        assert_eq!((status, b["seq"].clone()), (200, json!(i)), "{b}");
    }
    for i in 1..=5 {
        let (m, _) = far.recv_until(|f| f["op"] == "message").await;
        assert_eq!(m["data"]["n"], i);
    }
    // Every node reads the same history and presence, whichever node owns the room.
    for n in &nodes {
        let pages = all_pages(n, room, 2).await;
        let got: Vec<u64> = pages.iter().flat_map(seqs).collect();
        assert_eq!(got, vec![5, 4, 3, 2, 1]);
        let (status, p) = get(n, &format!("/admin/v1/rooms/{room}/presence")).await;
        assert_eq!(status, 200, "{p}");
        assert_eq!(p["total"], 1);
        assert_eq!(
            (
                p["members"][0]["client"].clone(),
                p["members"][0]["node"].clone()
            ),
            (json!(far.id()), json!("node-2"))
        );
    }
    // Leave through node-1.
    let (status, b) = post(
        &nodes[1],
        &format!("/admin/v1/clients/{}/leave", far.id()),
        json!({ "room": room }),
    )
    .await;
    assert_eq!((status, b["left"].clone()), (200, json!(1)), "{b}");
    let (f, _) = far.recv_until(|f| f["op"] == "left").await;
    assert_eq!(f["room"], room);
    until(
        "the member gone from presence",
        Duration::from_secs(5),
        || async {
            let (_, p) = get(&nodes[0], &format!("/admin/v1/rooms/{room}/presence")).await;
            (p["total"] == 0).then_some(())
        },
    )
    .await;
    // A history larger than a page (80 messages of 60 KB), read from every node: each page
    // crosses the cluster link in bounded parts, and every message comes once, newest first.
    let data = "z".repeat(60_000);
    for i in 0..80 {
        let (status, b) = post(
            &nodes[1],
            "/admin/v1/rooms/ops:far-big/publish",
            json!({ "data": format!("{i:02}{data}") }),
        )
        .await;
        assert_eq!(status, 200, "{b}");
    }
    for n in &nodes {
        let pages = all_pages(n, "ops:far-big", 100).await;
        assert!(pages.len() >= 2, "4.8 MB does not fit one page");
        let got: Vec<u64> = pages.iter().flat_map(seqs).collect();
        assert_eq!(got, (1..=80).rev().collect::<Vec<u64>>());
    }
}
