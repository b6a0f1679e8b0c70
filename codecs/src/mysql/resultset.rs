//! Result sets: the first response packet, column definitions, text rows,
//! binary rows (decoded, and re-encoded when a value changes), the
//! COM_STMT_PREPARE response and the LOCAL INFILE request.

use bytes::{BufMut, BytesMut};

use super::error::MySqlError;
use super::read::{NULL_VALUE, Reader, put_lenenc, put_lenenc_bytes};
use super::response::{ERR_HEADER, ErrPacket, OK_HEADER, OkPacket};
use super::value::{BinaryValue, read_binary_value, write_binary_value};

/// Most columns a result set may declare (MySQL's and MariaDB's tables stop
/// at 4096; a select list can name a column twice, so some headroom).
pub const MAX_COLUMNS: u64 = 1 << 16;
/// Header of a LOCAL INFILE request.
pub const LOCAL_INFILE_HEADER: u8 = 0xFB;

/// The first packet of the response to COM_QUERY or COM_STMT_EXECUTE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryResponse<'a> {
    Ok(OkPacket<'a>),
    Err(ErrPacket<'a>),
    /// The server asks the client to send this file (LOAD DATA LOCAL).
    LocalInfile {
        filename: &'a [u8],
    },
    /// A result set of this many columns follows.
    ResultSet {
        columns: u64,
    },
}

impl<'a> QueryResponse<'a> {
    pub fn parse(payload: &'a [u8], capabilities: u32) -> Result<QueryResponse<'a>, MySqlError> {
        match payload.first() {
            Some(&OK_HEADER) => OkPacket::parse(payload, capabilities).map(QueryResponse::Ok),
            Some(&ERR_HEADER) => ErrPacket::parse(payload).map(QueryResponse::Err),
            Some(&LOCAL_INFILE_HEADER) => Ok(QueryResponse::LocalInfile {
                filename: &payload[1..],
            }),
            _ => {
                let mut r = Reader::new("column count", payload);
                let columns = r.lenenc("column count")?;
                if !r.is_empty() {
                    // MySQL 8's optional metadata flag: not negotiated here.
                    return Err(r.err("trailing bytes after the column count"));
                }
                if columns > MAX_COLUMNS {
                    return Err(MySqlError::TooLong {
                        what: "column count",
                        len: columns as usize,
                        max: MAX_COLUMNS as usize,
                    });
                }
                Ok(QueryResponse::ResultSet { columns })
            }
        }
    }
}

/// Writes a LOCAL INFILE request payload.
pub fn encode_local_infile(out: &mut BytesMut, filename: &[u8]) {
    out.put_u8(LOCAL_INFILE_HEADER);
    out.extend_from_slice(filename);
}

/// Writes a column-count payload.
pub fn encode_column_count(out: &mut BytesMut, columns: u64) {
    put_lenenc(out, columns);
}

/// A column definition (ColumnDefinition41).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDefinition<'a> {
    pub catalog: &'a [u8],
    pub schema: &'a [u8],
    pub table: &'a [u8],
    pub org_table: &'a [u8],
    pub name: &'a [u8],
    pub org_name: &'a [u8],
    pub charset: u16,
    pub length: u32,
    pub column_type: u8,
    pub flags: u16,
    pub decimals: u8,
    /// The default value, only in answers to COM_FIELD_LIST (`Some(None)`:
    /// a NULL default).
    pub default_values: Option<Option<&'a [u8]>>,
}

impl<'a> ColumnDefinition<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<ColumnDefinition<'a>, MySqlError> {
        let mut r = Reader::new("column definition", payload);
        let catalog = r.lenenc_bytes("catalog")?;
        let schema = r.lenenc_bytes("schema")?;
        let table = r.lenenc_bytes("table")?;
        let org_table = r.lenenc_bytes("org_table")?;
        let name = r.lenenc_bytes("name")?;
        let org_name = r.lenenc_bytes("org_name")?;
        let fixed = r.lenenc_bytes("fixed-length fields")?;
        if fixed.len() < 12 {
            return Err(r.err("fixed-length fields shorter than 12 bytes"));
        }
        let mut f = Reader::new("column definition", fixed);
        let charset = f.u16("character set")?;
        let length = f.u32("column length")?;
        let column_type = f.u8("column type")?;
        let flags = f.u16("flags")?;
        let decimals = f.u8("decimals")?;
        let default_values = if r.is_empty() {
            None
        } else {
            Some(r.lenenc_or_null("default values")?)
        };
        if !r.is_empty() {
            return Err(r.err("trailing bytes"));
        }
        Ok(ColumnDefinition {
            catalog,
            schema,
            table,
            org_table,
            name,
            org_name,
            charset,
            length,
            column_type,
            flags,
            decimals,
            default_values,
        })
    }

    pub fn encode(&self, out: &mut BytesMut) {
        for s in [
            self.catalog,
            self.schema,
            self.table,
            self.org_table,
            self.name,
            self.org_name,
        ] {
            put_lenenc_bytes(out, s);
        }
        out.put_u8(0x0C);
        out.put_u16_le(self.charset);
        out.put_u32_le(self.length);
        out.put_u8(self.column_type);
        out.put_u16_le(self.flags);
        out.put_u8(self.decimals);
        out.put_u16(0);
        match self.default_values {
            Some(Some(d)) => put_lenenc_bytes(out, d),
            Some(None) => out.put_u8(NULL_VALUE),
            None => {}
        }
    }
}

/// Checks a list of (column, replacement) pairs: ascending, in range.
fn check_replacements<T>(replace: &[(usize, T)], columns: usize) -> Result<(), MySqlError> {
    let mut prev = None;
    for (i, _) in replace {
        if *i >= columns || prev.is_some_and(|p| p >= *i) {
            return Err(MySqlError::InvalidArgument {
                what: "replacements must name distinct columns in ascending order",
            });
        }
        prev = Some(*i);
    }
    Ok(())
}

/// A text-protocol row: one length-encoded string or NULL (0xFB) per column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextRow<'a> {
    payload: &'a [u8],
    columns: usize,
}

impl<'a> TextRow<'a> {
    /// Validates a row of `columns` values; the iterator then cannot fail.
    pub fn parse(payload: &'a [u8], columns: usize) -> Result<TextRow<'a>, MySqlError> {
        let mut r = Reader::new("text row", payload);
        for _ in 0..columns {
            r.lenenc_or_null("value")?;
        }
        if !r.is_empty() {
            return Err(r.err("more values than columns"));
        }
        Ok(TextRow { payload, columns })
    }

    pub fn len(&self) -> usize {
        self.columns
    }

    pub fn is_empty(&self) -> bool {
        self.columns == 0
    }

    /// The values, `None` for NULL.
    pub fn values(&self) -> impl Iterator<Item = Option<&'a [u8]>> + use<'a> {
        let mut r = Reader::new("text row", self.payload);
        (0..self.columns).map_while(move |_| r.lenenc_or_null("value").ok())
    }

    /// Writes this row with the listed values replaced (`None` = NULL):
    /// lengths are re-encoded, so a masked value may change length.
    pub fn encode_replacing(
        &self,
        out: &mut BytesMut,
        replace: &[(usize, Option<&[u8]>)],
    ) -> Result<(), MySqlError> {
        check_replacements(replace, self.columns)?;
        encode_text_row(out, self.values(), replace);
        Ok(())
    }
}

/// Writes a text row from its values (`None` = NULL), with `replace`
/// applied (column indices ascending; checked by the caller).
pub fn encode_text_row<'v>(
    out: &mut BytesMut,
    values: impl Iterator<Item = Option<&'v [u8]>>,
    replace: &[(usize, Option<&[u8]>)],
) {
    let mut next = replace.iter().peekable();
    for (i, v) in values.enumerate() {
        let v = match next.next_if(|(c, _)| *c == i) {
            Some((_, r)) => *r,
            None => v,
        };
        match v {
            Some(v) => put_lenenc_bytes(out, v),
            None => out.put_u8(NULL_VALUE),
        }
    }
}

/// A binary-protocol row: header 0x00, a NULL bitmap offset by 2 bits, then
/// the non-NULL values laid out by their column types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinaryRow<'a, 't> {
    payload: &'a [u8],
    types: &'t [u8],
}

/// Bytes of a binary row's NULL bitmap for `columns` columns.
pub fn binary_null_bitmap_len(columns: usize) -> usize {
    (columns + 7 + 2) / 8
}

impl<'a, 't> BinaryRow<'a, 't> {
    /// Validates a row whose columns have `types` (from the column
    /// definitions); the iterator then cannot fail.
    pub fn parse(payload: &'a [u8], types: &'t [u8]) -> Result<BinaryRow<'a, 't>, MySqlError> {
        let row = BinaryRow { payload, types };
        let mut r = Reader::new("binary row", payload);
        if r.u8("header")? != 0x00 {
            return Err(r.err("header is not 0x00"));
        }
        let bitmap = r.take(binary_null_bitmap_len(types.len()), "NULL bitmap")?;
        for (i, &t) in types.iter().enumerate() {
            if !is_null(bitmap, i) {
                read_binary_value(&mut r, t)?;
            }
        }
        if !r.is_empty() {
            return Err(r.err("more values than columns"));
        }
        Ok(row)
    }

    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// The values (see [`BinaryValue`]), `None` for NULL.
    pub fn values(&self) -> impl Iterator<Item = Option<BinaryValue<'a>>> + use<'a, 't> {
        let bitmap_len = binary_null_bitmap_len(self.types.len());
        let bitmap = self.payload.get(1..1 + bitmap_len).unwrap_or_default();
        let mut r = Reader::new(
            "binary row",
            self.payload.get(1 + bitmap_len..).unwrap_or_default(),
        );
        let types = self.types;
        types.iter().enumerate().map_while(move |(i, &t)| {
            if is_null(bitmap, i) {
                Some(None)
            } else {
                read_binary_value(&mut r, t).ok().map(Some)
            }
        })
    }

    /// Writes this row with the listed values replaced (`None` = NULL). A
    /// replacement must be valid for its column's type (same width for
    /// integers and floats, a valid temporal length); strings, decimals
    /// and blobs may change length.
    pub fn encode_replacing(
        &self,
        out: &mut BytesMut,
        replace: &[(usize, Option<BinaryValue<'_>>)],
    ) -> Result<(), MySqlError> {
        check_replacements(replace, self.types.len())?;
        let start = out.len();
        let r = encode_binary_row(out, self.types, self.values(), replace);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }
}

fn is_null(bitmap: &[u8], column: usize) -> bool {
    let bit = column + 2;
    bitmap
        .get(bit / 8)
        .is_some_and(|b| b & (1 << (bit % 8)) != 0)
}

/// Writes a binary row of columns typed `types` from `values` (`None` =
/// NULL), with `replace` applied (ascending column indices).
pub fn encode_binary_row<'v>(
    out: &mut BytesMut,
    types: &[u8],
    values: impl Iterator<Item = Option<BinaryValue<'v>>>,
    replace: &[(usize, Option<BinaryValue<'_>>)],
) -> Result<(), MySqlError> {
    out.put_u8(0x00);
    let bitmap_at = out.len();
    out.put_bytes(0, binary_null_bitmap_len(types.len()));
    let mut next = replace.iter().peekable();
    let mut written = 0;
    for ((i, v), &t) in values.enumerate().zip(types) {
        let v = match next.next_if(|(c, _)| *c == i) {
            Some((_, r)) => *r,
            None => v,
        };
        match v {
            Some(v) => write_binary_value(out, t, v)?,
            None => {
                let bit = i + 2;
                out[bitmap_at + bit / 8] |= 1 << (bit % 8);
            }
        }
        written += 1;
    }
    if written != types.len() {
        return Err(MySqlError::InvalidArgument {
            what: "fewer values than column types",
        });
    }
    Ok(())
}

/// COM_STMT_PREPARE_OK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepareOk {
    pub stmt_id: u32,
    /// Column definitions that follow the parameter definitions.
    pub columns: u16,
    /// Parameter definitions that follow this packet.
    pub params: u16,
    pub warnings: u16,
}

impl PrepareOk {
    pub fn parse(payload: &[u8]) -> Result<PrepareOk, MySqlError> {
        let mut r = Reader::new("COM_STMT_PREPARE_OK", payload);
        if r.u8("header")? != OK_HEADER {
            return Err(r.err("header is not 0x00"));
        }
        let stmt_id = r.u32("statement id")?;
        let columns = r.u16("column count")?;
        let params = r.u16("parameter count")?;
        r.u8("filler")?;
        let warnings = if r.is_empty() {
            0
        } else {
            r.u16("warning count")?
        };
        Ok(PrepareOk {
            stmt_id,
            columns,
            params,
            warnings,
        })
    }

    pub fn encode(&self, out: &mut BytesMut) {
        out.put_u8(OK_HEADER);
        out.put_u32_le(self.stmt_id);
        out.put_u16_le(self.columns);
        out.put_u16_le(self.params);
        out.put_u8(0);
        out.put_u16_le(self.warnings);
    }
}
