//! The public listener's front door: every accepted socket comes here first.
//!
//! A socket whose first bytes are a complete WebSocket upgrade request for `/ws` is served
//! here: the head is parsed in place (`httparse`) from a per-thread scratch buffer, admitted
//! ([`super::ws::admit`]), answered, and the socket goes to its connection task
//! ([`crate::connection`]), with the `101` written together with the `welcome`. Nothing of
//! actix-http is built for it: no HTTP/1 dispatcher, no 8 KiB read and write buffers, no
//! dispatcher task. Every other socket (plain HTTP, an upgrade for another path, a head that
//! has not fully arrived or is larger than the scratch buffer) is handed untouched to
//! actix-http's service, since the head was only peeked at (`MSG_PEEK`), not read.
//!
//! Why: the dispatcher's buffers and task made the handshake allocate and free three blocks
//! of 4–16 KiB per connection (an `mmap` and `munmap` each under the allocator settings of
//! [`crate::memory`]) and parse the head into a pooled request first; see README,
//! Performance.
//!
//! Owns only the handshake of `/ws` upgrades; the refusal rules are [`super::ws`]'s, the
//! connection is [`crate::connection`]'s.

use super::error::ApiError;
use crate::context::NodeCtx;
use actix_http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_http::{Method, RequestHead, Version};
use actix_service::{Service, ServiceFactory};
use actix_web::rt::net::TcpStream;
use actix_web::ResponseError;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, ReadBuf};

/// Most bytes of a request head served here; a larger head goes to actix-http.
pub const HEAD_MAX: usize = 4096;
/// Most headers of a request head served here; more go to actix-http.
const HEADERS_MAX: usize = 32;
/// How long a new connection may take to send its first bytes (actix-http's default request
/// timeout).
const FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(5);

thread_local! {
    /// The bytes of the head being looked at: borrowed within one poll only.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; HEAD_MAX].into_boxed_slice());
}

/// What the first bytes of a connection are.
enum First {
    /// A complete upgrade request for `/ws` of `len` bytes.
    Upgrade { head: Box<RequestHead>, len: usize },
    /// Anything else: actix-http serves it.
    Other,
    /// The peer closed or the socket failed before sending a head.
    Gone,
}

/// The public listener's service factory (sockets with their peer's address, from
/// [`super::workers`]): `/ws` upgrades here, everything else to `http`.
pub fn service<F>(
    ctx: Arc<NodeCtx>,
    http: F,
) -> impl ServiceFactory<
    (TcpStream, SocketAddr),
    Config = (),
    Response = (),
    Error = F::Error,
    InitError = F::InitError,
>
where
    F: ServiceFactory<TcpStream, Config = (), Response = ()>,
    F::Service: 'static,
    F::Future: 'static,
{
    actix_service::fn_factory(move || {
        let inner = http.new_service(());
        let ctx = ctx.clone();
        async move {
            let inner = Rc::new(inner.await?);
            Ok(actix_service::fn_service(
                move |(io, peer): (TcpStream, SocketAddr)| {
                    serve(ctx.clone(), inner.clone(), io, peer)
                },
            ))
        }
    })
}

async fn serve<S>(
    ctx: Arc<NodeCtx>,
    http: Rc<S>,
    io: TcpStream,
    peer: SocketAddr,
) -> Result<(), S::Error>
where
    S: Service<TcpStream, Response = ()>,
{
    let first = tokio::time::timeout(FIRST_BYTES_TIMEOUT, first_bytes(&io, peer)).await;
    match first {
        Ok(First::Upgrade { head, len }) => {
            Box::pin(upgrade(ctx, io, head, len)).await;
            Ok(())
        }
        Ok(First::Gone) => Ok(()),
        // Anything else, or nothing in time (actix-http then answers and closes as it would
        // have). Boxed: the dispatcher's future is large, and this future is every handshake's
        // task.
        Ok(First::Other) | Err(_) => Box::pin(http.call(io)).await,
    }
}

/// Unacknowledged data (including a zero window that never opens) for this long aborts the TCP
/// connection: a client that stops reading cannot hold a socket after its close.
pub const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle time before the first keepalive probe, and time between probes.
pub const KEEPALIVE: (Duration, Duration) = (Duration::from_secs(60), Duration::from_secs(10));

/// Socket options for every client socket, set once on the public listener: Linux copies them
/// to every socket it accepts (checked by a test below), which saves five `setsockopt` calls
/// per connection. TCP_USER_TIMEOUT and keepalive make dead or non-reading peers release their
/// sockets; TCP_NODELAY is for latency.
pub fn tune_listener(listener: &std::net::TcpListener) -> std::io::Result<()> {
    let sock = socket2::SockRef::from(listener);
    sock.set_tcp_nodelay(true)?;
    sock.set_tcp_user_timeout(Some(TCP_USER_TIMEOUT))?;
    let ka = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE.0)
        .with_interval(KEEPALIVE.1);
    sock.set_tcp_keepalive(&ka)
}

/// Waits for the connection's first bytes and classifies them without reading them.
async fn first_bytes(io: &TcpStream, peer: SocketAddr) -> First {
    std::future::poll_fn(|cx| {
        SCRATCH.with_borrow_mut(|buf| {
            let mut rb = ReadBuf::new(&mut buf[..]);
            match io.poll_peek(cx, &mut rb) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Err(_)) => Poll::Ready(First::Gone),
                Poll::Ready(Ok(0)) => Poll::Ready(First::Gone),
                Poll::Ready(Ok(n)) => Poll::Ready(classify(&buf[..n], Some(peer))),
            }
        })
    })
    .await
}

/// A complete `GET /ws…` upgrade head at the start of `bytes`, as actix-http would have
/// parsed it; anything else is [`First::Other`].
fn classify(bytes: &[u8], peer: Option<std::net::SocketAddr>) -> First {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        _ => return First::Other,
    };
    let path = req.path.unwrap_or_default();
    let is_ws_path = path == "/ws" || path.starts_with("/ws?");
    if req.method != Some("GET") || req.version != Some(1) || !is_ws_path {
        return First::Other;
    }
    let Ok(uri) = path.parse() else {
        return First::Other;
    };
    let mut map = HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) else {
            return First::Other;
        };
        map.append(name, value);
    }
    let mut head = Box::new(RequestHead::default());
    head.method = Method::GET;
    head.uri = uri;
    head.version = Version::HTTP_11;
    head.headers = map;
    head.peer_addr = peer;
    // Only upgrades that actix-http would accept are served here, so every refusal of a
    // malformed handshake keeps actix-http's exact answer.
    if actix_http::ws::verify_handshake(&head).is_err() {
        return First::Other;
    }
    First::Upgrade { head, len }
}

/// Admits the client, consumes the head and starts the connection (or refuses it).
async fn upgrade(ctx: Arc<NodeCtx>, io: TcpStream, head: Box<RequestHead>, len: usize) {
    if !consume(&io, len).await {
        return;
    }
    let acc = match super::ws::admit(&ctx, &head) {
        Ok(acc) => acc,
        Err(e) => return refuse(io, e).await,
    };
    let out = switching_protocols(&head, true);
    // The `101` is not written here: it goes out in one `write` with the `welcome`.
    crate::connection::spawn(ctx, io, &[], &out, acc);
}

/// The encoded `101 Switching Protocols` answer to a verified upgrade head; for a client
/// (`client`), with the `gatehouse.v1` subprotocol when the client offered it.
pub(super) fn switching_protocols(head: &RequestHead, client: bool) -> Vec<u8> {
    let mut res = actix_http::ws::handshake_response(head);
    if client && super::ws::offers_subprotocol(head) {
        res.insert_header((
            actix_http::header::SEC_WEBSOCKET_PROTOCOL,
            super::ws::SUBPROTOCOL,
        ));
    }
    let res = res.finish();
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
    for (name, value) in res.headers() {
        push_header(&mut out, name.as_str(), value.as_bytes());
    }
    // actix-http writes `Connection` from the response's connection type, not from its headers.
    push_header(&mut out, "connection", b"upgrade");
    out.extend_from_slice(b"\r\n");
    out
}

/// Reads (and drops) the `len` bytes of the head that were peeked at.
async fn consume(io: &TcpStream, mut len: usize) -> bool {
    while len > 0 {
        if io.readable().await.is_err() {
            return false;
        }
        let read = SCRATCH.with_borrow_mut(|buf| io.try_read(&mut buf[..len.min(HEAD_MAX)]));
        match read {
            Ok(0) => return false,
            Ok(n) => len -= n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
    }
    true
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Writes the refusal (status and JSON body, as everywhere in the API) and closes.
pub(super) async fn refuse(mut io: TcpStream, err: ApiError) {
    let res = err.error_response();
    let status = res.status();
    let (res, body) = res.into_parts();
    let Ok(body) = actix_web::body::to_bytes(body).await else {
        return;
    };
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .as_bytes(),
    );
    for (name, value) in res.headers() {
        push_header(&mut out, name.as_str(), value.as_bytes());
    }
    push_header(
        &mut out,
        "content-length",
        body.len().to_string().as_bytes(),
    );
    push_header(&mut out, "connection", b"close");
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    if io.write_all(&out).await.is_err() {
        return;
    }
    crate::websocket::linger_close(io, Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_sockets_inherit_the_listeners_options() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        tune_listener(&listener).unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let sock = socket2::SockRef::from(&accepted);
        assert!(sock.tcp_nodelay().unwrap());
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_user_timeout().unwrap(), Some(TCP_USER_TIMEOUT));
        assert_eq!(sock.tcp_keepalive_time().unwrap(), KEEPALIVE.0);
        assert_eq!(sock.tcp_keepalive_interval().unwrap(), KEEPALIVE.1);
    }

    const UPGRADE: &[u8] = b"GET /ws?token=abc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\nOrigin: https://a.example\r\n\r\n";

    #[test]
    fn a_complete_ws_upgrade_is_served_here_with_its_head() {
        let mut bytes = UPGRADE.to_vec();
        bytes.extend_from_slice(&[0x81, 0x80, 1, 2, 3, 4]);
        let First::Upgrade { head, len } = classify(&bytes, None) else {
            panic!("an upgrade for /ws");
        };
        assert_eq!(
            len,
            UPGRADE.len(),
            "the frame after the head is not part of it"
        );
        assert_eq!(head.uri.path(), "/ws");
        assert_eq!(head.uri.query(), Some("token=abc"));
        assert_eq!(head.headers.get("origin").unwrap(), "https://a.example");
        assert!(head.upgrade());
    }

    #[test]
    fn the_101_carries_upgrade_connection_accept_and_the_subprotocol() {
        let with_proto = String::from_utf8_lossy(UPGRADE).replace(
            "Origin:",
            "Sec-WebSocket-Protocol: gatehouse.v1, token.x\r\nOrigin:",
        );
        let First::Upgrade { head, .. } = classify(with_proto.as_bytes(), None) else {
            panic!("an upgrade for /ws");
        };
        let res = String::from_utf8(switching_protocols(&head, true)).unwrap();
        let res = res.to_ascii_lowercase();
        assert!(res.starts_with("http/1.1 101 switching protocols\r\n"));
        assert!(res.contains("\r\nupgrade: websocket\r\n"));
        assert!(res.contains("\r\nconnection: upgrade\r\n"));
        // RFC 6455 §1.3's example key and answer.
        assert!(res.contains("\r\nsec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n"));
        assert!(res.contains("\r\nsec-websocket-protocol: gatehouse.v1\r\n"));
        assert!(res.ends_with("\r\n\r\n"));
    }

    #[test]
    fn anything_else_goes_to_actix_http() {
        let other = |b: &[u8]| matches!(classify(b, None), First::Other);
        // Not yet complete.
        assert!(other(&UPGRADE[..UPGRADE.len() - 2]));
        // Other paths, methods and plain requests.
        assert!(other(&[b"GET /wsx".as_slice(), &UPGRADE[7..]].concat()));
        assert!(other(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(other(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(other(&[b"POST".as_slice(), &UPGRADE[3..]].concat()));
        // A handshake actix-http would refuse keeps actix-http's answer.
        let bad_version = String::from_utf8_lossy(UPGRADE).replace("Version: 13", "Version: 8");
        assert!(other(bad_version.as_bytes()));
        assert!(other(b"\x16\x03\x01 not http at all"));
    }
}
