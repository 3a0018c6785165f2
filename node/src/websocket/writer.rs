//! Writing to an upgraded socket. Frames are queued and written together: a connection that has
//! several frames waiting (a burst of deliveries, a join's reply, snapshot and replay) makes one
//! `write` for all of them. The queue exists only while bytes wait, so an idle connection
//! holds none.
//!
//! Two kinds of frames are queued:
//!
//! - A room message is queued *shared* ([`Writer::shared_text`]): the writer keeps a reference
//!   to the message's payload, encoded once per publish and shared by every subscriber, until
//!   the flush. A delivery copies nothing and allocates nothing beyond its place in the queue.
//! - Anything else (replies, control frames, the handshake's `101`) is encoded into owned
//!   chunks of at most [`CHUNK_LIMIT`] bytes, consecutive frames sharing a chunk. Chunks never
//!   grow past 4 KiB: the allocator maps blocks of 4 KiB and more on their own (see `memory`).
//!
//! A flush gathers the frames into a per-thread scratch buffer (the shared payload is hot in
//! cache: every subscriber's copy reads the same bytes) and writes them with one plain `write`.
//! A `writev` of each frame's header and payload where they lie was measured against it: at 20
//! frames per write the kernel's walk over 40 slices cost more than the copy, and saturation
//! rose from 2.1M to about 3M deliveries/s with the gather (`bench/results/2026-12-06-steps.txt`).
//! A queue emptied by a flush goes to a per-thread spare list for the next writer that needs
//! one, rather than back to the allocator.
//!
//! Owns the queue, the header encoding of shared frames, the scratch buffer and the spare
//! queues; never touches what it writes.

use super::frame;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use tokio::net::TcpStream;

/// Bytes reserved when an owned chunk is first needed: one ~100-byte message. Small on purpose:
/// chunks this small are recycled from malloc's fast bins. A busy chunk grows by doubling, up
/// to [`CHUNK_LIMIT`].
const FIRST_CAPACITY: usize = 112;

/// A chunk that would grow past this starts a new one (a frame larger than this gets a chunk of
/// its own): 3 KiB of frames fit a vector of at most 3 584 bytes, below the 4 KiB the
/// allocator maps on its own.
pub const CHUNK_LIMIT: usize = 3 * 1024;

/// Largest capacity a chunk grows to: below 4 096 bytes with malloc's chunk header.
const CHUNK_CAPACITY: usize = 4096 - 64;

/// Most bytes gathered for one `write`.
const SCRATCH_LEN: usize = 64 * 1024;

thread_local! {
    /// Where a flush gathers what waits (one per thread: a flush never yields while it holds
    /// it, and the pump and the connection tasks of a worker take turns on its thread).
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; SCRATCH_LEN].into_boxed_slice());
}

/// Emptied queues of at most this many parts are kept for the next writer that needs one.
const SPARE_QUEUE_LEN: usize = 64;

/// Most emptied queues kept per thread (at most 384 KiB).
const SPARE_QUEUES_MAX: usize = 256;

thread_local! {
    /// Queues given back by writers that wrote everything. Under load the pump flushes
    /// thousands of connections a second, each emptying its queue and filling it again on the
    /// next publish: without these, each cycle was a malloc, three reallocs (4, 8, 16, 32
    /// parts) and a free per connection (≈ 5 % of the node's CPU at saturation).
    static SPARE_QUEUES: RefCell<Vec<VecDeque<Part>>> = const { RefCell::new(Vec::new()) };
}

/// A payload many writers share (a room message, encoded once per publish).
pub type SharedPayload = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// The bytes of a shared payload.
fn bytes(p: &SharedPayload) -> &[u8] {
    (**p).as_ref()
}

/// One queued piece.
enum Part {
    /// Encoded frames.
    Owned(Vec<u8>),
    /// A text frame whose payload is shared: its header is encoded when written.
    Shared(SharedPayload),
}

/// A text frame's header for `len` payload bytes, and how many of its bytes are used.
fn text_header(len: usize) -> ([u8; 10], usize) {
    let mut h = [0u8; 10];
    h[0] = 0x80 | frame::TEXT;
    match len {
        0..=125 => {
            h[1] = len as u8;
            (h, 2)
        }
        126..=0xFFFF => {
            h[1] = 126;
            h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            (h, 4)
        }
        _ => {
            h[1] = 127;
            h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            (h, 10)
        }
    }
}

impl Part {
    /// Bytes this part puts on the wire.
    fn len(&self) -> usize {
        match self {
            Part::Owned(v) => v.len(),
            Part::Shared(p) => {
                let n = bytes(p).len();
                frame::header_len(n) + n
            }
        }
    }
}

impl std::fmt::Debug for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Part::Owned(v) => write!(f, "Owned({} bytes)", v.len()),
            Part::Shared(p) => write!(f, "Shared({} bytes)", bytes(p).len()),
        }
    }
}

/// The write side of one WebSocket.
#[derive(Debug, Default)]
pub struct Writer {
    /// What waits, oldest first.
    parts: VecDeque<Part>,
    /// Bytes of the first part already written.
    pos: usize,
    /// Bytes waiting (all parts, less `pos`).
    pending: usize,
    /// Bytes at the front of the queue that belong to replies the client asked for (a join's
    /// replay, a history page): they do not count against the connection's outbound budget,
    /// which limits what a client fails to read, not the size of a legitimate reply.
    /// (`u32`s: every idle connection holds a writer; a reply is far below 4 GiB.)
    exempt: u32,
    /// Bytes written since the writer was made, wrapping (write progress, for the stall
    /// check).
    written: u32,
}

impl Writer {
    /// The owned chunk `extra` more bytes go to: the last part when it is an owned chunk with
    /// room, a new one otherwise.
    fn tail(&mut self, extra: usize) -> &mut Vec<u8> {
        let fits =
            matches!(self.parts.back(), Some(Part::Owned(v)) if v.len() + extra <= CHUNK_LIMIT);
        if !fits {
            self.push(Part::Owned(Vec::new()));
        }
        let Some(Part::Owned(v)) = self.parts.back_mut() else {
            unreachable!("the last part is an owned chunk");
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
        self.pending += v.len() - before;
    }

    /// Appends a part; an empty queue first takes a spare one of the thread's.
    fn push(&mut self, part: Part) {
        if self.parts.capacity() == 0 {
            // (`try_with`: a writer used while its thread's locals are torn down goes without.)
            if let Some(q) = SPARE_QUEUES
                .try_with(|spare| spare.borrow_mut().pop())
                .ok()
                .flatten()
            {
                self.parts = q;
            }
        }
        self.parts.push_back(part);
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

    /// Queues a text frame whose payload stays where it is until written.
    pub fn shared_text(&mut self, payload: SharedPayload) {
        let part = Part::Shared(payload);
        self.pending += part.len();
        self.push(part);
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
        self.pending
    }

    /// Marks everything queued so far, up to `cap` bytes from the front, as a reply the client
    /// asked for: those bytes are not held against [`Writer::over_budget`] while they wait.
    pub fn mark_reply(&mut self, cap: usize) {
        self.exempt = u32::try_from(self.pending.min(cap)).unwrap_or(u32::MAX);
    }

    /// Whether bytes of a reply still wait for the socket.
    pub fn reply_pending(&self) -> bool {
        self.exempt > 0
    }

    /// Whether more than `budget` bytes wait beyond the replies in progress.
    pub fn over_budget(&self, budget: usize) -> bool {
        self.pending - self.exempt as usize > budget
    }

    /// Bytes written to the socket so far.
    pub fn written(&self) -> u32 {
        self.written
    }

    /// Writes what the socket takes now, without waiting: what waits is gathered into the
    /// thread's scratch buffer and written with one plain `write` per `SCRATCH_LEN` bytes.
    /// `Ok(true)` when nothing is left.
    pub fn try_flush(&mut self, io: &TcpStream) -> io::Result<bool> {
        while self.pending > 0 {
            let write = |buf: &mut [u8]| {
                let n = self.gather(buf);
                io.try_write(&buf[..n])
            };
            let n = SCRATCH
                .try_with(|scratch| write(&mut scratch.borrow_mut()[..]))
                // The thread's locals are being torn down (a socket flushed by a destructor at
                // thread exit): a buffer of its own.
                .unwrap_or_else(|_| write(&mut vec![0u8; self.pending.min(SCRATCH_LEN)]));
            match n {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        // Everything is out: give the queue back, so an idle connection holds none.
        let parts = std::mem::take(&mut self.parts);
        if (1..=SPARE_QUEUE_LEN).contains(&parts.capacity()) {
            let _ = SPARE_QUEUES.try_with(|spare| {
                let mut spare = spare.borrow_mut();
                if spare.len() < SPARE_QUEUES_MAX {
                    spare.push(parts);
                }
            });
        }
        self.pos = 0;
        Ok(true)
    }

    /// Copies what waits into `buf`, as much as fits; returns the byte count.
    fn gather(&self, buf: &mut [u8]) -> usize {
        /// Appends `bytes` less the first `skip` of them, as far as `buf` has room.
        fn put(buf: &mut [u8], n: &mut usize, bytes: &[u8], skip: &mut usize) {
            let s = (*skip).min(bytes.len());
            *skip -= s;
            let rest = &bytes[s..];
            let m = rest.len().min(buf.len() - *n);
            buf[*n..*n + m].copy_from_slice(&rest[..m]);
            *n += m;
        }
        let mut n = 0;
        // `skip` (the first part's written bytes) runs over a shared frame's header into its
        // payload.
        let mut skip = self.pos;
        for part in &self.parts {
            if n == buf.len() {
                break;
            }
            match part {
                Part::Owned(v) => put(buf, &mut n, v, &mut skip),
                Part::Shared(p) => {
                    let payload = bytes(p);
                    let (head, hl) = text_header(payload.len());
                    put(buf, &mut n, &head[..hl], &mut skip);
                    put(buf, &mut n, payload, &mut skip);
                }
            }
        }
        n
    }

    /// Drops `n` written bytes from the front.
    fn advance(&mut self, mut n: usize) {
        self.pending -= n;
        let n32 = u32::try_from(n).unwrap_or(u32::MAX);
        self.exempt = self.exempt.saturating_sub(n32);
        self.written = self.written.wrapping_add(n32);
        while let Some(front) = self.parts.front() {
            let left = front.len() - self.pos;
            if n < left {
                self.pos += n;
                return;
            }
            n -= left;
            self.pos = 0;
            self.parts.pop_front();
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

    /// Everything queued, as the socket would get it.
    fn wire(w: &Writer) -> Vec<u8> {
        let mut all = Vec::new();
        for p in &w.parts {
            match p {
                Part::Owned(v) => all.extend_from_slice(v),
                Part::Shared(s) => {
                    let payload = bytes(s);
                    let (h, hl) = text_header(payload.len());
                    all.extend_from_slice(&h[..hl]);
                    all.extend_from_slice(payload);
                }
            }
        }
        all[w.pos..].to_vec()
    }

    fn owned_chunks(w: &Writer) -> impl Iterator<Item = &Vec<u8>> {
        w.parts.iter().filter_map(|p| match p {
            Part::Owned(v) => Some(v),
            Part::Shared(_) => None,
        })
    }

    #[test]
    fn no_chunk_grows_past_the_mapping_threshold() {
        for size in [20usize, 90, 100, 150, 200, 250, 300, 1000, 2000, 3000] {
            let mut w = Writer::default();
            for _ in 0..200 {
                w.text(&vec![b'x'; size]);
                assert!(owned_chunks(&w).all(|c| c.capacity() < 4096), "{size}");
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
        for c in owned_chunks(&w) {
            assert!(
                c.len() <= CHUNK_LIMIT && c.capacity() < 4096,
                "{}",
                c.capacity()
            );
        }
        let all = wire(&w);
        assert_eq!(all.len(), 100 * 102);
        assert!(all.chunks(102).all(|f| f[0] == 0x81 && f[1] == 100));
        // A frame bigger than a chunk gets one of its own.
        w.text(&[b'y'; 5000]);
        assert_eq!(w.pending(), 100 * 102 + 5004);
    }

    #[test]
    fn shared_frames_are_encoded_like_owned_ones_and_keep_their_place() {
        let mut shared = Writer::default();
        let mut owned = Writer::default();
        for (i, len) in [0usize, 5, 125, 126, 300, 0xFFFF, 0x10000]
            .into_iter()
            .enumerate()
        {
            let payload = vec![b'a' + i as u8; len];
            shared.text(format!("reply {i}").as_bytes());
            owned.text(format!("reply {i}").as_bytes());
            shared.shared_text(Arc::new(payload.clone()));
            owned.text(&payload);
        }
        shared.ping(b"gh");
        owned.ping(b"gh");
        assert_eq!(shared.pending(), owned.pending());
        assert_eq!(wire(&shared), wire(&owned));
    }

    #[test]
    fn partial_writes_resume_where_they_stopped() {
        let build = || {
            let mut w = Writer::default();
            w.raw(b"HTTP/1.1 101\r\n\r\n");
            for i in 0..5u8 {
                w.shared_text(Arc::new(vec![b'0' + i; 130]));
                w.text(b"ack");
            }
            w
        };
        let full = wire(&build());
        // Every split point, including inside a shared frame's header and payload.
        for cut in 0..full.len() {
            let mut w = build();
            w.advance(cut);
            assert_eq!(w.pending(), full.len() - cut, "cut {cut}");
            assert_eq!(wire(&w), full[cut..], "cut {cut}");
            let mut gathered = vec![0u8; w.pending()];
            assert_eq!(w.gather(&mut gathered), w.pending(), "cut {cut}");
            assert_eq!(gathered, full[cut..], "cut {cut}");
        }
        let mut w = build();
        w.advance(full.len());
        assert_eq!(w.pending(), 0);
        assert!(w.parts.is_empty());
    }

    #[test]
    fn a_flush_gathers_what_fits_and_the_next_one_goes_on_from_there() {
        let build = || {
            let mut w = Writer::default();
            w.text(b"reply");
            for i in 0..40u8 {
                w.shared_text(Arc::new(vec![b'a' + i % 26; 200 + usize::from(i)]));
            }
            w.shared_text(Arc::new(vec![b'z'; 70_000]));
            w.ping(b"p");
            w
        };
        let full = wire(&build());
        assert!(full.len() > SCRATCH_LEN);
        for room in [1usize, 7, 202, 4096, SCRATCH_LEN] {
            let mut w = build();
            let mut buf = vec![0u8; room];
            let mut out = Vec::new();
            while w.pending() > 0 {
                let n = w.gather(&mut buf);
                assert_eq!(n, room.min(w.pending()), "room {room}");
                out.extend_from_slice(&buf[..n]);
                w.advance(n);
            }
            assert_eq!(out, full, "room {room}");
        }
    }

    #[test]
    fn a_reply_is_held_against_the_budget_only_beyond_the_allowance_and_until_written() {
        let mut w = Writer::default();
        // 994 live bytes wait, then a 10 000-byte reply is queued and marked.
        w.text(&[b'l'; 990]);
        assert!(!w.over_budget(1_000) && !w.reply_pending());
        w.text(&[b'r'; 9_996]);
        assert!(w.over_budget(1_000), "unmarked, the reply counts");
        w.mark_reply(1 << 20);
        assert!(w.reply_pending() && !w.over_budget(0));
        // Live frames queued behind the reply count (504 bytes).
        w.text(&[b'n'; 500]);
        assert!(w.over_budget(500) && !w.over_budget(504));
        // Written bytes come off the front: the reply first, then what follows it.
        w.advance(11_000);
        assert!(!w.reply_pending());
        assert_eq!(w.written(), 11_000);
        assert_eq!(w.pending(), 498);
        assert!(!w.over_budget(498) && w.over_budget(497));
        // Past the allowance, a reply counts like anything else.
        let mut w = Writer::default();
        w.text(&[b'r'; 9_996]);
        w.mark_reply(4_000);
        assert!(w.over_budget(5_000) && !w.over_budget(6_000));
    }
}
