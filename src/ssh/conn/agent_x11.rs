//! The caller's `auth-agent-req@openssh.com` (`ssh -A`) and `x11-req`
//! (`ssh -X`, `-Y`) on a session channel: refused and recorded unless the
//! target's `allow_forwarding` names `"agent"` / `"x11"`; else passed to
//! the host (X11 with a cookie of tollgate's own, `ssh/x11_auth.rs`), and
//! the channels the host opens back are relayed by `back.rs`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rand::RngCore;
use russh::ChannelId;
use russh::server::Session;

use super::back::BackSink;
use super::{Gate, id};
use crate::ssh::x11_auth::{self, X11Cookies};

impl Gate {
    /// The back channels go to this caller.
    fn route_back(&self, session: &Session) {
        if let Some(up) = &self.up {
            up.back.route(|| BackSink {
                caller: session.handle(),
                events: self.events.clone(),
                record_cap: up.record_cap,
            });
        }
    }

    /// Send a request upstream on `channel` and wait for the host's answer.
    async fn host_agrees(&mut self, channel: ChannelId, request: Upstream) -> bool {
        let Some(c) = self.chans.get_mut(&channel) else {
            return false;
        };
        let sent = match request {
            Upstream::Agent => c.up.agent_forward(true).await.is_ok(),
            Upstream::X11 {
                single,
                protocol,
                cookie,
                screen,
            } => {
                c.up.request_x11(true, single, protocol, cookie, screen)
                    .await
                    .is_ok()
            }
        };
        sent && c.replies.recv().await.unwrap_or(false)
    }

    pub(super) async fn agent_forwarding(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<bool, russh::Error> {
        let n = id(channel);
        if !self.up.as_ref().is_some_and(|u| u.forwarding.agent) {
            self.note(n, "agent forwarding".into(), false).await;
            return Ok(false);
        }
        self.route_back(session);
        if let Some(up) = &self.up {
            up.back.agent.store(true, Ordering::Relaxed);
        }
        let ok = self.host_agrees(channel, Upstream::Agent).await;
        let what = if ok {
            "agent forwarding"
        } else {
            "agent forwarding: the host refused it"
        };
        self.note(n, what.into(), ok).await;
        Ok(ok)
    }

    pub(super) async fn x11_forwarding(
        &mut self,
        channel: ChannelId,
        single: bool,
        (protocol, cookie): (&str, &str),
        screen: u32,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        let n = id(channel);
        let protocol: String = protocol.chars().take(64).collect();
        let what = format!("x11 forwarding ({protocol}, screen {screen})");
        let caller = x11_auth::parse_hex(cookie);
        let allowed = self.up.as_ref().is_some_and(|u| u.forwarding.x11);
        let Some(caller) = caller.filter(|_| allowed) else {
            let what = if allowed {
                format!("{what}: a cookie tollgate cannot read")
            } else {
                what
            };
            self.note(n, what, false).await;
            return session.channel_failure(channel);
        };
        let mut host = vec![0u8; caller.len()];
        rand::rng().fill_bytes(&mut host);
        let request = Upstream::X11 {
            single,
            protocol: protocol.clone(),
            cookie: x11_auth::to_hex(&host),
            screen,
        };
        let cookies = X11Cookies {
            protocol,
            caller,
            host,
        };
        self.route_back(session);
        if let Some(up) = &self.up
            && let Ok(mut slot) = up.back.x11.lock()
        {
            *slot = Some(Arc::new(cookies));
        }
        let ok = self.host_agrees(channel, request).await;
        let what = if ok {
            what
        } else {
            format!("{what}: the host refused it")
        };
        self.note(n, what, ok).await;
        if ok {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }
}

/// A request passed to the host.
enum Upstream {
    Agent,
    X11 {
        single: bool,
        protocol: String,
        cookie: String,
        screen: u32,
    },
}
