//! Whole-cluster stop (issue 16): SIGTERM to every node of a three-node cluster at the same
//! moment. No node moves rooms to a node that is leaving too, and none waits out its
//! `shutdown_grace_s` (30 s here): with no active peer left, each finishes as a lone node does
//! (clients closed with 1001, exit 0) within a few seconds, and every client gets a close it
//! can act on (1001 or 1012, never a dropped socket).

use crate::client::Ended;
use crate::cluster::{plan, wait_active, Member};
use crate::{Client, Node};
use std::time::{Duration, Instant};

const COOKIE: &str = "stop-test-cookie-0123456789abcdef";

/// A member with the production grace period (30 s), so a drain stuck waiting would show.
fn start(m: &Member, seed: u16) -> Node {
    Node::builder()
        .toml(&format!(
            "[node]\nname = \"{}\"\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ncluster_listen = \"127.0.0.1:{}\"\nseeds = [\"127.0.0.1:{seed}\"]\nshutdown_grace_s = 30\n",
            m.name, m.cluster_port
        ))
        .env("GATEHOUSE_COOKIE", COOKIE)
        .start()
}

#[tokio::test]
async fn sigterm_to_every_node_at_once_ends_the_cluster_in_seconds_with_actionable_closes() {
    let m = plan(3);
    let seed = m[0].cluster_port;
    let mut nodes: Vec<Node> = m.iter().map(|mm| start(mm, seed)).collect();
    for n in &nodes {
        wait_active(n, &["node-0", "node-1", "node-2"], Duration::from_secs(20)).await;
    }
    // Rooms owned all over the cluster, with members on every node.
    let mut clients = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        for k in 0..3 {
            let mut c = Client::connect(&n.ws_url("")).await;
            for r in 0..4 {
                c.join(&format!("stop-{}", (i + k + r) % 8)).await;
            }
            clients.push(c);
        }
    }
    let owners: std::collections::BTreeSet<String> = {
        let mut s = std::collections::BTreeSet::new();
        for r in 0..8 {
            let v = crate::http::get_ok(&nodes[0].admin_url(&format!("/admin/v1/rooms/stop-{r}")))
                .await;
            s.insert(v["owner"].as_str().unwrap().to_owned());
        }
        s
    };
    assert!(owners.len() >= 2, "rooms on one node only: {owners:?}");

    let t0 = Instant::now();
    for n in &nodes {
        n.sigterm();
    }
    // Every client is told, with a close it can act on.
    let mut codes = std::collections::BTreeMap::<u16, usize>::new();
    let mut last_close = Duration::ZERO;
    for c in &mut clients {
        match c.expect_close(Duration::from_secs(15)).await.0 {
            Ended::Closed(code, _) => {
                assert!(
                    code == 1001 || code == 1012,
                    "close {code} is not one a client can act on"
                );
                *codes.entry(code).or_default() += 1;
                last_close = last_close.max(t0.elapsed());
            }
            Ended::Eof => panic!("a client's socket dropped without a close frame"),
        }
    }
    // Every node exits 0, in seconds, not after its 30 s grace.
    let mut exits = Vec::new();
    for n in &mut nodes {
        // Blocking is fine here: nothing else runs on this test's runtime any more. The time
        // taken is an upper bound for the nodes after the first (they may have exited earlier).
        let code = n.wait_exit(Duration::from_secs(20));
        exits.push((code, t0.elapsed()));
    }
    eprintln!(
        "rooms owned by {owners:?}; closes {codes:?}, the last after {last_close:?}; exits {exits:?}"
    );
    for (i, (code, at)) in exits.iter().enumerate() {
        assert_eq!(*code, Some(0), "node-{i} exit status");
        assert!(
            *at <= crate::wait::patience(Duration::from_secs(5)),
            "node-{i} took {at:?} to exit"
        );
    }
    assert!(last_close <= crate::wait::patience(Duration::from_secs(5)));
    for (i, n) in nodes.iter().enumerate() {
        let logs = n.logs();
        assert!(
            !logs
                .iter()
                .any(|l| l.contains("did not finish within the grace period")),
            "node-{i} waited out its grace"
        );
    }
}
