//! A minimal MySQL client built only from the codec (tollgate_codecs::mysql)
//! over a std TcpStream, with rustls for TLS: the tests drive the codec
//! against a real server with it. Every packet it decodes is re-encoded and
//! compared byte for byte with what the server sent.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tollgate_codecs::mysql::*;

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

pub struct Conn {
    stream: Box<dyn Stream>,
    buf: BytesMut,
    pub capabilities: u32,
    pub connection_id: u32,
    pub server_version: Vec<u8>,
    /// The greeting's nonce (COM_CHANGE_USER scrambles with it).
    pub nonce: Vec<u8>,
    /// The sequence id of the next packet in the current exchange.
    seq: u8,
}

/// A row's values (`None`: NULL).
pub type Row = Vec<Option<Vec<u8>>>;

/// A column as the tests need it (owned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub column_type: u8,
    pub flags: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok {
        affected_rows: u64,
        status: u16,
    },
    Err {
        code: u16,
        sqlstate: String,
        message: String,
    },
    Rows {
        columns: Vec<Column>,
        rows: Vec<Vec<Option<Vec<u8>>>>,
        /// Each row's payload as the server sent it.
        raw: Vec<Vec<u8>>,
    },
}

impl Outcome {
    pub fn rows(&self) -> &Vec<Vec<Option<Vec<u8>>>> {
        match self {
            Outcome::Rows { rows, .. } => rows,
            other => panic!("expected rows, got {other:?}"),
        }
    }
}

pub struct Prepared {
    pub id: u32,
    pub params: usize,
    pub columns: Vec<Column>,
}

/// Login settings for [`Conn::connect`].
pub fn login_config<'a>(user: &'a str, password: &'a str, tls: bool) -> LoginConfig<'a> {
    LoginConfig {
        user: user.as_bytes(),
        password: password.as_bytes(),
        database: Some(b"app"),
        tls,
        capabilities: caps::CODEC_SUPPORTED & !caps::SSL,
        charset: UTF8MB4_GENERAL_CI,
        max_packet: 64 << 20,
        attrs: vec![(b"_client_name", b"tollgate-test")],
    }
}

const MAX: usize = 64 << 20;

impl Conn {
    /// Logs in with the codec's [`UpstreamLogin`]; `ca` verifies the server
    /// certificate when `cfg.tls` is set.
    pub fn connect(port: u16, cfg: LoginConfig<'_>, ca: &Path) -> Result<Conn, LoginError> {
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut conn = Conn {
            stream: Box::new(tcp.try_clone().unwrap()),
            buf: BytesMut::new(),
            capabilities: 0,
            connection_id: 0,
            server_version: Vec::new(),
            nonce: Vec::new(),
            seq: 0,
        };
        let mut login = UpstreamLogin::new(cfg);
        let mut out = BytesMut::new();
        let greeting = conn.read_packet_raw();
        let mut step = login.greeting(&greeting, &mut out)?;
        conn.nonce = login.nonce().to_vec();
        conn.write_all(&out);
        out.clear();
        if step == LoginStep::StartTls {
            let config = super::pki::client_config(ca, None);
            let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
            let tls = rustls::ClientConnection::new(Arc::clone(&config), name).unwrap();
            conn.stream = Box::new(rustls::StreamOwned::new(tls, tcp));
            step = login.tls_established(&mut out)?;
            conn.write_all(&out);
            out.clear();
        }
        while step != LoginStep::Done {
            let p = conn.read_packet_raw();
            step = login.packet(&p, &mut out)?;
            conn.write_all(&out);
            out.clear();
        }
        conn.capabilities = login.capabilities();
        conn.connection_id = login.connection_id();
        conn.server_version = login.server_version().to_vec();
        Ok(conn)
    }

    fn write_all(&mut self, b: &[u8]) {
        if !b.is_empty() {
            self.stream.write_all(b).unwrap();
            self.stream.flush().unwrap();
        }
    }

    fn read_packet_raw(&mut self) -> Packet {
        loop {
            if let Some(p) = next_packet(&mut self.buf, MAX).unwrap() {
                dump_seed(&p.raw);
                return p;
            }
            let mut chunk = [0u8; 64 << 10];
            let n = self.stream.read(&mut chunk).unwrap();
            assert!(n > 0, "server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next packet of the exchange, its sequence id checked.
    pub fn read_packet(&mut self) -> Packet {
        let p = self.read_packet_raw();
        p.check_seq(self.seq).unwrap();
        self.seq = p.next_seq();
        p
    }

    /// Starts an exchange at sequence id 0 without the re-encoding check.
    pub fn seq_reset(&mut self) {
        self.seq = 0;
    }

    /// Writes bytes as they are (a packet cut short, hostile tests).
    pub fn write_raw(&mut self, b: &[u8]) {
        self.write_all(b);
    }

    /// Writes bytes as they are; `false` once the peer has closed (a
    /// hostile test that keeps writing after the gateway ended the session).
    pub fn try_write_raw(&mut self, b: &[u8]) -> bool {
        self.stream
            .write_all(b)
            .and_then(|_| self.stream.flush())
            .is_ok()
    }

    /// Sets the sequence id of the next packet sent (hostile tests).
    pub fn seq_set(&mut self, seq: u8) {
        self.seq = seq;
    }

    /// Whether the peer closes the connection (EOF or a reset) before the
    /// read timeout.
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 4096];
        loop {
            match self.stream.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return false;
                }
                Err(_) => return true,
            }
        }
    }

    /// Sends one packet of the current exchange.
    pub fn send(&mut self, payload: &[u8]) {
        let mut out = BytesMut::new();
        self.seq = write_packet(&mut out, self.seq, payload);
        dump_seed(&out);
        self.write_all(&out);
    }

    /// Starts a command exchange (sequence id 0) with this payload. The
    /// command is decoded and re-encoded first: the bytes must match.
    pub fn command(&mut self, payload: &[u8]) {
        let cmd = Command::parse(payload, self.capabilities).unwrap();
        if !matches!(cmd, Command::StmtExecute(_)) {
            let mut again = BytesMut::new();
            cmd.encode(&mut again, self.capabilities).unwrap();
            assert_eq!(&again[..], payload, "command re-encoding differs: {cmd:?}");
        }
        self.seq = 0;
        self.send(payload);
    }

    pub fn query(&mut self, sql: &str) -> Vec<Outcome> {
        let mut p = vec![com::QUERY];
        p.extend_from_slice(sql.as_bytes());
        self.command(&p);
        self.read_results(None)
    }

    /// Reads results until one says no more follow.
    pub fn read_results(&mut self, binary: Option<()>) -> Vec<Outcome> {
        let mut all = Vec::new();
        loop {
            let p = self.read_packet();
            let (outcome, status) = match QueryResponse::parse(&p.payload, self.capabilities)
                .unwrap()
            {
                QueryResponse::Ok(ok) => {
                    self.check_ok(&p.payload, &ok);
                    (
                        Outcome::Ok {
                            affected_rows: ok.affected_rows,
                            status: ok.status,
                        },
                        ok.status,
                    )
                }
                QueryResponse::Err(e) => (err_outcome(&p.payload, &e), 0),
                QueryResponse::LocalInfile { filename } => {
                    panic!("unexpected LOCAL INFILE request for {filename:?}")
                }
                QueryResponse::ResultSet { columns } => self.read_rows(columns, binary.is_some()),
            };
            all.push(outcome);
            if status & status::MORE_RESULTS_EXISTS == 0 {
                return all;
            }
        }
    }

    /// The OK or ERR that ends an exchange, already read.
    pub fn read_results_from(&mut self, p: Packet) -> Outcome {
        if is_err(&p.payload) {
            let e = ErrPacket::parse(&p.payload).unwrap();
            return err_outcome(&p.payload, &e);
        }
        let ok = OkPacket::parse(&p.payload, self.capabilities).unwrap();
        self.check_ok(&p.payload, &ok);
        Outcome::Ok {
            affected_rows: ok.affected_rows,
            status: ok.status,
        }
    }

    fn check_ok(&self, payload: &[u8], ok: &OkPacket<'_>) {
        let mut again = BytesMut::new();
        ok.encode(&mut again, self.capabilities);
        assert_eq!(&again[..], payload, "OK re-encoding differs: {ok:?}");
    }

    /// Column definitions (and the EOF after them without DEPRECATE_EOF).
    pub fn read_columns(&mut self, n: u64) -> Vec<Column> {
        let mut columns = Vec::new();
        for _ in 0..n {
            let p = self.read_packet();
            let def = ColumnDefinition::parse(&p.payload).unwrap();
            let mut again = BytesMut::new();
            def.encode(&mut again);
            assert_eq!(
                &again[..],
                &p.payload[..],
                "column definition re-encoding differs"
            );
            columns.push(Column {
                name: String::from_utf8_lossy(def.name).into_owned(),
                column_type: def.column_type,
                flags: def.flags,
            });
        }
        if n > 0 && self.capabilities & caps::DEPRECATE_EOF == 0 {
            let p = self.read_packet();
            EofPacket::parse(&p.payload).unwrap();
        }
        columns
    }

    fn read_rows(&mut self, n: u64, binary: bool) -> (Outcome, u16) {
        let columns = self.read_columns(n);
        let types: Vec<u8> = columns.iter().map(|c| c.column_type).collect();
        let (mut rows, mut raw) = (Vec::new(), Vec::new());
        loop {
            let p = self.read_packet();
            if is_err(&p.payload) {
                let e = ErrPacket::parse(&p.payload).unwrap();
                return (err_outcome(&p.payload, &e), 0);
            }
            if is_end_of_rows(&p.payload) {
                let end = EndOfRows::parse(&p.payload, self.capabilities).unwrap();
                if let EndOfRows::Ok(ok) = &end {
                    self.check_ok(&p.payload, ok);
                }
                let status = end.status();
                return (Outcome::Rows { columns, rows, raw }, status);
            }
            let mut again = BytesMut::new();
            let values: Vec<Option<Vec<u8>>> = if binary {
                let row = BinaryRow::parse(&p.payload, &types).unwrap();
                row.encode_replacing(&mut again, &[]).unwrap();
                row.values().map(|v| v.map(<[u8]>::to_vec)).collect()
            } else {
                let row = TextRow::parse(&p.payload, columns.len()).unwrap();
                row.encode_replacing(&mut again, &[]).unwrap();
                row.values().map(|v| v.map(<[u8]>::to_vec)).collect()
            };
            assert_eq!(&again[..], &p.payload[..], "row re-encoding differs");
            assert_eq!(values.len(), columns.len());
            rows.push(values);
            raw.push(p.payload.to_vec());
        }
    }

    pub fn prepare(&mut self, sql: &str) -> Result<Prepared, Outcome> {
        let mut p = vec![com::STMT_PREPARE];
        p.extend_from_slice(sql.as_bytes());
        self.command(&p);
        let first = self.read_packet();
        if is_err(&first.payload) {
            let e = ErrPacket::parse(&first.payload).unwrap();
            return Err(err_outcome(&first.payload, &e));
        }
        let ok = PrepareOk::parse(&first.payload).unwrap();
        let mut again = BytesMut::new();
        ok.encode(&mut again);
        assert_eq!(
            &again[..],
            &first.payload[..],
            "PREPARE_OK re-encoding differs"
        );
        self.read_columns(u64::from(ok.params));
        let columns = self.read_columns(u64::from(ok.columns));
        Ok(Prepared {
            id: ok.stmt_id,
            params: usize::from(ok.params),
            columns,
        })
    }

    pub fn execute(
        &mut self,
        stmt: &Prepared,
        params: &[(ParamType, Option<&[u8]>)],
    ) -> Vec<Outcome> {
        let mut p = BytesMut::new();
        StmtExecute::encode(&mut p, stmt.id, params).unwrap();
        // The decoder must read back what the encoder wrote.
        let Command::StmtExecute(e) = Command::parse(&p, self.capabilities).unwrap() else {
            panic!("not an execute");
        };
        let decoded = e.decode_params(stmt.params, None, |_| false).unwrap();
        let sent: Vec<Option<&[u8]>> = params.iter().map(|(_, v)| *v).collect();
        assert_eq!(decoded.values, sent);
        self.command(&p.clone());
        self.read_results(Some(()))
    }
}

impl Conn {
    /// The answer to a COM_STMT_PREPARE already sent (pipelined tests).
    pub fn read_prepared(&mut self) -> Result<Prepared, Outcome> {
        let first = self.read_packet();
        if is_err(&first.payload) {
            let e = ErrPacket::parse(&first.payload).unwrap();
            return Err(err_outcome(&first.payload, &e));
        }
        let ok = PrepareOk::parse(&first.payload).unwrap();
        self.read_columns(u64::from(ok.params));
        let columns = self.read_columns(u64::from(ok.columns));
        Ok(Prepared {
            id: ok.stmt_id,
            params: usize::from(ok.params),
            columns,
        })
    }

    /// The answer to a COM_STMT_EXECUTE that opened a cursor: its columns
    /// and the status flags of the packet that ends them (no rows come).
    pub fn read_cursor_open(&mut self) -> Result<(Vec<Column>, u16), Outcome> {
        let p = self.read_packet();
        let n = match QueryResponse::parse(&p.payload, self.capabilities).unwrap() {
            QueryResponse::ResultSet { columns } => columns,
            QueryResponse::Err(e) => return Err(err_outcome(&p.payload, &e)),
            other => panic!("expected a result set, got {other:?}"),
        };
        let mut columns = Vec::new();
        for _ in 0..n {
            let p = self.read_packet();
            let def = ColumnDefinition::parse(&p.payload).unwrap();
            columns.push(Column {
                name: String::from_utf8_lossy(def.name).into_owned(),
                column_type: def.column_type,
                flags: def.flags,
            });
        }
        let end = self.read_packet();
        let status = EndOfRows::parse(&end.payload, self.capabilities)
            .unwrap()
            .status();
        Ok((columns, status))
    }

    /// The answer to a COM_STMT_FETCH: binary rows and the end's status
    /// flags, or the ERR.
    pub fn read_fetched(&mut self, columns: &[Column]) -> Result<(Vec<Row>, u16), Outcome> {
        let types: Vec<u8> = columns.iter().map(|c| c.column_type).collect();
        let mut rows = Vec::new();
        loop {
            let p = self.read_packet();
            if is_err(&p.payload) {
                let e = ErrPacket::parse(&p.payload).unwrap();
                return Err(err_outcome(&p.payload, &e));
            }
            if is_end_of_rows(&p.payload) {
                let end = EndOfRows::parse(&p.payload, self.capabilities).unwrap();
                return Ok((rows, end.status()));
            }
            let row = BinaryRow::parse(&p.payload, &types).unwrap();
            rows.push(row.values().map(|v| v.map(<[u8]>::to_vec)).collect());
        }
    }
}

fn err_outcome(payload: &[u8], e: &ErrPacket<'_>) -> Outcome {
    let mut again = BytesMut::new();
    e.encode(&mut again);
    assert_eq!(&again[..], payload, "ERR re-encoding differs");
    Outcome::Err {
        code: e.code,
        sqlstate: e
            .sqlstate
            .map(|s| String::from_utf8_lossy(&s).into_owned())
            .unwrap_or_default(),
        message: String::from_utf8_lossy(e.message).into_owned(),
    }
}

/// With TOLLGATE_MYSQL_SEEDS=<dir>, every packet read or sent (under 8 KiB)
/// is written there: the fuzz seeds in codecs/fuzz/seeds/mysql_packets come
/// from a run of these tests.
fn dump_seed(raw: &[u8]) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    if let Some(dir) = std::env::var_os("TOLLGATE_MYSQL_SEEDS")
        && raw.len() < 8 << 10
    {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}-{n:05}", std::process::id());
        std::fs::write(Path::new(&dir).join(name), raw).unwrap();
    }
}
