//! Sans-IO wire codecs for tollgate. No I/O, no runtime: bytes in, frames out.

pub mod http;
pub mod mysql;
pub mod pg;
pub mod sftp;
pub mod sql;
pub mod websocket;
