//! Reading client frames from an upgraded socket. Frames are decoded by actix-http's WebSocket
//! codec (server mode: client frames must be masked; control frames ≤ 125 bytes; the frame size
//! limit); this module joins continuations into messages (bounded by the same limit) and checks
//! that text is UTF-8.
//!
//! Memory: bytes are read into a per-thread scratch buffer; a connection keeps bytes only while
//! a frame is incomplete, so an idle connection holds no read buffer.

use actix_codec::Decoder;
use actix_http::ws::{CloseReason, Codec, Frame, Item, ProtocolError};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use std::cell::RefCell;
use std::task::{Context, Poll};
use tokio::net::TcpStream;

/// Size of the per-thread read buffer: one `read` takes at most this much.
const SCRATCH: usize = 64 * 1024;

thread_local! {
    static SCRATCH_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH]);
}

/// A complete client message.
#[derive(Debug)]
pub enum WsMessage {
    /// A text message (checked UTF-8).
    Text(ByteString),
    /// A binary message.
    Binary(Bytes),
    /// A ping (answer with a pong carrying the same bytes).
    Ping(Bytes),
    /// A pong (its bytes are not looked at).
    Pong,
    /// A close frame.
    Close(Option<CloseReason>),
}

/// Why reading stopped.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// The client broke the WebSocket protocol (or sent a frame over the limit).
    #[error("{0}")]
    Protocol(ProtocolError),
    /// A fragmented message grew over the limit.
    #[error("message exceeds {0} bytes")]
    TooBig(usize),
    /// A text message is not UTF-8.
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
    /// The client closed the TCP connection.
    #[error("connection closed by the client")]
    Eof,
    /// The socket failed.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
}

impl WsError {
    /// The close code to answer with (RFC 6455 §7.4.1): 1009 for a frame or message over the
    /// limit, 1007 for text that is not UTF-8, 1002 for other protocol violations; `None` when
    /// the socket itself is gone (nobody to tell).
    pub fn close_code(&self) -> Option<u16> {
        match self {
            WsError::Protocol(ProtocolError::Overflow) | WsError::TooBig(_) => {
                Some(protocol::codes::close::TOO_BIG)
            }
            WsError::Protocol(_) => Some(1002),
            WsError::InvalidUtf8 => Some(1007),
            WsError::Eof | WsError::Io(_) => None,
        }
    }
}

/// A fragmented message being joined.
#[derive(Debug)]
struct Partial {
    text: bool,
    bytes: BytesMut,
}

/// The read side of one WebSocket.
#[derive(Debug)]
pub struct Reader {
    buf: BytesMut,
    codec: Codec,
    max: usize,
    partial: Option<Box<Partial>>,
}

impl Reader {
    /// A reader for messages of at most `max` bytes; `leftover` holds bytes that arrived with the
    /// handshake.
    pub fn new(leftover: &[u8], max: usize) -> Self {
        Self {
            buf: BytesMut::from(leftover),
            codec: Codec::new().max_size(max),
            max,
            partial: None,
        }
    }

    /// The next complete message among the bytes already read, if any.
    pub fn next_buffered(&mut self) -> Result<Option<WsMessage>, WsError> {
        loop {
            if self.buf.is_empty() {
                // Give the allocation back (frames handed out keep their own bytes alive).
                self.buf = BytesMut::new();
                return Ok(None);
            }
            let Some(frame) = self
                .codec
                .decode(&mut self.buf)
                .map_err(WsError::Protocol)?
            else {
                return Ok(None);
            };
            let msg = match frame {
                Frame::Text(b) => WsMessage::Text(utf8(b)?),
                Frame::Binary(b) => WsMessage::Binary(b),
                Frame::Ping(b) => WsMessage::Ping(b),
                Frame::Pong(_) => WsMessage::Pong,
                Frame::Close(r) => WsMessage::Close(r),
                Frame::Continuation(item) => match self.continuation(item)? {
                    Some(m) => m,
                    None => continue,
                },
            };
            return Ok(Some(msg));
        }
    }

    fn continuation(&mut self, item: Item) -> Result<Option<WsMessage>, WsError> {
        let (first, last, bytes) = match item {
            Item::FirstText(b) => (Some(true), false, b),
            Item::FirstBinary(b) => (Some(false), false, b),
            Item::Continue(b) => (None, false, b),
            Item::Last(b) => (None, true, b),
        };
        if let Some(text) = first {
            self.partial = Some(Box::new(Partial {
                text,
                bytes: BytesMut::new(),
            }));
        }
        // The codec rejects a continuation without a start, so `partial` is set here.
        let Some(p) = self.partial.as_mut() else {
            return Err(WsError::Protocol(ProtocolError::ContinuationNotStarted));
        };
        if p.bytes.len() + bytes.len() > self.max {
            self.partial = None;
            return Err(WsError::TooBig(self.max));
        }
        p.bytes.extend_from_slice(&bytes);
        if !last {
            return Ok(None);
        }
        let Some(p) = self.partial.take() else {
            return Ok(None);
        };
        let bytes = p.bytes.freeze();
        Ok(Some(if p.text {
            WsMessage::Text(utf8(bytes)?)
        } else {
            WsMessage::Binary(bytes)
        }))
    }

    /// Reads what the socket has (at most one scratch buffer's worth) without waiting. Returns
    /// false when nothing was there.
    pub fn try_fill(&mut self, io: &TcpStream) -> Result<bool, WsError> {
        SCRATCH_BUF.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            match io.try_read(&mut scratch) {
                Ok(0) => Err(WsError::Eof),
                Ok(n) => {
                    self.buf.extend_from_slice(&scratch[..n]);
                    Ok(true)
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(false),
                Err(e) => Err(WsError::Io(e)),
            }
        })
    }

    /// The next message, or `Pending` with `cx` registered for the socket's readiness. Bytes
    /// read are kept in the reader, so a caller that stops polling loses nothing; no future is
    /// stored between polls (the connection's idle task holds none).
    pub fn poll_recv(
        &mut self,
        io: &TcpStream,
        cx: &mut Context<'_>,
    ) -> Poll<Result<WsMessage, WsError>> {
        loop {
            if let Some(m) = self.next_buffered()? {
                return Poll::Ready(Ok(m));
            }
            // `try_read` clears the readiness it finds exhausted, so this registers again.
            std::task::ready!(io.poll_read_ready(cx))?;
            self.try_fill(io)?;
        }
    }

    /// The next message, waiting for the socket as needed. Cancel-safe, as
    /// [`Reader::poll_recv`].
    pub async fn recv(&mut self, io: &TcpStream) -> Result<WsMessage, WsError> {
        std::future::poll_fn(|cx| self.poll_recv(io, cx)).await
    }
}

fn utf8(b: Bytes) -> Result<ByteString, WsError> {
    ByteString::try_from(b).map_err(|_| WsError::InvalidUtf8)
}
