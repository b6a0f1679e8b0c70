//! Typed views of the messages a client sends after startup.

use super::error::PgError;
use super::frame::Frame;
use super::read::{Formats, Oids, Reader, Values, skip_values, typed_view};

/// Simple query `Q`: one or more statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query<'a> {
    /// The SQL text without its terminating NUL.
    pub sql: &'a [u8],
}
typed_view!(Query, b'Q');

impl<'a> Query<'a> {
    fn read(mut r: Reader<'a>) -> Result<Self, PgError> {
        let sql = r.cstr("query string is not terminated")?;
        r.finish()?;
        Ok(Query { sql })
    }
}

/// Parse `P`: a prepared statement (unnamed when `name` is empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parse<'a> {
    pub name: &'a [u8],
    pub query: &'a [u8],
    pub param_types: Oids<'a>,
}
typed_view!(Parse, b'P');

impl<'a> Parse<'a> {
    fn read(mut r: Reader<'a>) -> Result<Self, PgError> {
        let name = r.cstr("statement name")?;
        let query = r.cstr("query string")?;
        let n = r.u16("parameter type count")?;
        let param_types = Oids::read(&mut r, n, "parameter types run past the message")?;
        r.finish()?;
        Ok(Parse {
            name,
            query,
            param_types,
        })
    }
}

/// Bind `B`: a portal from a statement and parameter values.
#[derive(Debug, Clone)]
pub struct Bind<'a> {
    pub portal: &'a [u8],
    pub statement: &'a [u8],
    pub param_formats: Formats<'a>,
    pub params: Values<'a>,
    pub result_formats: Formats<'a>,
}
typed_view!(Bind, b'B');

impl<'a> Bind<'a> {
    fn read(mut r: Reader<'a>) -> Result<Self, PgError> {
        let portal = r.cstr("portal name")?;
        let statement = r.cstr("statement name")?;
        let nf = r.u16("parameter format count")?;
        let param_formats = Formats::read(&mut r, nf, "parameter formats run past the message")?;
        let np = r.u16("parameter count")?;
        if nf > 1 && nf != np {
            return Err(
                r.err("parameter format count matches neither 0, 1 nor the parameter count")
            );
        }
        let params = Values::new(skip_values(&mut r, np)?, np);
        let nr = r.u16("result format count")?;
        let result_formats = Formats::read(&mut r, nr, "result formats run past the message")?;
        r.finish()?;
        Ok(Bind {
            portal,
            statement,
            param_formats,
            params,
            result_formats,
        })
    }

    /// Format of parameter `i` (0 text, 1 binary).
    pub fn param_format(&self, i: usize) -> i16 {
        self.param_formats.format_of(i)
    }
}

/// Whether Describe/Close names a prepared statement or a portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Statement,
    Portal,
}

impl ObjectKind {
    pub fn byte(self) -> u8 {
        match self {
            ObjectKind::Statement => b'S',
            ObjectKind::Portal => b'P',
        }
    }
}

fn kind_and_name<'a>(r: &mut Reader<'a>) -> Result<(ObjectKind, &'a [u8]), PgError> {
    let kind = match r.u8("object kind")? {
        b'S' => ObjectKind::Statement,
        b'P' => ObjectKind::Portal,
        _ => return Err(r.err("object kind is neither 'S' nor 'P'")),
    };
    let name = r.cstr("object name")?;
    r.finish()?;
    Ok((kind, name))
}

/// Describe `D`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Describe<'a> {
    pub kind: ObjectKind,
    pub name: &'a [u8],
}
typed_view!(Describe, b'D');

impl<'a> Describe<'a> {
    fn read(mut r: Reader<'a>) -> Result<Self, PgError> {
        let (kind, name) = kind_and_name(&mut r)?;
        Ok(Describe { kind, name })
    }
}

/// Close `C`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close<'a> {
    pub kind: ObjectKind,
    pub name: &'a [u8],
}
typed_view!(Close, b'C');

impl<'a> Close<'a> {
    fn read(mut r: Reader<'a>) -> Result<Self, PgError> {
        let (kind, name) = kind_and_name(&mut r)?;
        Ok(Close { kind, name })
    }
}

/// Execute `E`: run a portal, `max_rows` 0 meaning all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Execute<'a> {
    pub portal: &'a [u8],
    pub max_rows: i32,
}
typed_view!(Execute, b'E');

impl<'a> Execute<'a> {
    fn read(mut r: Reader<'a>) -> Result<Self, PgError> {
        let portal = r.cstr("portal name")?;
        let max_rows = r.i32("row limit")?;
        r.finish()?;
        Ok(Execute { portal, max_rows })
    }
}

/// CopyData `d` (both directions): an opaque chunk of the COPY stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyData<'a> {
    pub data: &'a [u8],
}
typed_view!(CopyData, b'd');

impl<'a> CopyData<'a> {
    fn read(r: Reader<'a>) -> Result<Self, PgError> {
        Ok(CopyData {
            data: r.remaining(),
        })
    }
}

/// CopyFail `f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyFail<'a> {
    pub message: &'a [u8],
}
typed_view!(CopyFail, b'f');

impl<'a> CopyFail<'a> {
    fn read(mut r: Reader<'a>) -> Result<Self, PgError> {
        let message = r.cstr("copy failure message")?;
        r.finish()?;
        Ok(CopyFail { message })
    }
}

/// FunctionCall `F` (the legacy fast-path interface).
#[derive(Debug, Clone)]
pub struct FunctionCall<'a> {
    pub function_oid: u32,
    pub arg_formats: Formats<'a>,
    pub args: Values<'a>,
    pub result_format: i16,
}
typed_view!(FunctionCall, b'F');

impl<'a> FunctionCall<'a> {
    fn read(mut r: Reader<'a>) -> Result<Self, PgError> {
        let function_oid = r.u32("function oid")?;
        let nf = r.u16("argument format count")?;
        let arg_formats = Formats::read(&mut r, nf, "argument formats run past the message")?;
        let na = r.u16("argument count")?;
        let args = Values::new(skip_values(&mut r, na)?, na);
        let result_format = r.i16("result format")?;
        r.finish()?;
        Ok(FunctionCall {
            function_oid,
            arg_formats,
            args,
            result_format,
        })
    }
}

/// PasswordMessage `p` answering AuthenticationCleartextPassword or MD5Password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordMessage<'a> {
    pub password: &'a [u8],
}
typed_view!(PasswordMessage, b'p');

impl<'a> PasswordMessage<'a> {
    fn read(mut r: Reader<'a>) -> Result<Self, PgError> {
        let password = r.cstr("password is not terminated")?;
        r.finish()?;
        Ok(PasswordMessage { password })
    }
}

/// SASLInitialResponse `p` answering AuthenticationSASL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaslInitialResponse<'a> {
    pub mechanism: &'a [u8],
    /// `None` when the client sent length -1 (no initial response).
    pub data: Option<&'a [u8]>,
}
typed_view!(SaslInitialResponse, b'p');

impl<'a> SaslInitialResponse<'a> {
    fn read(mut r: Reader<'a>) -> Result<Self, PgError> {
        let mechanism = r.cstr("SASL mechanism name")?;
        let len = r.i32("SASL data length")?;
        let data = match len {
            -1 => None,
            n if n < 0 => return Err(r.err("negative SASL data length")),
            n => Some(r.take(n as usize, "SASL data runs past the message")?),
        };
        r.finish()?;
        Ok(SaslInitialResponse { mechanism, data })
    }
}

/// SASLResponse `p` answering AuthenticationSASLContinue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaslResponse<'a> {
    pub data: &'a [u8],
}
typed_view!(SaslResponse, b'p');

impl<'a> SaslResponse<'a> {
    fn read(r: Reader<'a>) -> Result<Self, PgError> {
        Ok(SaslResponse {
            data: r.remaining(),
        })
    }
}

/// Any message a client sends after startup. `p` stays raw: which of the three
/// password messages it is depends on the authentication exchange in progress.
#[derive(Debug, Clone)]
pub enum FrontendMessage<'a> {
    Query(Query<'a>),
    Parse(Parse<'a>),
    Bind(Bind<'a>),
    Describe(Describe<'a>),
    Execute(Execute<'a>),
    Sync,
    Close(Close<'a>),
    Flush,
    CopyData(CopyData<'a>),
    CopyDone,
    CopyFail(CopyFail<'a>),
    FunctionCall(FunctionCall<'a>),
    /// PasswordMessage, SASLInitialResponse or SASLResponse: parse the body
    /// with the one the exchange expects.
    AuthResponse(&'a [u8]),
    Terminate,
}

impl<'a> FrontendMessage<'a> {
    pub fn parse(frame: &'a Frame) -> Result<Self, PgError> {
        let tag = frame.tag();
        let r = Reader::new(tag, frame.body());
        let empty = |m| r.finish().map(|()| m);
        Ok(match tag {
            b'Q' => FrontendMessage::Query(Query::read(r)?),
            b'P' => FrontendMessage::Parse(Parse::read(r)?),
            b'B' => FrontendMessage::Bind(Bind::read(r)?),
            b'D' => FrontendMessage::Describe(Describe::read(r)?),
            b'E' => FrontendMessage::Execute(Execute::read(r)?),
            b'S' => empty(FrontendMessage::Sync)?,
            b'C' => FrontendMessage::Close(Close::read(r)?),
            b'H' => empty(FrontendMessage::Flush)?,
            b'd' => FrontendMessage::CopyData(CopyData::read(r)?),
            b'c' => empty(FrontendMessage::CopyDone)?,
            b'f' => FrontendMessage::CopyFail(CopyFail::read(r)?),
            b'F' => FrontendMessage::FunctionCall(FunctionCall::read(r)?),
            b'p' => FrontendMessage::AuthResponse(r.remaining()),
            b'X' => empty(FrontendMessage::Terminate)?,
            tag => return Err(PgError::UnknownMessage { tag }),
        })
    }
}
