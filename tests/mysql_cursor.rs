//! Server-side cursors and pipelined commands through the MySQL gateway,
//! against real MariaDB 10.11. No installed client opens a cursor
//! (mysql-connector-python's `cursor(prepared=True)` and PyMySQL read whole
//! results), so cursors are driven with the codec's wire client
//! (`common::mywire`, which checks every sequence id) and with libmariadb
//! through ctypes; pipelining with the wire client and the MariaDB Node
//! connector (`pipelining: true`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::BytesMut;
use common::mygw::MyGateway;
use common::mywire::{Column, Conn, Outcome, Row, login_config};
use tollgate_codecs::mysql::{
    ParamType, StmtExecute, caps, column_type, com, status, write_packet,
};

const MASKING: &str = r#"
[[target.masking.rules]]
name = "ssn-column"
columns = ["ssn"]
style = "partial"
keep = 4

[[target.masking.rules]]
name = "pii-content"
detectors = ["email"]
style = "redact"
replacement = "[redacted]"
"#;

const POLICY: &str = r#"
[[target.policy.rules]]
name = "no-destructive"
action = "block"
message = "destructive statements are not allowed through tollgate"
classes = ["drop_table", "delete_without_where"]
"#;

fn wire(g: &MyGateway, token: &str, deprecate_eof: bool) -> Conn {
    let mut cfg = login_config("ci-job", token, true);
    if !deprecate_eof {
        cfg.capabilities &= !caps::DEPRECATE_EOF;
    }
    Conn::connect(g.port, cfg, &g.ca).unwrap()
}

fn err_code(o: &Outcome) -> u16 {
    match o {
        Outcome::Err { code, .. } => *code,
        other => panic!("expected an ERR, got {other:?}"),
    }
}

/// COM_STMT_EXECUTE of `id` without parameters, with cursor `flags`.
fn execute_payload(id: u32, flags: u8) -> Vec<u8> {
    let mut p = BytesMut::new();
    StmtExecute::encode(&mut p, id, &[]).unwrap();
    p[5] = flags;
    p.to_vec()
}

fn fetch_payload(id: u32, rows: u32) -> Vec<u8> {
    let mut p = vec![com::STMT_FETCH];
    p.extend_from_slice(&id.to_le_bytes());
    p.extend_from_slice(&rows.to_le_bytes());
    p
}

fn text(v: &Option<Vec<u8>>) -> String {
    String::from_utf8_lossy(v.as_deref().unwrap_or(b"NULL")).into_owned()
}

/// Opens a read-only cursor on `sql` and fetches it 2 rows at a time.
fn fetch_all(c: &mut Conn, sql: &str) -> (Vec<Column>, Vec<Row>) {
    let st = c.prepare(sql).unwrap();
    c.command(&execute_payload(st.id, 1));
    let (columns, flags) = c.read_cursor_open().unwrap();
    assert_ne!(flags & status::CURSOR_EXISTS, 0, "no cursor opened");
    let mut all = Vec::new();
    loop {
        c.command(&fetch_payload(st.id, 2));
        let (rows, flags) = c.read_fetched(&columns).unwrap();
        assert!(rows.len() <= 2, "{rows:?}");
        all.extend(rows);
        if flags & status::LAST_ROW_SENT != 0 {
            break;
        }
        assert_ne!(flags & status::CURSOR_EXISTS, 0);
    }
    // The cursor is closed after its last row: the server refuses the next
    // fetch (the gateway, with no cursor to mask by, passes only its ERR).
    c.command(&fetch_payload(st.id, 2));
    let e = c.read_fetched(&columns).unwrap_err();
    assert_eq!(err_code(&e), 1421, "{e:?}");
    (columns, all)
}

#[test]
fn rows_fetched_from_a_cursor_are_masked_like_executed_rows() {
    let g = MyGateway::builder().tables(MASKING).start();
    g.direct(
        "CREATE TABLE app.people (id INT, name VARCHAR(40), email VARCHAR(80), ssn VARCHAR(20), \
         born DATE);
         INSERT INTO app.people VALUES (1, 'Alice', 'alice@example.com', '123-45-6789', '1990-01-02'),
         (2, 'Bob', 'bob@example.com', '234-56-7890', NULL), (3, 'Carol', 'carol@example.com', \
         '345-67-8901', '1985-03-04'), (4, 'Dan', 'dan@example.com', '456-78-9012', NULL), \
         (5, 'Eve', 'eve@example.com', '567-89-0123', '2000-12-31')",
    );
    let t = g.token("ci-job", "ci");
    let sql = "SELECT id, name, email, ssn, born FROM people ORDER BY id";
    for deprecate_eof in [true, false] {
        let mut c = wire(&g, &t, deprecate_eof);
        assert_eq!(
            c.capabilities & caps::DEPRECATE_EOF != 0,
            deprecate_eof,
            "the session did not negotiate what the test asked"
        );
        let (columns, rows) = fetch_all(&mut c, sql);
        assert_eq!(columns.len(), 5);
        assert_eq!(columns[4].column_type, column_type::DATE);
        assert_eq!(rows.len(), 5, "{rows:?}");
        let names: Vec<String> = rows.iter().map(|r| text(&r[1])).collect();
        assert_eq!(names, ["Alice", "Bob", "Carol", "Dan", "Eve"]);
        for r in &rows {
            assert_eq!(text(&r[2]), "[redacted]", "{r:?}");
            let ssn = text(&r[3]);
            assert!(!ssn.contains("-45-") && ssn.ends_with(&ssn[ssn.len() - 4..]));
            assert_ne!(ssn.len(), 0);
        }
        assert!(text(&rows[0][3]).ends_with("6789"), "partial mask keeps 4");
        assert!(!text(&rows[0][3]).contains("123-45"));
        // The same rows executed without a cursor read the same.
        let st = c.prepare(sql).unwrap();
        let r = c.execute(&st, &[]);
        assert_eq!(r[0].rows(), &rows);
        // A fetch for a statement never prepared goes to the server, whose
        // ERR comes back; the session goes on.
        c.command(&fetch_payload(4242, 1));
        assert_eq!(err_code(&c.read_fetched(&columns).unwrap_err()), 1243);
        // A statement executed without a cursor has none to fetch from.
        c.command(&fetch_payload(st.id, 1));
        assert_eq!(err_code(&c.read_fetched(&columns).unwrap_err()), 1421);
        let r = c.query("SELECT 7");
        assert_eq!(r[0].rows()[0][0].as_deref(), Some(&b"7"[..]));
    }
    // MariaDB holds the originals; only the client's copy was masked.
    assert_eq!(
        g.direct("SELECT email, ssn FROM app.people WHERE id = 1"),
        "alice@example.com\t123-45-6789"
    );
    // The recording holds the fetches and their rows after masking.
    let export = g.gw.cli(&["recordings", "export", "--all"]);
    let export = String::from_utf8_lossy(&export.stdout);
    assert!(export.contains("\"fetch\""), "{export}");
    assert!(export.contains("binary_row"), "{export}");
    for s in ["alice@example.com", "123-45-6789", "eve@example.com"] {
        assert!(!export.contains(s), "recording leaks {s}");
    }
}

/// libmariadb through ctypes, opening a cursor (no packaged client does).
const LIBMARIADB_CURSOR: &str = include_str!("common/mariadb_cursor.py");

#[test]
fn libmariadb_reads_a_cursor_two_rows_a_fetch_masked() {
    let g = MyGateway::builder().tables(MASKING).start();
    g.direct(
        "CREATE TABLE app.staff (id INT, email VARCHAR(80), ssn VARCHAR(20));
         INSERT INTO app.staff VALUES (1, 'ann@example.com', '111-22-3333'), \
         (2, 'ben@example.com', '222-33-4444'), (3, 'cy@example.com', '333-44-5555')",
    );
    let t = g.token("ci-job", "ci");
    let code = LIBMARIADB_CURSOR.replace(
        "sys.argv[1].encode()",
        "b'SELECT id, email, ssn FROM staff ORDER BY id'",
    );
    let (ok, out, err) = g.python(&t, &code);
    assert!(ok, "{err}\n{}", g.gw.log_text());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (line, keep) in lines.iter().zip(["3333", "4444", "5555"]) {
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f[1], "[redacted]", "{line}");
        assert!(f[2].ends_with(keep) && !f[2].contains("-22-"), "{line}");
    }
    assert!(!out.contains("@example.com"), "{out}");
    // It did fetch: the recording holds COM_STMT_FETCH commands.
    let export = g.gw.cli(&["recordings", "export", "--all"]);
    let export = String::from_utf8_lossy(&export.stdout);
    assert!(export.matches("\"fetch\"").count() >= 2, "{export}");
    assert!(!export.contains("ann@example.com"));
}

#[test]
fn a_cursor_reexecuted_reset_or_of_another_type_is_handled_as_the_server_does() {
    let g = MyGateway::builder().tables(MASKING).start();
    g.direct(
        "CREATE TABLE app.mails (id INT, email VARCHAR(80));
         INSERT INTO app.mails VALUES (1, 'a@example.com'), (2, 'b@example.com')",
    );
    let t = g.token("ci-job", "ci");
    let mut c = wire(&g, &t, true);
    let st = c
        .prepare("SELECT id, email FROM mails ORDER BY id")
        .unwrap();
    // A scrollable or for-update cursor: not something servers implement,
    // refused without reaching the server.
    c.command(&execute_payload(st.id, 2));
    assert_eq!(err_code(&c.read_results(Some(()))[0]), 1047);
    // Open, fetch one, reset (the server closes the cursor), fetch again.
    c.command(&execute_payload(st.id, 1));
    let (columns, _) = c.read_cursor_open().unwrap();
    c.command(&fetch_payload(st.id, 1));
    let (rows, _) = c.read_fetched(&columns).unwrap();
    assert_eq!(text(&rows[0][1]), "[redacted]");
    c.command(&[com::STMT_RESET, st.id as u8, 0, 0, 0]);
    let p = c.read_packet();
    assert!(matches!(c.read_results_from(p), Outcome::Ok { .. }));
    c.command(&fetch_payload(st.id, 1));
    assert_eq!(err_code(&c.read_fetched(&columns).unwrap_err()), 1421);
    // Re-executed with a cursor: a new cursor, from the first row, masked.
    c.command(&execute_payload(st.id, 1));
    let (columns, _) = c.read_cursor_open().unwrap();
    c.command(&fetch_payload(st.id, 5));
    let (rows, flags) = c.read_fetched(&columns).unwrap();
    assert_eq!(rows.len(), 2);
    assert_ne!(flags & status::LAST_ROW_SENT, 0);
    assert!(rows.iter().all(|r| text(&r[1]) == "[redacted]"), "{rows:?}");
}

/// One command packet (sequence id 0) appended to `out`.
fn push(out: &mut BytesMut, payload: &[u8]) {
    write_packet(out, 0, payload);
}

#[test]
fn pipelined_commands_are_answered_in_order_with_a_refusal_in_place() {
    let g = MyGateway::builder().tables(POLICY).start();
    g.direct(
        "CREATE TABLE app.pipe (id INT);
         INSERT INTO app.pipe VALUES (1), (2)",
    );
    let t = g.token("ci-job", "ci");
    let mut c = wire(&g, &t, true);
    let mut out = BytesMut::new();
    push(&mut out, b"\x03SELECT 1");
    push(&mut out, b"\x03DROP TABLE app.pipe");
    push(&mut out, b"\x03SELECT 3; SELECT 4");
    push(&mut out, b"\x0e");
    // MariaDB's pipelined prepare + execute: statement id -1 is the
    // statement prepared last.
    push(&mut out, b"\x16SELECT CONCAT('n', ? + 1)");
    let mut e = BytesMut::new();
    let long = ParamType {
        column_type: column_type::LONGLONG,
        flags: 0,
    };
    StmtExecute::encode(&mut e, u32::MAX, &[(long, Some(&41i64.to_le_bytes()[..]))]).unwrap();
    push(&mut out, &e);
    // A refused prepare: the -1 after it must not run the previous one.
    push(&mut out, b"\x16DELETE FROM app.pipe");
    push(&mut out, &execute_payload(u32::MAX, 0));
    push(&mut out, &fetch_payload(u32::MAX, 1));
    push(&mut out, b"\x03SELECT COUNT(*) FROM app.pipe");
    c.write_raw(&out);

    c.seq_set(1);
    let r = c.read_results(None);
    assert_eq!(r[0].rows()[0][0].as_deref(), Some(&b"1"[..]));
    c.seq_set(1);
    let r = c.read_results(None);
    assert_eq!(err_code(&r[0]), 1142, "{r:?}");
    c.seq_set(1);
    let r = c.read_results(None);
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[1].rows()[0][0].as_deref(), Some(&b"4"[..]));
    c.seq_set(1);
    let p = c.read_packet();
    assert!(matches!(c.read_results_from(p), Outcome::Ok { .. }));
    c.seq_set(1);
    let st = c.read_prepared().unwrap();
    assert_eq!(st.params, 1);
    c.seq_set(1);
    let r = c.read_results(Some(()));
    assert_eq!(r[0].rows()[0][0].as_deref(), Some(&b"n42"[..]), "{r:?}");
    c.seq_set(1);
    assert_eq!(err_code(&c.read_prepared().err().unwrap()), 1142);
    c.seq_set(1);
    let r = c.read_results(Some(()));
    assert_eq!(err_code(&r[0]), 1243, "{r:?}");
    c.seq_set(1);
    assert_eq!(err_code(&c.read_fetched(&[]).unwrap_err()), 1243);
    c.seq_set(1);
    let r = c.read_results(None);
    assert_eq!(r[0].rows()[0][0].as_deref(), Some(&b"2"[..]));
    assert_eq!(g.direct("SELECT COUNT(*) FROM app.pipe"), "2");
}

#[test]
fn the_mariadb_node_connector_pipelines_through_the_gateway() {
    let g = MyGateway::builder().tables(POLICY).start();
    g.direct(
        "CREATE TABLE app.piped (id INT);
         INSERT INTO app.piped VALUES (1), (2), (3)",
    );
    let t = g.token("ci-job", "ci");
    let module = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/node/node_modules/mariadb/promise.js"
    );
    // `pipelining` (the connector's default) writes each command without
    // waiting for the previous answer. (Its PREPARE + EXECUTE(-1) pipeline
    // is for servers whose greeting says MariaDB; the gateway greets as
    // 5.7.99-tollgate, so it waits for each PREPARE: the raw test above
    // covers -1.)
    let script = r#"
const mariadb = require(process.env.MARIADB);
(async () => {
  const c = await mariadb.createConnection({host: '127.0.0.1', port: +process.env.PORT,
    user: 'ci-job', password: process.env.TOKEN, database: 'app', pipelining: true,
    ssl: {ca: require('fs').readFileSync(process.env.CA)}});
  const blocked = (p) => p.then(() => 'ran', (e) => e.errno);
  const out = await Promise.all([
    c.query('SELECT 1 AS n'),
    blocked(c.query('DROP TABLE piped')),
    c.execute('SELECT CONCAT(?, ?) AS s', ['a', 41]),
    blocked(c.execute('DELETE FROM piped')),
    c.execute('SELECT COUNT(*) AS k FROM piped WHERE id > ?', [1]),
    c.query('SELECT 5 AS n'),
  ]);
  console.log(out[0][0].n, out[1], out[2][0].s, out[3], Number(out[4][0].k), out[5][0].n);
  await c.end();
})().catch(e => { console.error(e); process.exit(1); });
"#;
    let out = std::process::Command::new("node")
        .args(["-e", script])
        .env("MARIADB", module)
        .env("PORT", g.port.to_string())
        .env("TOKEN", &t)
        .env("CA", &g.ca)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "mariadb for Node (tests/deps.sh installs it): {stderr}\n{}",
        g.gw.log_text()
    );
    assert_eq!(stdout.trim(), "1 1142 a41 1142 2 5");
    assert_eq!(g.direct("SELECT COUNT(*) FROM app.piped"), "3");
}
