//! A peer that reads slowly but steadily (a swapping VM, a saturated link): every link between
//! two nodes goes through a TCP proxy in this test that passes at most 256 KiB/s toward node-1.
//! Node-0 owns a room with a member on node-1 and is made to publish far faster than that. What
//! waits for node-1 is counted where it is enqueued, so node-0 cuts the link at its budget
//! (`node.cluster_peer_budget_bytes`, 4 MiB here) instead of growing its memory, and the link
//! comes back once the flood is over.

use crate::cluster::{plan, state_of};
use crate::procfs::rss;
use crate::wait::until;
use crate::{Client, Node};
use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const COOKIE: &str = "test-cluster-cookie-slow-peer-0123456789";
/// Bytes a second the proxies pass toward node-1.
const RATE: usize = 256 * 1024;

/// Copies `from` to `to`, at most [`RATE`] bytes a second when `throttled`.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    throttled: bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let started = Instant::now();
    let mut passed = 0usize;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        passed += n;
        if throttled {
            // The throttle itself: stay at RATE on average.
            let due = Duration::from_secs_f64(passed as f64 / RATE as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// A proxy on `listen` to `target`; `toward_target_throttled` says which direction is slow.
async fn proxy(
    listen: SocketAddr,
    target: SocketAddr,
    toward_target_throttled: bool,
) -> tokio::task::JoinHandle<()> {
    let l = TcpListener::bind(listen).await.unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = l.accept().await {
            let Ok(server) = TcpStream::connect(target).await else {
                continue;
            };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pipe(cr, sw, toward_target_throttled));
            tokio::spawn(pipe(sr, cw, !toward_target_throttled));
        }
    })
}

fn node(name: &str, cluster_port: u16, advertise: &str, seeds: &str, extra: &str) -> Node {
    Node::builder()
        .toml(&format!(
            "[node]\nname = \"{name}\"\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ncluster_listen = \"127.0.0.1:{cluster_port}\"\nadvertise = \"{advertise}\"\nseeds = [{seeds}]\nshutdown_grace_s = 5\n{extra}"
        ))
        .env("GATEHOUSE_COOKIE", COOKIE)
        .start()
}

#[tokio::test]
async fn a_peer_that_reads_slowly_but_steadily_is_cut_at_the_budget_and_the_sender_stays_small() {
    let m = plan(2);
    let (p0, p1) = (m[0].cluster_port, m[1].cluster_port);
    // Every link passes a proxy: node-0 is reached at 127.0.0.4, node-1 at 127.0.0.3.
    let to_node0 = proxy(
        format!("127.0.0.4:{p0}").parse().unwrap(),
        format!("127.0.0.1:{p0}").parse().unwrap(),
        false,
    )
    .await;
    let to_node1 = proxy(
        format!("127.0.0.3:{p1}").parse().unwrap(),
        format!("127.0.0.1:{p1}").parse().unwrap(),
        true,
    )
    .await;
    let n0 = node(
        "node-0",
        p0,
        "127.0.0.4",
        "",
        "cluster_peer_budget_bytes = 4194304\n[rooms]\nhistory_max_bytes = 4194304",
    );
    let n1 = node(
        "node-1",
        p1,
        "127.0.0.3",
        &format!("\"127.0.0.4:{p0}\""),
        "",
    );
    until("node-1 up at node-0", Duration::from_secs(20), || async {
        (state_of(&n0, "node-1").await.as_deref() == Some("active")).then_some(())
    })
    .await;
    // A room owned by node-0 with a member on node-1.
    let mut member = Client::connect(&n1.ws_url("")).await;
    let mut room = String::new();
    for i in 0..40 {
        let name = format!("slow-{i}");
        member.join(&name).await;
        let (_, info) = crate::http::send(
            n0.admin_request(reqwest::Method::GET, &format!("/admin/v1/rooms/{name}")),
        )
        .await;
        if info["owner"] == "node-0" {
            room = name;
            break;
        }
    }
    assert!(!room.is_empty(), "no room owned by node-0 among 40");
    let rss_before = rss(n0.pid());
    // 600 × 60 KB = 36 MB for node-1 within a few seconds; 256 KiB/s gets through.
    let http = reqwest::Client::new();
    let pad = "x".repeat(60_000);
    for i in 0..600 {
        let r = http
            .post(n0.http(&format!("/api/v1/rooms/{room}/publish")))
            .json(&json!({"data":{"i":i,"pad":pad}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let fenced = until(
        "node-0 to cut its link to node-1",
        Duration::from_secs(20),
        || async {
            let n = n0
                .metric("gatehouse_cluster_peer_fenced_total{peer=\"node-1\"}")
                .await;
            (n >= 1.0).then_some(n)
        },
    )
    .await;
    let grown = rss(n0.pid()).saturating_sub(rss_before);
    eprintln!(
        "slow peer: fenced {fenced} times, node-0 RSS +{} KiB for 36 MB published toward a 256 KiB/s peer",
        grown / 1024
    );
    assert!(grown < 24 << 20, "node-0 RSS grew by {grown} bytes");
    let fences: Vec<String> = n0
        .logs()
        .into_iter()
        .filter(|l| l.contains("cluster link fenced"))
        .collect();
    assert!(
        fences
            .iter()
            .any(|l| l.contains("outbound budget exceeded")),
        "{fences:?}"
    );
    // Once the flood is over the link comes back.
    until("node-1 back at node-0", Duration::from_secs(30), || async {
        (state_of(&n0, "node-1").await.as_deref() == Some("active")).then_some(())
    })
    .await;
    to_node0.abort();
    to_node1.abort();
}
