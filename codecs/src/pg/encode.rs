//! Encoders: each appends one whole message to a `BytesMut`, length patched in
//! at the end; on error the buffer is left as it was.

use bytes::{BufMut, BytesMut};

use super::backend::{DataRow, Field, TransactionStatus};
use super::error::PgError;
use super::frontend::ObjectKind;
use super::startup::{
    CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, MAX_CANCEL_KEY, PROTOCOL_3_0, SSL_REQUEST_CODE,
};

/// Writes `tag`, a placeholder length, the body `f` writes, then the length.
fn message(
    dst: &mut BytesMut,
    tag: Option<u8>,
    f: impl FnOnce(&mut BytesMut) -> Result<(), PgError>,
) -> Result<(), PgError> {
    let start = dst.len();
    if let Some(tag) = tag {
        dst.put_u8(tag);
    }
    let at = dst.len();
    dst.put_i32(0);
    let len = f(dst).map(|()| dst.len() - at);
    match len {
        Ok(len) if len <= i32::MAX as usize => {
            dst[at..at + 4].copy_from_slice(&(len as i32).to_be_bytes());
            Ok(())
        }
        Ok(len) => {
            dst.truncate(start);
            Err(PgError::TooLong {
                what: "message",
                len,
                max: i32::MAX as usize,
            })
        }
        Err(e) => {
            dst.truncate(start);
            Err(e)
        }
    }
}

/// A message whose body is fixed and small, so it cannot fail.
fn fixed(dst: &mut BytesMut, tag: u8, body: &[u8]) {
    dst.reserve(5 + body.len());
    dst.put_u8(tag);
    dst.put_i32(4 + body.len() as i32);
    dst.extend_from_slice(body);
}

fn cstr(dst: &mut BytesMut, s: &[u8], what: &'static str) -> Result<(), PgError> {
    if memchr::memchr(0, s).is_some() {
        return Err(PgError::InteriorNul { what });
    }
    dst.extend_from_slice(s);
    dst.put_u8(0);
    Ok(())
}

fn count16(n: usize, what: &'static str) -> Result<u16, PgError> {
    u16::try_from(n).map_err(|_| PgError::TooLong {
        what,
        len: n,
        max: u16::MAX as usize,
    })
}

fn value(dst: &mut BytesMut, v: Option<&[u8]>) -> Result<(), PgError> {
    match v {
        None => dst.put_i32(-1),
        Some(v) => {
            let len = i32::try_from(v.len()).map_err(|_| PgError::TooLong {
                what: "value",
                len: v.len(),
                max: i32::MAX as usize,
            })?;
            dst.put_i32(len);
            dst.extend_from_slice(v);
        }
    }
    Ok(())
}

/// Writes values after a placeholder count, then patches the count.
fn values<'v>(
    dst: &mut BytesMut,
    vals: impl IntoIterator<Item = Option<&'v [u8]>>,
) -> Result<(), PgError> {
    let at = dst.len();
    dst.put_u16(0);
    let mut n = 0usize;
    for v in vals {
        value(dst, v)?;
        n += 1;
    }
    let n = count16(n, "value count")?;
    dst[at..at + 2].copy_from_slice(&n.to_be_bytes());
    Ok(())
}

fn formats(dst: &mut BytesMut, f: &[i16], what: &'static str) -> Result<(), PgError> {
    dst.put_u16(count16(f.len(), what)?);
    for &c in f {
        dst.put_i16(c);
    }
    Ok(())
}

// ---------------------------------------------------------------- backend

/// The fields tollgate writes into an ErrorResponse or NoticeResponse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorFields<'a> {
    /// ERROR, FATAL, PANIC (errors); WARNING, NOTICE, DEBUG, INFO, LOG (notices).
    pub severity: &'a str,
    /// SQLSTATE, five characters.
    pub code: &'a str,
    pub message: &'a str,
    pub detail: Option<&'a str>,
    pub hint: Option<&'a str>,
}

impl<'a> ErrorFields<'a> {
    /// An ERROR: the statement fails, the session goes on.
    pub fn error(code: &'a str, message: &'a str) -> Self {
        ErrorFields {
            severity: "ERROR",
            code,
            message,
            detail: None,
            hint: None,
        }
    }

    /// A FATAL: the session ends after it.
    pub fn fatal(code: &'a str, message: &'a str) -> Self {
        ErrorFields {
            severity: "FATAL",
            ..Self::error(code, message)
        }
    }
}

fn error_fields(dst: &mut BytesMut, f: &ErrorFields<'_>) -> Result<(), PgError> {
    // S is the localized severity, V the fixed one (PostgreSQL ≥ 9.6 sends both).
    for (code, v) in [
        (b'S', f.severity),
        (b'V', f.severity),
        (b'C', f.code),
        (b'M', f.message),
    ] {
        dst.put_u8(code);
        cstr(dst, v.as_bytes(), "error field")?;
    }
    for (code, v) in [(b'D', f.detail), (b'H', f.hint)] {
        if let Some(v) = v {
            dst.put_u8(code);
            cstr(dst, v.as_bytes(), "error field")?;
        }
    }
    dst.put_u8(0);
    Ok(())
}

pub fn encode_error_response(dst: &mut BytesMut, f: &ErrorFields<'_>) -> Result<(), PgError> {
    message(dst, Some(b'E'), |dst| error_fields(dst, f))
}

pub fn encode_notice_response(dst: &mut BytesMut, f: &ErrorFields<'_>) -> Result<(), PgError> {
    message(dst, Some(b'N'), |dst| error_fields(dst, f))
}

pub fn encode_ready_for_query(dst: &mut BytesMut, status: TransactionStatus) {
    fixed(dst, b'Z', &[status.byte()]);
}

pub fn encode_authentication_ok(dst: &mut BytesMut) {
    fixed(dst, b'R', &0i32.to_be_bytes());
}

pub fn encode_authentication_cleartext_password(dst: &mut BytesMut) {
    fixed(dst, b'R', &3i32.to_be_bytes());
}

pub fn encode_authentication_md5_password(dst: &mut BytesMut, salt: [u8; 4]) {
    let [a, b, c, d] = salt;
    fixed(dst, b'R', &[0, 0, 0, 5, a, b, c, d]);
}

pub fn encode_authentication_sasl(dst: &mut BytesMut, mechanisms: &[&str]) -> Result<(), PgError> {
    message(dst, Some(b'R'), |dst| {
        dst.put_i32(10);
        for m in mechanisms {
            if m.is_empty() {
                return Err(PgError::InvalidArgument {
                    what: "empty SASL mechanism name",
                });
            }
            cstr(dst, m.as_bytes(), "SASL mechanism")?;
        }
        dst.put_u8(0);
        Ok(())
    })
}

pub fn encode_authentication_sasl_continue(dst: &mut BytesMut, data: &[u8]) -> Result<(), PgError> {
    message(dst, Some(b'R'), |dst| {
        dst.put_i32(11);
        dst.extend_from_slice(data);
        Ok(())
    })
}

pub fn encode_authentication_sasl_final(dst: &mut BytesMut, data: &[u8]) -> Result<(), PgError> {
    message(dst, Some(b'R'), |dst| {
        dst.put_i32(12);
        dst.extend_from_slice(data);
        Ok(())
    })
}

fn cancel_key(key: &[u8]) -> Result<(), PgError> {
    if (4..=MAX_CANCEL_KEY).contains(&key.len()) {
        Ok(())
    } else {
        Err(PgError::InvalidArgument {
            what: "cancel key must be 4 to 256 bytes",
        })
    }
}

pub fn encode_backend_key_data(
    dst: &mut BytesMut,
    pid: i32,
    secret_key: &[u8],
) -> Result<(), PgError> {
    cancel_key(secret_key)?;
    message(dst, Some(b'K'), |dst| {
        dst.put_i32(pid);
        dst.extend_from_slice(secret_key);
        Ok(())
    })
}

pub fn encode_parameter_status(
    dst: &mut BytesMut,
    name: &[u8],
    value: &[u8],
) -> Result<(), PgError> {
    message(dst, Some(b'S'), |dst| {
        cstr(dst, name, "parameter name")?;
        cstr(dst, value, "parameter value")
    })
}

pub fn encode_command_complete(dst: &mut BytesMut, tag: &[u8]) -> Result<(), PgError> {
    message(dst, Some(b'C'), |dst| cstr(dst, tag, "command tag"))
}

pub fn encode_row_description<'f>(
    dst: &mut BytesMut,
    fields: impl IntoIterator<Item = Field<'f>>,
) -> Result<(), PgError> {
    message(dst, Some(b'T'), |dst| {
        let at = dst.len();
        dst.put_u16(0);
        let mut n = 0usize;
        for f in fields {
            cstr(dst, f.name, "field name")?;
            dst.put_u32(f.table_oid);
            dst.put_i16(f.column_id);
            dst.put_u32(f.type_oid);
            dst.put_i16(f.type_size);
            dst.put_i32(f.type_modifier);
            dst.put_i16(f.format);
            n += 1;
        }
        let n = count16(n, "field count")?;
        dst[at..at + 2].copy_from_slice(&n.to_be_bytes());
        Ok(())
    })
}

/// A DataRow from values (`None` = NULL).
pub fn encode_data_row<'v>(
    dst: &mut BytesMut,
    vals: impl IntoIterator<Item = Option<&'v [u8]>>,
) -> Result<(), PgError> {
    message(dst, Some(b'D'), |dst| values(dst, vals))
}

/// Re-encodes `row` with some values replaced, for masking that changes a
/// value's length. `replacements` are `(column index, new value)` in
/// increasing column order; the columns between them are copied as one block
/// each, length prefixes included, without being decoded.
pub fn encode_data_row_replacing(
    dst: &mut BytesMut,
    row: &DataRow<'_>,
    replacements: &[(usize, Option<&[u8]>)],
) -> Result<(), PgError> {
    message(dst, Some(b'D'), |dst| {
        let raw = row.raw();
        let invalid = PgError::InvalidArgument {
            what: "DataRow replacements must name existing columns in increasing order",
        };
        dst.reserve(2 + raw.len());
        dst.put_u16(count16(row.len(), "column count")?);
        let mut reps = replacements.iter().peekable();
        let mut copied = 0;
        for (i, (span, _)) in row.column_spans().enumerate() {
            let Some(&(_, new)) = reps.next_if(|(idx, _)| *idx == i) else {
                continue;
            };
            dst.extend_from_slice(raw.get(copied..span.start).ok_or(invalid.clone())?);
            value(dst, new)?;
            copied = span.end;
        }
        if reps.next().is_some() {
            return Err(invalid);
        }
        dst.extend_from_slice(raw.get(copied..).unwrap_or_default());
        Ok(())
    })
}

pub fn encode_negotiate_protocol_version(
    dst: &mut BytesMut,
    newest_minor: i32,
    unrecognized: &[&[u8]],
) -> Result<(), PgError> {
    message(dst, Some(b'v'), |dst| {
        dst.put_i32(newest_minor);
        dst.put_i32(i32::from(count16(unrecognized.len(), "option count")?));
        for o in unrecognized {
            cstr(dst, o, "protocol option")?;
        }
        Ok(())
    })
}

/// CopyData `d` (either direction).
pub fn encode_copy_data(dst: &mut BytesMut, data: &[u8]) -> Result<(), PgError> {
    message(dst, Some(b'd'), |dst| {
        dst.extend_from_slice(data);
        Ok(())
    })
}

/// A message with an empty body: Sync `S`, Flush `H`, Terminate `X`,
/// CopyDone `c`, ParseComplete `1`, BindComplete `2`, CloseComplete `3`,
/// NoData `n`, PortalSuspended `s`, EmptyQueryResponse `I`.
pub fn encode_empty(dst: &mut BytesMut, tag: u8) {
    fixed(dst, tag, &[]);
}

// ---------------------------------------------------------------- frontend

/// A StartupMessage for protocol 3.`minor`; names must be non-empty.
pub fn encode_startup_message<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    dst: &mut BytesMut,
    minor: u16,
    params: impl IntoIterator<Item = (K, V)>,
) -> Result<(), PgError> {
    message(dst, None, |dst| {
        dst.put_u32(PROTOCOL_3_0 | u32::from(minor));
        for (k, v) in params {
            if k.as_ref().is_empty() {
                return Err(PgError::InvalidArgument {
                    what: "empty startup parameter name",
                });
            }
            cstr(dst, k.as_ref(), "startup parameter name")?;
            cstr(dst, v.as_ref(), "startup parameter value")?;
        }
        dst.put_u8(0);
        Ok(())
    })
}

pub fn encode_ssl_request(dst: &mut BytesMut) {
    dst.put_i32(8);
    dst.put_u32(SSL_REQUEST_CODE);
}

pub fn encode_gssenc_request(dst: &mut BytesMut) {
    dst.put_i32(8);
    dst.put_u32(GSSENC_REQUEST_CODE);
}

pub fn encode_cancel_request(
    dst: &mut BytesMut,
    pid: i32,
    secret_key: &[u8],
) -> Result<(), PgError> {
    cancel_key(secret_key)?;
    message(dst, None, |dst| {
        dst.put_u32(CANCEL_REQUEST_CODE);
        dst.put_i32(pid);
        dst.extend_from_slice(secret_key);
        Ok(())
    })
}

pub fn encode_password_message(dst: &mut BytesMut, password: &[u8]) -> Result<(), PgError> {
    message(dst, Some(b'p'), |dst| cstr(dst, password, "password"))
}

pub fn encode_sasl_initial_response(
    dst: &mut BytesMut,
    mechanism: &[u8],
    data: Option<&[u8]>,
) -> Result<(), PgError> {
    message(dst, Some(b'p'), |dst| {
        cstr(dst, mechanism, "SASL mechanism")?;
        value(dst, data)
    })
}

pub fn encode_sasl_response(dst: &mut BytesMut, data: &[u8]) -> Result<(), PgError> {
    message(dst, Some(b'p'), |dst| {
        dst.extend_from_slice(data);
        Ok(())
    })
}

pub fn encode_query(dst: &mut BytesMut, sql: &[u8]) -> Result<(), PgError> {
    message(dst, Some(b'Q'), |dst| cstr(dst, sql, "query"))
}

pub fn encode_parse(
    dst: &mut BytesMut,
    name: &[u8],
    query: &[u8],
    param_types: &[u32],
) -> Result<(), PgError> {
    message(dst, Some(b'P'), |dst| {
        cstr(dst, name, "statement name")?;
        cstr(dst, query, "query")?;
        dst.put_u16(count16(param_types.len(), "parameter type count")?);
        for &t in param_types {
            dst.put_u32(t);
        }
        Ok(())
    })
}

pub fn encode_bind<'v>(
    dst: &mut BytesMut,
    portal: &[u8],
    statement: &[u8],
    param_formats: &[i16],
    params: impl IntoIterator<Item = Option<&'v [u8]>>,
    result_formats: &[i16],
) -> Result<(), PgError> {
    message(dst, Some(b'B'), |dst| {
        cstr(dst, portal, "portal name")?;
        cstr(dst, statement, "statement name")?;
        formats(dst, param_formats, "parameter format count")?;
        values(dst, params)?;
        formats(dst, result_formats, "result format count")
    })
}

pub fn encode_describe(dst: &mut BytesMut, kind: ObjectKind, name: &[u8]) -> Result<(), PgError> {
    message(dst, Some(b'D'), |dst| {
        dst.put_u8(kind.byte());
        cstr(dst, name, "object name")
    })
}

pub fn encode_close(dst: &mut BytesMut, kind: ObjectKind, name: &[u8]) -> Result<(), PgError> {
    message(dst, Some(b'C'), |dst| {
        dst.put_u8(kind.byte());
        cstr(dst, name, "object name")
    })
}

pub fn encode_execute(dst: &mut BytesMut, portal: &[u8], max_rows: i32) -> Result<(), PgError> {
    message(dst, Some(b'E'), |dst| {
        cstr(dst, portal, "portal name")?;
        dst.put_i32(max_rows);
        Ok(())
    })
}

pub fn encode_sync(dst: &mut BytesMut) {
    encode_empty(dst, b'S');
}

pub fn encode_flush(dst: &mut BytesMut) {
    encode_empty(dst, b'H');
}

pub fn encode_terminate(dst: &mut BytesMut) {
    encode_empty(dst, b'X');
}
