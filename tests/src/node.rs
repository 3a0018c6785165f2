//! A real `gatehouse` process on loopback: written config, free ports (the node binds port 0
//! and reports what it got in its `listening` log line), JSON logs captured, killed on drop.

use crate::wait::patience;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Path of the `gatehouse` binary: `$GATEHOUSE_BIN`, or the one cargo built next to this test
/// binary (`cargo nextest run --workspace` builds it with the suite: the node package has
/// integration tests). Never rebuilt from here: a test that runs `cargo build` races the other
/// tests (and, with another feature set, rebuilds half the tree inside a test's time limit). A
/// binary older than the node's sources gets a warning.
pub fn binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("GATEHOUSE_BIN") {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().unwrap();
        let dir = exe.parent().unwrap().parent().unwrap().to_owned();
        let bin = dir.join("gatehouse");
        let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap();
        let newest = ["node", "protocol", "cluster-config", "Cargo.lock"]
            .iter()
            .filter_map(|p| newest_mtime(&root.join(p)))
            .max();
        assert!(
            built.is_some(),
            "{} is missing: run the suite with `cargo nextest run --workspace` (which builds it), \
             or build it with `cargo build -p node`, or point GATEHOUSE_BIN at a binary",
            bin.display()
        );
        if built < newest {
            eprintln!(
                "warning: {} is older than the node's sources: build it (`cargo build -p node`) \
                 or run `cargo nextest run --workspace`",
                bin.display()
            );
        }
        bin
    })
    .clone()
}

fn newest_mtime(p: &std::path::Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(p).ok()?;
    if meta.is_file() {
        return meta.modified().ok();
    }
    std::fs::read_dir(p)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name() != "target")
        .filter_map(|e| newest_mtime(&e.path()))
        .max()
}

/// Builds a node: extra TOML appended to the base config, extra environment.
#[derive(Default)]
pub struct NodeBuilder {
    toml: String,
    env: Vec<(String, String)>,
    /// Commands that exec the node in place (`ip netns exec NS`, `prlimit …`).
    launcher: Vec<String>,
}

impl NodeBuilder {
    /// Appends TOML (sections the base config does not use: add `[limits]` etc. freely; the
    /// base sets only `[node]` listen addresses and `[log]`).
    pub fn toml(mut self, t: &str) -> Self {
        self.toml.push_str(t);
        self.toml.push('\n');
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Runs the node with at most `n` file descriptors (soft and hard limit, `prlimit`).
    pub fn fd_limit(mut self, n: u64) -> Self {
        self.launcher.extend([
            "prlimit".to_owned(),
            format!("--nofile={n}:{n}"),
            "--".to_owned(),
        ]);
        self
    }

    /// Runs the node inside a network namespace (`ip netns exec`; see [`crate::netlab`]).
    pub fn netns(mut self, ns: &str) -> Self {
        self.launcher
            .extend(["ip", "netns", "exec", ns].map(str::to_owned));
        self
    }

    /// Starts the node and waits until it listens.
    pub fn start(self) -> Node {
        Node::start(self)
    }
}

/// A running node.
pub struct Node {
    child: Child,
    /// Public listener.
    pub public: SocketAddr,
    /// Admin listener.
    pub admin: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
    cfg: PathBuf,
    env: Vec<(String, String)>,
    launcher: Vec<String>,
    _dir: TempDir,
}

type Spawned = (Child, SocketAddr, SocketAddr, Arc<Mutex<Vec<String>>>);

/// Starts `gatehouse --config cfg` and waits for its `listening` line.
fn spawn(cfg: &std::path::Path, env: &[(String, String)], launcher: &[String]) -> Spawned {
    // `ip netns exec` and `prlimit` exec the node in place: the child's pid is the node's.
    let mut cmd = match launcher.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(binary());
            c
        }
        None => Command::new(binary()),
    };
    cmd.arg("--config")
        .arg(cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("gatehouse starts");
    let stderr = child.stderr.take().unwrap();
    let logs = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let logs = logs.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(t) = &tx {
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                        if v["message"] == "listening" {
                            let p = v["public"].as_str().unwrap_or_default().parse();
                            let a = v["admin"].as_str().unwrap_or_default().parse();
                            if let (Ok(p), Ok(a)) = (p, a) {
                                let _ = t.send((p, a));
                                tx = None;
                            }
                        }
                    }
                }
                logs.lock().unwrap().push(line);
            }
        });
    }
    let timeout = patience(Duration::from_secs(30));
    match rx.recv_timeout(timeout) {
        Ok((public, admin)) => (child, public, admin, logs),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            let logs = logs.lock().unwrap().join("\n");
            let toml = std::fs::read_to_string(cfg).unwrap_or_default();
            panic!("node did not start within {timeout:?}; config:\n{toml}\nlogs:\n{logs}");
        }
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates a fresh directory.
    pub fn new() -> Self {
        let p = std::env::temp_dir().join(format!(
            "gatehouse-test-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("GATEHOUSE_TEST_KEEP").is_some() {
            eprintln!("kept {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn has_section(toml: &str, section: &str) -> bool {
    toml.lines().any(|l| l.trim() == section)
}

impl Node {
    /// A builder.
    pub fn builder() -> NodeBuilder {
        NodeBuilder::default()
    }

    /// A node on defaults.
    pub fn start_default() -> Node {
        NodeBuilder::default().start()
    }

    fn start(b: NodeBuilder) -> Node {
        let dir = TempDir::new();
        let mut toml = String::new();
        if !has_section(&b.toml, "[node]") {
            toml.push_str("[node]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ncluster_listen = \"127.0.0.1:0\"\nshutdown_grace_s = 5\n");
        }
        if !has_section(&b.toml, "[log]") {
            toml.push_str("[log]\nlevel = \"info\"\nformat = \"json\"\n");
        }
        toml.push_str(&b.toml);
        let cfg = dir.0.join("node.toml");
        std::fs::write(&cfg, &toml).unwrap();
        let (child, public, admin, logs) = spawn(&cfg, &b.env, &b.launcher);
        Node {
            child,
            public,
            admin,
            logs,
            cfg,
            env: b.env,
            launcher: b.launcher,
            _dir: dir,
        }
    }

    /// Starts the same node again (same config and name, a new process and incarnation)
    /// after the previous process exited or was killed.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, public, admin, logs) = spawn(&self.cfg, &self.env, &self.launcher);
        self.child = child;
        self.public = public;
        self.admin = admin;
        self.logs = logs;
    }

    /// Sends a signal to the process.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }

    /// `ws://…/ws` with an optional query string.
    pub fn ws_url(&self, query: &str) -> String {
        if query.is_empty() {
            format!("ws://{}/ws", self.public)
        } else {
            format!("ws://{}/ws?{query}", self.public)
        }
    }

    /// `http://public/<path>`.
    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.public)
    }

    /// `http://admin/<path>`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// A request to the admin API, with the node's admin token when it has one
    /// (`GATEHOUSE_ADMIN_TOKEN` in its environment).
    pub fn admin_request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = reqwest::Client::new().request(method, self.admin_url(path));
        match self.env.iter().find(|(k, _)| k == "GATEHOUSE_ADMIN_TOKEN") {
            Some((_, token)) => req.bearer_auth(token),
            None => req,
        }
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Captured log lines so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        if let Some(status) = self.child.try_wait().unwrap() {
            return status.code();
        }
        // A thread blocks in waitid(WNOWAIT) until the process exits, without reaping it, so
        // the exit is observed the moment it happens and `try_wait` below collects the status.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use nix::sys::wait::{waitid, Id, WaitPidFlag};
            let _ = waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT);
            let _ = tx.send(());
        });
        rx.recv_timeout(patience(timeout)).ok()?;
        self.child.try_wait().unwrap().and_then(|s| s.code())
    }

    /// Reads a Prometheus sample from `/metrics`: the first line that is `name` followed by a
    /// value or labels (`name` may include labels, e.g. `x_total{reason="4009"}`).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(self.http("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // For debugging a failed run: `GATEHOUSE_TEST_LOG_DIR=dir` keeps every node's log.
        if let Some(dir) = std::env::var_os("GATEHOUSE_TEST_LOG_DIR") {
            let f = std::path::Path::new(&dir).join(format!("node-{}.log", self.child.id()));
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(f, self.logs().join("\n"));
        }
        if self.child.try_wait().ok().flatten().is_none() {
            // A stopped process must be continued to die cleanly; SIGKILL works either way.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
