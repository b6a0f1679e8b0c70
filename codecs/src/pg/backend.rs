//! Typed views of the messages a server sends.

use std::ops::Range;

use super::error::PgError;
use super::frame::{Frame, HEADER_LEN};
use super::read::{Formats, Oids, Reader, Values, skip_values, typed_view};
use super::startup::MAX_CANCEL_KEY;

/// Authentication `R`: a request from the server, or its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication<'a> {
    Ok,
    KerberosV5,
    CleartextPassword,
    Md5Password {
        salt: [u8; 4],
    },
    Gss,
    GssContinue {
        data: &'a [u8],
    },
    Sspi,
    Sasl {
        mechanisms: SaslMechanisms<'a>,
    },
    SaslContinue {
        data: &'a [u8],
    },
    SaslFinal {
        data: &'a [u8],
    },
    /// A request code this codec does not know; the caller refuses it.
    Unknown {
        code: i32,
        data: &'a [u8],
    },
}
typed_view!(Authentication, b'R');

impl<'a> Authentication<'a> {
    fn read(mut r: Reader<'a>) -> Result<Self, PgError> {
        let code = r.i32("authentication request code")?;
        let done = |r: &Reader<'a>, a| r.finish().map(|()| a);
        match code {
            0 => done(&r, Authentication::Ok),
            2 => done(&r, Authentication::KerberosV5),
            3 => done(&r, Authentication::CleartextPassword),
            5 => {
                let salt = r.take(4, "md5 salt")?;
                let salt = [salt[0], salt[1], salt[2], salt[3]];
                done(&r, Authentication::Md5Password { salt })
            }
            7 => done(&r, Authentication::Gss),
            8 => Ok(Authentication::GssContinue {
                data: r.remaining(),
            }),
            9 => done(&r, Authentication::Sspi),
            10 => {
                let raw = r.remaining();
                let mut check = Reader::new(b'R', raw);
                while !check
                    .cstr("SASL mechanism list is not terminated")?
                    .is_empty()
                {}
                check.finish()?;
                Ok(Authentication::Sasl {
                    mechanisms: SaslMechanisms {
                        r: Reader::new(b'R', raw),
                    },
                })
            }
            11 => Ok(Authentication::SaslContinue {
                data: r.remaining(),
            }),
            12 => Ok(Authentication::SaslFinal {
                data: r.remaining(),
            }),
            code => Ok(Authentication::Unknown {
                code,
                data: r.remaining(),
            }),
        }
    }
}

/// The mechanisms AuthenticationSASL offers, validated.
#[derive(Clone)]
pub struct SaslMechanisms<'a> {
    r: Reader<'a>,
}

impl PartialEq for SaslMechanisms<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.r.remaining() == other.r.remaining()
    }
}
impl Eq for SaslMechanisms<'_> {}

impl std::fmt::Debug for SaslMechanisms<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.clone().map(String::from_utf8_lossy))
            .finish()
    }
}

impl<'a> Iterator for SaslMechanisms<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        self.r.cstr("").ok().filter(|m| !m.is_empty())
    }
}

/// BackendKeyData `K`: what a CancelRequest must quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendKeyData<'a> {
    pub pid: i32,
    /// 4 bytes in protocol 3.0, up to 256 in 3.2.
    pub secret_key: &'a [u8],
}
typed_view!(BackendKeyData, b'K');

impl<'a> BackendKeyData<'a> {
    fn read(mut r: Reader<'a>) -> Result<Self, PgError> {
        let pid = r.i32("process id")?;
        let secret_key = r.remaining();
        if !(4..=MAX_CANCEL_KEY).contains(&secret_key.len()) {
            return Err(r.err("secret key length"));
        }
        Ok(BackendKeyData { pid, secret_key })
    }
}

/// ParameterStatus `S`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParameterStatus<'a> {
    pub name: &'a [u8],
    pub value: &'a [u8],
}
typed_view!(ParameterStatus, b'S');

impl<'a> ParameterStatus<'a> {
    fn read(mut r: Reader<'a>) -> Result<Self, PgError> {
        let name = r.cstr("parameter name")?;
        let value = r.cstr("parameter value")?;
        r.finish()?;
        Ok(ParameterStatus { name, value })
    }
}

/// The transaction state ReadyForQuery reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    Idle,
    InTransaction,
    Failed,
}

impl TransactionStatus {
    pub fn byte(self) -> u8 {
        match self {
            TransactionStatus::Idle => b'I',
            TransactionStatus::InTransaction => b'T',
            TransactionStatus::Failed => b'E',
        }
    }
}

/// ReadyForQuery `Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyForQuery {
    pub status: TransactionStatus,
}

impl ReadyForQuery {
    pub const TAG: u8 = b'Z';

    pub fn parse(frame: &Frame) -> Result<Self, PgError> {
        Self::read(super::read::expect(frame, b'Z')?)
    }

    pub fn parse_body(body: &[u8]) -> Result<Self, PgError> {
        Self::read(Reader::new(b'Z', body))
    }

    fn read(mut r: Reader<'_>) -> Result<Self, PgError> {
        let status = match r.u8("transaction status")? {
            b'I' => TransactionStatus::Idle,
            b'T' => TransactionStatus::InTransaction,
            b'E' => TransactionStatus::Failed,
            _ => return Err(r.err("unknown transaction status")),
        };
        r.finish()?;
        Ok(ReadyForQuery { status })
    }
}

/// One column of a RowDescription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a [u8],
    pub table_oid: u32,
    pub column_id: i16,
    pub type_oid: u32,
    pub type_size: i16,
    pub type_modifier: i32,
    /// 0 text, 1 binary.
    pub format: i16,
}

fn read_field<'a>(r: &mut Reader<'a>) -> Result<Field<'a>, PgError> {
    let what = "field description runs past the message";
    Ok(Field {
        name: r.cstr("field name is not terminated")?,
        table_oid: r.u32(what)?,
        column_id: r.i16(what)?,
        type_oid: r.u32(what)?,
        type_size: r.i16(what)?,
        type_modifier: r.i32(what)?,
        format: r.i16(what)?,
    })
}

/// RowDescription `T`: the columns the DataRows that follow carry.
#[derive(Debug, Clone)]
pub struct RowDescription<'a> {
    count: u16,
    raw: &'a [u8],
}
typed_view!(RowDescription, b'T');

impl<'a> RowDescription<'a> {
    fn read(mut r: Reader<'a>) -> Result<Self, PgError> {
        let count = r.u16("field count")?;
        let raw = r.remaining();
        for _ in 0..count {
            read_field(&mut r)?;
        }
        r.finish()?;
        Ok(RowDescription { count, raw })
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn fields(&self) -> Fields<'a> {
        Fields {
            r: Reader::new(b'T', self.raw),
            left: self.count,
        }
    }
}

/// Iterator over a validated RowDescription.
#[derive(Clone)]
pub struct Fields<'a> {
    r: Reader<'a>,
    left: u16,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        read_field(&mut self.r).ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

impl ExactSizeIterator for Fields<'_> {}

/// DataRow `D`: one row's values, every length checked against the frame.
#[derive(Debug, Clone)]
pub struct DataRow<'a> {
    count: u16,
    /// The column values, each with its length prefix.
    raw: &'a [u8],
    /// Offset of `raw` in what the row was parsed from (frame or body).
    base: usize,
}

impl<'a> DataRow<'a> {
    pub const TAG: u8 = b'D';

    pub fn parse(frame: &'a Frame) -> Result<Self, PgError> {
        let mut row = Self::read(super::read::expect(frame, b'D')?)?;
        row.base += HEADER_LEN;
        Ok(row)
    }

    pub fn parse_body(body: &'a [u8]) -> Result<Self, PgError> {
        Self::read(Reader::new(b'D', body))
    }

    fn read(mut r: Reader<'a>) -> Result<Self, PgError> {
        let count = r.u16("column count")?;
        let raw = skip_values(&mut r, count)?;
        r.finish()?;
        Ok(DataRow {
            count,
            raw,
            base: 2,
        })
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn values(&self) -> Values<'a> {
        Values::new(self.raw, self.count)
    }

    /// Where each value lies in what the row was parsed from (the whole frame
    /// for [`DataRow::parse`], the body for [`DataRow::parse_body`]), `None`
    /// for NULL: for rewriting a value in place when masking keeps its length.
    pub fn value_ranges(&self) -> impl Iterator<Item = Option<Range<usize>>> + 'a {
        let base = self.base;
        self.column_spans()
            .map(move |(span, is_null)| (!is_null).then(|| base + span.start + 4..base + span.end))
    }

    /// Each column's span in `raw`, length prefix included, and whether it is NULL.
    pub(crate) fn column_spans(&self) -> impl Iterator<Item = (Range<usize>, bool)> + 'a {
        let raw = self.raw;
        let mut at = 0usize;
        (0..self.count).map_while(move |_| {
            let len = i32::from_be_bytes(*raw.get(at..)?.first_chunk::<4>()?);
            let end = at + 4 + len.max(0) as usize;
            let span = at..end;
            at = end;
            Some((span, len < 0))
        })
    }

    pub(crate) fn raw(&self) -> &'a [u8] {
        self.raw
    }
}

/// CommandComplete `C`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandComplete<'a> {
    /// E.g. `SELECT 5`, `INSERT 0 1`, `CREATE TABLE`.
    pub tag: &'a [u8],
}
typed_view!(CommandComplete, b'C');

impl<'a> CommandComplete<'a> {
    fn read(mut r: Reader<'a>) -> Result<Self, PgError> {
        let tag = r.cstr("command tag")?;
        r.finish()?;
        Ok(CommandComplete { tag })
    }

    /// The row count at the end of the tag, where the command has one.
    pub fn rows(&self) -> Option<u64> {
        let last = self.tag.rsplit(|&b| b == b' ').next()?;
        if self.tag.len() == last.len() {
            return None;
        }
        std::str::from_utf8(last).ok()?.parse().ok()
    }
}

/// ErrorResponse `E` or NoticeResponse `N`: typed fields ending with a zero byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorResponse<'a> {
    tag: u8,
    raw: &'a [u8],
}

impl<'a> ErrorResponse<'a> {
    /// Parses an ErrorResponse or a NoticeResponse.
    pub fn parse(frame: &'a Frame) -> Result<Self, PgError> {
        match frame.tag() {
            b'E' | b'N' => Self::parse_body(frame.tag(), frame.body()),
            got => Err(PgError::UnexpectedMessage {
                expected: b'E',
                got,
            }),
        }
    }

    pub fn parse_body(tag: u8, body: &'a [u8]) -> Result<Self, PgError> {
        let mut r = Reader::new(tag, body);
        loop {
            if r.u8("field list is not terminated")? == 0 {
                break;
            }
            r.cstr("field value is not terminated")?;
        }
        r.finish()?;
        Ok(ErrorResponse { tag, raw: body })
    }

    pub fn is_notice(&self) -> bool {
        self.tag == b'N'
    }

    /// `(field type, value)` pairs in order.
    pub fn fields(&self) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
        let mut r = Reader::new(self.tag, self.raw);
        std::iter::from_fn(move || {
            let code = r.u8("").ok().filter(|&c| c != 0)?;
            Some((code, r.cstr("").ok()?))
        })
    }

    pub fn field(&self, code: u8) -> Option<&'a [u8]> {
        self.fields().find(|&(c, _)| c == code).map(|(_, v)| v)
    }

    /// The non-localized severity (`V`) if present, else the localized one (`S`).
    pub fn severity(&self) -> Option<&'a [u8]> {
        self.field(b'V').or_else(|| self.field(b'S'))
    }

    /// SQLSTATE.
    pub fn code(&self) -> Option<&'a [u8]> {
        self.field(b'C')
    }

    pub fn message(&self) -> Option<&'a [u8]> {
        self.field(b'M')
    }
}

/// ParameterDescription `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParameterDescription<'a> {
    pub types: Oids<'a>,
}
typed_view!(ParameterDescription, b't');

impl<'a> ParameterDescription<'a> {
    fn read(mut r: Reader<'a>) -> Result<Self, PgError> {
        let n = r.u16("parameter count")?;
        let types = Oids::read(&mut r, n, "parameter types run past the message")?;
        r.finish()?;
        Ok(ParameterDescription { types })
    }
}

/// CopyInResponse `G`, CopyOutResponse `H` or CopyBothResponse `W`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyResponse<'a> {
    pub tag: u8,
    /// 0 textual (text or CSV; lines of column values), 1 binary.
    pub format: i8,
    pub column_formats: Formats<'a>,
}

impl<'a> CopyResponse<'a> {
    pub fn parse(frame: &'a Frame) -> Result<Self, PgError> {
        match frame.tag() {
            b'G' | b'H' | b'W' => Self::parse_body(frame.tag(), frame.body()),
            got => Err(PgError::UnexpectedMessage {
                expected: b'H',
                got,
            }),
        }
    }

    pub fn parse_body(tag: u8, body: &'a [u8]) -> Result<Self, PgError> {
        let mut r = Reader::new(tag, body);
        let format = r.u8("copy format")? as i8;
        let n = r.u16("column count")?;
        let column_formats = Formats::read(&mut r, n, "column formats run past the message")?;
        r.finish()?;
        Ok(CopyResponse {
            tag,
            format,
            column_formats,
        })
    }
}

/// NotificationResponse `A` (LISTEN/NOTIFY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotificationResponse<'a> {
    pub pid: i32,
    pub channel: &'a [u8],
    pub payload: &'a [u8],
}
typed_view!(NotificationResponse, b'A');

impl<'a> NotificationResponse<'a> {
    fn read(mut r: Reader<'a>) -> Result<Self, PgError> {
        let pid = r.i32("process id")?;
        let channel = r.cstr("channel name")?;
        let payload = r.cstr("payload")?;
        r.finish()?;
        Ok(NotificationResponse {
            pid,
            channel,
            payload,
        })
    }
}

/// FunctionCallResponse `V`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionCallResponse<'a> {
    pub value: Option<&'a [u8]>,
}
typed_view!(FunctionCallResponse, b'V');

impl<'a> FunctionCallResponse<'a> {
    fn read(mut r: Reader<'a>) -> Result<Self, PgError> {
        let raw = skip_values(&mut r, 1)?;
        r.finish()?;
        Ok(FunctionCallResponse {
            value: Values::new(raw, 1).next().flatten(),
        })
    }
}

/// NegotiateProtocolVersion `v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NegotiateProtocolVersion<'a> {
    /// Newest minor version of protocol 3 the server supports.
    pub newest_minor: i32,
    count: u32,
    raw: &'a [u8],
}
typed_view!(NegotiateProtocolVersion, b'v');

impl<'a> NegotiateProtocolVersion<'a> {
    fn read(mut r: Reader<'a>) -> Result<Self, PgError> {
        let newest_minor = r.i32("newest minor version")?;
        let count = r.i32("option count")?;
        if count < 0 {
            return Err(r.err("negative option count"));
        }
        let raw = r.remaining();
        // Every option takes at least its NUL, so a count above the bytes left is a lie
        // caught here without looping a billion times.
        if count as usize > raw.len() {
            return Err(r.err("option count runs past the message"));
        }
        for _ in 0..count {
            r.cstr("option name is not terminated")?;
        }
        r.finish()?;
        Ok(NegotiateProtocolVersion {
            newest_minor,
            count: count as u32,
            raw,
        })
    }

    /// Protocol options (`_pq_.*`) the server did not recognise.
    pub fn unrecognized(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut r = Reader::new(b'v', self.raw);
        (0..self.count).map_while(move |_| r.cstr("").ok())
    }
}

/// Any message a server sends after the startup packet.
#[derive(Debug, Clone)]
pub enum BackendMessage<'a> {
    Authentication(Authentication<'a>),
    BackendKeyData(BackendKeyData<'a>),
    ParameterStatus(ParameterStatus<'a>),
    ReadyForQuery(ReadyForQuery),
    RowDescription(RowDescription<'a>),
    DataRow(DataRow<'a>),
    CommandComplete(CommandComplete<'a>),
    EmptyQueryResponse,
    ErrorResponse(ErrorResponse<'a>),
    NoticeResponse(ErrorResponse<'a>),
    ParseComplete,
    BindComplete,
    CloseComplete,
    NoData,
    ParameterDescription(ParameterDescription<'a>),
    PortalSuspended,
    CopyInResponse(CopyResponse<'a>),
    CopyOutResponse(CopyResponse<'a>),
    CopyBothResponse(CopyResponse<'a>),
    CopyData(super::frontend::CopyData<'a>),
    CopyDone,
    NotificationResponse(NotificationResponse<'a>),
    FunctionCallResponse(FunctionCallResponse<'a>),
    NegotiateProtocolVersion(NegotiateProtocolVersion<'a>),
}

impl<'a> BackendMessage<'a> {
    pub fn parse(frame: &'a Frame) -> Result<Self, PgError> {
        use BackendMessage as M;
        let tag = frame.tag();
        let body = frame.body();
        let r = Reader::new(tag, body);
        let empty = |m| r.finish().map(|()| m);
        Ok(match tag {
            b'R' => M::Authentication(Authentication::read(r)?),
            b'K' => M::BackendKeyData(BackendKeyData::read(r)?),
            b'S' => M::ParameterStatus(ParameterStatus::read(r)?),
            b'Z' => M::ReadyForQuery(ReadyForQuery::read(r)?),
            b'T' => M::RowDescription(RowDescription::read(r)?),
            b'D' => M::DataRow(DataRow::parse(frame)?),
            b'C' => M::CommandComplete(CommandComplete::read(r)?),
            b'I' => empty(M::EmptyQueryResponse)?,
            b'E' => M::ErrorResponse(ErrorResponse::parse_body(tag, body)?),
            b'N' => M::NoticeResponse(ErrorResponse::parse_body(tag, body)?),
            b'1' => empty(M::ParseComplete)?,
            b'2' => empty(M::BindComplete)?,
            b'3' => empty(M::CloseComplete)?,
            b'n' => empty(M::NoData)?,
            b't' => M::ParameterDescription(ParameterDescription::read(r)?),
            b's' => empty(M::PortalSuspended)?,
            b'G' => M::CopyInResponse(CopyResponse::parse_body(tag, body)?),
            b'H' => M::CopyOutResponse(CopyResponse::parse_body(tag, body)?),
            b'W' => M::CopyBothResponse(CopyResponse::parse_body(tag, body)?),
            b'd' => M::CopyData(super::frontend::CopyData { data: body }),
            b'c' => empty(M::CopyDone)?,
            b'A' => M::NotificationResponse(NotificationResponse::read(r)?),
            b'V' => M::FunctionCallResponse(FunctionCallResponse::read(r)?),
            b'v' => M::NegotiateProtocolVersion(NegotiateProtocolVersion::read(r)?),
            tag => return Err(PgError::UnknownMessage { tag }),
        })
    }
}
