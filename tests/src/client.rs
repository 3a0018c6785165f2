//! A protocol-v1 test client over tokio-tungstenite: send JSON, receive JSON with deadlines,
//! observe close codes. Pings from the server are answered by tungstenite while reading.

use crate::wait::patience;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Default wait for one frame.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// A connected client.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The `welcome` frame.
    pub welcome: Value,
}

/// What came instead of a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// A close frame with this code and reason.
    Closed(u16, String),
    /// The stream ended without a close frame.
    Eof,
}

impl Client {
    /// Connects and reads `welcome`.
    pub async fn connect(url: &str) -> Client {
        Self::connect_with(url, &[]).await.expect("connect")
    }

    /// Connects with extra headers; on an HTTP refusal returns its status.
    pub async fn connect_with(url: &str, headers: &[(&str, &str)]) -> Result<Client, StatusCode> {
        let mut req = url.into_client_request().unwrap();
        for (k, v) in headers {
            req.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        Self::welcomed(url, tokio_tungstenite::connect_async(req).await).await
    }

    /// The client of a finished handshake once its `welcome` arrived, or the refusal's status.
    async fn welcomed(
        url: &str,
        handshake: Result<
            (
                WebSocketStream<MaybeTlsStream<TcpStream>>,
                tokio_tungstenite::tungstenite::handshake::client::Response,
            ),
            WsError,
        >,
    ) -> Result<Client, StatusCode> {
        match handshake {
            Ok((ws, _)) => {
                let mut c = Client {
                    ws,
                    welcome: Value::Null,
                };
                let w = c.recv().await;
                assert_eq!(w["op"], "welcome", "first frame should be welcome: {w}");
                c.welcome = w;
                Ok(c)
            }
            Err(WsError::Http(resp)) => Err(resp.status()),
            Err(e) => panic!("connect to {url}: {e}"),
        }
    }

    /// Connects, or `None` on any failure (refused, HTTP status, handshake error).
    pub async fn try_connect(url: &str) -> Option<Client> {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.ok()?;
        let mut c = Client {
            ws,
            welcome: Value::Null,
        };
        let w = c.next(FRAME_TIMEOUT).await.ok()?;
        (w["op"] == "welcome").then(|| {
            c.welcome = w;
            c
        })
    }

    /// Connects over a socket with a tiny receive buffer (a client that reads slowly or never).
    pub async fn connect_small_buffer(url: &str, addr: std::net::SocketAddr) -> Client {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        let stream = sock.connect(addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
        let mut c = Client {
            ws,
            welcome: Value::Null,
        };
        c.welcome = c.recv().await;
        c
    }

    /// Connects over `stream` (a socket bound to a chosen source address, or one that already
    /// sent a PROXY header), with the handshake's HTTP status on a refusal.
    pub async fn connect_over(url: &str, stream: TcpStream) -> Result<Client, StatusCode> {
        let handshake = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)).await;
        Self::welcomed(url, handshake).await
    }

    /// This client's id.
    pub fn id(&self) -> String {
        self.welcome["client"].as_str().unwrap().to_owned()
    }

    /// Sends a JSON value as a text frame.
    pub async fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.unwrap();
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, t: &str) {
        self.ws.send(Message::text(t.to_owned())).await.unwrap();
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, b: Vec<u8>) {
        self.ws.send(Message::binary(b)).await.unwrap();
    }

    /// The next JSON frame, or what ended the stream.
    pub async fn next(&mut self, timeout: Duration) -> Result<Value, Ended> {
        let deadline = tokio::time::Instant::now() + patience(timeout);
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(m) => m,
                Err(_) => panic!("no frame within {timeout:?}"),
            };
            match msg {
                Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Close(f))) => {
                    return Err(match f {
                        Some(f) => Ended::Closed(u16::from(f.code), f.reason.to_string()),
                        None => Ended::Closed(1005, String::new()),
                    })
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(Ended::Eof),
            }
        }
    }

    /// The next frame, or `None` when none came within `timeout` (the stream stays usable).
    pub async fn next_within(&mut self, timeout: Duration) -> Option<Result<Value, Ended>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            match msg {
                Some(Ok(Message::Text(t))) => return Some(Ok(serde_json::from_str(&t).unwrap())),
                Some(Ok(Message::Close(f))) => {
                    return Some(Err(match f {
                        Some(f) => Ended::Closed(u16::from(f.code), f.reason.to_string()),
                        None => Ended::Closed(1005, String::new()),
                    }))
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Some(Err(Ended::Eof)),
            }
        }
    }

    /// The next JSON frame (panics on close or timeout).
    pub async fn recv(&mut self) -> Value {
        match self.next(FRAME_TIMEOUT).await {
            Ok(v) => v,
            Err(e) => panic!("expected a frame, got {e:?}"),
        }
    }

    /// Frames until one matches `pred` (returned); others are collected into `skipped`.
    pub async fn recv_until(&mut self, pred: impl Fn(&Value) -> bool) -> (Value, Vec<Value>) {
        let mut skipped = Vec::new();
        loop {
            let v = self.recv().await;
            if pred(&v) {
                return (v, skipped);
            }
            skipped.push(v);
        }
    }

    /// Sends a request with `id` and returns its reply (other frames before it are returned too).
    pub async fn request(&mut self, mut req: Value, id: u64) -> (Value, Vec<Value>) {
        req["id"] = json!(id);
        self.send(req).await;
        self.recv_until(|v| v["op"] == "reply" && v["id"] == json!(id))
            .await
    }

    /// Joins `room` and asserts success; returns the reply's result.
    pub async fn join(&mut self, room: &str) -> Value {
        let (r, _) = self
            .request(json!({"op":"join","room":room}), 900_001)
            .await;
        assert_eq!(r["ok"], true, "join {room}: {r}");
        r["result"].clone()
    }

    /// Publishes and asserts success; returns the seq.
    pub async fn publish(&mut self, room: &str, data: Value) -> u64 {
        let (r, _) = self
            .request(json!({"op":"publish","room":room,"data":data}), 900_002)
            .await;
        assert_eq!(r["ok"], true, "publish {room}: {r}");
        r["result"]["seq"].as_u64().unwrap()
    }

    /// Reads until the server closes; returns the code and the frames seen before.
    pub async fn expect_close(&mut self, timeout: Duration) -> (Ended, Vec<Value>) {
        let mut seen = Vec::new();
        loop {
            match self.next(timeout).await {
                Ok(v) => seen.push(v),
                Err(e) => return (e, seen),
            }
        }
    }
}
