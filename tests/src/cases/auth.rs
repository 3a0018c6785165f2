//! Authentication and admission before the upgrade: JWT (HS256, RS256) from query, header and
//! subprotocol; forged, expired, not-yet-valid, wrong-audience tokens refused with 401; the
//! `rooms` claim; expiry mid-session (4001); Origin allow-list (403); connection caps (429).

use crate::client::Ended;
use crate::tokens::{self, now};
use crate::{Client, Node};
use serde_json::json;
use std::time::Duration;

fn auth_node() -> Node {
    Node::builder()
        .env("GATEHOUSE_JWT_SECRET", tokens::SECRET)
        .toml("[auth]\nrequired = true\naudience = [\"ws-gateway\"]\nissuer = [\"https://issuer.example\"]")
        .start()
}

fn claims(sub: &str) -> serde_json::Value {
    json!({"sub": sub, "exp": now() + 600, "aud": "ws-gateway", "iss": "https://issuer.example"})
}

#[tokio::test]
async fn valid_tokens_are_accepted_from_query_header_and_subprotocol() {
    let node = auth_node();
    let t = tokens::hs256(&claims("u-42"));
    let c = Client::connect(&node.ws_url(&format!("token={t}"))).await;
    assert_eq!(c.welcome["user"], "u-42");
    let bearer = format!("Bearer {t}");
    let c = Client::connect_with(&node.ws_url(""), &[("Authorization", &bearer)])
        .await
        .unwrap();
    assert_eq!(c.welcome["user"], "u-42");
    let proto = format!("gatehouse.v1, token.{t}");
    let c = Client::connect_with(&node.ws_url(""), &[("Sec-WebSocket-Protocol", &proto)])
        .await
        .unwrap();
    assert_eq!(c.welcome["user"], "u-42");
}

#[tokio::test]
async fn bad_tokens_are_refused_with_401_before_the_upgrade() {
    let node = auth_node();
    let mut wrong_key = claims("u");
    wrong_key["x"] = json!(1);
    let forged = {
        let t = tokens::hs256(&wrong_key);
        let mut parts: Vec<&str> = t.split('.').collect();
        parts[2] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        parts.join(".")
    };
    let cases = vec![
        ("missing", String::new()),
        ("garbage", "not.a.jwt".to_owned()),
        ("bad signature", forged),
        ("alg none", tokens::alg_none(&claims("u"))),
        (
            "expired",
            tokens::hs256(
                &json!({"sub":"u","exp":now()-30,"aud":"ws-gateway","iss":"https://issuer.example"}),
            ),
        ),
        (
            "not yet valid",
            tokens::hs256(
                &json!({"sub":"u","exp":now()+600,"nbf":now()+3600,"aud":"ws-gateway","iss":"https://issuer.example"}),
            ),
        ),
        (
            "wrong audience",
            tokens::hs256(
                &json!({"sub":"u","exp":now()+600,"aud":"other","iss":"https://issuer.example"}),
            ),
        ),
        (
            "no audience",
            tokens::hs256(&json!({"sub":"u","exp":now()+600,"iss":"https://issuer.example"})),
        ),
        (
            "wrong issuer",
            tokens::hs256(
                &json!({"sub":"u","exp":now()+600,"aud":"ws-gateway","iss":"https://evil.example"}),
            ),
        ),
        ("rs256 to an hs256 node", tokens::rs256(&claims("u"))),
    ];
    for (what, t) in cases {
        let url = if t.is_empty() {
            node.ws_url("")
        } else {
            node.ws_url(&format!("token={t}"))
        };
        let status = Client::connect_with(&url, &[]).await.err();
        assert_eq!(status.map(|s| s.as_u16()), Some(401), "{what}");
    }
    assert!(node.metric("gatehouse_rejected_upgrades_total").await >= 10.0);
}

#[tokio::test]
async fn rs256_tokens_verify_with_the_public_key() {
    let node = Node::builder()
        .toml(&format!(
            "[auth]\nrequired = true\nalgorithm = \"RS256\"\njwt_public_key_file = \"{}\"",
            tokens::rsa_public_key_path()
        ))
        .start();
    let t = tokens::rs256(&json!({"sub":"rsa-user","exp":now()+600}));
    let c = Client::connect(&node.ws_url(&format!("token={t}"))).await;
    assert_eq!(c.welcome["user"], "rsa-user");
    // An HS256 token signed with the public key's bytes (key confusion) is refused.
    let pem = std::fs::read(tokens::rsa_public_key_path()).unwrap();
    let confused = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub":"x","exp":now()+600}),
        &jsonwebtoken::EncodingKey::from_secret(&pem),
    )
    .unwrap();
    let status = Client::connect_with(&node.ws_url(&format!("token={confused}")), &[])
        .await
        .err();
    assert_eq!(status.map(|s| s.as_u16()), Some(401));
}

#[tokio::test]
async fn the_rooms_claim_limits_joins_with_glob_patterns() {
    let node = auth_node();
    let mut c = claims("u-rooms");
    c["rooms"] = json!(["chat:*", "user:u-rooms"]);
    let mut cl = Client::connect(&node.ws_url(&format!("token={}", tokens::hs256(&c)))).await;
    cl.join("chat:lobby").await;
    cl.join("user:u-rooms").await;
    let (r, _) = cl
        .request(json!({"op":"join","room":"admin:secrets"}), 3)
        .await;
    assert_eq!(r["error"]["code"], "forbidden");
}

#[tokio::test]
async fn a_token_expiring_mid_session_closes_with_4001() {
    let node = Node::builder()
        .env("GATEHOUSE_JWT_SECRET", tokens::SECRET)
        .toml("[auth]\nrequired = true\nleeway_s = 0")
        .start();
    let t = tokens::hs256(&json!({"sub":"short","exp": now() + 2}));
    let mut c = Client::connect(&node.ws_url(&format!("token={t}"))).await;
    let (end, frames) = c.expect_close(Duration::from_secs(6)).await;
    assert!(matches!(end, Ended::Closed(4001, _)), "{end:?}");
    let d = frames.last().unwrap();
    assert_eq!(d["op"], "disconnect");
    assert_eq!(d["code"], 4001);
}

#[tokio::test]
async fn origins_outside_the_allow_list_get_403_and_no_origin_is_allowed() {
    let node = Node::builder()
        .toml("[auth]\nallowed_origins = [\"https://app.example.com\"]")
        .start();
    let ok = Client::connect_with(&node.ws_url(""), &[("Origin", "https://app.example.com")]).await;
    assert!(ok.is_ok());
    let bad = Client::connect_with(&node.ws_url(""), &[("Origin", "https://evil.example")]).await;
    assert_eq!(bad.err().map(|s| s.as_u16()), Some(403));
    assert!(Client::connect_with(&node.ws_url(""), &[]).await.is_ok());
}

#[tokio::test]
async fn connection_caps_per_ip_and_per_user_answer_429() {
    let node = Node::builder()
        .env("GATEHOUSE_JWT_SECRET", tokens::SECRET)
        .toml("[auth]\nmax_connections_per_ip = 3\nmax_connections_per_user = 2")
        .start();
    let t = tokens::user("capped", 600);
    let _a = Client::connect(&node.ws_url(&format!("token={t}"))).await;
    let _b = Client::connect(&node.ws_url(&format!("token={t}"))).await;
    let third = Client::connect_with(&node.ws_url(&format!("token={t}")), &[]).await;
    assert_eq!(third.err().map(|s| s.as_u16()), Some(429), "per-user cap");
    let _c = Client::connect(&node.ws_url("")).await;
    let fourth = Client::connect_with(&node.ws_url(""), &[]).await;
    assert_eq!(fourth.err().map(|s| s.as_u16()), Some(429), "per-IP cap");
    // Another loopback source address is another IP.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let stream = sock.connect(node.public).await.unwrap();
    let r = tokio_tungstenite::client_async(node.ws_url(""), stream).await;
    assert!(r.is_ok(), "a different source address is admitted");
}
