//! A request's query string as the upstream will read it, for rules on
//! query parameters. `application/x-www-form-urlencoded` rules (what Go's
//! `url.ParseQuery`, Python's `parse_qsl` and most frameworks apply): pairs
//! split on `&`, name and value on the first `=`, `+` is a space, then
//! percent-decoding. A query the gateway cannot read the one way is
//! refused, not guessed at: a malformed percent-encoding, a `;` separator
//! (some servers split on it, others do not), a name or value that does not
//! decode to UTF-8, or more pairs than the cap.

/// Most pairs read from one query.
pub const MAX_QUERY_PAIRS: usize = 256;

/// Why a query was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("a malformed percent-encoding in the query")]
    BadPercent,
    #[error("a ';' in the query (servers disagree on whether it separates)")]
    Semicolon,
    #[error("a query name or value that is not UTF-8")]
    NotUtf8,
    #[error("more than {MAX_QUERY_PAIRS} query parameters")]
    TooMany,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// One form-encoded component decoded (`+` → space, `%XX` → byte).
pub fn decode_component(s: &str) -> Result<String, QueryError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let (Some(h), Some(l)) = (
                    b.get(i + 1).copied().and_then(hex),
                    b.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(QueryError::BadPercent);
                };
                out.push(h << 4 | l);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| QueryError::NotUtf8)
}

/// The decoded `(name, value)` pairs of a query (without its `?`), in
/// order; empty pairs (`a=1&&b=2`) are skipped, a pair without `=` has an
/// empty value.
pub fn parse_query(query: &str) -> Result<Vec<(String, String)>, QueryError> {
    if query.contains(';') {
        return Err(QueryError::Semicolon);
    }
    let mut pairs = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        if pairs.len() == MAX_QUERY_PAIRS {
            return Err(QueryError::TooMany);
        }
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        pairs.push((decode_component(name)?, decode_component(value)?));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn q(s: &str) -> Vec<(String, String)> {
        parse_query(s).unwrap()
    }

    #[test]
    fn pairs_are_split_and_decoded_as_forms_are() {
        assert_eq!(
            q("command=rm&command=-rf&command=%2F&stdout=true"),
            [
                ("command", "rm"),
                ("command", "-rf"),
                ("command", "/"),
                ("stdout", "true")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert_eq!(q("a+b=c+d%2Be"), [("a b".to_string(), "c d+e".to_string())]);
        assert_eq!(
            q("flag&&x="),
            [("flag".into(), String::new()), ("x".into(), String::new())]
        );
        assert_eq!(q("k=a=b"), [("k".to_string(), "a=b".to_string())]);
        assert_eq!(q("%63md=x"), [("cmd".to_string(), "x".to_string())]);
        assert!(q("").is_empty());
    }

    #[test]
    fn what_servers_read_differently_is_refused() {
        assert_eq!(parse_query("a=%zz"), Err(QueryError::BadPercent));
        assert_eq!(parse_query("a=%4"), Err(QueryError::BadPercent));
        assert_eq!(parse_query("a=1;b=2"), Err(QueryError::Semicolon));
        assert_eq!(parse_query("a=%ff"), Err(QueryError::NotUtf8));
        let many = vec!["a=1"; MAX_QUERY_PAIRS + 1].join("&");
        assert_eq!(parse_query(&many), Err(QueryError::TooMany));
        let enough = vec!["a=1"; MAX_QUERY_PAIRS].join("&");
        assert_eq!(parse_query(&enough).unwrap().len(), MAX_QUERY_PAIRS);
    }
}
