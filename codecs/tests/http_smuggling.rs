//! Request-smuggling corpus for the proxy HTTP/1.1 codec: raw bytes, each
//! refused with the error that names its check (so removing a check fails its
//! case), and near-misses that must still be accepted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::BytesMut;
use tollgate_codecs::http::h1::{
    BodyFraming, ChunkedDecoder, H1Error, Limits, parse_request_head, parse_response_head,
};

fn req(bytes: &[u8]) -> Result<Option<tollgate_codecs::http::h1::RequestHead>, H1Error> {
    parse_request_head(&mut BytesMut::from(bytes), &Limits::default())
}

fn refused(bytes: &[u8]) -> H1Error {
    match req(bytes) {
        Err(e) => e,
        Ok(h) => panic!("accepted {:?}: {h:?}", String::from_utf8_lossy(bytes)),
    }
}

/// (bytes, the error, the status it maps to)
const REFUSED: &[(&[u8], H1Error, u16)] = &[
    // Content-Length.
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        H1Error::ConflictingContentLength,
        400,
    ),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n",
        H1Error::ConflictingContentLength,
        400,
    ),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", H1Error::BadContentLength, 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", H1Error::BadContentLength, 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", H1Error::BadContentLength, 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n", H1Error::BadContentLength, 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", H1Error::BadContentLength, 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n", H1Error::BadContentLength, 400),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
        H1Error::BadContentLength,
        400,
    ),
    // Content-Length with Transfer-Encoding, either order.
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        H1Error::LengthWithTransferEncoding,
        400,
    ),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        H1Error::LengthWithTransferEncoding,
        400,
    ),
    // Transfer-Encoding other than exactly a final chunked.
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        H1Error::BadTransferEncoding,
        400,
    ),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        H1Error::BadTransferEncoding,
        400,
    ),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n",
        H1Error::BadTransferEncoding,
        400,
    ),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
        H1Error::BadTransferEncoding,
        400,
    ),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", H1Error::BadTransferEncoding, 400),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        H1Error::UnsupportedTransferCoding,
        501,
    ),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
        H1Error::UnsupportedTransferCoding,
        501,
    ),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
        H1Error::UnsupportedTransferCoding,
        501,
    ),
    (
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        H1Error::BadTransferEncoding,
        400,
    ),
    // Line ends and folding.
    (b"GET / HTTP/1.1\nHost: a\r\n\r\n", H1Error::BareLf { line: 1 }, 400),
    (b"GET / HTTP/1.1\r\nHost: a\n\r\n", H1Error::BareLf { line: 2 }, 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\n\n", H1Error::BareLf { line: 3 }, 400),
    (b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", H1Error::BareLf { line: 1 }, 400),
    (b"GET / HTTP/1.1\r\nHost: a\rX-A: b\r\n\r\n", H1Error::BareCr { line: 2 }, 400),
    (b"GET / HTTP/1.1\rX\r\nHost: a\r\n\r\n", H1Error::BareCr { line: 1 }, 400),
    (
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
        H1Error::ObsFold { line: 4 },
        400,
    ),
    (
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n",
        H1Error::ObsFold { line: 4 },
        400,
    ),
    (
        b"GET / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: a\r\n\r\n",
        H1Error::ObsFold { line: 2 },
        400,
    ),
    // Names and values.
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
        H1Error::SpaceBeforeColon { line: 3 },
        400,
    ),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length\t: 5\r\n\r\n",
        H1Error::SpaceBeforeColon { line: 3 },
        400,
    ),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX[A]: b\r\n\r\n", H1Error::BadFieldName { line: 3 }, 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", H1Error::BadFieldName { line: 3 }, 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX\0A: b\r\n\r\n", H1Error::BadFieldName { line: 3 }, 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX-A b\r\n\r\n", H1Error::MissingColon { line: 3 }, 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n", H1Error::BadFieldValue { line: 3 }, 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01c\r\n\r\n", H1Error::BadFieldValue { line: 3 }, 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x1bc\r\n\r\n", H1Error::BadFieldValue { line: 3 }, 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7fc\r\n\r\n", H1Error::BadFieldValue { line: 3 }, 400),
    // Request line.
    (b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n", H1Error::BadRequestLine, 400),
    (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", H1Error::BadRequestLine, 400),
    (b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", H1Error::BadRequestLine, 400),
    (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", H1Error::BadRequestLine, 400),
    (b"GET / http/1.1\r\nHost: a\r\n\r\n", H1Error::BadRequestLine, 400),
    (b"GET /\r\n\r\n", H1Error::BadRequestLine, 400),
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", H1Error::UnsupportedVersion, 505),
    (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", H1Error::UnsupportedVersion, 505),
    (b"GET /\x80 HTTP/1.1\r\nHost: a\r\n\r\n", H1Error::BadTarget, 400),
    (b"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", H1Error::BadTarget, 400),
    (b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", H1Error::BadTarget, 400),
    (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", H1Error::BadTarget, 400),
    (b"GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", H1Error::BadTarget, 400),
    (b"CONNECT a HTTP/1.1\r\nHost: a\r\n\r\n", H1Error::BadTarget, 400),
    // Host.
    (b"GET / HTTP/1.1\r\n\r\n", H1Error::MissingHost, 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", H1Error::DuplicateHost, 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n", H1Error::DuplicateHost, 400),
    (b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", H1Error::DuplicateHost, 400),
    (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", H1Error::BadHost, 400),
    (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", H1Error::BadHost, 400),
    (b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", H1Error::BadHost, 400),
    // Absolute form: the authority is the Host, no userinfo.
    (b"GET http://b/x HTTP/1.1\r\nHost: a\r\n\r\n", H1Error::HostMismatch, 400),
    (b"GET http://u@a/x HTTP/1.1\r\nHost: a\r\n\r\n", H1Error::BadTarget, 400),
    (b"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", H1Error::BadTarget, 400),
    // Other fields.
    (b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", H1Error::UnsupportedExpectation, 417),
    (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: a b\r\n\r\n", H1Error::BadConnection, 400),
];

#[test]
fn every_refusal_names_its_check() {
    for (bytes, want, status) in REFUSED {
        let got = refused(bytes);
        assert_eq!(&got, want, "{:?}", String::from_utf8_lossy(bytes));
        assert_eq!(got.status(), *status, "{want:?}");
    }
}

/// Close to a refusal, but valid HTTP: each must parse.
const ACCEPTED: &[(&[u8], BodyFraming)] = &[
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        BodyFraming::Length(5),
    ),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
        BodyFraming::Length(5),
    ),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\ncontent-length:007\r\n\r\n",
        BodyFraming::Length(7),
    ),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
        BodyFraming::Chunked,
    ),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked,\r\n\r\n",
        BodyFraming::Chunked,
    ),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked \t\r\n\r\n",
        BodyFraming::Chunked,
    ),
    (
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A:\r\n\r\n",
        BodyFraming::None,
    ),
    (
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: caf\xc3\xa9 \"q\" \t tab\r\n\r\n",
        BodyFraming::None,
    ),
    (b"GET / HTTP/1.1\r\nHost:\r\n\r\n", BodyFraming::None),
    (
        b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
        BodyFraming::None,
    ),
    (
        b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        BodyFraming::None,
    ),
    (b"GET / HTTP/1.0\r\n\r\n", BodyFraming::None),
    (
        b"GET HTTP://A:80/x?y HTTP/1.1\r\nHost: a:80\r\n\r\n",
        BodyFraming::None,
    ),
    (b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", BodyFraming::None),
    (
        b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
        BodyFraming::None,
    ),
    (
        b"M-SEARCH /a?b=c&d=%20 HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n",
        BodyFraming::None,
    ),
];

#[test]
fn near_misses_are_accepted() {
    for (bytes, framing) in ACCEPTED {
        let head = req(bytes)
            .unwrap_or_else(|e| panic!("{e} for {:?}", String::from_utf8_lossy(bytes)))
            .expect("complete head");
        assert_eq!(
            head.framing(),
            *framing,
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn target_forms_split() {
    let h = req(b"GET HTTP://A:80/x?y HTTP/1.1\r\nHost: a:80\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(
        (h.authority(), h.path(), h.query()),
        (Some("A:80"), "/x", Some("y"))
    );
    assert_eq!(h.origin_form(), "/x?y");
    let h = req(b"GET http://a?q HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(h.origin_form(), "/?q");
    assert_eq!(
        (h.authority(), h.path(), h.query()),
        (Some("a"), "", Some("q"))
    );
    let h = req(b"GET https://a HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(h.origin_form(), "/");
    let h = req(b"GET /p?q HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(h.origin_form(), "/p?q");
    let h = req(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(h.authority(), Some("a:443"));
}

#[test]
fn caps_refuse_at_the_limit() {
    let limits = Limits {
        max_head: 64,
        max_headers: 2,
        max_target: 8,
        ..Limits::default()
    };
    let parse = |b: &[u8]| parse_request_head(&mut BytesMut::from(b), &limits);
    // The cap holds while the head is still arriving, before its end is seen.
    assert_eq!(parse(&[b'a'; 64]), Err(H1Error::HeadTooLarge { max: 64 }));
    assert_eq!(parse(&[b'a'; 63]), Ok(None));
    assert_eq!(
        parse(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 1\r\n"),
        Err(H1Error::TooManyHeaders { max: 2 })
    );
    assert!(
        parse(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\n\r\n")
            .unwrap()
            .is_some()
    );
    assert_eq!(
        parse(b"GET /123456789 HTTP/1.1\r\nHost: a\r\n\r\n"),
        Err(H1Error::TargetTooLong { max: 8 })
    );
    assert!(
        parse(b"GET /1234567 HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap()
            .is_some()
    );
    assert_eq!(H1Error::HeadTooLarge { max: 1 }.status(), 431);
    assert_eq!(H1Error::TargetTooLong { max: 1 }.status(), 414);
}

#[test]
fn keep_alive_rules() {
    let ka = |b: &[u8]| req(b).unwrap().unwrap().keep_alive();
    assert!(ka(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert!(!ka(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n"
    ));
    assert!(!ka(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n"
    ));
    assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
    assert!(ka(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    assert!(!ka(
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"
    ));
    // Upgrade is ignored in HTTP/1.0.
    let up = |b: &[u8]| req(b).unwrap().unwrap().upgrade().is_some();
    assert!(up(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    ));
    assert!(!up(
        b"GET / HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    ));
    assert!(!up(
        b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"
    ));
}

#[test]
fn expect_continue_is_visible() {
    let h = req(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(h.expect_continue());
    let old = req(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
    assert!(!old.unwrap().unwrap().expect_continue());
    assert!(
        !req(b"PUT / HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap()
            .unwrap()
            .expect_continue()
    );
}

/// Responses from an upstream: the same line and field checks, and framing
/// the gateway refuses rather than guesses.
#[test]
fn upstream_responses_refused() {
    let resp = |b: &[u8]| parse_response_head(&mut BytesMut::from(b), &Limits::default());
    let cases: &[(&[u8], H1Error)] = &[
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            H1Error::ConflictingContentLength,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            H1Error::LengthWithTransferEncoding,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            H1Error::BadTransferEncoding,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            H1Error::BadTransferEncoding,
        ),
        (
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            H1Error::BadTransferEncoding,
        ),
        (
            b"HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\n",
            H1Error::BareLf { line: 1 },
        ),
        (
            b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
            H1Error::ObsFold { line: 3 },
        ),
        (
            b"HTTP/1.1 200 OK\r\nX : a\r\n\r\n",
            H1Error::SpaceBeforeColon { line: 2 },
        ),
        (b"HTTP/1.1 2000 OK\r\n\r\n", H1Error::BadStatusLine),
        (b"HTTP/1.1 099 OK\r\n\r\n", H1Error::BadStatusLine),
        (b"HTTP/1.1 200 O\x00K\r\n\r\n", H1Error::BadStatusLine),
        (b"HTTP/1.1  200 OK\r\n\r\n", H1Error::BadStatusLine),
        (b"HTTP/3.0 200 OK\r\n\r\n", H1Error::UnsupportedVersion),
    ];
    for (bytes, want) in cases {
        assert_eq!(
            resp(bytes).as_ref().err(),
            Some(want),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    let ok = resp(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(ok.transfer_coded());
    assert_eq!(ok.framing("GET"), BodyFraming::Chunked);
    let bare = resp(b"HTTP/1.1 204\r\n\r\n").unwrap().unwrap();
    assert_eq!((bare.status(), bare.reason()), (204, &b""[..]));
}

/// Chunk-size lines and the bytes around chunk data: over-long sizes and
/// missing CRLFs are where chunked smuggling lives.
#[test]
fn chunked_body_refusals() {
    let limits = Limits {
        max_chunk_line: 32,
        max_trailers: 64,
        ..Limits::default()
    };
    let cases: &[(&[u8], H1Error)] = &[
        (b"10000000000000000\r\n", H1Error::BadChunkSize),
        (b"00000000000000001\r\n", H1Error::BadChunkSize),
        (b"-1\r\n", H1Error::BadChunkSize),
        (b"0x5\r\n", H1Error::BadChunkSize),
        (b"\r\n", H1Error::BadChunkSize),
        (b"5\n", H1Error::BareLf { line: 0 }),
        (b"5\r\nhello\n0\r\n\r\n", H1Error::MissingChunkCrlf),
        (b"5\r\nhelloXX0\r\n\r\n", H1Error::MissingChunkCrlf),
        (b"5\r\nhello\r0\r\n\r\n", H1Error::MissingChunkCrlf),
        (b"5;a=\"unterminated\r\n", H1Error::BadChunkExtension),
        (b"5;=x\r\n", H1Error::BadChunkExtension),
        (b"5;a=b;;\r\n", H1Error::BadChunkExtension),
        (b"5;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", H1Error::ChunkLineTooLong { max: 32 }),
        (b"5;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", H1Error::ChunkLineTooLong { max: 32 }),
        (b"0\r\nX: a\n\r\n", H1Error::BareLf { line: 1 }),
        (b"0\r\n X: a\r\n\r\n", H1Error::ObsFold { line: 1 }),
        (b"0\r\nX : a\r\n\r\n", H1Error::SpaceBeforeColon { line: 1 }),
        (b"0\r\nContent-Length: 5\r\n\r\n", H1Error::ForbiddenTrailer { line: 1 }),
        (b"0\r\nX: 1\r\nTransfer-Encoding: chunked\r\n\r\n", H1Error::ForbiddenTrailer { line: 2 }),
        (b"0\r\nAuthorization: Bearer x\r\n\r\n", H1Error::ForbiddenTrailer { line: 1 }),
        (
            b"0\r\nX-Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: 1\r\nX-Bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb: 2\r\n\r\n",
            H1Error::TrailersTooLarge { max: 64 },
        ),
    ];
    for (bytes, want) in cases {
        let mut d = ChunkedDecoder::new(&limits);
        let mut buf = BytesMut::from(*bytes);
        let got = loop {
            match d.decode(&mut buf) {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("no error for {:?}", String::from_utf8_lossy(bytes)),
                Err(e) => break e,
            }
        };
        assert_eq!(&got, want, "{:?}", String::from_utf8_lossy(bytes));
    }
}

/// The classic CL.TE / TE.CL pairs: whatever a back end would have done,
/// the gateway refuses the request before a byte of body is relayed.
#[test]
fn classic_smuggling_pairs() {
    let cl_te = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nSMUGGLED";
    assert_eq!(refused(cl_te), H1Error::LengthWithTransferEncoding);
    let te_te =
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-encoding: x\r\n\r\n";
    assert_eq!(refused(te_te), H1Error::BadTransferEncoding);
    let te_space =
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length : 4\r\n\r\n";
    assert_eq!(refused(te_space), H1Error::SpaceBeforeColon { line: 4 });
    let te_vtab = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n";
    assert_eq!(refused(te_vtab), H1Error::BadFieldValue { line: 3 });
}
