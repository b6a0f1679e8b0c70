//! Sans-IO wire codecs for tollgate. No I/O, no runtime: bytes in, frames out.
pub mod pg;
