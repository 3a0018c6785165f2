//! The PROXY protocol header (HAProxy's v1 text and v2 binary forms) that a trusted load
//! balancer puts in front of a relayed connection, naming the real client. Parsing is the
//! `ppp` crate's; this module decides what a parse means for the node: the client's address,
//! "wait for more bytes", or a refusal. Only connections from `node.trusted_proxies` are read
//! this way ([`super::front`]); from anyone else a PROXY header is just a bad request.
//!
//! Owns the interpretation of the header; reading the socket is [`super::front`]'s.

use ppp::{v1, v2, HeaderResult, PartialResult};
use std::net::{IpAddr, SocketAddr};

/// Longest header accepted (a v2 header with the TLVs cloud balancers add stays far below;
/// a v1 header is at most 107 bytes).
pub const MAX_LEN: usize = 1024;

/// What the first bytes of a proxied connection say.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A complete header of `len` bytes; `client` is the relayed client, or `None` when the
    /// proxy speaks for itself (v2 `LOCAL`, a health check; v1 `UNKNOWN`).
    Header {
        /// Bytes of the header, to be read off the socket.
        len: usize,
        /// The real client's address.
        client: Option<SocketAddr>,
    },
    /// Not enough bytes yet.
    Incomplete,
    /// Not a PROXY header (or one too long): the connection is refused.
    Invalid,
}

/// Parses the header at the start of `bytes`.
pub fn parse(bytes: &[u8]) -> Parsed {
    let result = HeaderResult::parse(bytes);
    if result.is_incomplete() {
        return if bytes.len() >= MAX_LEN {
            Parsed::Invalid
        } else {
            Parsed::Incomplete
        };
    }
    match result {
        HeaderResult::V1(Ok(h)) => {
            let client = match h.addresses {
                v1::Addresses::Tcp4(a) => {
                    Some(SocketAddr::new(IpAddr::V4(a.source_address), a.source_port))
                }
                v1::Addresses::Tcp6(a) => {
                    Some(SocketAddr::new(IpAddr::V6(a.source_address), a.source_port))
                }
                v1::Addresses::Unknown => None,
            };
            Parsed::Header {
                len: h.header.len(),
                client,
            }
        }
        HeaderResult::V2(Ok(h)) => {
            let client = match (h.command, h.addresses) {
                (v2::Command::Local, _) => None,
                (v2::Command::Proxy, v2::Addresses::IPv4(a)) => {
                    Some(SocketAddr::new(IpAddr::V4(a.source_address), a.source_port))
                }
                (v2::Command::Proxy, v2::Addresses::IPv6(a)) => {
                    Some(SocketAddr::new(IpAddr::V6(a.source_address), a.source_port))
                }
                (v2::Command::Proxy, _) => None,
            };
            if h.len() > MAX_LEN {
                return Parsed::Invalid;
            }
            Parsed::Header {
                len: h.len(),
                client,
            }
        }
        HeaderResult::V1(Err(_)) | HeaderResult::V2(Err(_)) => Parsed::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_names_the_client_and_its_length_leaves_the_request_after_it() {
        let head = b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 8080\r\n";
        let mut bytes = head.to_vec();
        bytes.extend_from_slice(b"GET /ws HTTP/1.1\r\n");
        assert_eq!(
            parse(&bytes),
            Parsed::Header {
                len: head.len(),
                client: Some("203.0.113.7:51234".parse().unwrap())
            }
        );
        let v6 = b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 443\r\n";
        assert_eq!(
            parse(v6),
            Parsed::Header {
                len: v6.len(),
                client: Some("[2001:db8::1]:4000".parse().unwrap())
            }
        );
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n"),
            Parsed::Header {
                len: 15,
                client: None
            }
        );
    }

    #[test]
    fn v2_proxy_and_local_commands() {
        let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        h.extend_from_slice(&[0x21, 0x11, 0, 12]);
        h.extend_from_slice(&[198, 51, 100, 9, 10, 0, 0, 1]);
        h.extend_from_slice(&[0x1F, 0x90, 0x1F, 0x90]);
        let mut bytes = h.clone();
        bytes.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(
            parse(&bytes),
            Parsed::Header {
                len: h.len(),
                client: Some("198.51.100.9:8080".parse().unwrap())
            }
        );
        let mut local = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        assert_eq!(
            parse(&local),
            Parsed::Header {
                len: 16,
                client: None
            }
        );
    }

    #[test]
    fn partial_headers_wait_and_anything_else_is_refused() {
        assert_eq!(parse(b"PROXY TCP4 1.2.3.4"), Parsed::Incomplete);
        assert_eq!(parse(b"\r\n\r\n\0\r\nQU"), Parsed::Incomplete);
        assert_eq!(parse(b"GET /ws HTTP/1.1\r\n\r\n"), Parsed::Invalid);
        assert_eq!(
            parse(b"PROXY TCP4 not-an-ip 1.2.3.4 1 2\r\n"),
            Parsed::Invalid
        );
        // A v1 line that never ends is refused once it is longer than any valid one.
        let long = [b"PROXY TCP4 ".as_slice(), &[b'1'; MAX_LEN]].concat();
        assert_eq!(parse(&long), Parsed::Invalid);
    }
}
