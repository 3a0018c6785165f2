//! A local cluster of real `gatehouse` processes for tests: free loopback ports, a shared cookie,
//! seeds, and helpers to read `/admin/v1/cluster` from any node.

use crate::node::{Node, NodeBuilder};
use serde_json::Value;
use std::time::Duration;

/// Where [`free_port`] looks: below the kernel's ephemeral range (32768–60999 by default), so
/// no outgoing connection and no port-0 listener of a test running alongside can take the port
/// between the check and the node's own bind (that race once failed a cluster test with
/// `Address already in use`).
const PORTS: std::ops::Range<u16> = 20_000..32_000;

/// Returns a free loopback port (bound and released; the node binds it again right after).
pub fn free_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    for _ in 0..200 {
        let port = rng.gen_range(PORTS);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How to start one member.
pub struct Member {
    /// Logical name.
    pub name: String,
    /// Cluster port.
    pub cluster_port: u16,
}

/// Plans `n` members named `node-0…`, each with its own cluster port (no two alike: a port is
/// free until its node binds it, so two draws could otherwise meet).
pub fn plan(n: usize) -> Vec<Member> {
    let mut ports: Vec<u16> = Vec::with_capacity(n);
    while ports.len() < n {
        let p = free_port();
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    ports
        .into_iter()
        .enumerate()
        .map(|(i, cluster_port)| Member {
            name: format!("node-{i}"),
            cluster_port,
        })
        .collect()
}

/// Builds a member's node: its name, ports, `seeds` and `cookie`, plus `extra` TOML sections.
pub fn builder(m: &Member, seeds: &[u16], cookie: &str, extra: &str) -> NodeBuilder {
    builder_with(m, seeds, cookie, "", extra)
}

/// Like [`builder`], with extra lines in the `[node]` section.
pub fn builder_with(
    m: &Member,
    seeds: &[u16],
    cookie: &str,
    node_lines: &str,
    extra: &str,
) -> NodeBuilder {
    let seeds: Vec<String> = seeds.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
    Node::builder()
        .toml(&format!(
            "[node]\nname = \"{}\"\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ncluster_listen = \"127.0.0.1:{}\"\nseeds = [{}]\nshutdown_grace_s = 5\n{node_lines}",
            m.name,
            m.cluster_port,
            seeds.join(", ")
        ))
        .toml(extra)
        .env("GATEHOUSE_COOKIE", cookie)
}

/// `/admin/v1/cluster` of `node`, or `None` if it does not answer within 3 s.
pub async fn view(node: &Node) -> Option<Value> {
    let r = node
        .admin_request(reqwest::Method::GET, "/admin/v1/cluster")
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .ok()?;
    r.json().await.ok()
}

/// The state `node` reports for `name` (`None` if unknown).
pub async fn state_of(node: &Node, name: &str) -> Option<String> {
    let v = view(node).await?;
    v["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["name"] == name)
        .and_then(|n| n["state"].as_str().map(str::to_owned))
}

/// Waits until `node` sees exactly `names` as active.
pub async fn wait_active(node: &Node, names: &[&str], timeout: Duration) {
    let mut want: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    crate::wait::until(&format!("{want:?} active"), timeout, || {
        let want = want.clone();
        async move {
            let v = view(node).await?;
            let mut active: Vec<String> = v["nodes"]
                .as_array()?
                .iter()
                .filter(|n| n["state"] == "active")
                .filter_map(|n| n["name"].as_str().map(str::to_owned))
                .collect();
            active.sort();
            // The node's own placement view agrees (it places rooms with it).
            let me = v["nodes"]
                .as_array()?
                .iter()
                .find(|n| n["admin_address"] == node.admin.to_string())?;
            let view: Vec<String> = serde_json::from_value(me["active_view"].clone()).ok()?;
            (active == want && view == want).then_some(())
        }
    })
    .await;
}
