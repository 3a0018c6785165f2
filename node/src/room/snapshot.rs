//! A room's state snapshot set by the backend, kept zstd-compressed by the room's owner.

use serde_json::value::RawValue;

/// A compressed snapshot and the room seq it is current as of.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Room seq at the time it was set.
    pub seq: u64,
    compressed: Vec<u8>,
    raw_len: usize,
}

/// Why a snapshot could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Larger than `rooms.max_snapshot_bytes`.
    #[error("snapshot is {0} bytes, more than the {1} allowed")]
    TooLarge(usize, usize),
    /// Compression or decompression failed.
    #[error("snapshot codec failed: {0}")]
    Codec(#[from] std::io::Error),
    /// The decompressed bytes are not JSON (cannot happen for what we stored).
    #[error("stored snapshot is not valid JSON")]
    Corrupt,
}

impl Snapshot {
    /// Compresses `data` (raw JSON) as of `seq`.
    pub fn new(seq: u64, data: &RawValue, max: usize) -> Result<Self, SnapshotError> {
        let bytes = data.get().as_bytes();
        if bytes.len() > max {
            return Err(SnapshotError::TooLarge(bytes.len(), max));
        }
        let compressed = zstd::bulk::compress(bytes, 3)?;
        Ok(Self {
            seq,
            compressed,
            raw_len: bytes.len(),
        })
    }

    /// Decompresses the payload.
    pub fn data(&self) -> Result<Box<RawValue>, SnapshotError> {
        let bytes = zstd::bulk::decompress(&self.compressed, self.raw_len)?;
        let text = String::from_utf8(bytes).map_err(|_| SnapshotError::Corrupt)?;
        RawValue::from_string(text).map_err(|_| SnapshotError::Corrupt)
    }

    /// Compressed size, bytes.
    #[cfg(test)]
    pub fn compressed_len(&self) -> usize {
        self.compressed.len()
    }

    /// The parts that move with the room: (seq, compressed bytes, uncompressed length).
    pub fn parts(&self) -> (u64, &[u8], usize) {
        (self.seq, &self.compressed, self.raw_len)
    }

    /// Rebuilds a snapshot moved from another node.
    pub fn from_parts(seq: u64, compressed: Vec<u8>, raw_len: usize) -> Self {
        Self {
            seq,
            compressed,
            raw_len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_compresses() {
        let text = format!("{{\"cells\":[{}]}}", vec!["0"; 5000].join(","));
        let raw = RawValue::from_string(text.clone()).unwrap();
        let s = Snapshot::new(7, &raw, 1 << 20).unwrap();
        assert!(s.compressed_len() < text.len() / 10);
        assert_eq!(s.data().unwrap().get(), text);
        assert!(matches!(
            Snapshot::new(7, &raw, 10),
            Err(SnapshotError::TooLarge(_, 10))
        ));
    }
}
