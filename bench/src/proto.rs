//! Adapters: what each target server expects on the wire. The load generator's scenarios are
//! written once; only the handshake, the join request and reply, the publish frame, the
//! message prefix and application-level heartbeats differ per target.
//!
//! - `gatehouse`: client protocol v1 (`docs/protocol.md`): `welcome`, `join` with a reply
//!   carrying `seq` and `epoch`, `publish` acknowledged by a `reply`, room `message` frames.
//! - `socketio`: Socket.IO v4 over the websocket transport (Engine.IO v4 framing): the server's
//!   open packet `0{…}`, the client's namespace connect `40` answered by `40{…}`; events as
//!   `42["event",…]`, acks `42N[…]` → `43N[…]`; Engine.IO ping `2` answered with pong `3`.
//! - `ws`, `uws`, `naive`: the tiny JSON protocol of `bench/peers/server.js` and
//!   `naive-server` (`welcome`, `join` → `joined`, `publish` → `message` to every member).
//!
//! Every publish carries `data = {"t":<unix µs>,"n":<per-room counter>,"p":"xx…"}`, the same
//! bytes for every target; subscribers read `t` and `n` from the frame bytes without parsing.

use clap::ValueEnum;
use serde::Serialize;
use std::fmt::Write as _;

/// The server kind the generator talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// Gatehouse client protocol v1.
    Gatehouse,
    /// Socket.IO v4, websocket transport.
    Socketio,
    /// Node `ws` room server (`bench/peers/server.js ws`).
    Ws,
    /// uWebSockets.js topic server (`bench/peers/server.js uws`).
    Uws,
    /// The naive Rust server (`naive-server`).
    Naive,
}

/// How a join reply was recognised.
pub enum JoinReply {
    /// Not the reply we wait for.
    No,
    /// Joined; the room's `epoch` where the protocol has one.
    Ok { epoch: String },
    /// Refused, with the frame as text.
    Refused(String),
    /// Refused for now (`rate_limited`): ask again after this many milliseconds.
    RetryAfter(u64),
}

/// The key in front of the send timestamp inside `data`.
pub const T_KEY: &[u8] = br#"{"t":"#;
/// The key in front of the per-room counter inside `data`.
pub const N_KEY: &[u8] = br#","n":"#;

impl Proto {
    /// The request target to use when the URL gives none (or just `/`).
    pub fn default_path(self) -> &'static str {
        match self {
            Proto::Gatehouse => "/ws",
            Proto::Socketio => "/socket.io/?EIO=4&transport=websocket",
            Proto::Ws | Proto::Uws | Proto::Naive => "/",
        }
    }

    /// Parses `ws://IP:PORT[/path]`, using [`Proto::default_path`] when the URL has no path.
    pub fn target(self, url: &str) -> anyhow::Result<crate::ws::Target> {
        let mut t = crate::ws::Target::parse(url)?;
        if t.path == "/" {
            self.default_path().clone_into(&mut t.path);
        }
        Ok(t)
    }

    /// Whether the server acknowledges each publish (else the publisher's own copy of each
    /// message stands in for the acknowledgement).
    pub fn acks_publish(self) -> bool {
        self == Proto::Gatehouse
    }

    /// The frame the client sends right after the upgrade, once it has seen `first` (the
    /// server's first text frame), and whether the connection is then ready (else: wait for
    /// the next text frame, which must be the ready signal).
    pub fn greet(self, first: &[u8]) -> Result<(Option<&'static [u8]>, bool), String> {
        let ok = match self {
            Proto::Gatehouse => first.starts_with(br#"{"op":"welcome""#),
            Proto::Socketio => first.starts_with(b"0{"),
            Proto::Ws | Proto::Uws | Proto::Naive => first.starts_with(br#"{"op":"welcome""#),
        };
        if !ok {
            return Err(format!(
                "unexpected first frame: {}",
                String::from_utf8_lossy(&first[..first.len().min(200)])
            ));
        }
        Ok(match self {
            Proto::Socketio => (Some(b"40"), false),
            _ => (None, true),
        })
    }

    /// Whether `frame` is the ready signal after [`Proto::greet`] asked to wait.
    pub fn is_ready(self, frame: &[u8]) -> bool {
        match self {
            Proto::Socketio => frame.starts_with(b"40"),
            _ => true,
        }
    }

    /// An application-level heartbeat to answer: the reply to send.
    pub fn heartbeat_reply(self, frame: &[u8]) -> Option<&'static [u8]> {
        (self == Proto::Socketio && frame == b"2").then_some(b"3".as_slice())
    }

    /// The join request for `room` with request id `id`.
    pub fn join_frame(self, room: &str, id: u64) -> String {
        match self {
            Proto::Gatehouse => format!(r#"{{"id":{id},"op":"join","room":"{room}"}}"#),
            Proto::Socketio => format!(r#"42{id}["join","{room}"]"#),
            Proto::Ws | Proto::Uws | Proto::Naive => {
                format!(r#"{{"op":"join","room":"{room}","id":{id}}}"#)
            }
        }
    }

    /// Recognises the reply to the join request `id`.
    pub fn join_reply(self, frame: &[u8], id: u64) -> JoinReply {
        match self {
            Proto::Gatehouse => {
                if !frame.starts_with(br#"{"op":"reply""#)
                    || crate::ws::find_u64(frame, br#""id":"#) != Some(id)
                {
                    return JoinReply::No;
                }
                let Ok(v) = serde_json::from_slice::<serde_json::Value>(frame) else {
                    return JoinReply::Refused(String::from_utf8_lossy(frame).into_owned());
                };
                if v["ok"] != true {
                    if v["error"]["code"] == "rate_limited" {
                        let ms = v["error"]["retry_after_ms"].as_u64().unwrap_or(100);
                        return JoinReply::RetryAfter(ms.max(1));
                    }
                    return JoinReply::Refused(v.to_string());
                }
                JoinReply::Ok {
                    epoch: v["result"]["epoch"].as_str().unwrap_or_default().to_owned(),
                }
            }
            Proto::Socketio => {
                let prefix = format!("43{id}[");
                if frame.starts_with(prefix.as_bytes()) {
                    JoinReply::Ok {
                        epoch: String::new(),
                    }
                } else {
                    JoinReply::No
                }
            }
            Proto::Ws | Proto::Uws | Proto::Naive => {
                if frame.starts_with(br#"{"op":"joined""#)
                    && crate::ws::find_u64(frame, br#""id":"#) == Some(id)
                {
                    JoinReply::Ok {
                        epoch: String::new(),
                    }
                } else {
                    JoinReply::No
                }
            }
        }
    }

    /// Writes the publish request into `buf` (cleared first).
    #[allow(clippy::too_many_arguments)]
    pub fn publish_frame(self, buf: &mut String, room: &str, id: u64, t: u64, n: u64, pad: &str) {
        buf.clear();
        let _ = match self {
            Proto::Gatehouse => write!(
                buf,
                r#"{{"id":{id},"op":"publish","room":"{room}","data":{{"t":{t},"n":{n},"p":"{pad}"}}}}"#
            ),
            Proto::Socketio => write!(
                buf,
                r#"42["publish","{room}",{{"t":{t},"n":{n},"p":"{pad}"}}]"#
            ),
            Proto::Ws | Proto::Uws | Proto::Naive => write!(
                buf,
                r#"{{"op":"publish","room":"{room}","data":{{"t":{t},"n":{n},"p":"{pad}"}}}}"#
            ),
        };
    }

    /// Whether a text frame is a room message (checked on its first bytes only).
    pub fn is_message(self, frame: &[u8]) -> bool {
        match self {
            Proto::Socketio => frame.starts_with(br#"42["message""#),
            _ => frame.starts_with(br#"{"op":"message""#),
        }
    }

    /// Whether a text frame is a reply to a request (Gatehouse only).
    pub fn is_reply(self, frame: &[u8]) -> bool {
        self == Proto::Gatehouse && frame.starts_with(br#"{"op":"reply""#)
    }
}

/// The size of `{"t":…,"n":…,"p":""}` with a 16-digit timestamp and a 7-digit counter: the
/// smallest `--payload`.
pub const DATA_OVERHEAD: usize = 41;

/// Padding length that makes `data` exactly `payload` bytes for counter `n` (16-digit `t`).
pub fn pad_len(payload: usize, n: u64) -> usize {
    let digits = n.checked_ilog10().map_or(1, |d| d as usize + 1);
    payload.saturating_sub(34 + digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_the_same_data() {
        let mut b = String::new();
        for p in [
            Proto::Gatehouse,
            Proto::Socketio,
            Proto::Ws,
            Proto::Uws,
            Proto::Naive,
        ] {
            p.publish_frame(&mut b, "r", 3, 1_700_000_000_000_000, 1_234_567, "xx");
            let at = crate::ws::find_at(b.as_bytes(), T_KEY).expect("t");
            assert_eq!(
                crate::ws::find_u64(&b.as_bytes()[at..], N_KEY),
                Some(1_234_567)
            );
        }
        b.clear();
        let _ = write!(b, r#"{{"t":1700000000000000,"n":1234567,"p":""}}"#);
        assert_eq!(b.len(), DATA_OVERHEAD);
        for n in [0, 9, 10, 12_345] {
            let pad = "x".repeat(pad_len(100, n));
            b.clear();
            let _ = write!(b, r#"{{"t":1700000000000000,"n":{n},"p":"{pad}"}}"#);
            assert_eq!(b.len(), 100);
        }
    }

    #[test]
    fn recognises_replies() {
        assert!(matches!(
            Proto::Socketio.join_reply(br#"437["ok"]"#, 7),
            JoinReply::Ok { .. }
        ));
        assert!(matches!(
            Proto::Socketio.join_reply(br#"4317["ok"]"#, 1),
            JoinReply::No
        ));
        assert!(matches!(
            Proto::Ws.join_reply(br#"{"op":"joined","id":2}"#, 2),
            JoinReply::Ok { .. }
        ));
        assert!(matches!(
            Proto::Gatehouse.join_reply(
                br#"{"op":"reply","id":1,"ok":true,"result":{"seq":4,"epoch":"ab"}}"#,
                1
            ),
            JoinReply::Ok { .. }
        ));
        assert_eq!(Proto::Socketio.heartbeat_reply(b"2"), Some(b"3".as_slice()));
        let limited = br#"{"op":"reply","id":3,"ok":false,"error":{"code":"rate_limited","message":"m","retry_after_ms":250}}"#;
        assert!(matches!(
            Proto::Gatehouse.join_reply(limited, 3),
            JoinReply::RetryAfter(250)
        ));
        let refused =
            br#"{"op":"reply","id":3,"ok":false,"error":{"code":"forbidden","message":"m"}}"#;
        assert!(matches!(
            Proto::Gatehouse.join_reply(refused, 3),
            JoinReply::Refused(_)
        ));
    }
}
