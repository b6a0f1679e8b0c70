//! Parsing and printing of the sizes, durations and counts the command line takes.
//!
//! Sizes take an optional unit with the usual meaning: decimal `kB`/`MB`/`GB`
//! (10^3, 10^6, 10^9) and binary `KiB`/`MiB`/`GiB` (2^10, 2^20, 2^30); a bare
//! number is bytes. Durations are one or more `<integer><unit>` groups
//! (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), such as `1m30s`; a bare number is seconds.

use std::fmt;
use std::time::Duration;

/// Why a size or a duration given on the command line was not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitError {
    Empty,
    NotANumber { input: String },
    UnknownUnit { input: String, unit: String },
    TooLarge { input: String },
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "empty value"),
            Self::NotANumber { input } => write!(f, "`{input}` does not start with a number"),
            Self::UnknownUnit { input, unit } => write!(
                f,
                "`{input}`: unknown unit `{unit}` (sizes: B, kB, MB, GB, KiB, MiB, GiB; \
                 durations: ns, us, ms, s, m, h)"
            ),
            Self::TooLarge { input } => write!(f, "`{input}` is too large"),
        }
    }
}

impl std::error::Error for UnitError {}

/// Splits `"12MiB"` into `(12, "MiB")`; the unit may be empty.
fn split_number(input: &str) -> Result<(u64, &str), UnitError> {
    let digits = input.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(UnitError::NotANumber {
            input: input.to_owned(),
        });
    }
    let (number, rest) = input.split_at(digits);
    let value = number.parse::<u64>().map_err(|_| UnitError::TooLarge {
        input: input.to_owned(),
    })?;
    Ok((value, rest))
}

/// Parses a byte size such as `64`, `4KiB`, `1MiB` or `10MB`.
pub fn parse_size(input: &str) -> Result<u64, UnitError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(UnitError::Empty);
    }
    let (value, unit) = split_number(trimmed)?;
    let multiplier: u64 = match unit.trim_start() {
        "" | "B" | "b" => 1,
        "k" | "K" | "kB" | "KB" => 1_000,
        "M" | "MB" => 1_000_000,
        "G" | "GB" => 1_000_000_000,
        "Ki" | "KiB" => 1 << 10,
        "Mi" | "MiB" => 1 << 20,
        "Gi" | "GiB" => 1 << 30,
        other => {
            return Err(UnitError::UnknownUnit {
                input: input.to_owned(),
                unit: other.to_owned(),
            });
        }
    };
    value.checked_mul(multiplier).ok_or(UnitError::TooLarge {
        input: input.to_owned(),
    })
}

/// Parses a duration such as `10s`, `500ms`, `1m30s` or `2` (seconds).
pub fn parse_duration(input: &str) -> Result<Duration, UnitError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(UnitError::Empty);
    }
    let too_large = || UnitError::TooLarge {
        input: input.to_owned(),
    };
    let mut rest = trimmed;
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let (value, after) = split_number(rest).map_err(|e| match e {
            UnitError::NotANumber { .. } => UnitError::NotANumber {
                input: input.to_owned(),
            },
            other => other,
        })?;
        let unit_len = after
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit())
            .map_or(after.len(), |(i, _)| i);
        let (unit, next) = after.split_at(unit_len);
        // A bare trailing number means seconds, but only when it is the whole input:
        // `1m30` is more likely a typo than 1 minute 30 seconds.
        let part = match unit {
            "" if rest.len() == trimmed.len() => Duration::from_secs(value),
            "ns" => Duration::from_nanos(value),
            "us" | "µs" => Duration::from_micros(value),
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" | "min" => Duration::from_secs(value.checked_mul(60).ok_or_else(too_large)?),
            "h" => Duration::from_secs(value.checked_mul(3600).ok_or_else(too_large)?),
            other => {
                return Err(UnitError::UnknownUnit {
                    input: input.to_owned(),
                    unit: other.to_owned(),
                });
            }
        };
        total = total.checked_add(part).ok_or_else(too_large)?;
        rest = next;
    }
    Ok(total)
}

/// Prints a byte count the way a person reads it: exact for small values,
/// binary units where the value is a whole number of them.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{} {name}", bytes / unit);
        }
    }
    format!("{bytes} B")
}

/// Groups digits by thousands (`1234567` → `1,234,567`) so rates are readable at a glance.
pub fn group_thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_and_without_units() {
        assert_eq!(parse_size("64").unwrap(), 64);
        assert_eq!(parse_size("64B").unwrap(), 64);
        assert_eq!(parse_size("4KiB").unwrap(), 4096);
        assert_eq!(parse_size("1MiB").unwrap(), 1_048_576);
        assert_eq!(parse_size("1 MiB").unwrap(), 1_048_576);
        assert_eq!(parse_size("2GiB").unwrap(), 2 * 1_073_741_824);
        assert_eq!(parse_size("10MB").unwrap(), 10_000_000);
        assert_eq!(parse_size("3kB").unwrap(), 3_000);
        assert_eq!(parse_size("3k").unwrap(), 3_000);
    }

    #[test]
    fn bad_sizes_are_refused_with_a_reason() {
        assert_eq!(parse_size(""), Err(UnitError::Empty));
        assert!(matches!(
            parse_size("MiB"),
            Err(UnitError::NotANumber { .. })
        ));
        assert!(matches!(
            parse_size("1.5MiB"),
            Err(UnitError::UnknownUnit { unit, .. }) if unit == ".5MiB"
        ));
        assert!(matches!(
            parse_size("12parsecs"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_size("99999999999GiB"),
            Err(UnitError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_size("999999999999999999999999"),
            Err(UnitError::TooLarge { .. })
        ));
    }

    #[test]
    fn durations_single_and_compound() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("250µs").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn bad_durations_are_refused_with_a_reason() {
        assert_eq!(parse_duration("  "), Err(UnitError::Empty));
        assert!(matches!(
            parse_duration("s"),
            Err(UnitError::NotANumber { .. })
        ));
        assert!(matches!(
            parse_duration("10 parsecs"),
            Err(UnitError::UnknownUnit { .. })
        ));
        // A bare number only means seconds on its own.
        assert!(matches!(
            parse_duration("1m30"),
            Err(UnitError::UnknownUnit { unit, .. }) if unit.is_empty()
        ));
        assert!(matches!(
            parse_duration("18446744073709551615h"),
            Err(UnitError::TooLarge { .. })
        ));
    }

    #[test]
    fn sizes_print_in_the_largest_exact_unit() {
        assert_eq!(format_size(64), "64 B");
        assert_eq!(format_size(1_048_576), "1 MiB");
        assert_eq!(format_size(1_048_577), "1048577 B");
        assert_eq!(format_size(3 * 1024), "3 KiB");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1000), "1,000");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
    }
}
