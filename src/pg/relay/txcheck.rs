//! Transaction mode: the release check (`server_check_query`).
//!
//! The statement check (`crate::pg::txmode`) reads a statement's own text,
//! so session state set where the text does not show it — inside a
//! function, a `DO` block, a trigger, an extension — would stay on the
//! server connection for the next caller. So, when a connection goes back
//! and before anyone else may take it, the gateway asks the server itself
//! (one simple Query, not recorded: it is not the caller's) whether the
//! connection holds session state. A clean answer is exactly one row whose
//! first column is `t`, then ReadyForQuery `I` and nothing more; anything
//! else — state found, an error, a stray message, no answer in time — and
//! the connection is closed, logged and counted
//! (`tollgate_pool_dirty_total`), never reused.
//!
//! The caller is not kept waiting: it has its ReadyForQuery already, and
//! its next transaction takes whichever connection is free. The check
//! costs the connection one round trip per transaction.

use std::time::Duration;

use super::*;
use crate::pg::pool::{Lease, close_socket_of};

/// How long the check's answer may take before the connection is closed.
const CHECK_WAIT: Duration = Duration::from_secs(5);
/// What of the check's second column goes to the log.
const SHOWN: usize = 200;

/// A connection on its way back, its read half whole.
pub(super) struct Returning {
    pub lease: Lease,
    pub reader: ReadHalfOf,
    pub buf: BytesMut,
    pub writer: WriteHalf,
    pub greeting: BytesMut,
    pub key: Option<(i32, Vec<u8>)>,
    pub method: &'static str,
}

type ReadHalfOf = crate::tls::ReadHalf;

/// What the check found.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Clean,
    /// Session state, with what the query says it is.
    Dirty(String),
    /// Not the answer a check gives (an error, a stray message).
    Unexpected(String),
}

/// Run `query` on the connection, then give it back if it is clean;
/// close it otherwise. Spawned on the shard: the caller does not wait.
pub(super) fn check_then_give_back(query: String, target: String, r: Returning) {
    compio::runtime::spawn(async move {
        let Returning {
            lease,
            reader,
            buf,
            mut writer,
            greeting,
            key,
            method,
        } = r;
        let mut reader = FrameReader::new(
            reader,
            buf,
            Caps::backend(&Limits::default()),
            Peer::Upstream,
        );
        let outcome =
            compio::time::timeout(CHECK_WAIT, ask(&query, &mut reader, &mut writer)).await;
        let why = match outcome {
            Ok(Ok(Verdict::Clean)) => {
                reader.settle();
                let buf = if reader.buf.capacity() > 64 * 1024 {
                    BytesMut::new()
                } else {
                    std::mem::take(&mut reader.buf)
                };
                lease.give_back(reader.half, writer, buf, greeting, key, method);
                return;
            }
            Ok(Ok(Verdict::Dirty(what))) => {
                lease.count_dirty();
                warn!(
                    target = %target,
                    found = %what,
                    "transaction mode: a server connection kept session state after a transaction; closed, not reused"
                );
                return close_socket_of(&writer);
            }
            Ok(Ok(Verdict::Unexpected(why))) => why,
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {}s", CHECK_WAIT.as_secs()),
        };
        lease.count_dirty();
        warn!(
            target = %target,
            reason = %why,
            "transaction mode: the release check failed; server connection closed, not reused"
        );
        close_socket_of(&writer);
    })
    .detach();
}

/// Send the check and read its answer to the ReadyForQuery.
async fn ask(
    query: &str,
    reader: &mut FrameReader,
    writer: &mut WriteHalf,
) -> Result<Verdict, SessionError> {
    let mut out = BytesMut::new();
    pg::encode_query(&mut out, query.as_bytes()).map_err(SessionError::ClientProtocol)?;
    send(writer, &mut out, Peer::Upstream).await?;
    let mut answer = Answer::default();
    loop {
        let f = reader.frame().await?;
        if let Some(v) = answer.step(f.tag(), f.body()) {
            if v == Verdict::Clean && !reader.buf.is_empty() {
                return Ok(Verdict::Unexpected(
                    "more from the server after the check's answer".into(),
                ));
            }
            return Ok(v);
        }
    }
}

/// The check's answer as it arrives.
#[derive(Default)]
struct Answer {
    rows: u32,
    clean: bool,
    what: String,
    /// Settings the server reported changed (by `RESET ALL`: they had been
    /// changed for the session).
    reported: Vec<String>,
    error: Option<String>,
}

impl Answer {
    /// One message; the verdict once ReadyForQuery ends the answer.
    fn step(&mut self, t: u8, body: &[u8]) -> Option<Verdict> {
        match t {
            tag::DATA_ROW => {
                self.rows += 1;
                let Ok(row) = DataRow::parse_body(body) else {
                    self.error = Some("a malformed row".into());
                    return None;
                };
                let values: Vec<Option<&[u8]>> = row.values().collect();
                self.clean = values.first() == Some(&Some(&b"t"[..]));
                if let Some(Some(w)) = values.get(1) {
                    let w = String::from_utf8_lossy(w);
                    self.what = w.chars().take(SHOWN).collect();
                }
            }
            tag::ERROR_RESPONSE => {
                let code = pg::ErrorResponse::parse_body(t, body)
                    .ok()
                    .and_then(|e| e.code())
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .unwrap_or_default();
                self.error = Some(format!("the check query failed (SQLSTATE {code})"));
            }
            tag::READY_FOR_QUERY => {
                return Some(if let Some(e) = self.error.take() {
                    Verdict::Unexpected(e)
                } else if body != b"I" {
                    Verdict::Unexpected("not idle after the check".into())
                } else if self.rows != 1 {
                    Verdict::Unexpected(format!("{} rows from the check", self.rows))
                } else if self.clean && self.reported.is_empty() {
                    Verdict::Clean
                } else {
                    let mut what = std::mem::take(&mut self.what);
                    for name in &self.reported {
                        what = format!("{what} setting:{name}").trim_start().to_string();
                    }
                    if what.is_empty() {
                        what = "state (the check said false)".into();
                    }
                    Verdict::Dirty(what)
                });
            }
            tag::PARAMETER_STATUS => {
                let name = pg::ParameterStatus::parse_body(body)
                    .map(|p| String::from_utf8_lossy(p.name).chars().take(64).collect())
                    .unwrap_or_else(|_| "?".into());
                if self.reported.len() < 8 {
                    self.reported.push(name);
                }
            }
            tag::ROW_DESCRIPTION
            | tag::COMMAND_COMPLETE
            | tag::NOTICE_RESPONSE
            | tag::EMPTY_QUERY_RESPONSE => {}
            other => {
                self.error = Some(format!(
                    "unexpected {:?} in the check's answer",
                    pg::TagName(other)
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(values: &[Option<&str>]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(values.len() as u16).to_be_bytes());
        for v in values {
            match v {
                Some(v) => {
                    b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    b.extend_from_slice(v.as_bytes());
                }
                None => b.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        b
    }

    fn verdict(msgs: &[(u8, Vec<u8>)]) -> Option<Verdict> {
        let mut a = Answer::default();
        msgs.iter().find_map(|(t, b)| a.step(*t, b))
    }

    #[test]
    fn only_one_true_row_then_idle_is_clean() {
        let z = |s: &[u8]| (tag::READY_FOR_QUERY, s.to_vec());
        let c = (tag::COMMAND_COMPLETE, b"SELECT 1\0".to_vec());
        assert_eq!(
            verdict(&[
                (tag::DATA_ROW, row(&[Some("t"), Some("")])),
                c.clone(),
                z(b"I")
            ]),
            Some(Verdict::Clean)
        );
        assert_eq!(
            verdict(&[
                (tag::DATA_ROW, row(&[Some("f"), Some("settings")])),
                c.clone(),
                z(b"I")
            ]),
            Some(Verdict::Dirty("settings".into()))
        );
        assert_eq!(
            verdict(&[(tag::DATA_ROW, row(&[None])), c.clone(), z(b"I")]),
            Some(Verdict::Dirty("state (the check said false)".into()))
        );
        // RESET ALL put back a setting the server reports.
        assert_eq!(
            verdict(&[
                (tag::DATA_ROW, row(&[Some("t"), Some("")])),
                c.clone(),
                (tag::PARAMETER_STATUS, b"TimeZone\0UTC\0".to_vec()),
                (tag::COMMAND_COMPLETE, b"RESET\0".to_vec()),
                z(b"I")
            ]),
            Some(Verdict::Dirty("setting:TimeZone".into()))
        );
        for bad in [
            vec![c.clone(), z(b"I")],
            vec![
                (tag::DATA_ROW, row(&[Some("t")])),
                (tag::DATA_ROW, row(&[Some("t")])),
                z(b"I"),
            ],
            vec![(tag::DATA_ROW, row(&[Some("t")])), z(b"T")],
            vec![
                (tag::DATA_ROW, row(&[Some("t")])),
                (tag::ERROR_RESPONSE, b"C42501\0\0".to_vec()),
                z(b"I"),
            ],
        ] {
            assert!(
                matches!(verdict(&bad), Some(Verdict::Unexpected(_))),
                "{bad:?}"
            );
        }
    }
}
