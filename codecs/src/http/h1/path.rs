//! Whether a request path is in the one form a gateway's path rules can
//! judge safely. Servers and frameworks normalise paths differently before
//! routing (nginx merges `//` and resolves `..`, decodes `%75` to `u`;
//! Tomcat and Spring drop `;params` from segments; IIS takes `\` for `/`),
//! so a rule matched against the raw path can be walked around by any of
//! them: `DELETE /api//users/1` is `DELETE /api/users/1` to nginx. Like
//! request smuggling, such a path is refused, not normalised — the gateway
//! would have to guess which normalisation the upstream applies.

/// Why a path is not in normal form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path does not start with '/'")]
    NotAbsolute,
    #[error("an empty path segment ('//')")]
    EmptySegment,
    #[error("a '.' or '..' path segment")]
    DotSegment,
    #[error("a malformed percent-encoding")]
    BadPercent,
    #[error("a percent-encoded unreserved character, '/', '\\\\', '.' or ';'")]
    NeedlessPercent,
    #[error("a backslash in the path")]
    Backslash,
    #[error("a ';' path parameter")]
    Semicolon,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Checks `path` (without its query) is in normal form: absolute, no empty
/// or dot segments (also percent-encoded ones), no percent-encoding of a
/// character that needs none or that a server may read as a separator, no
/// backslash, no `;` parameters. `/` alone is fine.
pub fn check_normal_path(path: &str) -> Result<(), PathError> {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => return Err(PathError::Backslash),
            b';' => return Err(PathError::Semicolon),
            b'%' => {
                let (Some(h), Some(l)) = (
                    b.get(i + 1).copied().and_then(hex),
                    b.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(PathError::BadPercent);
                };
                let c = h << 4 | l;
                if c.is_ascii_alphanumeric() || b"-._~/\\;".contains(&c) {
                    return Err(PathError::NeedlessPercent);
                }
                i += 3;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    // Segments after the leading '/': none empty (but a trailing '/' is a
    // resource of its own), none '.' or '..'.
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    for (n, s) in segments.iter().enumerate() {
        if s.is_empty() && n != last {
            return Err(PathError::EmptySegment);
        }
        if *s == "." || *s == ".." {
            return Err(PathError::DotSegment);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_paths_pass() {
        for p in [
            "/",
            "/api/users/1",
            "/api/users/",
            "/a/b.c/..d/x..",
            "/files/a%20b",
            "/q/%C3%A9t%C3%A9",
            "/p/%25done",
            "/p/%3F",
        ] {
            assert_eq!(check_normal_path(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn paths_a_server_would_read_otherwise_are_refused() {
        use PathError::*;
        for (p, why) in [
            ("api/users", NotAbsolute),
            ("", NotAbsolute),
            ("//api/users/1", EmptySegment),
            ("/api//users/1", EmptySegment),
            ("/api/./users/1", DotSegment),
            ("/api/x/../users/1", DotSegment),
            ("/..", DotSegment),
            ("/api/users/.", DotSegment),
            ("/api/%75sers/1", NeedlessPercent),
            ("/api/users%2F1", NeedlessPercent),
            ("/api/users%2f1", NeedlessPercent),
            ("/api/%2e%2e/x", NeedlessPercent),
            ("/api/%5Cusers", NeedlessPercent),
            ("/api/%3Busers", NeedlessPercent),
            ("/api/%7e", NeedlessPercent),
            ("/api/%4", BadPercent),
            ("/api/%zz", BadPercent),
            ("/api/%", BadPercent),
            ("/api\\users", Backslash),
            ("/api;jsessionid=1/users", Semicolon),
            ("/api/users;x", Semicolon),
        ] {
            assert_eq!(check_normal_path(p), Err(why), "{p}");
        }
    }
}
