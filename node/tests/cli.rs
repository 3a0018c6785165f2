//! The command line: `check-config` validates and redacts; a bad config stops the start with a
//! message naming the file and the field.
//!
//! These cases live in the node package (not in `tests/`) on purpose: a package with integration
//! tests gets its binaries built by `cargo test`/`cargo nextest run`, so the `gatehouse` binary the
//! end-to-end harness starts is always built with the suite, before any test runs.

#![allow(clippy::unwrap_used)]

use integration_tests::node::TempDir;
use std::process::Command;

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_gatehouse")
}

fn example(p: &str) -> String {
    format!(
        "{}/../cluster-config/examples/{p}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn check_config_accepts_the_examples_and_redacts_secrets() {
    for f in ["single-node.toml", "three-node/node-a.toml"] {
        let out = Command::new(binary())
            .args(["check-config", &example(f)])
            .env("GATEHOUSE_API_KEY", "super-secret-api-key")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("[node]") && text.contains("valid"), "{text}");
        assert!(!text.contains("super-secret-api-key"));
        assert!(text.contains("<redacted>"));
    }
}

#[test]
fn a_bad_config_is_refused_naming_file_and_field() {
    let dir = TempDir::new();
    let f = dir.0.join("bad.toml");
    std::fs::write(&f, "[limits]\nmsgs_per_sec = 50\nburst = 5\n").unwrap();
    let out = Command::new(binary())
        .args(["check-config", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("limits.burst") && err.contains("bad.toml"),
        "{err}"
    );
    let out = Command::new(binary())
        .args(["--config", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("limits.burst"));
}
