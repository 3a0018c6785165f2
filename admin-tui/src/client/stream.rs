//! Follows the attached node's `/admin/v1/events` WebSocket: each text frame is read as a
//! `protocol::admin::StreamFrame` and sent to the UI as it is; reconnects (to whatever node is
//! attached now) with a short backoff. Never describes events: the Events view does.

use crate::event::{Event, NetEvent};
use crate::model::Streamed;
use protocol::admin::PREFIX;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// Runs until the UI goes away.
pub async fn follow(
    mut url: tokio::sync::watch::Receiver<String>,
    token: Option<String>,
    events: UnboundedSender<Event>,
) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    loop {
        let base = url.borrow_and_update().clone();
        let ws_url = format!(
            "{}{PREFIX}/events",
            base.replacen("https://", "wss://", 1)
                .replacen("http://", "ws://", 1)
        );
        let mut req = match ws_url.as_str().into_client_request() {
            Ok(r) => r,
            Err(_) => return,
        };
        if let Some(t) = &token {
            if let Ok(v) = format!("Bearer {t}").parse() {
                req.headers_mut().insert("authorization", v);
            }
        }
        if let Ok((mut ws, _)) = tokio_tungstenite::connect_async(req).await {
            loop {
                tokio::select! {
                    msg = ws.next() => match msg {
                        Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => {
                            let Some(frame) = Streamed::parse(&t) else { continue };
                            if events.send(Event::Net(NetEvent::Stream(frame))).is_err() {
                                return;
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => break,
                    },
                    changed = url.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        break;
                    }
                }
            }
        }
        if events.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
