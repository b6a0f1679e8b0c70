//! Syntax errors: a statement the classifier cannot classify is shown to the
//! server's own parser, never run, so the client gets PostgreSQL's 42601
//! with its position instead of a gateway refusal.
//!
//! In place of the blocked statement the gateway sends, in one batch:
//!
//! ```text
//! Parse(tollgate_syntax_probe, <the client's SQL>)   parse + analysis only
//! Close(S, tollgate_syntax_probe)
//! Parse("", DO … RAISE 42501) / Bind / Execute      the gateway's refusal
//! [Sync]                                            simple Query only
//! ```
//!
//! Nothing in it can run the client's SQL: Parse never executes, the
//! statement lives under the gateway's name only until the Close right
//! behind it, and the raising statement always follows in the same batch.
//! So either the server rejects the text (its error comes back; the rest of
//! the batch is skipped until Sync, as after any error) or the gateway's
//! 42501 does. The server's answer decides only which error the client sees.
//! The responses to the injected Parse/Close/Bind are filtered out by the
//! upstream side. A simple Query destroys the unnamed statement and portal
//! anyway; in the extended protocol a blocked Parse already ended the
//! client's batch, as any error would.
//!
//! A simple Query may hold several statements, which Parse refuses with
//! 42601 "cannot insert multiple commands into a prepared statement" and no
//! position: that error says nothing about the client's text, so the
//! gateway's own refusal replaces it.

use bytes::{Bytes, BytesMut};
use tollgate_codecs::pg::{self, ErrorFields, ObjectKind, PgError};

/// The prepared-statement name the gateway parses under.
pub const PROBE_STATEMENT: &[u8] = b"tollgate_syntax_probe";

/// Parse + Close of `sql` under the probe's name.
pub fn encode_probe(dst: &mut BytesMut, sql: &[u8]) -> Result<(), PgError> {
    pg::encode_parse(dst, PROBE_STATEMENT, sql, &[])?;
    pg::encode_close(dst, ObjectKind::Statement, PROBE_STATEMENT)
}

/// The gateway's own refusal as an ErrorResponse (what the raising statement
/// produces once its context is stripped).
pub fn refusal(message: &str, rule: &str) -> Result<Bytes, PgError> {
    let detail = format!("blocked by tollgate rule \"{rule}\"");
    let mut b = BytesMut::new();
    pg::encode_error_response(
        &mut b,
        &ErrorFields {
            detail: Some(&detail),
            ..ErrorFields::error("42501", message)
        },
    )?;
    Ok(b.freeze())
}

/// Whether an ErrorResponse body is a 42601 without a position (not about
/// where the client's text is wrong).
pub fn is_unpositioned_syntax_error(body: &[u8]) -> bool {
    pg::ErrorResponse::parse_body(pg::tag::ERROR_RESPONSE, body)
        .is_ok_and(|e| e.code() == Some(b"42601") && e.field(b'P').is_none())
}
