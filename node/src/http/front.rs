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
//! [`crate::memory`]) and parse the head into a pooled request first; see
//! `bench/results/performance-history.md`.
//!
//! Owns only the handshake of `/ws` upgrades; the refusal rules are [`super::ws`]'s, the
//! connection is [`crate::connection`]'s.

use super::error::ApiError;
use super::pending::{Dropped, Pending};
use super::proxy_header;
use crate::context::NodeCtx;
use actix_http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_http::{Method, Protocol, RequestHead, Version};
use actix_service::{Service, ServiceFactory};
use actix_web::rt::net::TcpStream;
use actix_web::ResponseError;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, Interest};

/// Most bytes of a request head served here; a larger head goes to actix-http.
pub const HEAD_MAX: usize = 4096;
/// Most headers of a request head served here; more go to actix-http.
const HEADERS_MAX: usize = 32;

thread_local! {
    /// The bytes of the head being looked at: borrowed within one poll only.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; HEAD_MAX].into_boxed_slice());
}

/// What the first bytes of a connection are.
enum First {
    /// A complete upgrade request for `/ws` of `len` bytes.
    Upgrade { head: Box<RequestHead>, len: usize },
    /// Anything else with a complete head (or a head too large to look at here): actix-http
    /// serves it.
    Other,
    /// The peer closed or the socket failed before sending a head.
    Gone,
}

/// What actix-http's service is handed: the socket, HTTP/1, and the client's address.
pub type HttpSocket = (TcpStream, Protocol, Option<SocketAddr>);

/// The TCP peer of an HTTP connection (put in the connection's extensions by the service's
/// `on_connect_ext`): a request whose `peer_addr` differs was relayed by a trusted proxy.
#[derive(Debug, Clone, Copy)]
pub struct TcpPeer(pub Option<SocketAddr>);

/// How a socket's time before admission ended without a head to serve.
enum Ended {
    /// Closed or failed.
    Gone,
    /// Dropped (counted) for this reason.
    Dropped(Dropped),
}

/// The public listener's service factory (sockets with their peer's address, from
/// [`super::workers`]): `/ws` upgrades here, everything else to `http` (with the client's
/// address: the TCP peer's, or the one a trusted proxy's PROXY header named). Every socket is
/// held to the caps of [`Pending`] until it is admitted or served.
pub fn service<F>(
    ctx: Arc<NodeCtx>,
    pending: Arc<Pending>,
    http: F,
) -> impl ServiceFactory<
    (TcpStream, SocketAddr),
    Config = (),
    Response = (),
    Error = F::Error,
    InitError = F::InitError,
>
where
    F: ServiceFactory<HttpSocket, Config = (), Response = ()>,
    F::Service: 'static,
    F::Future: 'static,
{
    actix_service::fn_factory(move || {
        let inner = http.new_service(());
        let ctx = ctx.clone();
        let pending = pending.clone();
        async move {
            let inner = Rc::new(inner.await?);
            Ok(actix_service::fn_service(
                move |(io, peer): (TcpStream, SocketAddr)| {
                    serve(ctx.clone(), pending.clone(), inner.clone(), io, peer)
                },
            ))
        }
    })
}

async fn serve<S>(
    ctx: Arc<NodeCtx>,
    pending: Arc<Pending>,
    http: Rc<S>,
    io: TcpStream,
    tcp_peer: SocketAddr,
) -> Result<(), S::Error>
where
    S: Service<HttpSocket, Response = ()>,
{
    let Some(mut ticket) = pending.enter() else {
        return Ok(());
    };
    let limits = &ctx.config.limits;
    let eviction = ticket.eviction();
    let before_head = async {
        let peer = client_address(&ctx, &io, tcp_peer).await?;
        if !ticket.client(peer.ip()) {
            return Err(Ended::Dropped(Dropped::PerIp));
        }
        match first_bytes(&io, peer).await {
            First::Gone => Err(Ended::Gone),
            first => Ok((peer, first)),
        }
    };
    let outcome = tokio::select! {
        biased;
        () = eviction.notified() => Err(Ended::Dropped(Dropped::Evicted)),
        r = tokio::time::timeout(limits.handshake_timeout, before_head) => {
            r.unwrap_or(Err(Ended::Dropped(Dropped::Deadline)))
        }
    };
    match outcome {
        Ok((_, First::Upgrade { head, len })) => {
            // Admission's caps take over from here.
            drop(ticket);
            Box::pin(upgrade(ctx, io, head, len)).await;
            Ok(())
        }
        Ok((peer, _)) => {
            // Boxed: the dispatcher's future is large, and this future is every handshake's
            // task.
            ticket.hand_to_http();
            let served = Box::pin(http.call((io, Protocol::Http1, Some(peer)))).await;
            drop(ticket);
            served
        }
        Err(Ended::Gone) => Ok(()),
        Err(Ended::Dropped(why)) => {
            // Evicted, refused (per IP; they were counted there) or out of time. Nothing is
            // written: a stranger that sends no head gets no answer, and the socket closes.
            if why != Dropped::PerIp && why != Dropped::Evicted {
                pending.dropped(why);
            }
            tracing::debug!(peer = %tcp_peer, reason = why.as_str(), "socket dropped before its head");
            Ok(())
        }
    }
}

/// The client's address: the TCP peer's, or, for a connection from a trusted proxy with
/// `node.proxy_protocol` on, the one its PROXY header names (the header is read off the
/// socket; a proxy's own connection, v2 `LOCAL` or v1 `UNKNOWN`, keeps the TCP peer).
async fn client_address(
    ctx: &NodeCtx,
    io: &TcpStream,
    tcp_peer: SocketAddr,
) -> Result<SocketAddr, Ended> {
    let node = &ctx.config.node;
    let ip = tcp_peer.ip().to_canonical();
    if !node.proxy_protocol || !node.trusted_proxies.iter().any(|n| n.contains(&ip)) {
        return Ok(tcp_peer);
    }
    let parsed = peek_until(io, |bytes| match proxy_header::parse(bytes) {
        proxy_header::Parsed::Incomplete => None,
        p => Some(p),
    })
    .await;
    match parsed {
        Some(proxy_header::Parsed::Header { len, client }) => {
            if !consume(io, len).await {
                return Err(Ended::Gone);
            }
            Ok(client.unwrap_or(tcp_peer))
        }
        Some(_) => {
            tracing::warn!(peer = %tcp_peer, "a trusted proxy's connection did not start with a PROXY header (node.proxy_protocol): closed");
            Err(Ended::Dropped(Dropped::BadProxyHeader))
        }
        None => Err(Ended::Gone),
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

/// Peeks at the socket's first bytes (into the thread's scratch buffer, without reading them)
/// until `judge` makes something of them, waiting for more bytes each time it says `None`.
/// `None` when the peer closed or the socket failed first.
async fn peek_until<T>(io: &TcpStream, mut judge: impl FnMut(&[u8]) -> Option<T>) -> Option<T> {
    let mut seen = 0usize;
    loop {
        let step = io
            .async_io(Interest::READABLE, || {
                SCRATCH.with_borrow_mut(|buf| {
                    let n = nix::sys::socket::recv(
                        io.as_raw_fd(),
                        &mut buf[..],
                        nix::sys::socket::MsgFlags::MSG_PEEK,
                    )
                    .map_err(std::io::Error::from)?;
                    if n == 0 {
                        return Ok(None);
                    }
                    if n == seen && n < buf.len() {
                        // Nothing new since the last look: wait for the next bytes (this
                        // clears the readiness tokio saw, and only that).
                        return Err(std::io::ErrorKind::WouldBlock.into());
                    }
                    seen = n;
                    Ok(Some(judge(&buf[..n])))
                })
            })
            .await;
        match step {
            Ok(Some(Some(t))) => return Some(t),
            Ok(Some(None)) => {}
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Waits for the connection's request head and classifies it without reading it.
async fn first_bytes(io: &TcpStream, peer: SocketAddr) -> First {
    peek_until(io, |bytes| classify(bytes, Some(peer)))
        .await
        .unwrap_or(First::Gone)
}

/// A complete `GET /ws…` upgrade head at the start of `bytes`, as actix-http would have
/// parsed it, or [`First::Other`] for any other complete head, for bytes that are not HTTP, and
/// for a head larger than [`HEAD_MAX`] (actix-http serves those); `None` while the head is
/// still arriving.
fn classify(bytes: &[u8], peer: Option<std::net::SocketAddr>) -> Option<First> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if bytes.len() < HEAD_MAX => return None,
        _ => return Some(First::Other),
    };
    Some(classify_head(&req, len, peer))
}

fn classify_head(req: &httparse::Request<'_, '_>, len: usize, peer: Option<SocketAddr>) -> First {
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
    crate::connection::spawn(ctx.conn.clone(), io, &[], &out, acc);
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
    crate::websocket::linger_close(&io, Duration::from_secs(1)).await;
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
        let Some(First::Upgrade { head, len }) = classify(&bytes, None) else {
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
        let Some(First::Upgrade { head, .. }) = classify(with_proto.as_bytes(), None) else {
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
        let other = |b: &[u8]| matches!(classify(b, None), Some(First::Other));
        // Not yet complete: wait for the rest.
        assert!(classify(&UPGRADE[..UPGRADE.len() - 2], None).is_none());
        assert!(classify(b"GET /ws HT", None).is_none());
        // Still incomplete when the scratch buffer is full: actix-http takes it.
        let huge = [b"GET /ws HTTP/1.1\r\nX: ".as_slice(), &[b'a'; HEAD_MAX]].concat();
        assert!(other(&huge[..HEAD_MAX]));
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
