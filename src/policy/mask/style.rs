//! Masking styles: how a matched value (or span of one) is rewritten.

use ring::hmac;

/// Replacement used by `redact` when the rule sets none, and for `null`
/// matches inside free text, where there is no NULL to return.
pub const DEFAULT_REPLACEMENT: &[u8] = b"****";

/// Prefix of `hash` output, so a masked value is recognisable as one.
pub const HASH_PREFIX: &[u8] = b"h:";

/// Hex characters of the HMAC kept after the prefix (64 bits: collisions are
/// negligible for join keys, and the full tag would only add bytes).
pub const HASH_HEX_LEN: usize = 16;

/// A compiled masking style.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Style {
    /// Replace with fixed text; with `preserve_length`, every byte becomes `*`.
    Redact {
        replacement: Box<[u8]>,
        preserve_length: bool,
    },
    /// Keep the last `keep` significant characters; see [`partial_in_place`].
    Partial { keep: usize },
    /// `h:` + the first 16 hex digits of HMAC-SHA256(key, value).
    Hash,
    /// The whole value becomes SQL NULL.
    Null,
}

impl Style {
    /// Whether the style can rewrite a value in place on the frame buffer.
    pub fn keeps_length(&self) -> bool {
        matches!(
            self,
            Style::Partial { .. }
                | Style::Redact {
                    preserve_length: true,
                    ..
                }
        )
    }

    /// Rewrites `value` in place; only for styles that [`keep length`](Self::keeps_length).
    pub(crate) fn apply_in_place(&self, value: &mut [u8]) {
        match self {
            Style::Partial { keep } => partial_in_place(value, *keep),
            _ => value.fill(b'*'),
        }
    }

    /// Appends the masked form of `value` to `out`. `Null` is written as the
    /// default replacement: callers that can return NULL check for it first.
    pub(crate) fn apply(&self, value: &[u8], key: Option<&hmac::Key>, out: &mut Vec<u8>) {
        match self {
            Style::Redact {
                preserve_length: true,
                ..
            } => {
                out.resize(out.len() + value.len(), b'*');
            }
            Style::Redact { replacement, .. } => out.extend_from_slice(replacement),
            Style::Partial { keep } => {
                let at = out.len();
                out.extend_from_slice(value);
                partial_in_place(&mut out[at..], *keep);
            }
            // Policy compilation refuses a hash rule without a key; if one
            // slipped through, fail closed rather than leak the value.
            Style::Hash => match key {
                Some(key) => hash_into(key, value, out),
                None => out.extend_from_slice(DEFAULT_REPLACEMENT),
            },
            Style::Null => out.extend_from_slice(DEFAULT_REPLACEMENT),
        }
    }
}

/// Separators stay visible and do not count: `4111-1111-1111-1111` keeps
/// its shape as `****-****-****-1111`.
fn is_separator(b: u8) -> bool {
    b.is_ascii_punctuation() || b.is_ascii_whitespace()
}

/// Keeps the last `keep` significant characters (UTF-8 characters, not
/// bytes; separators do not count) and turns every other significant byte
/// into `*`, so the value keeps its byte length. At most half of the
/// significant characters are ever kept, so a short value is never shown
/// whole.
pub(crate) fn partial_in_place(value: &mut [u8], keep: usize) {
    let significant = value
        .iter()
        .filter(|&&b| !is_separator(b) && b & 0xC0 != 0x80)
        .count();
    let keep = keep.min(significant / 2);
    let mut kept = 0;
    let mut cut = value.len();
    while cut > 0 && kept < keep {
        cut -= 1;
        let b = value[cut];
        if !is_separator(b) && b & 0xC0 != 0x80 {
            kept += 1;
        }
    }
    for b in &mut value[..cut] {
        if !is_separator(*b) {
            *b = b'*';
        }
    }
}

fn hash_into(key: &hmac::Key, value: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let tag = hmac::sign(key, value);
    out.extend_from_slice(HASH_PREFIX);
    for &b in &tag.as_ref()[..HASH_HEX_LEN / 2] {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0xF)]);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn partial(v: &str, keep: usize) -> String {
        let mut b = v.as_bytes().to_vec();
        partial_in_place(&mut b, keep);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn partial_keeps_separators_and_tail() {
        assert_eq!(partial("4111-1111-1111-1234", 4), "****-****-****-1234");
        assert_eq!(partial("123-45-6789", 4), "***-**-6789");
        assert_eq!(
            partial("john@example.com", 4),
            "****@******e.com",
            "separators do not count"
        );
        assert_eq!(partial("abcd", 4), "**cd", "never more than half");
        assert_eq!(partial("secret", 0), "******");
    }

    #[test]
    fn partial_counts_utf8_characters() {
        let mut b = "żółw123".as_bytes().to_vec();
        let len = b.len();
        partial_in_place(&mut b, 3);
        assert_eq!(b.len(), len);
        assert!(b.ends_with(b"123") && b[..len - 3].iter().all(|&x| x == b'*'));
        let mut b = "abcdeż".as_bytes().to_vec();
        partial_in_place(&mut b, 1);
        assert_eq!(String::from_utf8(b).unwrap(), "*****ż");
    }

    #[test]
    fn hash_is_keyed_and_deterministic() {
        let k1 = hmac::Key::new(hmac::HMAC_SHA256, b"0123456789abcdef");
        let k2 = hmac::Key::new(hmac::HMAC_SHA256, b"fedcba9876543210");
        let run = |k: &hmac::Key, v: &[u8]| {
            let mut out = Vec::new();
            Style::Hash.apply(v, Some(k), &mut out);
            out
        };
        let a = run(&k1, b"alice@example.com");
        assert_eq!(a.len(), HASH_PREFIX.len() + HASH_HEX_LEN);
        assert!(a.starts_with(HASH_PREFIX));
        assert_eq!(a, run(&k1, b"alice@example.com"));
        assert_ne!(a, run(&k1, b"bob@example.com"));
        assert_ne!(a, run(&k2, b"alice@example.com"));
        // First 8 bytes of HMAC-SHA256("0123456789abcdef", "alice@example.com").
        let tag = hmac::sign(&k1, b"alice@example.com");
        let hex: String = tag.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(&a[2..], hex.as_bytes());
    }

    #[test]
    fn redact_and_length() {
        let style = Style::Redact {
            replacement: b"[x]".to_vec().into(),
            preserve_length: false,
        };
        let mut out = b"pre ".to_vec();
        style.apply(b"secret", None, &mut out);
        assert_eq!(out, b"pre [x]");
        assert!(!style.keeps_length());
        let style = Style::Redact {
            replacement: b"[x]".to_vec().into(),
            preserve_length: true,
        };
        let mut v = b"secret".to_vec();
        style.apply_in_place(&mut v);
        assert_eq!(v, b"******");
        let mut out = Vec::new();
        Style::Hash.apply(b"v", None, &mut out);
        assert_eq!(out, DEFAULT_REPLACEMENT, "no key fails closed");
    }
}
