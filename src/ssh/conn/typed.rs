//! A pty shell's input, judged a line at a time (best effort, see
//! `ssh/pty.rs`): the keystrokes before an Enter go on as they come (the
//! shell echoes them), the Enter waits for the compio side's verdict on the
//! line. A line typed at the host's secret prompt (`ssh/prompt.rs`) goes
//! to be recorded by its length only, not judged. Allowed: the Enter goes on. Refused: the Enter is dropped, the
//! upstream gets Ctrl-U and Ctrl-C (which discard the line in readline,
//! zsh, fish and a cooked tty alike; an editor that ignores Ctrl-U still
//! drops it on Ctrl-C, so a later Enter cannot run it), and the caller's
//! terminal reads the rule's message. A line held for approval holds its
//! Enter (and the connection's other channels) until a reviewer decides.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use russh::ChannelId;
use russh::server::Session;
use tokio::sync::oneshot;
use zeroize::Zeroize;

use super::{Event, Gate, Stream, id};
use crate::ssh::prompt::OutputTail;
use crate::ssh::pty::TypedLine;

/// A pty channel's last output line, kept by its upstream → caller task
/// once a shell's lines are judged.
#[derive(Default)]
pub(super) struct PromptWatch {
    on: AtomicBool,
    tail: Mutex<OutputTail>,
}

impl PromptWatch {
    pub(super) fn watch(&self) {
        self.on.store(true, Ordering::Relaxed);
    }

    /// Host output, before it goes on to the caller.
    pub(super) fn push(&self, data: &[u8]) {
        if self.on.load(Ordering::Relaxed)
            && let Ok(mut t) = self.tail.lock()
        {
            t.push(data);
        }
    }

    /// The line, with its text wiped when it answers a secret prompt.
    fn classify(&self, words: &[String], mut line: TypedLine) -> TypedLine {
        let secret = line.known
            && self
                .tail
                .lock()
                .is_ok_and(|t| t.is_secret_prompt(words, &line.text));
        if secret {
            line.secret = Some(line.text.len());
            line.text.zeroize();
        }
        line
    }
}

/// What the upstream shell gets instead of a refused line's Enter.
const DISCARD_LINE: &[u8] = b"\x15\x03";

impl Gate {
    pub(super) async fn typed_data(
        &mut self,
        channel: ChannelId,
        mut rest: Bytes,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        while !rest.is_empty() {
            let found = match self.chans.get_mut(&channel).and_then(|c| c.typed.as_mut()) {
                Some(editor) => editor.feed(&rest),
                None => return self.forward_up(channel, rest).await,
            };
            let Some((at, line)) = found else {
                return self.forward_up(channel, rest).await;
            };
            let before = rest.slice(..at);
            let enter = rest.slice(at..at + 1);
            rest = rest.slice(at + 1..);
            if !before.is_empty() {
                self.forward_up(channel, before).await?;
            }
            let words = self
                .up
                .as_ref()
                .map(|u| u.terminal.secret_prompts.as_slice());
            let line = match (self.chans.get(&channel), words) {
                (Some(c), Some(words)) => c.tail.classify(words, line),
                _ => line,
            };
            // A blank line needs no verdict.
            let verdict = if line.known && line.secret.is_none() && line.commands().next().is_none()
            {
                Ok(())
            } else {
                let (answer, verdict) = oneshot::channel();
                let ev = Event::Typed {
                    channel: id(channel),
                    line,
                    answer,
                };
                if self.events.send(ev).await.is_err() {
                    return Err(russh::Error::Disconnect);
                }
                verdict.await.map_err(|_| russh::Error::Disconnect)?
            };
            match verdict {
                Ok(()) => self.forward_up(channel, enter).await?,
                Err(message) => {
                    self.forward_up(channel, Bytes::from_static(DISCARD_LINE))
                        .await?;
                    let text = Bytes::from(format!("\r\n[tollgate] {message}\r\n"));
                    // What the caller reads is recorded like the host's output.
                    let (ack, done) = oneshot::channel();
                    let ev = Event::Data {
                        channel: id(channel),
                        stream: Stream::Stdout,
                        recorded: text.clone(),
                        len: text.len(),
                        ack: Some(ack),
                    };
                    if self.events.send(ev).await.is_err() || !done.await.unwrap_or(false) {
                        return Err(russh::Error::Disconnect);
                    }
                    session.data(channel, text)?;
                }
            }
        }
        Ok(())
    }
}
