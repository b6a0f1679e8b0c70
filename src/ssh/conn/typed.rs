//! A pty shell's input, judged a line at a time (best effort, see
//! `ssh/pty.rs`): the keystrokes before an Enter go on as they come (the
//! shell echoes them), the Enter waits for the compio side's verdict on the
//! line. Allowed: the Enter goes on. Refused: the Enter is dropped, the
//! upstream gets Ctrl-U and Ctrl-C (which discard the line in readline,
//! zsh, fish and a cooked tty alike; an editor that ignores Ctrl-U still
//! drops it on Ctrl-C, so a later Enter cannot run it), and the caller's
//! terminal reads the rule's message. A line held for approval holds its
//! Enter (and the connection's other channels) until a reviewer decides.

use bytes::Bytes;
use russh::ChannelId;
use russh::server::Session;
use tokio::sync::oneshot;

use super::{Event, Gate, Stream, id};

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
            // A blank line needs no verdict.
            let verdict = if line.known && line.commands().next().is_none() {
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
