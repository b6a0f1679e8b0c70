//! On-disk layout of a shard's recording: segment header, blocks, seal trailer.
//!
//! A shard writes into `<dir>/shard-<N>/`. Segment files are named by the
//! sequence number of their first record, zero-padded to 20 digits
//! (`00000000000000000000.seg`). All integers are little-endian.
//!
//! # Segment header (68 bytes)
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `TGRECSEG` |
//! | 8 | 2 | format version (1) |
//! | 10 | 2 | reserved, zero |
//! | 12 | 4 | shard id |
//! | 16 | 8 | base sequence (first record of this segment) |
//! | 24 | 8 | creation time, unix nanoseconds |
//! | 32 | 32 | chain head when the segment was opened (SHA-256 of the shard's previous block, zero for the very first) |
//! | 64 | 4 | CRC32C of bytes 0..64 |
//!
//! # Block (60-byte header + payload)
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | magic `TGBK` |
//! | 4 | 4 | compressed payload length `C` (≤ 32 MiB) |
//! | 8 | 4 | raw payload length (≤ 32 MiB) |
//! | 12 | 8 | sequence of the block's first record |
//! | 20 | 4 | record count (≥ 1) |
//! | 24 | 32 | SHA-256 of the previous block (header + payload), or the segment header's chain head for the shard's first block |
//! | 56 | 4 | CRC32C of bytes 0..56 followed by the payload |
//! | 60 | C | zstd frame holding the raw records |
//!
//! The block's own hash, SHA-256 over its 60 header bytes and payload, is what
//! the next block links to: one chain per shard, across segments.
//!
//! # Raw record (inside a decompressed payload; 21-byte header + body)
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 1 | kind: 1 session start, 2 client→target data, 3 target→client data, 4 command, 5 admin action, 6 session end, 7 checkpoint (see `checkpoint.rs`) |
//! | 1 | 8 | session id |
//! | 9 | 8 | timestamp, unix nanoseconds |
//! | 17 | 4 | body length `B` (≤ 16 MiB) |
//! | 21 | B | body: the bytes as forwarded for data records, a JSON object otherwise |
//!
//! A record's sequence number is the block's first sequence plus its position.
//!
//! # Seal trailer (125 bytes, last thing in a sealed segment)
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | magic `TGSL` |
//! | 4 | 4 | block count of the segment |
//! | 8 | 8 | next sequence (base of the following segment) |
//! | 16 | 8 | seal time, unix nanoseconds |
//! | 24 | 32 | chain head: hash of the segment's last block |
//! | 56 | 1 | signature algorithm: 0 none, 1 Ed25519 |
//! | 57 | 64 | signature (zero when unsigned) over the 68 header bytes followed by seal bytes 0..57 |
//! | 121 | 4 | CRC32C of bytes 0..121 |
//!
//! # Session index entry (`<dir>/shard-<N>/sessions.idx`)
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | body length `L` (≤ 64 KiB) |
//! | 4 | 4 | CRC32C of the body |
//! | 8 | L | JSON object (see `index.rs`) |
//!
//! The index is not trusted on its own: `verify` checks every start/end
//! entry against the chained record at its sequence.
//!
//! # Checkpoint file (`<dir>/shard-<N>/checkpoints.log`)
//!
//! Append-only, fsynced signed checkpoints of the chain head, framed like
//! index entries; see `checkpoint.rs`.

use ring::digest;

/// Magic opening every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"TGRECSEG";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Size of the segment header.
pub const SEGMENT_HEADER_LEN: usize = 68;
/// Magic opening every block.
pub const BLOCK_MAGIC: [u8; 4] = *b"TGBK";
/// Size of a block header.
pub const BLOCK_HEADER_LEN: usize = 60;
/// Magic opening the seal trailer.
pub const SEAL_MAGIC: [u8; 4] = *b"TGSL";
/// Size of the seal trailer.
pub const SEAL_LEN: usize = 125;
/// Bytes of the seal covered by the signature (after the segment header).
pub const SEAL_SIGNED_LEN: usize = 57;
/// Size of a raw record header.
pub const RECORD_HEADER_LEN: usize = 21;
/// Largest record body accepted, written or read.
pub const MAX_RECORD_BODY: usize = 16 << 20;
/// Largest raw (decompressed) block payload read back.
pub const MAX_BLOCK_RAW: usize = 32 << 20;
/// Largest compressed block payload read back.
pub const MAX_BLOCK_COMPRESSED: usize = 32 << 20;
/// A SHA-256 digest.
pub type Hash = [u8; 32];
/// The chain head before any block exists.
pub const ZERO_HASH: Hash = [0; 32];

/// Why a header, block or seal could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("bad magic {found:02x?}")]
    BadMagic { found: [u8; 4] },
    #[error("unsupported format version {found} (this build reads {supported})")]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadCrc { stored: u32, computed: u32 },
    #[error("{field} is {len}, above the cap of {max}")]
    TooLarge {
        field: &'static str,
        len: u64,
        max: u64,
    },
    #[error("{field} is invalid: {detail}")]
    Invalid { field: &'static str, detail: String },
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated { need: u64, have: u64 },
}

pub(crate) fn u16_at(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[at..at + 2]);
    u16::from_le_bytes(a)
}
pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}
pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}
pub(crate) fn hash_at(b: &[u8], at: usize) -> Hash {
    let mut h = ZERO_HASH;
    h.copy_from_slice(&b[at..at + 32]);
    h
}

/// The file name of the segment whose first record is `base`.
pub fn segment_file_name(base: u64) -> String {
    format!("{base:020}.seg")
}

/// The base sequence named by a segment file name, if it is one.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The directory name of shard `shard`.
pub fn shard_dir_name(shard: u32) -> String {
    format!("shard-{shard}")
}

/// The shard id named by a shard directory name, if it is one.
pub fn parse_shard_dir_name(name: &str) -> Option<u32> {
    name.strip_prefix("shard-")?.parse().ok()
}

/// The fixed header at the start of every segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    pub shard: u32,
    pub base_seq: u64,
    pub created_ns: u64,
    pub prev_hash: Hash,
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.shard.to_le_bytes());
        b[16..24].copy_from_slice(&self.base_seq.to_le_bytes());
        b[24..32].copy_from_slice(&self.created_ns.to_le_bytes());
        b[32..64].copy_from_slice(&self.prev_hash);
        let crc = crc32c::crc32c(&b[0..64]);
        b[64..68].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        if b.len() < SEGMENT_HEADER_LEN {
            return Err(FormatError::Truncated {
                need: SEGMENT_HEADER_LEN as u64,
                have: b.len() as u64,
            });
        }
        if b[0..8] != SEGMENT_MAGIC {
            let mut found = [0u8; 4];
            found.copy_from_slice(&b[0..4]);
            return Err(FormatError::BadMagic { found });
        }
        let stored = u32_at(b, 64);
        let computed = crc32c::crc32c(&b[0..64]);
        if stored != computed {
            return Err(FormatError::BadCrc { stored, computed });
        }
        let version = u16_at(b, 8);
        if version != FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        Ok(Self {
            shard: u32_at(b, 12),
            base_seq: u64_at(b, 16),
            created_ns: u64_at(b, 24),
            prev_hash: hash_at(b, 32),
        })
    }
}

/// A block header, decoded; the payload is checked against it separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    pub compressed_len: u32,
    pub raw_len: u32,
    pub first_seq: u64,
    pub count: u32,
    pub prev_hash: Hash,
    pub crc: u32,
}

impl BlockHeader {
    pub fn encode_into(&self, b: &mut [u8]) {
        b[0..4].copy_from_slice(&BLOCK_MAGIC);
        b[4..8].copy_from_slice(&self.compressed_len.to_le_bytes());
        b[8..12].copy_from_slice(&self.raw_len.to_le_bytes());
        b[12..20].copy_from_slice(&self.first_seq.to_le_bytes());
        b[20..24].copy_from_slice(&self.count.to_le_bytes());
        b[24..56].copy_from_slice(&self.prev_hash);
        b[56..60].copy_from_slice(&self.crc.to_le_bytes());
    }

    /// Decodes and bounds-checks a header; the CRC is checked with the payload.
    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        if b.len() < BLOCK_HEADER_LEN {
            return Err(FormatError::Truncated {
                need: BLOCK_HEADER_LEN as u64,
                have: b.len() as u64,
            });
        }
        if b[0..4] != BLOCK_MAGIC {
            let mut found = [0u8; 4];
            found.copy_from_slice(&b[0..4]);
            return Err(FormatError::BadMagic { found });
        }
        let h = Self {
            compressed_len: u32_at(b, 4),
            raw_len: u32_at(b, 8),
            first_seq: u64_at(b, 12),
            count: u32_at(b, 20),
            prev_hash: hash_at(b, 24),
            crc: u32_at(b, 56),
        };
        if h.compressed_len as usize > MAX_BLOCK_COMPRESSED {
            return Err(FormatError::TooLarge {
                field: "compressed block length",
                len: u64::from(h.compressed_len),
                max: MAX_BLOCK_COMPRESSED as u64,
            });
        }
        if h.raw_len as usize > MAX_BLOCK_RAW {
            return Err(FormatError::TooLarge {
                field: "raw block length",
                len: u64::from(h.raw_len),
                max: MAX_BLOCK_RAW as u64,
            });
        }
        if h.count == 0 || h.count as usize > h.raw_len as usize / RECORD_HEADER_LEN {
            return Err(FormatError::Invalid {
                field: "record count",
                detail: format!("{} records in {} raw bytes", h.count, h.raw_len),
            });
        }
        Ok(h)
    }

    /// Checks the CRC over the header bytes and the payload.
    pub fn check_crc(header_bytes: &[u8], payload: &[u8]) -> Result<(), FormatError> {
        let stored = u32_at(header_bytes, 56);
        let computed = crc32c::crc32c_append(crc32c::crc32c(&header_bytes[0..56]), payload);
        if stored == computed {
            Ok(())
        } else {
            Err(FormatError::BadCrc { stored, computed })
        }
    }
}

/// SHA-256 of a whole block (header + payload): the next block's link.
pub fn block_hash(header_bytes: &[u8], payload: &[u8]) -> Hash {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&header_bytes[..BLOCK_HEADER_LEN]);
    ctx.update(payload);
    let mut h = ZERO_HASH;
    h.copy_from_slice(ctx.finish().as_ref());
    h
}

/// The trailer that closes a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seal {
    pub block_count: u32,
    pub next_seq: u64,
    pub sealed_ns: u64,
    pub chain_head: Hash,
    /// `None` when the segment was sealed without a signing key.
    pub signature: Option<[u8; 64]>,
}

impl Seal {
    /// Bytes 0..57, the part covered by the signature (with the segment header).
    pub fn signed_part(&self) -> [u8; SEAL_SIGNED_LEN] {
        let mut b = [0u8; SEAL_SIGNED_LEN];
        b[0..4].copy_from_slice(&SEAL_MAGIC);
        b[4..8].copy_from_slice(&self.block_count.to_le_bytes());
        b[8..16].copy_from_slice(&self.next_seq.to_le_bytes());
        b[16..24].copy_from_slice(&self.sealed_ns.to_le_bytes());
        b[24..56].copy_from_slice(&self.chain_head);
        b[56] = u8::from(self.signature.is_some());
        b
    }

    /// The message a signature covers: segment header then seal bytes 0..57.
    pub fn signed_message(&self, header: &[u8; SEGMENT_HEADER_LEN]) -> Vec<u8> {
        let mut m = Vec::with_capacity(SEGMENT_HEADER_LEN + SEAL_SIGNED_LEN);
        m.extend_from_slice(header);
        m.extend_from_slice(&self.signed_part());
        m
    }

    pub fn encode(&self) -> [u8; SEAL_LEN] {
        let mut b = [0u8; SEAL_LEN];
        b[0..SEAL_SIGNED_LEN].copy_from_slice(&self.signed_part());
        if let Some(sig) = &self.signature {
            b[57..121].copy_from_slice(sig);
        }
        let crc = crc32c::crc32c(&b[0..121]);
        b[121..125].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        if b.len() < SEAL_LEN {
            return Err(FormatError::Truncated {
                need: SEAL_LEN as u64,
                have: b.len() as u64,
            });
        }
        if b[0..4] != SEAL_MAGIC {
            let mut found = [0u8; 4];
            found.copy_from_slice(&b[0..4]);
            return Err(FormatError::BadMagic { found });
        }
        let stored = u32_at(b, 121);
        let computed = crc32c::crc32c(&b[0..121]);
        if stored != computed {
            return Err(FormatError::BadCrc { stored, computed });
        }
        let signature = match b[56] {
            0 => None,
            1 => {
                let mut s = [0u8; 64];
                s.copy_from_slice(&b[57..121]);
                Some(s)
            }
            other => {
                return Err(FormatError::Invalid {
                    field: "signature algorithm",
                    detail: other.to_string(),
                });
            }
        };
        Ok(Self {
            block_count: u32_at(b, 4),
            next_seq: u64_at(b, 8),
            sealed_ns: u64_at(b, 16),
            chain_head: hash_at(b, 24),
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_header_round_trips_and_rejects_flips() {
        let h = SegmentHeader {
            shard: 3,
            base_seq: 42,
            created_ns: 7,
            prev_hash: [9; 32],
        };
        let b = h.encode();
        assert_eq!(SegmentHeader::decode(&b).unwrap(), h);
        for i in 0..SEGMENT_HEADER_LEN {
            let mut c = b;
            c[i] ^= 0x10;
            assert!(SegmentHeader::decode(&c).is_err(), "flip at {i} accepted");
        }
    }

    #[test]
    fn seal_round_trips_signed_and_unsigned() {
        for signature in [None, Some([5u8; 64])] {
            let s = Seal {
                block_count: 4,
                next_seq: 99,
                sealed_ns: 1,
                chain_head: [1; 32],
                signature,
            };
            assert_eq!(Seal::decode(&s.encode()).unwrap(), s);
        }
    }

    #[test]
    fn block_header_caps_lengths() {
        let h = BlockHeader {
            compressed_len: u32::MAX,
            raw_len: 100,
            first_seq: 0,
            count: 1,
            prev_hash: ZERO_HASH,
            crc: 0,
        };
        let mut b = [0u8; BLOCK_HEADER_LEN];
        h.encode_into(&mut b);
        assert!(matches!(
            BlockHeader::decode(&b),
            Err(FormatError::TooLarge { .. })
        ));
        let h = BlockHeader {
            compressed_len: 10,
            raw_len: 20,
            first_seq: 0,
            count: 1,
            prev_hash: ZERO_HASH,
            crc: 0,
        };
        h.encode_into(&mut b);
        assert!(matches!(
            BlockHeader::decode(&b),
            Err(FormatError::Invalid { .. })
        ));
    }

    #[test]
    fn segment_names_parse_back() {
        assert_eq!(segment_file_name(12), "00000000000000000012.seg");
        assert_eq!(
            parse_segment_file_name(&segment_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        assert_eq!(parse_segment_file_name("12.seg"), None);
        assert_eq!(parse_shard_dir_name("shard-7"), Some(7));
        assert_eq!(parse_shard_dir_name("shard-x"), None);
    }
}
