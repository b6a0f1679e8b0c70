//! `direct-tcpip` channels (`ssh -L`, `-W`, and `-D`, whose SOCKS requests
//! the client turns into the same channel: the gateway cannot tell them
//! apart, so one setting allows all three). Where the target's
//! `allow_forwarding` and `permit_open` allow the destination, the channel
//! is opened through the upstream (the host connects, as `ssh -L` to it
//! would) and relayed like any channel, its bytes recorded up to
//! `record_channel_bytes`; its opening, refusal and close (with the bytes
//! each way) are recorded as events.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use russh::Channel;
use russh::server::{ChannelOpenHandle, Msg, Session};
use tokio::sync::mpsc;

use super::{Event, Gate, id};

/// A relayed forward's close, noted once with the bytes each way.
pub(super) struct ForwardEnd {
    events: mpsc::Sender<Event>,
    channel: u32,
    dest: String,
    /// Caller → host, host → caller.
    bytes: [Arc<AtomicU64>; 2],
    noted: AtomicBool,
}

impl ForwardEnd {
    pub(super) fn new(
        events: &mpsc::Sender<Event>,
        channel: u32,
        dest: String,
        bytes: [Arc<AtomicU64>; 2],
    ) -> ForwardEnd {
        ForwardEnd {
            events: events.clone(),
            channel,
            dest,
            bytes,
            noted: AtomicBool::new(false),
        }
    }

    pub(super) async fn note(&self) {
        if self.noted.swap(true, Ordering::Relaxed) {
            return;
        }
        let [to, from] = [&self.bytes[0], &self.bytes[1]].map(|b| b.load(Ordering::Relaxed));
        let what = format!(
            "{} closed: {to} bytes to it, {from} bytes from it",
            self.dest
        );
        let _ = self
            .events
            .send(Event::Note {
                channel: self.channel,
                what,
                allowed: true,
            })
            .await;
    }
}

impl Gate {
    pub(super) async fn open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        originator: (&str, u32),
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        let host: String = host.chars().take(256).collect();
        let dest = format!("direct-tcpip {host}:{port}");
        let Some(up) = &self.up else {
            return Ok(());
        };
        if !up.forwarding.permits(&host, port) {
            // Dropping `reply` refuses the channel.
            self.note(0, dest, false).await;
            return Ok(());
        }
        let origin: String = originator.0.chars().take(256).collect();
        let opened = up
            .handle
            .channel_open_direct_tcpip(host.as_str(), port, origin, originator.1)
            .await;
        let up_chan = match opened {
            Ok(c) => c,
            Err(e) => {
                self.note(
                    0,
                    format!("{dest}: the host could not open it ({e})"),
                    false,
                )
                .await;
                return Ok(());
            }
        };
        let n = id(channel.id());
        self.note(n, format!("{dest} opened"), true).await;
        reply.accept().await;
        self.attach(channel, up_chan, session, Some(dest));
        Ok(())
    }
}
