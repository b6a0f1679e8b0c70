//! The tokio side of one SSH connection: the russh server towards the
//! caller and, once admitted, one upstream channel per caller channel.
//! Requests (pty, env, exec, shell, subsystem) are forwarded with
//! `want_reply` and the upstream's answer is the caller's; exec waits for
//! the compio side's verdict first. A pty shell's typed lines are judged
//! at Enter (`conn/typed.rs`); `direct-tcpip`, streamlocal and remote
//! forwards are relayed where the target allows them (`conn/forward.rs`),
//! agent and X11 forwarding too (`conn/agent_x11.rs`); the channels the
//! host opens back go through `conn/back.rs`. Whatever is not allowed is
//! refused and noted.

mod agent_x11;
mod back;
mod down;
mod forward;
mod meter;
mod typed;

pub(super) use back::{BackSlot, Opened};
use down::{Down, down};
use meter::Meter;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use russh::server::{self, Auth, ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId, ChannelWriteHalf, Pty, Sig, client};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};
use zeroize::Zeroizing;

use super::sftp::{self, SftpUp};
use super::upstream::{self, Upstream};
use super::{AuthAttempt, AuthStep, Event, Presented, Stream};
use crate::identity::sshcert::SshTrust;

/// What the compio side hands the tokio side for one connection.
pub(crate) struct Start {
    pub stream: std::net::TcpStream,
    pub config: Arc<server::Config>,
    pub auth: mpsc::Sender<AuthAttempt>,
    /// `[identity.ssh]`: which offered keys may be worth the one attempt.
    pub trust: Option<Arc<SshTrust>>,
    pub events: mpsc::Sender<Event>,
    /// Resolves (with an error) when the compio side drops the session.
    pub stop: oneshot::Receiver<()>,
}

/// Serve one connection until either side ends it.
pub(crate) async fn serve(start: Start) {
    let Start {
        stream,
        config,
        auth,
        trust,
        events,
        stop,
    } = start;
    let Ok(sock) = tokio::net::TcpStream::from_std(stream) else {
        return;
    };
    let _ = sock.set_nodelay(true);
    let gate = Gate {
        auth: Some(auth),
        trust,
        events,
        up: None,
        chans: HashMap::new(),
        pending_token: None,
    };
    let Ok(running) = server::run_stream(config, sock, gate).await else {
        return;
    };
    let handle = running.handle();
    tokio::select! {
        _ = running => {}
        _ = stop => {
            let _ = handle
                .disconnect(russh::Disconnect::ByApplication, "session ended by tollgate".into(), String::new())
                .await;
        }
    }
}

/// The upstream after login, with the session's settings.
struct Admitted {
    handle: Upstream,
    record_cap: usize,
    shell_allowed: bool,
    sftp_file_cap: Option<usize>,
    terminal: crate::config::ssh_session::SshTerminal,
    forwarding: crate::config::ssh_session::SshForwarding,
    /// Where the channels the host opens back go, once allowed.
    back: BackSlot,
}

/// One caller channel and its upstream twin.
struct Chan {
    up: ChannelWriteHalf<client::Msg>,
    /// The upstream's answers to forwarded requests, in order.
    replies: mpsc::Receiver<bool>,
    stdin: Meter,
    /// The sftp relay, for a target that decodes sftp (`sftp.rs`).
    sftp: Option<SftpUp>,
    /// The recording caps left of stdout and stderr (raised by a pty).
    down_caps: [Arc<AtomicUsize>; 2],
    /// A pty was granted on this channel.
    pty: bool,
    /// A pty shell's typed-line editor (`typed_lines` not `off`).
    typed: Option<super::pty::LineEditor>,
    /// The host's last output line, watched for secret prompts once the
    /// editor is on.
    tail: Arc<typed::PromptWatch>,
    /// A forward, noted at its close (by whichever side closes first).
    forward: Option<Arc<forward::ForwardEnd>>,
    /// The upstream → caller task. Aborted when the gateway or the caller
    /// closes the channel: russh does not report the upstream's answering
    /// close of a channel we closed, so the task would wait until the
    /// connection ends.
    down: tokio::task::JoinHandle<()>,
}

struct Gate {
    /// Taken by the first attempt that reaches the compio side: one per
    /// connection. Keys screened out by `trust` never take it, so a client
    /// that tries its other keys first still gets to its certificate.
    auth: Option<mpsc::Sender<AuthAttempt>>,
    trust: Option<Arc<SshTrust>>,
    events: mpsc::Sender<Event>,
    up: Option<Admitted>,
    chans: HashMap<ChannelId, Chan>,
    /// Keyboard-interactive: asked, not yet answered.
    pending_token: Option<()>,
}

fn id(c: ChannelId) -> u32 {
    c.number()
}

impl Gate {
    /// Hand the credential to the compio side and follow its answer.
    async fn admit(&mut self, user: &str, presented: Presented) -> Result<Auth, russh::Error> {
        // One attempt per connection: a second is the end of it.
        let Some(tx) = self.auth.take() else {
            return Err(russh::Error::Disconnect);
        };
        let (answer, step) = oneshot::channel();
        let attempt = AuthAttempt {
            user: user.chars().take(256).collect(),
            presented,
            answer,
        };
        if tx.send(attempt).await.is_err() {
            return Err(russh::Error::Disconnect);
        }
        match step.await {
            Err(_) | Ok(AuthStep::Reject) => Ok(Auth::reject()),
            Ok(AuthStep::Login { params, result, go }) => match upstream::login(&params).await {
                Err(e) => {
                    let _ = result.send(Err(e));
                    Ok(Auth::reject())
                }
                Ok((handle, back)) => {
                    let _ = result.send(Ok(()));
                    if go.await != Ok(true) {
                        return Ok(Auth::reject());
                    }
                    self.up = Some(Admitted {
                        handle,
                        record_cap: params.record_cap,
                        shell_allowed: params.shell_allowed,
                        sftp_file_cap: params.sftp_file_cap,
                        terminal: params.terminal.clone(),
                        forwarding: params.forwarding.clone(),
                        back,
                    });
                    Ok(Auth::Accept)
                }
            },
        }
    }

    /// A pty or window-change record (not counted as channel bytes),
    /// recorded before the request goes on. `false`: the session is over.
    async fn record_event(&self, channel: u32, stream: Stream, body: Vec<u8>) -> bool {
        let (ack, done) = oneshot::channel();
        let ev = Event::Data {
            channel,
            stream,
            recorded: Bytes::from(body),
            len: 0,
            ack: Some(ack),
        };
        self.events.send(ev).await.is_ok() && done.await.unwrap_or(false)
    }

    /// Relay a caller channel through `up_chan`, recording both ways.
    fn attach(
        &mut self,
        channel: Channel<Msg>,
        up_chan: Channel<client::Msg>,
        session: &Session,
        forward: Option<String>,
    ) {
        let Some(up) = &self.up else {
            return;
        };
        let cid = channel.id();
        let n = id(cid);
        let (caller_r, caller_w) = channel.split();
        // The caller's messages reach this handler; its channel queue is not read.
        drop(caller_r);
        let (up_r, up_w) = up_chan.split();
        let (replies_tx, replies) = mpsc::channel(8);
        let stdout = Meter::new(&self.events, n, Stream::Stdout, up.record_cap);
        let stderr = Meter::new(&self.events, n, Stream::Stderr, up.record_cap);
        let down_caps = [stdout.left.clone(), stderr.left.clone()];
        let stdin = Meter::new(&self.events, n, Stream::Stdin, up.record_cap);
        // sftp is decoded on session channels of a target that asks for it.
        let (sftp_up, sftp_down) = match up.sftp_file_cap.filter(|_| forward.is_none()) {
            Some(cap) => {
                let (u, d) = sftp::pair(self.events.clone(), n, cap);
                (Some(u), Some(d))
            }
            None => (None, None),
        };
        let forward = forward.map(|dest| {
            Arc::new(forward::ForwardEnd::new(
                &self.events,
                n,
                dest,
                [stdin.moved.clone(), stdout.moved.clone()],
            ))
        });
        let tail = Arc::new(typed::PromptWatch::default());
        let down = tokio::spawn(down(
            up_r,
            caller_w,
            session.handle(),
            replies_tx,
            Down {
                stdout,
                stderr,
                forward: forward.clone(),
                sftp: sftp_down,
                tail: tail.clone(),
            },
        ));
        self.chans.insert(
            cid,
            Chan {
                up: up_w,
                replies,
                stdin,
                down_caps,
                pty: false,
                typed: None,
                tail,
                forward,
                sftp: sftp_up,
                down,
            },
        );
    }

    /// Caller → host bytes of a channel: recorded (within the cap), then
    /// forwarded. `Err`: the session is over.
    async fn forward_up(&mut self, channel: ChannelId, data: Bytes) -> Result<(), russh::Error> {
        let Some(c) = self.chans.get_mut(&channel) else {
            return Ok(());
        };
        if !c.stdin.record(&data).await {
            return Err(russh::Error::Disconnect);
        }
        let _ = c.up.data_bytes(data).await;
        Ok(())
    }

    /// Caller → host bytes of a channel whose sftp is decoded: recorded,
    /// then judged packet by packet (`sftp.rs`); a relay that cannot go on
    /// closes the channel.
    async fn sftp_up(
        &mut self,
        channel: ChannelId,
        data: Bytes,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        let Some(c) = self.chans.get_mut(&channel) else {
            return Ok(());
        };
        if !c.stdin.record(&data).await {
            return Err(russh::Error::Disconnect);
        }
        let Some(s) = c.sftp.as_mut() else {
            return Ok(());
        };
        if let Err(sftp::End(why)) = s.relay_up(&data, &c.up).await {
            warn!(why, "sftp relay: closing the channel");
            if let Some(c) = self.chans.remove(&channel) {
                c.down.abort();
                let _ = c.up.close().await;
            }
            session.close(channel)?;
        }
        Ok(())
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

    /// The upstream's answer to the request just forwarded, passed on.
    async fn answer(
        &mut self,
        channel: ChannelId,
        sent: bool,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        let ok = match self.chans.get_mut(&channel) {
            Some(c) if sent => c.replies.recv().await.unwrap_or(false),
            _ => false,
        };
        if ok {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }
}

impl server::Handler for Gate {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(Auth::reject())
    }

    /// Worth a signature: a listed key, or any key when a CA is trusted
    /// (russh offers a certificate's key, not the certificate).
    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        let worth = self
            .trust
            .as_ref()
            .is_some_and(|t| t.has_cas() || t.lists(offer.public_key));
        Ok(if worth { Auth::Accept } else { Auth::reject() })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if !self.trust.as_ref().is_some_and(|t| t.lists(key.public_key)) {
            let fp = key.public_key.fingerprint(russh::keys::HashAlg::Sha256);
            debug!(key = %fp, "ssh public key not listed in [identity.ssh]: next method");
            return Ok(Auth::reject());
        }
        let key = Box::new(key.public_key.clone());
        self.admit(user, Presented::Key(key)).await
    }

    async fn auth_openssh_certificate(
        &mut self,
        user: &str,
        certificate: &russh::keys::Certificate,
    ) -> Result<Auth, Self::Error> {
        if !self
            .trust
            .as_ref()
            .is_some_and(|t| t.names_trusted_ca(certificate))
        {
            let ca = certificate
                .signature_key()
                .fingerprint(russh::keys::HashAlg::Sha256);
            warn!(ca = %ca, key_id = %certificate.key_id().chars().take(256).collect::<String>(),
                "ssh certificate refused: signed by a CA [identity.ssh] does not trust");
            return Ok(Auth::reject());
        }
        let cert = Box::new(certificate.clone());
        self.admit(user, Presented::Certificate(cert)).await
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let token = Zeroizing::new(password.as_bytes().to_vec());
        self.admit(user, Presented::Token(token)).await
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<server::Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        match (response, self.pending_token.take()) {
            (Some(mut r), Some(())) => {
                let token = Zeroizing::new(r.next().map(|b| b.to_vec()).unwrap_or_default());
                self.admit(user, Presented::Token(token)).await
            }
            _ => {
                self.pending_token = Some(());
                Ok(Auth::Partial {
                    name: "tollgate".into(),
                    instructions: String::new().into(),
                    prompts: vec![("Token: ".into(), false)].into(),
                })
            }
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(up) = &self.up else {
            return Ok(());
        };
        let Ok(up_chan) = up.handle.channel_open_session().await else {
            // Dropping `reply` refuses the channel.
            return Ok(());
        };
        reply.accept().await;
        self.attach(channel, up_chan, session, None);
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.open_direct_tcpip(
            channel,
            host,
            port,
            (originator_address, originator_port),
            reply,
            session,
        )
        .await
    }

    async fn channel_open_direct_streamlocal(
        &mut self,
        channel: Channel<Msg>,
        path: &str,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.open_direct_streamlocal(channel, path, reply, session)
            .await
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.remote_forward(address, port, session).await
    }

    async fn cancel_tcpip_forward(
        &mut self,
        address: &str,
        port: u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(match self.up.as_ref().filter(|u| u.forwarding.remote) {
            Some(up) => up.handle.cancel_tcpip_forward(address, port).await.is_ok(),
            None => false,
        })
    }

    async fn streamlocal_forward(
        &mut self,
        path: &str,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.streamlocal_listen(path, session).await
    }

    async fn cancel_streamlocal_forward(
        &mut self,
        path: &str,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(self.streamlocal_cancel(path).await)
    }

    async fn agent_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.agent_forwarding(channel, session).await
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        single_connection: bool,
        x11_auth_protocol: &str,
        x11_auth_cookie: &str,
        x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.x11_forwarding(
            channel,
            single_connection,
            (x11_auth_protocol, x11_auth_cookie),
            x11_screen_number,
            session,
        )
        .await
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(c) = self.chans.get(&channel) else {
            return Ok(());
        };
        let data = Bytes::copy_from_slice(data);
        if c.typed.is_some() {
            return self.typed_data(channel, data, session).await;
        }
        if c.sftp.as_ref().is_some_and(|s| s.active()) {
            return self.sftp_up(channel, data, session).await;
        }
        self.forward_up(channel, data).await
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(c) = self.chans.get(&channel) {
            let _ = c.up.eof().await;
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(c) = self.chans.remove(&channel) {
            c.down.abort();
            let _ = c.up.close().await;
            if let Some(f) = c.forward {
                f.note().await;
            }
        }
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        col_width: u32,
        row_height: u32,
        pix_width: u32,
        pix_height: u32,
        modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let record = super::pty::pty_record(term, col_width, row_height);
        if !self.record_event(id(channel), Stream::Pty, record).await {
            return Err(russh::Error::Disconnect);
        }
        // A terminal session is recorded whole (`record_pty_bytes`).
        let cap = self.up.as_ref().map(|u| u.terminal.record_pty_bytes);
        if let (Some(c), Some(cap)) = (self.chans.get_mut(&channel), cap) {
            c.pty = true;
            c.stdin.left.store(cap, Ordering::Relaxed);
            for left in &c.down_caps {
                left.store(cap, Ordering::Relaxed);
            }
        }
        let sent = match self.chans.get(&channel) {
            Some(c) => {
                c.up.request_pty(
                    true, term, col_width, row_height, pix_width, pix_height, modes,
                )
                .await
                .is_ok()
            }
            None => false,
        };
        self.answer(channel, sent, session).await
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let sent = match self.chans.get(&channel) {
            Some(c) => c.up.set_env(true, name, value).await.is_ok(),
            None => false,
        };
        self.answer(channel, sent, session).await
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        col_width: u32,
        row_height: u32,
        pix_width: u32,
        pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let record = super::pty::resize_record(col_width, row_height);
        if self.chans.contains_key(&channel)
            && !self.record_event(id(channel), Stream::Resize, record).await
        {
            return Err(russh::Error::Disconnect);
        }
        if let Some(c) = self.chans.get(&channel) {
            let _ =
                c.up.window_change(col_width, row_height, pix_width, pix_height)
                    .await;
        }
        Ok(())
    }

    async fn signal(
        &mut self,
        channel: ChannelId,
        signal: Sig,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(c) = self.chans.get(&channel) {
            let _ = c.up.signal(signal).await;
        }
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let allowed = self.up.as_ref().is_some_and(|u| u.shell_allowed);
        self.note(id(channel), "shell".into(), allowed).await;
        let judge_lines = self
            .up
            .as_ref()
            .is_some_and(|u| u.terminal.typed_lines != crate::config::ssh_session::TypedLines::Off);
        let sent = match self.chans.get_mut(&channel) {
            Some(c) if allowed => {
                if c.pty && judge_lines {
                    c.typed = Some(super::pty::LineEditor::default());
                    c.tail.watch();
                }
                c.up.request_shell(true).await.is_ok()
            }
            _ => false,
        };
        self.answer(channel, sent, session).await
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let name: String = name.chars().take(64).collect();
        self.note(id(channel), format!("subsystem {name}"), true)
            .await;
        let sent = match self.chans.get(&channel) {
            Some(c) => {
                if let Some(s) = c.sftp.as_ref().filter(|_| name == "sftp") {
                    s.activate();
                }
                c.up.request_subsystem(true, name).await.is_ok()
            }
            None => false,
        };
        self.answer(channel, sent, session).await
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let (answer, verdict) = oneshot::channel();
        let ev = Event::Exec {
            channel: id(channel),
            command: data.to_vec(),
            answer,
        };
        if self.events.send(ev).await.is_err() {
            return Err(russh::Error::Disconnect);
        }
        match verdict.await {
            Err(_) => Err(russh::Error::Disconnect),
            Ok(Ok(())) => {
                let sent = match self.chans.get(&channel) {
                    Some(c) => c.up.exec(true, data).await.is_ok(),
                    None => false,
                };
                self.answer(channel, sent, session).await
            }
            Ok(Err(message)) => {
                // The caller's channel runs "a command" that says why and
                // exits 126; the upstream channel closes unused.
                session.channel_success(channel)?;
                let mut line = message.into_bytes();
                line.push(b'\n');
                session.extended_data(channel, 1, line)?;
                session.exit_status_request(channel, 126)?;
                session.eof(channel)?;
                session.close(channel)?;
                if let Some(c) = self.chans.remove(&channel) {
                    c.down.abort();
                    let _ = c.up.close().await;
                }
                Ok(())
            }
        }
    }
}
