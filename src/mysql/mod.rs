//! MySQL/MariaDB gateway (`protocol = "mysql"`) on the session pipeline:
//! the caller's login with a token over TLS ([`front`]), the upstream login
//! with the stored credential ([`upstream`]), and the command relay that
//! judges every statement and masks result rows ([`relay`]). The wire
//! format is `tollgate_codecs::mysql`.

pub mod adapter;
pub mod decode;
mod front;
mod io;
mod judge;
mod kill;
mod relay;
mod results;
mod upstream;
