//! Config loading: examples parse, invalid files fail naming the field, layers apply in order
//! (defaults < file < environment < flags), secrets come from `*_FILE` and never print.

#![allow(clippy::unwrap_used)]

use cluster_config::{load, render, ConfigError, MapEnv, Overrides};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}

fn env(pairs: &[(&str, &str)]) -> MapEnv {
    MapEnv(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<HashMap<_, _>>(),
    )
}

#[test]
fn every_example_config_is_valid() {
    let mut files = vec![root().join("examples/single-node.toml")];
    for n in ["a", "b", "c"] {
        files.push(root().join(format!("examples/three-node/node-{n}.toml")));
    }
    for f in files {
        let c = load(Some(&f), &env(&[]), &Overrides::default())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(!c.node.name.is_empty());
    }
}

#[test]
fn no_file_gives_the_documented_defaults() {
    let c = load(None, &env(&[]), &Overrides::default()).unwrap();
    assert_eq!(c.node.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(c.node.admin_listen.to_string(), "127.0.0.1:9100");
    assert_eq!(c.node.cluster_listen.to_string(), "127.0.0.1:7100");
    assert!(!c.auth.required);
    assert!(c.node.cookie_generated);
    assert_eq!(c.limits.max_message_bytes, 65_536);
    assert_eq!(c.limits.max_rooms, 128);
    assert_eq!((c.limits.msgs_per_sec, c.limits.burst), (100, 200));
    assert_eq!(c.limits.heartbeat.as_millis(), 15_000);
    assert_eq!(c.rooms.history_size, 1000);
    assert_eq!(c.node.shutdown_grace.as_secs(), 30);
    assert_eq!(c.node.cluster_max_handshakes, 256);
}

#[test]
fn invalid_files_name_the_file_and_field() {
    let cases = [
        ("bad-listen.toml", "node.listen"),
        ("burst-below-rate.toml", "limits.burst"),
        ("unknown-field.toml", "nmae"),
        ("alg-none.toml", "auth.algorithm"),
        ("public-admin-without-token.toml", "node.admin_listen"),
        ("required-without-secret.toml", "auth.jwt_secret"),
        ("leeway-too-large.toml", "auth.leeway_s"),
        ("webhook-without-secret.toml", "webhook.secret"),
        ("wrong-type.toml", "max_rooms"),
        (
            "cluster-max-handshakes-zero.toml",
            "node.cluster_max_handshakes",
        ),
        ("snapshot-too-large.toml", "rooms.max_snapshot_bytes"),
    ];
    for (file, field) in cases {
        let path = root().join("tests/fixtures/invalid").join(file);
        let err = load(Some(&path), &env(&[]), &Overrides::default())
            .expect_err(file)
            .to_string();
        assert!(err.contains(field), "{file}: `{err}` should name `{field}`");
        assert!(err.contains(file), "{file}: `{err}` should name the file");
    }
}

#[test]
fn flags_beat_environment_beat_file() {
    let file = root().join("examples/three-node/node-b.toml");
    let e = env(&[
        ("GATEHOUSE_NAME", "from-env"),
        ("GATEHOUSE_LISTEN", "127.0.0.1:1111"),
        ("GATEHOUSE_SEEDS", "10.0.0.1:7100, 10.0.0.2:7100"),
        ("GATEHOUSE_AUTH_REQUIRED", "true"),
        ("GATEHOUSE_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        (
            "GATEHOUSE_ALLOWED_ORIGINS",
            "https://a.example,https://b.example",
        ),
    ]);
    let flags = Overrides {
        listen: Some("127.0.0.1:2222".into()),
        ..Overrides::default()
    };
    let c = load(Some(&file), &e, &flags).unwrap();
    assert_eq!(c.node.name, "from-env");
    assert_eq!(c.node.listen.to_string(), "127.0.0.1:2222");
    assert_eq!(c.node.admin_listen.to_string(), "127.0.0.1:9102");
    assert_eq!(c.node.seeds, vec!["10.0.0.1:7100", "10.0.0.2:7100"]);
    assert!(c.auth.required);
    assert_eq!(c.auth.allowed_origins.len(), 2);
}

#[test]
fn secrets_come_from_files_and_are_redacted() {
    let dir = std::env::temp_dir().join(format!("gh-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("admin-token");
    std::fs::write(&token, "s3cret-admin-token\n").unwrap();
    let e = env(&[
        ("GATEHOUSE_ADMIN_TOKEN_FILE", token.to_str().unwrap()),
        ("GATEHOUSE_API_KEY", "api-key-value"),
        ("GATEHOUSE_COOKIE", "cookie-value"),
    ]);
    let c = load(None, &e, &Overrides::default()).unwrap();
    assert_eq!(
        c.admin.token.as_ref().unwrap().expose(),
        "s3cret-admin-token"
    );
    let shown = format!("{c:?}\n{}", render::effective_toml(&c));
    for secret in ["s3cret-admin-token", "api-key-value", "cookie-value"] {
        assert!(!shown.contains(secret), "`{secret}` leaked");
    }
    assert!(shown.contains("<redacted>"));
    let missing = env(&[("GATEHOUSE_API_KEY_FILE", "/nonexistent/key")]);
    let err = load(None, &missing, &Overrides::default()).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains("/nonexistent/key"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_environment_secret_beats_the_files_secret_path() {
    let dir = std::env::temp_dir().join(format!("gh-cfg-prec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let from_file = dir.join("token");
    std::fs::write(&from_file, "from-config-file").unwrap();
    let cfg = dir.join("node.toml");
    std::fs::write(
        &cfg,
        format!("[admin]\ntoken_file = \"{}\"\n", from_file.display()),
    )
    .unwrap();
    let c = load(Some(&cfg), &env(&[]), &Overrides::default()).unwrap();
    assert_eq!(c.admin.token.as_ref().unwrap().expose(), "from-config-file");
    let e = env(&[("GATEHOUSE_ADMIN_TOKEN", "from-env")]);
    let c = load(Some(&cfg), &e, &Overrides::default()).unwrap();
    assert_eq!(c.admin.token.as_ref().unwrap().expose(), "from-env");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_bad_environment_value_names_the_variable() {
    let e = env(&[("GATEHOUSE_AUTH_REQUIRED", "maybe")]);
    let err = load(None, &e, &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("GATEHOUSE_AUTH_REQUIRED"), "{err}");
    let e = env(&[("GATEHOUSE_LISTEN", "nowhere")]);
    let err = load(None, &e, &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("node.listen"), "{err}");
}
