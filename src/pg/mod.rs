//! PostgreSQL gateway: upstream authentication (SCRAM-SHA-256, md5, cleartext)
//! and the per-connection session glue over `tollgate_codecs::pg`.

pub mod adapter;
pub mod auth;
pub mod cancel;
pub mod copyout;
pub mod copystmt;
pub mod decode;
mod ending;
pub mod fastpath;
pub mod inspect;
pub mod io;
pub mod lexmode;
pub(crate) mod pool;
pub mod poolstats;
pub mod probe;
pub mod relay;
pub mod rowplan;
pub mod session;
pub mod shapes;
mod stream;
mod texts;
pub mod txmode;
pub mod txstmts;
pub mod values;
mod values_text;
