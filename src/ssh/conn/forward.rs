//! `direct-tcpip` channels (`ssh -L`, `-W`, and `-D`, whose SOCKS requests
//! the client turns into the same channel: the gateway cannot tell them
//! apart, so one setting allows all three). Where the target's
//! `allow_forwarding` and `permit_open` allow the destination, the channel
//! is opened through the upstream (the host connects, as `ssh -L` to it
//! would) and relayed like any channel, its bytes recorded up to
//! `record_channel_bytes`; its opening, refusal and close (with the bytes
//! each way) are recorded as events. Remote forwards (`ssh -R`, allowed by
//! `"remote"`): the host listens, and each connection it accepts is opened
//! to the caller as a `forwarded-tcpip` channel and relayed the same way.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use russh::server::{ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelMsg};
use tokio::sync::mpsc;

use super::{Event, Gate, Meter, Stream, id};

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

/// Where the host's connections on a remote forward (`ssh -R`) go: the
/// caller's session, set once the caller's `tcpip-forward` was allowed.
pub(in crate::ssh) struct RemoteSink {
    pub(super) caller: russh::server::Handle,
    pub(super) events: mpsc::Sender<Event>,
    pub(super) record_cap: usize,
}

/// Filled when a remote forward is allowed; the upstream's handler reads it.
pub(in crate::ssh) type RemoteSlot = Arc<std::sync::Mutex<Option<Arc<RemoteSink>>>>;

impl RemoteSink {
    /// A connection the host accepted on a remote forward: opened to the
    /// caller (refused when the caller refuses), then relayed and recorded.
    pub(in crate::ssh) async fn open(
        &self,
        up: Channel<russh::client::Msg>,
        reply: russh::client::ChannelOpenHandle,
        connected: (&str, u32),
        originator: (&str, u32),
    ) {
        let addr: String = connected.0.chars().take(256).collect();
        let origin: String = originator.0.chars().take(256).collect();
        let dest = format!(
            "forwarded-tcpip {addr}:{} from {origin}:{}",
            connected.1, originator.1
        );
        let opened = self
            .caller
            .channel_open_forwarded_tcpip(addr, connected.1, origin, originator.1)
            .await;
        let caller = match opened {
            Ok(c) => c,
            Err(e) => {
                // Dropping `reply` refuses the host's channel.
                self.note(0, format!("{dest}: the caller refused it ({e})"), false)
                    .await;
                return;
            }
        };
        let n = id(caller.id());
        self.note(n, format!("{dest} opened"), true).await;
        reply.accept().await;
        let to_host = Meter::new(&self.events, n, Stream::Stdin, self.record_cap);
        let to_caller = Meter::new(&self.events, n, Stream::Stdout, self.record_cap);
        let end = Arc::new(ForwardEnd::new(
            &self.events,
            n,
            dest,
            [to_host.moved.clone(), to_caller.moved.clone()],
        ));
        tokio::spawn(pump(caller, up, to_host, to_caller, end));
    }

    async fn note(&self, channel: u32, what: String, allowed: bool) {
        let _ = self
            .events
            .send(Event::Note {
                channel,
                what,
                allowed,
            })
            .await;
    }
}

/// Both ways of a remote forward's connection until either side closes.
async fn pump(
    caller: Channel<Msg>,
    up: Channel<russh::client::Msg>,
    mut to_host: Meter,
    mut to_caller: Meter,
    end: Arc<ForwardEnd>,
) {
    let (mut caller_r, caller_w) = caller.split();
    let (mut up_r, up_w) = up.split();
    let host_bound = async {
        while let Some(msg) = caller_r.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    let sent = to_host.record(&data).await && up_w.data_bytes(data).await.is_ok();
                    if !sent {
                        break;
                    }
                }
                ChannelMsg::Eof => {
                    let _ = up_w.eof().await;
                }
                ChannelMsg::Close => break,
                _ => {}
            }
        }
    };
    let caller_bound = async {
        while let Some(msg) = up_r.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    let sent =
                        to_caller.record(&data).await && caller_w.data_bytes(data).await.is_ok();
                    if !sent {
                        break;
                    }
                }
                ChannelMsg::Eof => {
                    let _ = caller_w.eof().await;
                }
                ChannelMsg::Close => break,
                _ => {}
            }
        }
    };
    tokio::select! {
        _ = host_bound => {}
        _ = caller_bound => {}
    }
    end.note().await;
    let _ = up_w.close().await;
    let _ = caller_w.close().await;
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
        if let Ok(mut slot) = up.remote.lock()
            && slot.is_none()
        {
            *slot = Some(Arc::new(RemoteSink {
                caller: session.handle(),
                events: self.events.clone(),
                record_cap: up.record_cap,
            }));
        }
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
