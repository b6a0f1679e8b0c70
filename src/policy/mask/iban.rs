//! IBAN detection: registry lengths per country and the ISO 7064 mod-97 check.

use super::detect::is_word;

fn digit_at(v: &[u8], i: usize) -> bool {
    v.get(i).is_some_and(u8::is_ascii_digit)
}

/// Digits at `s` right after two capitals that start a word: `DE89...`.
pub(crate) fn iban_trigger(v: &[u8], s: usize) -> bool {
    s >= 2
        && v[s - 1].is_ascii_uppercase()
        && v[s - 2].is_ascii_uppercase()
        && digit_at(v, s + 1)
        && (s == 2 || !is_word(v[s - 3]))
}

/// IBAN lengths by country (the SWIFT IBAN registry). Countries outside the
/// table are not matched: without a length, mod-97 alone lets one in 97
/// random capital-prefixed codes through.
const IBAN_LENGTHS: &[([u8; 2], u8)] = &[
    (*b"AD", 24),
    (*b"AE", 23),
    (*b"AL", 28),
    (*b"AT", 20),
    (*b"AZ", 28),
    (*b"BA", 20),
    (*b"BE", 16),
    (*b"BG", 22),
    (*b"BH", 22),
    (*b"BR", 29),
    (*b"BY", 28),
    (*b"CH", 21),
    (*b"CR", 22),
    (*b"CY", 28),
    (*b"CZ", 24),
    (*b"DE", 22),
    (*b"DK", 18),
    (*b"DO", 28),
    (*b"EE", 20),
    (*b"EG", 29),
    (*b"ES", 24),
    (*b"FI", 18),
    (*b"FO", 18),
    (*b"FR", 27),
    (*b"GB", 22),
    (*b"GE", 22),
    (*b"GI", 23),
    (*b"GL", 18),
    (*b"GR", 27),
    (*b"GT", 28),
    (*b"HR", 21),
    (*b"HU", 28),
    (*b"IE", 22),
    (*b"IL", 23),
    (*b"IQ", 23),
    (*b"IS", 26),
    (*b"IT", 27),
    (*b"JO", 30),
    (*b"KW", 30),
    (*b"KZ", 20),
    (*b"LB", 28),
    (*b"LC", 32),
    (*b"LI", 21),
    (*b"LT", 20),
    (*b"LU", 20),
    (*b"LV", 21),
    (*b"LY", 25),
    (*b"MC", 27),
    (*b"MD", 24),
    (*b"ME", 22),
    (*b"MK", 19),
    (*b"MR", 27),
    (*b"MT", 31),
    (*b"MU", 30),
    (*b"NL", 18),
    (*b"NO", 15),
    (*b"PK", 24),
    (*b"PL", 28),
    (*b"PS", 29),
    (*b"PT", 25),
    (*b"QA", 29),
    (*b"RO", 24),
    (*b"RS", 22),
    (*b"SA", 24),
    (*b"SC", 31),
    (*b"SE", 24),
    (*b"SI", 19),
    (*b"SK", 24),
    (*b"SM", 27),
    (*b"ST", 25),
    (*b"SV", 28),
    (*b"TL", 23),
    (*b"TN", 24),
    (*b"TR", 26),
    (*b"UA", 29),
    (*b"VA", 22),
    (*b"VG", 24),
    (*b"XK", 20),
];

fn iban_length(cc: [u8; 2]) -> Option<usize> {
    IBAN_LENGTHS
        .binary_search_by(|(c, _)| c.cmp(&cc))
        .ok()
        .map(|k| usize::from(IBAN_LENGTHS[k].1))
}

/// An IBAN at `p`, compact or printed in groups of four; returns its end.
pub(crate) fn iban_at(v: &[u8], p: usize) -> Option<usize> {
    let len = iban_length([v[p], v[p + 1]])?;
    let mut compact = [0u8; 34];
    let mut n = 0;
    let mut i = p;
    while n < len {
        let b = *v.get(i)?;
        if b == b' ' && n % 4 == 0 && n > 0 && v.get(i + 1).is_some_and(u8::is_ascii_alphanumeric) {
            i += 1;
            continue;
        }
        if !(b.is_ascii_digit() || b.is_ascii_uppercase())
            || ((2..4).contains(&n) && !b.is_ascii_digit())
        {
            return None;
        }
        compact[n] = b;
        n += 1;
        i += 1;
    }
    if v.get(i).is_some_and(|&b| is_word(b)) {
        return None;
    }
    (iban_mod97(&compact[..len]) == 1).then_some(i)
}

/// ISO 7064 mod 97-10 over the IBAN with its first four characters moved to
/// the end and letters read as 10..35.
fn iban_mod97(iban: &[u8]) -> u32 {
    let (head, rest) = iban.split_at(4);
    rest.iter().chain(head).fold(0u32, |r, &b| {
        if b.is_ascii_digit() {
            (r * 10 + u32::from(b - b'0')) % 97
        } else {
            (r * 100 + u32::from(b - b'A') + 10) % 97
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(v: &str) -> Vec<&str> {
        let b = v.as_bytes();
        let mut out = Vec::new();
        let mut s = 0;
        while s < b.len() {
            if iban_trigger(b, s)
                && let Some(end) = iban_at(b, s - 2)
            {
                out.push(&v[s - 2..end]);
                s = end;
                continue;
            }
            s += 1;
        }
        out
    }

    #[test]
    fn iban() {
        assert_eq!(found("DE89370400440532013000"), ["DE89370400440532013000"]);
        assert_eq!(
            found("iban: GB82 WEST 1234 5698 7654 32."),
            ["GB82 WEST 1234 5698 7654 32"]
        );
        assert!(found("DE88370400440532013000").is_empty(), "check digits");
        assert!(found("DE8937040044053201300").is_empty(), "short");
        assert!(found("XX89370400440532013000").is_empty(), "country");
    }

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(IBAN_LENGTHS.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
