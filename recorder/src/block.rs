//! Builds blocks: batches raw records, compresses them with zstd, checksums
//! and chains them. Pure CPU, no I/O, so the bench can measure it alone.

use std::io;

use crate::format::{BLOCK_HEADER_LEN, BlockHeader, FormatError, Hash, MAX_BLOCK_RAW, block_hash};

/// A finished block, borrowed from the builder until the next one.
#[derive(Debug)]
pub struct FinishedBlock<'a> {
    /// Header + payload, ready to append to a segment.
    pub bytes: &'a [u8],
    /// SHA-256 of `bytes`: the next block's `prev_hash`.
    pub hash: Hash,
    pub first_seq: u64,
    pub count: u32,
    pub raw_len: usize,
}

/// Compresses, checksums and chains blocks of already encoded records (as a
/// shard's staging buffer holds them); reused for every block of a shard so
/// the steady state allocates nothing.
pub struct BlockBuilder {
    compressor: zstd::bulk::Compressor<'static>,
    out: Vec<u8>,
}

impl BlockBuilder {
    pub fn new(zstd_level: i32) -> io::Result<Self> {
        Ok(Self {
            compressor: zstd::bulk::Compressor::new(zstd_level)?,
            out: Vec::new(),
        })
    }

    /// Compresses `raw` — `count` encoded records with consecutive sequences
    /// from `first_seq` — into a block linked to `prev_hash`.
    pub fn build(
        &mut self,
        raw: &[u8],
        first_seq: u64,
        count: u32,
        prev_hash: &Hash,
    ) -> io::Result<FinishedBlock<'_>> {
        if raw.len() > MAX_BLOCK_RAW {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("raw block of {} bytes over {MAX_BLOCK_RAW}", raw.len()),
            ));
        }
        let (hash, raw_len) = seal_block(
            &mut self.compressor,
            &mut self.out,
            raw,
            first_seq,
            count,
            prev_hash,
        )?;
        Ok(FinishedBlock {
            bytes: &self.out,
            hash,
            first_seq,
            count,
            raw_len,
        })
    }
}

/// Header + compressed `raw` into `out`; returns the block's hash and raw length.
fn seal_block(
    compressor: &mut zstd::bulk::Compressor<'static>,
    out: &mut Vec<u8>,
    raw: &[u8],
    first_seq: u64,
    count: u32,
    prev_hash: &Hash,
) -> io::Result<(Hash, usize)> {
    let raw_len = raw.len();
    let bound = zstd::zstd_safe::compress_bound(raw_len);
    let mut buf = std::mem::take(out);
    buf.clear();
    buf.resize(BLOCK_HEADER_LEN, 0);
    buf.reserve(bound);
    let mut cursor = io::Cursor::new(buf);
    cursor.set_position(BLOCK_HEADER_LEN as u64);
    let written = compressor.compress_to_buffer(raw, &mut cursor);
    *out = cursor.into_inner();
    let compressed_len = written?;
    debug_assert_eq!(out.len(), BLOCK_HEADER_LEN + compressed_len);
    let mut header = BlockHeader {
        compressed_len: compressed_len as u32,
        raw_len: raw_len as u32,
        first_seq,
        count,
        prev_hash: *prev_hash,
        crc: 0,
    };
    header.encode_into(&mut out[..BLOCK_HEADER_LEN]);
    header.crc = crc32c::crc32c_append(crc32c::crc32c(&out[0..56]), &out[BLOCK_HEADER_LEN..]);
    header.encode_into(&mut out[..BLOCK_HEADER_LEN]);
    let hash = block_hash(&out[..BLOCK_HEADER_LEN], &out[BLOCK_HEADER_LEN..]);
    Ok((hash, raw_len))
}

/// Decompresses block payloads into a reused buffer.
pub struct BlockDecoder {
    decompressor: zstd::bulk::Decompressor<'static>,
    raw: Vec<u8>,
}

impl BlockDecoder {
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            decompressor: zstd::bulk::Decompressor::new()?,
            raw: Vec::new(),
        })
    }

    /// Decompresses `payload`, which must expand to exactly `header.raw_len`.
    pub fn decompress(
        &mut self,
        header: &BlockHeader,
        payload: &[u8],
    ) -> Result<&[u8], FormatError> {
        let want = header.raw_len as usize;
        self.raw.clear();
        self.raw.reserve(want);
        let n = self
            .decompressor
            .decompress_to_buffer(payload, &mut self.raw)
            .map_err(|e| FormatError::Invalid {
                field: "compressed payload",
                detail: e.to_string(),
            })?;
        if n != want {
            return Err(FormatError::Invalid {
                field: "raw block length",
                detail: format!("header says {want}, payload holds {n}"),
            });
        }
        Ok(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{ZERO_HASH, block_hash};
    use crate::record::{RawRecords, Record, RecordBody};
    use bytes::Bytes;

    #[test]
    fn block_round_trips_and_chains() {
        let mut b = BlockBuilder::new(1).unwrap();
        let recs: Vec<Record> = (0..50)
            .map(|i| Record {
                session: 1,
                timestamp_ns: i,
                body: RecordBody::ClientData(Bytes::from(
                    format!("select {i} from t").into_bytes(),
                )),
            })
            .collect();
        let mut raw = Vec::new();
        for r in &recs {
            r.encode_into(&mut raw).unwrap();
        }
        let blk = b.build(&raw, 10, 50, &[3; 32]).unwrap();
        let bytes = blk.bytes.to_vec();
        let hash = blk.hash;
        let h = BlockHeader::decode(&bytes).unwrap();
        assert_eq!((h.first_seq, h.count, h.prev_hash), (10, 50, [3; 32]));
        BlockHeader::check_crc(&bytes, &bytes[BLOCK_HEADER_LEN..]).unwrap();
        assert_eq!(hash, block_hash(&bytes, &bytes[BLOCK_HEADER_LEN..]));
        let mut d = BlockDecoder::new().unwrap();
        let back: Vec<Record> =
            RawRecords::new(d.decompress(&h, &bytes[BLOCK_HEADER_LEN..]).unwrap())
                .map(|r| r.unwrap().to_record().unwrap())
                .collect();
        assert_eq!(back, recs);
        let mut one = Vec::new();
        recs[0].encode_into(&mut one).unwrap();
        let next = b.build(&one, 60, 1, &hash).unwrap();
        assert_ne!(next.hash, ZERO_HASH);
        assert_eq!(BlockHeader::decode(next.bytes).unwrap().prev_hash, hash);
    }

    #[test]
    fn oversized_raw_block_is_refused() {
        let mut b = BlockBuilder::new(1).unwrap();
        let raw = vec![0u8; MAX_BLOCK_RAW + 1];
        assert!(b.build(&raw, 0, 1, &ZERO_HASH).is_err());
    }
}
