//! Fuzzes the admin HTTP/1.1 request parser (pipelined, split at every point libFuzzer picks) and the response encoder.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tollgate_codecs::http::{Limits, encode_response, parse_request, reason_phrase};

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_head: 2048,
        max_body: 4096,
        max_headers: 16,
    };
    // Whole input at once, then the same bytes arriving in two reads: the parses must agree.
    let mut whole = BytesMut::from(data);
    let mut seen = Vec::new();
    while let Ok(Some(req)) = parse_request(&mut whole, &limits) {
        let _ = (req.method(), req.path(), req.query(), req.minor_version(), req.keep_alive());
        let _ = (req.headers().count(), req.header("host"), req.header_str("content-type"));
        // A parsed request can be answered: echo its path as a header value.
        let mut out = BytesMut::new();
        let status = 200 + u16::from(split % 100);
        let _ = reason_phrase(status);
        let _ = encode_response(status, &[("x-path", req.path())], req.body(), &mut out);
        seen.push(req);
    }
    let cut = usize::from(split) % (data.len() + 1);
    let mut parts = BytesMut::from(&data[..cut]);
    let mut again = Vec::new();
    let mut fed_rest = false;
    loop {
        match parse_request(&mut parts, &limits) {
            Ok(Some(req)) => again.push(req),
            Ok(None) if !fed_rest => {
                parts.extend_from_slice(&data[cut..]);
                fed_rest = true;
            }
            _ => break,
        }
    }
    if !fed_rest {
        // An error before the rest arrived: the whole-input parse must also have stopped there.
        assert!(seen.len() >= again.len());
        return;
    }
    assert_eq!(seen, again, "split at {cut} changed the parse");
});
