//! End-to-end: the gateway's memory is bounded per session and in total
//! (`[limits]`), long messages that need no inspection pass through in
//! pieces, a message trickled in byte by byte is cut by the frame timeout,
//! and statements far above the old 1 MiB cap go through.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::pggw::PgGateway;
use common::pgwire::{Msg, Wire, error_of};
use common::*;

const MIB: usize = 1 << 20;

/// (VmRSS, VmHWM) of a process, in bytes.
fn memory_of(pid: u32) -> (usize, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> usize {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        let kb: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kb * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A session through the gateway that has logged in.
fn login(g: &PgGateway, token: &str) -> Wire {
    let (w, msgs) = Wire::login(g.port, &g.db, token);
    assert!(error_of(&msgs).is_none(), "login failed: {msgs:?}");
    w
}

/// Header of a message of type `tag` whose body is `body_len` bytes.
fn header(tag: u8, body_len: usize) -> Vec<u8> {
    let mut h = vec![tag];
    h.extend_from_slice(&u32::try_from(body_len + 4).unwrap().to_be_bytes());
    h
}

/// Sends `n` bytes of filler (bounded writes; the peer must be reading).
fn send_filler(w: &mut Wire, mut n: usize) {
    let chunk = vec![b'x'; MIB];
    while n > 0 {
        let k = n.min(chunk.len());
        w.s.write_all(&chunk[..k]).unwrap();
        n -= k;
    }
}

/// Starts a COPY FROM STDIN and declares one 60 MiB CopyData message, of
/// which it sends 59 MiB; the session stays open, stalled.
fn stalled_copy(g: &PgGateway, token: &str) -> Wire {
    let mut w = login(g, token);
    w.query("copy sink from stdin");
    let m = w.recv().expect("no answer to COPY");
    assert_eq!(m.tag, b'G', "expected CopyInResponse: {m:?}");
    w.send_raw(&header(b'd', 60 * MIB));
    send_filler(&mut w, 59 * MIB);
    w
}

/// Declares one 60 MiB Bind of an unnamed statement (one text parameter)
/// and sends 59 MiB of it.
fn stalled_bind(g: &PgGateway, token: &str) -> Wire {
    let mut w = login(g, token);
    let mut parse = vec![b'P'];
    let body = b"\0select $1::text\0\0\0";
    parse.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
    parse.extend_from_slice(body);
    w.send_raw(&parse);
    let value_len = 60 * MIB - 16;
    // portal "", statement "", no format codes, one parameter of value_len.
    let mut bind = header(b'B', 2 + 2 + 2 + 4 + value_len + 2);
    bind.extend_from_slice(&[0, 0, 0, 0, 0, 1]);
    bind.extend_from_slice(&u32::try_from(value_len).unwrap().to_be_bytes());
    w.send_raw(&bind);
    send_filler(&mut w, 59 * MIB);
    w
}

/// While `stalled` connections sit on 59 MiB each of an unfinished message,
/// the gateway's peak RSS stays within `allowed` of what it was before.
fn assert_streamed(name: &str, n: usize, allowed: usize, stall: fn(&PgGateway, &str) -> Wire) {
    // The recorder's queue is a fixed cost per shard, whatever the number
    // of sessions (16 MiB by default): 2 MiB here, so the growth measured
    // is the sessions'.
    let recordings = tempfile::tempdir().unwrap();
    let g = PgGateway::builder()
        .tables(&format!(
            "[recorder]\ndir = \"{}\"\nqueue_bytes = 2097152\n",
            recordings.path().display()
        ))
        .start(name);
    g.direct(&format!(
        "create table sink (v text); grant all on sink to {}",
        g.role
    ));
    let t = g.token("ci-job", "ci", "10m");
    let pid = g.gw.child.id();
    // One session first, so the baseline includes what any session costs.
    let mut warm = login(&g, &t);
    warm.query("select 1");
    warm.until_ready();
    let (before, _) = memory_of(pid);
    // Writing 59 MiB returns once the gateway has read all but what the
    // kernel's socket buffers hold (a few MiB): on a gateway that buffers
    // the message, its RSS has grown by tens of MiB per connection by then.
    let stalled: Vec<Wire> = (0..n).map(|_| stall(&g, &t)).collect();
    let (rss, hwm) = memory_of(pid);
    eprintln!("{n} stalled: gateway RSS {before} -> {rss}, peak {hwm}");
    assert!(
        hwm < before + allowed,
        "{n} stalled connection(s) of 59 MiB each: gateway RSS {before} -> {rss}, peak {hwm} \
         (allowed growth {allowed})"
    );
    drop(stalled);
}

#[test]
fn a_stalled_copy_data_message_is_not_buffered() {
    assert_streamed("mem_copy1", 1, 16 * MIB, stalled_copy);
}

#[test]
fn sixteen_stalled_copy_data_messages_are_not_buffered() {
    assert_streamed("mem_copy16", 16, 40 * MIB, stalled_copy);
}

#[test]
fn sixteen_stalled_bind_messages_are_not_buffered() {
    assert_streamed("mem_bind16", 16, 40 * MIB, stalled_bind);
}

/// The FATAL a session ends with (after any other messages), if any.
fn fatal_of(w: &mut Wire) -> Option<Msg> {
    while let Some(m) = w.recv() {
        if m.tag == b'E' {
            return Some(m);
        }
    }
    None
}

#[test]
fn a_session_above_its_memory_budget_is_refused() {
    let g = PgGateway::builder()
        .tables("[limits]\nmax_statement = 2097152\nsession_memory = 4194304\n")
        .start("mem_session");
    let t = g.token("ci-job", "ci", "10m");
    let mut w = login(&g, &t);
    // A FunctionCall is read whole (it is judged by its function); 8 MiB
    // is under its 64 MiB frame cap but above this session's budget.
    w.send_raw(&header(b'F', 8 * MIB));
    w.send_raw(b"partial");
    let e = fatal_of(&mut w).expect("the session was not refused");
    assert_eq!(e.field(b'S').as_deref(), Some("FATAL"), "{e:?}");
    assert_eq!(e.field(b'C').as_deref(), Some("53200"), "{e:?}");
    assert!(
        e.field(b'M').unwrap().contains("memory budget"),
        "{:?}",
        e.field(b'M')
    );
    assert!(w.closed());
    // Other sessions are unaffected.
    let (ok, out, err) = g.psql(&t, "select 1");
    assert!(ok && out == "1", "{err}");
}

/// A Query of `len` bytes: `select length('xxx…')`.
fn long_query(len: usize) -> Vec<u8> {
    let head = b"select length('";
    let tail = b"')";
    let mut q = Vec::with_capacity(len);
    q.extend_from_slice(head);
    q.resize(len - tail.len(), b'x');
    q.extend_from_slice(tail);
    q
}

#[test]
fn the_global_memory_budget_refuses_new_work() {
    let g = PgGateway::builder()
        .shards(1)
        .tables(
            "[limits]\nmax_statement = 8388608\nsession_memory = 8388608\nglobal_memory = 10485760\n",
        )
        .start("mem_global");
    let t = g.token("ci-job", "ci", "10m");
    // Session A holds 6 MiB of an unfinished statement.
    let q = long_query(6 * MIB);
    let mut a = login(&g, &t);
    a.send_raw(&header(b'Q', q.len() + 1));
    a.send_raw(&q[..MIB]);
    // Another 6 MiB statement does not fit in the 10 MiB left for all.
    // (Each attempt waits for the gateway's answer or its silence; the
    // gateway charges A as soon as it has read A's header.)
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let e = loop {
        let mut b = login(&g, &t);
        b.s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        b.send_raw(&header(b'Q', q.len() + 1));
        b.send_raw(b"select");
        if let Some(e) = fatal_of(&mut b) {
            break e;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no session was refused by the global budget"
        );
    };
    assert_eq!(e.field(b'C').as_deref(), Some("53200"), "{e:?}");
    assert!(
        e.field(b'M').unwrap().contains("global memory budget"),
        "{:?}",
        e.field(b'M')
    );
    // A finishes its statement and gets its answer.
    a.send_raw(&q[MIB..]);
    a.send_raw(&[0]);
    let msgs = a.until_ready();
    assert!(error_of(&msgs).is_none(), "{msgs:?}");
    let row = msgs.iter().find(|m| m.tag == b'D').expect("no row");
    let n = (6 * MIB - b"select length('')".len()).to_string();
    assert!(row.body.ends_with(n.as_bytes()), "{row:?}");
}

#[test]
fn a_message_trickled_in_is_cut_by_the_frame_timeout() {
    let g = PgGateway::builder()
        .target("idle_timeout = \"1s\"")
        .tables("[limits]\nframe_timeout = \"2s\"\n")
        .start("mem_trickle");
    let t = g.token("ci-job", "ci", "10m");
    let mut w = login(&g, &t);
    let q = b"select 1 -- one byte at a time, each well within the idle timeout ....................................................................................................................................................................";
    w.send_raw(&header(b'Q', q.len() + 1));
    w.s.set_nonblocking(true).unwrap();
    let mut cut = false;
    let mut got = Vec::new();
    // 250 ms between bytes: the whole message would take ~50 s.
    for b in q.iter() {
        let mut chunk = [0u8; 4096];
        match w.s.read(&mut chunk) {
            Ok(0) => {
                cut = true;
                break;
            }
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => {
                cut = true;
                break;
            }
        }
        if w.s.write_all(&[*b]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(cut, "the trickled message kept the session alive");
    w.s.set_nonblocking(false).unwrap();
    let mut rest = Vec::new();
    let _ = w.s.read_to_end(&mut rest);
    got.extend_from_slice(&rest);
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.contains("did not arrive whole within the frame timeout"),
        "no FATAL for the frame timeout: {text:?}"
    );
}

/// An INSERT of a `len`-byte statement carrying one long literal.
fn long_insert(id: u32, len: usize) -> String {
    let head = format!("insert into big values ({id}, '");
    let filler = len - head.len() - 2;
    format!("{head}{}')", "y".repeat(filler))
}

#[test]
fn statements_far_above_one_mib_go_through() {
    let g = PgGateway::start("mem_bigsql");
    g.direct(&format!(
        "create table big (id int primary key, v text); grant all on big to {}",
        g.role
    ));
    let t = g.token("ci-job", "ci", "10m");
    // psql sends a simple Query; psycopg a Parse (extended protocol).
    for (id, len) in [(1u32, 5 * MIB), (2, 40 * MIB)] {
        let sql = long_insert(id, len);
        let (ok, _out, err) = g.psql_script(&t, &format!("{sql};\n"));
        assert!(ok && err.is_empty(), "psql, {len} bytes: {err}");
        let got = g.direct(&format!("select length(v) from big where id = {id}"));
        let expected = sql.len() - format!("insert into big values ({id}, '").len() - 2;
        assert_eq!(got, expected.to_string(), "psql, {len} bytes");
    }
    let code = r#"
import sys, psycopg
conninfo, n = sys.argv[1], int(sys.argv[2])
head = "insert into big values (3, '"
sql = head + "z" * (n - len(head) - 2) + "')"
with psycopg.connect(conninfo, autocommit=True) as c:
    c.execute(sql)
print("ok")
"#;
    let out = python(code, &[&g.conninfo(&t), &(40 * MIB).to_string()]);
    assert_eq!(out, "ok");
    let got = g.direct("select length(v) from big where id = 3");
    assert_eq!(
        got,
        (40 * MIB - "insert into big values (3, '".len() - 2).to_string()
    );
}

/// Every byte recorded from clients of this target, in record order.
fn recorded_client_bytes(g: &PgGateway) -> Vec<u8> {
    use base64::Engine;
    let out = std::process::Command::new(tollgate_bin())
        .args(["recordings", "export", "--all", "--dir"])
        .arg(g.gw.dir().join("recordings"))
        .args(["--target", &g.db])
        .output()
        .unwrap();
    let mut bytes = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(r) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(data) = r["data"].as_str().filter(|_| r["type"] == "client_data") else {
            continue;
        };
        if r["encoding"] == "base64" {
            bytes.extend(
                base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .unwrap(),
            );
        } else {
            bytes.extend_from_slice(data.as_bytes());
        }
    }
    bytes
}

#[test]
fn long_messages_that_pass_in_pieces_arrive_whole() {
    let g = PgGateway::start("mem_pieces");
    g.direct(&format!(
        "create table sink (v text); create table big (id int primary key, v text); \
         grant all on sink, big to {}",
        g.role
    ));
    let t = g.token("ci-job", "ci", "10m");
    // One 8 MiB CopyData message of 1024 rows of 8191 bytes + newline.
    let mut w = login(&g, &t);
    w.query("copy sink from stdin");
    assert_eq!(w.recv().expect("no answer to COPY").tag, b'G');
    let mut rows = Vec::with_capacity(8 * MIB);
    for i in 0..1024u32 {
        let mut line = format!("{i:08}").into_bytes();
        line.resize(8191, b'r');
        rows.extend_from_slice(&line);
        rows.push(b'\n');
    }
    w.send_raw(&header(b'd', rows.len()));
    w.send_raw(&rows);
    w.send_raw(&[b'c', 0, 0, 0, 4]);
    let msgs = w.until_ready();
    assert!(error_of(&msgs).is_none(), "{msgs:?}");
    assert_eq!(
        g.direct("select count(*), sum(length(v)), count(distinct left(v, 8)) from sink"),
        "1024|8387584|1024"
    );
    // The recording holds the message as the upstream got it: its pieces,
    // in order, make the whole.
    let mut whole = header(b'd', rows.len());
    whole.extend_from_slice(&rows);
    assert_eventually!(
        recorded_client_bytes(&g)
            .windows(whole.len())
            .any(|w| w == whole),
        Duration::from_secs(20),
        "the recording does not hold the 8 MiB CopyData message"
    );
    // An 8 MiB Bind value (psycopg sends parameters in Bind), and an 8 MiB
    // DataRow back.
    let code = r#"
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as c:
    v = "b" * (8 << 20)
    c.execute("insert into big values (%s, %s)", (1, v))
    got = c.execute("select v from big where id = 1").fetchone()[0]
    print(got == v)
"#;
    assert_eq!(python(code, &[&g.conninfo(&t)]), "True");
    assert_eq!(
        g.direct("select length(v) from big where id = 1"),
        (8 * MIB).to_string()
    );
}
