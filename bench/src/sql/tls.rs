//! TLS for `tollgate-load pg`: libpq's `sslmode`/`sslrootcert` read out of
//! the DSN (tokio-postgres knows neither `verify-ca` nor `verify-full` nor
//! root files) and a `MakeTlsConnect` on rustls with ring, the gateway's own
//! stack (no second crypto library; `cargo deny` checks it).
//!
//! As libpq: `require` (and `prefer`) encrypt without checking the server's
//! certificate unless `sslrootcert` is given, which makes them `verify-ca`;
//! `verify-ca` checks the chain, `verify-full` the chain and the host name.
//! SCRAM channel binding is not offered (`ChannelBinding::none`).

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::{Context as _, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

/// libpq's `sslmode`, as far as the tool honours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    /// `allow`, `prefer`: TLS when the server offers it.
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A DSN with `sslmode` and `sslrootcert` taken out, and what they said.
#[derive(Debug)]
pub struct PgTls {
    /// What tokio-postgres parses (its `sslmode` is `disable`, `prefer` or `require`).
    pub dsn: String,
    pub mode: SslMode,
    pub root_cert: Option<PathBuf>,
}

/// Splits a key=value DSN or a `postgres://` URL.
pub fn split_pg_dsn(dsn: &str) -> anyhow::Result<PgTls> {
    let trimmed = dsn.trim();
    let (rest, mode, root) =
        if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
            split_url(trimmed)?
        } else {
            split_pairs(trimmed)?
        };
    let mode = match mode.as_deref() {
        None | Some("prefer" | "allow") => SslMode::Prefer,
        Some("disable") => SslMode::Disable,
        Some("require") => SslMode::Require,
        Some("verify-ca") => SslMode::VerifyCa,
        Some("verify-full") => SslMode::VerifyFull,
        Some(other) => bail!(
            "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
        ),
    };
    // libpq: a root file given with `require` verifies the chain.
    let mode = match (mode, &root) {
        (SslMode::Require, Some(_)) => SslMode::VerifyCa,
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
            bail!("sslmode=verify-ca and verify-full need sslrootcert=FILE (the CA to trust)")
        }
        (mode, _) => mode,
    };
    let pg_mode = match mode {
        SslMode::Disable => "disable",
        SslMode::Prefer => "prefer",
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "require",
    };
    let dsn = if rest.contains("://") {
        let sep = if rest.contains('?') { '&' } else { '?' };
        format!("{rest}{sep}sslmode={pg_mode}")
    } else {
        format!("{rest} sslmode={pg_mode}")
    };
    Ok(PgTls {
        dsn,
        mode,
        root_cert: root.map(PathBuf::from),
    })
}

type Split = (String, Option<String>, Option<String>);

fn split_url(dsn: &str) -> anyhow::Result<Split> {
    let mut url = url::Url::parse(dsn).context("not a postgres:// URL")?;
    let (mut mode, mut root, mut kept) = (None, None, Vec::new());
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "sslmode" => mode = Some(value.into_owned()),
            "sslrootcert" => root = Some(value.into_owned()),
            _ => kept.push((key.into_owned(), value.into_owned())),
        }
    }
    url.set_query(None);
    if !kept.is_empty() {
        url.query_pairs_mut().extend_pairs(kept);
    }
    Ok((url.into(), mode, root))
}

/// libpq's key=value syntax: values bare or in single quotes with `\` escapes.
fn split_pairs(dsn: &str) -> anyhow::Result<Split> {
    let (mut mode, mut root, mut kept) = (None, None, String::new());
    let mut chars = dsn.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(_) = chars.peek() else { break };
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && !c.is_whitespace())).collect();
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            bail!("connection string: `{key}` has no `=value`");
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => bail!("connection string: unterminated quote in `{key}`"),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())));
        }
        match key.as_str() {
            "sslmode" => mode = Some(value),
            "sslrootcert" => root = Some(value),
            _ => {
                let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
                kept.push_str(&format!("{key}='{quoted}' "));
            }
        }
    }
    Ok((kept.trim_end().to_owned(), mode, root))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls client config for `mode` (not called for `disable`).
pub fn client_config(mode: SslMode, root_cert: Option<&Path>) -> anyhow::Result<Arc<ClientConfig>> {
    let inner = match root_cert {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .with_context(|| format!("sslrootcert {}", path.display()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                bail!("sslrootcert {} holds no certificate", path.display());
            }
            Some(WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider()).build()?)
        }
        None => None,
    };
    let verifier = Arc::new(Verifier {
        inner,
        check_name: mode == SslMode::VerifyFull,
        provider: provider(),
    });
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// libpq's three levels: no check, the chain, the chain and the name. The
/// handshake's signatures are always verified.
#[derive(Debug)]
struct Verifier {
    inner: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(inner) = &self.inner else {
            return Ok(ServerCertVerified::assertion());
        };
        match inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// tokio-postgres' TLS hook on tokio-rustls.
#[derive(Clone)]
pub struct MakeRustls(pub Arc<ClientConfig>);

pub struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnect> {
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(RustlsConnect {
            config: Arc::clone(&self.0),
            name,
        })
    }
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move {
            let tls = connector.connect(self.name, stream).await?;
            Ok(RustlsStream(tls))
        })
    }
}

pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_root_are_taken_out_of_key_value_dsns() {
        let t = split_pg_dsn(
            "host=h port=1 password='a b\\'c' sslmode=verify-full sslrootcert=/x/ca.pem",
        )
        .unwrap();
        assert_eq!(t.mode, SslMode::VerifyFull);
        assert_eq!(t.root_cert.as_deref(), Some(Path::new("/x/ca.pem")));
        assert_eq!(
            t.dsn,
            "host='h' port='1' password='a b\\'c' sslmode=require"
        );
        let parsed: tokio_postgres::Config = t.dsn.parse().unwrap();
        assert_eq!(parsed.get_password(), Some(&b"a b'c"[..]));
        // libpq: require with a root file verifies the chain.
        let t = split_pg_dsn("host=h sslmode=require sslrootcert=ca.pem").unwrap();
        assert_eq!(t.mode, SslMode::VerifyCa);
        assert_eq!(split_pg_dsn("host=h").unwrap().mode, SslMode::Prefer);
        assert!(split_pg_dsn("host=h sslmode=verify-full").is_err());
        assert!(split_pg_dsn("host=h sslmode=bogus").is_err());
    }

    #[test]
    fn sslmode_and_root_are_taken_out_of_urls() {
        let t = split_pg_dsn(
            "postgres://u@h:5/db?sslmode=verify-ca&sslrootcert=%2Fx%2Fca.pem&application_name=a",
        )
        .unwrap();
        assert_eq!(t.mode, SslMode::VerifyCa);
        assert_eq!(t.root_cert.as_deref(), Some(Path::new("/x/ca.pem")));
        assert_eq!(
            t.dsn,
            "postgres://u@h:5/db?application_name=a&sslmode=require"
        );
        assert!(t.dsn.parse::<tokio_postgres::Config>().is_ok());
    }
}
