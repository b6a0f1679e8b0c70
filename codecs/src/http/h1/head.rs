//! Request and response heads (RFC 9112 §2-§6): the start line, the field
//! lines, and the framing facts a relay needs before it reads a body.

use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};

use super::fields::{Fields, SectionScan, parse_field_lines};
use super::{H1Error, Limits, is_token, list_elements, trim_ows};

/// How the body after a head is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body: the next bytes are the next message.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked: read it with a [`super::ChunkedDecoder`].
    Chunked,
    /// A response body that ends when the upstream closes the connection.
    CloseDelimited,
    /// Not HTTP any more: a 101 Switching Protocols or a 2xx answer to
    /// CONNECT; the bytes after the head belong to the new protocol.
    Tunnel,
}

/// The four request-target forms of RFC 9112 §3.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`.
    Origin,
    /// `http://authority/path?query` (what a client sends to a forward
    /// proxy). Accepted only when Host names the same authority and it has
    /// no userinfo, so a router reading Host and one reading the target agree.
    Absolute,
    /// `host:port`, CONNECT only.
    Authority,
    /// `*`, OPTIONS only.
    Asterisk,
}

/// A request head. Every accessor reads spans into one `Bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    raw: Bytes,
    method: Range<usize>,
    target: Range<usize>,
    path: Range<usize>,
    query: Option<Range<usize>>,
    authority: Option<Range<usize>>,
    form: TargetForm,
    minor_version: u8,
    fields: Fields,
    framing: BodyFraming,
    expect_continue: bool,
    keep_alive: bool,
    upgrade: bool,
}

impl RequestHead {
    fn text(&self, r: &Range<usize>) -> &str {
        // The start line was checked to be visible ASCII.
        std::str::from_utf8(&self.raw[r.clone()]).unwrap_or("")
    }

    /// The whole head as received, through the empty line's CRLF.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    pub fn method(&self) -> &str {
        self.text(&self.method)
    }

    /// The request-target as sent.
    pub fn target(&self) -> &str {
        self.text(&self.target)
    }

    /// The path part of an origin- or absolute-form target (not decoded;
    /// empty for `http://host` with no path, for CONNECT and for `*`).
    pub fn path(&self) -> &str {
        self.text(&self.path)
    }

    /// The query after `?`, not decoded.
    pub fn query(&self) -> Option<&str> {
        self.query.as_ref().map(|q| self.text(q))
    }

    /// The authority of an absolute- or authority-form target.
    pub fn authority(&self) -> Option<&str> {
        self.authority.as_ref().map(|a| self.text(a))
    }

    /// The target to send an origin server: the target itself in origin-,
    /// authority- and asterisk-form; path and query of an absolute-form one
    /// (`/` when it has no path).
    pub fn origin_form(&self) -> std::borrow::Cow<'_, str> {
        if self.form != TargetForm::Absolute {
            return self.target().into();
        }
        let path = if self.path().is_empty() {
            "/"
        } else {
            self.path()
        };
        match self.query() {
            Some(q) => format!("{path}?{q}").into(),
            None => path.into(),
        }
    }

    pub fn target_form(&self) -> TargetForm {
        self.form
    }

    /// `0` for HTTP/1.0, `1` for HTTP/1.1.
    pub fn minor_version(&self) -> u8 {
        self.minor_version
    }

    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    /// The Host value (at most one was accepted).
    pub fn host(&self) -> Option<&[u8]> {
        self.fields.get("host")
    }

    /// How the request body is delimited: `None`, `Length` or `Chunked`.
    pub fn framing(&self) -> BodyFraming {
        self.framing
    }

    /// `Expect: 100-continue` was sent: the client may wait for a `100
    /// Continue` (or the final answer) before it sends the body.
    pub fn expect_continue(&self) -> bool {
        self.expect_continue
    }

    /// Whether the client may send another request on this connection
    /// (HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
    /// `Connection: keep-alive`, honoured because the gateway is the origin
    /// server as far as the client can tell).
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// The `Upgrade` value when `Connection` lists `upgrade` in an HTTP/1.1
    /// request (RFC 9110 §7.8 has HTTP/1.0 upgrades ignored).
    pub fn upgrade(&self) -> Option<&[u8]> {
        if self.upgrade {
            self.fields.get("upgrade")
        } else {
            None
        }
    }
}

/// A response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    raw: Bytes,
    minor_version: u8,
    status: u16,
    reason: Range<usize>,
    fields: Fields,
    content_length: Option<u64>,
    chunked: bool,
    coded: bool,
    close: bool,
    keep_alive_token: bool,
}

impl ResponseHead {
    /// The whole head as received, through the empty line's CRLF.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    pub fn minor_version(&self) -> u8 {
        self.minor_version
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase as bytes (obs-text allowed; a client ignores it).
    pub fn reason(&self) -> &[u8] {
        &self.raw[self.reason.clone()]
    }

    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    /// An interim answer (1xx other than 101): the final one follows.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }

    /// Transfer codings other than the final `chunked` (`gzip, chunked`):
    /// the decoded chunks are still encoded.
    pub fn transfer_coded(&self) -> bool {
        self.coded
    }

    /// How this response's body is delimited, given the method of the
    /// request it answers (RFC 9112 §6.3, rules 1-7 for responses).
    pub fn framing(&self, request_method: &str) -> BodyFraming {
        let s = self.status;
        if s == 101 || (request_method == "CONNECT" && (200..300).contains(&s)) {
            return BodyFraming::Tunnel;
        }
        if request_method == "HEAD" || (100..200).contains(&s) || s == 204 || s == 304 {
            return BodyFraming::None;
        }
        if self.chunked {
            return BodyFraming::Chunked;
        }
        match self.content_length {
            Some(n) => BodyFraming::Length(n),
            None => BodyFraming::CloseDelimited,
        }
    }

    /// Whether the upstream connection can carry another request after this
    /// response's body.
    pub fn keep_alive(&self, request_method: &str) -> bool {
        match self.framing(request_method) {
            BodyFraming::CloseDelimited | BodyFraming::Tunnel => false,
            _ if self.close => false,
            _ => self.minor_version == 1 || self.keep_alive_token,
        }
    }
}

/// Parses the heads one peer sends, remembering how far an incomplete head
/// was scanned so that a head trickling in over many reads is scanned once.
/// Keep one per connection and direction; between calls the buffer may only
/// grow at the back until a head comes out.
#[derive(Debug, Clone)]
pub struct HeadParser {
    limits: Limits,
    scan: SectionScan,
}

impl HeadParser {
    pub fn new(limits: &Limits) -> HeadParser {
        HeadParser {
            limits: *limits,
            scan: SectionScan::default(),
        }
    }

    /// [`parse_request_head`], resuming the scan where the last call left it.
    pub fn request(&mut self, buf: &mut BytesMut) -> Result<Option<RequestHead>, H1Error> {
        request_head(buf, &self.limits, &mut self.scan)
    }

    /// [`parse_response_head`], resuming the scan where the last call left it.
    pub fn response(&mut self, buf: &mut BytesMut) -> Result<Option<ResponseHead>, H1Error> {
        response_head(buf, &self.limits, &mut self.scan)
    }
}

/// Cut one request head off the front of `buf`; the body (if any) stays in
/// `buf`. `Ok(None)`: not complete yet, read more and call again (a
/// [`HeadParser`] does not rescan what it has seen). Empty lines before the
/// request line are consumed (RFC 9112 §2.2).
pub fn parse_request_head(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<RequestHead>, H1Error> {
    request_head(buf, limits, &mut SectionScan::default())
}

/// Cut one response head off the front of `buf`; the body stays in `buf`.
pub fn parse_response_head(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<ResponseHead>, H1Error> {
    response_head(buf, limits, &mut SectionScan::default())
}

fn request_head(
    buf: &mut BytesMut,
    limits: &Limits,
    scan: &mut SectionScan,
) -> Result<Option<RequestHead>, H1Error> {
    if scan.at_start() {
        while buf.starts_with(b"\r\n") {
            buf.advance(2);
        }
        if buf.first() == Some(&b'\n') {
            return Err(H1Error::BareLf { line: 1 });
        }
        if buf[..] == b"\r"[..] {
            // Maybe an empty line to skip: do not start scanning yet.
            return Ok(None);
        }
    }
    let too_large = H1Error::HeadTooLarge {
        max: limits.max_head,
    };
    let Some(len) = scan.find_end(buf, limits.max_head, 1, limits.max_headers, too_large)? else {
        return Ok(None);
    };
    let raw = buf.split_to(len).freeze();
    let line_end = memchr::memchr(b'\n', &raw).map_or(0, |i| i.saturating_sub(1));
    let line = parse_request_line(&raw[..line_end], limits)?;
    let fields = Fields::new(
        raw.clone(),
        parse_field_lines(&raw, line_end + 2, len - 2, 2)?,
    );
    let facts = request_facts(&fields, &raw, &line)?;
    Ok(Some(RequestHead {
        raw,
        method: line.method,
        target: line.target,
        path: line.path,
        query: line.query,
        authority: line.authority,
        form: line.form,
        minor_version: line.minor_version,
        fields,
        framing: facts.framing,
        expect_continue: facts.expect_continue,
        keep_alive: facts.keep_alive,
        upgrade: facts.upgrade,
    }))
}

fn response_head(
    buf: &mut BytesMut,
    limits: &Limits,
    scan: &mut SectionScan,
) -> Result<Option<ResponseHead>, H1Error> {
    let too_large = H1Error::HeadTooLarge {
        max: limits.max_head,
    };
    let Some(len) = scan.find_end(buf, limits.max_head, 1, limits.max_headers, too_large)? else {
        return Ok(None);
    };
    let raw = buf.split_to(len).freeze();
    let line_end = memchr::memchr(b'\n', &raw).map_or(0, |i| i.saturating_sub(1));
    let (minor_version, status, reason) = parse_status_line(&raw[..line_end])?;
    let fields = Fields::new(
        raw.clone(),
        parse_field_lines(&raw, line_end + 2, len - 2, 2)?,
    );
    let content_length = content_length(&fields)?;
    let te = transfer_encoding(&fields, minor_version, content_length, false)?;
    let (close, keep_alive_token, _) = connection_tokens(&fields)?;
    Ok(Some(ResponseHead {
        raw,
        minor_version,
        status,
        reason,
        fields,
        content_length,
        chunked: te.is_some(),
        coded: te == Some(true),
        close,
        keep_alive_token,
    }))
}

struct RequestLine {
    method: Range<usize>,
    target: Range<usize>,
    path: Range<usize>,
    query: Option<Range<usize>>,
    authority: Option<Range<usize>>,
    form: TargetForm,
    minor_version: u8,
}

/// `method SP request-target SP HTTP-version`, single spaces only.
fn parse_request_line(line: &[u8], limits: &Limits) -> Result<RequestLine, H1Error> {
    if memchr::memchr(b'\r', line).is_some() {
        return Err(H1Error::BareCr { line: 1 });
    }
    let sp1 = memchr::memchr(b' ', line).ok_or(H1Error::BadRequestLine)?;
    let sp2 = memchr::memrchr(b' ', line).ok_or(H1Error::BadRequestLine)?;
    if sp2 <= sp1 + 1 || !is_token(&line[..sp1]) {
        return Err(H1Error::BadRequestLine);
    }
    let minor_version = parse_version(&line[sp2 + 1..], H1Error::BadRequestLine)?;
    let target = sp1 + 1..sp2;
    if target.len() > limits.max_target {
        return Err(H1Error::TargetTooLong {
            max: limits.max_target,
        });
    }
    let t = &line[target.clone()];
    if t.contains(&b' ') {
        return Err(H1Error::BadRequestLine);
    }
    if !t.iter().all(|&b| (0x21..=0x7e).contains(&b)) || t.contains(&b'#') {
        return Err(H1Error::BadTarget);
    }
    let (form, authority, path, query) = split_target(&line[..sp1], t, target.start)?;
    Ok(RequestLine {
        method: 0..sp1,
        target,
        path,
        query,
        authority,
        form,
        minor_version,
    })
}

type TargetParts = (
    TargetForm,
    Option<Range<usize>>,
    Range<usize>,
    Option<Range<usize>>,
);

/// Classify the target and split it; `at` is its offset in the head.
fn split_target(method: &[u8], t: &[u8], at: usize) -> Result<TargetParts, H1Error> {
    let end = at + t.len();
    if method == b"CONNECT" {
        // host ":" port, nothing else.
        let colon = memchr::memrchr(b':', t).ok_or(H1Error::BadTarget)?;
        let port = &t[colon + 1..];
        if colon == 0 || port.is_empty() || !port.iter().all(u8::is_ascii_digit) {
            return Err(H1Error::BadTarget);
        }
        if !t.iter().all(|&b| is_host_byte(b)) {
            return Err(H1Error::BadTarget);
        }
        return Ok((TargetForm::Authority, Some(at..end), end..end, None));
    }
    if t == b"*" {
        if method != b"OPTIONS" {
            return Err(H1Error::BadTarget);
        }
        return Ok((TargetForm::Asterisk, None, end..end, None));
    }
    let (form, authority, path_start) = if t.first() == Some(&b'/') {
        (TargetForm::Origin, None, at)
    } else {
        let sep = memchr::memmem::find(t, b"://").ok_or(H1Error::BadTarget)?;
        let scheme = &t[..sep];
        if !scheme.eq_ignore_ascii_case(b"http") && !scheme.eq_ignore_ascii_case(b"https") {
            return Err(H1Error::BadTarget);
        }
        let rest = &t[sep + 3..];
        let alen = rest
            .iter()
            .position(|&b| b == b'/' || b == b'?')
            .unwrap_or(rest.len());
        let auth = &rest[..alen];
        if auth.is_empty() || auth.contains(&b'@') || !auth.iter().all(|&b| is_host_byte(b)) {
            return Err(H1Error::BadTarget);
        }
        let a = at + sep + 3;
        (TargetForm::Absolute, Some(a..a + alen), a + alen)
    };
    let rel = &t[path_start - at..];
    Ok(match memchr::memchr(b'?', rel) {
        Some(q) => (
            form,
            authority,
            path_start..path_start + q,
            Some(path_start + q + 1..end),
        ),
        None => (form, authority, path_start..end, None),
    })
}

/// `HTTP-version SP 3DIGIT [SP reason-phrase]`.
fn parse_status_line(line: &[u8]) -> Result<(u8, u16, Range<usize>), H1Error> {
    if memchr::memchr(b'\r', line).is_some() {
        return Err(H1Error::BareCr { line: 1 });
    }
    if line.len() < 12 || line[8] != b' ' {
        return Err(H1Error::BadStatusLine);
    }
    let minor = parse_version(&line[..8], H1Error::BadStatusLine)?;
    let code = &line[9..12];
    if !code.iter().all(u8::is_ascii_digit) {
        return Err(H1Error::BadStatusLine);
    }
    let status = code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    if !(100..=599).contains(&status) {
        return Err(H1Error::BadStatusLine);
    }
    let reason = match &line[12..] {
        [] => 12..12,
        [b' ', r @ ..]
            if r.iter()
                .all(|&b| crate::http::is_value_byte(b) && b != 0x7f) =>
        {
            13..line.len()
        }
        _ => return Err(H1Error::BadStatusLine),
    };
    Ok((minor, status, reason))
}

/// `HTTP/1.1` → 1, `HTTP/1.0` → 0; another `HTTP/d.d` is unsupported (505),
/// anything else is `malformed`.
fn parse_version(v: &[u8], malformed: H1Error) -> Result<u8, H1Error> {
    match v {
        b"HTTP/1.1" => Ok(1),
        b"HTTP/1.0" => Ok(0),
        [b'H', b'T', b'T', b'P', b'/', a, b'.', b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            Err(H1Error::UnsupportedVersion)
        }
        _ => Err(malformed),
    }
}

/// A byte of `uri-host [":" port]`: reg-name, IP-literal and port characters.
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:%[]".contains(&b)
}

struct RequestFacts {
    framing: BodyFraming,
    expect_continue: bool,
    keep_alive: bool,
    upgrade: bool,
}

fn request_facts(fields: &Fields, raw: &[u8], line: &RequestLine) -> Result<RequestFacts, H1Error> {
    check_host(fields, raw, line)?;
    let content_length = content_length(fields)?;
    let chunked = transfer_encoding(fields, line.minor_version, content_length, true)?.is_some();
    let (close, keep_alive_token, upgrade) = connection_tokens(fields)?;
    let mut expect_continue = false;
    for v in fields.get_all("expect") {
        if !v.eq_ignore_ascii_case(b"100-continue") {
            return Err(H1Error::UnsupportedExpectation);
        }
        // RFC 9110 §10.1.1: ignored in an HTTP/1.0 request.
        expect_continue = line.minor_version == 1;
    }
    let framing = match (chunked, content_length) {
        (true, _) => BodyFraming::Chunked,
        (false, Some(n)) => BodyFraming::Length(n),
        (false, None) => BodyFraming::None,
    };
    let keep_alive = !close && (line.minor_version == 1 || keep_alive_token);
    Ok(RequestFacts {
        framing,
        expect_continue,
        keep_alive,
        upgrade: upgrade && line.minor_version == 1,
    })
}

/// One Host in HTTP/1.1 (at most one in 1.0), made of host bytes, and the
/// same authority as an absolute-form target.
fn check_host(fields: &Fields, raw: &[u8], line: &RequestLine) -> Result<(), H1Error> {
    let mut hosts = fields.get_all("host");
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(H1Error::DuplicateHost);
    }
    match host {
        None if line.minor_version == 1 => Err(H1Error::MissingHost),
        None => Ok(()),
        Some(h) if !h.iter().all(|&b| is_host_byte(b)) => Err(H1Error::BadHost),
        Some(h) => match (&line.form, &line.authority) {
            (TargetForm::Absolute, Some(a)) if !raw[a.clone()].eq_ignore_ascii_case(h) => {
                Err(H1Error::HostMismatch)
            }
            _ => Ok(()),
        },
    }
}

/// Every Content-Length value (lines and list elements) must be the same
/// digits (RFC 9110 §8.6); 19 digits always fit a u64.
fn content_length(fields: &Fields) -> Result<Option<u64>, H1Error> {
    let mut found = None;
    for v in fields.get_all("content-length") {
        for e in v.split(|&b| b == b',').map(trim_ows) {
            if e.is_empty() || e.len() > 19 || !e.iter().all(u8::is_ascii_digit) {
                return Err(H1Error::BadContentLength);
            }
            let n = e.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
            match found {
                Some(m) if m != n => return Err(H1Error::ConflictingContentLength),
                _ => found = Some(n),
            }
        }
    }
    Ok(found)
}

/// `None`: no Transfer-Encoding. `Some(coded)`: chunked is the final coding,
/// `coded` when other codings precede it (responses only).
fn transfer_encoding(
    fields: &Fields,
    minor_version: u8,
    content_length: Option<u64>,
    request: bool,
) -> Result<Option<bool>, H1Error> {
    let mut present = false;
    let (mut chunked, mut other) = (false, false);
    for v in fields.get_all("transfer-encoding") {
        present = true;
        for coding in list_elements(v) {
            // Nothing may follow chunked (RFC 9112 §6.1), not even chunked.
            if chunked || !is_token(coding) {
                return Err(H1Error::BadTransferEncoding);
            }
            if coding.eq_ignore_ascii_case(b"chunked") {
                chunked = true;
            } else {
                other = true;
            }
        }
    }
    if !present {
        return Ok(None);
    }
    if content_length.is_some() {
        return Err(H1Error::LengthWithTransferEncoding);
    }
    if minor_version == 0 {
        return Err(H1Error::BadTransferEncoding);
    }
    if request && other {
        return Err(H1Error::UnsupportedTransferCoding);
    }
    if !chunked {
        return Err(H1Error::BadTransferEncoding);
    }
    Ok(Some(other))
}

/// (close, keep-alive, upgrade) from the Connection tokens.
fn connection_tokens(fields: &Fields) -> Result<(bool, bool, bool), H1Error> {
    let (mut close, mut keep_alive, mut upgrade) = (false, false, false);
    for t in fields.get_all("connection").flat_map(list_elements) {
        if !is_token(t) {
            return Err(H1Error::BadConnection);
        }
        close |= t.eq_ignore_ascii_case(b"close");
        keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
        upgrade |= t.eq_ignore_ascii_case(b"upgrade");
    }
    Ok((close, keep_alive, upgrade))
}
