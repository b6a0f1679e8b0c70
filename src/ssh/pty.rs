//! Terminal sessions: the line a caller types into a pty shell, assembled
//! from its keystrokes so the exec rules can judge it when Enter arrives
//! (best effort: see [`LineEditor`]), and the pty records (the request's
//! size and TERM, window changes) in the channel's data record format.
//!
//! What the editor follows: printable characters (UTF-8 too), backspace
//! and DEL, Ctrl-U (kill the line), Ctrl-W (kill a word), Ctrl-C (discard
//! the line), Ctrl-L (redraw), bracketed paste (`ESC [200~ ... ESC [201~`:
//! the pasted text is typed text, its newlines are lines of one command
//! that runs at the next Enter). Anything else the shell's line editor acts
//! on that tollgate does not model (arrows, history, Tab completion,
//! Ctrl-A/E/K/R/Y, Alt-keys, a kill with the cursor moved) makes the line
//! *unknown*: the shell's line is no longer the editor's. An unknown line
//! becomes known again at the next Enter or Ctrl-C.

/// The longest line the editor keeps; a longer one is unknown.
pub const MAX_TYPED_LINE: usize = 16 << 10;

/// What an Enter submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedLine {
    /// The text as far as the editor could follow it (lossy UTF-8).
    pub text: String,
    /// `false`: keys the editor does not follow touched the line; `text`
    /// is what it saw, not what the shell runs.
    pub known: bool,
    /// Typed at a secret prompt (`prompt.rs`): its length in bytes; `text`
    /// is then empty.
    pub secret: Option<usize>,
}

impl TypedLine {
    /// The command lines in it (a paste may carry several), blank ones
    /// left out.
    pub fn commands(&self) -> impl Iterator<Item = &str> {
        self.text
            .split(['\n', '\r'])
            .filter(|l| !l.trim().is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Esc {
    /// Not in an escape sequence.
    None,
    /// After ESC.
    Start,
    /// In a CSI (`ESC [`) or SS3 (`ESC O`) sequence; the parameter bytes so
    /// far (only `200`/`201` mean anything here).
    Csi { params: u32, len: u8 },
    /// `ESC O`: one final byte follows.
    Ss3,
}

/// Assembles typed lines from a pty shell's input.
#[derive(Debug)]
pub struct LineEditor {
    line: Vec<u8>,
    known: bool,
    esc: Esc,
    /// Inside a bracketed paste.
    pasting: bool,
}

impl Default for LineEditor {
    fn default() -> Self {
        LineEditor {
            line: Vec::new(),
            known: true,
            esc: Esc::None,
            pasting: false,
        }
    }
}

impl LineEditor {
    /// Feed input bytes up to the next Enter: `Some((i, line))` when
    /// `data[i]` is an Enter (CR or LF outside a paste) that submits
    /// `line` (the editor is empty again after it); `None` when `data` had
    /// none (all of it consumed). The caller feeds `data[i + 1..]` next.
    pub fn feed(&mut self, data: &[u8]) -> Option<(usize, TypedLine)> {
        for (i, &b) in data.iter().enumerate() {
            if self.key(b) {
                let line = TypedLine {
                    text: String::from_utf8_lossy(&self.line).into_owned(),
                    known: self.known,
                    secret: None,
                };
                self.reset();
                return Some((i, line));
            }
        }
        None
    }

    fn reset(&mut self) {
        // The line may have been a password.
        zeroize::Zeroize::zeroize(&mut self.line);
        self.known = true;
        self.esc = Esc::None;
        self.pasting = false;
    }

    fn unknown(&mut self) {
        self.known = false;
    }

    fn push(&mut self, b: u8) {
        if self.line.len() >= MAX_TYPED_LINE {
            self.unknown();
        } else {
            self.line.push(b);
        }
    }

    /// One byte; `true` when it is an Enter that submits the line.
    fn key(&mut self, b: u8) -> bool {
        match self.esc {
            Esc::None => {}
            Esc::Start => {
                self.esc = match b {
                    b'[' => Esc::Csi { params: 0, len: 0 },
                    b'O' => Esc::Ss3,
                    // Alt-key: one byte, an editing command we do not follow.
                    _ => {
                        self.unknown();
                        Esc::None
                    }
                };
                return false;
            }
            Esc::Ss3 => {
                // Arrows and function keys in application mode.
                self.unknown();
                self.esc = Esc::None;
                return false;
            }
            Esc::Csi { params, len } => {
                match b {
                    b'0'..=b'9' if len < 8 => {
                        self.esc = Esc::Csi {
                            params: params * 10 + u32::from(b - b'0'),
                            len: len + 1,
                        };
                    }
                    0x20..=0x3f => self.esc = Esc::Csi { params, len: 8 },
                    _ => {
                        // The final byte.
                        self.esc = Esc::None;
                        match (b, params, len) {
                            (b'~', 200, 3) => self.pasting = true,
                            (b'~', 201, 3) => self.pasting = false,
                            _ => self.unknown(),
                        }
                    }
                }
                return false;
            }
        }
        match b {
            b'\r' | b'\n' if self.pasting => self.push(b'\n'),
            b'\r' | b'\n' => return true,
            0x1b => self.esc = Esc::Start,
            // Backspace, DEL: one character (its UTF-8 continuation bytes too).
            0x08 | 0x7f => {
                while let Some(c) = self.line.pop() {
                    if c & 0xc0 != 0x80 {
                        break;
                    }
                }
            }
            // Ctrl-U: the line (when the cursor is not known to be at its
            // end, only the part before it: still unknown).
            0x15 => self.line.clear(),
            // Ctrl-W: back over blanks, then a word.
            0x17 => {
                while self.line.last() == Some(&b' ') {
                    self.line.pop();
                }
                while self.line.last().is_some_and(|c| *c != b' ') {
                    self.line.pop();
                }
            }
            // Ctrl-C: the shell discards the line.
            0x03 => self.reset(),
            // Ctrl-L: redraw.
            0x0c => {}
            // Ctrl-D on an empty line is the shell's EOF; elsewhere it edits.
            0x04 if self.line.is_empty() => {}
            // Other controls (Tab completion, Ctrl-A/E/K/R/Y/V...).
            0x00..=0x1f => self.unknown(),
            _ => self.push(b),
        }
        false
    }
}

/// A pty request's record body: columns and rows (big-endian u32 each),
/// then TERM (at most 64 bytes).
pub fn pty_record(term: &str, cols: u32, rows: u32) -> Vec<u8> {
    let term = &term.as_bytes()[..term.len().min(64)];
    let mut b = Vec::with_capacity(8 + term.len());
    b.extend_from_slice(&cols.to_be_bytes());
    b.extend_from_slice(&rows.to_be_bytes());
    b.extend_from_slice(term);
    b
}

/// A window change's record body: columns and rows.
pub fn resize_record(cols: u32, rows: u32) -> Vec<u8> {
    pty_record("", cols, rows)
}

/// Columns, rows and TERM of a pty or window-change record body.
pub fn parse_pty_record(body: &[u8]) -> Option<(u32, u32, String)> {
    let cols = u32::from_be_bytes(body.get(0..4)?.try_into().ok()?);
    let rows = u32::from_be_bytes(body.get(4..8)?.try_into().ok()?);
    let term = String::from_utf8_lossy(body.get(8..)?).into_owned();
    Some((cols, rows, term))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn lines(input: &[u8]) -> Vec<(String, bool)> {
        let mut e = LineEditor::default();
        let mut out = Vec::new();
        let mut rest = input;
        while let Some((i, l)) = e.feed(rest) {
            out.push((l.text, l.known));
            rest = &rest[i + 1..];
        }
        out
    }

    #[test]
    fn printable_keys_and_edits_make_the_line() {
        assert_eq!(lines(b"ls -l\r"), vec![("ls -l".into(), true)]);
        assert_eq!(lines(b"rm -rx\x7ff /x\r"), vec![("rm -rf /x".into(), true)]);
        assert_eq!(
            lines(b"echo hi\x08\x08yo\r"),
            vec![("echo yo".into(), true)]
        );
        assert_eq!(lines(b"junk\x15ls\r"), vec![("ls".into(), true)]);
        assert_eq!(
            lines(b"rm -rf  old\x17/x\r"),
            vec![("rm -rf  /x".into(), true)]
        );
        assert_eq!(lines(b"rm -rf /\x03ls\r"), vec![("ls".into(), true)]);
        // UTF-8: one backspace takes one character.
        assert_eq!(
            lines("caf\u{e9}\x7fe\r".as_bytes()),
            vec![("cafe".into(), true)]
        );
        // Two Enters, a line each.
        assert_eq!(
            lines(b"a\rb\n"),
            vec![("a".into(), true), ("b".into(), true)]
        );
    }

    #[test]
    fn keys_it_does_not_follow_make_the_line_unknown_until_enter() {
        // Up arrow (history), in normal and application cursor mode.
        assert_eq!(lines(b"\x1b[A\r"), vec![("".into(), false)]);
        assert_eq!(lines(b"\x1bOA\r"), vec![("".into(), false)]);
        // Left arrow, then typing: the text is not what the shell has.
        assert!(!lines(b"rf /x\x1b[Drm -\r")[0].1);
        // Tab completion, Ctrl-A, Alt-b.
        assert!(!lines(b"rm -rf /tm\t\r")[0].1);
        assert!(!lines(b"x\x01rm \r")[0].1);
        assert!(!lines(b"x\x1bb\r")[0].1);
        // Known again after the Enter, and after Ctrl-C.
        assert_eq!(
            lines(b"\x1b[A\rls\r"),
            vec![("".into(), false), ("ls".into(), true)]
        );
        assert_eq!(lines(b"\x1b[Ax\x03ls\r"), vec![("ls".into(), true)]);
        // Ctrl-U with the cursor somewhere unknown does not make it known.
        assert!(!lines(b"\x1b[D\x15ls\r")[0].1);
        // Too long.
        let mut long = vec![b'a'; MAX_TYPED_LINE + 1];
        long.push(b'\r');
        assert!(!lines(&long)[0].1);
    }

    #[test]
    fn a_bracketed_paste_is_typed_text_and_its_newlines_are_lines() {
        let got = lines(b"\x1b[200~echo a\rrm -rf /x\x1b[201~\r");
        assert_eq!(got, vec![("echo a\nrm -rf /x".into(), true)]);
        let l = TypedLine {
            text: got[0].0.clone(),
            known: true,
            secret: None,
        };
        assert_eq!(
            l.commands().collect::<Vec<_>>(),
            vec!["echo a", "rm -rf /x"]
        );
    }

    #[test]
    fn an_enter_split_across_reads_is_found_where_it_is() {
        let mut e = LineEditor::default();
        assert_eq!(e.feed(b"rm -r"), None);
        let (i, l) = e.feed(b"f /x\rnext").unwrap();
        assert_eq!(i, 4);
        assert_eq!(l.text, "rm -rf /x");
        assert_eq!(e.feed(b"next"), None);
    }

    #[test]
    fn pty_records_round_trip() {
        assert_eq!(
            parse_pty_record(&pty_record("xterm-256color", 120, 40)),
            Some((120, 40, "xterm-256color".into()))
        );
        assert_eq!(
            parse_pty_record(&resize_record(80, 24)),
            Some((80, 24, "".into()))
        );
        assert_eq!(parse_pty_record(&[0, 0, 0]), None);
    }
}
