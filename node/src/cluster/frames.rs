//! Which of ractor_cluster's outbound frames are control frames: the ones a link sends ahead of
//! bulk data ([`super::outbox`]). A sans-io look at a frame's protobuf, as ractor_cluster 0.16.5
//! encodes it (`meta.NetworkMessage`, pinned in the workspace):
//!
//! - our cluster heartbeats: a `node.Cast` whose `variant` is [`HEARTBEAT_VARIANT`] (the
//!   endpoint's `Heartbeat`, which carries the sender's view of the cluster);
//! - the library's own `Ping` / `Pong` (round-trip probes).
//!
//! Everything else is bulk and keeps its order: deliveries, replies, migrations, and the
//! library's process-group and termination notices (which must not overtake the messages sent
//! before them). A control frame depends on nothing sent before it: heartbeats are whole
//! snapshots of the sender's view, each superseding the last.
//!
//! Owns this parsing only: no I/O, only `std`. Anything it cannot read is bulk.

/// The variant name ractor_cluster's derive gives `EndpointMessage::Heartbeat` on the wire.
pub const HEARTBEAT_VARIANT: &[u8] = b"Heartbeat";

/// Protobuf wire types.
const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;
const FIXED32: u64 = 5;

/// Reads a varint at `*at`, advancing it.
fn varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Reads one field's key and, for length-delimited fields, its bytes; skips other values.
/// Returns (field number, wire type, the bytes of a `LEN` field).
fn field<'a>(b: &'a [u8], at: &mut usize) -> Option<(u64, u64, &'a [u8])> {
    let key = varint(b, at)?;
    let (number, wire) = (key >> 3, key & 7);
    let value: &[u8] = match wire {
        VARINT => {
            varint(b, at)?;
            &[]
        }
        FIXED64 | FIXED32 => {
            let n = if wire == FIXED64 { 8 } else { 4 };
            *at = at.checked_add(n).filter(|e| *e <= b.len())?;
            &[]
        }
        LEN => {
            let n = usize::try_from(varint(b, at)?).ok()?;
            let end = at.checked_add(n).filter(|e| *e <= b.len())?;
            let v = &b[*at..end];
            *at = end;
            v
        }
        _ => return None,
    };
    Some((number, wire, value))
}

/// The only `LEN` field `number` of a message holding one (a oneof's set member).
fn only(b: &[u8], number: u64) -> Option<&[u8]> {
    let mut at = 0;
    let (n, wire, v) = field(b, &mut at)?;
    (n == number && wire == LEN && at == b.len()).then_some(v)
}

/// Whether `payload` (a frame without its 8-byte length prefix) is a control frame.
pub fn is_control(payload: &[u8]) -> bool {
    let mut at = 0;
    let Some((top, LEN, body)) = field(payload, &mut at) else {
        return false;
    };
    if at != payload.len() {
        return false;
    }
    match top {
        // meta.NetworkMessage.control: Ping (3) or Pong (4).
        3 => only(body, 3).is_some() || only(body, 4).is_some(),
        // meta.NetworkMessage.node > node.NodeMessage.cast (1) > node.Cast.variant (3).
        2 => only(body, 1).is_some_and(|cast| {
            // The last `variant` wins, as in prost.
            let mut at = 0;
            let mut variant = None;
            while at < cast.len() {
                match field(cast, &mut at) {
                    Some((3, LEN, v)) => variant = Some(v),
                    Some(_) => {}
                    None => return false,
                }
            }
            variant == Some(HEARTBEAT_VARIANT)
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len_field(number: u64, body: &[u8]) -> Vec<u8> {
        let mut out = vec![u8::try_from(number << 3 | LEN).unwrap()];
        let mut n = body.len();
        loop {
            let b = u8::try_from(n & 0x7f).unwrap();
            n >>= 7;
            if n == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
        out.extend_from_slice(body);
        out
    }

    fn cast(variant: &[u8], what: &[u8]) -> Vec<u8> {
        // node.Cast { to: 7, what, variant }
        let mut c = vec![0x08, 0x07];
        c.extend(len_field(2, what));
        c.extend(len_field(3, variant));
        len_field(2, &len_field(1, &c))
    }

    #[test]
    fn heartbeats_and_pings_are_control_and_the_rest_is_bulk() {
        assert!(is_control(&cast(b"Heartbeat", b"{\"view\":1}")));
        assert!(!is_control(&cast(b"Deliver", &[1; 300])));
        assert!(!is_control(&cast(b"HeartbeatX", b"")));
        // control.Ping { timestamp } and Pong; a PgJoin (5) is bulk.
        assert!(is_control(&len_field(3, &len_field(3, &[0x08, 0x01]))));
        assert!(is_control(&len_field(3, &len_field(4, &[]))));
        assert!(!is_control(&len_field(3, &len_field(5, b"\x0a\x01g"))));
        // A call (node field 2) is bulk even with the heartbeat's name.
        let call = len_field(2, &len_field(2, &len_field(5, b"Heartbeat")));
        assert!(!is_control(&call));
        // A repeated field: prost keeps the last.
        let mut twice = vec![0x08, 0x07];
        twice.extend(len_field(3, b"Heartbeat"));
        twice.extend(len_field(3, b"Deliver"));
        assert!(!is_control(&len_field(2, &len_field(1, &twice))));
    }

    #[test]
    fn anything_unreadable_is_bulk() {
        let good = cast(b"Heartbeat", b"x");
        for cut in 0..good.len() {
            assert!(!is_control(&good[..cut]), "cut at {cut}");
        }
        assert!(!is_control(&[]));
        assert!(!is_control(&[0xff; 12]));
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(!is_control(&trailing));
    }
}
