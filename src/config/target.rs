//! `[[target]]`: the keys every target shares, checked here; the
//! protocol's own keys and rules are checked by its module (`protocols.rs`).

use std::net::SocketAddr;
use std::time::Duration;

use super::raw::{RawCredential, RawTarget};
use super::{
    ConfigError, Credential, DEFAULT_AUTH_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    Protocol, SecretSource, Seg, TargetConfig, TlsFiles, UpstreamTls, UpstreamTlsMode, Validator,
    protocols,
};

/// Errors and warnings about target `i`, at the right line.
pub(super) struct TargetCheck<'a> {
    pub(super) v: &'a Validator<'a>,
    pub(super) i: usize,
}

impl TargetCheck<'_> {
    /// An error about `key` of the target, reported as `target[i].{field}`.
    pub(super) fn err(&self, key: &str, field: &str, message: &str) -> ConfigError {
        self.err_in(&[key], field, message)
    }

    /// An error about a key inside the target's sub-tables (`["postgres", "database"]`).
    pub(super) fn err_in(&self, keys: &[&str], field: &str, message: &str) -> ConfigError {
        let mut path = vec![Seg::Key("target"), Seg::Index(self.i)];
        path.extend(keys.iter().map(|k| Seg::Key(k)));
        self.v
            .invalid(&path, &format!("target[{}].{field}", self.i), message)
    }

    fn line(&self, key: &str) -> usize {
        super::validate::locate_line(
            self.v.text,
            &[Seg::Key("target"), Seg::Index(self.i), Seg::Key(key)],
        )
    }

    /// The warning for `key` read from its deprecated place.
    pub(super) fn moved(&self, key: &str, new_place: &str, target: &str) -> String {
        format!(
            "{}:{}: target[{}].{key} (target {target:?}) is deprecated here: move it to {new_place}",
            self.v.file,
            self.line(key),
            self.i,
        )
    }

    /// The warning for a key that means nothing on this target's protocol.
    pub(super) fn unused(&self, key: &str, target: &str, protocol: Protocol) -> String {
        format!(
            "{}:{}: target[{}].{key} (target {target:?}) does nothing on a {protocol} target: \
             remove it",
            self.v.file,
            self.line(key),
            self.i,
        )
    }
}

impl Validator<'_> {
    pub(super) fn target(
        &self,
        i: usize,
        mut raw: RawTarget,
        deprecations: &mut Vec<String>,
    ) -> Result<TargetConfig, ConfigError> {
        let c = TargetCheck { v: self, i };
        name(&c, &raw.name)?;
        let listen = listen(&c, &raw.listen)?;
        upstream(&c, &raw.upstream)?;
        let all_loopback = listen.iter().all(|a| a.ip().is_loopback());
        let credential = raw
            .credential
            .take()
            .map(|r| credential(&c, r))
            .transpose()?;
        let access = raw.access.take().unwrap_or_default();
        if let Err(e) =
            crate::identity::AccessPolicy::compile(&access, &format!("target[{i}].access"))
        {
            return Err(c.err("access", "access", &e.to_string()));
        }
        if let Some(m) = &raw.masking
            && let Err(e) = m.validate()
        {
            return Err(c.err("masking", "masking", &e.to_string()));
        }
        if let Some(m) = &raw.masking
            && m.has_json_paths()
            && raw.protocol != Protocol::Http
        {
            // Only HTTP bodies are walked by place; elsewhere the rule
            // would mask nothing, silently.
            return Err(c.err(
                "masking",
                "masking",
                "json_paths apply to HTTP targets (JSON response bodies) only; \
                 mask database columns by `columns`",
            ));
        }
        let upstream_tls = raw
            .upstream_tls
            .take()
            .map(|u| upstream_tls(&c, u))
            .transpose()?;
        let policy = raw.policy.take().unwrap_or_default();
        if let Err(e) = policy.validate() {
            return Err(c.err("policy", "policy", &e.to_string()));
        }
        let mut t = TargetConfig {
            name: raw.name.clone(),
            protocol: raw.protocol,
            listen,
            upstream: raw.upstream.clone(),
            unauthenticated: raw.unauthenticated,
            connect_timeout: positive(
                &c,
                "connect_timeout",
                raw.connect_timeout,
                DEFAULT_CONNECT_TIMEOUT,
            )?,
            idle_timeout: positive(&c, "idle_timeout", raw.idle_timeout, DEFAULT_IDLE_TIMEOUT)?,
            auth_timeout: positive(&c, "auth_timeout", raw.auth_timeout, DEFAULT_AUTH_TIMEOUT)?,
            credential,
            tls: raw.tls.take().map(|t| TlsFiles {
                cert_file: t.cert_file,
                key_file: t.key_file,
            }),
            allow_plaintext: raw.allow_plaintext.unwrap_or(all_loopback),
            upstream_tls,
            access,
            masking: raw.masking.take(),
            policy,
            reviewer_groups: std::mem::take(&mut raw.reviewer_groups),
            require_approval_to_connect: raw.require_approval_to_connect,
            postgres: None,
            mysql: None,
            http: None,
            ssh: None,
        };
        protocols::finish(&c, &mut raw, &mut t, deprecations)?;
        Ok(t)
    }

    /// Target `i` beside the ones before it: a unique name, and a listener
    /// it may share only with targets of its protocol that callers tell
    /// apart by their route (postgres: the database; ssh: `LOGIN+TARGET`).
    pub(super) fn fits_beside(
        &self,
        i: usize,
        target: &TargetConfig,
        before: &[TargetConfig],
    ) -> Result<(), ConfigError> {
        if let Some(prev) = before.iter().find(|p| p.name == target.name) {
            return Err(self.invalid(
                &[Seg::Key("target"), Seg::Index(i), Seg::Key("name")],
                "name",
                &format!("duplicate target name {:?}", prev.name),
            ));
        }
        for addr in &target.listen {
            let clash = before
                .iter()
                .find(|p| p.listen.contains(addr) && !routed_apart(p, target));
            // An http listener speaks TLS or not before any Host is read.
            let mixed = before.iter().find(|p| {
                p.listen.contains(addr)
                    && p.http.is_some()
                    && target.http.is_some()
                    && (p.tls.is_some() != target.tls.is_some()
                        || p.callers_by_certificate() != target.callers_by_certificate())
            });
            // An ssh listener shows its host key before the user name
            // that routes is read.
            let other_host_key = before.iter().find(|p| {
                p.listen.contains(addr)
                    && matches!((&p.ssh, &target.ssh), (Some(a), Some(b)) if a.host_key != b.host_key)
            });
            if let Some(p) = other_host_key {
                let why = format!(
                    "{addr} is shared with ssh target {:?}: ssh targets on one listener have \
                     the same [target.ssh] host_key",
                    p.name
                );
                return Err(TargetCheck { v: self, i }.err("listen", "listen", &why));
            }
            if let Some(p) = mixed {
                let why = format!(
                    "{addr} is shared with target {:?}: http targets on one listener all have \
                     [target.tls] or none has, and all take tokens or all client certificates",
                    p.name
                );
                return Err(TargetCheck { v: self, i }.err("listen", "listen", &why));
            }
            let Some(p) = clash else { continue };
            let why = match protocols::route(p) {
                Some(theirs) if p.protocol == target.protocol => format!(
                    "{addr} already routes {} {theirs:?} to target {:?}",
                    if p.http.is_some() {
                        "host/path"
                    } else {
                        "database"
                    },
                    p.name
                ),
                _ => format!("{addr} is already the listener of target {:?}", p.name),
            };
            return Err(TargetCheck { v: self, i }.err("listen", "listen", &why));
        }
        Ok(())
    }
}

/// `[target.upstream_tls]`: a client certificate needs its key, and is
/// sent only where the upstream's certificate is verified.
fn upstream_tls(
    c: &TargetCheck<'_>,
    u: super::raw::RawUpstreamTls,
) -> Result<UpstreamTls, ConfigError> {
    let client_cert = match (u.cert_file, u.key_file) {
        (None, None) => None,
        (Some(cert_file), Some(key_file)) => Some(TlsFiles {
            cert_file,
            key_file,
        }),
        _ => {
            return Err(c.err(
                "upstream_tls",
                "upstream_tls",
                "cert_file and key_file go together (the client certificate and its key)",
            ));
        }
    };
    if client_cert.is_some() && u.mode != UpstreamTlsMode::VerifyFull {
        return Err(c.err(
            "upstream_tls",
            "upstream_tls",
            "a client certificate is presented only with mode = \"verify-full\"",
        ));
    }
    Ok(UpstreamTls {
        mode: u.mode,
        ca_file: u.ca_file,
        server_name: u.server_name,
        client_cert,
    })
}

/// Two targets of one protocol that callers pick between by route.
fn routed_apart(a: &TargetConfig, b: &TargetConfig) -> bool {
    a.protocol == b.protocol
        && matches!(
            (protocols::route(a), protocols::route(b)),
            (Some(x), Some(y)) if x != y
        )
}

fn name(c: &TargetCheck<'_>, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        return Ok(());
    }
    Err(c.err(
        "name",
        "name",
        "must be 1-64 characters of letters, digits, '-', '_' or '.'",
    ))
}

fn listen(c: &TargetCheck<'_>, raw: &[String]) -> Result<Vec<SocketAddr>, ConfigError> {
    if raw.is_empty() {
        return Err(c.err(
            "listen",
            "listen",
            "at least one listen address is required",
        ));
    }
    let mut listen = Vec::with_capacity(raw.len());
    for l in raw {
        let addr: SocketAddr = l.parse().map_err(|_| {
            c.err(
                "listen",
                "listen",
                &format!("{l:?} is not an IP:port socket address"),
            )
        })?;
        // Port 0: the kernel picks the port at start-up (tests, sidecars); the bound
        // address is logged ("bound addresses") and written to `run --ready-file`.
        if listen.contains(&addr) {
            return Err(c.err("listen", "listen", &format!("{l:?} is listed twice")));
        }
        listen.push(addr);
    }
    Ok(listen)
}

fn upstream(c: &TargetCheck<'_>, upstream: &str) -> Result<(), ConfigError> {
    match upstream.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0) => {
            Ok(())
        }
        _ => Err(c.err(
            "upstream",
            "upstream",
            &format!("{upstream:?} is not host:port"),
        )),
    }
}

/// A timeout: its default when unset, never zero.
fn positive(
    c: &TargetCheck<'_>,
    key: &str,
    raw: Option<Duration>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let d = raw.unwrap_or(default);
    if d.is_zero() {
        return Err(c.err(key, key, "must be greater than zero"));
    }
    Ok(d)
}

fn credential(c: &TargetCheck<'_>, raw: RawCredential) -> Result<Credential, ConfigError> {
    let source = match (raw.password_file, raw.password_env) {
        (Some(f), None) => SecretSource::File(f),
        (None, Some(e)) if !e.is_empty() => SecretSource::Env(e),
        _ => {
            return Err(c.err(
                "credential",
                "credential",
                "exactly one of password_file or password_env is required",
            ));
        }
    };
    if raw.user.is_empty() {
        return Err(c.err("credential", "credential.user", "must not be empty"));
    }
    Ok(Credential {
        user: raw.user,
        source,
    })
}
