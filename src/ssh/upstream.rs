//! The russh client towards the host: the upstream host key must be one of
//! the pinned keys (never trusted on first use), then the stored credential
//! logs in (a private key read afresh for each login, or a password).

use std::sync::Arc;
use std::time::Duration;

use russh::client;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use zeroize::Zeroizing;

use super::conn::{BackSlot, Opened};

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

/// The client handler: the host key check, and the channels the host opens
/// back (remote forwards, agent, X11).
pub(crate) struct Pinned {
    pins: Vec<PublicKey>,
    /// Each kind refused until the caller asked for it and the target
    /// allows it (`conn/back.rs`).
    back: BackSlot,
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
        self.back.open(
            channel,
            reply,
            Opened::Tcpip {
                connected: (connected_address, connected_port),
                originator: (originator_address, originator_port),
            },
        );
        Ok(())
    }

    async fn server_channel_open_forwarded_streamlocal(
        &mut self,
        channel: russh::Channel<client::Msg>,
        socket_path: &str,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        self.back
            .open(channel, reply, Opened::Streamlocal(socket_path));
        Ok(())
    }

    async fn server_channel_open_agent_forward(
        &mut self,
        channel: russh::Channel<client::Msg>,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        self.back.open(channel, reply, Opened::Agent);
        Ok(())
    }

    async fn server_channel_open_x11(
        &mut self,
        channel: russh::Channel<client::Msg>,
        originator_address: &str,
        originator_port: u32,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        self.back.open(
            channel,
            reply,
            Opened::X11(originator_address, originator_port),
        );
        Ok(())
    }
}

pub(crate) type Upstream = client::Handle<Pinned>;

/// Connect, check the host key, log in.
pub(crate) async fn login(p: &LoginParams) -> Result<(Upstream, BackSlot), String> {
    let refused = Arc::new(std::sync::Mutex::new(None));
    let back = BackSlot::default();
    let handler = Pinned {
        back: back.clone(),
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
        Ok(r) if r.success() => Ok((handle, back)),
        Ok(_) => Err(format!(
            "the upstream refused the stored credential of {}",
            p.user
        )),
        Err(e) => Err(format!("upstream login: {e}")),
    }
}
