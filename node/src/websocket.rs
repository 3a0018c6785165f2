//! The WebSocket edge after the upgrade: the node owns each upgraded TCP socket itself, outside
//! actix-http's HTTP/1 dispatcher (which keeps an 8 KiB read and an 8 KiB write buffer per
//! connection for as long as the connection lives). An idle connection here holds no buffer at
//! all: bytes are read into a per-thread scratch buffer and kept only while a frame is incomplete,
//! and outgoing frames are encoded into a buffer that exists only while a write is pending.
//!
//! - [`frame`]: encoding server frames (unmasked, RFC 6455 §5.2).
//! - [`reader`]: decoding client frames (actix-http's codec: masking, control frames, limits),
//!   joining continuations, UTF-8 checks; the close code each error maps to.
//! - [`writer`]: coalesced writes: everything queued for one socket goes out in one `write`.
//!
//! Owns bytes on the wire only; what a frame means is the connection's business
//! ([`crate::connection`]), and the handshake is the HTTP edge's ([`crate::http::upgrade`]).

pub mod frame;
pub mod reader;
pub mod writer;

pub use reader::{Reader, WsError, WsMessage};
pub use writer::Writer;

use std::time::Duration;
use tokio::net::TcpStream;

/// After the close frame is written: half-closes the socket and reads (and discards) what the
/// client still sends until it closes too, at most `linger`. Closing a socket with unread
/// bytes would make the kernel send a reset, which can destroy the close frame in flight.
pub async fn linger_close(io: &TcpStream, linger: Duration) {
    let _ = socket2::SockRef::from(io).shutdown(std::net::Shutdown::Write);
    let drain = async {
        let mut buf = [0u8; 512];
        loop {
            if io.readable().await.is_err() {
                return;
            }
            match io.try_read(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(linger, drain).await;
}
