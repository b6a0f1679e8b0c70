//! Identity: short-lived tokens and workload certificates in, no static secrets.
//!
//! The engine builds one [`IdentityService`] from [`IdentityConfig`] (it owns the key sources,
//! the revocation store and their background threads) and one [`TokenCache`] per shard
//! (`service.new_cache()`). Per new session a shard calls [`IdentityService::verify_token`]
//! with the token the client sent where its native client sends a secret, or
//! [`IdentityService::identity_from_certificate`] with the verified peer chain of an mTLS
//! listener, then [`authz::AccessPolicy::decide`] for the target.
//!
//! What the client sees on any failure: [`AuthError::client_message`], the fixed text
//! `authentication failed`. The precise [`AuthError`] is for the log and the audit record.

pub mod authz;
pub mod cache;
pub mod config;
pub mod devissuer;
pub mod jwks;
pub mod jws;
pub mod jwt;
pub mod mtls;
pub mod revocation;
mod service;
pub mod sshcert;

#[cfg(test)]
mod refusal_text_tests;

use std::time::SystemTime;

pub use authz::{AccessConfig, AccessDecision, AccessPolicy};
pub use cache::TokenCache;
pub use config::{IdentityConfig, IdentityConfigError, IssuerConfig, MtlsConfig};
pub use jwt::AuthError;
pub use revocation::{Revocation, RevocationTarget, Revocations};
pub use service::{IdentityError, IdentityService};

/// How an identity was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentitySource {
    Token,
    /// A key the caller proved it holds: an mTLS certificate, an SSH
    /// certificate or a listed SSH key.
    Certificate,
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `sub` for tokens; URI SAN (SPIFFE ID), else DNS SAN, else CN for certificates;
    /// the first principal of an SSH certificate, the listed subject of an SSH key.
    pub subject: String,
    /// The `iss` claim for tokens; the issuer's distinguished name for certificates;
    /// `ssh-ca SHA256:...` for SSH certificates, `ssh-key` for listed SSH keys.
    pub issuer: String,
    pub groups: Vec<String>,
    /// The token's `jti`, when it has one.
    pub token_id: Option<String>,
    /// The token's `exp`, or the certificate's notAfter.
    pub expires_at: Option<SystemTime>,
    pub source: IdentitySource,
}
