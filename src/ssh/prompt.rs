//! Secrets typed at a host's prompt (`sudo`, `su`, `passwd`, an ssh key's
//! passphrase) are not command lines: they are recorded as "a secret at a
//! prompt, N bytes" and not judged, so a password never becomes a
//! statement in the command log, its exports or the SIEM.
//!
//! The heuristic, at the line's Enter: the host's output since its last
//! line break (escape sequences left out, the last [`MAX_TAIL`] bytes)
//!
//! 1. ends in `:` (blanks after it allowed), and
//! 2. contains one of the target's `secret_prompts` words (lowercase
//!    match: `[sudo] password for alice:`, `Password:`, `Enter passphrase
//!    for key '/root/.ssh/id_ed25519':`), and
//! 3. does not end with what was typed: a host that echoes the keys (echo
//!    on, so not a secret prompt) has the typed text after the colon.
//!
//! What it cannot tell: a caller who makes their own shell look like a
//! prompt (`PS1='Password: '; stty -echo`) has their lines recorded as
//! secrets, unjudged. They stay visible to an auditor as such (verdict
//! `audit`, rule `typed-secret-at-prompt`), and the pty's input stream in
//! the recording still holds every key typed, the secret's too.

/// The most output kept for the check.
pub const MAX_TAIL: usize = 512;

/// The host's last output line on a pty channel.
#[derive(Debug, Default)]
pub struct OutputTail {
    line: Vec<u8>,
    /// Inside an escape sequence: 1 after ESC, 2 in CSI, 3 in OSC.
    esc: u8,
}

impl OutputTail {
    /// Host output, as it reaches the caller.
    pub fn push(&mut self, data: &[u8]) {
        for &b in data {
            match (self.esc, b) {
                (0, 0x1b) => self.esc = 1,
                (0, b'\n' | b'\r') => self.line.clear(),
                (0, 0x07 | 0x08) => {}
                (0, _) => {
                    if self.line.len() >= MAX_TAIL {
                        self.line.drain(..MAX_TAIL / 2);
                    }
                    self.line.push(b);
                }
                (1, b'[') => self.esc = 2,
                (1, b']') => self.esc = 3,
                (1, _) => self.esc = 0,
                // CSI ends at its final byte.
                (2, 0x40..=0x7e) => self.esc = 0,
                (2, _) => {}
                // OSC ends at BEL or ESC \.
                (3, 0x07) => self.esc = 0,
                (3, 0x1b) => self.esc = 1,
                (3, _) => {}
                _ => self.esc = 0,
            }
        }
    }

    /// Whether `typed` (the line at its Enter) answers a secret prompt.
    pub fn is_secret_prompt(&self, words: &[String], typed: &str) -> bool {
        if words.is_empty() || typed.is_empty() {
            return false;
        }
        let shown = String::from_utf8_lossy(&self.line).to_lowercase();
        let shown = shown.trim_end();
        shown.ends_with(':')
            && words.iter().any(|w| shown.contains(w.as_str()))
            && !shown.ends_with(&typed.trim_end().to_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words() -> Vec<String> {
        vec!["password".into(), "passphrase".into()]
    }

    fn tail(out: &[u8]) -> OutputTail {
        let mut t = OutputTail::default();
        t.push(out);
        t
    }

    #[test]
    fn sudo_su_and_passphrase_prompts_are_recognised() {
        let w = words();
        assert!(tail(b"$ sudo id\r\n[sudo] password for alice: ").is_secret_prompt(&w, "hunter2"));
        assert!(tail(b"Password:").is_secret_prompt(&w, "x"));
        assert!(
            tail(b"\x1b[1mEnter passphrase for key '/root/.ssh/id_ed25519':\x1b[0m ")
                .is_secret_prompt(&w, "s3cret")
        );
        // Output split across reads.
        let mut t = tail(b"[sudo] pass");
        t.push(b"word for bob: ");
        assert!(t.is_secret_prompt(&w, "pw"));
    }

    #[test]
    fn shell_prompts_echoed_lines_and_old_prompts_are_not() {
        let w = words();
        assert!(!tail(b"root@web:~# ").is_secret_prompt(&w, "ls"));
        // Echo on: the typed text follows the colon.
        assert!(!tail(b"root@web:~# echo password:").is_secret_prompt(&w, "echo password:"));
        assert!(!tail(b"Password: hunter2").is_secret_prompt(&w, "hunter2"));
        // The prompt was answered and output followed.
        assert!(!tail(b"Password: \r\nSorry, try again.\r\n# ").is_secret_prompt(&w, "x"));
        // No words, or nothing typed.
        assert!(!tail(b"Password: ").is_secret_prompt(&[], "x"));
        assert!(!tail(b"Password: ").is_secret_prompt(&w, ""));
    }

    #[test]
    fn the_tail_stays_bounded() {
        let mut t = OutputTail::default();
        for _ in 0..100 {
            t.push(&[b'a'; 100]);
        }
        assert!(t.line.len() <= MAX_TAIL);
        t.push(b"Password: ");
        assert!(t.is_secret_prompt(&words(), "x"));
    }
}
