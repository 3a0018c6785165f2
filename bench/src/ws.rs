//! A lean WebSocket client for load generation: a hand-written HTTP/1.1 upgrade and RFC 6455
//! frame codec over a plain `TcpStream`.
//!
//! Why not tokio-tungstenite: a general client copies every frame into an owned `Message`,
//! validates UTF-8 and keeps two eagerly allocated buffers per connection. Here a reader owns
//! one small buffer (grown only when a frame does not fit) and hands out borrowed payloads, so
//! one `read` syscall yields every frame the server coalesced into it. The load generator's own
//! cost then stays well below the server's, which is what makes its figures mean something.
//!
//! Limits (fine for Gatehouse, which sends each message as one unfragmented text frame):
//! fragmented messages are refused with an error, extensions are never negotiated, the
//! `Sec-WebSocket-Accept` header is not verified (only the `101` status).

use anyhow::{anyhow, bail, Context as _, Result};
use base64::Engine as _;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::ops::Range;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpSocket;

/// Where to connect: the server's socket address and the request target (`/ws?…`).
#[derive(Debug, Clone)]
pub struct Target {
    /// Server address (IPv4 or IPv6 literal with port).
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host: String,
    /// Path and query.
    pub path: String,
}

impl Target {
    /// Parses `ws://HOST:PORT/path?query` where HOST is an IP literal (this tool only targets
    /// loopback).
    pub fn parse(url: &str) -> Result<Target> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| anyhow!("url must start with ws:// (got {url})"))?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let addr: SocketAddr = host
            .parse()
            .with_context(|| format!("`{host}` is not IP:PORT"))?;
        Ok(Target {
            addr,
            host: host.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// The source address for connection number `i`: spread over `127.0.0.2 ..` so that each
/// source IP uses few ephemeral ports (and stays far below the node's per-IP cap).
pub fn source_addr(i: usize, source_ips: usize) -> SocketAddr {
    let base = u32::from(Ipv4Addr::new(127, 0, 0, 2));
    let off = u32::try_from(i % source_ips.max(1)).unwrap_or(0);
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(base + off), 0))
}

/// One frame found in the read buffer. Payload ranges index [`Reader::slice`] and stay valid
/// until the next [`Reader::fill`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A text frame's payload (not validated as UTF-8).
    Text(Range<usize>),
    /// A binary frame's payload.
    Binary(Range<usize>),
    /// A ping; answer with [`Writer::pong`].
    Ping(Range<usize>),
    /// A pong.
    Pong,
    /// A close frame with its code (1005 when it carried none).
    Close(u16),
}

/// The reading half: one buffer, frames parsed in place.
pub struct Reader {
    rd: OwnedReadHalf,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// The writing half: masks and writes client frames.
pub struct Writer {
    wr: OwnedWriteHalf,
    rng: u64,
    out: Vec<u8>,
}

/// Opens a TCP connection from `source` (port 0 = any) to `target`, performs the upgrade and
/// returns both halves; the reader may already hold the first frames (the `welcome`).
pub async fn connect(
    target: &Target,
    source: Option<SocketAddr>,
    read_buffer: usize,
    seed: u64,
) -> Result<(Reader, Writer)> {
    let sock = if target.addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(src) = source {
        sock.bind(src)
            .with_context(|| format!("bind source address {src}"))?;
    }
    let stream = sock
        .connect(target.addr)
        .await
        .with_context(|| format!("connect to {}", target.addr))?;
    stream.set_nodelay(true)?;
    let (rd, wr) = stream.into_split();
    let mut writer = Writer {
        wr,
        rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        out: Vec::new(),
    };
    let mut key = [0u8; 16];
    for chunk in key.chunks_mut(8) {
        let r = writer.next_rand().to_le_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    let key = base64::engine::general_purpose::STANDARD.encode(key);
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        target.path, target.host
    );
    writer.wr.write_all(req.as_bytes()).await?;

    let mut reader = Reader {
        rd,
        buf: vec![0; read_buffer.max(512)],
        start: 0,
        end: 0,
    };
    // Read the response head; anything after it is already WebSocket data.
    loop {
        if let Some(pos) = find(&reader.buf[..reader.end], b"\r\n\r\n") {
            let head = &reader.buf[..pos];
            let status = head.split(|&b| b == b'\r').next().unwrap_or_default();
            if !status.starts_with(b"HTTP/1.1 101") {
                bail!(
                    "upgrade refused: {}",
                    String::from_utf8_lossy(status).trim()
                );
            }
            reader.start = pos + 4;
            break;
        }
        if reader.end == reader.buf.len() {
            bail!(
                "upgrade response head larger than {} bytes",
                reader.buf.len()
            );
        }
        let n = reader.rd.read(&mut reader.buf[reader.end..]).await?;
        if n == 0 {
            bail!("connection closed during the upgrade");
        }
        reader.end += n;
    }
    Ok((reader, writer))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Reader {
    /// The bytes of a payload range returned by [`Reader::try_frame`].
    pub fn slice(&self, r: &Range<usize>) -> &[u8] {
        &self.buf[r.clone()]
    }

    /// The next complete frame already in the buffer, without I/O.
    pub fn try_frame(&mut self) -> Result<Option<Frame>> {
        let avail = &self.buf[self.start..self.end];
        if avail.len() < 2 {
            return Ok(None);
        }
        let b0 = avail[0];
        let b1 = avail[1];
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0F;
        let masked = b1 & 0x80 != 0;
        let (len, mut hdr) = match b1 & 0x7F {
            126 => {
                if avail.len() < 4 {
                    return Ok(None);
                }
                (usize::from(u16::from_be_bytes([avail[2], avail[3]])), 4)
            }
            127 => {
                if avail.len() < 10 {
                    return Ok(None);
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&avail[2..10]);
                (usize::try_from(u64::from_be_bytes(b))?, 10)
            }
            n => (usize::from(n), 2),
        };
        let mask_at = hdr;
        if masked {
            hdr += 4;
        }
        let total = hdr + len;
        if avail.len() < total {
            // Make sure the whole frame can fit once read.
            if total > self.buf.len() {
                self.compact();
                self.buf.resize(total, 0);
            }
            return Ok(None);
        }
        if !fin || opcode == 0 {
            bail!("fragmented frames are not supported by this client");
        }
        let p0 = self.start + hdr;
        let range = p0..p0 + len;
        if masked {
            let key = [
                avail[mask_at],
                avail[mask_at + 1],
                avail[mask_at + 2],
                avail[mask_at + 3],
            ];
            for (i, b) in self.buf[range.clone()].iter_mut().enumerate() {
                *b ^= key[i & 3];
            }
        }
        self.start += total;
        let frame = match opcode {
            1 => Frame::Text(range),
            2 => Frame::Binary(range),
            8 => {
                let p = &self.buf[range];
                let code = if p.len() >= 2 {
                    u16::from_be_bytes([p[0], p[1]])
                } else {
                    1005
                };
                Frame::Close(code)
            }
            9 => Frame::Ping(range),
            10 => Frame::Pong,
            op => bail!("unknown opcode {op}"),
        };
        Ok(Some(frame))
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Reads more bytes from the socket; returns how many (0 = end of stream). Cancel-safe:
    /// the buffer indices change only after a read completed. Payload ranges handed out
    /// earlier become invalid.
    pub async fn fill(&mut self) -> Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() || self.start > self.buf.len() / 2 {
            self.compact();
        }
        if self.end == self.buf.len() {
            // A frame header announced more than fits: try_frame resized; this is a guard.
            let n = self.buf.len();
            self.buf.resize(n * 2, 0);
        }
        let n = self.rd.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// The next frame, reading as needed. Errors on end of stream.
    pub async fn next(&mut self) -> Result<Frame> {
        loop {
            if let Some(f) = self.try_frame()? {
                return Ok(f);
            }
            if self.fill().await? == 0 {
                bail!("connection closed by the server");
            }
        }
    }

    /// The next text frame's payload, answering pings with `writer` and failing on close.
    pub async fn next_text(&mut self, writer: &mut Writer) -> Result<Vec<u8>> {
        loop {
            match self.next().await? {
                Frame::Text(r) => return Ok(self.slice(&r).to_vec()),
                Frame::Ping(r) => {
                    let p = self.slice(&r).to_vec();
                    writer.pong(&p).await?;
                }
                Frame::Close(code) => bail!("server closed the connection with {code}"),
                Frame::Binary(_) | Frame::Pong => {}
            }
        }
    }
}

impl Writer {
    fn next_rand(&mut self) -> u64 {
        // xorshift64*: masks need not be cryptographic for a load generator on loopback.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Appends one masked frame to the pending output (sent by [`Writer::flush`]).
    pub fn push(&mut self, opcode: u8, payload: &[u8]) {
        self.out.push(0x80 | opcode);
        let len = payload.len();
        if len < 126 {
            // `len < 126` fits in a byte.
            self.out.push(0x80 | u8::try_from(len).unwrap_or(125));
        } else if let Ok(l) = u16::try_from(len) {
            self.out.push(0x80 | 126);
            self.out.extend_from_slice(&l.to_be_bytes());
        } else {
            self.out.push(0x80 | 127);
            self.out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let key = u32::try_from(self.next_rand() >> 32)
            .unwrap_or(0x5A5A_5A5A)
            .to_be_bytes();
        self.out.extend_from_slice(&key);
        self.out
            .extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i & 3]));
    }

    /// Appends a text frame.
    pub fn push_text(&mut self, payload: &[u8]) {
        self.push(1, payload);
    }

    /// Writes everything pushed so far.
    pub async fn flush(&mut self) -> Result<()> {
        if !self.out.is_empty() {
            self.wr.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Sends one text frame now.
    pub async fn send_text(&mut self, payload: &[u8]) -> Result<()> {
        self.push_text(payload);
        self.flush().await
    }

    /// Answers a ping.
    pub async fn pong(&mut self, payload: &[u8]) -> Result<()> {
        self.push(10, payload);
        self.flush().await
    }
}

/// Parses the unsigned integer after the first occurrence of `key` (e.g. `"seq":`).
pub fn find_u64(hay: &[u8], key: &[u8]) -> Option<u64> {
    let at = find(hay, key)? + key.len();
    let digits = hay[at..].iter().take_while(|b| b.is_ascii_digit());
    let mut v: u64 = 0;
    let mut any = false;
    for d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        any = true;
    }
    any.then_some(v)
}

/// Position of `needle` in `hay`.
pub fn find_at(hay: &[u8], needle: &[u8]) -> Option<usize> {
    find(hay, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        let t = Target::parse("ws://127.0.0.1:8080/ws?x=1").expect("valid url");
        assert_eq!(t.addr, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(t.path, "/ws?x=1");
        assert!(Target::parse("http://127.0.0.1:1/ws").is_err());
    }

    #[test]
    fn spreads_sources() {
        assert_eq!(source_addr(0, 10).to_string(), "127.0.0.2:0");
        assert_eq!(source_addr(13, 10).to_string(), "127.0.0.5:0");
        assert_eq!(source_addr(300, 1000).to_string(), "127.0.1.46:0");
    }

    #[test]
    fn finds_numbers() {
        let m = br#"{"op":"message","room":"r","seq":58,"epoch":"e","data":{"t":1700000000123456,"p":"x"}}"#;
        assert_eq!(find_u64(m, br#""seq":"#), Some(58));
        assert_eq!(find_u64(m, br#""data":{"t":"#), Some(1_700_000_000_123_456));
        assert_eq!(find_u64(m, br#""nope":"#), None);
    }
}
