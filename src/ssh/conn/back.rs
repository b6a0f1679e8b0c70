//! Channels the host opens back towards the caller: a connection on a
//! remote forward (`forwarded-tcpip`, `forwarded-streamlocal@openssh.com`),
//! a use of the caller's agent (`auth-agent@openssh.com`), an X client
//! (`x11`). Each kind is refused until the caller asked for it and the
//! target allowed it ([`Back`]); then the same channel is opened to the
//! caller (refused when the caller refuses) and relayed:
//!
//! - forwards: bytes recorded up to `record_channel_bytes`, like `ssh -L`;
//! - agent: decoded (`ssh/agent_msg.rs`), each message recorded as an
//!   event, the raw bytes never (they carry signatures); requests that
//!   would change the caller's agent get a failure from tollgate;
//! - X11: the setup's cookie checked and swapped (`ssh/x11_auth.rs`), the
//!   rest recorded like a forward, the cookie left out of the recording.
//!
//! The opening, a refusal and the close (bytes each way) are events.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use russh::server::Msg;
use russh::{Channel, ChannelMsg, ChannelWriteHalf, client};
use tokio::sync::mpsc;

use super::forward::ForwardEnd;
use super::{Event, Meter, Stream, id};
use crate::ssh::agent_msg::{self, Frames};
use crate::ssh::x11_auth::{Setup, X11Cookies};

/// Where the host's channels go: the caller's session.
pub(in crate::ssh) struct BackSink {
    pub(super) caller: russh::server::Handle,
    pub(super) events: mpsc::Sender<Event>,
    pub(super) record_cap: usize,
}

/// What the host may open back, as the caller's requests were allowed.
#[derive(Default)]
pub(in crate::ssh) struct Back {
    sink: Mutex<Option<Arc<BackSink>>>,
    pub(super) tcpip: AtomicBool,
    pub(super) streamlocal: AtomicBool,
    pub(super) agent: AtomicBool,
    /// The cookies of the last `x11-req` (OpenSSH's client, too, keeps one
    /// per connection).
    pub(super) x11: Mutex<Option<Arc<X11Cookies>>>,
}

/// Shared by the caller's handler and the upstream's.
pub(in crate::ssh) type BackSlot = Arc<Back>;

/// A channel the host opened.
pub(in crate::ssh) enum Opened<'a> {
    Tcpip {
        connected: (&'a str, u32),
        originator: (&'a str, u32),
    },
    Streamlocal(&'a str),
    Agent,
    X11(&'a str, u32),
}

impl Back {
    /// Route the host's channels to `sink` (the first one set stays).
    pub(super) fn route(&self, sink: impl FnOnce() -> BackSink) {
        if let Ok(mut slot) = self.sink.lock()
            && slot.is_none()
        {
            *slot = Some(Arc::new(sink()));
        }
    }

    /// A channel the host opened: refused (`reply` dropped) unless its kind
    /// was allowed, else opened to the caller and relayed in a task of its
    /// own, so the upstream connection goes on meanwhile.
    pub(in crate::ssh) fn open(
        &self,
        up: Channel<client::Msg>,
        reply: client::ChannelOpenHandle,
        what: Opened<'_>,
    ) {
        let Some(sink) = self.sink.lock().ok().and_then(|s| s.clone()) else {
            return;
        };
        let (kind, dest) = match what {
            Opened::Tcpip {
                connected,
                originator,
            } => {
                let addr: String = connected.0.chars().take(256).collect();
                let origin: String = originator.0.chars().take(256).collect();
                let dest = format!(
                    "forwarded-tcpip {addr}:{} from {origin}:{}",
                    connected.1, originator.1
                );
                let kind = Kind::Tcpip(addr, connected.1, origin, originator.1);
                (self.tcpip.load(Ordering::Relaxed).then_some(kind), dest)
            }
            Opened::Streamlocal(path) => {
                let path: String = path.chars().take(1024).collect();
                let dest = format!("forwarded-streamlocal {path}");
                let allowed = self.streamlocal.load(Ordering::Relaxed);
                (allowed.then_some(Kind::Streamlocal(path)), dest)
            }
            Opened::Agent => (
                self.agent.load(Ordering::Relaxed).then_some(Kind::Agent),
                "auth-agent host to caller".to_string(),
            ),
            Opened::X11(origin, port) => {
                let origin: String = origin.chars().take(256).collect();
                let dest = format!("x11 from {origin}:{port}");
                let cookies = self.x11.lock().ok().and_then(|c| c.clone());
                (cookies.map(|c| Kind::X11(origin, port, c)), dest)
            }
        };
        tokio::spawn(async move {
            match kind {
                Some(kind) => sink.open(up, reply, kind, dest).await,
                None => {
                    // Dropping `reply` refuses the host's channel.
                    drop(reply);
                    sink.note(0, dest, false).await;
                }
            }
        });
    }
}

/// What to open towards the caller.
enum Kind {
    Tcpip(String, u32, String, u32),
    Streamlocal(String),
    Agent,
    X11(String, u32, Arc<X11Cookies>),
}

impl BackSink {
    async fn open(
        &self,
        up: Channel<client::Msg>,
        reply: client::ChannelOpenHandle,
        kind: Kind,
        dest: String,
    ) {
        let c = &self.caller;
        let (opened, relay) = match kind {
            Kind::Tcpip(addr, port, origin, oport) => (
                c.channel_open_forwarded_tcpip(addr, port, origin, oport)
                    .await,
                Relay::Raw,
            ),
            Kind::Streamlocal(path) => {
                (c.channel_open_forwarded_streamlocal(path).await, Relay::Raw)
            }
            Kind::Agent => (c.channel_open_agent().await, Relay::Agent),
            Kind::X11(origin, port, cookies) => {
                (c.channel_open_x11(origin, port).await, Relay::X11(cookies))
            }
        };
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
        let mut to_host = Meter::new(&self.events, n, Stream::Stdin, self.record_cap);
        let mut to_caller = Meter::new(&self.events, n, Stream::Stdout, self.record_cap);
        if matches!(relay, Relay::Agent) {
            // The agent's bytes are counted, never recorded: its events
            // say what moved.
            to_host = to_host.counting_only();
            to_caller = to_caller.counting_only();
        }
        let end = Arc::new(ForwardEnd::new(
            &self.events,
            n,
            dest,
            [to_host.moved.clone(), to_caller.moved.clone()],
        ));
        tokio::spawn(pump(caller, up, (to_host, to_caller), relay, end));
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

/// How a back channel's bytes are handled.
enum Relay {
    Raw,
    Agent,
    X11(Arc<X11Cookies>),
}

/// Both ways of a back channel until either side closes.
async fn pump(
    caller: Channel<Msg>,
    up: Channel<client::Msg>,
    (mut to_host, mut to_caller): (Meter, Meter),
    relay: Relay,
    end: Arc<ForwardEnd>,
) {
    let (mut caller_r, caller_w) = caller.split();
    let (mut up_r, up_w) = up.split();
    // Agent requests forwarded and not yet answered.
    let pending = AtomicU32::new(0);
    let agent = matches!(relay, Relay::Agent);
    let host_bound = async {
        let mut answers = Frames::default();
        while let Some(msg) = caller_r.wait().await {
            let sent = match msg {
                ChannelMsg::Data { data } if agent => {
                    answers.push(&data);
                    agent_answers(&mut answers, &mut to_host, &up_w, &pending, &end).await
                }
                ChannelMsg::Data { data } => {
                    to_host.record(&data).await && up_w.data_bytes(data).await.is_ok()
                }
                ChannelMsg::Eof => up_w.eof().await.is_ok(),
                ChannelMsg::Close => false,
                _ => true,
            };
            if !sent {
                break;
            }
        }
    };
    let caller_bound = async {
        let mut requests = Frames::default();
        let mut setup = match &relay {
            Relay::X11(c) => Some((c.clone(), Vec::new())),
            _ => None,
        };
        while let Some(msg) = up_r.wait().await {
            let sent = match msg {
                ChannelMsg::Data { data } if agent => {
                    requests.push(&data);
                    let mut a = Agent {
                        frames: &mut requests,
                        meter: &mut to_caller,
                        caller: &caller_w,
                        host: &up_w,
                        pending: &pending,
                        end: &end,
                    };
                    a.requests().await
                }
                ChannelMsg::Data { data } => match setup.as_mut() {
                    Some((cookies, buf)) => {
                        buf.extend_from_slice(&data);
                        match x11_setup(cookies, buf, &mut to_caller, &caller_w, &end).await {
                            Some(true) => {
                                setup = None;
                                true
                            }
                            Some(false) => false,
                            None => true,
                        }
                    }
                    None => {
                        to_caller.record(&data).await && caller_w.data_bytes(data).await.is_ok()
                    }
                },
                ChannelMsg::Eof => caller_w.eof().await.is_ok(),
                ChannelMsg::Close => false,
                _ => true,
            };
            if !sent {
                break;
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

/// The caller's agent's answers: each recorded as an event, then passed
/// on whole. `false`: the channel ends.
async fn agent_answers(
    frames: &mut Frames,
    meter: &mut Meter,
    host: &ChannelWriteHalf<client::Msg>,
    pending: &AtomicU32,
    end: &ForwardEnd,
) -> bool {
    loop {
        let m = match frames.next_message() {
            Ok(Some(m)) => m,
            Ok(None) => return true,
            Err(e) => {
                end.event(format!("agent answer of {} bytes: too long", e.0), false)
                    .await;
                return false;
            }
        };
        let _ = pending.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| p.checked_sub(1));
        end.event(format!("agent {}", agent_msg::describe_answer(&m)), true)
            .await;
        if !(meter.record(&m).await && host.data_bytes(m).await.is_ok()) {
            return false;
        }
    }
}

/// The host's side of an agent channel, for its requests.
struct Agent<'a> {
    frames: &'a mut Frames,
    meter: &'a mut Meter,
    caller: &'a ChannelWriteHalf<Msg>,
    host: &'a ChannelWriteHalf<client::Msg>,
    pending: &'a AtomicU32,
    end: &'a ForwardEnd,
}

impl Agent<'_> {
    /// Each whole request: recorded as an event, then passed on, or
    /// refused with a failure from tollgate (when no earlier request is
    /// still unanswered, so answers stay in order; else the channel ends).
    async fn requests(&mut self) -> bool {
        loop {
            let m = match self.frames.next_message() {
                Ok(Some(m)) => m,
                Ok(None) => return true,
                Err(e) => {
                    let what = format!("agent request of {} bytes: too long", e.0);
                    self.end.event(what, false).await;
                    return false;
                }
            };
            let d = agent_msg::describe_request(&m);
            self.end.event(format!("agent {}", d.what), d.allowed).await;
            let sent = if d.allowed {
                self.pending.fetch_add(1, Ordering::Relaxed);
                self.meter.record(&m).await && self.caller.data_bytes(m).await.is_ok()
            } else if self.pending.load(Ordering::Relaxed) == 0 {
                let failure = Bytes::from_static(agent_msg::FAILURE_MESSAGE);
                self.host.data_bytes(failure).await.is_ok()
            } else {
                false
            };
            if !sent {
                return false;
            }
        }
    }
}

/// The host's first bytes on an X11 channel: `None` while the setup is
/// incomplete; `Some(true)` once it went on with the caller's cookie (the
/// recording has it with the cookie zeroed), `Some(false)` when refused.
async fn x11_setup(
    cookies: &X11Cookies,
    buf: &mut Vec<u8>,
    meter: &mut Meter,
    caller: &ChannelWriteHalf<Msg>,
    end: &ForwardEnd,
) -> Option<bool> {
    match cookies.rewrite(buf) {
        Setup::More if buf.len() <= 12 + 2 * 256 + 8 => None,
        Setup::More => Some(false),
        Setup::Refused(why) => {
            end.event(format!("x11 connection refused: {why}"), false)
                .await;
            Some(false)
        }
        Setup::Rewritten { bytes, used } => {
            let mut shown = bytes.clone();
            let cookie_at = shown.len() - cookies.caller.len().div_ceil(4) * 4;
            shown[cookie_at..].fill(0);
            let rest = Bytes::copy_from_slice(&buf[used..]);
            buf.clear();
            let ok = meter.record_as(&Bytes::from(shown), bytes.len()).await
                && caller.data_bytes(Bytes::from(bytes)).await.is_ok()
                && (rest.is_empty()
                    || meter.record(&rest).await && caller.data_bytes(rest).await.is_ok());
            Some(ok)
        }
    }
}
