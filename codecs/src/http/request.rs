//! HTTP/1.1 request parsing: `parse_request` cuts one complete request (head
//! and `Content-Length` body) off the front of a buffer, or says it needs more
//! bytes. The head is kept as one `Bytes`; method, path and headers are spans
//! into it, so parsing allocates only the small span vector.

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use memchr::memmem;

use super::{HttpError, MAX_BODY, MAX_HEAD, MAX_HEADERS, is_tchar, is_value_byte};

/// Caps applied while parsing; checked before any byte is buffered past them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_head: usize,
    pub max_body: usize,
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_head: MAX_HEAD,
            max_body: MAX_BODY,
            max_headers: MAX_HEADERS,
        }
    }
}

/// Byte offsets of one header field inside the head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    name: Range<usize>,
    value: Range<usize>,
}

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    head: Bytes,
    method: Range<usize>,
    path: Range<usize>,
    query: Option<Range<usize>>,
    minor_version: u8,
    headers: Vec<Header>,
    body: Bytes,
}

impl Request {
    fn text(&self, r: &Range<usize>) -> &str {
        // Every span was checked to be ASCII while parsing.
        std::str::from_utf8(&self.head[r.clone()]).unwrap_or("")
    }

    pub fn method(&self) -> &str {
        self.text(&self.method)
    }

    /// The path of the request target, without the query; not percent-decoded.
    pub fn path(&self) -> &str {
        self.text(&self.path)
    }

    /// The query string after `?`, not percent-decoded.
    pub fn query(&self) -> Option<&str> {
        self.query.as_ref().map(|q| self.text(q))
    }

    /// `0` for HTTP/1.0, `1` for HTTP/1.1.
    pub fn minor_version(&self) -> u8 {
        self.minor_version
    }

    /// Header fields in order: (name as sent, raw value with the surrounding
    /// whitespace removed).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers
            .iter()
            .map(|h| (self.text(&h.name), &self.head[h.value.clone()]))
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The first header named `name`, when its value is UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Whether the connection may carry another request after this one.
    pub fn keep_alive(&self) -> bool {
        let has = |token: &str| {
            self.headers()
                .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
                .flat_map(|(_, v)| v.split(|&b| b == b','))
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        };
        if self.minor_version == 0 {
            has("keep-alive")
        } else {
            !has("close")
        }
    }
}

/// Cut one request off the front of `buf`.
///
/// `Ok(None)`: the request is not complete yet; read more and call again.
/// An error means the connection cannot be trusted any more: answer with
/// [`HttpError::status`] and close.
pub fn parse_request(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Request>, HttpError> {
    let window = &buf[..buf.len().min(limits.max_head)];
    let Some(end) = memmem::find(window, b"\r\n\r\n") else {
        if buf.len() >= limits.max_head {
            return Err(HttpError::HeadTooLarge {
                max: limits.max_head,
            });
        }
        return Ok(None);
    };
    let head_len = end + 4;
    let parsed = parse_head(&buf[..end], limits)?;
    if parsed.content_length > limits.max_body as u64 {
        return Err(HttpError::BodyTooLarge {
            len: parsed.content_length,
            max: limits.max_body,
        });
    }
    // Bounded by max_body above, so this fits in usize.
    let body_len = parsed.content_length as usize;
    if buf.len() < head_len + body_len {
        buf.reserve(head_len + body_len - buf.len());
        return Ok(None);
    }
    let mut head = buf.split_to(head_len);
    head.truncate(end);
    let body = buf.split_to(body_len).freeze();
    Ok(Some(Request {
        head: head.freeze(),
        method: parsed.method,
        path: parsed.path,
        query: parsed.query,
        minor_version: parsed.minor_version,
        headers: parsed.headers,
        body,
    }))
}

struct ParsedHead {
    method: Range<usize>,
    path: Range<usize>,
    query: Option<Range<usize>>,
    minor_version: u8,
    headers: Vec<Header>,
    content_length: u64,
}

fn parse_head(head: &[u8], limits: &Limits) -> Result<ParsedHead, HttpError> {
    let mut lines = LineIter { head, pos: 0 };
    let (line_start, line) = lines.next().ok_or(HttpError::BadRequestLine)?;
    debug_assert_eq!(line_start, 0);
    let (method, path, query, minor_version) = parse_request_line(line)?;

    let mut headers = Vec::new();
    let mut content_length: Option<u64> = None;
    let mut hosts = 0;
    for (n, (start, line)) in lines.enumerate() {
        let line_no = n + 2;
        if headers.len() == limits.max_headers {
            return Err(HttpError::TooManyHeaders {
                max: limits.max_headers,
            });
        }
        let h = parse_header(start, line).ok_or(HttpError::BadHeader { line: line_no })?;
        let name = &head[h.name.clone()];
        let value = &head[h.value.clone()];
        if name.eq_ignore_ascii_case(b"content-length") {
            if content_length.is_some() {
                // Two lengths are the classic smuggling vector: refuse outright.
                return Err(HttpError::BadContentLength);
            }
            content_length = Some(parse_content_length(value)?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(HttpError::TransferEncoding);
        } else if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        }
        headers.push(h);
    }
    // RFC 9112 §3.2: an HTTP/1.1 request carries exactly one Host.
    if minor_version == 1 && hosts != 1 {
        return Err(HttpError::MissingHost);
    }
    Ok(ParsedHead {
        method,
        path,
        query,
        minor_version,
        headers,
        content_length: content_length.unwrap_or(0),
    })
}

type RequestLine = (Range<usize>, Range<usize>, Option<Range<usize>>, u8);

fn parse_request_line(line: &[u8]) -> Result<RequestLine, HttpError> {
    let sp1 = memchr::memchr(b' ', line).ok_or(HttpError::BadRequestLine)?;
    let rest = &line[sp1 + 1..];
    let sp2 = memchr::memchr(b' ', rest).ok_or(HttpError::BadRequestLine)? + sp1 + 1;
    let method = 0..sp1;
    let target = sp1 + 1..sp2;
    let version = &line[sp2 + 1..];
    if method.is_empty() || !line[method.clone()].iter().all(|&b| is_tchar(b)) {
        return Err(HttpError::BadRequestLine);
    }
    let t = &line[target.clone()];
    // Origin form only ("/path?query"): no absolute URIs, no authority form.
    if t.first() != Some(&b'/') || !t.iter().all(|&b| (0x21..=0x7e).contains(&b)) {
        return Err(HttpError::BadRequestLine);
    }
    let minor = match version {
        b"HTTP/1.1" => 1,
        b"HTTP/1.0" => 0,
        v if v.starts_with(b"HTTP/") => return Err(HttpError::BadVersion),
        _ => return Err(HttpError::BadRequestLine),
    };
    let (path, query) = match memchr::memchr(b'?', t) {
        Some(q) => (
            target.start..target.start + q,
            Some(target.start + q + 1..target.end),
        ),
        None => (target, None),
    };
    Ok((method, path, query, minor))
}

/// `name ":" OWS value OWS`, with offsets relative to the whole head.
fn parse_header(start: usize, line: &[u8]) -> Option<Header> {
    let colon = memchr::memchr(b':', line)?;
    // An empty name, whitespace before the colon, or a folded continuation
    // line (leading whitespace) are all refused: each has been used to make
    // two parsers disagree about a header.
    if colon == 0 || !line[..colon].iter().all(|&b| is_tchar(b)) {
        return None;
    }
    let raw = &line[colon + 1..];
    if !raw.iter().all(|&b| is_value_byte(b)) {
        return None;
    }
    let lead = raw.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    let trail = raw[lead..]
        .iter()
        .rev()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    let vstart = start + colon + 1 + lead;
    let vend = start + line.len() - trail;
    Some(Header {
        name: start..start + colon,
        value: vstart..vend,
    })
}

fn parse_content_length(v: &[u8]) -> Result<u64, HttpError> {
    // Digits only: no sign, no spaces inside, no list ("5, 5"); 19 digits
    // always fit in a u64.
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(HttpError::BadContentLength);
    }
    Ok(v.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// Lines of the head separated by CRLF. A bare CR or LF stays inside a line,
/// where the byte checks refuse it.
struct LineIter<'a> {
    head: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for LineIter<'a> {
    type Item = (usize, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos > self.head.len() {
            return None;
        }
        let start = self.pos;
        let rest = &self.head[start..];
        match memmem::find(rest, b"\r\n") {
            Some(i) => {
                self.pos = start + i + 2;
                Some((start, &rest[..i]))
            }
            None => {
                self.pos = self.head.len() + 1;
                Some((start, rest))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Option<Request>, HttpError> {
        let mut b = BytesMut::from(bytes);
        parse_request(&mut b, &Limits::default())
    }

    #[test]
    fn parses_a_request_with_body_and_leaves_the_next_one() {
        let mut b = BytesMut::from(
            &b"POST /v1/approvals/7/deny?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\
               X-Empty:\r\nAuthorization:  Bearer t  \r\n\r\nhelloGET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        );
        let r = parse_request(&mut b, &Limits::default()).unwrap().unwrap();
        assert_eq!(r.method(), "POST");
        assert_eq!(r.path(), "/v1/approvals/7/deny");
        assert_eq!(r.query(), Some("x=1"));
        assert_eq!(r.minor_version(), 1);
        assert_eq!(r.header_str("authorization"), Some("Bearer t"));
        assert_eq!(r.header("x-empty"), Some(&b""[..]));
        assert_eq!(r.header("missing"), None);
        assert_eq!(&r.body()[..], b"hello");
        assert!(r.keep_alive());
        let r2 = parse_request(&mut b, &Limits::default()).unwrap().unwrap();
        assert_eq!(r2.path(), "/");
        assert!(r2.body().is_empty());
        assert!(b.is_empty());
    }

    #[test]
    fn needs_more_bytes_until_head_and_body_are_complete() {
        let full = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
        for cut in 0..full.len() {
            assert_eq!(parse(&full[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert!(parse(full).unwrap().is_some());
    }

    #[test]
    fn connection_semantics_follow_the_version() {
        let r = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!r.keep_alive());
        let r = parse(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(r.keep_alive());
        let r = parse(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!r.keep_alive());
    }

    #[test]
    fn head_cap_is_enforced_without_a_terminator() {
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD, b'a');
        assert_eq!(parse(&big), Err(HttpError::HeadTooLarge { max: MAX_HEAD }));
        // One byte short of the cap is still "need more".
        assert_eq!(parse(&big[..MAX_HEAD - 1]), Ok(None));
    }

    #[test]
    fn body_cap_is_checked_before_the_body_arrives() {
        let e =
            parse(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n").unwrap_err();
        assert_eq!(e.status(), 413);
        let e =
            parse(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n")
                .unwrap_err();
        assert_eq!(e, HttpError::BadContentLength);
    }

    #[test]
    fn too_many_headers() {
        let mut req = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        for i in 0..MAX_HEADERS {
            req.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        assert_eq!(
            parse(&req),
            Err(HttpError::TooManyHeaders { max: MAX_HEADERS })
        );
    }

    #[test]
    fn hostile_inputs_are_refused_with_the_right_status() {
        let cases: &[(&[u8], u16)] = &[
            (
                b"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
                411,
            ),
            (
                b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1,1\r\n\r\n",
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc",
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n",
                400,
            ),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX : y\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\nY: b\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: h\r\n: novalue\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: h\r\nnocolon\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            (b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
            (b"GET http://evil/ HTTP/1.1\r\nHost: h\r\n\r\n", 400),
            (b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400),
            (b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
            (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505),
            (b"GET / FTP/1.1\r\nHost: h\r\n\r\n", 400),
            (b"GET /\r\n\r\n", 400),
            (b"\r\n\r\n", 400),
            (b"GET /\xff HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ];
        for (input, status) in cases {
            match parse(input) {
                Err(e) => assert_eq!(
                    e.status(),
                    *status,
                    "{:?}: {e}",
                    String::from_utf8_lossy(input)
                ),
                Ok(r) => panic!("accepted {:?}: {r:?}", String::from_utf8_lossy(input)),
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic fuzz: every prefix of many mangled requests.
        let seed = b"POST /v1/x?y HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut v = seed.to_vec();
            for _ in 0..3 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let i = (state as usize) % v.len();
                v[i] = (state >> 32) as u8;
            }
            for cut in [v.len() / 2, v.len()] {
                let _ = parse(&v[..cut]);
            }
        }
    }
}
