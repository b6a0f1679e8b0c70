//! SSH on the session pipeline, compio side. The front door hands the
//! socket to the shard's SSH runtime and waits for the caller's password
//! (the JWT); the pipeline identifies it; `login` sends the upstream login
//! (with the stored credential, read now) to the tokio side and waits for
//! its outcome; the caller is told "accepted" only when the relay starts,
//! after the session's start record. The relay judges execs and records
//! what the tokio side reports.
//!
//! Routing: a listener with one ssh target serves it whatever SSH user
//! name the caller gives (logged, not used). Several ssh targets on one
//! listener (they share its host key) are told apart by the user name
//! `LOGIN+TARGET`: the part after the last `+` names the target; the login
//! part is logged and otherwise ignored (the upstream login is the
//! target's configured user). A name that routes nowhere is an
//! authentication failure.

use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, BytesMut};
use compio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;
use zeroize::Zeroizing;

use super::upstream::{LoginParams, Secret};
use super::{AuthAttempt, AuthStep, Event, Presented, RECORD_HEADER, Stream, conn, rules, runtime};
use crate::config::http::RuleAction;
use crate::config::ssh::{ShellMode, UpstreamLogin};
use crate::config::ssh_session::TypedLines;
use crate::engine::ShardStats;
use crate::pipeline::statement::{Decision, StatementScope, StepError};
use crate::pipeline::{
    Admission, Caller, EndReason, Live, Protocol, Rejection, Relayed, Session, Stop, Target,
};
use crate::snapshot::TargetRuntime;

/// The longest command line a record keeps (the rules judge all of it).
const MAX_RECORDED_COMMAND: usize = 16 << 10;

/// The SSH adapter.
#[derive(Default)]
pub(crate) struct SshProtocol;

/// A caller past its password, waiting for the verdict.
pub(crate) struct SshClient {
    answer: Option<oneshot::Sender<AuthStep>>,
    go: Option<oneshot::Sender<bool>>,
    events: mpsc::Receiver<Event>,
    /// Dropped with the session: the tokio side disconnects.
    _stop: oneshot::Sender<()>,
}

/// The upstream after login (it lives on the tokio side).
pub(crate) struct SshUpstream {
    method: &'static str,
}

/// The compiled side of an ssh target (built with the snapshot).
pub struct SshRuntime {
    pub server: Arc<russh::server::Config>,
    pub rules: rules::SshRules,
    pub sftp: super::sftp_rules::SftpRules,
}

impl SshRuntime {
    /// Read the host key and compile the rules.
    pub fn build(s: &crate::config::ssh::SshTarget) -> Result<SshRuntime, String> {
        let key = russh::keys::load_secret_key(&s.host_key, None)
            .map_err(|e| format!("host key {}: {e}", s.host_key.display()))?;
        let server = russh::server::Config {
            server_id: russh::SshId::Standard("SSH-2.0-tollgate".into()),
            methods: russh::MethodSet::from(
                &[
                    russh::MethodKind::PublicKey,
                    russh::MethodKind::Password,
                    russh::MethodKind::KeyboardInteractive,
                ][..],
            ),
            // Rejections are immediate: every caller presents a token, a
            // certificate or a listed key, and a wrong one ends the
            // connection (one attempt each; keys the gate screens out do
            // not count).
            auth_rejection_time: std::time::Duration::ZERO,
            auth_rejection_time_initial: Some(std::time::Duration::ZERO),
            keys: vec![key],
            // The pipeline's idle timeout and kills end sessions.
            inactivity_timeout: None,
            max_auth_attempts: 6,
            nodelay: true,
            ..Default::default()
        };
        Ok(SshRuntime {
            server: Arc::new(server),
            rules: rules::SshRules::compile(s)?,
            sftp: super::sftp_rules::SftpRules::compile(&s.sftp)?,
        })
    }
}

/// A second descriptor for the caller's socket, for the tokio side (the
/// compio side keeps its own to shut the socket down at the session's end).
fn hand_over(sock: &TcpStream) -> std::io::Result<std::net::TcpStream> {
    use std::os::fd::AsFd;
    let fd = sock.as_fd().try_clone_to_owned()?;
    let std = std::net::TcpStream::from(fd);
    std.set_nonblocking(true)?;
    Ok(std)
}

/// The stored credential, read for this login (rotation needs no restart).
fn login_params(t: &Target<'_>) -> Result<LoginParams, String> {
    let s = t.config.ssh.as_ref().ok_or("not an ssh target")?;
    let (user, secret) = match (&s.login, &t.config.credential) {
        (UpstreamLogin::Key { user, file }, _) => {
            let text = Zeroizing::new(
                std::fs::read_to_string(file)
                    .map_err(|e| format!("cannot read the key file {}: {e}", file.display()))?,
            );
            let key = russh::keys::decode_secret_key(&text, None)
                .map_err(|e| format!("the key file {} does not parse: {e}", file.display()))?;
            (user.clone(), Secret::Key(Arc::new(key)))
        }
        (UpstreamLogin::Password, Some(c)) => {
            let pw = crate::pg::session::read_secret(&c.source)?;
            let pw = Zeroizing::new(
                String::from_utf8(pw.expose().to_vec())
                    .map_err(|_| "the stored password is not UTF-8")?,
            );
            (c.user.clone(), Secret::Password(pw))
        }
        (UpstreamLogin::Password, None) => return Err("no [target.credential]".into()),
    };
    let mut pins = Vec::with_capacity(s.upstream_host_keys.len());
    for k in &s.upstream_host_keys {
        let b64 = k.split_ascii_whitespace().nth(1).unwrap_or_default();
        pins.push(
            russh::keys::parse_public_key_base64(b64)
                .map_err(|e| format!("upstream_host_key: {e}"))?,
        );
    }
    if let Some(file) = &s.upstream_known_hosts {
        pins.extend(known_hosts(&t.config.upstream, file)?);
    }
    Ok(LoginParams {
        addr: t.config.upstream.clone(),
        user,
        secret,
        pins,
        connect_timeout: t.config.connect_timeout,
        record_cap: s.record_channel_bytes,
        shell_allowed: s.shell == ShellMode::Allow,
        sftp_file_cap: s.sftp.decode.then_some(s.sftp.record_file_bytes),
        terminal: s.terminal.clone(),
        forwarding: s.forwarding.clone(),
    })
}

/// The keys a known_hosts file lists for the upstream (`host` on port 22,
/// `[host]:port` otherwise; hashed entries too). A missing file lists none.
fn known_hosts(
    upstream: &str,
    file: &std::path::Path,
) -> Result<Vec<russh::keys::PublicKey>, String> {
    let (host, port) = upstream
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("upstream {upstream:?} is not host:port"))?;
    let keys = russh::keys::known_hosts::known_host_keys_path(host, port, file)
        .map_err(|e| format!("upstream_known_hosts {}: {e}", file.display()))?;
    Ok(keys.into_iter().map(|(_, k)| k).collect())
}

impl Protocol for SshProtocol {
    type Client = SshClient;
    type Upstream = SshUpstream;
    type LastWord = ();
    type Goodbye = ();
    const NAME: &'static str = "ssh";

    async fn front_door(
        &self,
        s: &Session<'_>,
        sock: TcpStream,
    ) -> Result<Option<Admission<SshClient>>, EndReason> {
        // Targets sharing a listener share its host key (the config
        // checks it): the first one's server config serves them all.
        let first = s.listener.targets[0];
        let rt: &TargetRuntime = &s.snapshot.targets[first];
        let Some(ssh) = rt.ssh.as_ref() else {
            return Err(EndReason::Refused("not an ssh target".into()));
        };
        let io = |e: std::io::Error| EndReason::ClientIo(e.to_string());
        let stream = hand_over(&sock).map_err(io)?;
        let handle = runtime::handle().map_err(io)?;
        let (auth_tx, mut auth_rx) = mpsc::channel(1);
        let (events_tx, events) = mpsc::channel(64);
        let (stop_tx, stop) = oneshot::channel();
        handle.spawn(conn::serve(conn::Start {
            stream,
            config: ssh.server.clone(),
            auth: auth_tx,
            trust: s.snapshot.identity.ssh_trust().cloned(),
            events: events_tx,
            stop,
        }));
        // `None`: the caller left (or failed the handshake) before a credential.
        let Some(AuthAttempt {
            user,
            presented,
            answer,
        }) = auth_rx.recv().await
        else {
            return Ok(None);
        };
        let Some(target) = route(s, &user) else {
            // Dropping `answer` fails the caller's authentication.
            return Err(EndReason::Refused(format!(
                "ssh user {user:?} names no target on this listener (LOGIN+TARGET)"
            )));
        };
        let caller = match presented {
            Presented::Token(token) => Caller::Token(token.to_vec()),
            Presented::Certificate(cert) => Caller::SshCertificate(cert),
            Presented::Key(key) => Caller::SshKey(key),
        };
        Ok(Some(Admission {
            client: SshClient {
                answer: Some(answer),
                go: None,
                events,
                _stop: stop_tx,
            },
            target,
            caller,
            tls: None,
            user: Some(user),
        }))
    }

    /// SSH has one word for every refusal before the session: the caller's
    /// authentication fails (the reason is in the gateway's log only).
    async fn reject(&self, client: &mut SshClient, _why: Rejection<'_>) {
        if let Some(a) = client.answer.take() {
            let _ = a.send(AuthStep::Reject);
        }
        if let Some(g) = client.go.take() {
            let _ = g.send(false);
        }
    }

    async fn login(
        &self,
        _s: &Session<'_>,
        target: &Target<'_>,
        client: &mut SshClient,
    ) -> Result<SshUpstream, String> {
        let params = login_params(target)?;
        let method = match params.secret {
            Secret::Key(_) => "publickey",
            Secret::Password(_) => "password",
        };
        let answer = client.answer.take().ok_or("no caller waiting")?;
        let (result_tx, result) = oneshot::channel();
        let (go_tx, go) = oneshot::channel();
        let step = AuthStep::Login {
            params: Box::new(params),
            result: result_tx,
            go,
        };
        if answer.send(step).is_err() {
            return Err("the caller left".into());
        }
        client.go = Some(go_tx);
        result.await.map_err(|_| "the caller left".to_string())??;
        Ok(SshUpstream { method })
    }

    fn upstream_auth(&self, u: &SshUpstream) -> &'static str {
        u.method
    }

    fn last_word(&self, _client: &SshClient) {}

    async fn relay(
        &self,
        s: &Session<'_>,
        target: &Target<'_>,
        mut client: SshClient,
        _upstream: SshUpstream,
        live: &Live<'_>,
    ) -> Relayed<()> {
        let go = client.go.take().is_some_and(|g| g.send(true).is_ok());
        let reason = match (go, live.identity) {
            (true, Some(identity)) => {
                let scope = StatementScope {
                    ctx: s.ctx,
                    entry: s.entry,
                    target: target.config,
                    identity,
                    recording: live.recording,
                };
                relay(s, target, &mut client.events, live, &scope).await
            }
            (_, None) => EndReason::Refused("an ssh session needs an identity".into()),
            (false, _) => EndReason::ClientClosed,
        };
        Relayed {
            reason,
            goodbye: None,
        }
    }

    fn goodbye_for(&self, _stop: Stop) -> Option<()> {
        None
    }

    async fn say_goodbye(&self, _w: (), _why: ()) {}
}

/// The target the SSH user name picks: a listener's only target takes any
/// name; on a shared listener `LOGIN+TARGET` names one of its targets.
fn route(s: &Session<'_>, user: &str) -> Option<usize> {
    let targets = &s.listener.targets;
    if let [only] = targets.as_slice() {
        return Some(*only);
    }
    let (_login, name) = user.rsplit_once('+')?;
    targets
        .iter()
        .copied()
        .find(|t| s.snapshot.config.targets[*t].name == name)
}

fn step(e: StepError) -> EndReason {
    match e {
        StepError::Killed(k) => EndReason::Killed(k),
        StepError::Recorder(e) => EndReason::RecorderFailed(e),
    }
}

/// Serve the tokio side's events until the connection ends.
async fn relay(
    s: &Session<'_>,
    target: &Target<'_>,
    events: &mut mpsc::Receiver<Event>,
    live: &Live<'_>,
    scope: &StatementScope<'_>,
) -> EndReason {
    while let Some(ev) = events.recv().await {
        live.last_activity.set(Instant::now());
        let r = match ev {
            Event::Data {
                channel,
                stream,
                recorded,
                len,
                ack,
            } => {
                count(s, stream, len);
                let ok = record(live, channel, stream, &recorded).await;
                if let Some(ack) = ack {
                    let _ = ack.send(ok.is_ok());
                }
                ok
            }
            Event::Exec {
                channel,
                command,
                answer,
            } => match judge(target, live, scope, channel, "exec", &command).await {
                Ok(verdict) => {
                    let _ = answer.send(verdict);
                    Ok(())
                }
                Err(e) => Err(e),
            },
            Event::Typed {
                channel,
                line,
                answer,
            } => match typed(target, live, scope, channel, &line).await {
                Ok(verdict) => {
                    let _ = answer.send(verdict);
                    Ok(())
                }
                Err(e) => Err(e),
            },
            Event::Sftp {
                statement,
                judge,
                answer,
            } => match super::sftp_judge::judge(target, scope, &statement, judge).await {
                Ok(verdict) => {
                    let _ = answer.send(verdict);
                    Ok(())
                }
                Err(e) => Err(step(e)),
            },
            Event::Note {
                channel,
                what,
                allowed,
            } => {
                let d = if allowed {
                    Decision::Allow
                } else {
                    Decision::Block {
                        message: format!("{what} refused"),
                        rule: "ssh".into(),
                    }
                };
                let statement = format!("channel {channel}: {what}");
                scope.note(&statement, &d, None, None).await.map_err(step)
            }
        };
        if let Err(reason) = r {
            return reason;
        }
    }
    EndReason::Closed
}

fn count(s: &Session<'_>, stream: Stream, len: usize) {
    let stats = s.ctx.stats();
    let (session, shard) = match stream {
        Stream::Stdin | Stream::Pty | Stream::Resize => {
            (&s.entry.bytes_up, &stats.bytes_client_to_upstream)
        }
        Stream::Stdout | Stream::Stderr => (&s.entry.bytes_down, &stats.bytes_upstream_to_client),
        // Copies of bytes the channel's streams already counted.
        Stream::FileWritten | Stream::FileRead => return,
    };
    session.set(session.get() + len as u64);
    ShardStats::add(shard, len as u64);
}

/// One data record: the channel and stream, then the bytes.
async fn record(
    live: &Live<'_>,
    channel: u32,
    stream: Stream,
    data: &[u8],
) -> Result<(), EndReason> {
    let rec = live.recording;
    if data.is_empty() || !rec.enabled() {
        return Ok(());
    }
    let mut buf = BytesMut::with_capacity(RECORD_HEADER + data.len());
    buf.put_u32(channel);
    buf.put_u8(stream as u8);
    buf.extend_from_slice(data);
    let now = Instant::now();
    let r = match stream {
        Stream::Stdin | Stream::Pty | Stream::Resize | Stream::FileWritten => {
            rec.client_data(now, &buf).await
        }
        Stream::Stdout | Stream::Stderr | Stream::FileRead => rec.target_data(now, &buf).await,
    };
    let r = match r {
        Ok(durable) => durable.forwardable().await,
        Err(e) => Err(e),
    };
    r.map_err(|e| {
        warn!(error = %e, "recorder failed: ending the session");
        EndReason::RecorderFailed(e.to_string())
    })
}

/// Judge a line typed into a pty shell (each command of a paste); a line
/// edited with keys the editor does not follow is recorded as unjudged, or
/// refused with `typed_lines = "strict"`. `Ok(Err(message))`: refused.
async fn typed(
    target: &Target<'_>,
    live: &Live<'_>,
    scope: &StatementScope<'_>,
    channel: u32,
    line: &crate::ssh::pty::TypedLine,
) -> Result<Result<(), String>, EndReason> {
    if let Some(len) = line.secret {
        // Not a command: recorded by its length, never its text.
        let statement = format!("channel {channel}: typed (secret at a prompt, {len} bytes)");
        let d = Decision::Audit {
            rule: "typed-secret-at-prompt".into(),
        };
        scope.note(&statement, &d, None, None).await.map_err(step)?;
        return Ok(Ok(()));
    }
    if !line.known {
        let strict = target
            .config
            .ssh
            .as_ref()
            .is_none_or(|s| s.terminal.typed_lines != TypedLines::Judge);
        let rule = "typed-line-unknown".to_string();
        let statement = bounded(format!(
            "channel {channel}: typed (edited with keys tollgate does not follow) {}",
            line.text
        ));
        let (d, verdict) = if strict {
            let message = "tollgate cannot follow this line's editing (arrows, history, Tab):                            type it out in full"
                .to_string();
            (
                Decision::Block {
                    message: message.clone(),
                    rule,
                },
                Err(message),
            )
        } else {
            (Decision::Audit { rule }, Ok(()))
        };
        scope.note(&statement, &d, None, None).await.map_err(step)?;
        return Ok(verdict);
    }
    for command in line.commands() {
        let v = judge(target, live, scope, channel, "typed", command.as_bytes()).await?;
        if v.is_err() {
            return Ok(v);
        }
    }
    Ok(Ok(()))
}

/// A statement cut to [`MAX_RECORDED_COMMAND`] bytes.
fn bounded(mut statement: String) -> String {
    if statement.len() > MAX_RECORDED_COMMAND {
        let mut cut = MAX_RECORDED_COMMAND;
        while !statement.is_char_boundary(cut) {
            cut -= 1;
        }
        statement.truncate(cut);
    }
    statement
}

/// Judge a command line (`what`: `exec`, or `typed` into a shell);
/// `Ok(Err(message))`: refused.
async fn judge(
    target: &Target<'_>,
    live: &Live<'_>,
    scope: &StatementScope<'_>,
    channel: u32,
    what: &str,
    command: &[u8],
) -> Result<Result<(), String>, EndReason> {
    let line = String::from_utf8_lossy(command);
    let normal = rules::normal_line(&line);
    let (action, rule, message) = match target.rt.ssh.as_ref() {
        Some(r) => {
            let v = r.rules.judge(&normal);
            (
                v.action,
                v.rule.unwrap_or("default").to_string(),
                v.message.map(str::to_string),
            )
        }
        None => (RuleAction::Block, "default".to_string(), None),
    };
    let message = message.unwrap_or_else(|| format!("blocked by rule {rule}"));
    let d = match action {
        RuleAction::Allow => Decision::Allow,
        RuleAction::Audit => Decision::Audit { rule },
        RuleAction::Block => Decision::Block { message, rule },
        RuleAction::Approve => Decision::Approve { message, rule },
    };
    let statement = bounded(format!("channel {channel}: {what} {line}"));
    let d = match d {
        Decision::Approve { message, rule } => {
            // The wait is the reviewer's, not the caller's.
            live.frame_clock.progress();
            let d = scope
                .await_approval(&statement, &message, &rule)
                .await
                .map_err(step)?;
            live.last_activity.set(Instant::now());
            d
        }
        d => {
            scope.note(&statement, &d, None, None).await.map_err(step)?;
            d
        }
    };
    Ok(match d {
        Decision::Allow | Decision::Audit { .. } => Ok(()),
        Decision::Block { message, .. } | Decision::Approve { message, .. } => Err(message),
    })
}
