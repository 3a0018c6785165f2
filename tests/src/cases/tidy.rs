//! Repository hygiene: every Rust source file starts with a `//!` module doc that says what it
//! owns (ARCHITECTURE.md's house rule).

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        if p.is_dir() {
            if !matches!(
                name.as_ref(),
                "target" | ".git" | ".tools" | "reports" | "corpus" | "artifacts"
            ) {
                rust_files(&p, out);
            }
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() > 50, "found only {} files", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|f| {
            !std::fs::read_to_string(f)
                .unwrap_or_default()
                .starts_with("//!")
        })
        .map(|f| f.strip_prefix(&root).unwrap_or(f).display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` module doc: {missing:?}"
    );
}

/// The node's layers (ARCHITECTURE.md, "Layers"; `node/src/lib.rs`): each top-level module,
/// its layer, and for the services of layer 4 which of the three it belongs to. A module may
/// import (`crate::x`) only modules of a lower layer, or of its own layer and group.
const LAYERS: &[(&str, u8, &str)] = &[
    ("ids", 0, ""),
    ("groups", 0, ""),
    ("fds", 0, ""),
    ("memory", 0, ""),
    ("metrics", 0, ""),
    ("telemetry", 0, ""),
    ("webhook", 0, ""),
    ("events", 0, ""),
    ("lifecycle", 0, ""),
    ("peer_queue", 0, ""),
    ("admission", 0, ""),
    ("auth", 0, ""),
    ("session_token", 0, ""),
    ("delivery", 0, ""),
    ("websocket", 0, ""),
    ("wire", 1, ""),
    ("placement", 2, ""),
    ("room_access", 3, ""),
    ("outbound", 3, ""),
    ("directory", 4, "rooms"),
    ("relay", 4, "rooms"),
    ("room", 4, "rooms"),
    ("room_host", 4, "rooms"),
    ("hub", 4, "registry"),
    ("rate_limit", 4, "registry"),
    ("cluster", 4, "membership"),
    ("context", 5, ""),
    ("connection", 5, ""),
    ("clients", 5, ""),
    ("drain", 5, ""),
    ("stats", 5, ""),
    ("rebalance", 5, ""),
    ("peer_requests", 5, ""),
    ("http", 6, ""),
    ("server", 7, ""),
];

/// Every `crate::<module>` a source file names outside comments.
fn crate_paths(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in src.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // `$crate::` in macros names the same crate.
            if !name.is_empty() {
                out.push(name);
            }
            rest = after;
        }
    }
    out
}

/// The top-level module a source file (relative to `node/src`) belongs to.
fn top_module(rel: &std::path::Path) -> String {
    rel.components()
        .next()
        .map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned()
        })
        .unwrap_or_default()
}

/// The imports of the node that break the layer table, as "file: a -> b (why)".
fn layer_violations(src_dir: &std::path::Path) -> Vec<String> {
    let layer = |m: &str| {
        LAYERS
            .iter()
            .find(|(n, ..)| *n == m)
            .map(|&(_, l, g)| (l, g))
    };
    let mut files = Vec::new();
    rust_files(src_dir, &mut files);
    let mut bad = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(src_dir).unwrap_or(f);
        let top = top_module(rel);
        if matches!(top.as_str(), "lib" | "main") {
            continue;
        }
        let Some((from_layer, from_group)) = layer(&top) else {
            bad.push(format!(
                "{}: module `{top}` is not in the layer table",
                rel.display()
            ));
            continue;
        };
        let src = std::fs::read_to_string(f).unwrap_or_default();
        for to in crate_paths(&src) {
            if to == top {
                continue;
            }
            let Some((to_layer, to_group)) = layer(&to) else {
                bad.push(format!(
                    "{}: `crate::{to}` is not in the layer table",
                    rel.display()
                ));
                continue;
            };
            let why = if to_layer > from_layer {
                Some("imports a higher layer")
            } else if to_layer == from_layer && from_group != to_group {
                Some("imports another service of its layer")
            } else {
                None
            };
            if let Some(why) = why {
                bad.push(format!(
                    "{}: {top} (layer {from_layer}) -> {to} (layer {to_layer}): {why}",
                    rel.display()
                ));
            }
        }
    }
    bad.sort();
    bad.dedup();
    bad
}

/// Same-layer imports must not form a cycle either: the top-level import graph is acyclic.
fn import_cycle(src_dir: &std::path::Path) -> Option<Vec<String>> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut files = Vec::new();
    rust_files(src_dir, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(src_dir).unwrap_or(f);
        let top = top_module(rel);
        let src = std::fs::read_to_string(f).unwrap_or_default();
        let e = edges.entry(top.clone()).or_default();
        for to in crate_paths(&src) {
            if to != top {
                e.insert(to);
            }
        }
    }
    // Depth-first search with colours; returns the first cycle found.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_owned(), 1);
        path.push(n.to_owned());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m.as_str()) {
                Some(1) => {
                    let start = path.iter().position(|p| p == m).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(m, edges, state, path) {
                        return Some(c);
                    }
                }
            }
        }
        path.pop();
        state.insert(n.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if !state.contains_key(n) {
            if let Some(c) = visit(n, &edges, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn node_modules_keep_their_layers() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("node/src");
    let bad = layer_violations(&src);
    assert!(
        bad.is_empty(),
        "imports that break the layer table (ARCHITECTURE.md, \"Layers\"):\n{}",
        bad.join("\n")
    );
    if let Some(cycle) = import_cycle(&src) {
        panic!(
            "node modules import each other in a cycle: {}",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn the_layer_check_sees_a_wrong_import() {
    // A membership module that calls up into the rooms, and a leaf that imports the wiring:
    // both must be reported (the check above is not vacuous).
    let dir = std::env::temp_dir().join(format!("gatehouse-tidy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("cluster")).unwrap();
    std::fs::write(
        dir.join("cluster/manager.rs"),
        "//! x\nuse crate::room_host::RoomHostActor; // rooms\nuse crate::wire::endpoint::Heartbeat;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("ids.rs"),
        "//! x\n// crate::server in a comment is fine\nfn f() { crate::server::run(); }\n",
    )
    .unwrap();
    let bad = layer_violations(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(
        bad[0].contains("cluster (layer 4) -> room_host (layer 4)")
            && bad[0].contains("another service"),
        "{bad:?}"
    );
    assert!(
        bad[1].contains("ids (layer 0) -> server (layer 7)"),
        "{bad:?}"
    );
}
