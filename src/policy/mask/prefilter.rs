//! Whole-value prefilter for the digit-based detectors: SSE2 compares and
//! byte masks (`wide::i8x16`, a safe wrapper over `pcmpeqb`/`pcmpgtb`/
//! `pmovmskb`) turn each 64-byte window into bitmaps (bit `i` = byte `i`) of
//! digits, separators, `+`, `0` and capitals, and a few shifts and ANDs over
//! those bitmaps find the places where a card, SSN, phone, IPv4 or IBAN can
//! possibly start. Only the [`chainable_run`](super::numeric::chainable_run)
//! around such a place is handed to the exact detectors, so a timestamp or a
//! UUID costs a few word operations and never reaches a parser.
//!
//! Every condition here is *necessary* for its detector (a superset of what
//! the detector accepts), never sufficient: exactness stays with `numeric.rs`.

use std::ops::{BitAnd, BitOr, BitOrAssign, Not, Shl, Shr};

use wide::i8x16;

use super::detect::{Builtin, DetectorSet};
use super::numeric::{chainable, chainable_run};

/// The last `n` (< 8) bytes of `v` as a word padded with zero bytes, from at
/// most two overlapping loads (no byte loop, no copy).
#[inline(always)]
fn tail_word(v: &[u8], n: usize) -> u64 {
    let len = v.len();
    if n == 0 {
        return 0;
    }
    if len >= 8 {
        return load::<8>(v, len - 8) >> (8 * (8 - n));
    }
    let s = len - n;
    // Two loads that together cover `v[s..]`; the overlap ORs equal bytes.
    match n {
        1 => load::<1>(v, s),
        2..=3 => load::<2>(v, s) | load::<2>(v, len - 2) << (8 * (n - 2)),
        _ => load::<4>(v, s) | load::<4>(v, len - 4) << (8 * (n - 4)),
    }
}

/// `N` bytes of `v` at `at` as a little-endian integer (0 if out of range).
#[inline(always)]
fn load<const N: usize>(v: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    if let Some(src) = v.get(at..at + N) {
        bytes[..N].copy_from_slice(src);
    }
    u64::from_le_bytes(bytes)
}

/// Bitmaps of one 64-byte block; bytes past the value belong to no class
/// (so the end of a value looks like a boundary).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
struct Block {
    digit: u64,
    punct: u64,
    plus: u64,
    /// `0` digits: trunk prefixes start with one, E.164 numbers never do.
    zero: u64,
    upper: u64,
}

/// What a value holds, as far as the detectors care: one vectorised pass.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    /// Enough digits (and separators, or capitals) for some numeric shape:
    /// exact for short values, "any digit" for long ones.
    pub(crate) digit: bool,
    /// An `@`: emails are possible.
    pub(crate) at: bool,
    pub(crate) upper: bool,
    /// A capital, or one of the pairs `gh`, `gi`, `be`, `xo`: every anchor of
    /// [`ANCHORS`](super::token::ANCHORS) holds one of these.
    pub(crate) anchor: bool,
}

const SEEN_DIGIT: u8 = 1;
const SEEN_AT: u8 = 2;
const SEEN_UPPER: u8 = 4;
const SEEN_PAIR: u8 = 8;

/// Classes of byte `x` followed by byte `y`. Branch-free on bytes so the
/// loop in [`seen`] runs in vector lanes.
#[inline(always)]
fn classes(x: u8, y: u8) -> u8 {
    let pair =
        (x == b'g') & (y & 0xfe == b'h') | (x == b'b') & (y == b'e') | (x == b'x') & (y == b'o');
    (u8::from(x.wrapping_sub(b'0') < 10) * SEEN_DIGIT)
        | (u8::from(x == b'@') * SEEN_AT)
        | (u8::from(x.wrapping_sub(b'A') < 26) * SEEN_UPPER)
        | (u8::from(pair) * SEEN_PAIR)
}

/// Lanes of `x` in `lo..lo + n`, as a lane mask (see [`in_range`]).
#[inline(always)]
fn in_range_lanes(x: i8x16, lo: u8, n: u8) -> i8x16 {
    let shifted = x + i8x16::splat(0x80u8.wrapping_sub(lo) as i8);
    shifted.simd_lt(i8x16::splat((0x80u8.wrapping_add(n)) as i8))
}

#[inline(always)]
fn lanes_eq(x: i8x16, c: u8) -> i8x16 {
    x.simd_eq(i8x16::splat(c as i8))
}

/// What `v` holds. Sixteen bytes and their successors (an overlapping load
/// one byte on) per step, as lane masks ORed together and tested once at
/// the end; values under 17 bytes go through two words instead.
pub(crate) fn seen(v: &[u8]) -> Seen {
    let n = v.len();
    if n < 17 {
        return seen_short(v);
    }
    let zero = i8x16::splat(0);
    let (mut digit, mut at, mut upper, mut pair) = (zero, zero, zero, zero);
    let mut step = |i: usize| {
        let x = load16(v, i);
        let y = load16(v, i + 1);
        digit |= in_range_lanes(x, b'0', 10);
        at |= lanes_eq(x, b'@');
        upper |= in_range_lanes(x, b'A', 26);
        pair |= lanes_eq(x, b'g') & lanes_eq(y | i8x16::splat(1), b'i')
            | lanes_eq(x, b'b') & lanes_eq(y, b'e')
            | lanes_eq(x, b'x') & lanes_eq(y, b'o');
    };
    let mut i = 0;
    while i + 17 <= n {
        step(i);
        i += 16;
    }
    // The bytes the steps left out: one more step over the last 17 bytes
    // (the overlap only repeats flags), then the last byte, which has no
    // successor.
    step(n - 17);
    let last = classes(v[n - 1], 0);
    let has = |lanes: i8x16, flag: u8| lanes.any() || last & flag != 0;
    let upper = has(upper, SEEN_UPPER);
    Seen {
        digit: has(digit, SEEN_DIGIT),
        at: has(at, SEEN_AT),
        upper,
        anchor: upper || has(pair, SEEN_PAIR),
    }
}

/// [`seen`] of a long value, where only the digit and capital flags pay
/// for themselves: `@` and the anchors are reported as possible, because
/// `memchr` and the anchor automaton's own vectorised prefilter look for
/// them faster than a flag pass would (and long text nearly always holds
/// one of the anchor pairs anyway).
pub(crate) fn seen_long(v: &[u8]) -> Seen {
    let n = v.len();
    if n < 16 {
        return seen(v);
    }
    let zero = i8x16::splat(0);
    let (mut digit, mut upper) = (zero, zero);
    let mut step = |i: usize| {
        let x = load16(v, i);
        digit |= in_range_lanes(x, b'0', 10);
        upper |= in_range_lanes(x, b'A', 26);
    };
    let mut i = 0;
    while i + 16 <= n {
        step(i);
        i += 16;
    }
    step(n - 16);
    Seen {
        digit: digit.any(),
        at: true,
        upper: upper.any(),
        anchor: true,
    }
}

/// [`seen`] of a value under 17 bytes: the same lane masks over the value
/// zero-padded to 16 bytes (from two words: a byte array would cost a
/// store-forwarding stall before the vector load), its successor bytes being
/// the same bits one byte on.
fn seen_short(v: &[u8]) -> Seen {
    let (w0, w1) = short_words(v);
    let bits = u128::from(w0) | u128::from(w1) << 64;
    let x = i8x16::from_ne_bytes(bits.to_le_bytes());
    let y = i8x16::from_ne_bytes((bits >> 8).to_le_bytes());
    let upper = in_range(x, b'A', 26) != 0;
    // The same gate as in `candidates`, so a short id or amount stops here.
    let digits = in_range(x, b'0', 10).count_ones();
    let digit = digits > 0
        && (upper || digits >= 8 || digits >= 4 && in_range(x, 0x20, 16).count_ones() >= 3);
    let pair = (lanes_eq(x, b'g') & lanes_eq(y | i8x16::splat(1), b'i')
        | lanes_eq(x, b'b') & lanes_eq(y, b'e')
        | lanes_eq(x, b'x') & lanes_eq(y, b'o'))
    .any();
    Seen {
        digit,
        at: lanes_eq(x, b'@').any(),
        upper,
        anchor: upper || pair,
    }
}

/// A value of at most 16 bytes as two little-endian words, zero-padded.
#[inline(always)]
fn short_words(v: &[u8]) -> (u64, u64) {
    let n = v.len();
    let w0 = if n >= 8 {
        load::<8>(v, 0)
    } else {
        tail_word(v, n)
    };
    let w1 = if n > 8 { tail_word(v, n - 8) } else { 0 };
    (w0, w1)
}

/// State of the bitmap pass.
#[derive(Clone, Copy, Default)]
struct Loader {
    /// Build capital bitmaps (IBAN is enabled and the value has a capital).
    upper: bool,
}

/// Lanes of `x` in `lo..lo + n` (n <= 128): the add moves that range to the
/// bottom of the signed range, so one signed compare tests both ends.
#[inline(always)]
fn in_range(x: i8x16, lo: u8, n: u8) -> u32 {
    let shifted = x + i8x16::splat(0x80u8.wrapping_sub(lo) as i8);
    shifted
        .simd_lt(i8x16::splat((0x80u8.wrapping_add(n)) as i8))
        .to_bitmask()
}

/// Sixteen bytes of `v` from `at`; the caller guarantees they exist.
#[inline(always)]
fn load16(v: &[u8], at: usize) -> i8x16 {
    let mut bytes = [0u8; 16];
    if let Some(src) = v.get(at..at + 16) {
        bytes.copy_from_slice(src);
    }
    i8x16::from_ne_bytes(bytes)
}

/// A value under 16 bytes, zero-padded, from two words (a byte array copy
/// would cost a store-forwarding stall before the vector load).
#[inline(always)]
fn load_short(v: &[u8]) -> i8x16 {
    let (w0, w1) = short_words(v);
    i8x16::from_ne_bytes((u128::from(w0) | u128::from(w1) << 64).to_le_bytes())
}

impl Loader {
    /// Adds the classes of the 16 bytes `x`, of which the `keep` lowest
    /// mask bits are shifted to bit `k` of `b` (`drop` leading lanes are
    /// already counted: an overlapping tail load).
    #[inline(always)]
    fn add(&self, b: &mut Block, x: i8x16, drop: u32, k: u32) {
        let place = |m: u32| u64::from(m >> drop) << k;
        b.digit |= place(in_range(x, b'0', 10));
        b.punct |= place(in_range(x, 0x20, 16));
        b.plus |= place(x.simd_eq(i8x16::splat(b'+' as i8)).to_bitmask());
        b.zero |= place(x.simd_eq(i8x16::splat(b'0' as i8)).to_bitmask());
        if self.upper {
            b.upper |= place(in_range(x, b'A', 26));
        }
    }

    /// Bitmaps of the `N` (48 or 64) bytes of `v` from `off`.
    #[inline(always)]
    fn load<const N: usize>(&self, v: &[u8], off: usize) -> Block {
        let mut b = Block::default();
        let end = v.len().min(off + N);
        if off >= end {
            return b;
        }
        if end - off == N {
            for k in 0..N / 16 {
                self.add(&mut b, load16(v, off + 16 * k), 0, 16 * k as u32);
            }
            return b;
        }
        let mut at = off;
        while at + 16 <= end {
            self.add(&mut b, load16(v, at), 0, (at - off) as u32);
            at += 16;
        }
        if at < end {
            // `end` is the value's end: the last 16 bytes of the value,
            // overlapping what was already classified, or a short value.
            let x = if v.len() >= 16 {
                load16(v, v.len() - 16)
            } else {
                load_short(v)
            };
            let drop = if v.len() >= 16 { 16 - (end - at) } else { 0 };
            self.add(&mut b, x, drop as u32, (at - off) as u32);
        }
        b
    }
}

impl Block {
    /// The window `STRIDE` bytes on: this window's last bytes, then `more`
    /// (the bitmaps of the `STRIDE` bytes after this window).
    #[inline(always)]
    fn advance(self, more: Block) -> Block {
        let k = STRIDE as u32;
        let mv = |a: u64, m: u64| a >> k | m << (64 - k);
        Block {
            digit: mv(self.digit, more.digit),
            punct: mv(self.punct, more.punct),
            plus: mv(self.plus, more.plus),
            zero: mv(self.zero, more.zero),
            upper: mv(self.upper, more.upper),
        }
    }
}

/// Bytes between two bitmap windows. A window is 64 bytes, and candidates
/// are taken from its first 48 only: every shape's fixed part lies within
/// 14 bytes of its start, so the last 16 bytes are look-ahead, and the
/// bitmaps stay single words (a two-word window costs twice the operations).
const STRIDE: usize = 48;

/// Numeric detectors a plan enables.
pub(crate) const NUMERIC: DetectorSet = DetectorSet(
    1 << Builtin::Card as u8
        | 1 << Builtin::UsSsn as u8
        | 1 << Builtin::Iban as u8
        | 1 << Builtin::Phone as u8
        | 1 << Builtin::Ipv4 as u8,
);

/// A bitmap window (only `u64` now: see [`STRIDE`]; a `u128` window of two
/// blocks cost twice the operations per byte).
trait Bits:
    Copy
    + PartialEq
    + BitAnd<Output = Self>
    + BitOr<Output = Self>
    + BitOrAssign
    + Not<Output = Self>
    + Shr<u32, Output = Self>
    + Shl<u32, Output = Self>
{
    const ZERO: Self;
    const ONE: Self;
    const WIDTH: u32;
    fn join(lo: u64, hi: u64) -> Self;
    fn low(self) -> u64;
    fn tz(self) -> u32;
    fn ones(self) -> u32;
}

macro_rules! bits {
    ($t:ty, $join:expr) => {
        impl Bits for $t {
            const ZERO: Self = 0;
            const ONE: Self = 1;
            const WIDTH: u32 = <$t>::BITS;
            #[inline(always)]
            fn join(lo: u64, hi: u64) -> Self {
                $join(lo, hi)
            }
            #[inline(always)]
            fn low(self) -> u64 {
                self as u64
            }
            #[inline(always)]
            fn tz(self) -> u32 {
                self.trailing_zeros()
            }
            #[inline(always)]
            fn ones(self) -> u32 {
                self.count_ones()
            }
        }
    };
}

bits!(u64, |lo: u64, _hi: u64| lo);

/// Digits in the run of digits and separators that starts at bit `i` of the
/// window (a superset of any chain starting there) reach `min`. A run that
/// reaches the window's end counts as long enough.
#[inline(always)]
fn run_digits_at_least<T: Bits>(d: T, p: T, i: u32, min: u32) -> bool {
    let run = (!((d | p) >> i)).tz();
    if i + run >= T::WIDTH {
        return true;
    }
    ((d >> i) & !(!T::ZERO << run)).ones() >= min
}

/// Candidate positions in window `cur` (bit `i` = byte `off + i`): inside
/// each, some enabled numeric detector may match in the chainable run
/// containing it. `prev_digit` says whether the byte before the window is a
/// digit. Bits whose shapes run past the window are kept (a run reaching the
/// window's end counts as long enough); the caller keeps only the first
/// [`STRIDE`] bits of a window that is not the value's last.
#[inline(always)]
fn candidates<T: Bits>(
    v: &[u8],
    off: usize,
    cur: Block,
    next: Block,
    prev_digit: bool,
    enabled: DetectorSet,
) -> u64 {
    let d = T::join(cur.digit, next.digit);
    let p = T::join(cur.punct, next.punct);
    // Every shape needs 8 digits, but IPv4 (4 digits, 3 separators) and
    // IBAN (capitals).
    if cur.upper | next.upper == 0 {
        let digits = cur.digit.count_ones() + next.digit.count_ones();
        if digits < 4 || digits < 8 && cur.punct.count_ones() + next.punct.count_ones() < 3 {
            return 0;
        }
    }
    let before = if prev_digit { T::ONE } else { T::ZERO };
    let gs = d & !((d << 1) | before);
    let r2 = d & d >> 1;
    let r3 = r2 & d >> 2;
    let r4 = r2 & r2 >> 2;
    // Runs of digits and separators, by length: a chain of `n` digits spans
    // at least `n` such bytes, so these gate the loops below, which would
    // otherwise visit every date and time (`2024-03-05 09`).
    let q = d | p;
    let q2 = q & q >> 1;
    let q4 = q2 & q2 >> 2;
    let q8 = q4 & q4 >> 4;
    let zero = T::join(cur.zero, next.zero);
    let mut out = T::ZERO;
    if enabled.has(Builtin::Card) {
        let r8 = r4 & r4 >> 4;
        let run13 = gs & r8 & r4 >> 8 & d >> 12;
        out |= run13;
        // `dddd` then a separator and a digit: a grouped card needs 13 digits
        // in its chain.
        // 13 digits and the separator: at least 14 bytes.
        let mut grouped = (gs & r4 & p >> 4 & d >> 5 & q8 & q4 >> 8 & q2 >> 12).low();
        while grouped != 0 {
            let i = grouped.trailing_zeros();
            grouped &= grouped - 1;
            if run_digits_at_least(d, p, i, 13) {
                out |= T::ONE << i;
            }
        }
    }
    if enabled.has(Builtin::UsSsn) {
        out |= gs & r3 & p >> 3 & r2 >> 4 & p >> 6 & r4 >> 7 & !(d >> 11);
    }
    if enabled.has(Builtin::Phone) {
        // NANP `ddd?ddd?dddd`, and with `) ` after the area code.
        out |= gs & r3 & p >> 3 & r3 >> 4 & p >> 7 & r4 >> 8 & !(d >> 12);
        out |= gs & r3 & p >> 3 & p >> 4 & r3 >> 5 & p >> 8 & r4 >> 9 & !(d >> 13);
        // Trunk prefix: a group of 2–5 digits joined to another group.
        let link_end = d & p >> 1 & (d >> 2 | p >> 2 & d >> 3);
        let mut trunk = (gs
            & r2
            & (link_end >> 1
                | d >> 2 & link_end >> 2
                | r4 & link_end >> 3
                | r4 & d >> 4 & link_end >> 4)
            & zero
            & !(zero >> 1)
            & q8
            & q2 >> 8)
            .low();
        while trunk != 0 {
            let i = trunk.trailing_zeros();
            trunk &= trunk - 1;
            let at = off + i as usize;
            if v.get(at) == Some(&b'0')
                && v.get(at + 1) != Some(&b'0')
                && run_digits_at_least(d, p, i, 10)
            {
                out |= T::ONE << i;
            }
        }
        // E.164: `+` and a chain of at least 8 digits not starting with 0.
        let plus = T::join(cur.plus, next.plus);
        let mut e164 = (plus & d >> 1 & !(zero >> 1) & q8 >> 1).low();
        while e164 != 0 {
            let i = e164.trailing_zeros();
            e164 &= e164 - 1;
            let at = off + i as usize + 1;
            // Marks the `+` (bit `i` stays inside this block); the caller
            // moves a mark on an unchainable byte to the next byte.
            if v.get(at) != Some(&b'0') && run_digits_at_least(d, p, i + 1, 8) {
                out |= T::ONE << i;
            }
        }
    }
    if enabled.has(Builtin::Ipv4) {
        // Four groups of at most three digits joined by separators.
        let long = r4 | r4 << 1 | r4 << 2 | r4 << 3;
        let short = d & !long;
        let link = short & p >> 1 & short >> 2;
        let two = link & (link >> 2 | link >> 3 | link >> 4);
        out |= link & (two >> 2 | two >> 3 | two >> 4);
    }
    if enabled.has(Builtin::Iban) {
        let u = T::join(cur.upper, next.upper);
        out |= u & u >> 1 & d >> 2 & d >> 3;
    }
    out.low()
}

/// Calls `scan(from, to)` for each chainable run of `v` that holds a
/// candidate of the `numeric` detectors, in order, each run once. `upper`:
/// whether `v` holds a capital (see [`seen`]).
pub(crate) fn prefilter(
    v: &[u8],
    numeric: DetectorSet,
    upper: bool,
    mut scan: impl FnMut(usize, usize),
) {
    let loader = Loader {
        upper: upper && numeric.has(Builtin::Iban),
    };
    let mut off = 0;
    let mut win = loader.load::<64>(v, 0);
    let mut prev_digit = false;
    let mut done = 0;
    while off < v.len() {
        let last = off + 64 >= v.len();
        let mut cand = candidates::<u64>(v, off, win, Block::default(), prev_digit, numeric);
        if !last {
            cand &= (1 << STRIDE) - 1;
        }
        while cand != 0 {
            let mut at = off + cand.trailing_zeros() as usize;
            cand &= cand - 1;
            if v.get(at).is_some_and(|&b| !chainable(b)) {
                at += 1;
            }
            if at < done {
                continue;
            }
            let (from, to) = chainable_run(v, at);
            scan(from, to);
            done = to.max(at + 1);
        }
        if last {
            break;
        }
        prev_digit = win.digit >> (STRIDE - 1) & 1 != 0;
        win = win.advance(loader.load::<STRIDE>(v, off + 64));
        off += STRIDE;
    }
}

#[cfg(test)]
mod tests;
