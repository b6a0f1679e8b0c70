//! The MySQL/MariaDB gateway end to end: real MariaDB 10.11 behind
//! tollgate, real clients in front (the `mariadb` CLI, PyMySQL,
//! mysql-connector-python, and the codec's wire client for what no client
//! sends): token login over TLS, every refusal path, blocked statements
//! (ERR 1142, the session and its transaction go on), prepared statements,
//! masking of text and binary rows, KILL of one's own sessions only, the
//! recording, and the stored credential never leaving the gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::mariadb::{self, DATABASE};
use common::mygw::{CONNECTOR, MyGateway, PYMYSQL};
use common::mywire::{Conn, Outcome, login_config};
use tollgate_codecs::mysql::com;

const POLICY: &str = r#"
[[target.policy.rules]]
name = "no-destructive"
action = "block"
message = "destructive statements are not allowed through tollgate"
classes = ["drop_database", "drop_table", "truncate", "delete_without_where", "update_without_where"]
"#;

fn err_code(o: &Outcome) -> u16 {
    match o {
        Outcome::Err { code, .. } => *code,
        other => panic!("expected an ERR, got {other:?}"),
    }
}

/// The codec's wire client, logged in through the gateway with `token`.
fn wire(g: &MyGateway, token: &str) -> Conn {
    Conn::connect(g.port, login_config("ci-job", token, true), &g.ca).unwrap()
}

#[test]
fn clients_log_in_with_a_token_over_tls_as_the_stored_account() {
    let g = MyGateway::start();
    let t = g.token("ci-job", "ci");
    let (ok, out, err) = g.cli(&t, &["-D", DATABASE], "SELECT CURRENT_USER(), DATABASE()");
    assert!(ok, "{err}\n{}", g.gw.log_text());
    assert_eq!(out, "native_user@%\tapp");
    // No database named: the listener's only target.
    let (ok, out, err) = g.cli(&t, &[], "SELECT CURRENT_USER()");
    assert!(ok, "{err}");
    assert_eq!(out, "native_user@%");
    let (ok, out, err) = g.python(
        &t,
        &format!("{PYMYSQL}\ncur.execute('SELECT CURRENT_USER(), 1+1')\nprint(cur.fetchone())"),
    );
    assert!(ok, "{err}");
    assert_eq!(out, "('native_user@%', 2)");
    let (ok, out, err) = g.python(
        &t,
        &format!(
            "{CONNECTOR}\ncur.execute('SELECT CURRENT_USER(), ?', (41,))\nprint(cur.fetchone())"
        ),
    );
    assert!(ok, "{err}");
    assert_eq!(out, "('native_user@%', 41)");
    // The upstream session is encrypted too (verify-full to MariaDB).
    let mut c = wire(&g, &t);
    let r = c.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'");
    assert!(
        r[0].rows()[0][1].as_ref().is_some_and(|v| !v.is_empty()),
        "{r:?}"
    );
    assert!(g.gw.log_count("session opened") >= 5, "{}", g.gw.log_text());
    // Neither the stored credential nor the caller's token is logged or
    // recorded (the login is not part of the recording).
    let log = g.gw.log_text();
    assert!(!log.contains(&g.password) && !log.contains(&t));
    let export = g.gw.cli(&["recordings", "export", "--all"]);
    let export = String::from_utf8_lossy(&export.stdout);
    assert!(export.contains("SELECT CURRENT_USER()"), "{export}");
    assert!(!export.contains(&g.password) && !export.contains(&t));
}

#[test]
fn ed25519_upstream_account() {
    let g = MyGateway::builder()
        .credential(mariadb::ED25519_USER, mariadb::ED25519_PASSWORD)
        .plain_upstream()
        .start();
    let t = g.token("ci-job", "ci");
    let (ok, out, err) = g.cli(&t, &[], "SELECT CURRENT_USER()");
    assert!(ok, "{err}");
    assert_eq!(out, "ed_user@%");
}

#[test]
fn refusals_come_before_any_secret_and_say_one_generic_line() {
    let g = MyGateway::builder()
        .target("allow_plaintext = false")
        .start();
    let t = g.token("ci-job", "ci");
    // Plaintext: refused before the client is asked for anything.
    let out = std::process::Command::new("mariadb")
        .args([
            "--no-defaults",
            "-h",
            "127.0.0.1",
            "-u",
            "x",
            "--skip-ssl",
            "-e",
            "SELECT 1",
        ])
        .arg(format!("-P{}", g.port))
        .env("MYSQL_PWD", &t)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("3159"), "{err}");
    assert!(err.contains("requires an encrypted connection"), "{err}");
    // A bad token, a caller outside the access rules: the same line.
    for token in ["not-a-token".to_string(), g.token("mallory", "outsiders")] {
        let (ok, _, err) = g.cli(&token, &[], "SELECT 1");
        assert!(!ok);
        assert!(
            err.contains("1045") && err.contains("authentication failed"),
            "{err}"
        );
    }
    // A database no target on this listener routes.
    let (ok, _, err) = g.cli(&t, &["-D", "mysql"], "SELECT 1");
    assert!(!ok && err.contains("1049"), "{err}");
    let log = g.gw.log_text();
    assert!(
        !log.contains(&g.password) && !log.contains(&t),
        "credential in the log"
    );
}

#[test]
fn blocked_statements_read_err_1142_and_the_session_goes_on() {
    let g = MyGateway::builder().tables(POLICY).start();
    g.direct("CREATE TABLE app.blocked (id INT PRIMARY KEY, v TEXT); INSERT INTO app.blocked VALUES (1, 'a')");
    let t = g.token("ci-job", "ci");
    let code = format!(
        "{PYMYSQL}
import pymysql.constants.CLIENT
def attempt(sql):
    try:
        cur.execute(sql)
        print('ran', sql)
    except pymysql.MySQLError as e:
        print(e.args[0], e.args[1])
c.begin()
cur.execute(\"INSERT INTO blocked VALUES (10, 'in tx')\")
attempt('DROP TABLE blocked')
attempt('/*!50000 DROP TABLE blocked */')
attempt('DELETE FROM blocked')
cur.execute(\"INSERT INTO blocked VALUES (11, 'after')\")
c.commit()
m = pymysql.connect(host='127.0.0.1', port=int(os.environ['PORT']), user='x',
    password=os.environ['TOKEN'], database='app', ssl={{'ca': os.environ['CA']}},
    client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS, autocommit=True)
mc = m.cursor()
try:
    mc.execute('SELECT 1; TRUNCATE TABLE blocked; SELECT 2')
    print('ran multi')
except pymysql.MySQLError as e:
    print(e.args[0], e.args[1])
mc.execute('SELECT COUNT(*) FROM blocked')
print('count', mc.fetchone()[0])
"
    );
    let (ok, out, err) = g.python(&t, &code);
    assert!(ok, "{err}\n{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    for l in &lines[..4] {
        assert!(
            l.starts_with("1142 destructive statements are not allowed"),
            "{out}"
        );
    }
    assert_eq!(lines[4], "count 3");
    assert_eq!(g.direct("SELECT COUNT(*) FROM app.blocked"), "3");
    // The CLI reads it as the server's own error.
    let (ok, _, err) = g.cli(&t, &["-D", DATABASE], "DROP TABLE blocked");
    assert!(!ok && err.contains("ERROR 1142 (42000)"), "{err}");
    assert!(err.contains("destructive statements"), "{err}");
    // Prepared: refused at COM_STMT_PREPARE.
    let (ok, out, err) = g.python(
        &t,
        &format!(
            "{CONNECTOR}
try:
    cur.execute('DROP TABLE blocked')
except mysql.connector.Error as e:
    print(e.errno)
cur.execute('SELECT COUNT(*) FROM blocked WHERE id > ?', (0,))
print(cur.fetchone()[0])"
        ),
    );
    assert!(ok, "{err}");
    assert_eq!(out, "1142\n3");
    assert_eq!(g.direct("SELECT COUNT(*) FROM app.blocked"), "3");
    assert!(g.gw.log_count("statement blocked") >= 6);
}

const MASKING: &str = r#"
[[target.masking.rules]]
name = "ssn-column"
columns = ["ssn"]
style = "partial"
keep = 4

[[target.masking.rules]]
name = "pii-content"
detectors = ["email", "card"]
style = "redact"
replacement = "[redacted]"
"#;

#[test]
fn masked_values_never_reach_the_client_in_either_row_format() {
    let g = MyGateway::builder().tables(MASKING).start();
    g.direct(
        "CREATE TABLE app.customers (id INT, name VARCHAR(40), email VARCHAR(80), ssn VARCHAR(20), \
         card BIGINT, note TEXT);
         INSERT INTO app.customers VALUES (1, 'Alice', 'alice@example.com', '123-45-6789', \
         4111111111111111, 'pay with 4111 1111 1111 1111 please')",
    );
    let t = g.token("ci-job", "ci");
    let secrets = [
        "alice@example.com",
        "123-45-6789",
        "4111111111111111",
        "4111 1111 1111 1111",
    ];
    let (ok, text, err) = g.python(
        &t,
        &format!("{PYMYSQL}\ncur.execute('SELECT * FROM customers')\nprint(cur.fetchall())"),
    );
    assert!(ok, "{err}");
    let (ok, binary, err) = g.python(
        &t,
        &format!(
            "{CONNECTOR}\ncur.execute('SELECT * FROM customers WHERE id = ?', (1,))\nprint(cur.fetchall())"
        ),
    );
    assert!(ok, "{err}");
    let (ok, cli, err) = g.cli(&t, &[], "SELECT * FROM customers");
    assert!(ok, "{err}");
    for (what, out) in [("text", &text), ("binary", &binary), ("cli", &cli)] {
        for s in secrets {
            assert!(!out.contains(s), "{what} rows leak {s}: {out}");
        }
        assert!(
            out.contains("Alice") && out.contains("[redacted]"),
            "{what}: {out}"
        );
        assert!(out.contains("6789"), "{what}: partial mask keeps 4: {out}");
    }
    // The number column masked by content comes back as NULL in both formats.
    assert!(
        text.contains("None") && binary.contains("None"),
        "{text}\n{binary}"
    );
    // The recording holds the masked rows only.
    let export = g.gw.cli(&["recordings", "export", "--all"]);
    let export = String::from_utf8_lossy(&export.stdout);
    assert!(export.contains("\"mysql\""), "{export}");
    for s in secrets {
        assert!(!export.contains(s), "recording leaks {s}");
    }
    assert!(!export.contains(&g.password) && !export.contains(&t));
}

#[test]
fn rows_across_reads_and_flushes_are_all_masked_in_both_formats() {
    // Rows are read in place from the upstream buffer in batches: a result
    // of ~600 KB crosses many socket reads and the 256 KiB output flush, so
    // rows split across reads and batches that stop at a full output
    // buffer are both exercised; every one must come out masked.
    let g = MyGateway::builder().tables(MASKING).start();
    g.direct(
        "CREATE TABLE app.many (id INT PRIMARY KEY, email VARCHAR(80), pad VARCHAR(80));
         INSERT INTO app.many SELECT seq, CONCAT('user', seq, '@example.com'), REPEAT('p', 80) \
         FROM app.seq_1_to_6000",
    );
    let t = g.token("ci-job", "ci");
    let count = "print(sum(1 for r in rows if r[1] == '[redacted]'), \
                 sum(1 for r in rows if 'example.com' in str(r)), len(rows))";
    let (ok, text, err) = g.python(
        &t,
        &format!("{PYMYSQL}\ncur.execute('SELECT * FROM many')\nrows = cur.fetchall()\n{count}"),
    );
    assert!(ok, "{err}");
    let (ok, binary, err) = g.python(
        &t,
        &format!(
            "{CONNECTOR}\ncur.execute('SELECT * FROM many WHERE id > ?', (0,))\n\
             rows = [tuple(v.decode() if isinstance(v, (bytes, bytearray)) else v for v in r) \
             for r in cur.fetchall()]\n{count}"
        ),
    );
    assert!(ok, "{err}");
    for (what, out) in [("text", &text), ("binary", &binary)] {
        assert_eq!(out.trim(), "6000 0 6000", "{what}");
    }
}

#[test]
fn commands_without_a_text_to_judge_are_refused_and_the_session_goes_on() {
    let g = MyGateway::builder().tables(POLICY).start();
    let t = g.token("ci-job", "ci");
    let mut c = wire(&g, &t);
    // COM_CHANGE_USER: never a second login inside the session.
    c.command(&[
        com::CHANGE_USER,
        b'r',
        b'o',
        b'o',
        b't',
        0,
        0,
        b'a',
        b'p',
        b'p',
        0,
    ]);
    let p = c.read_packet();
    assert_eq!(err_code(&c.read_results_from(p)), 1227);
    for code in [com::STATISTICS, com::PROCESS_INFO, com::DROP_DB] {
        let mut cmd = vec![code];
        if code == com::DROP_DB {
            cmd.extend_from_slice(b"app");
        }
        c.seq_reset();
        c.send(&cmd);
        let p = c.read_packet();
        assert_eq!(err_code(&c.read_results_from(p)), 1047, "command {code:#x}");
    }
    // USE of another database: refused; of its own: fine.
    c.command(b"\x02mysql");
    let p = c.read_packet();
    assert_eq!(err_code(&c.read_results_from(p)), 1044);
    c.command(b"\x02app");
    let p = c.read_packet();
    assert!(matches!(c.read_results_from(p), Outcome::Ok { .. }));
    // An EXECUTE of a statement never prepared, a refused PREPARE.
    c.command(&[com::STMT_EXECUTE, 9, 0, 0, 0, 0, 1, 0, 0, 0]);
    let p = c.read_packet();
    assert_eq!(err_code(&c.read_results_from(p)), 1243);
    c.command(b"\x16DROP DATABASE app");
    let p = c.read_packet();
    assert_eq!(err_code(&c.read_results_from(p)), 1142);
    // Still alive, still the stored account.
    let r = c.query("SELECT CURRENT_USER()");
    assert_eq!(r[0].rows()[0][0].as_deref(), Some(&b"native_user@%"[..]));
    assert_eq!(g.direct("SHOW DATABASES LIKE 'app'"), "app");
}

#[test]
fn a_caller_kills_only_its_own_sessions() {
    let g = MyGateway::start();
    let alice = g.token("alice", "ci");
    let bob = g.token("bob", "ci");
    let mut a = wire(&g, &alice);
    let a_id = {
        let r = a.query("SELECT CONNECTION_ID()");
        String::from_utf8(r[0].rows()[0][0].clone().unwrap()).unwrap()
    };
    let mut b = wire(&g, &bob);
    let r = b.query(&format!("KILL {a_id}"));
    assert_eq!(err_code(&r[0]), 1094, "{r:?}");
    // By the id the greeting gave, as the CLI's Ctrl-C does, or the
    // server's: both pass for the owner.
    let gid = a.connection_id;
    let mut a2 = wire(&g, &alice);
    let r = a2.query(&format!("KILL QUERY {gid}"));
    assert!(matches!(r[0], Outcome::Ok { .. }), "{r:?}");
    let r = a2.query(&format!("KILL CONNECTION {a_id}"));
    assert!(matches!(r[0], Outcome::Ok { .. }), "{r:?}");
    assert_eventually!(
        g.direct(&format!(
            "SELECT COUNT(*) FROM information_schema.processlist WHERE id = {a_id}"
        )) == "0",
        std::time::Duration::from_secs(10),
        "alice's first session still runs"
    );
    // KILL in any other form is refused.
    let r = a2.query("KILL /* x */ 1");
    assert_eq!(err_code(&r[0]), 1227, "{r:?}");
}

#[test]
fn hostile_packets_end_the_session_without_reaching_the_server() {
    use std::io::{Read, Write};
    let g = MyGateway::builder().tables(POLICY).start();
    let t = g.token("ci-job", "ci");
    // A command with a wrong sequence id.
    let mut c = wire(&g, &t);
    c.seq_reset();
    c.seq_set(5);
    c.send(b"\x03DROP TABLE x");
    assert!(c.closed(), "session kept after a bad sequence id");
    // A login packet announcing 16 MiB: refused from the header alone.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", g.port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut greeting = [0u8; 512];
    let _ = s.read(&mut greeting).unwrap();
    s.write_all(&[0xff, 0xff, 0xff, 1]).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(
        g.gw.log_text().contains("start-up failed"),
        "{}",
        g.gw.log_text()
    );
}

#[test]
fn values_of_16_mib_and_more_cross_in_several_packets_masked() {
    let g = MyGateway::builder().tables(MASKING).start();
    let t = g.token("ci-job", "ci");
    let mut c = wire(&g, &t);
    let big = "y".repeat(17 << 20);
    // A statement of 17 MiB (several packets) judged and forwarded; a row
    // of 17 MiB whose other value is masked, re-encoded across packets.
    let r = c.query(&format!(
        "SELECT '{big}' AS v, 'alice@example.com' AS contact"
    ));
    let row = &r[0].rows()[0];
    assert_eq!(row[0].as_ref().map(Vec::len), Some(17 << 20));
    assert_eq!(row[1].as_deref(), Some(&b"[redacted]"[..]));
    // The session goes on after it.
    let r = c.query("SELECT 1");
    assert_eq!(r[0].rows()[0][0].as_deref(), Some(&b"1"[..]));
}

#[test]
fn a_held_statement_waits_for_a_reviewer() {
    let g = MyGateway::builder()
        .tables(
            r#"
[[target.policy.rules]]
name = "writes-need-review"
action = "approve"
message = "writes to acct need a reviewer"
classes = ["update"]

[admin]
listen = "127.0.0.1:0"
reviewer_groups = ["reviewers"]
"#,
        )
        .start();
    g.direct("CREATE TABLE app.acct (id INT PRIMARY KEY, balance INT); INSERT INTO app.acct VALUES (1, 100)");
    let t = g.token("ci-job", "ci");
    let rita = g.token("rita", "reviewers");
    let balance = || g.direct("SELECT balance FROM app.acct WHERE id = 1");
    std::thread::scope(|s| {
        let held = s.spawn(|| {
            g.cli(
                &t,
                &["-D", DATABASE],
                "UPDATE acct SET balance = 500 WHERE id = 1; SELECT balance FROM acct WHERE id = 1",
            )
        });
        let id = std::cell::RefCell::new(String::new());
        assert_eventually!(
            {
                let out = g.gw.cli(&["approvals", "list", "--json"]);
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
                *id.borrow_mut() = v["approvals"][0]["id"]
                    .as_u64()
                    .map(|i| i.to_string())
                    .unwrap_or_default();
                !id.borrow().is_empty()
            },
            std::time::Duration::from_secs(20),
            "no approval request appeared"
        );
        let id = id.into_inner();
        // Nothing reached the server while it waits.
        assert_eq!(balance(), "100");
        let out = g.gw.cli(&[
            "approvals",
            "approve",
            &id,
            "--reason",
            "CHG-1",
            "--token",
            &rita,
        ]);
        assert!(out.status.success(), "{out:?}");
        let (ok, out, err) = held.join().unwrap();
        assert!(ok, "{err}");
        assert_eq!(out, "500");
    });
    assert_eq!(balance(), "500");
}

const LOAD_LOCAL: &str = "
import tempfile
f = tempfile.NamedTemporaryFile('w', suffix='.csv', delete=False)
f.write('1,secret-row-one\\n2,secret-row-two\\n')
f.close()
try:
    cur.execute('LOAD DATA LOCAL INFILE %s INTO TABLE li FIELDS TERMINATED BY \\',\\'', (f.name,))
    print('loaded', cur.rowcount)
except pymysql.MySQLError as e:
    print('refused', e.args[0])
";

#[test]
fn load_data_local_is_off_by_default_and_recorded_when_on() {
    let code = format!(
        "{}\n{LOAD_LOCAL}",
        PYMYSQL.replace(
            "connect_timeout=10)",
            "connect_timeout=10, local_infile=True)"
        )
    );
    let off = MyGateway::start();
    off.direct("CREATE TABLE app.li (id INT, v TEXT)");
    let t = off.token("ci-job", "ci");
    let (ok, out, err) = off.python(&t, &code);
    assert!(ok, "{err}");
    assert!(out.starts_with("refused"), "{out}");
    assert_eq!(off.direct("SELECT COUNT(*) FROM app.li"), "0");
    drop(off);
    let on = MyGateway::builder().mysql("local_infile = true").start();
    let t = on.token("ci-job", "ci");
    let (ok, out, err) = on.python(&t, &code);
    assert!(ok, "{err}");
    assert_eq!(out, "loaded 2");
    assert_eq!(on.direct("SELECT COUNT(*) FROM app.li"), "2");
    // The file's content passed the recorder.
    let export = on.gw.cli(&["recordings", "export", "--all"]);
    assert!(String::from_utf8_lossy(&export.stdout).contains("secret-row-one"));
}

#[test]
fn mysql2_for_node_logs_in_queries_prepares_and_reads_a_block() {
    let g = MyGateway::builder().tables(POLICY).start();
    let t = g.token("ci-job", "ci");
    let module = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/node/node_modules/mysql2/promise"
    );
    let script = r#"
const mysql = require(process.env.MYSQL2);
(async () => {
  const c = await mysql.createConnection({host: '127.0.0.1', port: +process.env.PORT,
    user: 'ci-job', password: process.env.TOKEN, database: 'app',
    ssl: {ca: require('fs').readFileSync(process.env.CA)}});
  const [rows] = await c.query('SELECT CURRENT_USER() AS u');
  const [prep] = await c.execute('SELECT ? + 1 AS n', [41]);
  let code = 0;
  try { await c.query('DROP TABLE nope'); } catch (e) { code = e.errno; }
  console.log(rows[0].u, prep[0].n, code);
  await c.end();
})().catch(e => { console.error(e); process.exit(1); });
"#;
    let out = std::process::Command::new("node")
        .args(["-e", script])
        .env("MYSQL2", module)
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
        "mysql2 (tests/deps.sh installs it): {stderr}"
    );
    assert_eq!(stdout.trim(), "native_user@% 42 1142");
}

#[test]
fn small_commands_and_the_prepared_statement_lifecycle() {
    use tollgate_codecs::mysql::{ParamType, column_type, is_end_of_rows, is_err};
    let g = MyGateway::builder().tables(MASKING).start();
    g.direct(
        "CREATE TABLE app.people (id INT, email VARCHAR(80), ssn VARCHAR(20)); \
         INSERT INTO app.people VALUES (1, 'bob@example.com', '987-65-4321')",
    );
    let t = g.token("ci-job", "ci");
    let mut c = wire(&g, &t);
    c.command(&[com::PING]);
    let p = c.read_packet();
    assert!(matches!(c.read_results_from(p), Outcome::Ok { .. }));
    // COM_FIELD_LIST: column definitions until the end marker.
    c.command(b"\x04people\x00");
    let mut defs = 0;
    loop {
        let p = c.read_packet();
        if is_err(&p.payload) || is_end_of_rows(&p.payload) {
            assert!(!is_err(&p.payload));
            break;
        }
        defs += 1;
    }
    assert_eq!(defs, 3);
    // Prepare, execute (binary rows masked), reset, close.
    let st = c
        .prepare("SELECT email, ssn FROM people WHERE id = ?")
        .unwrap();
    let one = 1i64.to_le_bytes();
    let long = ParamType {
        column_type: column_type::LONGLONG,
        flags: 0,
    };
    let r = c.execute(&st, &[(long, Some(&one[..]))]);
    let row = &r[0].rows()[0];
    assert_eq!(row[0].as_deref(), Some(&b"[redacted]"[..]));
    let ssn = String::from_utf8(row[1].clone().unwrap()).unwrap();
    assert!(ssn.ends_with("4321") && !ssn.contains("987-65"), "{ssn}");
    let mut reset = vec![com::STMT_RESET];
    reset.extend_from_slice(&st.id.to_le_bytes());
    c.command(&reset);
    let p = c.read_packet();
    assert!(matches!(c.read_results_from(p), Outcome::Ok { .. }));
    let mut close = vec![com::STMT_CLOSE];
    close.extend_from_slice(&st.id.to_le_bytes());
    c.command(&close);
    let r = c.execute(&st, &[(long, Some(&one[..]))]);
    assert_eq!(err_code(&r[0]), 1243, "{r:?}");
    c.command(&[com::RESET_CONNECTION]);
    let p = c.read_packet();
    assert!(matches!(c.read_results_from(p), Outcome::Ok { .. }));
    let r = c.query("SELECT 2");
    assert_eq!(r[0].rows()[0][0].as_deref(), Some(&b"2"[..]));
    c.command(&[com::QUIT]);
    assert!(c.closed());
    assert_eventually!(
        g.gw.log_count("client terminated") >= 1,
        std::time::Duration::from_secs(10),
        "no clean end logged: {}",
        g.gw.log_text()
    );
}

#[test]
fn approval_to_connect_holds_the_login_until_a_reviewer_answers() {
    let g = MyGateway::builder()
        .target("require_approval_to_connect = true")
        .tables("[admin]\nlisten = \"127.0.0.1:0\"\nreviewer_groups = [\"reviewers\"]\n")
        .start();
    let t = g.token("ci-job", "ci");
    let rita = g.token("rita", "reviewers");
    std::thread::scope(|s| {
        let held = s.spawn(|| g.cli(&t, &[], "SELECT CURRENT_USER()"));
        let id = std::cell::RefCell::new(String::new());
        assert_eventually!(
            {
                let out = g.gw.cli(&["approvals", "list", "--json"]);
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
                *id.borrow_mut() = v["approvals"][0]["id"]
                    .as_u64()
                    .map(|i| i.to_string())
                    .unwrap_or_default();
                !id.borrow().is_empty()
            },
            std::time::Duration::from_secs(20),
            "no access request appeared"
        );
        let id = id.into_inner();
        let out = g.gw.cli(&["approvals", "approve", &id, "--token", &rita]);
        assert!(out.status.success(), "{out:?}");
        let (ok, out, err) = held.join().unwrap();
        assert!(ok, "{err}");
        assert_eq!(out, "native_user@%");
    });
}

#[test]
fn the_stored_credential_rotates_by_its_file_without_a_restart() {
    let s = mariadb::server();
    s.sql(
        "CREATE USER rot_user@'%' IDENTIFIED BY 'first-Secret-1'; \
         GRANT SELECT ON app.* TO rot_user@'%'",
    );
    let g = MyGateway::builder()
        .credential("rot_user", "first-Secret-1")
        .start();
    let t = g.token("ci-job", "ci");
    let (ok, out, err) = g.cli(&t, &[], "SELECT CURRENT_USER()");
    assert!(ok && out == "rot_user@%", "{err}");
    s.sql("ALTER USER rot_user@'%' IDENTIFIED BY 'second-Secret-2'");
    let (ok, _, err) = g.cli(&t, &[], "SELECT 1");
    assert!(
        !ok && err.contains("1105") && err.contains("could not log in"),
        "old secret still accepted? {err}"
    );
    std::fs::write(&g.password_file, "second-Secret-2\n").unwrap();
    let (ok, out, err) = g.cli(&t, &[], "SELECT CURRENT_USER()");
    assert!(ok && out == "rot_user@%", "{err}");
    let log = g.gw.log_text();
    assert!(!log.contains("first-Secret-1") && !log.contains("second-Secret-2"));
}

#[test]
fn a_revocation_ends_the_live_session_and_refuses_the_next_login() {
    let g = MyGateway::start();
    let t = g.token("eve", "ci");
    let mut c = wire(&g, &t);
    let r = c.query("SELECT 1");
    assert_eq!(r[0].rows()[0][0].as_deref(), Some(&b"1"[..]));
    let out =
        g.gw.cli(&["revoke", "--subject", "eve", "--reason", "leaked"]);
    assert!(out.status.success(), "{out:?}");
    assert!(c.closed(), "the revoked session is still open");
    let (ok, _, err) = g.cli(&t, &[], "SELECT 1");
    assert!(!ok && err.contains("1045"), "{err}");
}

#[test]
fn a_command_trickled_in_is_cut_by_the_frame_timeout() {
    let g = MyGateway::builder()
        .tables("[limits]\nframe_timeout = \"1s\"\n")
        .start();
    let t = g.token("ci-job", "ci");
    let mut c = wire(&g, &t);
    // A header announcing 100 bytes, and 3 of them: the packet never completes.
    c.write_raw(&[100, 0, 0, 0, 0x03, b'S', b'E']);
    assert!(c.closed(), "a stalled command kept the session");
    assert_eventually!(
        g.gw.log_text().contains("frame timeout"),
        std::time::Duration::from_secs(10),
        "no frame timeout logged: {}",
        g.gw.log_text()
    );
}
