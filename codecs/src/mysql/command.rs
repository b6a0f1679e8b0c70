//! Client commands after login: decode what a caller asks, encode what the
//! gateway sends upstream.

use bytes::{BufMut, BytesMut};

use super::consts::{caps, com};
use super::error::MySqlError;
use super::handshake::MAX_PLUGIN_NAME;
use super::read::{Reader, put_nul_str};
use super::value::{BinaryValue, read_binary_value, write_binary_value};

/// A client command, borrowing from its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    Quit,
    InitDb {
        schema: &'a [u8],
    },
    Query {
        sql: &'a [u8],
    },
    FieldList {
        table: &'a [u8],
        wildcard: &'a [u8],
    },
    Ping,
    ChangeUser(ChangeUser<'a>),
    StmtPrepare {
        sql: &'a [u8],
    },
    StmtExecute(StmtExecute<'a>),
    StmtSendLongData {
        stmt_id: u32,
        param: u16,
        data: &'a [u8],
    },
    StmtClose {
        stmt_id: u32,
    },
    StmtReset {
        stmt_id: u32,
    },
    /// The next `rows` rows of the cursor a COM_STMT_EXECUTE opened.
    StmtFetch {
        stmt_id: u32,
        rows: u32,
    },
    ResetConnection,
    /// Any other command byte (statistics, process kill, binlog dump, ...):
    /// the gateway decides, the codec does not read further.
    Other {
        code: u8,
        body: &'a [u8],
    },
}

impl<'a> Command<'a> {
    /// Decodes a command payload. `capabilities` are the negotiated ones
    /// (they shape COM_CHANGE_USER).
    pub fn parse(payload: &'a [u8], capabilities: u32) -> Result<Command<'a>, MySqlError> {
        let mut r = Reader::new("command", payload);
        let code = r.u8("command byte")?;
        let cmd = match code {
            com::QUIT => Command::Quit,
            com::INIT_DB => Command::InitDb { schema: r.rest() },
            com::QUERY => Command::Query { sql: r.rest() },
            com::FIELD_LIST => {
                let table = r.nul_str_or_rest();
                Command::FieldList {
                    table,
                    wildcard: r.rest(),
                }
            }
            com::PING => Command::Ping,
            com::CHANGE_USER => Command::ChangeUser(ChangeUser::parse(&mut r, capabilities)?),
            com::STMT_PREPARE => Command::StmtPrepare { sql: r.rest() },
            com::STMT_EXECUTE => Command::StmtExecute(StmtExecute::parse(&mut r)?),
            com::STMT_SEND_LONG_DATA => Command::StmtSendLongData {
                stmt_id: r.u32("statement id")?,
                param: r.u16("parameter id")?,
                data: r.rest(),
            },
            com::STMT_CLOSE => Command::StmtClose {
                stmt_id: r.u32("statement id")?,
            },
            com::STMT_RESET => Command::StmtReset {
                stmt_id: r.u32("statement id")?,
            },
            com::STMT_FETCH => Command::StmtFetch {
                stmt_id: r.u32("statement id")?,
                rows: r.u32("number of rows")?,
            },
            com::RESET_CONNECTION => Command::ResetConnection,
            code => Command::Other {
                code,
                body: r.rest(),
            },
        };
        Ok(cmd)
    }

    /// The command byte.
    pub fn code(&self) -> u8 {
        match self {
            Command::Quit => com::QUIT,
            Command::InitDb { .. } => com::INIT_DB,
            Command::Query { .. } => com::QUERY,
            Command::FieldList { .. } => com::FIELD_LIST,
            Command::Ping => com::PING,
            Command::ChangeUser(_) => com::CHANGE_USER,
            Command::StmtPrepare { .. } => com::STMT_PREPARE,
            Command::StmtExecute(_) => com::STMT_EXECUTE,
            Command::StmtSendLongData { .. } => com::STMT_SEND_LONG_DATA,
            Command::StmtClose { .. } => com::STMT_CLOSE,
            Command::StmtReset { .. } => com::STMT_RESET,
            Command::StmtFetch { .. } => com::STMT_FETCH,
            Command::ResetConnection => com::RESET_CONNECTION,
            Command::Other { code, .. } => *code,
        }
    }

    /// The payload of this command (COM_STMT_EXECUTE: see
    /// [`StmtExecute::encode`], which needs the parameters).
    pub fn encode(&self, out: &mut BytesMut, capabilities: u32) -> Result<(), MySqlError> {
        out.put_u8(self.code());
        match self {
            Command::Quit | Command::Ping | Command::ResetConnection => {}
            Command::InitDb { schema: s } => out.extend_from_slice(s),
            Command::Query { sql } | Command::StmtPrepare { sql } => out.extend_from_slice(sql),
            Command::FieldList { table, wildcard } => {
                put_nul_str(out, table, "table name")?;
                out.extend_from_slice(wildcard);
            }
            Command::ChangeUser(c) => c.encode_body(out, capabilities)?,
            Command::StmtExecute(e) => {
                out.put_u32_le(e.stmt_id);
                out.put_u8(e.flags);
                out.put_u32_le(e.iterations);
                out.extend_from_slice(e.params);
            }
            Command::StmtSendLongData {
                stmt_id,
                param,
                data,
            } => {
                out.put_u32_le(*stmt_id);
                out.put_u16_le(*param);
                out.extend_from_slice(data);
            }
            Command::StmtClose { stmt_id } | Command::StmtReset { stmt_id } => {
                out.put_u32_le(*stmt_id)
            }
            Command::StmtFetch { stmt_id, rows } => {
                out.put_u32_le(*stmt_id);
                out.put_u32_le(*rows);
            }
            Command::Other { body, .. } => out.extend_from_slice(body),
        }
        Ok(())
    }
}

/// COM_CHANGE_USER: a new login inside the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeUser<'a> {
    pub user: &'a [u8],
    pub auth_response: &'a [u8],
    pub database: &'a [u8],
    pub charset: Option<u16>,
    pub auth_plugin: Option<&'a [u8]>,
    /// The connect-attributes block, raw (length-encoded pairs).
    pub attrs: &'a [u8],
}

impl<'a> ChangeUser<'a> {
    fn parse(r: &mut Reader<'a>, capabilities: u32) -> Result<ChangeUser<'a>, MySqlError> {
        let user = r.nul_str("user name")?;
        let auth_response = if capabilities & caps::SECURE_CONNECTION != 0 {
            let n = usize::from(r.u8("auth response length")?);
            r.take(n, "auth response")?
        } else {
            r.nul_str("auth response")?
        };
        let database = r.nul_str_or_rest();
        let charset = if r.remaining().len() >= 2 {
            Some(r.u16("character set")?)
        } else {
            None
        };
        let auth_plugin = if capabilities & caps::PLUGIN_AUTH != 0 && !r.is_empty() {
            Some(r.nul_str_or_rest())
        } else {
            None
        };
        if auth_plugin.is_some_and(|p| p.len() > MAX_PLUGIN_NAME) {
            return Err(r.err("auth plugin name too long"));
        }
        let attrs = if capabilities & caps::CONNECT_ATTRS != 0 && !r.is_empty() {
            r.lenenc_bytes("connect attributes")?
        } else {
            &[][..]
        };
        Ok(ChangeUser {
            user,
            auth_response,
            database,
            charset,
            auth_plugin,
            attrs,
        })
    }

    fn encode_body(&self, out: &mut BytesMut, capabilities: u32) -> Result<(), MySqlError> {
        put_nul_str(out, self.user, "user name")?;
        if capabilities & caps::SECURE_CONNECTION != 0 {
            let n = u8::try_from(self.auth_response.len()).map_err(|_| MySqlError::TooLong {
                what: "auth response",
                len: self.auth_response.len(),
                max: 255,
            })?;
            out.put_u8(n);
            out.extend_from_slice(self.auth_response);
        } else {
            put_nul_str(out, self.auth_response, "auth response")?;
        }
        put_nul_str(out, self.database, "database")?;
        if let Some(cs) = self.charset {
            out.put_u16_le(cs);
            if capabilities & caps::PLUGIN_AUTH != 0 {
                put_nul_str(out, self.auth_plugin.unwrap_or_default(), "auth plugin")?;
            }
            if capabilities & caps::CONNECT_ATTRS != 0 {
                super::read::put_lenenc_bytes(out, self.attrs);
            }
        }
        Ok(())
    }
}

/// COM_STMT_EXECUTE before its parameters are read: reading them needs the
/// parameter count from COM_STMT_PREPARE_OK (the gateway keeps it per
/// statement), and the types from an earlier execute when the client does
/// not send them again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StmtExecute<'a> {
    pub stmt_id: u32,
    /// Cursor flags (CURSOR_TYPE_READ_ONLY = 1, ...).
    pub flags: u8,
    /// Always 1 (MySQL reads nothing else).
    pub iterations: u32,
    /// NULL bitmap, new-params-bound flag, types and values, raw.
    pub params: &'a [u8],
}

/// A parameter type as COM_STMT_EXECUTE sends it: the column type and a
/// flag byte (0x80: unsigned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamType {
    pub column_type: u8,
    pub flags: u8,
}

/// Most parameters a statement can have (the count is a u16 on the wire).
pub const MAX_PARAMS: usize = u16::MAX as usize;

/// The decoded parameters of one COM_STMT_EXECUTE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecuteParams<'a> {
    /// Whether the client sent the types in this packet (it must on the
    /// first execute, and may not on later ones).
    pub types_sent: bool,
    pub types: Vec<ParamType>,
    /// One per parameter: `None` for NULL or for a parameter whose value
    /// came in COM_STMT_SEND_LONG_DATA.
    pub values: Vec<Option<BinaryValue<'a>>>,
}

impl<'a> StmtExecute<'a> {
    fn parse(r: &mut Reader<'a>) -> Result<StmtExecute<'a>, MySqlError> {
        Ok(StmtExecute {
            stmt_id: r.u32("statement id")?,
            flags: r.u8("flags")?,
            iterations: r.u32("iteration count")?,
            params: r.rest(),
        })
    }

    /// Reads the parameters of a statement with `count` of them.
    /// `prior` are the types from the statement's previous execute (used
    /// when this one does not send them); `long_data(i)` says whether
    /// parameter `i` got its value through COM_STMT_SEND_LONG_DATA.
    pub fn decode_params(
        &self,
        count: usize,
        prior: Option<&[ParamType]>,
        long_data: impl Fn(usize) -> bool,
    ) -> Result<ExecuteParams<'a>, MySqlError> {
        let mut r = Reader::new("COM_STMT_EXECUTE", self.params);
        if count == 0 {
            return Ok(ExecuteParams {
                types_sent: false,
                types: Vec::new(),
                values: Vec::new(),
            });
        }
        if count > MAX_PARAMS {
            return Err(r.err("parameter count above 65535"));
        }
        let bitmap = r.take(count.div_ceil(8), "NULL bitmap")?;
        let types_sent = r.u8("new params bound flag")? == 1;
        let types = if types_sent {
            let raw = r.take(count * 2, "parameter types")?;
            raw.chunks_exact(2)
                .map(|t| ParamType {
                    column_type: t[0],
                    flags: t[1],
                })
                .collect()
        } else {
            match prior {
                Some(p) if p.len() == count => p.to_vec(),
                _ => return Err(r.err("parameter types neither sent nor known")),
            }
        };
        let mut values = Vec::with_capacity(count);
        for (i, t) in types.iter().enumerate() {
            let null = bitmap[i / 8] & (1 << (i % 8)) != 0;
            if null || long_data(i) {
                values.push(None);
            } else {
                values.push(Some(read_binary_value(&mut r, t.column_type)?));
            }
        }
        Ok(ExecuteParams {
            types_sent,
            types,
            values,
        })
    }

    /// A whole COM_STMT_EXECUTE payload: header, NULL bitmap, the types
    /// (always sent), and the values (`None` = NULL).
    pub fn encode(
        out: &mut BytesMut,
        stmt_id: u32,
        params: &[(ParamType, Option<BinaryValue<'_>>)],
    ) -> Result<(), MySqlError> {
        let start = out.len();
        out.put_u8(com::STMT_EXECUTE);
        out.put_u32_le(stmt_id);
        out.put_u8(0);
        out.put_u32_le(1);
        if !params.is_empty() {
            let mut bitmap = vec![0u8; params.len().div_ceil(8)];
            for (i, (_, v)) in params.iter().enumerate() {
                if v.is_none() {
                    bitmap[i / 8] |= 1 << (i % 8);
                }
            }
            out.extend_from_slice(&bitmap);
            out.put_u8(1);
            for (t, _) in params {
                out.put_u8(t.column_type);
                out.put_u8(t.flags);
            }
            for (t, v) in params {
                if let Some(v) = v
                    && let Err(e) = write_binary_value(out, t.column_type, v)
                {
                    out.truncate(start);
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_fetch_reads_its_statement_and_row_count_and_encodes_back() {
        let payload = [com::STMT_FETCH, 7, 0, 0, 0, 0x10, 0, 0, 0];
        let c = Command::parse(&payload, 0).unwrap();
        assert_eq!(
            c,
            Command::StmtFetch {
                stmt_id: 7,
                rows: 16
            }
        );
        let mut out = BytesMut::new();
        c.encode(&mut out, 0).unwrap();
        assert_eq!(&out[..], &payload[..]);
        // Cut short: an error, not a guess.
        assert!(Command::parse(&payload[..7], 0).is_err());
    }
}
