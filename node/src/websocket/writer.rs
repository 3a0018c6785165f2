//! Writing to an upgraded socket. Frames are appended to one buffer and written together: a
//! connection that has several frames waiting (a burst of deliveries, a join's reply, snapshot
//! and replay) makes one `write` for all of them. The buffer exists only while bytes wait, so an
//! idle connection holds none.

use super::frame;
use std::io;
use tokio::net::TcpStream;

/// Bytes reserved when a write buffer is first needed.
const FIRST_CAPACITY: usize = 1024;

/// The write side of one WebSocket.
#[derive(Debug, Default)]
pub struct Writer {
    out: Vec<u8>,
    /// Bytes of `out` already written.
    pos: usize,
}

impl Writer {
    /// Queues bytes as they are (the handshake's `101` response).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Queues a text frame.
    pub fn text(&mut self, payload: &[u8]) {
        if self.out.capacity() == 0 {
            // Room for a few frames: a busy connection gathers several before its write.
            self.out.reserve(FIRST_CAPACITY.max(payload.len() + 10));
        }
        frame::encode(&mut self.out, frame::TEXT, payload);
    }

    /// Queues a binary frame.
    pub fn binary(&mut self, payload: &[u8]) {
        frame::encode(&mut self.out, frame::BINARY, payload);
    }

    /// Queues a ping.
    pub fn ping(&mut self, payload: &[u8]) {
        let n = payload.len().min(frame::MAX_CONTROL);
        frame::encode(&mut self.out, frame::PING, &payload[..n]);
    }

    /// Queues a pong.
    pub fn pong(&mut self, payload: &[u8]) {
        let n = payload.len().min(frame::MAX_CONTROL);
        frame::encode(&mut self.out, frame::PONG, &payload[..n]);
    }

    /// Queues a close frame.
    pub fn close(&mut self, code: u16, reason: &str) {
        frame::encode_close(&mut self.out, code, reason);
    }

    /// Bytes waiting to be written.
    pub fn pending(&self) -> usize {
        self.out.len() - self.pos
    }

    /// Writes what the socket takes now, without waiting. `Ok(true)` when nothing is left.
    pub fn try_flush(&mut self, io: &TcpStream) -> io::Result<bool> {
        while self.pos < self.out.len() {
            match io.try_write(&self.out[self.pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.pos > self.out.len() / 2 {
                        self.out.drain(..self.pos);
                        self.pos = 0;
                    }
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
        // Everything is out: give the buffer back, so an idle connection holds none.
        self.out = Vec::new();
        self.pos = 0;
        Ok(true)
    }

    /// Writes everything, waiting for the socket as needed.
    pub async fn flush(&mut self, io: &TcpStream) -> io::Result<()> {
        while !self.try_flush(io)? {
            io.writable().await?;
        }
        Ok(())
    }
}
