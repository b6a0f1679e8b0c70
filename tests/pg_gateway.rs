//! End-to-end: real psql and PostgreSQL 15 through the gateway, with tokens
//! from the development issuer: authentication, authorization, revocation,
//! credential rotation, cancel, hostile input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use common::pggw::PgGateway;
use common::pgwire::{Wire, error_of};
use common::*;

#[test]
fn a_token_logs_in_and_queries_run_as_the_stored_role() {
    let g = PgGateway::start("basic");
    let t = g.token("ci-job", "ci", "10m");
    let (ok, out, err) = g.psql(&t, "select current_user, 40 + 2");
    assert!(ok, "{err}\n{}", g.gw.log_text());
    assert_eq!(out, "app_basic|42");
    // application_name passes through to the upstream.
    let (ok, out, _) = g.psql(
        &t,
        "select application_name from pg_stat_activity where pid = pg_backend_pid()",
    );
    assert!(ok);
    assert_eq!(out, "psql");
}

fn assert_refused(g: &PgGateway, token: &str) {
    let (_, msgs) = Wire::login(g.port, &g.db, token);
    let e = error_of(&msgs).unwrap_or_else(|| panic!("no error: {msgs:?}"));
    assert_eq!(e.field(b'S').as_deref(), Some("FATAL"));
    assert_eq!(e.field(b'C').as_deref(), Some("28P01"));
    assert_eq!(e.field(b'M').as_deref(), Some("authentication failed"));
}

#[test]
fn bad_tokens_get_28p01_and_never_reach_the_server() {
    let g = PgGateway::builder()
        .issuer("leeway = \"1s\"")
        .start("authfail");
    let before = g.server_logins();
    // Garbage, a tampered token, a token for a group the target does not admit.
    assert_refused(&g, "not-a-token");
    let good = g.token("ci-job", "ci", "10m");
    let mut tampered = good.clone().into_bytes();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    assert_refused(&g, &String::from_utf8(tampered).unwrap());
    assert_refused(&g, &g.token("ci-job", "other-team", "10m"));
    // psql shows the same generic line.
    let (ok, _, err) = g.psql("nope", "select 1");
    assert!(!ok);
    assert!(err.contains("authentication failed"), "{err}");
    assert_eq!(
        g.server_logins(),
        before,
        "a refused caller reached PostgreSQL"
    );
    // An expired token (1 s lifetime, 1 s leeway): accepted until it expires,
    // refused after.
    let short = g.token("ci-job", "ci", "1s");
    assert_eventually!(
        {
            let (_, msgs) = Wire::login(g.port, &g.db, &short);
            error_of(&msgs).and_then(|e| e.field(b'C')).as_deref() == Some("28P01")
        },
        Duration::from_secs(10),
        "the expired token was still accepted"
    );
    let before = g.server_logins();
    assert_refused(&g, &short);
    assert_eq!(
        g.server_logins(),
        before,
        "an expired token reached PostgreSQL"
    );
    // The precise reasons are in the gateway's log.
    let log = g.gw.log_text();
    assert!(log.contains("caller authentication failed"));
    assert!(log.contains("not admitted"), "{log}");
    // And a good token still works.
    assert!(g.psql(&good, "select 1").0);
}

#[test]
fn unknown_database_is_3d000() {
    let g = PgGateway::start("unknowndb");
    let mut w = Wire::connect(g.port);
    w.startup("ci-job", "no_such_db");
    let m = w.recv().unwrap();
    assert_eq!(m.tag, b'E');
    assert_eq!(m.field(b'C').as_deref(), Some("3D000"));
    assert!(w.closed());
}

#[test]
fn revocation_ends_a_live_session_and_refuses_the_next() {
    let g = PgGateway::start("revoke");
    let t = g.token_with("ci-job", "ci", "10m", Some("job-42"));
    let mut live = g.psql_running(&t, "select pg_sleep(60)");
    let revoked_at = Instant::now();
    std::fs::write(
        &g.revocation_file,
        r#"[{"token_id": "job-42", "reason": "leaked in CI log"}]"#,
    )
    .unwrap();
    assert_eventually!(
        live.try_wait().unwrap().is_some(),
        Duration::from_secs(5),
        "the revoked session is still alive"
    );
    let took = revoked_at.elapsed();
    println!("revocation ended the live session after {took:?} (file poll 250 ms)");
    assert!(!live.wait().unwrap().success());
    assert_refused(&g, &t);
    // Another token of the same subject with another id is unaffected.
    let other = g.token_with("ci-job", "ci", "10m", Some("job-43"));
    assert!(g.psql(&other, "select 1").0);
    assert!(g.gw.log_text().contains("identity revoked"));
}

#[test]
fn rotated_upstream_password_needs_no_restart_and_live_sessions_continue() {
    let g = PgGateway::start("rotate");
    let t = g.token("ci-job", "ci", "10m");
    // A live session from before the rotation.
    let mut live = Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-h",
            "127.0.0.1",
            "-p",
            &g.port.to_string(),
            "-U",
            "ci-job",
            "-d",
            &g.db,
        ])
        .env("PGPASSWORD", &t)
        .env("PGSSLMODE", "disable")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = live.stdin.take().unwrap();
    stdin.write_all(b"select 'before';\n").unwrap();
    assert_eventually!(
        g.direct(&format!(
            "select count(*) from pg_stat_activity where usename = '{}'",
            g.role
        )) == "1",
        Duration::from_secs(10),
        "live session not connected"
    );
    let new_pw = "Rotated-Password-2";
    g.direct(&format!("alter role {} password '{new_pw}'", g.role));
    std::fs::write(&g.password_file, new_pw).unwrap();
    let (ok, out, err) = g.psql(&t, "select 'after rotation'");
    assert!(ok, "{err}");
    assert_eq!(out, "after rotation");
    stdin.write_all(b"select 'live still';\n").unwrap();
    drop(stdin);
    let out = live.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("before") && text.contains("live still"),
        "{text}"
    );
}

#[test]
fn ctrl_c_cancels_the_running_query() {
    let g = PgGateway::start("cancel");
    let t = g.token("ci-job", "ci", "10m");
    let live = g.psql_running(&t, "select pg_sleep(60)");
    // psql sends a CancelRequest with the key the gateway gave it.
    let ok = Command::new("kill")
        .args(["-INT", &live.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let out = live.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("canceling statement due to user request"),
        "{err}"
    );
    // A made-up key cancels nothing (and does not crash anything).
    let mut w = Wire::connect(g.port);
    let mut b = bytes::BytesMut::new();
    tollgate_codecs::pg::encode_cancel_request(&mut b, 12345, &[1, 2, 3, 4]).unwrap();
    w.send_raw(&b);
    assert!(w.closed());
    assert!(g.psql(&t, "select 1").0);
}

/// The gateway answers a hostile message like PostgreSQL: a FATAL, then the close.
fn fatal_then_closed(w: &mut Wire) {
    let m = w.recv().expect("closed without an ErrorResponse");
    assert_eq!(m.tag, b'E', "{m:?}");
    assert_eq!(m.field(b'S').as_deref(), Some("FATAL"));
    assert!(w.closed());
}

#[test]
fn malformed_and_oversized_messages_close_the_connection_and_the_gateway_stays_up() {
    let g = PgGateway::start("hostile");
    let t = g.token("ci-job", "ci", "10m");
    // A start-up packet claiming 2 GiB.
    let mut w = Wire::connect(g.port);
    w.send_raw(&0x7fff_ffffu32.to_be_bytes());
    w.send_raw(&[0, 3, 0, 0]);
    fatal_then_closed(&mut w);
    // A length below the header size.
    let mut w = Wire::connect(g.port);
    w.send_raw(&[0, 0, 0, 2]);
    fatal_then_closed(&mut w);
    // After login: a Query claiming 1 GiB, then garbage tags.
    let (mut w, msgs) = Wire::login(g.port, &g.db, &t);
    assert!(error_of(&msgs).is_none(), "{msgs:?}");
    w.send_raw(b"Q\x40\x00\x00\x00select");
    fatal_then_closed(&mut w);
    let (mut w, _) = Wire::login(g.port, &g.db, &t);
    w.send_raw(b"\xff\x00\x00\x00\x08abcd");
    fatal_then_closed(&mut w);
    // A password message that is not one.
    let mut w = Wire::connect(g.port);
    w.startup("ci-job", &g.db);
    let _ = w.recv();
    w.send_raw(b"Q\x00\x00\x00\x09select");
    fatal_then_closed(&mut w);
    // Still serving.
    assert!(g.psql(&t, "select 1").0);
}

#[test]
fn the_stored_credential_never_reaches_the_client_or_the_log() {
    let g = PgGateway::start("secret");
    let t = g.token("ci-job", "ci", "10m");
    let (ok, out, err) = g.psql(&t, "select current_setting('application_name'); select 1/0");
    assert!(!ok);
    // A failed upstream login does not leak it either.
    std::fs::write(&g.password_file, "wrong-password").unwrap();
    let (ok2, out2, err2) = g.psql(&t, "select 1");
    assert!(!ok2);
    assert!(err2.contains("could not log in to the target"), "{err2}");
    std::fs::write(&g.password_file, &g.password).unwrap();
    for text in [out, err, out2, err2, g.gw.log_text()] {
        assert!(!text.contains(&g.password), "credential leaked: {text}");
    }
}

#[test]
fn pgbench_init_tpcb_and_select_only_through_the_gateway() {
    let g = PgGateway::start("pgbench");
    let t = g.token("ci-job", "ci", "10m");
    let base = |args: &[&str]| {
        let out = Command::new("pgbench")
            .args(args)
            .args(["-h", "127.0.0.1", "-p", &g.port.to_string(), "-U", "ci-job"])
            .arg(&g.db)
            .env("PGPASSWORD", &t)
            .env("PGSSLMODE", "disable")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pgbench {args:?}: {}{}\ngateway log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            g.gw.log_text()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    base(&["-i", "-s", "1", "-q"]);
    let tpcb = base(&["-c", "4", "-j", "2", "-t", "50"]);
    assert!(
        tpcb.contains("number of transactions actually processed: 200/200"),
        "{tpcb}"
    );
    // The writes really happened, checked on the direct path.
    assert_eq!(g.direct("select count(*) from pgbench_history"), "200");
    let select = base(&["-S", "-c", "4", "-j", "2", "-t", "200", "-M", "extended"]);
    assert!(select.contains("actually processed: 800/800"), "{select}");
    let prepared = base(&["-S", "-c", "2", "-j", "1", "-t", "100", "-M", "prepared"]);
    assert!(
        prepared.contains("actually processed: 200/200"),
        "{prepared}"
    );
}

#[test]
fn sslmode_require_gets_tls_and_plaintext_is_refused_when_configured() {
    let pki = tempfile::tempdir().unwrap();
    let ca = common::pki::Ca::new(pki.path(), "pg-ca");
    let (cert, key) = ca.server(pki.path(), "gateway");
    let g = PgGateway::builder()
        .target("allow_plaintext = false")
        .tables(&format!(
            "[target.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            cert.display(),
            key.display()
        ))
        .start("tls");
    let t = g.token("ci-job", "ci", "10m");
    let out2 = Command::new("psql")
        .args(["-X", "-A", "-t", "-c", "select 'over tls'"])
        .arg(format!(
            "host=127.0.0.1 port={} dbname={} user=ci-job password={t} sslmode=verify-ca sslrootcert={}",
            g.port,
            g.db,
            ca.cert.display()
        ))
        .output()
        .unwrap();
    assert!(
        out2.status.success(),
        "{}{}\n{}",
        String::from_utf8_lossy(&out2.stdout),
        String::from_utf8_lossy(&out2.stderr),
        g.gw.log_text()
    );
    assert_eq!(String::from_utf8_lossy(&out2.stdout).trim(), "over tls");
    // Plaintext is refused on this target.
    let mut w = Wire::connect(g.port);
    w.startup("ci-job", &g.db);
    let m = w.recv().unwrap();
    assert_eq!(m.tag, b'E');
    assert_eq!(m.field(b'C').as_deref(), Some("28000"));
}

#[test]
fn psycopg_pipeline_through_the_gateway() {
    let g = PgGateway::start("pipeline");
    let t = g.token("ci-job", "ci", "10m");
    let out = python(
        "import psycopg, sys\n\
         with psycopg.connect(sys.argv[1], autocommit=True) as c:\n\
         \x20   c.execute('create table items (id int primary key, v text)')\n\
         \x20   with c.pipeline():\n\
         \x20       for i in range(50):\n\
         \x20           c.execute('insert into items values (%s, %s)', (i, 'v%d' % i))\n\
         \x20       cur = c.execute('select count(*), max(id) from items')\n\
         \x20   print(cur.fetchone())\n",
        &[&g.conninfo(&t)],
    );
    assert_eq!(out, "(50, 49)");
    assert_eq!(g.direct("select count(*) from items"), "50");
}

#[test]
fn upstream_tls_is_verified_and_scram_binds_to_the_channel() {
    let ca = common::pg::cluster().ca.clone();
    let g = PgGateway::builder()
        .tables(&format!(
            "[target.upstream_tls]\nmode = \"verify-full\"\nca_file = \"{}\"\nserver_name = \"localhost\"\n",
            ca.display()
        ))
        .start("uptls");
    let t = g.token("ci-job", "ci", "10m");
    let (ok, out, err) = g.psql(
        &t,
        "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
    );
    assert!(ok, "{err}\n{}", g.gw.log_text());
    assert_eq!(out, "t", "the upstream connection is not encrypted");
    let opened = g.gw.log_events("session opened");
    assert_eq!(
        opened[0]["upstream_auth"], "scram-sha-256-plus",
        "{opened:?}"
    );
    // A name the server's certificate does not carry is refused.
    let wrong = PgGateway::builder()
        .tables(&format!(
            "[target.upstream_tls]\nmode = \"verify-full\"\nca_file = \"{}\"\nserver_name = \"db.example.com\"\n",
            ca.display()
        ))
        .start("uptlsbad");
    let t = wrong.token("ci-job", "ci", "10m");
    let (ok, _, err) = wrong.psql(&t, "select 1");
    assert!(!ok);
    assert!(err.contains("could not log in to the target"), "{err}");
    assert!(
        wrong.gw.log_text().contains("upstream TLS"),
        "{}",
        wrong.gw.log_text()
    );
}

#[test]
fn an_md5_upstream_role_logs_in_too() {
    let c = common::pg::cluster();
    // pg_hba.conf sends md5user through md5.
    c.sql(
        "postgres",
        "set password_encryption = 'md5'; create role md5user login password 'md5-secret-1'",
    );
    c.sql("postgres", "create database db_md5 owner md5user");
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    assert!(
        Command::new(tollgate_bin())
            .args(["token", "keygen", "--dir"])
            .arg(&keys)
            .status()
            .unwrap()
            .success()
    );
    std::fs::write(dir.path().join("pw"), "md5-secret-1").unwrap();
    let cfg = format!(
        "[[identity.issuer]]\nname = \"t\"\nissuer = \"{iss}\"\naudience = [\"{aud}\"]\njwks_file = \"{jwks}\"\n\
         [[target]]\nname = \"db_md5\"\nprotocol = \"postgres\"\nlisten = [\"127.0.0.1:0\"]\nupstream = \"127.0.0.1:{up}\"\n\
         [target.credential]\nuser = \"md5user\"\npassword_file = \"{pw}\"\n[target.access]\ngroups = [\"ci\"]\n",
        iss = common::pggw::ISS,
        aud = common::pggw::AUD,
        jwks = keys.join("tollgate-dev-jwks.json").display(),
        up = c.port,
        pw = dir.path().join("pw").display(),
    );
    let cfg_path = dir.path().join("t.toml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let mut gw = Gateway::spawn_in(dir, cfg_path);
    gw.wait_ready();
    let port = gw.port("db_md5");
    let token = String::from_utf8(
        Command::new(tollgate_bin())
            .args(["token", "mint", "--key"])
            .arg(keys.join("tollgate-dev-key.pem"))
            .args([
                "--sub",
                "ci-job",
                "--groups",
                "ci",
                "--aud",
                common::pggw::AUD,
                "--iss",
                common::pggw::ISS,
            ])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let out = Command::new("psql")
        .args(["-X", "-A", "-t", "-c", "select current_user"])
        .arg(format!(
            "host=127.0.0.1 port={port} dbname=db_md5 user=ci-job sslmode=disable"
        ))
        .env("PGPASSWORD", token.trim())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.log_text()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "md5user");
    assert_eq!(gw.log_events("session opened")[0]["upstream_auth"], "md5");
}

#[test]
fn an_upstream_that_dies_mid_query_gives_the_client_an_error_and_others_carry_on() {
    let g = PgGateway::start("updies");
    let t = g.token("ci-job", "ci", "10m");
    let live = g.psql_running(&t, "select pg_sleep(60)");
    // The server's own FATAL passes through unchanged.
    g.direct("select pg_terminate_backend(pid) from pg_stat_activity where query = 'select pg_sleep(60)'");
    let out = live.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("terminating connection due to administrator command"),
        "{err}"
    );
    assert!(g.psql(&t, "select 'others carry on'").0);
}

#[test]
fn a_newer_protocol_minor_is_negotiated_down() {
    let g = PgGateway::start("negotiate");
    let mut w = Wire::connect(g.port);
    let mut b = bytes::BytesMut::new();
    tollgate_codecs::pg::encode_startup_message(
        &mut b,
        2,
        [
            ("user", "ci-job"),
            ("database", g.db.as_str()),
            ("_pq_.future_option", "on"),
        ],
    )
    .unwrap();
    w.send_raw(&b);
    let v = w.recv().unwrap();
    assert_eq!(v.tag, b'v', "{v:?}");
    assert_eq!(
        &v.body[..4],
        &0u32.to_be_bytes(),
        "newest minor we speak is 0"
    );
    assert!(String::from_utf8_lossy(&v.body).contains("_pq_.future_option"));
    assert_eq!(w.recv().unwrap().tag, b'R');
    w.password(&g.token("ci-job", "ci", "10m"));
    let msgs = w.until_ready();
    assert!(error_of(&msgs).is_none(), "{msgs:?}");
}

/// Callers ask for the gateway's database name (`[target.postgres]
/// database`) and land in the upstream's (`upstream_database`). A file that
/// still sets both in `[target]` itself works the same; `tollgate check`
/// warns about each key, naming its new place, and `run` logs it.
#[test]
fn database_names_from_target_postgres_and_from_their_old_place() {
    let check = |g: &PgGateway| {
        let out = Command::new(tollgate_bin())
            .args(["check", "--config"])
            .arg(g.gw.dir().join("tollgate.toml"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let mut g = PgGateway::builder()
        .tables("[target.postgres]\ndatabase = \"pgnew\"\nupstream_database = \"db_pgsub\"")
        .start("pgsub");
    g.db = "pgnew".into();
    let t = g.token("ci-job", "ci", "10m");
    let (ok, out, err) = g.psql(&t, "select current_database()");
    assert!(ok, "{err}\n{}", g.gw.log_text());
    assert_eq!(out, "db_pgsub");
    let warnings = check(&g);
    assert!(!warnings.contains("warning"), "{warnings}");

    let mut g = PgGateway::builder()
        .target("database = \"pgold\"\nupstream_database = \"db_pgold\"")
        .start("pgold");
    g.db = "pgold".into();
    let t = g.token("ci-job", "ci", "10m");
    let (ok, out, err) = g.psql(&t, "select current_database()");
    assert!(ok, "{err}\n{}", g.gw.log_text());
    assert_eq!(out, "db_pgold");
    let warnings = check(&g);
    for key in ["database", "upstream_database"] {
        let line = warnings
            .lines()
            .find(|l| l.contains(&format!("target[0].{key} ")))
            .unwrap_or_else(|| panic!("no warning for {key}: {warnings}"));
        assert!(line.starts_with("warning: "), "{line}");
        assert!(
            line.ends_with(&format!("move it to [target.postgres] {key}")),
            "{line}"
        );
    }
    let log = g.gw.log_text();
    assert!(
        log.contains("is deprecated here: move it to [target.postgres] upstream_database"),
        "{log}"
    );
}
