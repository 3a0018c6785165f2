//! A room whose member list does not fit one cluster message: its presence is read page by
//! page and its state moves in bounded chunks, across two nodes, without the link between
//! them ever dropping, and no message between the nodes is larger than 1.5 MiB
//! (`gatehouse_cluster_frame_bytes_max`) while the list is 1.8 MB. (A member list past
//! ractor_cluster's 16 MiB frame limit, about 55 000 members with 256-byte user ids, is covered
//! at the unit level by `wire::migration`'s test of 200 000 members and by `bench/big-room.sh`;
//! here 6 000 members with 256-byte user ids make several presence pages and chunks.)

use crate::cluster::{builder, plan, wait_active};
use crate::{Client, Node};
use serde_json::json;
use std::time::Duration;

const MEMBERS: usize = 6000;
/// The largest message either node may write to the other (pages of 512 KiB, chunks of about
/// 1 MiB, each with its envelope).
const MAX_FRAME: f64 = 1.5 * 1024.0 * 1024.0;
const COOKIE: &str = "test-cluster-cookie-big-room-0123456789";

/// Every member, page by page: (how many, bytes of their entries as sent).
async fn presence(c: &mut Client, id: u64) -> (usize, usize) {
    let (mut count, mut bytes) = (0, 0);
    let mut after = serde_json::Value::Null;
    for k in 0..100 {
        let (p, _) = c
            .request(
                json!({"op":"presence","room":"big-members","after":after}),
                id * 1000 + k,
            )
            .await;
        assert_eq!(p["ok"], true, "{p}");
        count += p["result"]["members"].as_array().unwrap().len();
        bytes += p["result"]["members"].to_string().len();
        after = p["result"]["next"].clone();
        if after.is_null() {
            return (count, bytes);
        }
    }
    panic!("more than 100 presence pages");
}

async fn owner_of(node: &Node, room: &str) -> String {
    let (status, info) = crate::http::send(
        node.admin_request(reqwest::Method::GET, &format!("/admin/v1/rooms/{room}")),
    )
    .await;
    assert_eq!(status, 200, "{info}");
    info["owner"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_room_with_a_member_list_of_megabytes_is_listed_and_moved_in_messages_under_1_5_mib() {
    let m = plan(2);
    let seed = [m[0].cluster_port];
    let auth = format!(
        "[auth]\nrequired = true\nmax_connections_per_user = 1\n[limits]\nroom_creates_burst = {MEMBERS}"
    );
    let nodes: Vec<Node> = m
        .iter()
        .map(|mm| {
            builder(mm, &seed, COOKIE, &auth)
                .env("GATEHOUSE_JWT_SECRET", crate::tokens::SECRET)
                .start()
        })
        .collect();
    for n in &nodes {
        wait_active(n, &["node-0", "node-1"], Duration::from_secs(20)).await;
    }
    // 6 000 members with 256-byte user ids, half on each node.
    let mut members = Vec::with_capacity(MEMBERS);
    for i in 0..MEMBERS {
        let user = format!("{i:06}{}", "u".repeat(250));
        let t = crate::tokens::hs256(&json!({"sub": user, "exp": crate::tokens::now() + 600}));
        let mut c = Client::connect(&nodes[i % 2].ws_url(&format!("token={t}"))).await;
        let (r, _) = c
            .request(json!({"op":"join","room":"big-members"}), 1)
            .await;
        assert_eq!(r["ok"], true, "{r}");
        members.push(c);
    }
    // Read from the node that does not own the room: its pages cross the link.
    let owner = owner_of(&nodes[0], "big-members").await;
    let other = if owner == "node-0" { 1 } else { 0 };
    let (count, list_bytes) = presence(&mut members[other], 2).await;
    assert_eq!(count, MEMBERS);
    assert!(list_bytes as f64 > MAX_FRAME, "a {list_bytes}-byte list");
    // Move it to the other node and back, and list it again each time.
    for (k, to) in [format!("node-{other}"), owner.clone()]
        .into_iter()
        .enumerate()
    {
        let (status, body) = crate::http::send(
            nodes[0]
                .admin_request(reqwest::Method::POST, "/admin/v1/rooms/big-members/migrate")
                .json(&json!({"to": to})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(owner_of(&nodes[1], "big-members").await, to);
        let (count, _) = presence(&mut members[1 - other], 3 + k as u64).await;
        assert_eq!(count, MEMBERS);
    }
    // A publish still reaches members on both nodes, and the link never dropped.
    let (r, _) = members[0]
        .request(
            json!({"op":"publish","room":"big-members","data":"after"}),
            9,
        )
        .await;
    assert_eq!(r["ok"], true, "{r}");
    for i in [1, 2] {
        let (f, _) = members[i].recv_until(|f| f["op"] == "message").await;
        assert_eq!(f["data"], "after");
    }
    for (i, n) in nodes.iter().enumerate() {
        let peer = format!("node-{}", 1 - i);
        let fenced = n
            .metric(&format!(
                "gatehouse_cluster_peer_fenced_total{{peer=\"{peer}\"}}"
            ))
            .await;
        let reconnects = n
            .metric(&format!(
                "gatehouse_cluster_peer_reconnects_total{{peer=\"{peer}\"}}"
            ))
            .await;
        assert_eq!(
            (fenced, reconnects),
            (0.0, 0.0),
            "node-{i}'s link to {peer}"
        );
        let largest = n.metric("gatehouse_cluster_frame_bytes_max").await;
        assert!(
            largest > 0.0 && largest <= MAX_FRAME,
            "node-{i} wrote a {largest}-byte message to {peer}"
        );
    }
}

/// `count` message frames of `room` after a reply: their seqs, in the order they came.
async fn replayed(c: &mut Client, room: &str, count: usize) -> Vec<u64> {
    let mut seqs = Vec::new();
    while seqs.len() < count {
        let f = c.recv().await;
        if f["op"] == "message" && f["room"] == room {
            seqs.push(f["seq"].as_u64().unwrap());
        }
    }
    seqs
}

#[tokio::test]
async fn a_long_replay_and_history_cross_nodes_in_pages_and_arrive_whole() {
    let m = plan(2);
    let seed = [m[0].cluster_port];
    let nodes: Vec<Node> = m
        .iter()
        .map(|mm| builder(mm, &seed, COOKIE, "[rooms]\nhistory_max_bytes = 8388608").start())
        .collect();
    for n in &nodes {
        wait_active(n, &["node-0", "node-1"], Duration::from_secs(20)).await;
    }
    // A room owned by node-0, read from node-1.
    let mut reader = Client::connect(&nodes[1].ws_url("")).await;
    let mut room = String::new();
    for i in 0..40 {
        let name = format!("long-{i}");
        reader.join(&name).await;
        if owner_of(&nodes[1], &name).await == "node-0" {
            room = name;
            break;
        }
    }
    assert!(!room.is_empty(), "no room owned by node-0 among 40");
    let joined = reader.join(&room).await;
    let epoch = joined["epoch"].clone();
    // Forty 60 KB messages: a 2.4 MB replay, five times what one message between nodes carries.
    // (Published by the backend API, which has no per-client byte rate.)
    let pad = "x".repeat(60_000);
    let mut seqs = Vec::new();
    for i in 0..40 {
        let (status, r) = crate::http::send(
            reqwest::Client::new()
                .post(nodes[0].http(&format!("/api/v1/rooms/{room}/publish")))
                .json(&json!({"data": {"i": i, "pad": pad}})),
        )
        .await;
        assert_eq!(status, 200, "{r}");
        seqs.push(r["seq"].as_u64().unwrap());
    }
    let _ = replayed(&mut reader, &room, 40).await;

    // `last`, `since` and `history` from node-1 each get all forty, in order.
    let mut late = Client::connect(&nodes[1].ws_url("")).await;
    let (r, _) = late
        .request(json!({"op":"join","room":room,"last":40}), 1)
        .await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(replayed(&mut late, &room, 40).await, seqs);
    let mut back = Client::connect(&nodes[1].ws_url("")).await;
    let since = json!({"seq": seqs[0] - 1, "epoch": epoch});
    let (r, _) = back
        .request(json!({"op":"join","room":room,"since":since}), 1)
        .await;
    assert_eq!(r["result"]["recovered"], true, "{r}");
    assert_eq!(replayed(&mut back, &room, 40).await, seqs);
    let (r, _) = back
        .request(json!({"op":"history","room":room,"limit":40}), 2)
        .await;
    let got: Vec<u64> = r["result"]["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(got, seqs, "history across the link");
    // Yet nothing node-0 wrote to node-1 was larger than a page and its envelope.
    let largest = nodes[0].metric("gatehouse_cluster_frame_bytes_max").await;
    assert!(
        largest > 0.0 && largest <= MAX_FRAME,
        "node-0 wrote a {largest}-byte message"
    );
}
