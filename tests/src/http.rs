//! HTTP helpers for the backend and admin APIs: send a request, get the status and the JSON
//! body (`Value::Null` when the body is empty or not JSON).

use serde_json::Value;

/// Sends `req` and returns (status, JSON body).
pub async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let r = req.send().await.expect("request sent");
    let status = r.status().as_u16();
    let body = r.bytes().await.expect("body read");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// GET `url` and returns the JSON body, asserting 200.
pub async fn get_ok(url: &str) -> Value {
    let (status, body) = send(reqwest::Client::new().get(url)).await;
    assert_eq!(status, 200, "GET {url}: {body}");
    body
}
