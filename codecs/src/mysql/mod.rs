//! Sans-IO MySQL/MariaDB client/server protocol codec: packet framing,
//! connection phase, commands, result sets, and the client side of the
//! auth plugins for logging in upstream.
//!
//! What an adapter gets from here (see README.md next to this file):
//! - [`next_packet`] cuts logical packets (multi-packet payloads joined,
//!   sequence ids checked, the cap enforced from the headers) off a
//!   `BytesMut`; [`Packet::raw`] is what the allow path forwards.
//! - [`encode_packet`] / [`write_packet`] write packets with the sequence
//!   id the exchange is at, splitting payloads of 16 MiB and more.
//! - Typed views that borrow from a payload, each with `parse` and
//!   `encode`: [`Greeting`], [`ClientHead`] (SSLRequest),
//!   [`HandshakeResponse`], [`AuthSwitchRequest`], [`auth_more_data`],
//!   [`OkPacket`], [`ErrPacket`], [`EofPacket`], [`Command`],
//!   [`StmtExecute`], [`QueryResponse`], [`ColumnDefinition`],
//!   [`TextRow`], [`BinaryRow`], [`PrepareOk`].
//! - [`UpstreamLogin`]: the login to the server with a stored credential
//!   (native password, caching_sha2 fast/full path, MariaDB ed25519,
//!   cleartext over TLS only).

mod auth;
mod command;
mod consts;
mod error;
mod frame;
mod handshake;
mod login;
mod read;
mod response;
mod resultset;
mod value;

pub use auth::{
    AuthPlugin, caching_sha2_fast, cleartext, ed25519_public_key, ed25519_sign, native_password,
    scramble,
};
pub use command::{ChangeUser, Command, ExecuteParams, MAX_PARAMS, ParamType, StmtExecute};
pub use consts::{
    BINARY_COLLATION, UTF8MB4_GENERAL_CI, caps, column_flag, column_type, com, status,
};
pub use error::MySqlError;
pub use frame::{
    Extent, HEADER_LEN, MAX_CHUNK, Packet, encode_packet, next_packet, packet_extent, write_packet,
};
pub use handshake::{
    AuthSwitchRequest, ClientHead, ConnectAttrs, Greeting, HandshakeResponse, MAX_CONNECT_ATTRS,
    MAX_PLUGIN_NAME, SSL_REQUEST_LEN, auth_more_data,
};
pub use login::{LoginConfig, LoginError, LoginStep, UpstreamLogin};
pub use read::{NULL_VALUE, Reader, lenenc_len, put_lenenc, put_lenenc_bytes, put_nul_str};
pub use response::{
    EOF_HEADER, ERR_HEADER, EndOfRows, EofPacket, ErrPacket, OK_HEADER, OkPacket, is_end_of_rows,
    is_err,
};
pub use resultset::{
    BinaryRow, ColumnDefinition, LOCAL_INFILE_HEADER, MAX_COLUMNS, PrepareOk, QueryResponse,
    TextRow, binary_null_bitmap_len, encode_binary_row, encode_column_count, encode_local_infile,
    encode_text_row,
};
pub use value::{BinaryValue, Layout, binary_layout, read_binary_value, write_binary_value};

/// Caps on a logical packet's payload, by what the packet may be. The
/// defaults leave room for a 16 MiB+ value (multi-packet) in a row or a
/// statement, and keep login packets small, since they arrive before the
/// caller is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Login-phase packets (greeting, HandshakeResponse41 with a ~1 KB
    /// token and connect attributes, auth switch data).
    pub login: usize,
    /// Commands after login (statements, long data, execute parameters).
    pub command: usize,
    /// Server packets after login (rows, column definitions, OK/ERR).
    pub response: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            login: 64 << 10,
            command: 64 << 20,
            response: 64 << 20,
        }
    }
}
