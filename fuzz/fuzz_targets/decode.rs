//! Fuzz target for the client frame decoder, `protocol::client::decode`.
//!
//! Properties checked on every input that is valid UTF-8:
//! - `decode` never panics;
//! - on `Ok`, a `publish` request's `data` and the request id are valid JSON;
//! - the frame the node answers with (`protocol::server::failure` for an `Err`, with and without
//!   `retry_after_ms`; `protocol::server::success` for an `Ok` that carried an id) encodes
//!   without panicking and is a JSON object with an `op`.
//!
//! "Valid JSON" is RFC 8259's grammar, which is what serde_json's `RawValue` (the decoder's
//! carrier for ids and payloads) enforces. That grammar allows unpaired UTF-16 surrogate escapes
//! such as `"\udc00"`, which serde_json refuses to decode into a `String`/`Value`. Build with
//! `--features strict-json` to also require every id, payload and encoded frame to decode as a
//! `serde_json::Value`, i.e. to flag such payloads (`FUZZ_FEATURES=strict-json fuzz/run.sh`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::client::{decode, Request};
use protocol::server::{failure, success};
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// Panics unless `text` is one valid JSON value (RFC 8259 grammar; stricter with `strict-json`).
fn assert_json(what: &str, text: &str) {
    if let Err(e) = serde_json::from_str::<IgnoredAny>(text) {
        panic!("{what} is not valid JSON ({e}): {text:?}");
    }
    #[cfg(feature = "strict-json")]
    if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
        panic!("{what} does not decode as a serde_json::Value ({e}): {text:?}");
    }
}

/// Panics unless `frame` is a JSON object with a string `op` whose values are valid JSON.
fn assert_frame(frame: &str) {
    assert_json("encoded frame", frame);
    let fields: BTreeMap<String, Box<RawValue>> = match serde_json::from_str(frame) {
        Ok(fields) => fields,
        Err(e) => panic!("encoded frame is not a JSON object ({e}): {frame:?}"),
    };
    match fields.get("op") {
        Some(op) if op.get().starts_with('"') => {}
        _ => panic!("encoded frame has no string `op`: {frame:?}"),
    }
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    match decode(text) {
        Ok(decoded) => {
            if let Some(id) = &decoded.id {
                assert_json("request id", id.raw().get());
            }
            if let Request::Publish { data, .. } = &decoded.request {
                assert_json("publish data", data.get());
            }
            let _ = decoded.request.op();
            // The success reply the node would send; it may not panic either.
            if let Some(id) = &decoded.id {
                let empty: Box<RawValue>;
                let result: &RawValue = match &decoded.request {
                    Request::Publish { data, .. } => data,
                    _ => {
                        empty = RawValue::from_string("{}".to_owned()).expect("literal JSON");
                        &empty
                    }
                };
                assert_frame(&success(id.raw(), result));
            }
        }
        Err(e) => {
            let id = e.id.as_ref().map(|id| id.raw());
            assert_frame(&failure(id, e.code, &e.message, None));
            assert_frame(&failure(id, e.code, &e.message, Some(350)));
        }
    }
});
