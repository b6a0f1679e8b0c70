//! A minimal PostgreSQL wire client for tests that must see exact protocol
//! messages (SQLSTATEs, malformed frames) rather than what psql prints.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::BytesMut;
use tollgate_codecs::pg::{self, Caps, Limits};

pub struct Wire {
    pub s: TcpStream,
    buf: BytesMut,
    caps: Caps,
}

/// A backend message, decoded enough for assertions.
#[derive(Debug, Clone)]
pub struct Msg {
    pub tag: u8,
    pub body: Vec<u8>,
}

impl Msg {
    /// ErrorResponse/NoticeResponse field by code (`C` = SQLSTATE, `M` = message).
    pub fn field(&self, code: u8) -> Option<String> {
        let mut rest = &self.body[..];
        while let Some((&c, tail)) = rest.split_first() {
            if c == 0 {
                break;
            }
            let end = tail.iter().position(|b| *b == 0)?;
            if c == code {
                return Some(String::from_utf8_lossy(&tail[..end]).into_owned());
            }
            rest = &tail[end + 1..];
        }
        None
    }
}

impl Wire {
    pub fn connect(port: u16) -> Wire {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        Wire {
            s,
            buf: BytesMut::new(),
            caps: Caps::backend(&Limits::default()),
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    pub fn startup(&mut self, user: &str, db: &str) {
        let mut b = BytesMut::new();
        pg::encode_startup_message(&mut b, 0, [("user", user), ("database", db)]).unwrap();
        self.send_raw(&b);
    }

    pub fn password(&mut self, pw: &str) {
        let mut b = BytesMut::new();
        pg::encode_password_message(&mut b, pw.as_bytes()).unwrap();
        self.send_raw(&b);
    }

    pub fn query(&mut self, sql: &str) {
        let mut b = BytesMut::new();
        pg::encode_query(&mut b, sql.as_bytes()).unwrap();
        self.send_raw(&b);
    }

    /// The next message, or None when the connection closed.
    pub fn recv(&mut self) -> Option<Msg> {
        loop {
            if let Ok(Some(f)) = pg::next_frame(&mut self.buf, &self.caps) {
                return Some(Msg {
                    tag: f.tag(),
                    body: f.body().to_vec(),
                });
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Messages until ReadyForQuery (included) or close.
    pub fn until_ready(&mut self) -> Vec<Msg> {
        let mut out = Vec::new();
        while let Some(m) = self.recv() {
            let done = m.tag == b'Z';
            out.push(m);
            if done {
                break;
            }
        }
        out
    }

    /// Log in with `token`; returns the messages up to ReadyForQuery or the error.
    pub fn login(port: u16, db: &str, token: &str) -> (Wire, Vec<Msg>) {
        let mut w = Wire::connect(port);
        w.startup("ci-job", db);
        let first = w.recv().expect("no authentication request");
        assert_eq!(
            first.tag, b'R',
            "expected an authentication request: {first:?}"
        );
        w.password(token);
        let msgs = w.until_ready();
        (w, msgs)
    }

    /// True when the peer has closed (EOF or reset).
    pub fn closed(&mut self) -> bool {
        self.recv().is_none()
    }
}

pub fn error_of(msgs: &[Msg]) -> Option<&Msg> {
    msgs.iter().find(|m| m.tag == b'E')
}
