//! MySQL sessions live within the memory budget of `[limits]`, like
//! PostgreSQL's (tests/pg_memory.rs): a command packet announced at 16 MiB
//! and trickled in is cut once the session's buffers would pass
//! `session_memory`, instead of being buffered up to the 64 MiB packet cap.
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
    // COM_QUERY announced at 16 MiB - 1 (one full chunk, so more would
    // follow), then 6 MiB of it: past the 4 MiB budget, short of the packet.
    let mut sent = c.try_write_raw(&[0xff, 0xff, 0xff, 0x00, 0x03]);
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
