//! Fuzz target for the cluster link's control-frame classifier, `node/src/cluster/frames.rs`
//! (compiled here on its own: it is std-only). A frame it calls control is written ahead of
//! bulk data, so a wrong "yes" would reorder a room's deliveries.
//!
//! Properties checked on every input (a frame's payload, without its length prefix):
//! - `is_control` never panics;
//! - when it says yes of a payload prost 0.14.6 (ractor_cluster 0.16.5's) decodes — the only
//!   payloads the library writes — the library's `NetworkMessage` schema (mirrored below from its
//!   `meta.proto`, `node.proto` and `control.proto`, as far as needed) reads it as a `control`
//!   ping or pong, or a `node` cast whose `variant` is the heartbeat's, never anything else.
//!   (Payloads prost refuses are never written, so what the classifier says of them does not
//!   matter; it only must not panic.)
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../node/src/cluster/frames.rs"]
#[allow(dead_code)]
mod frames;

/// ractor_cluster 0.16.5's wire types, as far as the classifier looks.
mod wire {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NetworkMessage {
        #[prost(oneof = "network_message::Message", tags = "2, 3")]
        pub message: Option<network_message::Message>,
    }
    pub mod network_message {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Message {
            #[prost(message, tag = "2")]
            Node(super::NodeMessage),
            #[prost(message, tag = "3")]
            Control(super::ControlMessage),
        }
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NodeMessage {
        #[prost(oneof = "node_message::Msg", tags = "1")]
        pub msg: Option<node_message::Msg>,
    }
    pub mod node_message {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Msg {
            #[prost(message, tag = "1")]
            Cast(super::Cast),
        }
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Cast {
        #[prost(uint64, tag = "1")]
        pub to: u64,
        #[prost(bytes = "vec", tag = "2")]
        pub what: Vec<u8>,
        #[prost(string, tag = "3")]
        pub variant: String,
        #[prost(bytes = "vec", optional, tag = "6")]
        pub metadata: Option<Vec<u8>>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Timestamp {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Ping {
        #[prost(message, optional, tag = "1")]
        pub timestamp: Option<Timestamp>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ControlMessage {
        #[prost(oneof = "control_message::Msg", tags = "3, 4")]
        pub msg: Option<control_message::Msg>,
    }
    pub mod control_message {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Msg {
            #[prost(message, tag = "3")]
            Ping(super::Ping),
            #[prost(message, tag = "4")]
            Pong(super::Ping),
        }
    }
}

fuzz_target!(|payload: &[u8]| {
    if !frames::is_control(payload) {
        return;
    }
    use wire::network_message::Message;
    let Ok(decoded) = <wire::NetworkMessage as prost::Message>::decode(payload) else {
        return;
    };
    let ok = match &decoded.message {
        Some(Message::Control(c)) => c.msg.is_some(),
        Some(Message::Node(n)) => matches!(
            &n.msg,
            Some(wire::node_message::Msg::Cast(c)) if c.variant.as_bytes() == frames::HEARTBEAT_VARIANT
        ),
        None => false,
    };
    assert!(ok, "called control a frame that is not: {decoded:?}");
});
