//! Repository hygiene for the admin API: its shapes are written once, in `protocol::admin`
//! (issue 18, item 2). The console (`admin-tui/src`) declares no serde type and reads no
//! untyped JSON, so every answer it reads is a `protocol::admin` type; the node's files that
//! serve the admin API (those that name `/admin/v1`) write no JSON by hand (`json!`).
//!
//! Reads source files only; a second test shows the check sees a console that declares its own
//! answer type.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_owned()
}

/// The source without its comments' lines (a doc may name what the code may not do).
fn code_lines(src: &str) -> impl Iterator<Item = (usize, &str)> {
    src.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l))
}

/// What in `src` declares or reads an API shape of its own: a serde derive or impl, an untyped
/// JSON value, a `json!`.
fn own_shapes(src: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut in_derive = false;
    for (n, line) in code_lines(src) {
        let t = line.trim();
        if t.starts_with("#[derive(") {
            in_derive = true;
        }
        let serde_name = t.contains("Serialize") || t.contains("Deserialize");
        if in_derive && serde_name {
            found.push((n, format!("a serde derive: {t}")));
        }
        if in_derive && t.contains(")]") {
            in_derive = false;
        }
        if t.starts_with("impl") && serde_name && t.contains(" for ") {
            found.push((n, format!("a serde impl: {t}")));
        }
        if t.contains("serde_json::Value") || t.contains("json!") {
            found.push((n, format!("untyped JSON: {t}")));
        }
    }
    found
}

/// Every place under `dir` that declares or reads an admin shape of its own.
fn console_violations(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(dir, &mut files);
    let mut out = Vec::new();
    for f in files {
        let src = std::fs::read_to_string(&f).unwrap_or_default();
        for (n, what) in own_shapes(&src) {
            out.push(format!("{}:{n}: {what}", f.display()));
        }
    }
    out
}

#[test]
fn the_console_reads_the_admin_api_only_through_protocol_admin() {
    let dir = root().join("admin-tui/src");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    assert!(files.len() > 10, "found only {} files", files.len());
    let found = console_violations(&dir);
    assert!(
        found.is_empty(),
        "the console declares admin API shapes of its own; use protocol::admin's types:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_console_check_sees_an_answer_type_of_its_own() {
    let dir = std::env::temp_dir().join(format!("tidy-admin-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("views")).expect("a scratch directory");
    std::fs::write(
        dir.join("views/rooms.rs"),
        "//! Rooms.\n\n/// A room, as the console reads it.\n#[derive(Debug, Clone,\n    serde::Deserialize)]\npub struct RoomInfo {\n    pub name: String,\n}\n",
    )
    .expect("a scratch file");
    std::fs::write(
        dir.join("client.rs"),
        "//! Never `serde_json::Value` (a comment may say so).\nfn f(t: &str) -> Option<String> {\n    let v: serde_json::Value = serde_json::from_str(t).ok()?;\n    Some(v.to_string())\n}\n",
    )
    .expect("a scratch file");
    let found = console_violations(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found
            .iter()
            .any(|f| f.ends_with("rooms.rs:5: a serde derive: serde::Deserialize)]")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|f| f.contains("client.rs:3: untyped JSON")),
        "{found:#?}"
    );
}

#[test]
fn the_node_writes_no_admin_answer_by_hand() {
    let mut files = Vec::new();
    rust_files(&root().join("node/src"), &mut files);
    let mut admin_files = 0;
    let mut found = Vec::new();
    for f in files {
        let src = std::fs::read_to_string(&f).unwrap_or_default();
        if !src.contains("/admin/v1") {
            continue;
        }
        admin_files += 1;
        for (n, line) in code_lines(&src) {
            if line.contains("json!") {
                found.push(format!("{}:{n}: {}", f.display(), line.trim()));
            }
        }
    }
    assert!(admin_files >= 3, "found only {admin_files} admin files");
    assert!(
        found.is_empty(),
        "admin answers are written by hand; use protocol::admin's types:\n{}",
        found.join("\n")
    );
}
