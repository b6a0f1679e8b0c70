//! Text detectors: email addresses, and the anchored secrets (JWTs, bearer
//! tokens, cloud and SaaS keys, PEM private keys) found from a literal prefix.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::detect::{Builtin, DetectorSet, Span, is_word};

fn span(start: usize, end: usize, b: Builtin) -> Span {
    Span {
        start,
        end,
        detector: b.id(),
    }
}

// ---- email ---------------------------------------------------------------

fn is_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

/// Every `@` (found with memchr) is expanded both ways. The domain needs a dot
/// and an alphabetic TLD of two or more letters, so `user@localhost`,
/// `user@10.0.0.1` and `5@3.50` are not addresses; quoted local parts and
/// internationalised (non-ASCII) domains are not matched.
pub(crate) fn scan_email(v: &[u8], spans: &mut Vec<Span>) {
    let mut from = 0;
    for at in memchr::memchr_iter(b'@', v) {
        if at < from {
            continue;
        }
        if let Some((s, e)) = email_at(v, at) {
            spans.push(span(s, e, Builtin::Email));
            from = e;
        }
    }
}

fn email_at(v: &[u8], at: usize) -> Option<(usize, usize)> {
    let mut s = at;
    while s > 0 && is_local(v[s - 1]) {
        s -= 1;
        if at - s > 64 {
            return None;
        }
    }
    while s < at && v[s] == b'.' {
        s += 1;
    }
    let local = &v[s..at];
    if local.is_empty() || local.ends_with(b".") || memchr::memmem::find(local, b"..").is_some() {
        return None;
    }
    let mut e = at + 1;
    while e < v.len() && is_domain(v[e]) {
        e += 1;
        if e - at > 254 {
            return None;
        }
    }
    while e > at + 1 && matches!(v[e - 1], b'.' | b'-') {
        e -= 1;
    }
    let domain = &v[at + 1..e];
    let mut labels = 0;
    let mut tld: &[u8] = &[];
    for label in domain.split(|&b| b == b'.') {
        if label.is_empty()
            || label.len() > 63
            || label[0] == b'-'
            || label[label.len() - 1] == b'-'
        {
            return None;
        }
        labels += 1;
        tld = label;
    }
    (labels >= 2 && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic)).then_some((s, e))
}

// ---- anchored tokens -----------------------------------------------------

/// Literal prefixes and the detector each one starts. `Bearer` is matched in
/// its three usual spellings rather than fully case-insensitively.
pub(crate) const ANCHORS: &[(&str, Builtin)] = &[
    ("AKIA", Builtin::AwsAccessKey),
    ("ASIA", Builtin::AwsAccessKey),
    ("AIza", Builtin::GcpApiKey),
    ("ghp_", Builtin::GithubToken),
    ("gho_", Builtin::GithubToken),
    ("ghu_", Builtin::GithubToken),
    ("ghs_", Builtin::GithubToken),
    ("ghr_", Builtin::GithubToken),
    ("github_pat_", Builtin::GithubToken),
    ("eyJ", Builtin::Jwt),
    ("-----BEGIN ", Builtin::PrivateKey),
    ("Bearer", Builtin::Bearer),
    ("bearer", Builtin::Bearer),
    ("BEARER", Builtin::Bearer),
    ("xox", Builtin::SlackToken),
];

/// The detectors found through [`ANCHORS`].
pub(crate) const ANCHORED: DetectorSet = DetectorSet(
    1 << Builtin::Jwt as u8
        | 1 << Builtin::Bearer as u8
        | 1 << Builtin::AwsAccessKey as u8
        | 1 << Builtin::GcpApiKey as u8
        | 1 << Builtin::GithubToken as u8
        | 1 << Builtin::SlackToken as u8
        | 1 << Builtin::PrivateKey as u8,
);

/// Whether a value may hold an anchor: every anchor contains one of these
/// byte triples. Branch-free over the whole value so the compiler vectorises
/// it; on clean text it replaces an Aho-Corasick pass that costs far more per
/// short value than it saves.
pub(crate) fn anchor_hint(v: &[u8]) -> bool {
    let n = v.len();
    if n < 3 {
        return false;
    }
    let mut hit = false;
    for chunk_start in (0..n - 2).step_by(64) {
        let end = (chunk_start + 64).min(n - 2);
        let a = &v[chunk_start..end];
        let b = &v[chunk_start + 1..end + 1];
        let c = &v[chunk_start + 2..end + 2];
        for ((&x, &y), &z) in a.iter().zip(b).zip(c) {
            let aws = (x == b'A')
                & (((y == b'K') | (y == b'S')) & (z == b'I') | (y == b'I') & (z == b'z'));
            let gh = (x == b'g')
                & ((y == b'h')
                    & ((z == b'p') | (z == b'o') | (z == b'u') | (z == b's') | (z == b'r'))
                    | (y == b'i') & (z == b't'));
            let jwt = (x == b'e') & (y == b'y') & (z == b'J');
            let pem = (x == b'-') & (y == b'-') & (z == b'-');
            let bearer = (x | 0x20 == b'r') & (y | 0x20 == b'e') & (z | 0x20 == b'r');
            let slack = (x == b'x') & (y == b'o') & (z == b'x');
            hit |= aws | gh | jwt | pem | bearer | slack;
        }
        if hit {
            return true;
        }
    }
    false
}

/// The anchor automaton, built once per policy.
#[derive(Clone, Debug)]
pub(crate) struct Anchors {
    ac: AhoCorasick,
}

impl Anchors {
    pub(crate) fn new() -> Result<Self, aho_corasick::BuildError> {
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .kind(Some(AhoCorasickKind::DFA))
            .build(ANCHORS.iter().map(|(p, _)| p))?;
        Ok(Anchors { ac })
    }

    pub(crate) fn scan(&self, v: &[u8], enabled: DetectorSet, spans: &mut Vec<Span>) {
        let mut covered = 0;
        for m in self.ac.find_iter(v) {
            let det = ANCHORS[m.pattern().as_usize()].1;
            if m.start() < covered || !enabled.has(det) {
                continue;
            }
            let (s, e) = (m.start(), m.end());
            let found = match det {
                Builtin::Jwt => jwt_at(v, s),
                Builtin::Bearer => bearer_at(v, s, e),
                Builtin::AwsAccessKey => aws_at(v, s),
                Builtin::GcpApiKey => gcp_at(v, s),
                Builtin::GithubToken => github_at(v, s, e),
                Builtin::SlackToken => slack_at(v, s, e),
                Builtin::PrivateKey => pem_at(v, s, e),
                _ => None,
            };
            if let Some((start, end)) = found {
                spans.push(span(start, end, det));
                covered = end;
            }
        }
    }
}

fn run_end(v: &[u8], mut i: usize, class: impl Fn(u8) -> bool) -> usize {
    while i < v.len() && class(v[i]) {
        i += 1;
    }
    i
}

fn preceded_by(v: &[u8], s: usize, class: impl Fn(u8) -> bool) -> bool {
    s > 0 && class(v[s - 1])
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// `header.payload.signature` in base64url (five segments for JWE). The
/// header must decode to a JSON object (`{"...}`), which the `eyJ` anchor
/// promises and random text does not deliver.
fn jwt_at(v: &[u8], s: usize) -> Option<(usize, usize)> {
    if preceded_by(v, s, |b| is_b64url(b) || b == b'.') {
        return None;
    }
    let h_end = run_end(v, s, is_b64url);
    if v.get(h_end) != Some(&b'.') {
        return None;
    }
    let p_end = run_end(v, h_end + 1, is_b64url);
    if p_end - (h_end + 1) < 2 || v.get(p_end) != Some(&b'.') {
        return None;
    }
    let mut end = run_end(v, p_end + 1, is_b64url);
    for _ in 0..2 {
        if v.get(end) == Some(&b'.') && v.get(end + 1).is_some_and(|&b| is_b64url(b)) {
            end = run_end(v, end + 1, is_b64url);
        }
    }
    header_is_json_object(&v[s..h_end]).then_some((s, end))
}

fn header_is_json_object(header: &[u8]) -> bool {
    let mut buf = [0u8; 768];
    if header.len() > 1024 {
        return true; // `eyJ` already promised `{"`; a huge header is still a token
    }
    match URL_SAFE_NO_PAD.decode_slice(header, &mut buf) {
        Ok(n) => {
            let json = buf[..n].trim_ascii_end();
            json.starts_with(b"{\"") && json.ends_with(b"}")
        }
        Err(_) => false,
    }
}

fn is_b64token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

/// `Bearer <token>` (RFC 6750 b64token). The span is the token only. To keep
/// prose out ("the bearer of bad news", "Bearer authentication"), the token
/// must be at least 16 characters and contain a digit, a token symbol, or a
/// capital after its first character.
fn bearer_at(v: &[u8], s: usize, e: usize) -> Option<(usize, usize)> {
    if preceded_by(v, s, is_word) {
        return None;
    }
    let t = run_end(v, e, |b| b == b' ');
    if t == e || t - e > 8 {
        return None;
    }
    let body_end = run_end(v, t, is_b64token);
    let token = &v[t..body_end];
    let end = run_end(v, body_end, |b| b == b'=');
    if token.len() < 16 || v.get(end).is_some_and(|&b| is_word(b)) {
        return None;
    }
    let shaped = token
        .iter()
        .any(|&b| b.is_ascii_digit() || !b.is_ascii_alphanumeric())
        || token[1..].iter().any(u8::is_ascii_uppercase);
    shaped.then_some((t, end))
}

/// `AKIA`/`ASIA` + 16 capitals or digits. Secret access keys (40 base64
/// characters with no prefix) are not matched: without a nearby key id they
/// are indistinguishable from any other 40-character token.
fn aws_at(v: &[u8], s: usize) -> Option<(usize, usize)> {
    let body = v.get(s + 4..s + 20)?;
    let ok = !preceded_by(v, s, |b| b.is_ascii_alphanumeric())
        && body
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && !v.get(s + 20).is_some_and(u8::is_ascii_alphanumeric);
    ok.then_some((s, s + 20))
}

/// `AIza` + 35 base64url characters.
fn gcp_at(v: &[u8], s: usize) -> Option<(usize, usize)> {
    let body = v.get(s + 4..s + 39)?;
    let ok = !preceded_by(v, s, is_b64url)
        && body.iter().all(|&b| is_b64url(b))
        && !v.get(s + 39).is_some_and(|&b| is_b64url(b));
    ok.then_some((s, s + 39))
}

/// `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_` + at least 36 alphanumerics, or
/// `github_pat_` + at least 22 of `[A-Za-z0-9_]`.
fn github_at(v: &[u8], s: usize, e: usize) -> Option<(usize, usize)> {
    if preceded_by(v, s, is_word) {
        return None;
    }
    let fine = e - s == "github_pat_".len();
    let end = if fine {
        run_end(v, e, is_word)
    } else {
        run_end(v, e, |b| b.is_ascii_alphanumeric())
    };
    let min = if fine { 22 } else { 36 };
    (end - e >= min && !v.get(end).is_some_and(|&b| is_word(b))).then_some((s, end))
}

/// `xoxa-`, `xoxb-`, `xoxp-`, `xoxr-`, `xoxs-` + at least 10 of `[A-Za-z0-9-]`.
fn slack_at(v: &[u8], s: usize, e: usize) -> Option<(usize, usize)> {
    if preceded_by(v, s, is_word) || !matches!(v.get(e), Some(b'a' | b'b' | b'p' | b'r' | b's')) {
        return None;
    }
    if v.get(e + 1) != Some(&b'-') {
        return None;
    }
    let end = run_end(v, e + 2, |b| b.is_ascii_alphanumeric() || b == b'-');
    (end - (e + 2) >= 10 && !v.get(end).is_some_and(|&b| is_word(b))).then_some((s, end))
}

/// `-----BEGIN [label ]PRIVATE KEY-----` through the matching `-----END ...-----`
/// line. A key whose END line is missing (a value cut short) is masked to the
/// end of the value: failing closed beats leaking the rest of a key.
fn pem_at(v: &[u8], s: usize, e: usize) -> Option<(usize, usize)> {
    const MARK: &[u8] = b"PRIVATE KEY";
    let window = &v[e..v.len().min(e + 64)];
    let k = memchr::memmem::find(window, MARK)?;
    if !window[..k]
        .iter()
        .all(|&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ')
    {
        return None;
    }
    let after = &window[k + MARK.len()..];
    let header_end = if after.starts_with(b"-----") {
        5
    } else if after.starts_with(b" BLOCK-----") {
        11
    } else {
        return None;
    };
    let body = e + k + MARK.len() + header_end;
    let Some(end_at) = memchr::memmem::find(&v[body..], b"-----END ") else {
        return Some((s, v.len()));
    };
    let tail = body + end_at + 9;
    match memchr::memmem::find(&v[tail..v.len().min(tail + 64)], b"-----") {
        Some(k) => Some((s, tail + k + 5)),
        None => Some((s, v.len())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn emails(v: &str) -> Vec<&str> {
        let mut spans = Vec::new();
        scan_email(v.as_bytes(), &mut spans);
        spans.iter().map(|s| &v[s.start..s.end]).collect()
    }

    fn anchored(v: &str) -> Vec<(Builtin, &str)> {
        let anchors = Anchors::new().unwrap();
        let mut spans = Vec::new();
        assert!(
            anchor_hint(v.as_bytes()),
            "hint must cover every anchor: {v}"
        );
        anchors.scan(v.as_bytes(), ANCHORED, &mut spans);
        spans
            .iter()
            .map(|s| (Builtin::ALL[s.detector.index()], &v[s.start..s.end]))
            .collect()
    }

    #[test]
    fn email_shapes() {
        assert_eq!(
            emails("mail john.doe+x@example.co.uk."),
            ["john.doe+x@example.co.uk"]
        );
        assert_eq!(emails("<a@b.io>, c_d@e-f.com"), ["a@b.io", "c_d@e-f.com"]);
        for bad in [
            "user@localhost",
            "@scope/pkg",
            "a..b@x.com",
            "5@3.50",
            "user@-x.com",
            "x@y.c1",
        ] {
            assert!(emails(bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn tokens() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
        assert_eq!(anchored(&format!("token={jwt};")), [(Builtin::Jwt, jwt)]);
        assert!(anchored("eyJunk.eyJunk.x").is_empty());
        assert_eq!(
            anchored("Authorization: Bearer abc123def456ghi789"),
            [(Builtin::Bearer, "abc123def456ghi789")]
        );
        assert!(anchored("the bearer of bad news, Bearer authentication").is_empty());
        assert_eq!(
            anchored("AKIAIOSFODNN7EXAMPLE"),
            [(Builtin::AwsAccessKey, "AKIAIOSFODNN7EXAMPLE")]
        );
        assert!(anchored("AKIAIOSFODNN7EXAMPL").is_empty());
        let gcp = "AIzaSyA1234567890abcdefghijklmnopqrstuv";
        assert_eq!(gcp.len(), 39);
        assert_eq!(anchored(gcp), [(Builtin::GcpApiKey, gcp)]);
        let gh = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
        assert_eq!(anchored(gh), [(Builtin::GithubToken, gh)]);
        assert!(anchored("ghp_short").is_empty());
        let slack = "xoxb-123456789012-abcdefABCDEF";
        assert_eq!(anchored(slack), [(Builtin::SlackToken, slack)]);
        assert!(anchored("xoxo hugs").is_empty());
    }

    #[test]
    fn pem_keys() {
        let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIabc\n-----END RSA PRIVATE KEY-----";
        assert_eq!(
            anchored(&format!("x {key} y")),
            [(Builtin::PrivateKey, key)]
        );
        let cut = "-----BEGIN PRIVATE KEY-----\nMIIab";
        assert_eq!(anchored(cut), [(Builtin::PrivateKey, cut)]);
        assert!(anchored("-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----").is_empty());
    }

    #[test]
    fn hint_is_quiet_on_clean_text() {
        for v in [
            "hello world",
            "2024-03-15 10:23:45",
            "550e8400-e29b-41d4-a716-446655440000",
        ] {
            assert!(!anchor_hint(v.as_bytes()), "{v}");
        }
        // Every anchor must light the hint, wherever it sits in a long value.
        for (a, _) in ANCHORS {
            let v = format!("{}{a}", "z".repeat(100));
            assert!(anchor_hint(v.as_bytes()), "{a}");
        }
    }
}
