//! The deploy kit (`deploy/`), checked with the tools people use for it and against what the
//! binary really accepts. No container engine runs here, so the Docker and Compose files are
//! linted and cross-checked rather than run:
//! - `kubernetes-validate --strict` on every Kubernetes manifest, `hadolint` on the Dockerfile,
//!   `yamllint` on every YAML file, `haproxy -c` on the shared HAProxy config, `bash -n` /
//!   `sh -n` and `--help` on the scripts (tools installed by `deploy/tools/install.sh`);
//! - `gatehouse check-config` on the ConfigMap's config with the StatefulSet's environment, on
//!   the image's default config with Compose's environment, and with the systemd env file;
//! - every `GATEHOUSE_*` name in deploy/ is one the config loader (or gatehouse-drain) reads;
//! - ports, probe paths, the preStop / ExecStop drain command, the image entrypoint and the
//!   HAProxy wiring agree with each other and with the binary (the drain command and the probe
//!   paths are run against a real node).

use crate::node::{binary, TempDir};
use crate::Node;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::sync::OnceCell;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Runs a program to completion (bounded); returns its exit code and combined output.
async fn run(prog: &Path, args: &[&str], env: &[(&str, String)]) -> (i32, String) {
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args).current_dir(repo()).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("GATEHOUSE_") || k.starts_with("GH_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.kill_on_drop(true);
    let timeout = crate::wait::patience(Duration::from_secs(120));
    let out = tokio::time::timeout(timeout, cmd.output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{} {args:?} did not finish within {timeout:?}",
                prog.display()
            )
        })
        .unwrap_or_else(|e| panic!("{} cannot run: {e}", prog.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The tools' bin directory (installing them the first time).
async fn tools() -> &'static PathBuf {
    static TOOLS: OnceCell<PathBuf> = OnceCell::const_new();
    TOOLS
        .get_or_init(|| async {
            let (code, out) = run(Path::new("bash"), &["deploy/tools/install.sh"], &[]).await;
            assert_eq!(code, 0, "deploy/tools/install.sh failed:\n{out}");
            let bin = out
                .lines()
                .rev()
                .find(|l| l.ends_with("/bin"))
                .unwrap_or_else(|| panic!("install.sh printed no bin directory:\n{out}"));
            PathBuf::from(bin)
        })
        .await
}

/// Every document of a YAML file, as JSON (parsed by PyYAML from the tools' venv).
async fn yaml(rel: &str) -> Vec<Value> {
    let py = tools().await.join("python");
    let (code, out) = run(
        &py,
        &[
            "-c",
            "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]))",
            rel,
        ],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{rel} is not YAML PyYAML reads:\n{out}");
    serde_json::from_str(out.trim()).unwrap()
}

fn files(dir: &str, ext: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(repo().join(dir))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| ext.iter().any(|x| n.ends_with(x)))
        .map(|n| format!("{dir}/{n}"))
        .collect();
    out.sort();
    out
}

fn by_kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in the manifests"))
}

/// All Kubernetes manifests, every document.
async fn k8s() -> Vec<Value> {
    let mut docs = Vec::new();
    for f in files("deploy/k8s", &[".yaml"]) {
        docs.extend(yaml(&f).await);
    }
    docs
}

/// The names the config loader reads, from `cluster-config/src/env.rs`'s `ENV_VARS`.
fn loader_env_names() -> BTreeSet<String> {
    let src = read("cluster-config/src/env.rs");
    let start = src.find("pub const ENV_VARS").expect("ENV_VARS in env.rs");
    let body = &src[start..start + src[start..].find("];").unwrap()];
    let names: BTreeSet<String> = body
        .split('"')
        .filter(|s| s.starts_with("GATEHOUSE_"))
        .map(str::to_owned)
        .collect();
    assert!(names.len() > 10, "ENV_VARS parsed to {names:?}");
    names
}

/// Every `GATEHOUSE_*` name in a text.
fn env_names_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("GATEHOUSE_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let name = tail[..end].trim_end_matches('_');
        // `GATEHOUSE_*` and `GATEHOUSE_<NAME>_FILE` in prose name no variable.
        if name != "GATEHOUSE" {
            out.insert(name.to_owned());
        }
        rest = &tail[end..];
    }
    out
}

/// The port of a `host:port` string.
fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("`{addr}` is not host:port"))
}

/// A TOML table from a config text.
fn toml_node(text: &str) -> HashMap<String, String> {
    // Only `[node]`'s simple `key = value` lines are needed here.
    let mut out = HashMap::new();
    let mut in_node = false;
    for line in text.lines() {
        let l = line.split('#').next().unwrap().trim();
        if l.starts_with('[') {
            in_node = l == "[node]";
        } else if in_node {
            if let Some((k, v)) = l.split_once('=') {
                out.insert(k.trim().to_owned(), v.trim().trim_matches('"').to_owned());
            }
        }
    }
    out
}

/// Writes dummy secret files for every `*_FILE` variable and returns the environment with
/// their paths.
fn with_secret_files(dir: &Path, env: &[(String, String)]) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| {
            if k.ends_with("_FILE") {
                let p = dir.join(k.to_ascii_lowercase());
                std::fs::write(&p, "0123456789abcdef0123456789abcdef0123456789abcdef\n").unwrap();
                (k.clone(), p.display().to_string())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect()
}

async fn check_config(file: &Path, env: &[(String, String)]) -> String {
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let (code, out) = run(&binary(), &["check-config", file.to_str().unwrap()], &env).await;
    assert_eq!(
        code,
        0,
        "gatehouse check-config {} with {env:?}:\n{out}",
        file.display()
    );
    out
}

/// The StatefulSet's container.
fn container(docs: &[Value]) -> &Value {
    &by_kind(docs, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
}

/// The container's environment with `$(POD_NAME)` expanded for pod `pod`.
fn pod_env(c: &Value, pod: &str) -> Vec<(String, String)> {
    c["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"].as_str().unwrap().starts_with("GATEHOUSE_"))
        .map(|e| {
            let v = e["value"]
                .as_str()
                .unwrap_or_default()
                .replace("$(POD_NAME)", pod);
            (e["name"].as_str().unwrap().to_owned(), v)
        })
        .collect()
}

#[tokio::test]
async fn deploy_lint_manifests_dockerfile_yaml_haproxy_and_scripts() {
    let bin = tools().await;
    // Kubernetes: every resource manifest, strict (unknown fields fail).
    let manifests: Vec<String> = files("deploy/k8s", &[".yaml"])
        .into_iter()
        .filter(|f| !f.ends_with("kustomization.yaml"))
        .collect();
    assert!(manifests.len() >= 4, "{manifests:?}");
    let mut args = vec!["--strict"];
    args.extend(manifests.iter().map(String::as_str));
    let (code, out) = run(&bin.join("kubernetes-validate"), &args, &[]).await;
    assert_eq!(code, 0, "kubernetes-validate:\n{out}");
    for kind in [
        "StatefulSet",
        "Service",
        "ConfigMap",
        "PodDisruptionBudget",
        "NetworkPolicy",
    ] {
        assert!(
            out.contains(&format!("resource {}", kind.to_ascii_lowercase())),
            "{kind} validated:\n{out}"
        );
    }
    // The kustomization lists exactly those manifests.
    let kust = &yaml("deploy/k8s/kustomization.yaml").await[0];
    let listed: BTreeSet<String> = kust["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("deploy/k8s/{}", r.as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        manifests.iter().cloned().collect(),
        "kustomization resources"
    );
    // Dockerfile.
    let (code, out) = run(&bin.join("hadolint"), &["deploy/docker/Dockerfile"], &[]).await;
    assert_eq!(code, 0, "hadolint:\n{out}");
    // Every YAML file under deploy/.
    let (code, out) = run(
        &bin.join("yamllint"),
        &["--strict", "-c", "deploy/.yamllint.yaml", "deploy"],
        &[],
    )
    .await;
    assert_eq!(code, 0, "yamllint:\n{out}");
    // HAProxy: the shared config loads with the test's loopback values, with and without DNS.
    for dns in [false, true] {
        let mut env = vec![
            ("GH_FRONTEND", "127.0.0.1:1".to_owned()),
            ("GH_STATS", "127.0.0.1:2".to_owned()),
            ("GH_NODE_A", "127.0.0.1:3".to_owned()),
            ("GH_NODE_B", "127.0.0.1:4".to_owned()),
            ("GH_NODE_C", "127.0.0.1:5".to_owned()),
        ];
        if dns {
            env.push(("GH_DNS", "1".into()));
        }
        let (code, out) = run(
            Path::new("haproxy"),
            &["-c", "-f", "deploy/haproxy/haproxy.cfg"],
            &env,
        )
        .await;
        assert_eq!(code, 0, "haproxy -c (GH_DNS {dns}):\n{out}");
        assert!(!out.contains("WARNING"), "haproxy -c warns:\n{out}");
    }
    // Scripts: syntax, --help, and a clear usage error.
    for (shell, script) in [
        ("bash", "deploy/rolling-upgrade.sh"),
        ("bash", "deploy/tools/install.sh"),
        ("bash", "deploy/compose/secrets.sh"),
        ("sh", "deploy/docker/gatehouse-drain.sh"),
    ] {
        let text = read(script);
        assert!(
            text.contains("set -euo pipefail") || (shell == "sh" && text.contains("set -eu")),
            "{script}: strict mode"
        );
        let (code, out) = run(Path::new(shell), &["-n", script], &[]).await;
        assert_eq!(code, 0, "{shell} -n {script}:\n{out}");
        let (code, out) = run(Path::new(shell), &[script, "--help"], &[]).await;
        assert_eq!(code, 0, "{script} --help:\n{out}");
        assert!(out.len() > 100, "{script} --help says little:\n{out}");
        let (code, out) = run(Path::new(shell), &[script, "--no-such-flag"], &[]).await;
        assert_eq!(code, 2, "{script} --no-such-flag:\n{out}");
        assert!(
            out.contains("--no-such-flag"),
            "{script} names the bad argument:\n{out}"
        );
    }
}

#[tokio::test]
async fn deploy_configs_pass_check_config_with_their_environment() {
    let dir = TempDir::new();
    // Kubernetes: the ConfigMap's config with each pod's environment.
    let docs = k8s().await;
    let cm = by_kind(&docs, "ConfigMap");
    let cfg = dir.0.join("k8s.toml");
    std::fs::write(&cfg, cm["data"]["gatehouse.toml"].as_str().unwrap()).unwrap();
    let c = container(&docs);
    for pod in ["gatehouse-0", "gatehouse-2"] {
        let env = with_secret_files(&dir.0, &pod_env(c, pod));
        let out = check_config(&cfg, &env).await;
        assert!(out.contains(&format!("name = \"{pod}\"")), "{out}");
        assert!(
            out.contains(&format!("advertise = \"{pod}.gatehouse-peers\"")),
            "{out}"
        );
        assert!(
            out.contains("required = true"),
            "auth on in Kubernetes: {out}"
        );
        assert!(!out.contains("0123456789abcdef"), "secrets redacted: {out}");
    }
    // The image's default config alone, then with each Compose node's environment.
    let image_cfg = repo().join("deploy/docker/gatehouse.toml");
    check_config(&image_cfg, &[]).await;
    let compose = &yaml("deploy/compose/compose.yaml").await[0];
    for node in ["node-a", "node-b", "node-c"] {
        let env: Vec<(String, String)> = compose["services"][node]["environment"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let env = with_secret_files(&dir.0, &env);
        let out = check_config(&image_cfg, &env).await;
        assert!(out.contains(&format!("name = \"{node}\"")), "{out}");
    }
    // systemd: the env file's settings over the single-node example.
    let env: Vec<(String, String)> = read("deploy/systemd/gatehouse.env")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    assert!(!env.is_empty());
    check_config(
        &repo().join("cluster-config/examples/single-node.toml"),
        &env,
    )
    .await;
}

#[tokio::test]
async fn deploy_env_names_are_the_ones_the_loader_reads() {
    let loader = loader_env_names();
    let drain = read("deploy/docker/gatehouse-drain.sh");
    let drain_names = env_names_in(&drain);
    let mut bad = Vec::new();
    let sources = [
        "deploy/docker/Dockerfile",
        "deploy/docker/gatehouse.toml",
        "deploy/compose/compose.yaml",
        "deploy/systemd/gatehouse.service",
        "deploy/systemd/gatehouse.env",
        "deploy/k8s/statefulset.yaml",
        "deploy/k8s/configmap.yaml",
    ];
    let mut seen = BTreeSet::new();
    for f in sources {
        for name in env_names_in(&read(f)) {
            let known = loader.contains(&name)
                || (name.starts_with("GATEHOUSE_DRAIN_") && drain_names.contains(&name));
            if !known {
                bad.push(format!("{f}: {name}"));
            }
            seen.insert(name);
        }
    }
    assert!(
        bad.is_empty(),
        "names neither the loader nor gatehouse-drain reads:\n{}",
        bad.join("\n")
    );
    // gatehouse-drain's own names are documented in its header, and the secrets it reads are
    // the loader's.
    for name in &drain_names {
        assert!(
            name.starts_with("GATEHOUSE_DRAIN_") || loader.contains(name),
            "gatehouse-drain reads {name}, which is neither its own nor the loader's"
        );
    }
    // Every secret the Kubernetes pods get is passed as a file.
    for s in ["COOKIE", "ADMIN_TOKEN", "JWT_SECRET", "API_KEY"] {
        assert!(
            seen.contains(&format!("GATEHOUSE_{s}_FILE")),
            "GATEHOUSE_{s}_FILE is used in deploy/"
        );
    }
}

#[tokio::test]
async fn deploy_ports_probes_entrypoint_and_haproxy_agree_with_the_binary() {
    // --- Kubernetes -----------------------------------------------------------------------
    let docs = k8s().await;
    let cm = by_kind(&docs, "ConfigMap");
    let cfg = toml_node(cm["data"]["gatehouse.toml"].as_str().unwrap());
    let sts = by_kind(&docs, "StatefulSet");
    let c = container(&docs);
    let ports: HashMap<String, u64> = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["containerPort"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ports["public"],
        u64::from(port_of(&cfg["listen"])),
        "public port"
    );
    assert_eq!(
        ports["admin"],
        u64::from(port_of(&cfg["admin_listen"])),
        "admin port"
    );
    assert_eq!(
        ports["cluster"],
        u64::from(port_of(&cfg["cluster_listen"])),
        "cluster port"
    );
    let probe = |name: &str| &c[name]["httpGet"];
    assert_eq!(probe("readinessProbe")["path"], "/readyz");
    assert_eq!(probe("livenessProbe")["path"], "/healthz");
    assert_eq!(probe("startupProbe")["path"], "/healthz");
    for p in ["readinessProbe", "livenessProbe", "startupProbe"] {
        assert_eq!(probe(p)["port"], "public", "{p} on the public port");
    }
    // Services point at named container ports; the headless one is the StatefulSet's.
    for svc in docs.iter().filter(|d| d["kind"] == "Service") {
        for p in svc["spec"]["ports"].as_array().unwrap() {
            let t = p["targetPort"].as_str().unwrap();
            assert!(
                ports.contains_key(t),
                "Service {} targets unknown port {t}",
                svc["metadata"]["name"]
            );
        }
    }
    let peers = sts["spec"]["serviceName"].as_str().unwrap();
    let headless = docs
        .iter()
        .find(|d| d["kind"] == "Service" && d["metadata"]["name"] == peers)
        .expect("the StatefulSet's serviceName is a Service");
    assert_eq!(headless["spec"]["clusterIP"], "None");
    assert_eq!(headless["spec"]["publishNotReadyAddresses"], true);
    // Seeds: every pod of the StatefulSet, by its DNS name, on the cluster port.
    let env: HashMap<String, String> = pod_env(c, "gatehouse-1").into_iter().collect();
    let replicas = sts["spec"]["replicas"].as_u64().unwrap();
    let name = sts["metadata"]["name"].as_str().unwrap();
    let want: Vec<String> = (0..replicas)
        .map(|i| format!("{name}-{i}.{peers}:{}", ports["cluster"]))
        .collect();
    assert_eq!(env["GATEHOUSE_SEEDS"], want.join(","), "seeds");
    assert_eq!(env["GATEHOUSE_ADVERTISE"], format!("gatehouse-1.{peers}"));
    // The drain fits the grace period, and the readiness probe fails before clients move.
    let grace = sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap();
    let drain_timeout: u64 = env["GATEHOUSE_DRAIN_TIMEOUT_S"].parse().unwrap();
    let shutdown: u64 = cfg["shutdown_grace_s"].parse().unwrap();
    assert!(
        drain_timeout < grace && shutdown < grace,
        "grace {grace} s covers the drain"
    );
    let r = &c["readinessProbe"];
    let detect_ms =
        r["periodSeconds"].as_u64().unwrap() * r["failureThreshold"].as_u64().unwrap() * 1000;
    let delay: u64 = cfg["drain_delay_ms"].parse().unwrap();
    assert!(
        delay > detect_ms,
        "drain_delay_ms {delay} exceeds readiness detection {detect_ms} ms"
    );
    // The preStop hook is the drain command the image installs.
    let pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
        .as_array()
        .unwrap();
    assert_eq!(pre_stop, &[Value::from("/usr/local/bin/gatehouse-drain")]);
    let pdb = by_kind(&docs, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    // The NetworkPolicy covers the Gatehouse pods and admits their cluster port only from
    // Gatehouse pods; the other container ports stay reachable (a policy denies what it omits).
    let np = by_kind(&docs, "NetworkPolicy");
    let pod_labels = &sts["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&np["spec"]["podSelector"]["matchLabels"], pod_labels);
    let rules = np["spec"]["ingress"].as_array().unwrap();
    let rules_for = |port: &str| -> Vec<&Value> {
        rules
            .iter()
            .filter(|r| {
                r["ports"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["port"] == port))
            })
            .collect()
    };
    let cluster_rules = rules_for("cluster");
    assert_eq!(cluster_rules.len(), 1, "one rule for the cluster port");
    let from = cluster_rules[0]["from"].as_array().expect("a `from` list");
    assert_eq!(from.len(), 1);
    assert_eq!(&from[0]["podSelector"]["matchLabels"], pod_labels);
    assert!(from[0]["namespaceSelector"].is_null() && from[0]["ipBlock"].is_null());
    for p in c["ports"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        assert!(
            !rules_for(name).is_empty(),
            "port {name} has no ingress rule"
        );
    }
    for k in ["requests", "limits"] {
        for r in ["cpu", "memory"] {
            assert!(c["resources"][k][r].is_string(), "resources.{k}.{r}");
        }
    }

    // --- Dockerfile -----------------------------------------------------------------------
    let df = read("deploy/docker/Dockerfile");
    let image_cfg = toml_node(&read("deploy/docker/gatehouse.toml"));
    let line = |prefix: &str| -> String {
        df.lines()
            .rev()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("Dockerfile has no {prefix}"))
            .to_owned()
    };
    let expose: BTreeSet<u16> = line("EXPOSE ")[7..]
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    let cfg_ports: BTreeSet<u16> = ["listen", "admin_listen", "cluster_listen"]
        .iter()
        .map(|k| port_of(&image_cfg[*k]))
        .collect();
    assert_eq!(expose, cfg_ports, "EXPOSE = the image config's ports");
    assert_eq!(
        expose,
        ports.values().map(|p| *p as u16).collect::<BTreeSet<_>>(),
        "the image and the StatefulSet use the same ports"
    );
    assert!(
        line("ENTRYPOINT ").contains("\"/usr/local/bin/gatehouse\"]"),
        "entrypoint is the node"
    );
    let cmd: Vec<String> = serde_json::from_str(&line("CMD ")[4..]).unwrap();
    assert_eq!(cmd, ["--config", "/etc/gatehouse/gatehouse.toml"]);
    assert!(df.contains("COPY deploy/docker/gatehouse.toml /etc/gatehouse/gatehouse.toml"));
    assert!(df.contains("deploy/docker/gatehouse-drain.sh /usr/local/bin/gatehouse-drain"));
    let health = line("    CMD [");
    assert!(
        health.contains(&format!(
            "http://127.0.0.1:{}/healthz",
            port_of(&image_cfg["listen"])
        )),
        "HEALTHCHECK hits /healthz on the public port: {health}"
    );
    let user = line("USER ");
    assert!(
        !user.contains("root") && !user.contains(" 0"),
        "non-root: {user}"
    );
    // The binaries built are the workspace's [[bin]]s.
    for (bin, manifest) in [
        ("gatehouse", "node/Cargo.toml"),
        ("gatehouse-tui", "admin-tui/Cargo.toml"),
    ] {
        assert!(
            read(manifest).contains(&format!("name = \"{bin}\"")),
            "{manifest} builds {bin}"
        );
        assert!(
            df.contains(&format!("--bin {bin}")) && df.contains(&format!("/out/{bin}")),
            "Dockerfile builds {bin}"
        );
    }
    let rust = |s: &str| -> (u32, u32) {
        let mut it = s.split('.').map(|x| x.parse::<u32>().unwrap());
        (it.next().unwrap(), it.next().unwrap())
    };
    let ws_rust = read("Cargo.toml")
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let image_rust = line("ARG RUST_VERSION=")["ARG RUST_VERSION=".len()..].to_owned();
    assert!(
        rust(&image_rust) >= rust(&ws_rust),
        "image Rust {image_rust} >= workspace {ws_rust}"
    );

    // --- Compose + HAProxy ----------------------------------------------------------------
    let compose = &yaml("deploy/compose/compose.yaml").await[0];
    let services = compose["services"].as_object().unwrap();
    let hap = &services["haproxy"];
    assert!(
        hap["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v.as_str().unwrap().starts_with("../haproxy/haproxy.cfg:")),
        "Compose mounts the shared deploy/haproxy/haproxy.cfg"
    );
    let hap_cfg = read("deploy/haproxy/haproxy.cfg");
    let hap_directives: String = hap_cfg
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let referenced: BTreeSet<String> = hap_directives
        .split("${")
        .skip(1)
        .map(|s| s[..s.find('}').unwrap()].to_owned())
        .chain(
            hap_cfg
                .split("defined(")
                .skip(1)
                .map(|s| s[..s.find(')').unwrap()].to_owned()),
        )
        .collect();
    let given: BTreeSet<String> = hap["environment"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        given, referenced,
        "Compose sets exactly the variables haproxy.cfg reads"
    );
    assert!(
        hap_cfg.contains("uri /readyz"),
        "HAProxy health-checks /readyz"
    );
    let check_ms = 1000; // inter 1s (see haproxy.cfg)
    assert!(hap_cfg.contains("inter 1s") && hap_cfg.contains("fall 1"));
    assert!(
        image_cfg["drain_delay_ms"].parse::<u64>().unwrap() > check_ms + 500,
        "the image's drain_delay_ms outlasts HAProxy's detection"
    );
    let node_port = port_of(&image_cfg["listen"]);
    let admin_port = port_of(&image_cfg["admin_listen"]);
    let cluster_port = port_of(&image_cfg["cluster_listen"]);
    for (var, node) in [
        ("GH_NODE_A", "node-a"),
        ("GH_NODE_B", "node-b"),
        ("GH_NODE_C", "node-c"),
    ] {
        assert_eq!(
            hap["environment"][var],
            format!("{node}:{node_port}"),
            "{var}"
        );
        assert!(
            hap_cfg.contains(&format!("server {node} \"${{{var}}}\"")),
            "haproxy.cfg server {node}"
        );
        let env = &services[node]["environment"];
        assert_eq!(env["GATEHOUSE_NAME"], node);
        assert_eq!(env["GATEHOUSE_ADVERTISE"], node);
        assert_eq!(
            env["GATEHOUSE_SEEDS"],
            format!("node-a:{cluster_port},node-b:{cluster_port},node-c:{cluster_port}")
        );
        assert_eq!(
            port_of(env["GATEHOUSE_LISTEN"].as_str().unwrap()),
            node_port
        );
        assert_eq!(
            port_of(env["GATEHOUSE_ADMIN_LISTEN"].as_str().unwrap()),
            admin_port
        );
        let published: Vec<&str> = services[node]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(
            published.len(),
            1,
            "{node}: only the admin port is published"
        );
        assert!(
            published[0].starts_with("127.0.0.1:")
                && published[0].ends_with(&format!(":{admin_port}")),
            "{node}: admin port on the host's loopback: {published:?}"
        );
    }

    // --- systemd ----------------------------------------------------------------------------
    let unit = read("deploy/systemd/gatehouse.service");
    assert!(
        unit.contains("ExecStart=/usr/local/bin/gatehouse --config /etc/gatehouse/gatehouse.toml")
    );
    assert!(unit.contains("ExecStop=-/usr/local/bin/gatehouse-drain"));
    assert!(unit.contains("LimitNOFILE="));
    let stop: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        stop > 100 + 30,
        "TimeoutStopSec covers gatehouse-drain's 100 s and SIGTERM's 30 s"
    );
    let (_, help) = run(&binary(), &["--help"], &[]).await;
    for flag in [
        "--config",
        "--exit-when-drained",
        "--name",
        "--listen",
        "--admin-listen",
        "--seeds",
        "--advertise",
    ] {
        assert!(help.contains(flag), "gatehouse --help lists {flag}");
    }

    // --- The drain command and the probe paths, against a real node ---------------------
    let dir = TempDir::new();
    let token = dir.0.join("admin-token");
    std::fs::write(&token, "deploy-test-admin-token\n").unwrap();
    let node = Node::builder()
        .toml("[node]\nname = \"drain-me\"\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ncluster_listen = \"127.0.0.1:0\"\nshutdown_grace_s = 5")
        .env("GATEHOUSE_ADMIN_TOKEN_FILE", token.to_str().unwrap())
        .start();
    for path in ["/healthz", "/readyz"] {
        let r = reqwest::get(node.http(path)).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let (code, out) = run(
        Path::new("sh"),
        &["deploy/docker/gatehouse-drain.sh"],
        &[
            ("GATEHOUSE_NAME", "drain-me".into()),
            ("GATEHOUSE_ADMIN_TOKEN_FILE", token.display().to_string()),
            (
                "GATEHOUSE_DRAIN_ADMIN_URL",
                format!("http://{}", node.admin),
            ),
            (
                "GATEHOUSE_DRAIN_PUBLIC_URL",
                format!("http://{}", node.public),
            ),
            ("GATEHOUSE_DRAIN_TIMEOUT_S", "20".into()),
        ],
    )
    .await;
    assert_eq!(code, 0, "gatehouse-drain:\n{out}");
    assert!(out.contains("drain-me drained"), "{out}");
    let r = reqwest::get(node.http("/readyz")).await.unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["state"], "drained");
    // A wrong token is refused loudly, not ignored.
    std::fs::write(&token, "wrong").unwrap();
    let (code, out) = run(
        Path::new("sh"),
        &["deploy/docker/gatehouse-drain.sh"],
        &[
            ("GATEHOUSE_NAME", "drain-me".into()),
            ("GATEHOUSE_ADMIN_TOKEN_FILE", token.display().to_string()),
            (
                "GATEHOUSE_DRAIN_ADMIN_URL",
                format!("http://{}", node.admin),
            ),
        ],
    )
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("failed"), "{out}");
}

#[tokio::test]
async fn deploy_rolling_upgrade_script_rejects_bad_input_clearly() {
    let script = "deploy/rolling-upgrade.sh";
    let dir = TempDir::new();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![], "expected RUN_DIR and NEW_BINARY"),
        (
            vec!["/no/such/dir".into(), binary().display().to_string()],
            "RUN_DIR: no such directory",
        ),
        (
            vec![dir.0.display().to_string(), "/no/such/binary".into()],
            "NEW_BINARY: not an executable",
        ),
        (
            vec![dir.0.display().to_string(), binary().display().to_string()],
            "cookie is missing",
        ),
    ];
    for (args, want) in cases {
        let args: Vec<&str> = std::iter::once(script)
            .chain(args.iter().map(String::as_str))
            .collect();
        let (code, out) = run(Path::new("bash"), &args, &[]).await;
        assert_eq!(code, 2, "{args:?}:\n{out}");
        assert!(out.contains(want), "{args:?} should say `{want}`:\n{out}");
    }
    std::fs::write(dir.0.join("cookie"), "x").unwrap();
    let (code, out) = run(
        Path::new("bash"),
        &[script, dir.0.to_str().unwrap(), binary().to_str().unwrap()],
        &[("DRAIN_TIMEOUT_S", "soon".into())],
    )
    .await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("DRAIN_TIMEOUT_S"), "{out}");
    let (code, out) = run(
        Path::new("bash"),
        &[script, dir.0.to_str().unwrap(), binary().to_str().unwrap()],
        &[],
    )
    .await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no node pid files"), "{out}");
}
