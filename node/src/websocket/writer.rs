//! Writing to an upgraded socket. Frames are appended to a buffer and written together: a
//! connection that has several frames waiting (a burst of deliveries, a join's reply, snapshot
//! and replay) makes one `write` for all of them. The buffer exists only while bytes wait, so an
//! idle connection holds none.
//!
//! The buffer is a chain of chunks of at most [`CHUNK_LIMIT`] bytes, never one large vector: the
//! allocator maps blocks of 4 KiB and more on their own (see `memory`), and at saturation, when
//! many sockets are behind, buffers growing to 8–16 KiB meant an `mmap`, page faults and a
//! `munmap` per growth and per flush.

use super::frame;
use std::io;
use tokio::net::TcpStream;

/// Bytes reserved when a write buffer is first needed: one ~100-byte message. Small on
/// purpose: a publish to 5 000 idle subscribers makes 5 000 of these at once and frees them
/// after the flush. At 1 KiB each they came from the top of the heap, which glibc trimmed and
/// the next publish faulted back in (page faults and zeroing: the server's CPU at 5 000 × 10
/// msg/s went from 44 % to 32 %, and p99 from 51 to 40 ms, when this went from 1024 to 112);
/// chunks this small are recycled from malloc's fast bins instead. A busy connection's chunk
/// grows by doubling, up to [`CHUNK_LIMIT`].
const FIRST_CAPACITY: usize = 112;

/// A chunk that would grow past this starts a new one (a frame larger than this gets a chunk of
/// its own): 3 KiB of frames fit a vector of at most 3 584 bytes, below the 4 KiB the
/// allocator maps on its own.
pub const CHUNK_LIMIT: usize = 3 * 1024;

/// Largest capacity a chunk grows to: below 4 096 bytes with malloc's chunk header.
const CHUNK_CAPACITY: usize = 4096 - 64;

/// Chunks written by one `writev`.
const IOV_MAX: usize = 32;

/// The write side of one WebSocket.
#[derive(Debug, Default)]
pub struct Writer {
    /// The chunk being written.
    out: Vec<u8>,
    /// Bytes of `out` already written.
    pos: usize,
    /// Chunks after `out`, oldest first (empty, without an allocation, unless a lot waits).
    more: Vec<Vec<u8>>,
    /// Bytes in `more`.
    more_len: usize,
}

impl Writer {
    /// The chunk `extra` more bytes go to: the last one, or a new one when it would pass
    /// [`CHUNK_LIMIT`].
    fn tail(&mut self, extra: usize) -> &mut Vec<u8> {
        let last = self.more.last().unwrap_or(&self.out);
        if !last.is_empty() && last.len() + extra > CHUNK_LIMIT {
            self.more.push(Vec::new());
        }
        let v = match self.more.last_mut() {
            Some(v) => v,
            None => &mut self.out,
        };
        // Grow by doubling, but never past CHUNK_CAPACITY unless one frame needs more (plain
        // doubling from an odd start, say 160 bytes, reaches 5 120).
        let need = v.len() + extra;
        if need > v.capacity() {
            let target = (v.capacity() * 2)
                .clamp(FIRST_CAPACITY, CHUNK_CAPACITY)
                .max(need);
            v.reserve_exact(target - v.len());
        }
        v
    }

    /// Appends about `extra` bytes with `f`, to the chunk [`Writer::tail`] picks.
    fn append(&mut self, extra: usize, f: impl FnOnce(&mut Vec<u8>)) {
        let v = self.tail(extra);
        let before = v.len();
        f(v);
        let added = v.len() - before;
        if !self.more.is_empty() {
            self.more_len += added;
        }
    }

    /// Queues bytes as they are (the handshake's `101` response).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.append(bytes.len(), |v| v.extend_from_slice(bytes));
    }

    /// Queues a text frame.
    pub fn text(&mut self, payload: &[u8]) {
        self.append(payload.len() + 10, |v| {
            frame::encode(v, frame::TEXT, payload);
        });
    }

    /// Queues a binary frame.
    pub fn binary(&mut self, payload: &[u8]) {
        self.append(payload.len() + 10, |v| {
            frame::encode(v, frame::BINARY, payload);
        });
    }

    /// Queues a ping.
    pub fn ping(&mut self, payload: &[u8]) {
        let n = payload.len().min(frame::MAX_CONTROL);
        self.append(n + 2, |v| frame::encode(v, frame::PING, &payload[..n]));
    }

    /// Queues a pong.
    pub fn pong(&mut self, payload: &[u8]) {
        let n = payload.len().min(frame::MAX_CONTROL);
        self.append(n + 2, |v| frame::encode(v, frame::PONG, &payload[..n]));
    }

    /// Queues a close frame.
    pub fn close(&mut self, code: u16, reason: &str) {
        self.append(reason.len() + 4, |v| frame::encode_close(v, code, reason));
    }

    /// Bytes waiting to be written.
    pub fn pending(&self) -> usize {
        self.out.len() - self.pos + self.more_len
    }

    /// Writes what the socket takes now, without waiting (one `writev` for up to
    /// [`IOV_MAX`] chunks). `Ok(true)` when nothing is left.
    pub fn try_flush(&mut self, io: &TcpStream) -> io::Result<bool> {
        while self.pending() > 0 {
            let mut bufs = [io::IoSlice::new(&[]); IOV_MAX];
            bufs[0] = io::IoSlice::new(&self.out[self.pos..]);
            let mut k = 1;
            for c in self.more.iter().take(IOV_MAX - 1) {
                bufs[k] = io::IoSlice::new(c);
                k += 1;
            }
            let n = match io.try_write_vectored(&bufs[..k]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            };
            self.advance(n);
        }
        // Everything is out: give the buffers back, so an idle connection holds none.
        self.out = Vec::new();
        self.more = Vec::new();
        self.pos = 0;
        Ok(true)
    }

    /// Drops `n` written bytes from the front.
    fn advance(&mut self, mut n: usize) {
        let first = self.out.len() - self.pos;
        if n < first {
            self.pos += n;
            return;
        }
        n -= first;
        self.out.clear();
        self.pos = 0;
        while !self.more.is_empty() {
            // A handful of chunks at most, unless the client stopped reading.
            let c = self.more.remove(0);
            self.more_len -= c.len();
            if n < c.len() {
                self.out = c;
                self.pos = n;
                return;
            }
            n -= c.len();
        }
    }

    /// Writes everything, waiting for the socket as needed.
    pub async fn flush(&mut self, io: &TcpStream) -> io::Result<()> {
        while !self.try_flush(io)? {
            io.writable().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_chunk_grows_past_the_mapping_threshold() {
        for size in [20usize, 90, 100, 150, 200, 250, 300, 1000, 2000, 3000] {
            let mut w = Writer::default();
            for _ in 0..200 {
                w.text(&vec![b'x'; size]);
                assert!(w.out.capacity() < 4096, "{size}: {}", w.out.capacity());
                assert!(w.more.iter().all(|c| c.capacity() < 4096), "{size}");
            }
        }
    }

    #[test]
    fn chunks_stay_below_the_mapping_threshold_and_keep_order() {
        let mut w = Writer::default();
        let payload = [b'x'; 100];
        for _ in 0..100 {
            w.text(&payload);
        }
        assert_eq!(w.pending(), 100 * 102);
        let mut all = w.out.clone();
        for c in &w.more {
            assert!(
                c.len() <= CHUNK_LIMIT && c.capacity() < 4096,
                "{}",
                c.capacity()
            );
            all.extend_from_slice(c);
        }
        assert!(w.out.capacity() < 4096);
        assert_eq!(all.len(), 100 * 102);
        assert!(all.chunks(102).all(|f| f[0] == 0x81 && f[1] == 100));
        // A frame bigger than a chunk gets one of its own.
        w.text(&[b'y'; 5000]);
        assert_eq!(w.pending(), 100 * 102 + 5004);
    }
}
