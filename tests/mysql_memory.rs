//! MySQL sessions live within the memory budget of `[limits]`, like
//! PostgreSQL's (tests/pg_memory.rs): a command packet announced at 16 MiB
//! and trickled in is cut once the session's buffers would pass
//! `session_memory`, instead of being buffered up to the 64 MiB packet cap;
//! a statement (COM_QUERY, COM_STMT_PREPARE) above `max_statement` gets
//! ER_NET_PACKET_TOO_LARGE and a closed session, as PostgreSQL's FATAL
//! 54000 (tests/pg_errors.rs).
//! Real MariaDB behind the gateway, the codec's wire client in front.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::mygw::MyGateway;
use common::mywire::{Conn, Outcome, login_config};

fn wire(g: &MyGateway, token: &str) -> Conn {
    Conn::connect(g.port, login_config("ci-job", token, true), &g.ca).unwrap()
}

#[test]
fn a_command_larger_than_the_session_budget_ends_the_session() {
    let g = MyGateway::builder()
        .tables("[limits]\nmax_statement = 2097152\nsession_memory = 4194304\n")
        .start();
    let t = g.token("ci-job", "ci");
    let mut c = wire(&g, &t);
    // COM_STMT_SEND_LONG_DATA (not a statement's text, so not under
    // max_statement) announced at 16 MiB - 1 (one full chunk, so more would
    // follow), then 6 MiB of it: past the 4 MiB budget, short of the packet.
    let mut sent = c.try_write_raw(&[0xff, 0xff, 0xff, 0x00, 0x18]);
    let chunk = vec![b'a'; 64 << 10];
    for _ in 0..96 {
        if !sent || !c.try_write_raw(&chunk) {
            break;
        }
        sent = true;
    }
    assert!(c.closed(), "a session held more than its memory budget");
    assert_eventually!(
        g.gw.log_text().contains("session ended: memory budget"),
        Duration::from_secs(10),
        "no memory-budget end logged: {}",
        g.gw.log_text()
    );
    // The gateway goes on: a new session runs a statement.
    let mut c = wire(&g, &t);
    let out = c.query("SELECT 1");
    assert!(matches!(out.last(), Some(Outcome::Rows { .. })), "{out:?}");
}

/// A COM_QUERY of `len` payload bytes: `SELECT LENGTH('xxx…')`.
fn long_query(len: usize) -> Vec<u8> {
    let mut q = b"\x03SELECT LENGTH('".to_vec();
    q.resize(len - 2, b'x');
    q.extend_from_slice(b"')");
    q
}

#[test]
fn a_statement_above_max_statement_gets_an_err_and_a_closed_session() {
    let g = MyGateway::builder()
        .tables("[limits]\nmax_statement = 1048576\n")
        .start();
    let t = g.token("ci-job", "ci");
    // Under the cap: runs.
    let mut c = wire(&g, &t);
    c.command(&long_query(1000 << 10));
    let r = c.read_results(None);
    assert_eq!(r[0].rows()[0][0].as_deref(), Some(&b"1023982"[..]), "{r:?}");
    // Above it, COM_QUERY and COM_STMT_PREPARE alike: the header is enough
    // (the rest is never sent, so the ERR cannot be lost to a reset).
    for command in [0x03u8, 0x16] {
        let mut c = wire(&g, &t);
        let len: usize = (1 << 20) + 1;
        let head = [len as u8, (len >> 8) as u8, (len >> 16) as u8, 0, command];
        c.write_raw(&head);
        c.write_raw(b"SELECT '");
        c.seq_set(1);
        let p = c.read_packet();
        match c.read_results_from(p) {
            Outcome::Err { code, message, .. } => {
                assert_eq!(code, 1153, "{message}");
                assert!(message.contains("max_statement"), "{message}");
            }
            other => panic!("expected ER_NET_PACKET_TOO_LARGE, got {other:?}"),
        }
        assert!(
            c.closed(),
            "the session went on after a statement above the cap"
        );
    }
    // Other commands keep the codec's cap: a 2 MiB parameter (no answer)
    // passes and the session goes on.
    let mut c = wire(&g, &t);
    let st = c.prepare("SELECT LENGTH(?)").unwrap();
    let mut long = vec![0x18];
    long.extend_from_slice(&st.id.to_le_bytes());
    long.extend_from_slice(&[0, 0]);
    long.resize(long.len() + (2 << 20), b'y');
    c.command(&long);
    let r = c.query("SELECT 1");
    assert!(matches!(r.last(), Some(Outcome::Rows { .. })), "{r:?}");
}
