//! Fuzz target for the cluster handshake gate, `node/src/cluster/gate.rs` (compiled here on its
//! own: it is std-only), the check that decides which bytes of a cluster link not yet
//! authenticated reach ractor_cluster's frame decoder.
//!
//! The input's first byte picks a chunk size (1..=64); the rest is fed to a fresh gate in chunks
//! of that size, as a socket might deliver it. Properties checked on every input:
//! - the gate never panics and never buffers more than `HEADER + MAX_HANDSHAKE_FRAME` bytes, nor
//!   asks for bytes past that;
//! - a released frame is exactly what was fed (in order), its length prefix matches, and it
//!   decodes with prost 0.14.6 (ractor_cluster 0.16.5's) into the library's `NetworkMessage`
//!   schema (mirrored below from its `meta.proto` and `auth.proto`) as an `auth` message: what
//!   the gate lets through, the library's decoder accepts;
//! - the verdicts do not depend on how the bytes were chunked (the same input fed one byte at a
//!   time gives the same sequence of released frames and the same final verdict).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../node/src/cluster/gate.rs"]
#[allow(dead_code)]
mod gate;

use gate::{Gate, Verdict, HEADER, MAX_HANDSHAKE_FRAME};

/// ractor_cluster 0.16.5's wire types, as far as the handshake goes.
mod wire {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NetworkMessage {
        #[prost(oneof = "network_message::Message", tags = "1")]
        pub message: Option<network_message::Message>,
    }
    pub mod network_message {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Message {
            #[prost(message, tag = "1")]
            Auth(super::AuthenticationMessage),
        }
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NodeFlags {
        #[prost(uint32, tag = "1")]
        pub version: u32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NameMessage {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub flags: Option<NodeFlags>,
        #[prost(string, tag = "3")]
        pub connection_string: String,
        #[prost(uint64, tag = "4")]
        pub connection_id: u64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ServerStatus {
        #[prost(int32, tag = "1")]
        pub status: i32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ClientStatus {
        #[prost(bool, tag = "1")]
        pub status: bool,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Challenge {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub flags: Option<NodeFlags>,
        #[prost(uint32, tag = "3")]
        pub challenge: u32,
        #[prost(string, tag = "4")]
        pub connection_string: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ChallengeReply {
        #[prost(uint32, tag = "1")]
        pub challenge: u32,
        #[prost(bytes = "vec", tag = "2")]
        pub digest: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ChallengeAck {
        #[prost(bytes = "vec", tag = "1")]
        pub digest: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AuthenticationMessage {
        #[prost(oneof = "authentication_message::Msg", tags = "1, 2, 3, 4, 5, 6")]
        pub msg: Option<authentication_message::Msg>,
    }
    pub mod authentication_message {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Msg {
            #[prost(message, tag = "1")]
            Name(super::NameMessage),
            #[prost(message, tag = "2")]
            ServerStatus(super::ServerStatus),
            #[prost(message, tag = "3")]
            ClientStatus(super::ClientStatus),
            #[prost(message, tag = "4")]
            ServerChallenge(super::Challenge),
            #[prost(message, tag = "5")]
            ClientChallenge(super::ChallengeReply),
            #[prost(message, tag = "6")]
            ServerAck(super::ChallengeAck),
        }
    }
}

/// Feeds `input` in chunks of `chunk`; returns the frames released and the final verdict.
fn run(input: &[u8], chunk: usize) -> (Vec<Vec<u8>>, Verdict) {
    let mut g = Gate::default();
    let mut released = Vec::new();
    let mut rest = input;
    loop {
        let v = g.verdict();
        assert!(g.buffered().len() <= HEADER + MAX_HANDSHAKE_FRAME);
        match v {
            Verdict::Release(n) => {
                assert_eq!(n, g.buffered().len(), "a release is the whole buffer");
                assert_eq!(g.wants(), 0);
                released.push(g.buffered().to_vec());
                g.clear();
            }
            Verdict::NeedMore => {
                let want = g.wants();
                assert!(want > 0, "NeedMore but wants nothing");
                assert!(g.buffered().len() + want <= HEADER + MAX_HANDSHAKE_FRAME);
                if rest.is_empty() {
                    return (released, v);
                }
                let n = want.min(chunk).min(rest.len());
                g.space()[..n].copy_from_slice(&rest[..n]);
                g.filled(n);
                rest = &rest[n..];
            }
            Verdict::Hold | Verdict::Refuse(_) => return (released, v),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first % 64) + 1;
    let (released, verdict) = run(input, chunk);
    let mut offset = 0;
    for frame in &released {
        assert_eq!(&input[offset..offset + frame.len()], &frame[..], "released bytes differ");
        offset += frame.len();
        let mut prefix = [0u8; HEADER];
        prefix.copy_from_slice(&frame[..HEADER]);
        let len = u64::from_be_bytes(prefix) as usize;
        assert_eq!(len + HEADER, frame.len());
        assert!(len <= MAX_HANDSHAKE_FRAME);
        match <wire::NetworkMessage as prost::Message>::decode(&frame[HEADER..]) {
            Ok(m) => assert!(
                matches!(m.message, Some(wire::network_message::Message::Auth(_))),
                "released a frame that is not `auth`: {m:?}"
            ),
            Err(e) => panic!("released a frame the library cannot decode ({e}): {frame:?}"),
        }
    }
    let (one_by_one, verdict_1) = run(input, 1);
    assert_eq!(released, one_by_one, "chunking changed the released frames");
    assert_eq!(verdict, verdict_1, "chunking changed the verdict");
});
