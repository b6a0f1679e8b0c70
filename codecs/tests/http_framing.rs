//! Body framing for the proxy HTTP/1.1 codec: chunked bodies split at every
//! byte, trailers, bodiless responses (HEAD, 1xx, 204, 304), pipelined
//! requests in one buffer, and the head editor's output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;

use bytes::{Bytes, BytesMut};
use tollgate_codecs::http::h1::{
    BodyFraming, ChunkEvent, ChunkedDecoder, Fields, H1Error, HeadEditor, HeadParser, Limits,
    RequestHead, encode_chunk, encode_last_chunk, parse_request_head, parse_response_head,
};

const CHUNKED: &[u8] =
    b"5;ext=\"a;b\"\r\nhello\r\n1\r\n \r\n6 ;x\r\nworld!\r\n0\r\nX-Sum: 1\r\nX-B: two\r\n\r\nNEXT";

/// Decode `feeds` (fed one after the other) to (body, trailers, rest).
fn decode_in_pieces(feeds: &[&[u8]]) -> (Vec<u8>, Fields, BytesMut) {
    let mut d = ChunkedDecoder::new(&Limits::default());
    let mut buf = BytesMut::new();
    let mut body = Vec::new();
    for (i, feed) in feeds.iter().enumerate() {
        buf.extend_from_slice(feed);
        while let Some(ev) = d.decode(&mut buf).unwrap() {
            match ev {
                ChunkEvent::Data(b) => {
                    assert!(!b.is_empty());
                    body.extend_from_slice(&b);
                }
                ChunkEvent::End(t) => {
                    assert!(d.is_done());
                    // What is left belongs to the next message.
                    for later in &feeds[i + 1..] {
                        buf.extend_from_slice(later);
                    }
                    return (body, t, buf);
                }
            }
        }
    }
    panic!("body did not end")
}

#[test]
fn chunked_every_split_point() {
    let (body, trailers, rest) = decode_in_pieces(&[CHUNKED]);
    assert_eq!(body, b"hello world!");
    assert_eq!(trailers.get("x-sum"), Some(&b"1"[..]));
    assert_eq!(trailers.get("X-B"), Some(&b"two"[..]));
    assert_eq!(&rest[..], b"NEXT");
    for cut in 0..=CHUNKED.len() {
        let (b, t, r) = decode_in_pieces(&[&CHUNKED[..cut], &CHUNKED[cut..]]);
        assert_eq!(
            (b, &t, &r[..]),
            (body.clone(), &trailers, &b"NEXT"[..]),
            "cut {cut}"
        );
    }
    // One byte per read: the worst a client can do.
    let bytes: Vec<&[u8]> = CHUNKED.chunks(1).collect();
    assert_eq!(decode_in_pieces(&bytes).0, body);
}

#[test]
fn chunk_data_streams_without_waiting_for_the_whole_chunk() {
    let mut d = ChunkedDecoder::new(&Limits::default());
    let mut buf = BytesMut::from(&b"ffffffff\r\nabc"[..]);
    assert_eq!(
        d.decode(&mut buf).unwrap(),
        Some(ChunkEvent::Data(Bytes::from_static(b"abc")))
    );
    assert_eq!(d.decode(&mut buf).unwrap(), None);
    buf.extend_from_slice(b"de");
    assert_eq!(
        d.decode(&mut buf).unwrap(),
        Some(ChunkEvent::Data(Bytes::from_static(b"de")))
    );
}

#[test]
fn chunked_encoder_round_trips_with_trailers() {
    let (_, trailers, _) = decode_in_pieces(&[CHUNKED]);
    let mut out = BytesMut::new();
    for piece in [&b"hello"[..], b"", b" ", b"world!"] {
        encode_chunk(piece, &mut out);
    }
    encode_last_chunk(Some(&trailers), &mut out);
    assert_eq!(
        &out[..],
        b"5\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nX-Sum: 1\r\nX-B: two\r\n\r\n"
    );
    let (body, t, rest) = decode_in_pieces(&[&out]);
    assert_eq!(
        (&body[..], &t, rest.is_empty()),
        (&b"hello world!"[..], &trailers, true)
    );
}

fn response_framing(head: &[u8], method: &str) -> (BodyFraming, bool) {
    let r = parse_response_head(&mut BytesMut::from(head), &Limits::default())
        .unwrap()
        .unwrap();
    (r.framing(method), r.keep_alive(method))
}

#[test]
fn response_framing_rules() {
    use BodyFraming::*;
    let cl = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
    assert_eq!(response_framing(cl, "GET"), (Length(10), true));
    assert_eq!(response_framing(cl, "HEAD"), (None, true));
    let te = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(response_framing(te, "GET"), (Chunked, true));
    assert_eq!(response_framing(te, "HEAD"), (None, true));
    for s in [
        &b"204 No Content"[..],
        b"304 Not Modified",
        b"100 Continue",
        b"103 Early Hints",
    ] {
        let mut h = b"HTTP/1.1 ".to_vec();
        h.extend_from_slice(s);
        h.extend_from_slice(b"\r\nContent-Length: 10\r\n\r\n");
        assert_eq!(
            response_framing(&h, "GET").0,
            None,
            "{}",
            String::from_utf8_lossy(s)
        );
    }
    let close = b"HTTP/1.1 200 OK\r\n\r\n";
    assert_eq!(response_framing(close, "GET"), (CloseDelimited, false));
    let up =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    assert_eq!(response_framing(up, "GET"), (Tunnel, false));
    assert_eq!(
        response_framing(b"HTTP/1.1 200 OK\r\n\r\n", "CONNECT"),
        (Tunnel, false)
    );
    let old = b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n";
    assert_eq!(response_framing(old, "GET"), (Length(1), false));
    let old_ka = b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n";
    assert_eq!(response_framing(old_ka, "GET"), (Length(1), true));
    let closing = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n";
    assert_eq!(response_framing(closing, "GET"), (Length(1), false));
}

#[test]
fn interim_then_final_response_in_one_buffer() {
    let mut buf = BytesMut::from(
        &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"[..],
    );
    let l = Limits::default();
    let first = parse_response_head(&mut buf, &l).unwrap().unwrap();
    assert!(first.is_interim());
    let second = parse_response_head(&mut buf, &l).unwrap().unwrap();
    assert!(!second.is_interim());
    assert_eq!(second.framing("POST"), BodyFraming::Length(2));
    assert_eq!(&buf[..], b"ok");
}

/// Read one whole request (head + body) the way the adapter will.
fn next_request(buf: &mut BytesMut, l: &Limits) -> Option<(RequestHead, Vec<u8>)> {
    let head = parse_request_head(buf, l).unwrap()?;
    let body = match head.framing() {
        BodyFraming::None => Vec::new(),
        BodyFraming::Length(n) => buf.split_to(n as usize).to_vec(),
        BodyFraming::Chunked => {
            let mut d = ChunkedDecoder::new(l);
            let mut body = Vec::new();
            while let Some(ev) = d.decode(buf).unwrap() {
                if let ChunkEvent::Data(b) = ev {
                    body.extend_from_slice(&b);
                }
            }
            assert!(d.is_done());
            body
        }
        other => panic!("request framing {other:?}"),
    };
    Some((head, body))
}

#[test]
fn pipelined_requests_in_one_buffer() {
    let mut buf = BytesMut::from(
        &b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n\
POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz\
POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n\
GET /d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /e"[..],
    );
    let l = Limits::default();
    let mut seen = Vec::new();
    while let Some((head, body)) = next_request(&mut buf, &l) {
        seen.push((head.path().to_owned(), body, head.keep_alive()));
    }
    assert_eq!(
        seen,
        vec![
            ("/a".to_owned(), vec![], true),
            ("/b".to_owned(), b"xyz".to_vec(), true),
            ("/c".to_owned(), b"hi".to_vec(), true),
            ("/d".to_owned(), vec![], false),
        ]
    );
    assert_eq!(&buf[..], b"GET /e");
}

/// A HeadParser fed one byte per read gives the same heads as whole-buffer
/// parsing, including the empty lines it skips before a request line.
#[test]
fn head_parser_one_byte_at_a_time() {
    let raw = b"\r\n\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n\r\nPUT /b HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
    let l = Limits::default();
    let mut whole = BytesMut::from(&raw[..]);
    let a = parse_request_head(&mut whole, &l).unwrap().unwrap();
    let b = parse_request_head(&mut whole, &l).unwrap().unwrap();
    let mut p = HeadParser::new(&l);
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for &byte in raw {
        buf.extend_from_slice(&[byte]);
        if let Some(h) = p.request(&mut buf).unwrap() {
            got.push(h);
        }
    }
    assert_eq!(got, vec![a, b]);
    let mut p = HeadParser::new(&l);
    let mut buf = BytesMut::new();
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let mut heads = 0;
    for &byte in resp {
        buf.extend_from_slice(&[byte]);
        heads += usize::from(p.response(&mut buf).unwrap().is_some());
    }
    assert_eq!(heads, 1);
    // The cap still holds when the scan resumes.
    let mut p = HeadParser::new(&Limits { max_head: 40, ..l });
    let mut buf = BytesMut::new();
    let err = b"GET / HTTP/1.1\r\nHost: h\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaa"
        .iter()
        .find_map(|&byte| {
            buf.extend_from_slice(&[byte]);
            p.request(&mut buf).err()
        });
    assert_eq!(err, Some(H1Error::HeadTooLarge { max: 40 }));
}

#[test]
fn head_split_at_every_point() {
    let raw = b"POST /p?q=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nX-A: b\r\n\r\nhi";
    let l = Limits::default();
    let whole = parse_request_head(&mut BytesMut::from(&raw[..]), &l)
        .unwrap()
        .unwrap();
    for cut in 0..raw.len() {
        let mut buf = BytesMut::from(&raw[..cut]);
        let early = parse_request_head(&mut buf, &l).unwrap();
        if cut < raw.len() - 2 {
            assert!(early.is_none(), "complete at {cut}");
            buf.extend_from_slice(&raw[cut..]);
            let head = parse_request_head(&mut buf, &l).unwrap().unwrap();
            assert_eq!(head, whole);
        }
    }
}

fn edited(raw: &[u8], edit: impl FnOnce(&mut HeadEditor<'_>)) -> String {
    let head = parse_request_head(&mut BytesMut::from(raw), &Limits::default())
        .unwrap()
        .unwrap();
    let mut e = HeadEditor::for_request(&head);
    edit(&mut e);
    let mut out = BytesMut::new();
    e.encode(&mut out);
    String::from_utf8(out.to_vec()).unwrap()
}

#[test]
fn editor_strips_hop_by_hop_and_injects_a_credential() {
    let raw = b"GET /x HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer caller-jwt\r\n\
Connection: keep-alive, X-Secret, Host, content-length\r\nX-Secret: s\r\nKeep-Alive: 5\r\n\
TE: trailers\r\nX-Odd:  spaced\t value \r\nProxy-Authorization: p\r\nContent-Length: 0\r\n\r\n";
    let out = edited(raw, |e| {
        e.remove_hop_by_hop();
        assert_eq!(e.remove("authorization"), 1);
        e.append("Authorization", b"Bearer upstream-key").unwrap();
        e.append_via(1, "tollgate").unwrap();
        e.append_x_forwarded_for("10.0.0.7".parse().unwrap())
            .unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        e.append_forwarded(v6, "https", Some(b"api")).unwrap();
    });
    assert_eq!(
        out,
        "GET /x HTTP/1.1\r\nHost: api\r\nX-Odd:  spaced\t value \r\nContent-Length: 0\r\n\
Authorization: Bearer upstream-key\r\nVia: 1.1 tollgate\r\nX-Forwarded-For: 10.0.0.7\r\n\
Forwarded: for=\"[2001:db8::1]\";proto=https;host=\"api\"\r\n\r\n"
    );
}

#[test]
fn editor_refuses_injected_lines_and_rewrites_the_request_line() {
    let raw = b"GET http://api/x?y HTTP/1.1\r\nHost: api\r\n\r\n";
    let out = edited(raw, |e| {
        let bad = H1Error::BadOutgoingField { what: "value" };
        assert_eq!(e.append("X-Key", b"a\r\nX-Evil: 1"), Err(bad.clone()));
        assert_eq!(e.append("X-Key", b"a\nb"), Err(bad.clone()));
        assert_eq!(e.append("X-Key", b" a"), Err(bad));
        assert!(e.append("X Key", b"a").is_err());
        assert!(e.set_request_line("GET", "/x y", 1).is_err());
        e.set_request_line("GET", "/x?y", 1).unwrap();
    });
    assert_eq!(out, "GET /x?y HTTP/1.1\r\nHost: api\r\n\r\n");
}

#[test]
fn response_editor_keeps_its_status_line() {
    let raw = b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Internal\r\nX-Internal: 1\r\nContent-Length: 0\r\n\r\n";
    let head = parse_response_head(&mut BytesMut::from(&raw[..]), &Limits::default())
        .unwrap()
        .unwrap();
    let mut e = HeadEditor::for_response(&head);
    assert!(e.set_request_line("GET", "/", 1).is_err());
    e.remove_hop_by_hop();
    e.append_via(1, "tollgate").unwrap();
    let mut out = BytesMut::new();
    e.encode(&mut out);
    assert_eq!(
        &out[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nVia: 1.1 tollgate\r\n\r\n"
    );
}
