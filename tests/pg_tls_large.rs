//! End-to-end: large messages over TLS, with real clients against a real
//! PostgreSQL 15, through client TLS, upstream TLS, and an mTLS `tcp`
//! target. Each runs the same workload: a ~100 MB `COPY FROM STDIN`, a
//! ~100 MB result, a 10 MB single value both ways, and `pg_dump -Fc` of the
//! database then `pg_restore` into another, compared table by table.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::pg::cluster;
use common::pggw::PgGateway;
use common::pki::{Ca, client_config};
use common::*;
use md5::{Digest, Md5};

/// Rows of the big table: ~105 bytes each, ~105 MB in all.
const ROWS: u64 = 1_000_000;

/// How a client reaches a database: a libpq conninfo, plus whether the
/// workload can create its own schema there.
struct Via {
    conninfo: String,
}

fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The big table's COPY text: `id \t repeat(md5(id), 3)`, which the server
/// can recompute to check every row it stored.
fn big_copy_text() -> Vec<u8> {
    let mut out = Vec::with_capacity(ROWS as usize * 110);
    for i in 1..=ROWS {
        let h = md5_hex(i.to_string().as_bytes());
        writeln!(out, "{i}\t{h}{h}{h}").unwrap();
    }
    out
}

fn psql(via: &Via, sql: &str, stdin: Option<Vec<u8>>) -> Vec<u8> {
    let mut child = Command::new("psql")
        .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .arg(&via.conninfo)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let feeder = stdin.map(|data| {
        let mut w = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = w.write_all(&data);
        })
    });
    let out = child.wait_with_output().unwrap();
    if let Some(f) = feeder {
        f.join().unwrap();
    }
    assert!(
        out.status.success(),
        "psql `{sql}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn run_ok(cmd: &mut Command, what: &str) {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Checksums of every table of `db`, computed on the server.
fn table_sums(db: &str) -> String {
    let c = cluster();
    let mut sums = Vec::new();
    for t in ["big", "small", "one"] {
        sums.push(c.sql(
            db,
            &format!(
                "select '{t}', count(*), md5(string_agg(x::text, E'\\n' order by x.id)) from {t} x"
            ),
        ));
    }
    sums.push(c.sql(
        db,
        "select count(*) from pg_indexes where tablename = 'small'",
    ));
    sums.push(c.sql(db, "select count(*) from small_view"));
    sums.join("\n")
}

/// The whole workload through `via`, with the database `db` behind it and
/// `restore` (empty database `restore_db` behind it) for `pg_restore`.
fn workload(via: &Via, db: &str, restore: &Via, restore_db: &str) {
    let c = cluster();
    psql(
        via,
        "create table big (id bigint primary key, v text);\
         create table small (id serial primary key, name text unique, at timestamptz default now());\
         insert into small (name) select 'n' || g from generate_series(1, 1000) g;\
         create index small_at on small (at);\
         create view small_view as select id, name from small where id % 2 = 0",
        None,
    );

    // ~100 MB COPY FROM STDIN, checked row by row on the server.
    psql(via, "copy big from stdin", Some(big_copy_text()));
    assert_eq!(
        c.sql(
            db,
            "select count(*), count(*) filter (where v = repeat(md5(id::text), 3)), sum(id) from big"
        ),
        format!("{ROWS}|{ROWS}|{}", ROWS * (ROWS + 1) / 2)
    );

    // ~100 MB result: what psql got against the server's own checksum.
    let got = psql(via, "select id, v from big order by id", None);
    let want = c.sql(
        db,
        "select md5(string_agg(id || '|' || v, E'\\n' order by id) || E'\\n') from big",
    );
    assert!(
        got.len() as u64 > ROWS * 100,
        "result too short: {}",
        got.len()
    );
    assert_eq!(md5_hex(&got), want, "the 100 MB result differs");

    // A 10 MB single value, sent as a parameter and read back (psycopg).
    let out = python(
        "import hashlib, psycopg, sys\n\
         v = ''.join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(163840))\n\
         with psycopg.connect(sys.argv[1], autocommit=True) as c:\n\
         \x20   c.execute('create table one (id int, v text)')\n\
         \x20   c.execute('insert into one values (1, %s)', (v,))\n\
         \x20   got = c.execute('select v from one').fetchone()[0]\n\
         \x20   srv = c.execute('select md5(v), length(v) from one').fetchone()\n\
         print(got == v, srv[0] == hashlib.md5(v.encode()).hexdigest(), srv[1])\n",
        &[&via.conninfo],
    );
    assert_eq!(out, "True True 10485760");

    // pg_dump -Fc, then pg_restore into another database; same contents.
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("db.dump");
    run_ok(
        Command::new("pg_dump")
            .args(["-Fc", "-f"])
            .arg(&dump)
            .arg("-d")
            .arg(&via.conninfo),
        "pg_dump",
    );
    run_ok(
        Command::new("pg_restore")
            .args(["--no-owner", "--no-privileges", "--exit-on-error", "-d"])
            .arg(&restore.conninfo)
            .arg(&dump),
        "pg_restore",
    );
    assert_eq!(table_sums(db), table_sums(restore_db));
}

/// Run the workload; on failure show the gateways' logs too.
fn workload_logged(via: &Via, db: &str, restore: &Via, restore_db: &str, gws: &[&Gateway]) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        workload(via, db, restore, restore_db)
    }));
    if let Err(e) = r {
        for g in gws {
            eprintln!("gateway log:\n{}", g.log_text());
        }
        std::panic::resume_unwind(e);
    }
}

/// No session of `gw` ended on an I/O error on either side.
fn no_io_errors(gw: &Gateway) {
    let closed = gw.log_events("session closed");
    assert!(!closed.is_empty());
    for e in &closed {
        let reason = e["reason"].as_str().unwrap_or_default();
        assert!(
            !reason.starts_with("client: ") && !reason.starts_with("upstream: "),
            "{reason}"
        );
    }
}

/// A gateway with client TLS (`[target.tls]`); libpq verifies the gateway.
fn client_tls_gateway(name: &str, ca: &Ca, dir: &std::path::Path) -> (PgGateway, Via) {
    let (cert, key) = ca.server(dir, "gateway");
    let g = PgGateway::builder()
        .target("allow_plaintext = false")
        .tables(&format!(
            "[target.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            cert.display(),
            key.display()
        ))
        .start(name);
    let t = g.token("ci-job", "ci", "30m");
    let via = Via {
        conninfo: format!(
            "host=127.0.0.1 port={} dbname={} user=ci-job password={t} sslmode=verify-ca sslrootcert={} connect_timeout=10",
            g.port,
            g.db,
            ca.cert.display()
        ),
    };
    (g, via)
}

#[test]
fn large_messages_over_client_tls() {
    let pki = tempfile::tempdir().unwrap();
    let ca = Ca::new(pki.path(), "gw-ca");
    let (g, via) = client_tls_gateway("tlsbig", &ca, pki.path());
    let (r, rvia) = client_tls_gateway("tlsbig_restore", &ca, pki.path());
    workload_logged(&via, &g.db, &rvia, &r.db, &[&g.gw, &r.gw]);
    no_io_errors(&g.gw);
    no_io_errors(&r.gw);
}

/// A gateway whose upstream connection is TLS (verify-full) to PostgreSQL.
fn upstream_tls_gateway(name: &str) -> (PgGateway, Via) {
    let ca = cluster().ca.clone();
    let g = PgGateway::builder()
        .tables(&format!(
            "[target.upstream_tls]\nmode = \"verify-full\"\nca_file = \"{}\"\nserver_name = \"localhost\"\n",
            ca.display()
        ))
        .start(name);
    let t = g.token("ci-job", "ci", "30m");
    let via = Via {
        conninfo: g.conninfo(&t),
    };
    (g, via)
}

#[test]
fn large_messages_over_upstream_tls() {
    let (g, via) = upstream_tls_gateway("uptlsbig");
    let (r, rvia) = upstream_tls_gateway("uptlsbig_restore");
    // The gateway's upstream connection is encrypted.
    assert_eq!(
        String::from_utf8(psql(
            &via,
            "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
            None
        ))
        .unwrap()
        .trim(),
        "t"
    );
    workload_logged(&via, &g.db, &rvia, &r.db, &[&g.gw, &r.gw]);
    no_io_errors(&g.gw);
    no_io_errors(&r.gw);
}

/// A plaintext-to-mTLS bridge for libpq, which cannot open a connection
/// with TLS from the first byte: each accepted connection is carried over
/// a rustls client connection (with a workload certificate) to `port`.
fn mtls_bridge(port: u16, cfg: Arc<rustls::ClientConfig>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let bridge_port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for plain in l.incoming() {
            let Ok(plain) = plain else { return };
            let cfg = cfg.clone();
            std::thread::spawn(move || carry(plain, port, cfg));
        }
    });
    bridge_port
}

/// One bridged connection: two threads sharing the rustls connection; only
/// the plain→TLS thread writes to the TLS socket.
fn carry(plain: TcpStream, port: u16, cfg: Arc<rustls::ClientConfig>) {
    let limit = Some(Duration::from_secs(120));
    let mut tls_sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    for s in [&plain, &tls_sock] {
        s.set_read_timeout(limit).unwrap();
        s.set_write_timeout(limit).unwrap();
    }
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(cfg, name).unwrap();
    conn.set_buffer_limit(None);
    while conn.is_handshaking() {
        if conn.complete_io(&mut tls_sock).is_err() {
            return;
        }
    }
    let conn = Arc::new(Mutex::new(conn));
    let (c2, mut tls_in, mut plain_out) = (
        conn.clone(),
        tls_sock.try_clone().unwrap(),
        plain.try_clone().unwrap(),
    );
    // TLS → plain.
    let down = std::thread::spawn(move || {
        let (mut raw, mut clear) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
        'outer: while let Ok(n) = tls_in.read(&mut raw) {
            if n == 0 {
                break;
            }
            let mut rest = &raw[..n];
            while !rest.is_empty() {
                let mut got = Vec::new();
                {
                    let mut c = c2.lock().unwrap();
                    if c.read_tls(&mut rest).is_err() || c.process_new_packets().is_err() {
                        break 'outer;
                    }
                    loop {
                        match c.reader().read(&mut clear) {
                            Ok(0) => {
                                drop(c);
                                let _ = plain_out.write_all(&got);
                                break 'outer;
                            }
                            Ok(k) => got.extend_from_slice(&clear[..k]),
                            Err(_) => break,
                        }
                    }
                }
                if plain_out.write_all(&got).is_err() {
                    break 'outer;
                }
            }
        }
        let _ = plain_out.shutdown(std::net::Shutdown::Write);
    });
    // plain → TLS.
    let (mut plain_in, mut buf) = (plain, vec![0u8; 64 * 1024]);
    loop {
        let n = plain_in.read(&mut buf).unwrap_or(0);
        let mut out = Vec::new();
        {
            let mut c = conn.lock().unwrap();
            if n == 0 {
                c.send_close_notify();
            } else if c.writer().write_all(&buf[..n]).is_err() {
                break;
            }
            while c.wants_write() {
                if c.write_tls(&mut out).is_err() {
                    break;
                }
            }
        }
        if tls_sock.write_all(&out).is_err() || n == 0 {
            break;
        }
    }
    let _ = down.join();
}

#[test]
fn large_messages_through_an_mtls_tcp_target() {
    let c = cluster();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_path_buf();
    let ca = Ca::new(&d, "workload-ca");
    let (cert, key) = ca.server(&d, "gateway");
    let (ccert, ckey) = ca.spiffe_client(&d, "ci", "spiffe://prod.example/ns/ci/runner");
    let revocations = d.join("revocations.json");
    std::fs::write(&revocations, "[]").unwrap();
    let port = free_port();
    let cfg = format!(
        r#"
[engine]
shards = 2

[identity]
revocation_file = "{rev}"
[identity.mtls]
ca_file = "{ca}"
[[identity.mtls.map]]
pattern = "spiffe://prod.example/ns/ci/*"
groups = ["ci"]

[[target]]
name = "pg-raw"
protocol = "tcp"
listen = ["127.0.0.1:{port}"]
upstream = "127.0.0.1:{up}"
[target.tls]
cert_file = "{cert}"
key_file = "{key}"
[target.access]
groups = ["ci"]
"#,
        rev = revocations.display(),
        ca = ca.cert.display(),
        up = c.port,
        cert = cert.display(),
        key = key.display(),
    );
    let cfg_path = d.join("tollgate.toml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let mut gw = Gateway::spawn_in(tmp, cfg_path);
    gw.wait_ready();
    let bridge = mtls_bridge(port, client_config(&ca.cert, Some((&ccert, &ckey))));
    let (db, rdb) = ("db_mtlsbig", "db_mtlsbig_restore");
    c.create_db(db, "app_mtlsbig", "Mtls-Big-S3cret");
    c.create_db(rdb, "app_mtlsbig_r", "Mtls-Big-R-S3cret");
    let via_db = |db: &str, user: &str, pw: &str| Via {
        conninfo: format!(
            "host=127.0.0.1 port={bridge} dbname={db} user={user} password={pw} sslmode=disable connect_timeout=10"
        ),
    };
    let via = via_db(db, "app_mtlsbig", "Mtls-Big-S3cret");
    let rvia = via_db(rdb, "app_mtlsbig_r", "Mtls-Big-R-S3cret");
    workload_logged(&via, db, &rvia, rdb, &[&gw]);
    let opened = gw.log_events("session opened");
    assert!(
        opened
            .iter()
            .any(|e| e["subject"] == "spiffe://prod.example/ns/ci/runner"),
        "{opened:?}"
    );
}

#[test]
fn a_value_above_the_record_cap_passes_in_plaintext_too() {
    // 20 MB in one DataRow and one Bind: more than one recording record
    // holds (16 MiB), so the relay records it in pieces.
    let g = PgGateway::start("bigvalue");
    let t = g.token("ci-job", "ci", "10m");
    let out = python(
        "import hashlib, psycopg, sys\n\
         v = ''.join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(327680))\n\
         with psycopg.connect(sys.argv[1], autocommit=True) as c:\n\
         \x20   c.execute('create table one (id int, v text)')\n\
         \x20   c.execute('insert into one values (1, %s)', (v,))\n\
         \x20   got = c.execute('select v from one').fetchone()[0]\n\
         print(got == v, len(got))\n",
        &[&g.conninfo(&t)],
    );
    assert_eq!(out, "True 20971520", "{}", g.gw.log_text());
}
