//! End-to-end, raw bytes: what PostgreSQL would say, the gateway says. A
//! malformed or oversized start-up packet, an oversized token, and an
//! unknown or oversized message mid-session each get an ErrorResponse with
//! severity FATAL and the server's SQLSTATE before the close (not a silent
//! close).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pggw::PgGateway;
use common::pgwire::Wire;

/// The next message must be a FATAL with `code`; then the connection closes.
fn expect_fatal(w: &mut Wire, code: &str) -> String {
    let m = w.recv().expect("closed without an ErrorResponse");
    assert_eq!(m.tag, b'E', "{m:?}");
    assert_eq!(m.field(b'S').as_deref(), Some("FATAL"));
    assert_eq!(m.field(b'C').as_deref(), Some(code), "{:?}", m.field(b'M'));
    assert!(w.closed(), "still open after the FATAL");
    m.field(b'M').unwrap_or_default()
}

fn framed(tag: u8, len: u32, body: &[u8]) -> Vec<u8> {
    let mut b = vec![tag];
    b.extend_from_slice(&len.to_be_bytes());
    b.extend_from_slice(body);
    b
}

#[test]
fn start_up_and_session_protocol_errors_get_a_fatal() {
    let g = PgGateway::start("errors");
    let t = g.token("ci-job", "ci", "10m");

    // An unknown start-up request code.
    let mut w = Wire::connect(g.port);
    let mut p = 8u32.to_be_bytes().to_vec();
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    w.send_raw(&p);
    expect_fatal(&mut w, "08P01");

    // A start-up packet declaring a length far above the cap.
    let mut w = Wire::connect(g.port);
    let mut p = (1u32 << 30).to_be_bytes().to_vec();
    p.extend_from_slice(&196608u32.to_be_bytes());
    w.send_raw(&p);
    let code = {
        let m = w.recv().expect("closed without an ErrorResponse");
        assert_eq!(m.tag, b'E', "{m:?}");
        m.field(b'C').unwrap_or_default()
    };
    assert_eq!(code, "54000");

    // A token above the cap: the documented 28P01.
    let mut w = Wire::connect(g.port);
    w.startup("ci-job", &g.db);
    assert_eq!(w.recv().unwrap().tag, b'R');
    w.send_raw(&framed(b'p', 64 << 20, b"eyJ"));
    expect_fatal(&mut w, "28P01");

    // A message that is not a password where the password belongs.
    let mut w = Wire::connect(g.port);
    w.startup("ci-job", &g.db);
    assert_eq!(w.recv().unwrap().tag, b'R');
    w.query("select 1");
    expect_fatal(&mut w, "08P01");

    // Mid-session: an unknown message type.
    let (mut w, msgs) = Wire::login(g.port, &g.db, &t);
    assert_eq!(msgs.last().unwrap().tag, b'Z', "{msgs:?}");
    w.send_raw(&framed(b'!', 4, b""));
    let m = expect_fatal(&mut w, "08P01");
    assert!(m.contains("unknown message type"), "{m}");

    // Mid-session: a query above the size cap.
    let (mut w, _) = Wire::login(g.port, &g.db, &t);
    w.send_raw(&framed(b'Q', 1 << 30, b"select"));
    expect_fatal(&mut w, "54000");
}
