//! `naive-server`: the floor a Rust gateway must clear (issue #6). tokio + tokio-tungstenite
//! with default settings, one task per connection, each room message encoded once (the frame
//! payload is one shared `Utf8Bytes`), unbounded per-connection queues, all frames queued for a
//! connection written in one go (`feed` … `flush`).
//!
//! It speaks the same tiny JSON protocol as the Node peers (`bench/peers/server.js`):
//! `{"op":"welcome"}` on connect; `{"op":"join","room":R,"id":N}` → `{"op":"joined","id":N}`;
//! `{"op":"publish","room":R,"data":D}` → `{"op":"message","room":R,"data":D}` to every member
//! of R, the sender included.
//!
//! ```text
//! naive-server [ADDR]      (default 127.0.0.1:0; prints "listening ADDR" once bound)
//! ```

use anyhow::{Context as _, Result};
use futures_util::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

type Tx = mpsc::UnboundedSender<Utf8Bytes>;

#[derive(Default)]
struct State {
    rooms: Mutex<HashMap<String, Vec<(u64, Tx)>>>,
    next_id: AtomicU64,
}

#[derive(Deserialize)]
struct Req<'a> {
    op: &'a str,
    room: Option<String>,
    id: Option<&'a RawValue>,
    data: Option<&'a RawValue>,
}

fn main() -> Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    if addr == "--help" || addr == "-h" {
        println!("usage: naive-server [ADDR]   (default 127.0.0.1:0)");
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(&addr)
            .await
            .with_context(|| format!("bind {addr}"))?;
        println!("listening {}", listener.local_addr()?);
        let state = Arc::new(State::default());
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let state = state.clone();
            tokio::spawn(async move {
                let _ = connection(stream, state).await;
            });
        }
    })
}

async fn connection(stream: TcpStream, state: Arc<State>) -> Result<()> {
    let _ = stream.set_nodelay(true);
    let ws = tokio_tungstenite::accept_async(stream).await?;
    let (mut sink, mut source) = ws.split();
    let me = state.next_id.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::unbounded_channel::<Utf8Bytes>();
    let mut joined: Vec<String> = Vec::new();
    sink.send(Message::text(r#"{"op":"welcome"}"#)).await?;
    let result: Result<()> = async {
        loop {
            tokio::select! {
                m = source.next() => {
                    let Some(m) = m else { return Ok(()) };
                    match m? {
                        Message::Text(t) => {
                            let Ok(req) = serde_json::from_str::<Req<'_>>(t.as_str()) else { continue };
                            let Some(room) = req.room else { continue };
                            match req.op {
                                "join" => {
                                    state.rooms.lock().map_err(|_| anyhow::anyhow!("poisoned"))?
                                        .entry(room.clone()).or_default().push((me, tx.clone()));
                                    joined.push(room);
                                    let id = req.id.map_or("null", RawValue::get);
                                    sink.send(Message::text(format!(r#"{{"op":"joined","id":{id}}}"#))).await?;
                                }
                                "publish" => {
                                    let data = req.data.map_or("null", RawValue::get);
                                    let room_json = serde_json::to_string(&room)?;
                                    let frame: Utf8Bytes = format!(r#"{{"op":"message","room":{room_json},"data":{data}}}"#).into();
                                    let rooms = state.rooms.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                                    if let Some(members) = rooms.get(&room) {
                                        for (_, t) in members {
                                            let _ = t.send(frame.clone());
                                        }
                                    }
                                }
                                _ => {}
                            }
                        }
                        Message::Close(_) => return Ok(()),
                        _ => {}
                    }
                }
                Some(f) = rx.recv() => {
                    sink.feed(Message::Text(f)).await?;
                    while let Ok(f) = rx.try_recv() {
                        sink.feed(Message::Text(f)).await?;
                    }
                    sink.flush().await?;
                }
            }
        }
    }
    .await;
    if let Ok(mut rooms) = state.rooms.lock() {
        for r in joined {
            if let Some(m) = rooms.get_mut(&r) {
                m.retain(|(id, _)| *id != me);
                if m.is_empty() {
                    rooms.remove(&r);
                }
            }
        }
    }
    result
}
