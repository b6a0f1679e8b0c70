//! The TLS driver against a plain rustls peer (blocking threads): large
//! writes and many small or full-size records, both ways at once, as
//! server and as client, with key updates the read half must answer while
//! the write half is writing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream as StdStream;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::Conn;

/// Bounds a broken driver (deadlock) so the test fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(120);

/// The byte at offset `i` of every test stream: not periodic over a record,
/// so a dropped, repeated or reordered record shows.
fn byte_at(i: u64) -> u8 {
    (i ^ (i >> 8) ^ (i >> 17) ^ (i >> 26)) as u8
}

fn pattern(from: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|k| byte_at(from + k)).collect()
}

fn configs() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = CertificateDer::from(ck.cert.der().to_vec());
    let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

/// What the plain rustls peer does.
#[derive(Clone, Copy)]
struct Script {
    /// Bytes the peer sends, in writes of `record` bytes (one record each).
    send: usize,
    record: usize,
    /// Bytes the peer expects back.
    recv: usize,
    /// Ask for a TLS 1.3 key update every this many records (0: never).
    key_update_every: usize,
}

/// The peer: one thread writes, one reads, sharing the rustls connection;
/// only the writing thread writes to the socket. Each returns its count.
fn run_peer(mut conn: rustls::Connection, mut sock: StdStream, s: Script) -> (usize, usize) {
    sock.set_read_timeout(Some(LIMIT)).unwrap();
    sock.set_write_timeout(Some(LIMIT)).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).expect("peer handshake");
    }
    let conn = Arc::new(Mutex::new(conn));
    let (c2, mut rsock) = (conn.clone(), sock.try_clone().unwrap());
    let reader = std::thread::spawn(move || {
        let (mut got, mut raw) = (0usize, vec![0u8; 64 * 1024]);
        let mut plain = vec![0u8; 64 * 1024];
        // Until the driver's close_notify: everything it sent is checked.
        loop {
            let n = rsock.read(&mut raw).expect("peer read");
            assert!(
                n > 0,
                "driver closed without close_notify after {got} bytes"
            );
            let mut c = c2.lock().unwrap();
            let mut rest = &raw[..n];
            while !rest.is_empty() {
                c.read_tls(&mut rest).unwrap();
                c.process_new_packets()
                    .expect("peer: bad TLS from the driver");
                loop {
                    match c.reader().read(&mut plain) {
                        Ok(0) => return got,
                        Ok(k) => {
                            assert_eq!(&plain[..k], &pattern(got as u64, k)[..], "at {got}");
                            got += k;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("peer plaintext: {e}"),
                    }
                }
            }
        }
    });
    let mut wsock = sock;
    let (mut sent, mut records) = (0usize, 0usize);
    while sent < s.send {
        let k = s.record.min(s.send - sent);
        let mut out = Vec::new();
        {
            let mut c = conn.lock().unwrap();
            c.writer().write_all(&pattern(sent as u64, k)).unwrap();
            records += 1;
            if s.key_update_every > 0 && records % s.key_update_every == 0 {
                c.refresh_traffic_keys().unwrap();
            }
            while c.wants_write() {
                c.write_tls(&mut out).unwrap();
            }
        }
        wsock.write_all(&out).expect("peer write");
        sent += k;
    }
    // Done sending: close_notify now, then read to the driver's.
    let mut out = Vec::new();
    {
        let mut c = conn.lock().unwrap();
        c.send_close_notify();
        while c.wants_write() {
            c.write_tls(&mut out).unwrap();
        }
    }
    wsock.write_all(&out).expect("peer close_notify");
    let got = reader.join().unwrap();
    (sent, got)
}

/// The driver's side: read `recv` bytes (checking them) in one task while
/// another writes `send` bytes in `write` sized `write_all`s, every other
/// one as a three-piece vectored write. Then read to the peer's close.
async fn run_driver(conn: Conn, recv: usize, send: usize, write: usize) -> usize {
    let (mut rd, mut wr) = conn.split();
    let reading = compio::runtime::spawn(async move {
        let (mut got, mut buf) = (0usize, BytesMut::with_capacity(64 * 1024));
        loop {
            buf.clear();
            let n = rd.read_into(&mut buf).await.expect("driver read");
            if n == 0 {
                return got;
            }
            assert_eq!(&buf[..], &pattern(got as u64, n)[..], "at {got}");
            got += n;
        }
    });
    let mut sent = 0usize;
    let mut turn = 0;
    while sent < send {
        let k = write.min(send - sent);
        let data = pattern(sent as u64, k);
        if turn % 2 == 0 {
            wr.write_all(Bytes::from(data)).await.expect("driver write");
        } else {
            let data = Bytes::from(data);
            let (a, b, c) = (
                data.slice(..k / 3),
                data.slice(k / 3..k / 2),
                data.slice(k / 2..),
            );
            wr.write_all_vectored(vec![a, b, c])
                .await
                .expect("driver vectored write");
        }
        sent += k;
        turn += 1;
    }
    let got = reading.await.unwrap();
    assert_eq!(got, recv, "bytes the driver read");
    let _ = wr.shutdown().await;
    sent
}

/// The driver as a TLS server (client side of tollgate) against a rustls client.
fn driver_as_server(s: Script, write: usize) {
    let (server, client) = configs();
    let rt = compio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let l = compio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let peer: JoinHandle<(usize, usize)> = std::thread::spawn(move || {
            let name = ServerName::try_from("localhost").unwrap();
            let c = rustls::ClientConnection::new(client, name).unwrap();
            run_peer(c.into(), StdStream::connect(addr).unwrap(), s)
        });
        let (sock, _) = l.accept().await.unwrap();
        let work = async {
            let conn = Conn::accept(sock, server).await.unwrap();
            run_driver(conn, s.send, s.recv, write).await
        };
        let sent = compio::time::timeout(LIMIT, work)
            .await
            .expect("driver stuck");
        assert_eq!(sent, s.recv);
        let (peer_sent, peer_got) = peer.join().unwrap();
        assert_eq!((peer_sent, peer_got), (s.send, s.recv));
    });
}

/// The driver as a TLS client (upstream side of tollgate) against a rustls server.
fn driver_as_client(s: Script, write: usize) {
    let (server, client) = configs();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let peer: JoinHandle<(usize, usize)> = std::thread::spawn(move || {
        let (sock, _) = l.accept().unwrap();
        let c = rustls::ServerConnection::new(server).unwrap();
        run_peer(c.into(), sock, s)
    });
    let rt = compio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let work = async {
            let sock = compio::net::TcpStream::connect(addr).await.unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            let conn = Conn::connect(sock, client, name).await.unwrap();
            run_driver(conn, s.send, s.recv, write).await
        };
        let sent = compio::time::timeout(LIMIT, work)
            .await
            .expect("driver stuck");
        assert_eq!(sent, s.recv);
    });
    let (peer_sent, peer_got) = peer.join().unwrap();
    assert_eq!((peer_sent, peer_got), (s.send, s.recv));
}

const MB: usize = 1024 * 1024;

#[test]
fn many_small_records_in_while_large_writes_go_out() {
    let s = Script {
        send: 4 * MB,
        record: 61,
        recv: 24 * MB,
        key_update_every: 0,
    };
    driver_as_server(s, 8 * MB);
}

#[test]
fn full_records_both_ways_at_once() {
    let s = Script {
        send: 32 * MB,
        record: 16 * 1024,
        recv: 32 * MB,
        key_update_every: 0,
    };
    driver_as_server(s, 3 * MB + 7);
}

#[test]
fn as_client_large_writes_both_ways() {
    let s = Script {
        send: 24 * MB,
        record: 1000,
        recv: 24 * MB,
        key_update_every: 0,
    };
    driver_as_client(s, 5 * MB);
}

#[test]
fn key_updates_answered_while_the_write_half_writes() {
    // Each KeyUpdate makes the driver's read half queue a reply record that
    // must reach the socket between (never inside) the write half's records.
    let s = Script {
        send: 8 * MB,
        record: 16 * 1024,
        recv: 16 * MB,
        key_update_every: 16,
    };
    driver_as_server(s, 2 * MB);
}

#[test]
fn small_writes_stay_small() {
    // Many writes smaller than a record: the common case of a relay.
    let s = Script {
        send: MB,
        record: 5,
        recv: MB,
        key_update_every: 0,
    };
    driver_as_client(s, 333);
}

#[test]
fn reading_many_small_records_drains_plaintext_first() {
    // One socket read brings far more than rustls's plaintext buffer holds
    // once decrypted; the driver must drain before it feeds the rest.
    let s = Script {
        send: 16 * MB,
        record: 100,
        recv: 0,
        key_update_every: 0,
    };
    driver_as_server(s, 0);
}
