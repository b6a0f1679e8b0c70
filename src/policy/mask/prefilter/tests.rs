//! Tests of the prefilter (beside it, so prefilter.rs stays short).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn bits(v: &[u8], f: impl Fn(u8) -> bool) -> u64 {
    v.iter()
        .take(64)
        .enumerate()
        .filter(|(_, b)| f(**b))
        .fold(0, |m, (i, _)| m | 1 << i)
}

#[test]
fn block_bitmaps_match_bytewise_classes() {
    let v: Vec<u8> = (0..=255u8).chain(b"0a+Z (9)".iter().copied()).collect();
    // Every offset, so values shorter than a word, tails, and classes
    // straddling word boundaries are all covered.
    for off in 0..v.len() {
        for len in [1, 7, 8, 9, 15, 16, 17, 31, 33, 47, 48, 49, 63, 64, 65] {
            let s = &v[off..v.len().min(off + len)];
            let b = Loader { upper: true }.load::<64>(s, 0);
            assert_eq!(b.digit, bits(s, |c| c.is_ascii_digit()), "{off} {len}");
            assert_eq!(b.punct, bits(s, |c| (0x20..=0x2f).contains(&c)));
            assert_eq!(b.plus, bits(s, |c| c == b'+'));
            assert_eq!(b.zero, bits(s, |c| c == b'0'));
            assert_eq!(b.upper, bits(s, |c| c.is_ascii_uppercase()));
        }
    }
}

/// A window moved on by a stride holds what a fresh load there holds, at
/// every length of value (so the tail loads at each alignment too).
#[test]
fn advanced_windows_equal_fresh_loads() {
    let v: Vec<u8> = (0..400u32).map(|i| (i * 37 % 251) as u8).collect();
    let loader = Loader { upper: true };
    for len in 0..v.len() {
        let s = &v[..len];
        let mut win = loader.load::<64>(s, 0);
        let mut off = 0;
        while off + 64 < len {
            win = win.advance(loader.load::<STRIDE>(s, off + 64));
            off += STRIDE;
            assert_eq!(win, loader.load::<64>(s, off), "{len} {off}");
        }
    }
}

/// Position `at` counted from the end of a value of `len` bytes.
fn at_end(len: usize, at: usize) -> usize {
    len - 1 - at
}

#[test]
fn anchor_flag_covers_every_anchor_at_every_alignment() {
    for (anchor, _) in super::super::token::ANCHORS {
        for pad in 0..20 {
            let v = format!("{}{anchor}", "z".repeat(pad));
            assert!(seen(v.as_bytes()).anchor, "{v}");
        }
    }
    // A pair split across two words, and across two blocks.
    for pad in [7, 63] {
        let v = format!("{}xo", "z".repeat(pad));
        assert!(seen(v.as_bytes()).anchor, "{pad}");
    }
    for v in [
        "order shipped to the warehouse",
        "g h b e x o",
        "2024-03-15",
    ] {
        assert!(!seen(v.as_bytes()).anchor, "{v}");
    }
    // Every flag at every position of short and long values, the last
    // byte included.
    for len in [1, 2, 15, 16, 17, 18, 33, 40] {
        for at in 0..len {
            let mut v = vec![b'z'; len];
            if len >= 2 {
                v[at] = b'Q';
                v[(at + 1) % len] = b'7';
                assert!(seen(&v).digit, "{len} {at}");
                v[(at + 1) % len] = b'z';
            }
            v[at] = b'@';
            assert!(seen(&v).at && !seen(&v).digit, "{len} {at}");
            v[at] = b'Q';
            assert!(seen(&v).upper && seen(&v).anchor, "{len} {at}");
            if at + 1 < len {
                v[at] = b'x';
                v[at + 1] = b'o';
                assert!(seen(&v).anchor && !seen(&v).upper, "{len} {at}");
            }
        }
        assert_eq!(seen(&vec![b'z'; len]), Seen::default());
        for (long, at) in [len + 15, len + 40]
            .into_iter()
            .flat_map(|l| (0..len).map(move |a| (l, a)))
        {
            let mut v = vec![b'z'; long];
            v[at_end(long, at)] = b'Q';
            let s = seen_long(&v);
            assert!(s.upper && !s.digit && s.at && s.anchor, "{long} {at}");
            v[at_end(long, at)] = b'5';
            let s = seen_long(&v);
            assert!(!s.upper && s.digit, "{long} {at}");
        }
    }
    // The digit gate of short values: no numeric shape in fewer than 8
    // digits, but IPv4 (4 digits, 3 separators) and IBAN (capitals).
    for (v, digit) in [
        ("1234567", false),
        ("12345678", true),
        ("123.45", false),
        ("1.2.3.4", true),
        ("DE12", true),
        ("x 1234567890123456", true),
    ] {
        assert_eq!(seen(v.as_bytes()).digit, digit, "{v}");
    }
    assert!(seen(b"a@b").at);
}

#[test]
fn tail_words_are_the_last_bytes_zero_padded() {
    let v: Vec<u8> = (1..=20).collect();
    for len in 0..=v.len() {
        for n in 0..8.min(len + 1) {
            let mut want = [0u8; 8];
            want[..n].copy_from_slice(&v[len - n..len]);
            assert_eq!(
                tail_word(&v[..len], n),
                u64::from_le_bytes(want),
                "{len} {n}"
            );
        }
    }
}

fn runs(v: &str) -> Vec<&str> {
    let mut out = Vec::new();
    prefilter(v.as_bytes(), NUMERIC, true, |f, t| out.push(&v[f..t]));
    out
}

#[test]
fn clean_shapes_have_no_candidates() {
    for v in [
        "2024-03-05 09:23:45.012345+00",
        "2026-11-26 09:24:13+00",
        "550e8400-e29b-41d4-a716-446655440000",
        "12345.67",
        "order_123 shipped 42 of 17",
        "1700000000",
    ] {
        assert!(runs(v).is_empty(), "{v}: {:?}", runs(v));
    }
}

#[test]
fn candidates_found_at_block_edges() {
    for pad in (40..75).chain(88..100) {
        for pii in [
            "4111 1111 1111 1111",
            "123-45-6789",
            "+1 415 555 2671",
            "10.0.0.1",
            "DE89370400440532013000",
            "(415) 555-2671",
            "020 7946 0958",
        ] {
            let v = format!("{}{pii}", "x".repeat(pad));
            // `+` is no chain byte: the run starts after it.
            assert_eq!(runs(&v), [pii.trim_start_matches('+')], "pad {pad}");
        }
    }
}

/// The prefiltered scan must find exactly what a scan of the whole value
/// finds, on values built from the pieces numbers are made of, at every
/// length and alignment.
#[test]
fn prefiltered_scan_equals_full_scan() {
    use super::super::detect::Span;
    use super::super::numeric::{scan_numeric, scan_numeric_range};
    const PIECES: &[&str] = &[
        " ",
        "-",
        ".",
        ")",
        "(",
        "+",
        ":",
        "/",
        "\t",
        ",",
        "x",
        "e",
        "DE",
        "GB",
        "0",
        "1",
        "4111",
        "1111",
        "123",
        "45",
        "6789",
        "415",
        "555",
        "2671",
        "020",
        "7946",
        "01",
        "10",
        "192",
        "168",
        "89370400440532013000",
        "82 WEST 1234 5698 7654 32",
        "4111111111111111",
        "2024",
        "09",
        "+1 ",
        "(415) ",
        ") ",
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut full, mut pre) = (Vec::<Span>::new(), Vec::<Span>::new());
    let mut hits = 0;
    for _ in 0..40_000 {
        let mut v = String::new();
        let pieces = 1 + next() % 90;
        for _ in 0..pieces {
            v.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
        }
        let b = v.as_bytes();
        full.clear();
        scan_numeric(b, NUMERIC, &mut full);
        pre.clear();
        prefilter(b, NUMERIC, true, |f, t| {
            scan_numeric_range(b, f, t, NUMERIC, &mut pre)
        });
        let key = |s: &Span| (s.start, s.end, s.detector);
        full.sort_unstable_by_key(key);
        pre.sort_unstable_by_key(key);
        assert_eq!(full, pre, "{v:?}");
        hits += usize::from(!full.is_empty());
    }
    assert!(hits > 1000, "the generator must produce matches: {hits}");
}
