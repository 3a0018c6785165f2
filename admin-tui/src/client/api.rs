//! The admin API over HTTP, typed: a GET reads its answer as the `protocol::admin` type the node
//! wrote, an operator action sends the `protocol::admin` request body. Also where a node's
//! `admin_address` points, and how failures read in the status line.
//!
//! No state but the HTTP client and the token; never touches the UI.

use super::Op;
use protocol::admin::{
    percent_encode as enc, ErrorBody, KickRequest, MigrateRequest, PublishRequest, RawJson,
    RoomRequest, ThrottleRequest, PREFIX,
};
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Per-request timeout of the polls (the actions get longer: a migration may take a while).
const POLL_TIMEOUT: Duration = Duration::from_secs(4);
const ACTION_TIMEOUT: Duration = Duration::from_secs(65);

/// Why a GET failed.
#[derive(Debug)]
pub enum FetchError {
    /// Transport failure or 502/503/504: the node is not serving.
    Unreachable(String),
    Other(String),
}

impl FetchError {
    pub fn text(&self) -> &str {
        match self {
            FetchError::Unreachable(s) | FetchError::Other(s) => s,
        }
    }
}

#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub token: Option<String>,
}

impl Api {
    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let rb = self.http.request(method, url);
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// `GET {base}/admin/v1{path}`, read as `T`.
    pub async fn get<T: DeserializeOwned>(&self, base: &str, path: &str) -> Result<T, FetchError> {
        let url = format!("{base}{PREFIX}{path}");
        let resp = self
            .request(reqwest::Method::GET, &url)
            .timeout(POLL_TIMEOUT)
            .send()
            .await
            .map_err(|e| FetchError::Unreachable(transport_error(&e)))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| FetchError::Unreachable(transport_error(&e)))?;
        if !status.is_success() {
            let msg = format!("GET {path}: {}", http_error(status.as_u16(), &body));
            return Err(if matches!(status.as_u16(), 502..=504) {
                FetchError::Unreachable(msg)
            } else {
                FetchError::Other(msg)
            });
        }
        serde_json::from_str(&body).map_err(|e| FetchError::Other(format!("GET {path}: {e}")))
    }

    /// Runs an operator action: `Ok("200 {answer}")`, or why it failed.
    pub async fn run_op(&self, base: &str, op: &Op) -> Result<String, String> {
        use reqwest::Method;
        let url = |path: String| format!("{base}{PREFIX}{path}");
        let rb = match op {
            Op::Kick { client, reason } => self
                .request(Method::POST, &url(format!("/clients/{}/kick", enc(client))))
                .json(&KickRequest {
                    reason: Some(reason.clone()),
                }),
            Op::Throttle {
                client,
                msgs_per_sec,
                burst,
            } => self
                .request(
                    Method::POST,
                    &url(format!("/clients/{}/throttle", enc(client))),
                )
                .json(&ThrottleRequest {
                    msgs_per_sec: *msgs_per_sec,
                    burst: *burst,
                    bytes_per_sec: None,
                }),
            Op::Unthrottle { client } => self.request(
                Method::DELETE,
                &url(format!("/clients/{}/throttle", enc(client))),
            ),
            Op::Drain { node } => {
                self.request(Method::POST, &url(format!("/nodes/{}/drain", enc(node))))
            }
            Op::Undrain { node } => {
                self.request(Method::POST, &url(format!("/nodes/{}/undrain", enc(node))))
            }
            Op::Migrate { room, to } => self
                .request(Method::POST, &url(format!("/rooms/{}/migrate", enc(room))))
                .json(&MigrateRequest { to: to.clone() }),
            Op::Publish { room, data } => self
                .request(Method::POST, &url(format!("/rooms/{}/publish", enc(room))))
                .json(&PublishRequest {
                    data: RawJson::parse(data).map_err(|e| format!("not JSON: {e}"))?,
                }),
            Op::Join { client, room } => self
                .request(Method::POST, &url(format!("/clients/{}/join", enc(client))))
                .json(&RoomRequest { room: room.clone() }),
            Op::Leave { client, room } => self
                .request(
                    Method::POST,
                    &url(format!("/clients/{}/leave", enc(client))),
                )
                .json(&RoomRequest { room: room.clone() }),
        };
        let resp = rb
            .timeout(ACTION_TIMEOUT)
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| transport_error(&e))?;
        if (200..300).contains(&status) {
            Ok(format!("{status} {}", text.trim()))
        } else {
            Err(http_error(status, &text))
        }
    }
}

/// `404 not_found: no such client` from an error body, or the raw body.
pub fn http_error(status: u16, body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => format!("{status} {}: {}", error.code, error.message),
        Err(_) => format!("{status} {}", body.trim()),
    }
}

pub fn transport_error(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// `http://host:port` for a node's `admin_address`; a wildcard host takes the host of `via`.
pub fn admin_url(admin_address: &str, via: &str) -> String {
    let addr = admin_address.trim();
    if addr.starts_with("http://") || addr.starts_with("https://") {
        return addr.trim_end_matches('/').to_owned();
    }
    let (host, port) = match addr.rsplit_once(':') {
        Some((h, p)) => (h, p),
        None => (addr, "9100"),
    };
    let host = if matches!(host, "0.0.0.0" | "[::]" | "::" | "") {
        url_host(via).unwrap_or("127.0.0.1")
    } else {
        host
    };
    format!("http://{host}:{port}")
}

fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let hostport = rest.split('/').next()?;
    if let Some(end) = hostport.find(']') {
        return Some(&hostport[..=end]);
    }
    Some(hostport.rsplit_once(':').map_or(hostport, |(h, _)| h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_urls() {
        assert_eq!(
            admin_url("127.0.0.1:9701", "http://127.0.0.1:9100"),
            "http://127.0.0.1:9701"
        );
        assert_eq!(
            admin_url("0.0.0.0:9702", "http://10.0.0.5:9100/"),
            "http://10.0.0.5:9702"
        );
    }

    #[test]
    fn encodes_path_segments() {
        assert_eq!(enc("chat:lobby"), "chat:lobby");
        assert_eq!(enc("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn error_bodies_read_as_code_and_message() {
        assert_eq!(
            http_error(
                404,
                r#"{"error":{"code":"not_found","message":"no such client"}}"#
            ),
            "404 not_found: no such client"
        );
        assert_eq!(http_error(502, "bad gateway\n"), "502 bad gateway");
    }
}
