//! Fuzzes the proxy HTTP/1.1 codec the way the gateway drives it: request
//! heads, then their bodies (Content-Length or chunked, with trailers),
//! pipelined, split at a point the input picks. The same bytes in one read
//! and in two (the second through a resuming `HeadParser`) must give the same
//! messages, and a head re-encoded unedited must be the bytes received.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tollgate_codecs::http::k8s;
use tollgate_codecs::http::query::{MAX_QUERY_PAIRS, parse_query};
use tollgate_codecs::http::h1::{
    BodyFraming, ChunkEvent, ChunkedDecoder, H1Error, HeadEditor, HeadParser, Limits,
    check_normal_path, parse_request_head, parse_response_head,
};

const LIMITS: Limits = Limits {
    max_head: 2048,
    max_headers: 24,
    max_target: 512,
    max_chunk_line: 64,
    max_trailers: 256,
};

enum Phase {
    Head,
    Length(u64),
    Chunked(ChunkedDecoder),
}

/// One step: `Ok(true)` progress, `Ok(false)` needs more bytes.
fn step(
    phase: &mut Phase,
    parser: &mut Option<HeadParser>,
    buf: &mut BytesMut,
    out: &mut Vec<Vec<u8>>,
    body: &mut Vec<u8>,
) -> Result<bool, H1Error> {
    match phase {
        Phase::Head => {
            let head = match parser {
                Some(p) => p.request(buf)?,
                None => parse_request_head(buf, &LIMITS)?,
            };
            let Some(head) = head else {
                return Ok(false);
            };
            // The path check the gateway runs before its rules: a path it
            // accepts has no segment a server could resolve away.
            if check_normal_path(head.path()).is_ok() {
                assert!(!head.path().split('/').any(|s| s == ".." || s == "."));
            }
            // What the rules read of a request: the decoded query and a
            // Kubernetes request; neither may panic, and a decoded query
            // holds no more pairs than the cap.
            if let Ok(q) = parse_query(head.query().unwrap_or("")) {
                assert!(q.len() <= MAX_QUERY_PAIRS);
                if let Some(k) = k8s::parse_request(head.method(), head.path(), k8s::query_watches(&q)) {
                    assert!(!k.verb.is_empty() && !k.resource.is_empty());
                }
            }
            let mut same = BytesMut::new();
            HeadEditor::for_request(&head).encode(&mut same);
            assert_eq!(
                &same[..],
                &head.raw()[..],
                "unedited re-encode changed the head"
            );
            let mut edited = HeadEditor::for_request(&head);
            edited.remove_hop_by_hop();
            edited
                .append_via(head.minor_version(), "tollgate")
                .unwrap_or_default();
            let mut again = BytesMut::new();
            edited.encode(&mut again);
            let reparsed = parse_request_head(&mut again, &LIMITS.clone_with_room());
            assert!(
                reparsed.is_ok(),
                "edited head no longer parses: {reparsed:?}"
            );
            out.push(head.raw().to_vec());
            *phase = match head.framing() {
                BodyFraming::Length(n) if n > 0 => Phase::Length(n),
                BodyFraming::Chunked => Phase::Chunked(ChunkedDecoder::new(&LIMITS)),
                _ => Phase::Head,
            };
            Ok(true)
        }
        Phase::Length(n) => {
            if buf.is_empty() {
                return Ok(false);
            }
            let take = (*n).min(buf.len() as u64) as usize;
            body.extend_from_slice(&buf.split_to(take));
            *n -= take as u64;
            if *n == 0 {
                out.push(std::mem::take(body));
                *phase = Phase::Head;
            }
            Ok(true)
        }
        Phase::Chunked(d) => match d.decode(buf)? {
            None => Ok(false),
            Some(ChunkEvent::Data(b)) => {
                assert!(!b.is_empty());
                body.extend_from_slice(&b);
                Ok(true)
            }
            Some(ChunkEvent::End(trailers)) => {
                out.push(std::mem::take(body));
                out.push(format!("{trailers:?}").into_bytes());
                *phase = Phase::Head;
                Ok(true)
            }
        },
    }
}

trait Room {
    fn clone_with_room(&self) -> Limits;
}

impl Room for Limits {
    /// An edited head grows by a Via line.
    fn clone_with_room(&self) -> Limits {
        Limits {
            max_head: self.max_head + 64,
            max_headers: self.max_headers + 1,
            ..*self
        }
    }
}

fn run(data: &[u8], cut: usize, resume: bool) -> Vec<Vec<u8>> {
    let mut parser = resume.then(|| HeadParser::new(&LIMITS));
    let mut buf = BytesMut::from(&data[..cut]);
    let mut fed = false;
    let (mut phase, mut out, mut body) = (Phase::Head, Vec::new(), Vec::new());
    loop {
        match step(&mut phase, &mut parser, &mut buf, &mut out, &mut body) {
            Ok(true) => {}
            Ok(false) if !fed => {
                buf.extend_from_slice(&data[cut..]);
                fed = true;
            }
            Ok(false) => break,
            Err(e) => {
                let _ = e.status();
                out.push(format!("{e:?}").into_bytes());
                break;
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let whole = run(data, data.len(), false);
    let cut = usize::from(split) * data.len() / 255;
    assert_eq!(
        whole,
        run(data, cut, false),
        "split at {cut} changed the parse"
    );
    assert_eq!(
        whole,
        run(data, cut, true),
        "split at {cut} changed the resumed parse"
    );
    // The same bytes as an upstream's response head.
    if let Ok(Some(r)) = parse_response_head(&mut BytesMut::from(data), &LIMITS) {
        let _ = (
            r.framing("GET"),
            r.framing("HEAD"),
            r.keep_alive("GET"),
            r.is_interim(),
        );
    }
});
