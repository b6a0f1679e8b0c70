//! `tollgate recordings export` decodes each session's data records with the
//! decoder of the protocol its session-start record names: PostgreSQL
//! frames for `postgres`, packets for `mysql`, nothing for `tcp` (opaque
//! bytes stay as recorded).

use std::collections::HashMap;

use serde_json::{Map, Value};
use tollgate_recorder::{Decoder, Direction};

use crate::http::decode::HttpDecoder;
use crate::mysql::decode::MyDecoder;
use crate::pg::decode::PgDecoder;

/// Which decoder a session's data records get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Postgres,
    Mysql,
    Http,
    Ssh,
    /// `tcp`, a protocol this build does not decode, or no start record
    /// seen: the raw data is exported as it is, undecoded.
    Opaque,
}

/// A [`Decoder`] that picks the protocol's decoder per session.
#[derive(Default)]
pub struct ByProtocol {
    sessions: HashMap<u64, Kind>,
    postgres: PgDecoder,
    mysql: MyDecoder,
    http: HttpDecoder,
    ssh: crate::ssh::decode::SshDecoder,
}

impl Decoder for ByProtocol {
    fn session_start(&mut self, session: u64, protocol: Option<&str>) {
        let kind = match protocol {
            Some("postgres") => Kind::Postgres,
            Some("mysql") => Kind::Mysql,
            Some("http") => Kind::Http,
            Some("ssh") => Kind::Ssh,
            _ => Kind::Opaque,
        };
        self.sessions.insert(session, kind);
    }

    fn decode(
        &mut self,
        session: u64,
        direction: Direction,
        data: &[u8],
        fields: &mut Map<String, Value>,
    ) {
        match self.sessions.get(&session) {
            Some(Kind::Postgres) => self.postgres.decode(session, direction, data, fields),
            Some(Kind::Mysql) => self.mysql.decode(session, direction, data, fields),
            Some(Kind::Http) => self.http.decode(session, direction, data, fields),
            Some(Kind::Ssh) => self.ssh.decode(session, direction, data, fields),
            Some(Kind::Opaque) | None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PostgreSQL simple Query message for `sql`.
    fn query(sql: &str) -> Vec<u8> {
        let mut out = vec![b'Q'];
        out.extend_from_slice(&((sql.len() + 5) as i32).to_be_bytes());
        out.extend_from_slice(sql.as_bytes());
        out.push(0);
        out
    }

    fn decoded(d: &mut ByProtocol, session: u64) -> Map<String, Value> {
        let mut fields = Map::new();
        d.decode(
            session,
            Direction::ClientToTarget,
            &query("select 1"),
            &mut fields,
        );
        fields
    }

    #[test]
    fn each_session_is_decoded_as_its_start_record_says() {
        let mut d = ByProtocol::default();
        d.session_start(1, Some("postgres"));
        d.session_start(2, Some("tcp"));
        d.session_start(3, None);
        let pg = decoded(&mut d, 1);
        assert!(
            pg.values().any(|v| v.to_string().contains("select 1")),
            "{pg:?}"
        );
        for session in [2, 3, 4] {
            let f = decoded(&mut d, session);
            assert!(f.is_empty(), "session {session} decoded: {f:?}");
        }
    }
}
