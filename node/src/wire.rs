//! Everything that crosses between nodes, in one place: the messages of each remotely usable
//! actor (the cluster endpoint, the room gateway and the rooms behind it, the room host, the
//! relay ingress), their payloads, how each is encoded, the names nodes find those actors by,
//! and [`CLUSTER_PROTOCOL_VERSION`]. [`pins`] pins the bytes of every message, so a change
//! here is a visible, reviewed diff (ARCHITECTURE.md, "Compatibility").
//!
//! Imports only core values ([`crate::delivery`]), `protocol`, serde and ractor: editing a
//! type elsewhere in the node can never change what two nodes say to each other. Nothing here
//! sends, spawns or holds state.

pub mod endpoint;
pub mod gateway;
pub mod host;
pub mod ingress;
pub mod listing;
pub mod migration;
pub mod names;
#[cfg(test)]
mod pins;
pub mod room;

/// Version of the cluster protocol spoken by this build. Peers with another version are refused.
pub const CLUSTER_PROTOCOL_VERSION: u32 = 2;

/// The cluster protocol version this process speaks: [`CLUSTER_PROTOCOL_VERSION`], unless
/// `GATEHOUSE_CLUSTER_PROTOCOL_VERSION` says otherwise (to rehearse a mixed-version cluster:
/// such a node is refused by the others, and refuses them).
pub fn protocol_version() -> u32 {
    static V: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *V.get_or_init(|| {
        std::env::var("GATEHOUSE_CLUSTER_PROTOCOL_VERSION")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(CLUSTER_PROTOCOL_VERSION)
    })
}

/// Decodes a room payload from a peer. The empty payload is the gateway's answer to a call for
/// a room that is no longer on its node: it unwinds without the panic hook (nothing logged),
/// and the cluster library, which decodes replies under `catch_unwind`, drops the caller's reply
/// port, so the call fails at once instead of timing out. Any other payload that does not decode
/// panics the same way with a message (a bug or a peer of another build).
pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> T {
    if bytes.is_empty() {
        std::panic::resume_unwind(Box::new("room gone"));
    }
    match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => panic!("a {what} from a peer must decode: {e}"),
    }
}

/// Encodes each type as one JSON payload; one that does not decode panics ([`decode`]), which
/// ractor catches: the message is dropped (a call fails). For every payload of the room, its
/// host and its moves.
macro_rules! json_payloads {
    ($($t:ty),*) => {$(
        impl ractor::BytesConvertable for $t {
            fn into_bytes(self) -> Vec<u8> {
                serde_json::to_vec(&self).expect("payloads always encode")
            }
            fn from_bytes(bytes: Vec<u8>) -> Self {
                $crate::wire::decode(&bytes, stringify!($t))
            }
        }
    )*};
}
pub(crate) use json_payloads;

/// Encodes each type as one JSON payload; one that does not decode becomes the type's default
/// (marked invalid where the type says so), never a panic.
macro_rules! json_or_default {
    ($($t:ty),*) => {$(
        impl ractor::BytesConvertable for $t {
            fn into_bytes(self) -> Vec<u8> {
                serde_json::to_vec(&self).unwrap_or_default()
            }
            fn from_bytes(bytes: Vec<u8>) -> Self {
                serde_json::from_slice(&bytes).unwrap_or_default()
            }
        }
    )*};
}

pub(crate) use json_or_default;
