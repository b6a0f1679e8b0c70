//! Sequential reading of one segment file: header, blocks, seal. Shared by
//! recovery, the reader and `verify`; it tells a torn tail (what a crash
//! leaves) from damage with valid data after it.

use std::io::{self, BufReader, Read};
use std::path::Path;

use crate::format::{
    BLOCK_HEADER_LEN, BLOCK_MAGIC, BlockHeader, Hash, SEAL_LEN, SEAL_MAGIC, SEGMENT_HEADER_LEN,
    Seal, SegmentHeader, block_hash,
};
use crate::fs::FileSystem;

/// One item of a segment.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ScanItem {
    Block {
        index: u64,
        offset: u64,
        header: BlockHeader,
        hash: Hash,
    },
    Seal {
        offset: u64,
        seal: Seal,
    },
}

/// Why a scan stopped early.
#[derive(Debug)]
pub(crate) enum ScanStop {
    /// An incomplete item reaching the end of the file: what a crash in the
    /// middle of a write leaves.
    Torn {
        offset: u64,
        detail: String,
    },
    /// Bad data with more data after it, or a malformed complete item.
    Corrupt {
        offset: u64,
        detail: String,
    },
    Io(io::Error),
}

impl From<io::Error> for ScanStop {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

pub(crate) struct SegmentScan {
    reader: BufReader<Box<dyn Read + Send>>,
    pub file_len: u64,
    /// Where the next item starts.
    pub offset: u64,
    pub header: SegmentHeader,
    pub header_bytes: [u8; SEGMENT_HEADER_LEN],
    next_index: u64,
    payload: Vec<u8>,
    after_seal: bool,
}

impl SegmentScan {
    pub fn open(fs: &dyn FileSystem, path: &Path) -> Result<Self, ScanStop> {
        let file_len = fs.len(path)?;
        let mut reader = BufReader::with_capacity(256 << 10, fs.open_read(path)?);
        if file_len < SEGMENT_HEADER_LEN as u64 {
            return Err(ScanStop::Torn {
                offset: 0,
                detail: format!("segment header incomplete ({file_len} bytes)"),
            });
        }
        let mut header_bytes = [0u8; SEGMENT_HEADER_LEN];
        reader.read_exact(&mut header_bytes)?;
        let header = SegmentHeader::decode(&header_bytes).map_err(|e| ScanStop::Corrupt {
            offset: 0,
            detail: format!("segment header: {e}"),
        })?;
        Ok(Self {
            reader,
            file_len,
            offset: SEGMENT_HEADER_LEN as u64,
            header,
            header_bytes,
            next_index: 0,
            payload: Vec::new(),
            after_seal: false,
        })
    }

    /// The compressed payload of the last block returned.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    fn tail_is_zero(&mut self) -> Result<bool, ScanStop> {
        let mut buf = [0u8; 8192];
        loop {
            let n = self.reader.read(&mut buf)?;
            if n == 0 {
                return Ok(true);
            }
            if buf[..n].iter().any(|&b| b != 0) {
                return Ok(false);
            }
        }
    }

    pub fn next_item(&mut self) -> Result<Option<ScanItem>, ScanStop> {
        let offset = self.offset;
        let remaining = self.file_len - offset;
        if remaining == 0 {
            return Ok(None);
        }
        if self.after_seal {
            return Err(ScanStop::Corrupt {
                offset,
                detail: format!("{remaining} bytes after the seal"),
            });
        }
        if remaining < 4 {
            return Err(ScanStop::Torn {
                offset,
                detail: format!("{remaining} stray bytes at the end"),
            });
        }
        let mut magic = [0u8; 4];
        self.reader.read_exact(&mut magic)?;
        if magic == BLOCK_MAGIC {
            if remaining < BLOCK_HEADER_LEN as u64 {
                return Err(ScanStop::Torn {
                    offset,
                    detail: "block header incomplete".into(),
                });
            }
            let mut hb = [0u8; BLOCK_HEADER_LEN];
            hb[..4].copy_from_slice(&magic);
            self.reader.read_exact(&mut hb[4..])?;
            let header = BlockHeader::decode(&hb).map_err(|e| ScanStop::Corrupt {
                offset,
                detail: format!("block header: {e}"),
            })?;
            let total = (BLOCK_HEADER_LEN as u64) + u64::from(header.compressed_len);
            if total > remaining {
                return Err(ScanStop::Torn {
                    offset,
                    detail: format!("block of {total} bytes, only {remaining} left"),
                });
            }
            self.payload.resize(header.compressed_len as usize, 0);
            self.reader.read_exact(&mut self.payload)?;
            if let Err(e) = BlockHeader::check_crc(&hb, &self.payload) {
                return Err(if total == remaining {
                    ScanStop::Torn {
                        offset,
                        detail: format!("last block: {e}"),
                    }
                } else {
                    ScanStop::Corrupt {
                        offset,
                        detail: format!("block: {e}"),
                    }
                });
            }
            let hash = block_hash(&hb, &self.payload);
            let index = self.next_index;
            self.next_index += 1;
            self.offset += total;
            return Ok(Some(ScanItem::Block {
                index,
                offset,
                header,
                hash,
            }));
        }
        if magic == SEAL_MAGIC {
            if remaining < SEAL_LEN as u64 {
                return Err(ScanStop::Torn {
                    offset,
                    detail: "seal incomplete".into(),
                });
            }
            let mut sb = [0u8; SEAL_LEN];
            sb[..4].copy_from_slice(&magic);
            self.reader.read_exact(&mut sb[4..])?;
            let seal = Seal::decode(&sb).map_err(|e| {
                if remaining == SEAL_LEN as u64 {
                    ScanStop::Torn {
                        offset,
                        detail: format!("seal: {e}"),
                    }
                } else {
                    ScanStop::Corrupt {
                        offset,
                        detail: format!("seal: {e}"),
                    }
                }
            })?;
            self.offset += SEAL_LEN as u64;
            self.after_seal = true;
            return Ok(Some(ScanItem::Seal { offset, seal }));
        }
        if magic == [0; 4] && self.tail_is_zero()? {
            return Err(ScanStop::Torn {
                offset,
                detail: "zero-filled tail".into(),
            });
        }
        Err(ScanStop::Corrupt {
            offset,
            detail: format!("no block or seal magic (found {magic:02x?})"),
        })
    }
}
