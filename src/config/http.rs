//! `[target.http]`: the keys only an HTTP target has, and what an http
//! target requires of the keys every target shares (token callers, TLS
//! unless the listener may take plaintext). The stored credential
//! (`[target.credential]`) is optional: without it nothing is injected.

use serde::Deserialize;

use super::raw::RawTarget;
use super::target::TargetCheck;
use super::{ConfigError, TargetConfig, postgres};
use crate::identity::IdentityConfig;

pub(super) const CALLERS_BY_CERTIFICATE: bool = false;

/// `[target.http]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// The header the caller's `Bearer <jwt>` comes in; default
    /// `Authorization` (`Proxy-Authorization` when the caller's own
    /// `Authorization` must pass through).
    token_header: Option<String>,
    /// The `Host` (and TLS server name) callers reach this target by on a
    /// listener several http targets share; checked on every request when
    /// set.
    host: Option<String>,
    /// The path prefix (whole segments) this target answers on a listener
    /// several http targets share; the longest matching prefix wins.
    path_prefix: Option<String>,
    /// The most request body gathered to judge rules on JSON fields;
    /// default 64 KiB, at most 1 MiB.
    json_body_max: Option<usize>,
    /// `token` (default: a bearer token on every request) or `mtls` (the
    /// client certificate of the TLS handshake, `[identity.mtls]`).
    identity: Option<CallerIdentity>,
    /// The header the stored credential goes out in; default `Authorization`.
    credential_header: Option<String>,
    /// `bearer`, `basic` (user:password) or `raw` (the secret as the value);
    /// default `bearer`.
    credential_scheme: Option<CredentialScheme>,
    /// Add `X-Forwarded-For` with the caller's address; default true.
    x_forwarded_for: Option<bool>,
    /// Add `Forwarded: for=…;proto=…;host="…"` (RFC 7239); default false.
    forwarded: Option<bool>,
    /// The `Via` pseudonym; default `tollgate`.
    via: Option<String>,
    /// Body bytes recorded per request and per response; default 4096.
    record_body_bytes: Option<usize>,
    /// Largest response body gathered to be masked; default 1 MiB.
    mask_body_max: Option<usize>,
    /// A masked target's response body over `mask_body_max`: `block`
    /// (502, the default) or `pass` (unmasked, logged).
    mask_over_cap: Option<OverCap>,
    /// Rules on method and path, first match wins.
    #[serde(default)]
    rules: Vec<RawRule>,
    /// What a request no rule matches gets; default `allow`.
    default_action: Option<RuleAction>,
    /// Bytes of each WebSocket message recorded; default 65536.
    record_message_bytes: Option<usize>,
    /// The largest WebSocket frame payload relayed; default 16 MiB.
    websocket_max_frame: Option<u64>,
    /// Relay `Upgrade: SPDY/3.1` (old `kubectl exec`) as raw, unrecorded
    /// bytes; default false (refused).
    allow_unrecorded_spdy: Option<bool>,
    /// Offer HTTP/2 (ALPN `h2`) on the TLS listener; default false.
    http2: Option<bool>,
    /// Most concurrent streams per HTTP/2 connection; default 100.
    http2_max_concurrent_streams: Option<u32>,
    /// Largest decoded header list of an HTTP/2 request; default 32 KiB
    /// (the HTTP/1.1 head cap).
    http2_max_header_list_size: Option<u32>,
    /// Largest HTTP/2 frame payload a caller may send; default 16384.
    http2_max_frame_size: Option<u32>,
}

/// How an http target's callers identify.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallerIdentity {
    /// `Bearer <jwt>` in the token header of every request.
    #[default]
    Token,
    /// A client certificate from `[identity.mtls] ca_file`, mapped to a
    /// subject and groups as for tcp targets.
    Mtls,
}

/// How the stored secret is written into the credential header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialScheme {
    Bearer,
    Basic,
    Raw,
}

/// What a masked target does with a response body too large to mask.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverCap {
    #[default]
    Block,
    Pass,
}

/// What a matching rule does with a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    #[default]
    Allow,
    Block,
    Audit,
    /// Held until a reviewer approves (the approvals plane); denied or
    /// timed out: blocked.
    Approve,
}

use super::http_rules::RawRule;
pub use super::http_rules::{HttpRule, K8sMatch};

/// A validated `[target.http]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// Lower case, without a port.
    pub host: Option<String>,
    /// Without a final `/`; `None` when unset or `/`.
    pub path_prefix: Option<String>,
    pub identity: CallerIdentity,
    pub json_body_max: usize,
    /// Lower case.
    pub token_header: String,
    pub credential_header: String,
    pub credential_scheme: CredentialScheme,
    pub x_forwarded_for: bool,
    pub forwarded: bool,
    pub via: String,
    pub record_body_bytes: usize,
    pub mask_body_max: usize,
    pub mask_over_cap: OverCap,
    pub rules: Vec<HttpRule>,
    pub default_action: RuleAction,
    /// Bytes of each WebSocket message kept for the recording (the rest is
    /// counted, not kept).
    pub record_message_bytes: usize,
    /// The largest WebSocket frame payload accepted (close 1009 beyond).
    pub websocket_max_frame: u64,
    pub allow_unrecorded_spdy: bool,
    /// HTTP/2 towards callers (`None`: HTTP/1.1 only).
    pub http2: Option<Http2Limits>,
}

/// The caps of an HTTP/2 connection from a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http2Limits {
    pub max_concurrent_streams: u32,
    pub max_header_list_size: u32,
    pub max_frame_size: u32,
}

/// Bounds of the `http2_*` keys.
const MAX_H2_STREAMS: u32 = 1000;
const MAX_H2_HEADER_LIST: u32 = 1 << 20;
/// RFC 9113 §6.5.2: SETTINGS_MAX_FRAME_SIZE lies in 2^14 ..= 2^24 - 1.
const H2_FRAME_SIZES: std::ops::RangeInclusive<u32> = (1 << 14)..=((1 << 24) - 1);

fn http2_limits(raw: &RawHttp) -> Result<Option<Http2Limits>, (&'static str, String)> {
    if !raw.http2.unwrap_or(false) {
        return Ok(None);
    }
    let max_concurrent_streams = raw.http2_max_concurrent_streams.unwrap_or(100);
    if !(1..=MAX_H2_STREAMS).contains(&max_concurrent_streams) {
        return Err((
            "http.http2_max_concurrent_streams",
            format!("1 to {MAX_H2_STREAMS}"),
        ));
    }
    let max_header_list_size = raw.http2_max_header_list_size.unwrap_or(32 << 10);
    if !(1024..=MAX_H2_HEADER_LIST).contains(&max_header_list_size) {
        return Err((
            "http.http2_max_header_list_size",
            format!("1024 to {MAX_H2_HEADER_LIST}"),
        ));
    }
    let max_frame_size = raw.http2_max_frame_size.unwrap_or(1 << 14);
    if !H2_FRAME_SIZES.contains(&max_frame_size) {
        return Err((
            "http.http2_max_frame_size",
            format!("{} to {}", H2_FRAME_SIZES.start(), H2_FRAME_SIZES.end()),
        ));
    }
    Ok(Some(Http2Limits {
        max_concurrent_streams,
        max_header_list_size,
        max_frame_size,
    }))
}

/// Most body bytes a recording may keep per message.
const MAX_RECORD_BODY: usize = 1 << 20;
/// Largest `mask_body_max`.
const MAX_MASK_BODY: usize = 64 << 20;

/// The largest `websocket_max_frame` accepted (1 GiB).
const MAX_WEBSOCKET_FRAME: u64 = 1 << 30;

fn token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Checks `[target.http]`; the error names the field.
pub(super) fn validate(raw: Option<RawHttp>) -> Result<HttpTarget, (&'static str, String)> {
    let raw = raw.unwrap_or_default();
    let http2 = http2_limits(&raw)?;
    let token_header = raw.token_header.unwrap_or_else(|| "authorization".into());
    if !token(&token_header) {
        return Err(("http.token_header", "must be a header name".into()));
    }
    let credential_header = raw
        .credential_header
        .unwrap_or_else(|| "authorization".into());
    if !token(&credential_header) {
        return Err(("http.credential_header", "must be a header name".into()));
    }
    let host = raw.host.map(|h| h.to_ascii_lowercase());
    if let Some(h) = &host {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if h.len() > 253 || !h.split('.').all(label_ok) {
            return Err(("http.host", "must be a DNS name (no port)".into()));
        }
    }
    let via = raw.via.unwrap_or_else(|| "tollgate".into());
    if !token(&via) {
        return Err(("http.via", "must be a token".into()));
    }
    let record_body_bytes = raw.record_body_bytes.unwrap_or(4096);
    if record_body_bytes > MAX_RECORD_BODY {
        return Err((
            "http.record_body_bytes",
            format!("at most {MAX_RECORD_BODY}"),
        ));
    }
    let path_prefix = match raw.path_prefix {
        None => None,
        Some(p) => {
            let trimmed = p.trim_end_matches('/');
            let normal =
                tollgate_codecs::http::h1::check_normal_path(&format!("{trimmed}/")).is_ok();
            if !p.starts_with('/') || !normal || p.contains(['?', '#', '*']) {
                return Err((
                    "http.path_prefix",
                    "must be a path in normal form (\"/billing\", no //, . or .., no %-escapes)"
                        .into(),
                ));
            }
            (!trimmed.is_empty()).then(|| trimmed.to_string())
        }
    };
    let json_body_max = raw.json_body_max.unwrap_or(64 << 10);
    if !(1..=MAX_RECORD_BODY).contains(&json_body_max) {
        return Err(("http.json_body_max", format!("1 to {MAX_RECORD_BODY}")));
    }
    let mask_body_max = raw.mask_body_max.unwrap_or(1 << 20);
    if !(1..=MAX_MASK_BODY).contains(&mask_body_max) {
        return Err(("http.mask_body_max", format!("1 to {MAX_MASK_BODY}")));
    }
    let record_message_bytes = raw.record_message_bytes.unwrap_or(64 << 10);
    // At least 16: a Kubernetes channel message is read from its first bytes.
    if !(16..=MAX_RECORD_BODY).contains(&record_message_bytes) {
        return Err((
            "http.record_message_bytes",
            format!("between 16 and {MAX_RECORD_BODY}"),
        ));
    }
    let websocket_max_frame = raw.websocket_max_frame.unwrap_or(16 << 20);
    if !(125..=MAX_WEBSOCKET_FRAME).contains(&websocket_max_frame) {
        return Err((
            "http.websocket_max_frame",
            format!("between 125 and {MAX_WEBSOCKET_FRAME}"),
        ));
    }
    let rules = super::http_rules::validate(raw.rules, &token_header.to_ascii_lowercase())
        .map_err(|e| ("http.rules", e))?;
    Ok(HttpTarget {
        host,
        path_prefix,
        identity: raw.identity.unwrap_or_default(),
        json_body_max,
        token_header: token_header.to_ascii_lowercase(),
        credential_header: credential_header.to_ascii_lowercase(),
        credential_scheme: raw.credential_scheme.unwrap_or(CredentialScheme::Bearer),
        x_forwarded_for: raw.x_forwarded_for.unwrap_or(true),
        forwarded: raw.forwarded.unwrap_or(false),
        via,
        record_body_bytes,
        mask_body_max,
        mask_over_cap: raw.mask_over_cap.unwrap_or_default(),
        rules,
        default_action: raw.default_action.unwrap_or(RuleAction::Allow),
        record_message_bytes,
        websocket_max_frame,
        allow_unrecorded_spdy: raw.allow_unrecorded_spdy.unwrap_or(false),
        http2,
    })
}

pub(super) fn finish(
    c: &TargetCheck<'_>,
    raw: &mut RawTarget,
    t: &mut TargetConfig,
) -> Result<(), ConfigError> {
    let h = validate(raw.http.take()).map_err(|(field, why)| {
        let key = field.trim_start_matches("http.");
        c.err_in(&["http", key], field, &why)
    })?;
    if t.unauthenticated {
        return Err(c.err(
            "unauthenticated",
            "unauthenticated",
            "http targets always authenticate callers (token or client certificate)",
        ));
    }
    if h.identity == CallerIdentity::Mtls && t.tls.is_none() {
        return Err(c.err_in(
            &["http", "identity"],
            "http.identity",
            "identity = \"mtls\" reads the client certificate of a TLS handshake: \
             configure [target.tls]",
        ));
    }
    if h.http2.is_some() && t.tls.is_none() {
        return Err(c.err_in(
            &["http", "http2"],
            "http.http2",
            "HTTP/2 is offered by ALPN in the TLS handshake (no h2c): configure [target.tls]",
        ));
    }
    if !t.allow_plaintext && t.tls.is_none() {
        return Err(c.err(
            "listen",
            "tls",
            "this target accepts no plaintext clients (non-loopback listener, or \
             allow_plaintext = false) and has no [target.tls]: nobody could connect",
        ));
    }
    t.http = Some(h);
    Ok(())
}

/// Token callers need an issuer; certificate callers the mTLS CA.
pub(super) fn with_identity(
    c: &TargetCheck<'_>,
    t: &TargetConfig,
    identity: &IdentityConfig,
) -> Result<(), ConfigError> {
    let mtls = t
        .http
        .as_ref()
        .is_some_and(|h| h.identity == CallerIdentity::Mtls);
    if !mtls {
        return postgres::with_identity(c, t, identity);
    }
    if identity
        .mtls
        .as_ref()
        .and_then(|m| m.ca_file.as_ref())
        .is_none()
    {
        return Err(c.err_in(
            &["http", "identity"],
            "http.identity",
            "identity = \"mtls\" needs [identity.mtls] ca_file: the CA client \
             certificates must chain to",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_and_refusals() {
        let h = validate(None).unwrap();
        assert_eq!(h.token_header, "authorization");
        assert_eq!(h.credential_scheme, CredentialScheme::Bearer);
        assert!(h.x_forwarded_for);
        let raw: RawHttp = toml::from_str(
            "token_header = \"Proxy-Authorization\"\n[[rules]]\nname = \"no-delete\"\n\
             methods = [\"delete\"]\npath = \"/items/{id}\"\naction = \"block\"",
        )
        .unwrap();
        let h = validate(Some(raw)).unwrap();
        assert_eq!(h.token_header, "proxy-authorization");
        assert_eq!(h.rules[0].methods, vec!["DELETE".to_string()]);
        let raw: RawHttp = toml::from_str("token_header = \"a b\"").unwrap();
        assert_eq!(validate(Some(raw)).unwrap_err().0, "http.token_header");
        let raw: RawHttp =
            toml::from_str("[[rules]]\nname = \"x\"\npath = \"items\"\naction = \"allow\"")
                .unwrap();
        assert_eq!(validate(Some(raw)).unwrap_err().0, "http.rules");
        assert!(toml::from_str::<RawHttp>("bogus = 1").is_err());
        let h = validate(None).unwrap();
        assert!(!h.allow_unrecorded_spdy, "SPDY is refused unless allowed");
        assert_eq!(h.record_message_bytes, 64 << 10);
        for (bad, field) in [
            ("record_message_bytes = 8", "http.record_message_bytes"),
            (
                "record_message_bytes = 2000000",
                "http.record_message_bytes",
            ),
            ("websocket_max_frame = 100", "http.websocket_max_frame"),
            (
                "websocket_max_frame = 2000000000",
                "http.websocket_max_frame",
            ),
        ] {
            let raw: RawHttp = toml::from_str(bad).unwrap();
            assert_eq!(validate(Some(raw)).unwrap_err().0, field, "{bad}");
        }
    }
}

#[cfg(test)]
mod config_tests {
    #![allow(clippy::unwrap_used)]

    const HTTP: &str = r#"
[[identity.issuer]]
name = "idp"
issuer = "https://idp.test"
audience = ["tollgate"]
jwks_file = "/etc/tollgate/jwks.json"

[[target]]
name = "api"
protocol = "http"
listen = ["127.0.0.1:8080"]
upstream = "api:80"
[target.http]
credential_header = "X-Api-Key"
credential_scheme = "raw"
"#;

    fn parse(s: &str) -> Result<super::super::Config, String> {
        super::super::Config::parse(s, std::path::Path::new("t.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn http_targets_validate_through_the_config() {
        let c = parse(HTTP).unwrap();
        let h = c.targets[0].http.as_ref().unwrap();
        assert_eq!(h.credential_header, "x-api-key");
        assert!(
            c.targets[0].credential.is_none(),
            "a credential is optional"
        );
        // No issuer; a non-loopback listener without TLS; unauthenticated;
        // [target.http] on a tcp target; a bad rule.
        let no_issuer = HTTP.split("[[target]]").nth(1).unwrap();
        let e = parse(&format!("[[target]]{no_issuer}")).unwrap_err();
        assert!(e.contains("http callers authenticate with tokens"), "{e}");
        let e = parse(&HTTP.replace("127.0.0.1:8080", "0.0.0.0:8080")).unwrap_err();
        assert!(e.contains("nobody could connect"), "{e}");
        let e = parse(&HTTP.replace("[target.http]", "unauthenticated = true\n[target.http]"))
            .unwrap_err();
        assert!(e.contains("always authenticate"), "{e}");
        let e = parse(&HTTP.replace("\"http\"", "\"tcp\"")).unwrap_err();
        assert!(e.contains("[target.http] is for http targets"), "{e}");
        let bad = format!(
            "{HTTP}[[target.http.rules]]\nname = \"x\"\npath = \"/a/[\"\naction = \"block\"\n"
        );
        assert!(parse(&bad).unwrap_err().contains("rule"));
    }
}
