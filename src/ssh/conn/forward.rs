//! `direct-tcpip` channels (`ssh -L`, `-W`, and `-D`, whose SOCKS requests
//! the client turns into the same channel: the gateway cannot tell them
//! apart, so one setting allows all three). Where the target's
//! `allow_forwarding` and `permit_open` allow the destination, the channel
//! is opened through the upstream (the host connects, as `ssh -L` to it
//! would) and relayed like any channel, its bytes recorded up to
//! `record_channel_bytes`; its opening, refusal and close (with the bytes
//! each way) are recorded as events. Remote forwards (`ssh -R`, allowed by
//! `"remote"`): the host listens, and each connection it accepts is opened
//! to the caller as a `forwarded-tcpip` channel and relayed the same way
//! (`back.rs`). Unix sockets (`"streamlocal"`, `permit_streamlocal`): the
//! same both ways, `direct-streamlocal@openssh.com` and
//! `streamlocal-forward@openssh.com`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use russh::Channel;
use russh::server::{ChannelOpenHandle, Msg, Session};
use tokio::sync::mpsc;

use super::back::BackSink;
use super::{Event, Gate, id};

/// A relayed forward's close, noted once with the bytes each way (caller
/// to host, host to caller, whichever side connected).
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

    /// An event on this channel (what an agent asked, a refused X11
    /// connection).
    pub(super) async fn event(&self, what: String, allowed: bool) {
        let _ = self
            .events
            .send(Event::Note {
                channel: self.channel,
                what,
                allowed,
            })
            .await;
    }

    pub(super) async fn note(&self) {
        if self.noted.swap(true, Ordering::Relaxed) {
            return;
        }
        let [to, from] = [&self.bytes[0], &self.bytes[1]].map(|b| b.load(Ordering::Relaxed));
        let what = format!(
            "{} closed: {to} bytes caller to host, {from} bytes host to caller",
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

impl Gate {
    /// `tcpip-forward` (`ssh -R`): where allowed, the host is asked to
    /// listen, and its connections come back through [`RemoteSink`].
    pub(super) async fn remote_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        session: &mut Session,
    ) -> Result<bool, russh::Error> {
        let address: String = address.chars().take(256).collect();
        let what = format!("tcpip-forward {address}:{port}");
        let Some(up) = self.up.as_ref().filter(|u| u.forwarding.remote) else {
            self.note(0, what, false).await;
            return Ok(false);
        };
        up.back.route(|| BackSink {
            caller: session.handle(),
            events: self.events.clone(),
            record_cap: up.record_cap,
        });
        up.back.tcpip.store(true, Ordering::Relaxed);
        match up.handle.tcpip_forward(address.as_str(), *port).await {
            Ok(bound) => {
                if *port == 0 {
                    *port = bound;
                }
                self.note(0, format!("tcpip-forward {address}:{port} listening"), true)
                    .await;
                Ok(true)
            }
            Err(e) => {
                self.note(0, format!("{what}: the host refused it ({e})"), false)
                    .await;
                Ok(false)
            }
        }
    }
}

impl Gate {
    /// `direct-streamlocal@openssh.com` (`ssh -L PORT:/host.sock`): a unix
    /// socket on the host, where allowed and permitted.
    pub(super) async fn open_direct_streamlocal(
        &mut self,
        channel: Channel<Msg>,
        path: &str,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        let path: String = path.chars().take(1024).collect();
        let dest = format!("direct-streamlocal {path}");
        let Some(up) = &self.up else {
            return Ok(());
        };
        if !up.forwarding.permits_socket(&path) {
            // Dropping `reply` refuses the channel.
            self.note(0, dest, false).await;
            return Ok(());
        }
        let up_chan = match up
            .handle
            .channel_open_direct_streamlocal(path.as_str())
            .await
        {
            Ok(c) => c,
            Err(e) => {
                let what = format!("{dest}: the host could not open it ({e})");
                self.note(0, what, false).await;
                return Ok(());
            }
        };
        self.note(id(channel.id()), format!("{dest} opened"), true)
            .await;
        reply.accept().await;
        self.attach(channel, up_chan, session, Some(dest));
        Ok(())
    }

    /// `streamlocal-forward@openssh.com` (`ssh -R /host.sock:...`): the
    /// host listens on a permitted path, its connections come back.
    pub(super) async fn streamlocal_listen(
        &mut self,
        path: &str,
        session: &mut Session,
    ) -> Result<bool, russh::Error> {
        let path: String = path.chars().take(1024).collect();
        let what = format!("streamlocal-forward {path}");
        let Some(up) = self
            .up
            .as_ref()
            .filter(|u| u.forwarding.permits_socket(&path))
        else {
            self.note(0, what, false).await;
            return Ok(false);
        };
        up.back.route(|| BackSink {
            caller: session.handle(),
            events: self.events.clone(),
            record_cap: up.record_cap,
        });
        up.back.streamlocal.store(true, Ordering::Relaxed);
        match up.handle.streamlocal_forward(path.as_str()).await {
            Ok(()) => {
                self.note(0, format!("{what} listening"), true).await;
                Ok(true)
            }
            Err(e) => {
                self.note(0, format!("{what}: the host refused it ({e})"), false)
                    .await;
                Ok(false)
            }
        }
    }

    pub(super) async fn streamlocal_cancel(&mut self, path: &str) -> bool {
        match self
            .up
            .as_ref()
            .filter(|u| u.forwarding.permits_socket(path))
        {
            Some(up) => up.handle.cancel_streamlocal_forward(path).await.is_ok(),
            None => false,
        }
    }
}
