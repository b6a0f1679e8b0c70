//! The russh client towards the host: the upstream host key must be one of
//! the pinned keys (never trusted on first use), then the stored credential
//! logs in (a private key read afresh for each login, or a password).

use std::sync::Arc;
use std::time::Duration;

use russh::client;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use zeroize::Zeroizing;

use super::conn::{RemoteSink, RemoteSlot};

/// The stored secret, read by the compio side for this login only.
pub(crate) enum Secret {
    Key(Arc<PrivateKey>),
    Password(Zeroizing<String>),
}

/// Everything one upstream login needs.
pub(crate) struct LoginParams {
    pub addr: String,
    pub user: String,
    pub secret: Secret,
    pub pins: Vec<PublicKey>,
    pub connect_timeout: Duration,
    /// Bytes recorded per channel and direction.
    pub record_cap: usize,
    pub shell_allowed: bool,
    /// Decode sftp (`sftp.rs`): `Some(bytes recorded per file)`.
    pub sftp_file_cap: Option<usize>,
    /// Pty channels: their recording cap, typed-line judging.
    pub terminal: crate::config::ssh_session::SshTerminal,
    pub forwarding: crate::config::ssh_session::SshForwarding,
}

/// The client handler: the host key check, and the host's connections on
/// an allowed remote forward.
pub(crate) struct Pinned {
    pins: Vec<PublicKey>,
    /// Empty until the caller's remote forward is allowed: until then the
    /// host's `forwarded-tcpip` channels are refused.
    remote: RemoteSlot,
    /// The key the host presented, when it matched no pin (for the log).
    pub(crate) refused: Arc<std::sync::Mutex<Option<String>>>,
}

impl client::Handler for Pinned {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let presented = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            // Host certificates are not configured: only pinned keys pass.
            PublicKeyOrCertificate::Certificate(_) => return Ok(false),
        };
        let ok = self
            .pins
            .iter()
            .any(|p| p.key_data() == presented.key_data());
        if !ok && let Ok(mut r) = self.refused.lock() {
            *r = presented.to_openssh().ok();
        }
        Ok(ok)
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: russh::Channel<client::Msg>,
        connected_address: &str,
        connected_port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        let sink: Option<Arc<RemoteSink>> = self.remote.lock().ok().and_then(|s| s.clone());
        // No sink: dropping `reply` refuses the channel.
        if let Some(sink) = sink {
            sink.open(
                channel,
                reply,
                (connected_address, connected_port),
                (originator_address, originator_port),
            )
            .await;
        }
        Ok(())
    }
}

pub(crate) type Upstream = client::Handle<Pinned>;

/// Connect, check the host key, log in.
pub(crate) async fn login(p: &LoginParams) -> Result<(Upstream, RemoteSlot), String> {
    let refused = Arc::new(std::sync::Mutex::new(None));
    let remote = RemoteSlot::default();
    let handler = Pinned {
        remote: remote.clone(),
        pins: p.pins.clone(),
        refused: refused.clone(),
    };
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        nodelay: true,
        ..Default::default()
    });
    let connect = async {
        let sock = tokio::net::TcpStream::connect(p.addr.as_str())
            .await
            .map_err(|e| format!("connect to {}: {e}", p.addr))?;
        let _ = sock.set_nodelay(true);
        client::connect_stream(config, sock, handler)
            .await
            .map_err(|e| match refused.lock().ok().and_then(|mut r| r.take()) {
                Some(key) => {
                    format!("the upstream's host key is not pinned (it presented {key}): refused")
                }
                None => format!("ssh handshake with {}: {e}", p.addr),
            })
    };
    let mut handle = tokio::time::timeout(p.connect_timeout, connect)
        .await
        .map_err(|_| format!("connect to {} timed out", p.addr))??;
    let auth = match &p.secret {
        Secret::Key(key) => {
            let hash = handle
                .best_supported_rsa_hash()
                .await
                .ok()
                .flatten()
                .flatten();
            handle
                .authenticate_publickey(&p.user, PrivateKeyWithHashAlg::new(key.clone(), hash))
                .await
        }
        Secret::Password(pw) => handle.authenticate_password(&p.user, pw.as_str()).await,
    };
    match auth {
        Ok(r) if r.success() => Ok((handle, remote)),
        Ok(_) => Err(format!(
            "the upstream refused the stored credential of {}",
            p.user
        )),
        Err(e) => Err(format!("upstream login: {e}")),
    }
}
