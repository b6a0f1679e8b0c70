//! What a `tcp` target requires: caller identity from a client certificate
//! (`[target.tls]` with `[identity.mtls] ca_file`), or explicitly none on a
//! loopback listener. It has no sub-table of its own.

use super::target::TargetCheck;
use super::{ConfigError, TargetConfig};
use crate::identity::IdentityConfig;

pub(super) const CALLERS_BY_CERTIFICATE: bool = true;

pub(super) fn finish(c: &TargetCheck<'_>, t: &TargetConfig) -> Result<(), ConfigError> {
    // Fail closed: a relay with no identity is only tolerable where only
    // this host can reach it.
    if t.tls.is_some() && t.unauthenticated {
        return Err(c.err(
            "unauthenticated",
            "unauthenticated",
            "a tcp target with [target.tls] authenticates callers by client certificate; \
             remove `unauthenticated`",
        ));
    }
    if t.tls.is_none() {
        if !t.unauthenticated {
            return Err(c.err(
                "protocol",
                "unauthenticated",
                "a tcp target needs caller identity: configure [target.tls] with \
                 [identity.mtls] ca_file (mTLS), or say `unauthenticated = true`, which is \
                 only accepted on loopback listen addresses",
            ));
        }
        if let Some(a) = t.listen.iter().find(|a| !a.ip().is_loopback()) {
            return Err(c.err(
                "unauthenticated",
                "unauthenticated",
                &format!("unauthenticated targets may only listen on loopback, not {a}"),
            ));
        }
    }
    Ok(())
}

pub(super) fn with_identity(
    c: &TargetCheck<'_>,
    t: &TargetConfig,
    identity: &IdentityConfig,
) -> Result<(), ConfigError> {
    let mtls_ca = identity.mtls.as_ref().and_then(|m| m.ca_file.as_ref());
    if t.tls.is_some() && mtls_ca.is_none() {
        return Err(c.err(
            "tls",
            "tls",
            "a tcp target with TLS authenticates callers by client certificate: \
             configure [identity.mtls] ca_file",
        ));
    }
    Ok(())
}
