//! The handshake gate: a sans-io check of the bytes a cluster link receives before the link is
//! authenticated. ractor_cluster frames its wire as `u64 big-endian length` + a protobuf
//! `meta.NetworkMessage`; before authentication the only frames a real peer sends are small
//! `auth` ones (field 1). The gate takes one frame at a time into a buffer of at most
//! [`HEADER`] + [`MAX_HANDSHAKE_FRAME`] bytes and says what to do with it:
//!
//! - a well-formed `auth` frame is released to the library ([`Verdict::Release`]);
//! - a frame that is not `auth`, or is larger than [`MAX_HANDSHAKE_FRAME`], is held
//!   ([`Verdict::Hold`]): a real peer sends one only once the handshake succeeded, and the
//!   link's confirmation is then on its way; a stranger's link waits for the deadline, with
//!   nothing more read from it;
//! - an `auth` frame that ractor_cluster's decoder would refuse, or an empty one, is refused
//!   ([`Verdict::Refuse`]), and the link is closed.
//!
//! It owns this parsing only: no I/O, no clock, no allocation beyond its fixed buffer, and only
//! `std` (the fuzz target in `fuzz/` compiles this file on its own), so its error type implements
//! `Display` by hand rather than through thiserror.
//!
//! The schema it checks is ractor_cluster 0.16.5's `auth.proto` (pinned in the workspace).

use std::fmt;

/// Bytes of a frame's length prefix.
pub const HEADER: usize = 8;
/// Largest frame accepted before authentication. The library's handshake frames are a few
/// hundred bytes at most (names, a 32-bit challenge, a digest).
pub const MAX_HANDSHAKE_FRAME: usize = 4096;
/// Deepest nesting the schema has (`NetworkMessage` > `AuthenticationMessage` > `NameMessage`
/// > `NodeFlags`).
const MAX_DEPTH: usize = 4;

/// What to do with the bytes received so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not a whole frame yet: read more (at most [`Gate::wants`] bytes).
    NeedMore,
    /// A whole, valid handshake frame of this many bytes (prefix included) is buffered.
    Release(usize),
    /// The frame must wait for the link's confirmation (or the deadline).
    Hold,
    /// The link must be closed.
    Refuse(Refusal),
}

/// Why a link was refused before authenticating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A frame ractor_cluster's decoder would refuse (or an empty one).
    Malformed,
    /// The link did not authenticate within the handshake deadline.
    Deadline,
    /// Too many links were authenticating already.
    Capacity,
}

impl Refusal {
    /// The label used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Deadline => "deadline",
            Self::Capacity => "capacity",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "malformed cluster handshake frame",
            Self::Deadline => "cluster handshake deadline passed",
            Self::Capacity => "too many cluster links authenticating",
        })
    }
}

impl std::error::Error for Refusal {}

/// One frame being gathered.
pub struct Gate {
    buf: Box<[u8; HEADER + MAX_HANDSHAKE_FRAME]>,
    len: usize,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            buf: Box::new([0; HEADER + MAX_HANDSHAKE_FRAME]),
            len: 0,
        }
    }
}

impl Gate {
    /// The free part of the buffer: read at most [`Gate::wants`] bytes into it, then call
    /// [`Gate::filled`].
    pub fn space(&mut self) -> &mut [u8] {
        let want = self.wants();
        &mut self.buf[self.len..self.len + want]
    }

    /// How many more bytes the current frame needs (0 once a verdict other than `NeedMore` is
    /// due).
    pub fn wants(&self) -> usize {
        if self.len < HEADER + 1 {
            return HEADER + 1 - self.len;
        }
        match self.frame_len() {
            Some(n) if n <= MAX_HANDSHAKE_FRAME => (HEADER + n).saturating_sub(self.len),
            _ => 0,
        }
    }

    /// Records `n` bytes just written into [`Gate::space`].
    pub fn filled(&mut self, n: usize) {
        self.len = (self.len + n).min(self.buf.len());
    }

    /// The bytes buffered so far (the frame, once released or held).
    pub fn buffered(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Forgets the buffered bytes (after they were handed on).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    fn frame_len(&self) -> Option<usize> {
        let mut p = [0u8; HEADER];
        p.copy_from_slice(&self.buf[..HEADER]);
        usize::try_from(u64::from_be_bytes(p)).ok()
    }

    /// The verdict on what is buffered.
    pub fn verdict(&self) -> Verdict {
        if self.len < HEADER {
            return Verdict::NeedMore;
        }
        let Some(n) = self.frame_len() else {
            return Verdict::Hold;
        };
        if n == 0 {
            return Verdict::Refuse(Refusal::Malformed);
        }
        if self.len < HEADER + 1 {
            return Verdict::NeedMore;
        }
        // Field 1 (`auth`), wire type 2: every handshake frame starts so.
        if self.buf[HEADER] != 0x0A || n > MAX_HANDSHAKE_FRAME {
            return Verdict::Hold;
        }
        if self.len < HEADER + n {
            return Verdict::NeedMore;
        }
        if valid_frame(&self.buf[HEADER..HEADER + n]) {
            Verdict::Release(HEADER + n)
        } else {
            Verdict::Refuse(Refusal::Malformed)
        }
    }
}

/// How a field must be encoded for prost to accept it.
#[derive(Clone, Copy)]
enum Kind {
    Varint,
    Str,
    Bytes,
    Msg(Schema),
}

/// A message type of the handshake.
#[derive(Clone, Copy)]
enum Schema {
    Network,
    Auth,
    Name,
    Flags,
    Status,
    ClientStatus,
    Challenge,
    Reply,
    Ack,
}

impl Schema {
    /// The known fields' kinds (unknown fields are skipped by prost, as here).
    fn field(self, number: u64) -> Option<Kind> {
        use Kind::*;
        match (self, number) {
            (Schema::Network, 1) => Some(Msg(Schema::Auth)),
            (Schema::Auth, 1) => Some(Msg(Schema::Name)),
            (Schema::Auth, 2) => Some(Msg(Schema::Status)),
            (Schema::Auth, 3) => Some(Msg(Schema::ClientStatus)),
            (Schema::Auth, 4) => Some(Msg(Schema::Challenge)),
            (Schema::Auth, 5) => Some(Msg(Schema::Reply)),
            (Schema::Auth, 6) => Some(Msg(Schema::Ack)),
            (Schema::Name, 1 | 3) => Some(Str),
            (Schema::Name, 2) => Some(Msg(Schema::Flags)),
            (Schema::Name, 4) => Some(Varint),
            (Schema::Flags, 1) => Some(Varint),
            (Schema::Status | Schema::ClientStatus, 1) => Some(Varint),
            (Schema::Challenge, 1 | 4) => Some(Str),
            (Schema::Challenge, 2) => Some(Msg(Schema::Flags)),
            (Schema::Challenge, 3) => Some(Varint),
            (Schema::Reply, 1) => Some(Varint),
            (Schema::Reply, 2) => Some(Bytes),
            (Schema::Ack, 1) => Some(Bytes),
            _ => None,
        }
    }
}

/// Whether `payload` is a `NetworkMessage` holding only `auth`, as prost would decode it.
pub fn valid_frame(payload: &[u8]) -> bool {
    // Only `auth` (field 1) may appear at the top level before authentication.
    let mut ok = true;
    let walked = walk(payload, Schema::Network, 0, &mut |depth, number| {
        if depth == 0 && number != 1 {
            ok = false;
        }
    });
    walked && ok
}

fn varint(b: &[u8], i: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for k in 0..10 {
        let byte = *b.get(*i)?;
        *i += 1;
        if k == 9 && byte > 1 {
            return None;
        }
        v |= u64::from(byte & 0x7F) << (7 * k);
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Walks one message; `seen(depth, field)` is told of every field.
fn walk(b: &[u8], schema: Schema, depth: usize, seen: &mut dyn FnMut(usize, u64)) -> bool {
    if depth >= MAX_DEPTH {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let Some(key) = varint(b, &mut i) else {
            return false;
        };
        let number = key >> 3;
        let wire = key & 7;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return false;
        }
        seen(depth, number);
        let kind = schema.field(number);
        match wire {
            0 => {
                if varint(b, &mut i).is_none() {
                    return false;
                }
                if !matches!(kind, None | Some(Kind::Varint)) {
                    return false;
                }
            }
            1 | 5 => {
                let w = if wire == 1 { 8 } else { 4 };
                if kind.is_some() || b.len() - i < w {
                    return false;
                }
                i += w;
            }
            2 => {
                let Some(n) = varint(b, &mut i) else {
                    return false;
                };
                let Ok(n) = usize::try_from(n) else {
                    return false;
                };
                if n > b.len() - i {
                    return false;
                }
                let body = &b[i..i + n];
                i += n;
                match kind {
                    None | Some(Kind::Bytes) => {}
                    Some(Kind::Str) => {
                        if std::str::from_utf8(body).is_err() {
                            return false;
                        }
                    }
                    Some(Kind::Msg(inner)) => {
                        if !walk(body, inner, depth + 1, seen) {
                            return false;
                        }
                    }
                    Some(Kind::Varint) => return false,
                }
            }
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u64).to_be_bytes().to_vec();
        f.extend_from_slice(payload);
        f
    }

    fn feed(g: &mut Gate, bytes: &[u8]) -> Verdict {
        let mut rest = bytes;
        loop {
            let v = g.verdict();
            if v != Verdict::NeedMore || rest.is_empty() {
                return v;
            }
            let space = g.space();
            let n = space.len().min(rest.len()).min(1);
            space[..n].copy_from_slice(&rest[..n]);
            g.filled(n);
            rest = &rest[n..];
        }
    }

    /// A NameMessage as ractor_cluster sends it: auth { name { name, flags { version }, conn } }.
    fn name_frame() -> Vec<u8> {
        let name = b"node-a#abc@127.0.0.1";
        let conn = b"127.0.0.1:7100";
        let mut nm = vec![0x0A, name.len() as u8];
        nm.extend_from_slice(name);
        nm.extend_from_slice(&[0x12, 2, 0x08, 1]);
        nm.push(0x1A);
        nm.push(conn.len() as u8);
        nm.extend_from_slice(conn);
        let mut am = vec![0x0A, nm.len() as u8];
        am.extend_from_slice(&nm);
        let mut net = vec![0x0A, am.len() as u8];
        net.extend_from_slice(&am);
        frame(&net)
    }

    #[test]
    fn a_handshake_frame_is_released_byte_by_byte() {
        let f = name_frame();
        let mut g = Gate::default();
        assert_eq!(feed(&mut g, &f), Verdict::Release(f.len()));
        assert_eq!(g.buffered(), &f[..]);
        assert_eq!(g.wants(), 0);
    }

    #[test]
    fn an_empty_server_status_is_valid() {
        // auth { server_status {} }: status OK is the default, so the message is empty.
        let f = frame(&[0x0A, 2, 0x12, 0]);
        assert_eq!(feed(&mut Gate::default(), &f), Verdict::Release(f.len()));
    }

    #[test]
    fn a_non_auth_or_large_frame_is_held_and_garbage_refused() {
        // node message (field 2)
        assert_eq!(
            feed(&mut Gate::default(), &frame(&[0x12, 0])),
            Verdict::Hold
        );
        let mut big = (1u64 << 40).to_be_bytes().to_vec();
        big.push(0x0A);
        assert_eq!(feed(&mut Gate::default(), &big), Verdict::Hold);
        assert_eq!(
            feed(&mut Gate::default(), &frame(&[])),
            Verdict::Refuse(Refusal::Malformed)
        );
        // auth whose name string is not UTF-8
        let bad = frame(&[0x0A, 5, 0x0A, 3, 0x0A, 1, 0xFF]);
        assert_eq!(
            feed(&mut Gate::default(), &bad),
            Verdict::Refuse(Refusal::Malformed)
        );
        // a length running past the frame
        let bad = frame(&[0x0A, 9, 0x0A]);
        assert_eq!(
            feed(&mut Gate::default(), &bad),
            Verdict::Refuse(Refusal::Malformed)
        );
    }

    #[test]
    fn two_stranger_bytes_need_more_and_hold_nothing_else() {
        let mut g = Gate::default();
        assert_eq!(feed(&mut g, b"GE"), Verdict::NeedMore);
        assert_eq!(g.buffered(), b"GE");
        // "GET / HTTP/1.1": an enormous length prefix, then 'H' (not auth): held.
        assert_eq!(feed(&mut g, b"T / HTTP/1.1\r\n"), Verdict::Hold);
    }
}
