//! Upstream authentication for PostgreSQL: SCRAM-SHA-256 (with and without channel binding), md5, cleartext.
//!
//! Sans-IO and client side: the session feeds [`UpstreamAuth::step`] each
//! Authentication message the upstream sends and writes out whatever it
//! appended to the buffer, until it answers [`AuthStep::Done`]. ErrorResponse
//! is not an Authentication message; the session handles it (wrong stored
//! password, unknown role) before calling here.
//!
//! SCRAM follows RFC 5802/7677 as PostgreSQL implements it: the user name in
//! `client-first-message` is empty (the server takes it from the
//! StartupMessage), channel binding is `tls-server-end-point` (RFC 5929), and
//! `y,,` tells a server that did not offer SCRAM-SHA-256-PLUS that we could
//! have bound, so a man in the middle who stripped `-PLUS` is caught.
//!
//! The SCRAM and md5 computations are `postgres-protocol`'s (the rust-postgres
//! client's own): SCRAM normalises the password with SASLprep as PostgreSQL
//! does, so a non-ASCII stored password (a no-break space, a compatibility
//! character) logs in exactly as it does from psql. This module keeps the
//! gateway's policy: which methods a target allows, channel binding, caps.

use std::fmt;

use bytes::BytesMut;
use tollgate_codecs::pg::{
    Authentication, PgError, encode_password_message, encode_sasl_initial_response,
    encode_sasl_response,
};
use zeroize::Zeroizing;

const SCRAM: &str = "SCRAM-SHA-256";
const SCRAM_PLUS: &str = "SCRAM-SHA-256-PLUS";

/// A stored credential's secret. `Debug` never shows it; `zeroize` overwrites
/// the bytes when it is dropped (copies the caller made before handing the
/// bytes over, and the SASLprep'd copy `postgres-protocol` keeps for one
/// exchange, are outside its reach).
#[derive(Clone)]
pub struct Password(Zeroizing<Vec<u8>>);

impl Password {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Password(Zeroizing::new(bytes.into()))
    }

    /// The secret itself: only for computing what goes to the upstream.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Self {
        Password::new(s.as_bytes())
    }
}

impl From<String> for Password {
    fn from(s: String) -> Self {
        Password::new(s.into_bytes())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// What went wrong logging in to the upstream. Each says whether the upstream
/// misbehaved or refused; none carries the password.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("upstream asked for {method} authentication, which this target does not allow")]
    MethodNotAllowed { method: &'static str },
    #[error("upstream asked for an unsupported authentication method (code {code})")]
    UnsupportedMethod { code: i32 },
    #[error("upstream offered no SASL mechanism we support (offered: {offered})")]
    NoSupportedMechanism { offered: String },
    #[error("channel binding is required, but {reason}")]
    ChannelBindingRequired { reason: &'static str },
    #[error("malformed SCRAM message from the upstream: {what}")]
    MalformedScram { what: &'static str },
    #[error("upstream SCRAM message refused: {reason}")]
    ScramRejected { reason: String },
    #[error("upstream SCRAM nonce does not extend the one we sent")]
    NonceMismatch,
    #[error("upstream demands {iterations} PBKDF2 iterations, above the cap {max}")]
    TooManyIterations { iterations: u32, max: u32 },
    #[error("upstream SCRAM server signature does not match: it does not know our credential")]
    ServerSignatureMismatch,
    #[error("upstream ended SCRAM with error {message:?}")]
    ServerError { message: String },
    #[error("upstream sent AuthenticationOk before completing {method}")]
    PrematureOk { method: &'static str },
    #[error("unexpected authentication request {got} while {state}")]
    Unexpected {
        state: &'static str,
        got: &'static str,
    },
    #[error("the stored password contains a NUL byte, which PostgreSQL cannot receive")]
    PasswordHasNul,
    #[error("server certificate cannot be used for channel binding: {what}")]
    Certificate { what: String },
    #[error("encoding the response: {0}")]
    Encode(#[from] PgError),
}

/// Which methods a target accepts from its upstream, and how hard it checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthPolicy {
    /// Refuse unless SCRAM-SHA-256-PLUS completes: the strongest proof that
    /// the server we reached is the one holding the verifier.
    pub require_channel_binding: bool,
    pub allow_cleartext: bool,
    pub allow_md5: bool,
    /// AuthenticationOk with no challenge at all (`trust` in pg_hba.conf).
    pub allow_trust: bool,
    /// PBKDF2 runs on the shard's thread, so a hostile upstream could stall a
    /// core by demanding millions of iterations. PostgreSQL's default is 4096.
    pub max_scram_iterations: u32,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        AuthPolicy {
            require_channel_binding: false,
            allow_cleartext: true,
            allow_md5: true,
            allow_trust: true,
            max_scram_iterations: 100_000,
        }
    }
}

/// Channel-binding data for SCRAM-SHA-256-PLUS.
#[derive(Clone, PartialEq, Eq)]
pub enum ChannelBinding {
    /// Plaintext upstream, or a certificate we cannot bind to.
    None,
    /// `tls-server-end-point`: the server certificate's hash, from [`tls_server_end_point`].
    TlsServerEndPoint(Vec<u8>),
}

impl fmt::Debug for ChannelBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelBinding::None => f.write_str("None"),
            ChannelBinding::TlsServerEndPoint(h) => {
                write!(f, "TlsServerEndPoint({} bytes)", h.len())
            }
        }
    }
}

/// How the upstream session was authenticated, for the audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Trust,
    Cleartext,
    Md5,
    ScramSha256,
    ScramSha256Plus,
}

/// What the session does after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStep {
    /// A response was appended to the buffer: send it, then feed the next
    /// Authentication message.
    Respond,
    /// Nothing to send; feed the next Authentication message (after SASLFinal).
    Wait,
    /// AuthenticationOk: logged in (BackendKeyData, ParameterStatus and
    /// ReadyForQuery follow).
    Done(AuthMethod),
}

/// `md5` + hex(md5(hex(md5(password ‖ user)) ‖ salt)): what PostgreSQL's md5 method expects.
pub fn md5_response(user: &[u8], password: &[u8], salt: [u8; 4]) -> String {
    postgres_protocol::authentication::md5_hash(user, password, salt)
}

enum State {
    Start,
    PasswordSent(AuthMethod),
    ScramFirstSent(ScramClient, AuthMethod),
    ScramFinalSent(ScramClient, AuthMethod),
    ScramVerified(AuthMethod),
    Done,
    Failed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Start => "waiting for the first request",
            State::PasswordSent(_) => "waiting for the password verdict",
            State::ScramFirstSent(..) => "waiting for SCRAM server-first-message",
            State::ScramFinalSent(..) => "waiting for SCRAM server-final-message",
            State::ScramVerified(_) => "waiting for AuthenticationOk after SCRAM",
            State::Done => "already authenticated",
            State::Failed => "after a failed step",
        }
    }
}

fn request_name(msg: &Authentication<'_>) -> &'static str {
    match msg {
        Authentication::Ok => "AuthenticationOk",
        Authentication::KerberosV5 => "AuthenticationKerberosV5",
        Authentication::CleartextPassword => "AuthenticationCleartextPassword",
        Authentication::Md5Password { .. } => "AuthenticationMD5Password",
        Authentication::Gss => "AuthenticationGSS",
        Authentication::GssContinue { .. } => "AuthenticationGSSContinue",
        Authentication::Sspi => "AuthenticationSSPI",
        Authentication::Sasl { .. } => "AuthenticationSASL",
        Authentication::SaslContinue { .. } => "AuthenticationSASLContinue",
        Authentication::SaslFinal { .. } => "AuthenticationSASLFinal",
        Authentication::Unknown { .. } => "an unknown authentication request",
    }
}

/// One upstream login with a stored credential.
pub struct UpstreamAuth {
    user: Vec<u8>,
    password: Password,
    binding: ChannelBinding,
    policy: AuthPolicy,
    state: State,
}

impl fmt::Debug for UpstreamAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamAuth")
            .field("user", &String::from_utf8_lossy(&self.user))
            .field("binding", &self.binding)
            .field("state", &self.state.name())
            .finish_non_exhaustive()
    }
}

impl UpstreamAuth {
    /// `user` is the role named in the StartupMessage sent upstream (md5 salts with it).
    pub fn new(
        user: &[u8],
        password: Password,
        binding: ChannelBinding,
        policy: AuthPolicy,
    ) -> Self {
        UpstreamAuth {
            user: user.to_vec(),
            password,
            binding,
            policy,
            state: State::Start,
        }
    }

    /// Handles one Authentication message; responses are appended to `dst`.
    pub fn step(
        &mut self,
        msg: &Authentication<'_>,
        dst: &mut BytesMut,
    ) -> Result<AuthStep, AuthError> {
        let state = std::mem::replace(&mut self.state, State::Failed);
        let (next, step) = self.advance(state, msg, dst)?;
        self.state = next;
        Ok(step)
    }

    fn advance(
        &mut self,
        state: State,
        msg: &Authentication<'_>,
        dst: &mut BytesMut,
    ) -> Result<(State, AuthStep), AuthError> {
        let unexpected = |state: &State| AuthError::Unexpected {
            state: state.name(),
            got: request_name(msg),
        };
        let cb_required = self.policy.require_channel_binding;
        match (state, msg) {
            (State::Start, Authentication::Ok) => {
                if cb_required {
                    return Err(AuthError::ChannelBindingRequired {
                        reason: "the upstream asked for no authentication",
                    });
                }
                if !self.policy.allow_trust {
                    return Err(AuthError::MethodNotAllowed { method: "trust" });
                }
                Ok((State::Done, AuthStep::Done(AuthMethod::Trust)))
            }
            (State::Start, Authentication::CleartextPassword) => {
                self.allow_password(self.policy.allow_cleartext, "cleartext password")?;
                encode_password_message(dst, self.password.expose()).map_err(nul_is_password)?;
                Ok((
                    State::PasswordSent(AuthMethod::Cleartext),
                    AuthStep::Respond,
                ))
            }
            (State::Start, Authentication::Md5Password { salt }) => {
                self.allow_password(self.policy.allow_md5, "md5")?;
                if self.password.expose().contains(&0) {
                    return Err(AuthError::PasswordHasNul);
                }
                let response = md5_response(&self.user, self.password.expose(), *salt);
                encode_password_message(dst, response.as_bytes())?;
                Ok((State::PasswordSent(AuthMethod::Md5), AuthStep::Respond))
            }
            (State::Start, Authentication::Sasl { mechanisms }) => {
                let (client, method) = self.start_scram(mechanisms.clone())?;
                let mechanism = if method == AuthMethod::ScramSha256Plus {
                    SCRAM_PLUS
                } else {
                    SCRAM
                };
                encode_sasl_initial_response(
                    dst,
                    mechanism.as_bytes(),
                    Some(client.client_first().as_slice()),
                )?;
                Ok((State::ScramFirstSent(client, method), AuthStep::Respond))
            }
            (State::Start, Authentication::Unknown { code, .. }) => {
                Err(AuthError::UnsupportedMethod { code: *code })
            }
            (
                State::Start,
                Authentication::KerberosV5
                | Authentication::Gss
                | Authentication::Sspi
                | Authentication::GssContinue { .. },
            ) => Err(AuthError::MethodNotAllowed {
                method: request_name(msg),
            }),
            (State::PasswordSent(method), Authentication::Ok) => {
                Ok((State::Done, AuthStep::Done(method)))
            }
            (State::ScramFirstSent(mut client, method), Authentication::SaslContinue { data }) => {
                let response = client.client_final(data, self.policy.max_scram_iterations)?;
                encode_sasl_response(dst, &response)?;
                Ok((State::ScramFinalSent(client, method), AuthStep::Respond))
            }
            (State::ScramFinalSent(mut client, method), Authentication::SaslFinal { data }) => {
                client.verify_server_final(data)?;
                Ok((State::ScramVerified(method), AuthStep::Wait))
            }
            (State::ScramFirstSent(..) | State::ScramFinalSent(..), Authentication::Ok) => {
                Err(AuthError::PrematureOk { method: "SCRAM" })
            }
            (State::ScramVerified(method), Authentication::Ok) => {
                Ok((State::Done, AuthStep::Done(method)))
            }
            (state, _) => Err(unexpected(&state)),
        }
    }

    fn allow_password(&self, allowed: bool, method: &'static str) -> Result<(), AuthError> {
        if self.policy.require_channel_binding {
            return Err(AuthError::ChannelBindingRequired {
                reason: "the upstream asked for a password instead of SCRAM",
            });
        }
        if !allowed {
            return Err(AuthError::MethodNotAllowed { method });
        }
        Ok(())
    }

    fn start_scram<'m>(
        &self,
        mechanisms: impl Iterator<Item = &'m [u8]> + Clone,
    ) -> Result<(ScramClient, AuthMethod), AuthError> {
        let offers = |m: &str| mechanisms.clone().any(|o| o == m.as_bytes());
        let password = self.password.expose();
        let cert_hash = match &self.binding {
            ChannelBinding::TlsServerEndPoint(h) => Some(h.clone()),
            ChannelBinding::None => None,
        };
        match cert_hash {
            Some(hash) if offers(SCRAM_PLUS) => Ok((
                ScramClient::new(password, Binding::TlsServerEndPoint(hash)),
                AuthMethod::ScramSha256Plus,
            )),
            _ if self.policy.require_channel_binding => Err(AuthError::ChannelBindingRequired {
                reason: if self.binding == ChannelBinding::None {
                    "the upstream connection has no TLS certificate to bind to"
                } else {
                    "the upstream did not offer SCRAM-SHA-256-PLUS"
                },
            }),
            // `y`: we could bind but the server did not offer it; a server that
            // does support -PLUS then knows the offer was stripped on the way.
            Some(_) if offers(SCRAM) => Ok((
                ScramClient::new(password, Binding::Unrequested),
                AuthMethod::ScramSha256,
            )),
            None if offers(SCRAM) => Ok((
                ScramClient::new(password, Binding::Unsupported),
                AuthMethod::ScramSha256,
            )),
            _ => Err(AuthError::NoSupportedMechanism {
                offered: mechanisms
                    .map(String::from_utf8_lossy)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}

fn nul_is_password(e: PgError) -> AuthError {
    match e {
        PgError::InteriorNul { .. } => AuthError::PasswordHasNul,
        e => AuthError::Encode(e),
    }
}

mod scram;
#[cfg(test)]
mod tests;

pub use scram::tls_server_end_point;
use scram::{Binding, ScramClient};
