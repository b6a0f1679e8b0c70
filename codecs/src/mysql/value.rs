//! Binary-protocol values (prepared-statement rows and parameters): how
//! many bytes each column type takes, read and written.

use bytes::{BufMut, BytesMut};

use super::consts::column_type as ty;
use super::error::MySqlError;
use super::read::{Reader, put_lenenc_bytes};

/// One binary value's bytes, without the length prefix the wire puts in
/// front of strings and temporal values: the little-endian integer or
/// IEEE float, the string/decimal/blob bytes, or the 0/4/7/11 (date,
/// datetime, timestamp) or 0/8/12 (time) bytes of a temporal value.
pub type BinaryValue<'a> = &'a [u8];

/// How a column type's values are laid out in the binary protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Exactly this many bytes (integers, floats; 0 for NULL-typed).
    Fixed(usize),
    /// A length-encoded string (text, blobs, decimals, JSON, BIT, ...).
    LengthEncoded,
    /// A one-byte length, then that many bytes, one of the sizes listed.
    Temporal(&'static [usize]),
}

const DATE_SIZES: &[usize] = &[0, 4, 7, 11];
const TIME_SIZES: &[usize] = &[0, 8, 12];

/// The layout of `column_type`; a type the codec does not know is refused
/// rather than guessed, since a wrong width desynchronises the whole row.
pub fn binary_layout(column_type: u8) -> Result<Layout, MySqlError> {
    Ok(match column_type {
        ty::TINY => Layout::Fixed(1),
        ty::SHORT | ty::YEAR => Layout::Fixed(2),
        ty::LONG | ty::INT24 | ty::FLOAT => Layout::Fixed(4),
        ty::LONGLONG | ty::DOUBLE => Layout::Fixed(8),
        ty::NULL => Layout::Fixed(0),
        ty::DATE | ty::DATETIME | ty::TIMESTAMP | ty::NEWDATE => Layout::Temporal(DATE_SIZES),
        ty::TIME => Layout::Temporal(TIME_SIZES),
        ty::DECIMAL
        | ty::NEWDECIMAL
        | ty::VARCHAR
        | ty::BIT
        | ty::JSON
        | ty::ENUM
        | ty::SET
        | ty::TINY_BLOB
        | ty::MEDIUM_BLOB
        | ty::LONG_BLOB
        | ty::BLOB
        | ty::VAR_STRING
        | ty::STRING
        | ty::GEOMETRY => Layout::LengthEncoded,
        other => {
            return Err(MySqlError::Unsupported {
                what: "binary column type",
                value: u64::from(other),
            });
        }
    })
}

/// Reads one value of `column_type`.
pub fn read_binary_value<'a>(
    r: &mut Reader<'a>,
    column_type: u8,
) -> Result<BinaryValue<'a>, MySqlError> {
    match binary_layout(column_type)? {
        Layout::Fixed(n) => r.take(n, "fixed-width value"),
        Layout::LengthEncoded => r.lenenc_bytes("length-encoded value"),
        Layout::Temporal(sizes) => {
            let n = usize::from(r.u8("temporal value length")?);
            if !sizes.contains(&n) {
                return Err(r.err("temporal value of an invalid length"));
            }
            r.take(n, "temporal value")
        }
    }
}

/// Writes one value of `column_type`; refuses bytes that do not fit the
/// type (a masked value must stay valid for its type).
pub fn write_binary_value(
    out: &mut BytesMut,
    column_type: u8,
    value: BinaryValue<'_>,
) -> Result<(), MySqlError> {
    match binary_layout(column_type)? {
        Layout::Fixed(n) if value.len() == n => out.extend_from_slice(value),
        Layout::Fixed(_) => {
            return Err(MySqlError::InvalidArgument {
                what: "value width does not match its fixed-width type",
            });
        }
        Layout::LengthEncoded => put_lenenc_bytes(out, value),
        Layout::Temporal(sizes) if sizes.contains(&value.len()) => {
            // The sizes listed are all below 256.
            out.put_u8(value.len() as u8);
            out.extend_from_slice(value);
        }
        Layout::Temporal(_) => {
            return Err(MySqlError::InvalidArgument {
                what: "temporal value of an invalid length",
            });
        }
    }
    Ok(())
}
