//! PostgreSQL gateway: upstream authentication (SCRAM-SHA-256, md5, cleartext)
//! and the per-connection session glue over `tollgate_codecs::pg`.

pub mod auth;
pub mod cancel;
pub mod decode;
mod ending;
pub mod inspect;
pub mod io;
pub mod relay;
pub mod session;
