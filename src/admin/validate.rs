//! Checks on what admin callers send: text fields are bounded, printable
//! (no control characters — they would forge log lines and break tables),
//! and the revoked value has no surrounding blanks that would make it match
//! nothing.

/// Longest revoked value (subject, token id, issuer).
pub const MAX_VALUE: usize = 512;
/// Longest free-text reason.
pub const MAX_REASON: usize = 1024;

/// Why an admin input was refused (answered with 422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("{field} is empty")]
    Empty { field: &'static str },
    #[error("{field} is {len} bytes, longer than the {max} allowed")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{field} contains a control character (U+{code:04X}) at byte {at}")]
    ControlCharacter {
        field: &'static str,
        code: u32,
        at: usize,
    },
    #[error("{field} has leading or trailing white space")]
    Untrimmed { field: &'static str },
}

/// Free text (a reason): bounded, no control characters; may be empty.
pub fn text(field: &'static str, s: &str, max: usize) -> Result<(), InputError> {
    if s.len() > max {
        return Err(InputError::TooLong {
            field,
            len: s.len(),
            max,
        });
    }
    match s.char_indices().find(|(_, c)| c.is_control()) {
        Some((at, c)) => Err(InputError::ControlCharacter {
            field,
            code: u32::from(c),
            at,
        }),
        None => Ok(()),
    }
}

/// An identifier (a revoked subject, token id or issuer): non-empty text
/// without surrounding blanks.
pub fn identifier(field: &'static str, s: &str) -> Result<(), InputError> {
    if s.is_empty() {
        return Err(InputError::Empty { field });
    }
    text(field, s, MAX_VALUE)?;
    if s.trim() != s {
        return Err(InputError::Untrimmed { field });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_lengths_and_blanks_are_refused() {
        assert_eq!(identifier("subject", "ci-job"), Ok(()));
        assert_eq!(
            identifier("subject", "ci\0job"),
            Err(InputError::ControlCharacter {
                field: "subject",
                code: 0,
                at: 2
            })
        );
        assert!(matches!(
            identifier("subject", "a\nb"),
            Err(InputError::ControlCharacter { code: 10, .. })
        ));
        assert!(matches!(
            identifier("subject", "a\u{85}b"),
            Err(InputError::ControlCharacter { code: 0x85, .. })
        ));
        assert_eq!(
            identifier("subject", ""),
            Err(InputError::Empty { field: "subject" })
        );
        assert_eq!(
            identifier("subject", " x"),
            Err(InputError::Untrimmed { field: "subject" })
        );
        assert!(matches!(
            identifier("subject", &"x".repeat(MAX_VALUE + 1)),
            Err(InputError::TooLong { .. })
        ));
        assert_eq!(text("reason", "", MAX_REASON), Ok(()));
        assert_eq!(text("reason", "leaked in CI – rotate", MAX_REASON), Ok(()));
        assert!(text("reason", "a\tb", MAX_REASON).is_err());
    }
}
