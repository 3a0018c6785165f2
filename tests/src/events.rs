//! A listener on a node's admin event stream (`GET /admin/v1/events`).

use futures_util::StreamExt;
use serde_json::Value;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// An open event stream.
pub struct Events {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Events {
    /// Opens the stream of the node whose admin listener is `admin`; reads its `hello`.
    pub async fn open(admin: std::net::SocketAddr) -> Events {
        let url = format!("ws://{admin}/admin/v1/events");
        let (ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        let mut e = Events { ws };
        let hello = e.next().await;
        assert_eq!(hello["type"], "hello", "{hello}");
        e
    }

    /// The next event (panics after 10 s without one).
    pub async fn next(&mut self) -> Value {
        loop {
            let m = tokio::time::timeout(
                crate::wait::patience(Duration::from_secs(10)),
                self.ws.next(),
            )
            .await
            .expect("an event within 10 s")
            .expect("stream open")
            .unwrap();
            if let Message::Text(t) = m {
                return serde_json::from_str(&t).unwrap();
            }
        }
    }

    /// Events until one matches `pred`.
    pub async fn until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let v = self.next().await;
            if pred(&v) {
                return v;
            }
        }
    }
}
