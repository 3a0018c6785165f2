//! What a room costs across the cluster: nothing on a node that neither owns it, backs it up
//! nor holds its members. Rooms are not remotely usable actors (a peer reaches a room through
//! the owner's room gateway), so no node keeps a handle per room of another node:
//! `gatehouse_cluster_remote_actors` stays at a few per peer while hundreds of rooms are
//! created through one node of four, and rooms that run where they are homed leave no
//! directory entry anywhere.

use crate::cluster::{builder, plan, wait_active};
use crate::{Client, Node};
use std::collections::HashMap;
use std::time::Duration;

const COOKIE: &str = "test-cluster-cookie-0123456789abcdef";

/// Rooms created through node-0, by two clients.
const ROOMS: usize = 240;

/// Handles a node may hold per peer (its endpoint, relay, room host and room gateway, with
/// room to spare): the documented "a few per peer".
const HANDLES_PER_PEER: f64 = 8.0;

async fn handles(nodes: &[Node]) -> Vec<f64> {
    let mut out = Vec::new();
    for n in nodes {
        out.push(n.metric("gatehouse_cluster_remote_actors").await);
    }
    out
}

#[tokio::test]
async fn rooms_cost_nothing_on_nodes_that_neither_own_back_up_nor_hold_their_members() {
    let m = plan(4);
    let seed = [m[0].cluster_port];
    let extra = "[limits]\nroom_creates_burst = 200";
    let nodes: Vec<Node> = m
        .iter()
        .map(|x| builder(x, &seed, COOKIE, extra).start())
        .collect();
    let names = ["node-0", "node-1", "node-2", "node-3"];
    for n in &nodes {
        wait_active(n, &names, Duration::from_secs(20)).await;
    }
    let peers = (names.len() - 1) as f64;
    let before = handles(&nodes).await;
    for (i, h) in before.iter().enumerate() {
        assert!(
            *h >= 1.0 && *h <= HANDLES_PER_PEER * peers,
            "node-{i} holds {h} handles for its peers' actors before any room"
        );
    }

    let mut clients = [
        Client::connect(&nodes[0].ws_url("")).await,
        Client::connect(&nodes[0].ws_url("")).await,
    ];
    for i in 0..ROOMS {
        let r = clients[i % 2].join(&format!("cost-{i}")).await;
        assert_eq!(r["room"], format!("cost-{i}"), "{r}");
    }

    // Where each room runs and is backed up, seen from node-3 (which asks every node); a room
    // names its backup within a second or so of its creation.
    let url = nodes[3].admin_url("/admin/v1/rooms?q=cost-&limit=1000");
    let page = crate::wait::until(
        "every room to have its backup",
        Duration::from_secs(10),
        || async {
            let page = crate::http::get_ok(&url).await;
            let rooms = page["rooms"].as_array()?;
            (rooms.len() == ROOMS && rooms.iter().all(|r| r["backup"].is_string())).then_some(page)
        },
    )
    .await;
    let rooms = page["rooms"].as_array().unwrap();
    let mut owned: HashMap<&str, usize> = HashMap::new();
    let mut uninvolved: HashMap<&str, usize> = HashMap::new();
    for r in rooms {
        let owner = r["owner"].as_str().unwrap();
        *owned.entry(owner).or_default() += 1;
        for n in names {
            // node-0 holds every room's members.
            if n != "node-0" && n != owner && r["backup"].as_str() != Some(n) {
                *uninvolved.entry(n).or_default() += 1;
            }
        }
    }
    eprintln!("rooms owned per node: {owned:?}; rooms each node has no part in: {uninvolved:?}");
    for n in names {
        assert!(
            owned.get(n).copied().unwrap_or(0) > 0,
            "{n} owns no room: {owned:?}"
        );
    }
    for n in &names[1..] {
        assert!(
            uninvolved.get(n).copied().unwrap_or(0) >= ROOMS / 4,
            "{n} takes part in too many rooms for this test to say anything: {uninvolved:?}"
        );
    }

    // Each node runs exactly the rooms it owns, and holds no handle for the others.
    for (i, n) in nodes.iter().enumerate() {
        let mine = owned.get(names[i]).copied().unwrap_or(0) as f64;
        assert_eq!(n.metric("gatehouse_rooms_active").await, mine, "node-{i}");
        assert_eq!(
            n.metric("gatehouse_room_directory_entries").await,
            0.0,
            "node-{i}: no room moved, so none is homed away from where it runs"
        );
    }
    let after = handles(&nodes).await;
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert!(
            *a <= HANDLES_PER_PEER * peers,
            "node-{i} holds {a} handles for its peers' actors after {ROOMS} rooms (before: {b})"
        );
        assert!(
            *a - *b < peers,
            "node-{i}: handles grew from {b} to {a} with {ROOMS} rooms"
        );
    }
    eprintln!(
        "handles for peers' actors per node: before {before:?}, after {ROOMS} rooms {after:?}"
    );

    // The rooms work across nodes: a publish through node-3 reaches the member on node-0.
    let http = reqwest::Client::new();
    let (s, body) = crate::http::send(
        http.post(nodes[3].http("/api/v1/rooms/cost-1/publish"))
            .json(&serde_json::json!({"data": "hello"})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let (f, _) = clients[1]
        .recv_until(|f| f["op"] == "message" && f["room"] == "cost-1")
        .await;
    assert_eq!(f["data"], "hello");
}
