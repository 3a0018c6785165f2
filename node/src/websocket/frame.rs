//! Server frames as bytes (RFC 6455 §5.2): FIN set, no mask, no extensions. Control frames carry
//! at most 125 bytes, so a close reason is cut at a character boundary to fit.

/// Text frame opcode.
pub const TEXT: u8 = 0x1;
/// Binary frame opcode.
pub const BINARY: u8 = 0x2;
/// Close frame opcode.
pub const CLOSE: u8 = 0x8;
/// Ping frame opcode.
pub const PING: u8 = 0x9;
/// Pong frame opcode.
pub const PONG: u8 = 0xA;

/// Longest control frame payload.
pub const MAX_CONTROL: usize = 125;

/// Bytes of the header of a frame with `len` payload bytes.
pub fn header_len(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    }
}

/// Appends one complete frame.
pub fn encode(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    let len = payload.len();
    out.reserve(header_len(len) + len);
    out.push(0x80 | opcode);
    match len {
        0..=125 => out.push(len as u8),
        126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// Appends a close frame with `code` and as much of `reason` as fits.
pub fn encode_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    let mut end = reason.len().min(MAX_CONTROL - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    encode(out, CLOSE, &payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_use_the_shortest_form() {
        for (len, head) in [(0, 2), (125, 2), (126, 4), (65_535, 4), (65_536, 10)] {
            let mut out = Vec::new();
            encode(&mut out, TEXT, &vec![b'a'; len]);
            assert_eq!(out.len(), head + len, "len {len}");
            assert_eq!(out[0], 0x81);
            assert_eq!(header_len(len), head);
        }
        let mut out = Vec::new();
        encode(&mut out, TEXT, &[b'x'; 300]);
        assert_eq!(&out[..4], &[0x81, 126, 1, 44]);
    }

    #[test]
    fn close_reason_is_cut_at_a_char_boundary() {
        let mut out = Vec::new();
        let reason = "é".repeat(100);
        encode_close(&mut out, 4008, &reason);
        assert_eq!(out[0], 0x88);
        let len = out[1] as usize;
        assert!(len <= MAX_CONTROL);
        assert_eq!(&out[2..4], &4008u16.to_be_bytes());
        assert!(std::str::from_utf8(&out[4..]).is_ok());
    }
}
