//! JWTs for tests: valid HS256/RS256 tokens and the classic forgeries (alg none, wrong key,
//! expired, wrong audience).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

/// The HS256 secret the auth tests configure.
pub const SECRET: &str = "test-secret-0123456789abcdef-0123456789";

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An HS256 token for `claims`.
pub fn hs256(claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// An HS256 token for `sub` valid for `ttl_s`.
pub fn user(sub: &str, ttl_s: i64) -> String {
    hs256(&json!({ "sub": sub, "exp": now() + ttl_s }))
}

/// An RS256 token signed with the test private key.
pub fn rs256(claims: &Value) -> String {
    let pem = include_bytes!("../fixtures/rsa_private.pem");
    encode(
        &Header::new(Algorithm::RS256),
        claims,
        &EncodingKey::from_rsa_pem(pem).unwrap(),
    )
    .unwrap()
}

/// An unsigned token (`alg: none`).
pub fn alg_none(claims: &Value) -> String {
    let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let c = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{h}.{c}.")
}

/// Path of the RS256 public key fixture.
pub fn rsa_public_key_path() -> String {
    format!("{}/fixtures/rsa_public.pem", env!("CARGO_MANIFEST_DIR"))
}
