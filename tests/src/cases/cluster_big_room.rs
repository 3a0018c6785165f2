//! A room whose member list does not fit one cluster message: its presence is read page by
//! page and its state moves in bounded chunks, across two nodes, without the link between
//! them ever dropping. (A member list past ractor_cluster's 16 MiB frame limit, about 55 000
//! members with 256-byte user ids, is covered at the unit level by `room::migration`'s test of
//! 200 000 members; here 3 000 members with 256-byte user ids make a list of about 1 MiB,
//! several presence pages and several chunks.)

use crate::cluster::{builder, plan, wait_active};
use crate::{Client, Node};
use serde_json::json;
use std::time::Duration;

const MEMBERS: usize = 3000;
const COOKIE: &str = "test-cluster-cookie-big-room-0123456789";

async fn presence(c: &mut Client, id: u64) -> serde_json::Value {
    c.request(json!({"op":"presence","room":"big-members"}), id)
        .await
        .0
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
async fn a_room_with_a_member_list_of_a_megabyte_is_listed_and_moved_in_bounded_messages() {
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
    // 3 000 members with 256-byte user ids, half on each node.
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
    let p = presence(&mut members[other], 2).await;
    assert_eq!(p["result"]["count"], MEMBERS, "{}", p["result"]["count"]);
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
        let p = presence(&mut members[1 - other], 3 + k as u64).await;
        assert_eq!(p["result"]["count"], MEMBERS);
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
    }
}
