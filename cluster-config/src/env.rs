//! The environment layer: the contract's `GATEHOUSE_*` variables (each secret also as
//! `…_FILE`), then the command-line flags, applied over the raw file values.
//!
//! The process environment is read only through [`Env`], so tests pass a [`MapEnv`].

use crate::raw::RawConfig;
use crate::{ConfigError, Overrides};
use std::collections::HashMap;
use std::path::PathBuf;

/// Every environment variable the loader reads (secrets also read `<NAME>_FILE`).
pub const ENV_VARS: &[&str] = &[
    "GATEHOUSE_NAME",
    "GATEHOUSE_LISTEN",
    "GATEHOUSE_ADMIN_LISTEN",
    "GATEHOUSE_CLUSTER_LISTEN",
    "GATEHOUSE_ADVERTISE",
    "GATEHOUSE_SEEDS",
    "GATEHOUSE_COOKIE",
    "GATEHOUSE_COOKIE_FILE",
    "GATEHOUSE_ADMIN_TOKEN",
    "GATEHOUSE_ADMIN_TOKEN_FILE",
    "GATEHOUSE_API_KEY",
    "GATEHOUSE_API_KEY_FILE",
    "GATEHOUSE_JWT_SECRET",
    "GATEHOUSE_JWT_SECRET_FILE",
    "GATEHOUSE_AUTH_REQUIRED",
    "GATEHOUSE_ALLOWED_ORIGINS",
    "GATEHOUSE_PROXY_PROTOCOL",
    "GATEHOUSE_TRUSTED_PROXIES",
    "GATEHOUSE_LOG",
    "GATEHOUSE_LOG_FORMAT",
    "GATEHOUSE_WEBHOOK_URL",
    "GATEHOUSE_WEBHOOK_SECRET",
    "GATEHOUSE_WEBHOOK_SECRET_FILE",
];

/// A source of environment variables.
pub trait Env {
    /// Returns the variable's value, if set.
    fn get(&self, key: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemEnv;

impl Env for SystemEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

/// A fixed map, for tests.
#[derive(Debug, Default, Clone)]
pub struct MapEnv(pub HashMap<String, String>);

impl Env for MapEnv {
    fn get(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
}

fn set_string(target: &mut String, env: &dyn Env, key: &str) {
    if let Some(v) = env.get(key) {
        *target = v;
    }
}

/// A secret given as `NAME` or `NAME_FILE` (the file wins if both are set). Either one beats
/// the config file's value and its `*_file` path, which `file_field` is cleared of.
fn set_secret(
    target: &mut String,
    file_field: &mut String,
    env: &dyn Env,
    key: &str,
) -> Result<(), ConfigError> {
    let file_key = format!("{key}_FILE");
    if let Some(path) = env.get(&file_key) {
        *target = read_secret_file(&path)?;
        file_field.clear();
    } else if let Some(v) = env.get(key) {
        *target = v;
        file_field.clear();
    }
    Ok(())
}

/// Reads a secret file, trimming one trailing newline.
pub fn read_secret_file(path: &str) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: PathBuf::from(path),
        source,
    })?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_bool(key: &'static str, field: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(ConfigError::Invalid {
            origin: format!("environment `{key}`"),
            field,
            reason: format!("`{other}` is not a boolean (true/false)"),
        }),
    }
}

/// Applies the environment, then the flags, over `raw`.
pub fn apply(
    mut raw: RawConfig,
    env: &dyn Env,
    flags: &Overrides,
) -> Result<RawConfig, ConfigError> {
    set_string(&mut raw.node.name, env, "GATEHOUSE_NAME");
    set_string(&mut raw.node.listen, env, "GATEHOUSE_LISTEN");
    set_string(&mut raw.node.admin_listen, env, "GATEHOUSE_ADMIN_LISTEN");
    set_string(
        &mut raw.node.cluster_listen,
        env,
        "GATEHOUSE_CLUSTER_LISTEN",
    );
    set_string(&mut raw.node.advertise, env, "GATEHOUSE_ADVERTISE");
    if let Some(v) = env.get("GATEHOUSE_SEEDS") {
        raw.node.seeds = split_list(&v);
    }
    let n = &mut raw.node;
    set_secret(&mut n.cookie, &mut n.cookie_file, env, "GATEHOUSE_COOKIE")?;
    let a = &mut raw.admin;
    set_secret(
        &mut a.token,
        &mut a.token_file,
        env,
        "GATEHOUSE_ADMIN_TOKEN",
    )?;
    let k = &mut raw.api;
    set_secret(&mut k.key, &mut k.key_file, env, "GATEHOUSE_API_KEY")?;
    let j = &mut raw.auth;
    set_secret(
        &mut j.jwt_secret,
        &mut j.jwt_secret_file,
        env,
        "GATEHOUSE_JWT_SECRET",
    )?;
    if let Some(v) = env.get("GATEHOUSE_AUTH_REQUIRED") {
        raw.auth.required = parse_bool("GATEHOUSE_AUTH_REQUIRED", "auth.required", &v)?;
    }
    if let Some(v) = env.get("GATEHOUSE_PROXY_PROTOCOL") {
        raw.node.proxy_protocol =
            parse_bool("GATEHOUSE_PROXY_PROTOCOL", "node.proxy_protocol", &v)?;
    }
    if let Some(v) = env.get("GATEHOUSE_TRUSTED_PROXIES") {
        raw.node.trusted_proxies = split_list(&v);
    }
    if let Some(v) = env.get("GATEHOUSE_ALLOWED_ORIGINS") {
        raw.auth.allowed_origins = split_list(&v);
    }
    set_string(&mut raw.log.level, env, "GATEHOUSE_LOG");
    set_string(&mut raw.log.format, env, "GATEHOUSE_LOG_FORMAT");
    set_string(&mut raw.webhook.url, env, "GATEHOUSE_WEBHOOK_URL");
    let w = &mut raw.webhook;
    set_secret(
        &mut w.secret,
        &mut w.secret_file,
        env,
        "GATEHOUSE_WEBHOOK_SECRET",
    )?;

    if let Some(v) = &flags.name {
        raw.node.name.clone_from(v);
    }
    if let Some(v) = &flags.listen {
        raw.node.listen.clone_from(v);
    }
    if let Some(v) = &flags.admin_listen {
        raw.node.admin_listen.clone_from(v);
    }
    if let Some(v) = &flags.cluster_listen {
        raw.node.cluster_listen.clone_from(v);
    }
    if let Some(v) = &flags.advertise {
        raw.node.advertise.clone_from(v);
    }
    if let Some(v) = &flags.seeds {
        raw.node.seeds = split_list(v);
    }
    if flags.exit_when_drained {
        raw.node.exit_when_drained = true;
    }
    if let Some(v) = &flags.log_format {
        raw.log.format.clone_from(v);
    }
    Ok(raw)
}
