//! A rolling upgrade through a real load balancer: HAProxy on loopback, run with the very
//! `deploy/haproxy/haproxy.cfg` Compose uses (only its `GH_*` addresses differ), in front of a
//! three-node cluster started by `deploy/local-cluster.sh`. Clients connect through HAProxy,
//! publishers publish continuously, and `deploy/rolling-upgrade.sh` replaces every node with a
//! "new" binary. Clients follow the protocol: on `reconnect` + 1012 they wait the hinted
//! delay, reconnect through HAProxy and resume each room with `since`.
//!
//! Asserted: per room and per client 0 lost, 0 duplicated, 0 reordered (seqs contiguous and
//! covering every acknowledged publish), no epoch change, every resume `recovered`; every
//! client connected at the end; every node had clients to move; and HAProxy never routed a
//! new connection to a draining node: every `/ws` request HAProxy logged went to a server that
//! answered 101, and none was accepted inside that server's drain window (drain request until
//! exit, from the script's `rolling-upgrade.tsv`).

use crate::client::Ended;
use crate::node::{binary, TempDir};
use crate::Client;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

const ROOMS: [&str; 3] = ["ru:alpha", "ru:beta", "ru:gamma"];
const READERS: usize = 6;
const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];
/// The nodes read the PROXY header HAProxy sends (`deploy/haproxy/haproxy.cfg`) from HAProxy's
/// address only: set for the cluster's start and for the upgraded nodes alike.
fn proxied_env() -> [(&'static str, String); 2] {
    [
        ("GATEHOUSE_PROXY_PROTOCOL", "true".into()),
        ("GATEHOUSE_TRUSTED_PROXIES", "127.0.0.2".into()),
    ]
}

/// Seconds `rolling-upgrade.sh` waits between two nodes.
const PAUSE_S: u64 = 6;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A `deploy/` script with a clean `GATEHOUSE_*` environment, bounded by `timeout`.
async fn run_script(
    script: &str,
    args: &[&str],
    env: &[(&str, String)],
    timeout: Duration,
) -> (i32, String) {
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg(repo().join(script)).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("GATEHOUSE_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    let timeout = crate::wait::patience(timeout);
    let out = match tokio::time::timeout(timeout, cmd.output()).await {
        Ok(o) => o.unwrap(),
        Err(_) => panic!("{script} {args:?} did not finish within {timeout:?}"),
    };
    let text = format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Whether all of a three-node local cluster's ports at `offset` are free now.
fn ports_free(offset: u16) -> bool {
    [8080u16, 9100, 7100]
        .iter()
        .all(|base| (1..=3).all(|i| TcpListener::bind(("127.0.0.1", base + offset + i)).is_ok()))
}

/// Stops the local cluster (by its pid files, through the script) when the test ends.
struct Cluster {
    run_dir: PathBuf,
    offset: u16,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("deploy/local-cluster.sh"))
            .arg("stop")
            .arg(&self.run_dir)
            .env("STOP_TIMEOUT_S", "10")
            .stdin(Stdio::null())
            .output();
    }
}

/// Starts `deploy/local-cluster.sh 3 --detach` at a free port offset.
async fn start_cluster(run_dir: &Path) -> Cluster {
    for attempt in 0..8 {
        // Every port (up to 9100 + offset + 3) stays below the ephemeral range (32768+), where
        // other tests' nodes get their ports, so a restarting node's port is not taken meanwhile.
        let offset = 2000 + (rand::random::<u16>() % 21_000);
        if !ports_free(offset) {
            continue;
        }
        let [proxy, trusted] = proxied_env();
        let (code, text) = run_script(
            "deploy/local-cluster.sh",
            &["3", "--detach"],
            &[
                proxy,
                trusted,
                ("GATEHOUSE_BIN", binary().display().to_string()),
                ("RUN_DIR", run_dir.display().to_string()),
                ("BASE_PORT_OFFSET", offset.to_string()),
                ("READY_TIMEOUT_S", "30".into()),
            ],
            Duration::from_secs(60),
        )
        .await;
        match code {
            0 => {
                return Cluster {
                    run_dir: run_dir.to_owned(),
                    offset,
                }
            }
            3 => eprintln!("attempt {attempt}: a port at offset {offset} was taken; retrying"),
            _ => panic!("local-cluster.sh failed ({code}):\n{text}"),
        }
    }
    panic!("no free port offset for a local cluster after 8 attempts");
}

/// HAProxy, killed (by its pid) when dropped.
struct Haproxy {
    child: Child,
    log: PathBuf,
    front: u16,
    stats: u16,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_haproxy(dir: &Path, offset: u16) -> Haproxy {
    let front = crate::cluster::free_port();
    let stats = crate::cluster::free_port();
    let log = dir.join("haproxy.log");
    let mut cmd = Command::new("haproxy");
    cmd.arg("-db")
        .arg("-f")
        .arg(repo().join("deploy/haproxy/haproxy.cfg"))
        .env("GH_FRONTEND", format!("127.0.0.1:{front}"))
        .env("GH_STATS", format!("127.0.0.1:{stats}"))
        .env_remove("GH_DNS")
        // HAProxy's connections come from 127.0.0.2, the one address the nodes trust for
        // PROXY headers (`proxied_env`); everything else on loopback talks to them directly.
        .env("GH_SOURCE", "127.0.0.2")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.join("haproxy.err")).unwrap());
    for (i, var) in ["GH_NODE_A", "GH_NODE_B", "GH_NODE_C"].iter().enumerate() {
        cmd.env(var, format!("127.0.0.1:{}", 8080 + offset + 1 + i as u16));
    }
    let child = cmd
        .spawn()
        .expect("haproxy starts (installed by deploy/tools/install.sh)");
    Haproxy {
        child,
        log,
        front,
        stats,
    }
}

/// Server name → status from HAProxy's CSV stats.
async fn haproxy_status(stats: u16) -> Option<HashMap<String, String>> {
    let body = reqwest::get(format!("http://127.0.0.1:{stats}/stats;csv"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let mut lines = body.lines();
    let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
    let col = header.iter().position(|h| *h == "status")?;
    Some(
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f.first() == Some(&"gatehouse_nodes") && f.len() > col)
            .map(|f| (f[1].to_owned(), f[col].to_owned()))
            .collect(),
    )
}

/// What one client saw.
#[derive(Default, Debug)]
struct Seen {
    /// Room → every seq received, in order.
    seqs: HashMap<String, Vec<u64>>,
    /// Room → epoch of the first message.
    epochs: HashMap<String, String>,
    /// Problems found on the way (epoch changes, failed resumes, refusals).
    problems: Vec<String>,
    /// (accept time ms, node) of every connection.
    welcomes: Vec<(u64, String)>,
    /// Close codes received.
    closes: Vec<u16>,
    resumes: usize,
    connected_at_end: bool,
}

type Shared = Arc<Mutex<Seen>>;

fn on_frame(seen: &Shared, f: &Value) {
    if f["op"] != "message" {
        return;
    }
    let room = f["room"].as_str().unwrap_or_default().to_owned();
    let seq = f["seq"].as_u64().unwrap_or(0);
    let epoch = f["epoch"].as_str().unwrap_or_default().to_owned();
    let mut s = seen.lock().unwrap();
    match s.epochs.get(&room) {
        Some(e) if *e != epoch => {
            let p = format!("{room}: epoch changed {e} -> {epoch} at seq {seq}");
            s.problems.push(p);
        }
        Some(_) => {}
        None => {
            s.epochs.insert(room.clone(), epoch);
        }
    }
    s.seqs.entry(room).or_default().push(seq);
}

/// Connects through the load balancer, retrying (bounded) like a client with backoff.
async fn connect(url: &str, seen: &Shared) -> Client {
    let deadline = Instant::now() + crate::wait::patience(Duration::from_secs(20));
    let mut backoff = Duration::from_millis(50);
    loop {
        if let Some(c) = Client::try_connect(url).await {
            let node = c.welcome["node"].as_str().unwrap_or_default().to_owned();
            seen.lock().unwrap().welcomes.push((now_ms(), node));
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "could not connect to {url} for 20 s"
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(500));
    }
}

/// Sends a request and reads frames (handing them to `on_frame`) until its reply.
async fn request(c: &mut Client, seen: &Shared, req: Value, id: u64) -> Result<Value, Ended> {
    let mut req = req;
    req["id"] = json!(id);
    c.send(req).await;
    loop {
        let f = c.next(Duration::from_secs(10)).await?;
        if f["op"] == "reply" && f["id"] == json!(id) {
            return Ok(f);
        }
        on_frame(seen, &f);
    }
}

/// Joins (or resumes) every room; `Err` when the connection ended meanwhile.
async fn join_all(
    c: &mut Client,
    seen: &Shared,
    rooms: &[&str],
    id: &mut u64,
) -> Result<(), Ended> {
    for room in rooms {
        let since = {
            let s = seen.lock().unwrap();
            s.seqs
                .get(*room)
                .and_then(|v| v.last())
                .map(|last| json!({"seq": last, "epoch": s.epochs[*room]}))
        };
        *id += 1;
        let req = match &since {
            Some(since) => json!({"op":"join","room":room,"since":since}),
            None => json!({"op":"join","room":room}),
        };
        let r = request(c, seen, req, *id).await?;
        let mut s = seen.lock().unwrap();
        if r["ok"] != true {
            s.problems.push(format!("join {room}: {r}"));
        } else if since.is_some() {
            s.resumes += 1;
            if r["result"]["recovered"] != true {
                s.problems.push(format!("resume {room} not recovered: {r}"));
            }
        }
    }
    Ok(())
}

/// Waits the `reconnect` hint's delay (a random point of `after_ms`), as a client should.
async fn honour_hint(hint: &mut Option<(u64, u64)>) {
    if let Some((lo, hi)) = hint.take() {
        let ms = if hi > lo {
            lo + rand::random::<u64>() % (hi - lo)
        } else {
            lo
        };
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// Room → the seq a reader must reach before it stops.
type Targets = Option<HashMap<String, u64>>;

fn reached(seen: &Shared, targets: &HashMap<String, u64>) -> bool {
    let s = seen.lock().unwrap();
    targets.iter().all(|(room, t)| {
        s.seqs
            .get(room)
            .and_then(|v| v.last())
            .is_some_and(|l| l >= t)
    })
}

/// A subscriber of every room; reconnects and resumes (honouring the hint) until it has seen
/// the targets it is given at the end, then proves it is still connected with a ping.
async fn reader(url: String, seen: Shared, mut targets_rx: watch::Receiver<Targets>) {
    enum Event {
        Frame(Result<Value, Ended>),
        Targets,
        Tick,
    }
    let mut id = 0u64;
    let mut hint = None;
    let mut until: Option<(HashMap<String, u64>, Instant)> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    'connection: loop {
        honour_hint(&mut hint).await;
        let mut c = connect(&url, &seen).await;
        if join_all(&mut c, &seen, &ROOMS, &mut id).await.is_err() {
            continue;
        }
        loop {
            if let Some((targets, deadline)) = &until {
                if reached(&seen, targets) || Instant::now() >= *deadline {
                    let alive = ping(&mut c, &seen).await;
                    seen.lock().unwrap().connected_at_end = alive;
                    return;
                }
            }
            let event = tokio::select! {
                f = c.next(Duration::from_secs(3600)) => Event::Frame(f),
                _ = targets_rx.changed(), if until.is_none() => Event::Targets,
                _ = tick.tick() => Event::Tick,
            };
            match event {
                Event::Targets => {
                    let targets = targets_rx.borrow().clone();
                    if let Some(t) = targets {
                        until = Some((
                            t,
                            Instant::now() + crate::wait::patience(Duration::from_secs(15)),
                        ));
                    }
                }
                Event::Tick => {}
                Event::Frame(Ok(f)) if f["op"] == "reconnect" => {
                    let a = &f["after_ms"];
                    hint = Some((a[0].as_u64().unwrap_or(0), a[1].as_u64().unwrap_or(0)));
                }
                Event::Frame(Ok(f)) => on_frame(&seen, &f),
                Event::Frame(Err(e)) => {
                    if let Ended::Closed(code, _) = e {
                        seen.lock().unwrap().closes.push(code);
                    }
                    continue 'connection;
                }
            }
        }
    }
}

/// A `ping` with an id answers a `reply` with that id; true when it came.
async fn ping(c: &mut Client, seen: &Shared) -> bool {
    c.send(json!({"op":"ping","id":"final"})).await;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), c.next(Duration::from_secs(10))).await {
            Ok(Ok(f)) if f["op"] == "reply" && f["id"] == "final" => return true,
            Ok(Ok(f)) => on_frame(seen, &f),
            _ => return false,
        }
    }
}

/// Publishes to `room` every 25 ms until told to stop; returns the highest acknowledged seq.
async fn publisher(
    url: String,
    room: &'static str,
    seen: Shared,
    stop: watch::Receiver<bool>,
) -> u64 {
    let mut id = 0u64;
    let mut hint = None;
    let mut acked = 0u64;
    let mut n = 0u64;
    'connection: loop {
        honour_hint(&mut hint).await;
        let mut c = connect(&url, &seen).await;
        id += 1;
        match request(&mut c, &seen, json!({"op":"join","room":room}), id).await {
            Ok(r) if r["ok"] == true => {}
            Ok(r) => panic!("publisher join {room}: {r}"),
            Err(_) => continue,
        }
        let mut pace = tokio::time::interval(Duration::from_millis(25));
        loop {
            pace.tick().await;
            if *stop.borrow() {
                return acked;
            }
            id += 1;
            n += 1;
            let req = json!({"op":"publish","room":room,"data":{"n":n}});
            match request(&mut c, &seen, req, id).await {
                Ok(r) if r["ok"] == true => acked = acked.max(r["result"]["seq"].as_u64().unwrap()),
                Ok(r) => {
                    let wait = r["error"]["retry_after_ms"].as_u64().unwrap_or(50);
                    tokio::time::sleep(Duration::from_millis(wait.min(1000))).await;
                }
                Err(_) => {
                    // A drain: the hint came as a frame before the close.
                    hint = Some((0, 1000));
                    continue 'connection;
                }
            }
        }
    }
}

/// One row of `rolling-upgrade.tsv`.
#[derive(Debug)]
struct Step {
    node: String,
    clients: u64,
    drain_ms: u64,
    stop_ms: u64,
    start_ms: u64,
    drain_start: u64,
    exited: u64,
}

fn read_steps(path: &Path) -> Vec<Step> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    lines
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let num = |name: &str| f[col(name)].parse::<u64>().unwrap_or(0);
            Step {
                node: f[col("node")].to_owned(),
                clients: num("clients"),
                drain_ms: num("drain_ms"),
                stop_ms: num("stop_ms"),
                start_ms: num("start_ms"),
                drain_start: num("drain_start"),
                exited: num("exited"),
            }
        })
        .collect()
}

/// `(accept ms, server, status, line)` of every `/ws` request in HAProxy's log.
fn ws_routes(log: &str) -> Vec<(u64, String, String, String)> {
    log.lines()
        .filter(|l| l.contains("\"GET /ws"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let server = f[3].split('/').nth(1).unwrap_or("?").to_owned();
            let status = f[5].to_owned();
            let at = f
                .iter()
                .find_map(|t| t.strip_prefix("accept_ms="))
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            (at, server, status, l.to_owned())
        })
        .collect()
}

/// Every room's seqs for one client: contiguous (nothing lost, duplicated or reordered) and
/// reaching the last acknowledged publish.
fn check_client(i: usize, seen: &Seen, acked: &HashMap<&str, u64>) -> Vec<String> {
    let mut bad = seen
        .problems
        .iter()
        .map(|p| format!("client {i}: {p}"))
        .collect::<Vec<_>>();
    for room in ROOMS {
        let seqs = seen.seqs.get(room).cloned().unwrap_or_default();
        let (mut lost, mut dup, mut reordered) = (0u64, 0u64, 0u64);
        for w in seqs.windows(2) {
            match w[1].cmp(&(w[0] + 1)) {
                std::cmp::Ordering::Equal => {}
                std::cmp::Ordering::Greater => lost += w[1] - w[0] - 1,
                std::cmp::Ordering::Less if w[1] == w[0] => dup += 1,
                std::cmp::Ordering::Less => reordered += 1,
            }
        }
        let last = seqs.last().copied().unwrap_or(0);
        if last < acked[room] {
            lost += acked[room] - last;
        }
        if lost + dup + reordered > 0 || seqs.is_empty() {
            bad.push(format!(
                "client {i} room {room}: {} seqs, lost {lost}, dup {dup}, reordered {reordered} (acked up to {})",
                seqs.len(),
                acked[room]
            ));
        }
    }
    bad
}

#[tokio::test]
async fn rolling_upgrade_through_haproxy_loses_nothing_and_never_routes_to_a_draining_node() {
    let started = Instant::now();
    let (code, text) = run_script(
        "deploy/tools/install.sh",
        &[],
        &[],
        Duration::from_secs(600),
    )
    .await;
    assert_eq!(code, 0, "deploy/tools/install.sh failed:\n{text}");
    eprintln!("[{:?}] installed", started.elapsed());
    let dir = TempDir::new();
    let run_dir = dir.0.join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let cluster = start_cluster(&run_dir).await;
    eprintln!("[{:?}] cluster", started.elapsed());
    let haproxy = start_haproxy(&dir.0, cluster.offset);
    crate::wait::until(
        "HAProxy to see all three nodes UP",
        Duration::from_secs(20),
        || async {
            let st = haproxy_status(haproxy.stats).await?;
            NODES
                .iter()
                .all(|n| st.get(*n).is_some_and(|s| s == "UP"))
                .then_some(())
        },
    )
    .await;
    eprintln!("[{:?}] haproxy up", started.elapsed());
    let url = format!("ws://127.0.0.1:{}/ws", haproxy.front);

    // Readers and publishers, all through HAProxy.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (targets_tx, targets_rx) = watch::channel::<Targets>(None);
    let readers: Vec<Shared> = (0..READERS).map(|_| Shared::default()).collect();
    let reader_tasks: Vec<_> = readers
        .iter()
        .map(|s| tokio::spawn(reader(url.clone(), s.clone(), targets_rx.clone())))
        .collect();
    crate::wait::until(
        "every reader joined every room",
        Duration::from_secs(20),
        || async {
            readers
                .iter()
                .all(|s| s.lock().unwrap().welcomes.len() == 1)
                .then_some(())
        },
    )
    .await;
    let admin = format!("http://127.0.0.1:{}", 9100 + cluster.offset + 1);
    crate::wait::until("readers to be members", Duration::from_secs(20), || async {
        for room in ROOMS {
            // 404 until the readers' joins have created the room.
            let url = format!("{admin}/admin/v1/rooms/{room}");
            let (status, v) = crate::http::send(reqwest::Client::new().get(&url)).await;
            assert!(matches!(status, 200 | 404), "GET {url}: {status} {v}");
            if v["members_total"].as_u64()? < READERS as u64 {
                return None;
            }
        }
        Some(())
    })
    .await;
    let pub_seen: Shared = Shared::default();
    let pub_tasks: Vec<_> = ROOMS
        .iter()
        .map(|room| {
            tokio::spawn(publisher(
                url.clone(),
                room,
                pub_seen.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    crate::wait::until(
        "messages flowing to every reader",
        Duration::from_secs(20),
        || async {
            readers
                .iter()
                .all(|s| {
                    let s = s.lock().unwrap();
                    ROOMS
                        .iter()
                        .all(|r| s.seqs.get(*r).is_some_and(|v| v.len() >= 10))
                })
                .then_some(())
        },
    )
    .await;

    eprintln!("[{:?}] flowing", started.elapsed());
    // The upgrade: every node replaced by the "new" binary (the same build under a new path).
    let next = dir.0.join("gatehouse-next");
    std::os::unix::fs::symlink(binary(), &next).unwrap();
    let t0 = Instant::now();
    let [proxy, trusted] = proxied_env();
    let (code, out) = run_script(
        "deploy/rolling-upgrade.sh",
        &[run_dir.to_str().unwrap(), next.to_str().unwrap()],
        &[
            proxy,
            trusted,
            ("DRAIN_TIMEOUT_S", "30".into()),
            ("READY_TIMEOUT_S", "30".into()),
            ("STOP_TIMEOUT_S", "15".into()),
            // Between two nodes, the moved clients' reconnect window (drain_jitter_ms, 5 s in
            // the example configs) passes and HAProxy's rise checks (2 x 1 s) see the new node
            // up. Without it, clients moved off one node still reconnecting when the next
            // node's drain starts can be routed there in the ~1 s before HAProxy notices.
            ("PAUSE_S", PAUSE_S.to_string()),
        ],
        Duration::from_secs(90),
    )
    .await;
    let upgrade = t0.elapsed();
    assert_eq!(code, 0, "rolling-upgrade.sh failed:\n{out}");
    eprintln!("{out}");
    let steps = read_steps(&run_dir.join("rolling-upgrade.tsv"));
    assert_eq!(
        steps.iter().map(|s| s.node.as_str()).collect::<Vec<_>>(),
        NODES,
        "one step per node, in order"
    );
    for name in NODES {
        let pid: u32 = std::fs::read_to_string(run_dir.join(format!("{name}.pid")))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let argv0 = cmdline.split(|b| *b == 0).next().unwrap();
        assert_eq!(
            argv0,
            next.as_os_str().as_encoded_bytes(),
            "{name} runs the new binary"
        );
    }

    // Publishing stops; every reader catches up and must be connected.
    eprintln!("[{:?}] upgraded", started.elapsed());
    stop_tx.send(true).unwrap();
    let mut acked: HashMap<&str, u64> = HashMap::new();
    for (room, t) in ROOMS.iter().zip(pub_tasks) {
        acked.insert(room, t.await.unwrap());
    }
    for (room, a) in &acked {
        assert!(*a > 50, "{room}: only {a} publishes acknowledged");
    }
    // Readers read on until they reach the last acknowledged seq of every room (or 15 s), then
    // ping to show they are still connected.
    eprintln!("[{:?}] publishers stopped", started.elapsed());
    let targets = acked.iter().map(|(r, a)| (r.to_string(), *a)).collect();
    targets_tx.send(Some(targets)).unwrap();
    for t in reader_tasks {
        t.await.unwrap();
    }
    eprintln!("[{:?}] readers done", started.elapsed());
    let mut bad = Vec::new();
    let mut moved = 0;
    for (i, s) in readers.iter().enumerate() {
        let s = s.lock().unwrap();
        if !s.connected_at_end {
            bad.push(format!("client {i} not connected at the end"));
        }
        bad.extend(check_client(i, &s, &acked));
        moved += s.closes.iter().filter(|c| **c == 1012).count();
        for c in &s.closes {
            if *c != 1012 {
                bad.push(format!("client {i}: close {c} (expected only 1012 drains)"));
            }
        }
    }
    assert!(bad.is_empty(), "client problems:\n{}", bad.join("\n"));
    for s in &steps {
        assert!(s.clients >= 1, "{} had no client to move: {s:?}", s.node);
    }

    // HAProxy: every /ws request went to a node that took it (101), none to a draining node.
    let log = std::fs::read_to_string(&haproxy.log).unwrap();
    let routes = ws_routes(&log);
    let connections: usize = readers
        .iter()
        .map(|s| s.lock().unwrap().welcomes.len())
        .sum::<usize>()
        + pub_seen.lock().unwrap().welcomes.len();
    assert!(
        routes.len() >= connections,
        "HAProxy logged {} /ws requests for {connections} connections:\n{log}",
        routes.len()
    );
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for (at, server, status, line) in &routes {
        assert_eq!(
            status, "101",
            "HAProxy sent a WebSocket to {server} that did not take it (accept {at}):\n{line}\nsteps: {steps:?}"
        );
        *per_node.entry(server.clone()).or_default() += 1;
        for s in steps.iter().filter(|s| s.node == *server) {
            assert!(
                !(s.drain_start..=s.exited).contains(at),
                "HAProxy routed a new connection to {server} at {at}, while it drained ({s:?})"
            );
        }
    }
    let welcomes: Vec<(u64, String)> = readers
        .iter()
        .flat_map(|s| s.lock().unwrap().welcomes.clone())
        .collect();
    for (at, node) in &welcomes {
        for s in steps.iter().filter(|s| s.node == *node) {
            assert!(
                !(s.drain_start..s.exited).contains(at),
                "a client was welcomed by {node} at {at} while it drained ({s:?})"
            );
        }
    }
    drop(haproxy);
    drop(cluster);
    eprintln!("[{:?}] stopped", started.elapsed());
    let figures: Vec<String> = steps
        .iter()
        .map(|s| {
            format!(
                "{}: drain {} ms ({} clients), stop {} ms, start {} ms",
                s.node, s.drain_ms, s.clients, s.stop_ms, s.start_ms
            )
        })
        .collect();
    eprintln!(
        "rolling upgrade through HAProxy: {} in {upgrade:?}; {moved} reader reconnects after 1012; \
         acked {acked:?}; /ws routes per node {per_node:?}; test {:?}",
        figures.join("; "),
        started.elapsed()
    );
}
