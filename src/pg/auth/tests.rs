//! Tests of upstream authentication: RFC 7677 and md5 vectors, a mock SCRAM server, hostile servers.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::num::NonZeroU32;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::{digest, hmac};

use super::*;
use bytes::Buf;
use tollgate_codecs::pg::{
    Caps, Frame, Limits, SaslInitialResponse, SaslResponse, encode_authentication_sasl,
    encode_authentication_sasl_continue, encode_authentication_sasl_final, next_frame,
};

#[test]
fn md5_known_vector() {
    // Computed independently with Python's hashlib.
    assert_eq!(
        md5_response(b"postgres", b"postgres", [1, 2, 3, 4]),
        "md568be9ed08db75f318087ab337aaea044"
    );
}

/// SaltedPassword → (ClientKey, ServerKey), as the server derives its verifier (RFC 5802 §3).
fn server_keys(password: &[u8], salt: &[u8], iterations: u32) -> ([u8; 32], [u8; 32]) {
    let mut salted = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        NonZeroU32::new(iterations).unwrap(),
        salt,
        password,
        &mut salted,
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
    let mut client = [0u8; 32];
    let mut server = [0u8; 32];
    client.copy_from_slice(hmac::sign(&key, b"Client Key").as_ref());
    server.copy_from_slice(hmac::sign(&key, b"Server Key").as_ref());
    (client, server)
}

/// The server side of SCRAM, from a verifier, as PostgreSQL checks it.
struct MockServer {
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
    salt: Vec<u8>,
    iterations: u32,
    cert_hash: Option<Vec<u8>>,
    client_first_bare: String,
    server_first: String,
    gs2: String,
}

impl MockServer {
    fn new(password: &str, iterations: u32, cert_hash: Option<Vec<u8>>) -> Self {
        let salt = b"0123456789abcdef".to_vec();
        let (client_key, server_key) = server_keys(password.as_bytes(), &salt, iterations);
        MockServer {
            stored_key: digest::digest(&digest::SHA256, &client_key)
                .as_ref()
                .to_vec(),
            server_key: server_key.to_vec(),
            salt,
            iterations,
            cert_hash,
            client_first_bare: String::new(),
            server_first: String::new(),
            gs2: String::new(),
        }
    }

    /// Reads SASLInitialResponse; returns server-first-message.
    fn first(&mut self, frame: &Frame, want_mechanism: &str) -> String {
        let init = SaslInitialResponse::parse(frame).unwrap();
        assert_eq!(init.mechanism, want_mechanism.as_bytes());
        let msg = std::str::from_utf8(init.data.unwrap()).unwrap();
        let mut parts = msg.splitn(3, ',');
        let (cb, authz, bare) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        assert_eq!(authz, "");
        self.gs2 = format!("{cb},,");
        self.client_first_bare = bare.into();
        let nonce = bare
            .strip_prefix("n=,r=")
            .expect("PostgreSQL clients send an empty user");
        assert_eq!(nonce.len(), 24);
        self.server_first = format!(
            "r={nonce}srv,s={},i={}",
            B64.encode(&self.salt),
            self.iterations
        );
        self.server_first.clone()
    }

    /// Reads SASLResponse, checks binding and proof; returns server-final-message.
    fn last(&mut self, frame: &Frame) -> String {
        let msg = std::str::from_utf8(SaslResponse::parse(frame).unwrap().data).unwrap();
        let (without_proof, proof) = msg.rsplit_once(",p=").unwrap();
        let c = without_proof
            .strip_prefix("c=")
            .unwrap()
            .split(',')
            .next()
            .unwrap();
        let mut want = self.gs2.clone().into_bytes();
        if self.gs2.starts_with("p=") {
            want.extend_from_slice(self.cert_hash.as_ref().unwrap());
        }
        if B64.decode(c).unwrap() != want {
            return "e=channel-bindings-dont-match".into();
        }
        let auth = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let sig = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &self.stored_key),
            auth.as_bytes(),
        );
        let mut key = B64.decode(proof).unwrap();
        key.iter_mut().zip(sig.as_ref()).for_each(|(k, s)| *k ^= s);
        if digest::digest(&digest::SHA256, &key).as_ref() != self.stored_key {
            return "e=invalid-proof".into();
        }
        let v = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &self.server_key),
            auth.as_bytes(),
        );
        format!("v={}", B64.encode(v))
    }
}

fn frame(buf: &mut BytesMut) -> Frame {
    let f = next_frame(buf, &Caps::backend(&Limits::default()).with_max(b'p', 1000))
        .unwrap()
        .unwrap();
    assert!(!buf.has_remaining());
    f
}

fn step(
    auth: &mut UpstreamAuth,
    enc: impl FnOnce(&mut BytesMut),
    out: &mut BytesMut,
) -> Result<AuthStep, AuthError> {
    let mut b = BytesMut::new();
    enc(&mut b);
    let f = frame(&mut b);
    auth.step(&Authentication::parse(&f).unwrap(), out)
}

/// A whole SCRAM login against `server`; returns the method or the first error.
fn scram_login(
    auth: &mut UpstreamAuth,
    server: &mut MockServer,
    offer: &[&str],
    want: &str,
) -> Result<AuthMethod, AuthError> {
    let mut out = BytesMut::new();
    assert_eq!(
        step(
            auth,
            |b| encode_authentication_sasl(b, offer).unwrap(),
            &mut out
        )?,
        AuthStep::Respond
    );
    let sf = server.first(&frame(&mut out), want);
    assert_eq!(
        step(
            auth,
            |b| encode_authentication_sasl_continue(b, sf.as_bytes()).unwrap(),
            &mut out
        )?,
        AuthStep::Respond
    );
    let fin = server.last(&frame(&mut out));
    assert_eq!(
        step(
            auth,
            |b| encode_authentication_sasl_final(b, fin.as_bytes()).unwrap(),
            &mut out
        )?,
        AuthStep::Wait
    );
    assert!(out.is_empty());
    match step(
        auth,
        tollgate_codecs::pg::encode_authentication_ok,
        &mut out,
    )? {
        AuthStep::Done(m) => Ok(m),
        other => panic!("expected Done, got {other:?}"),
    }
}

fn auth(password: &str, binding: ChannelBinding, policy: AuthPolicy) -> UpstreamAuth {
    UpstreamAuth::new(b"app", Password::from(password), binding, policy)
}

#[test]
fn scram_without_channel_binding() {
    let mut server = MockServer::new("s3cret", 4096, None);
    let mut a = auth("s3cret", ChannelBinding::None, AuthPolicy::default());
    assert_eq!(
        scram_login(&mut a, &mut server, &[SCRAM], SCRAM).unwrap(),
        AuthMethod::ScramSha256
    );
    assert_eq!(server.gs2, "n,,");
}

#[test]
fn scram_plus_binds_to_the_certificate() {
    let hash = vec![7u8; 32];
    let mut server = MockServer::new("s3cret", 4096, Some(hash.clone()));
    let policy = AuthPolicy {
        require_channel_binding: true,
        ..AuthPolicy::default()
    };
    let mut a = auth("s3cret", ChannelBinding::TlsServerEndPoint(hash), policy);
    assert_eq!(
        scram_login(&mut a, &mut server, &[SCRAM_PLUS, SCRAM], SCRAM_PLUS).unwrap(),
        AuthMethod::ScramSha256Plus
    );
    assert_eq!(server.gs2, "p=tls-server-end-point,,");

    // A man in the middle with another certificate: the binding data differs.
    let mut mitm = MockServer::new("s3cret", 4096, Some(vec![8u8; 32]));
    let mut a = auth(
        "s3cret",
        ChannelBinding::TlsServerEndPoint(vec![7u8; 32]),
        policy,
    );
    let err = scram_login(&mut a, &mut mitm, &[SCRAM_PLUS], SCRAM_PLUS).unwrap_err();
    assert!(
        matches!(err, AuthError::ServerError { ref message } if message == "channel-bindings-dont-match")
    );
}

#[test]
fn binding_capable_client_says_y_when_plus_is_not_offered() {
    let mut server = MockServer::new("pw", 4096, None);
    let mut a = auth(
        "pw",
        ChannelBinding::TlsServerEndPoint(vec![1; 32]),
        AuthPolicy::default(),
    );
    assert_eq!(
        scram_login(&mut a, &mut server, &[SCRAM], SCRAM).unwrap(),
        AuthMethod::ScramSha256
    );
    assert_eq!(server.gs2, "y,,");
}

#[test]
fn required_channel_binding_refuses_weaker_methods() {
    let policy = AuthPolicy {
        require_channel_binding: true,
        ..AuthPolicy::default()
    };
    let mut out = BytesMut::new();
    let mut a = auth("pw", ChannelBinding::TlsServerEndPoint(vec![1; 32]), policy);
    assert!(matches!(
        step(
            &mut a,
            |b| encode_authentication_sasl(b, &[SCRAM]).unwrap(),
            &mut out
        ),
        Err(AuthError::ChannelBindingRequired { .. })
    ));
    for enc in [
        tollgate_codecs::pg::encode_authentication_ok as fn(&mut BytesMut),
        tollgate_codecs::pg::encode_authentication_cleartext_password,
        |b: &mut BytesMut| tollgate_codecs::pg::encode_authentication_md5_password(b, [0; 4]),
    ] {
        let mut a = auth("pw", ChannelBinding::TlsServerEndPoint(vec![1; 32]), policy);
        assert!(matches!(
            step(&mut a, enc, &mut out),
            Err(AuthError::ChannelBindingRequired { .. })
        ));
    }
    assert!(out.is_empty(), "nothing may be sent after a refusal");
}

#[test]
fn an_impostor_server_is_caught_by_its_signature() {
    // The impostor does not know the verifier: its ServerKey is for another password.
    let mut impostor = MockServer::new("not-the-password", 4096, None);
    let real = MockServer::new("pw", 4096, None);
    impostor.stored_key = real.stored_key.clone();
    let mut a = auth("pw", ChannelBinding::None, AuthPolicy::default());
    assert!(matches!(
        scram_login(&mut a, &mut impostor, &[SCRAM], SCRAM),
        Err(AuthError::ServerSignatureMismatch)
    ));
    // And a failed step leaves the exchange dead.
    let mut out = BytesMut::new();
    assert!(
        step(
            &mut a,
            tollgate_codecs::pg::encode_authentication_ok,
            &mut out
        )
        .is_err()
    );
}

#[test]
fn hostile_server_first_messages_are_refused() {
    type Expect = fn(&AuthError) -> bool;
    let cases: &[(&str, Expect)] = &[
        ("r={n}x,s=c2FsdA==,i=2000000", |e| {
            matches!(
                e,
                AuthError::TooManyIterations {
                    iterations: 2_000_000,
                    max: 100_000
                }
            )
        }),
        ("r={n}x,s=c2FsdA==,i=0", |e| {
            matches!(e, AuthError::MalformedScram { .. })
        }),
        ("r={n}x,s=c2FsdA==,i=-1", |e| {
            matches!(e, AuthError::MalformedScram { .. })
        }),
        ("r=someoneelse,s=c2FsdA==,i=4096", |e| {
            matches!(e, AuthError::NonceMismatch)
        }),
        ("r={n},s=c2FsdA==,i=4096", |e| {
            matches!(e, AuthError::NonceMismatch)
        }),
        ("r={n}x,s=!!,i=4096", |e| {
            matches!(e, AuthError::MalformedScram { .. })
        }),
        ("r={n}x,s=,i=4096", |e| {
            matches!(e, AuthError::MalformedScram { .. })
        }),
        ("m=ext,r={n}x,s=c2FsdA==,i=4096", |e| {
            matches!(e, AuthError::MalformedScram { .. })
        }),
        ("r={n}x,s=c2FsdA==,i=4096,x=1", |e| {
            matches!(e, AuthError::MalformedScram { .. })
        }),
        ("r={n}x,s=c2FsdA==", |e| {
            matches!(e, AuthError::MalformedScram { .. })
        }),
    ];
    for (template, ok) in cases {
        let mut a = auth("pw", ChannelBinding::None, AuthPolicy::default());
        let mut out = BytesMut::new();
        step(
            &mut a,
            |b| encode_authentication_sasl(b, &[SCRAM]).unwrap(),
            &mut out,
        )
        .unwrap();
        let init = frame(&mut out);
        let data = SaslInitialResponse::parse(&init)
            .unwrap()
            .data
            .unwrap()
            .to_vec();
        // `n,,n=,r=<nonce>`: the nonce holds no comma, so this split is exact.
        let nonce = std::str::from_utf8(&data)
            .unwrap()
            .split_once(",r=")
            .unwrap()
            .1
            .to_string();
        let sf = template.replace("{n}", &nonce);
        let err = step(
            &mut a,
            |b| encode_authentication_sasl_continue(b, sf.as_bytes()).unwrap(),
            &mut out,
        )
        .unwrap_err();
        assert!(ok(&err), "{template}: {err}");
        assert!(out.is_empty());
    }
}

#[test]
fn ok_before_the_server_proves_itself_is_refused() {
    let mut a = auth("pw", ChannelBinding::None, AuthPolicy::default());
    let mut out = BytesMut::new();
    step(
        &mut a,
        |b| encode_authentication_sasl(b, &[SCRAM]).unwrap(),
        &mut out,
    )
    .unwrap();
    assert!(matches!(
        step(
            &mut a,
            tollgate_codecs::pg::encode_authentication_ok,
            &mut out
        ),
        Err(AuthError::PrematureOk { .. })
    ));
}

#[test]
fn server_error_in_final_message_is_reported() {
    let mut server = MockServer::new("other", 4096, None);
    let mut a = auth("pw", ChannelBinding::None, AuthPolicy::default());
    let err = scram_login(&mut a, &mut server, &[SCRAM], SCRAM).unwrap_err();
    assert!(
        matches!(err, AuthError::ServerError { ref message } if message == "invalid-proof"),
        "{err}"
    );
}

#[test]
fn scram_normalises_the_password_with_saslprep() {
    // The server's verifier is what PostgreSQL stores for the SASLprep'd password: a
    // no-break space maps to a space (RFC 4013 §2.1), a soft hyphen to nothing (§2.2,
    // RFC 3454 B.1), a full-width letter to its NFKC form.
    for (stored, normalised) in [
        ("pass\u{a0}word", "pass word"),
        ("I\u{ad}X", "IX"),
        ("\u{ff21}dmin", "Admin"),
    ] {
        let mut server = MockServer::new(normalised, 4096, None);
        let mut a = auth(stored, ChannelBinding::None, AuthPolicy::default());
        assert_eq!(
            scram_login(&mut a, &mut server, &[SCRAM], SCRAM).unwrap(),
            AuthMethod::ScramSha256,
            "{stored:?}"
        );
    }
    // Not valid SASLprep (a prohibited control character): PostgreSQL uses the bytes as
    // they are, and so must the client.
    let raw = "bell\u{7}pw";
    let mut server = MockServer::new(raw, 4096, None);
    let mut a = auth(raw, ChannelBinding::None, AuthPolicy::default());
    assert_eq!(
        scram_login(&mut a, &mut server, &[SCRAM], SCRAM).unwrap(),
        AuthMethod::ScramSha256
    );
}

#[test]
fn cleartext_and_md5() {
    let mut out = BytesMut::new();
    let mut a = auth("pw", ChannelBinding::None, AuthPolicy::default());
    assert_eq!(
        step(
            &mut a,
            tollgate_codecs::pg::encode_authentication_cleartext_password,
            &mut out
        )
        .unwrap(),
        AuthStep::Respond
    );
    assert_eq!(
        tollgate_codecs::pg::PasswordMessage::parse(&frame(&mut out))
            .unwrap()
            .password,
        b"pw"
    );
    assert_eq!(
        step(
            &mut a,
            tollgate_codecs::pg::encode_authentication_ok,
            &mut out
        )
        .unwrap(),
        AuthStep::Done(AuthMethod::Cleartext)
    );

    let mut a = UpstreamAuth::new(
        b"postgres",
        Password::from("postgres"),
        ChannelBinding::None,
        AuthPolicy::default(),
    );
    step(
        &mut a,
        |b| tollgate_codecs::pg::encode_authentication_md5_password(b, [1, 2, 3, 4]),
        &mut out,
    )
    .unwrap();
    let sent = frame(&mut out);
    assert_eq!(
        tollgate_codecs::pg::PasswordMessage::parse(&sent)
            .unwrap()
            .password,
        b"md568be9ed08db75f318087ab337aaea044"
    );

    let strict = AuthPolicy {
        allow_cleartext: false,
        allow_md5: false,
        allow_trust: false,
        ..AuthPolicy::default()
    };
    for enc in [
        tollgate_codecs::pg::encode_authentication_ok as fn(&mut BytesMut),
        tollgate_codecs::pg::encode_authentication_cleartext_password,
        |b: &mut BytesMut| tollgate_codecs::pg::encode_authentication_md5_password(b, [0; 4]),
    ] {
        let mut a = auth("pw", ChannelBinding::None, strict);
        assert!(matches!(
            step(&mut a, enc, &mut out),
            Err(AuthError::MethodNotAllowed { .. })
        ));
    }
    let mut a = auth("p\0w", ChannelBinding::None, AuthPolicy::default());
    assert!(matches!(
        step(
            &mut a,
            tollgate_codecs::pg::encode_authentication_cleartext_password,
            &mut out
        ),
        Err(AuthError::PasswordHasNul)
    ));
    assert!(out.is_empty());
}

#[test]
fn secrets_do_not_print() {
    let a = auth(
        "hunter2-secret",
        ChannelBinding::TlsServerEndPoint(vec![1; 32]),
        AuthPolicy::default(),
    );
    let shown = format!("{a:?} {:?}", Password::from("hunter2-secret"));
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("***"));
}

#[test]
fn certificate_binding_hash_follows_the_signature_algorithm() {
    for (alg, len) in [
        (&rcgen::PKCS_ECDSA_P256_SHA256, 32),
        (&rcgen::PKCS_ECDSA_P384_SHA384, 48),
    ] {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["db".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der().as_ref();
        let want = digest::digest(
            if len == 32 {
                &digest::SHA256
            } else {
                &digest::SHA384
            },
            der,
        );
        let got = tls_server_end_point(der).unwrap();
        assert_eq!((got.len(), &got[..]), (len, want.as_ref()));
    }
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["db".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    assert!(matches!(
        tls_server_end_point(cert.der()),
        Err(AuthError::Certificate { .. })
    ));
    assert!(tls_server_end_point(b"not a certificate").is_err());
}

#[test]
fn unsupported_requests_are_errors() {
    let mut out = BytesMut::new();
    let mut a = auth("pw", ChannelBinding::None, AuthPolicy::default());
    let mut b = BytesMut::from(&b"R\0\0\0\x08\0\0\0\x07"[..]);
    assert!(matches!(
        a.step(&Authentication::parse(&frame(&mut b)).unwrap(), &mut out),
        Err(AuthError::MethodNotAllowed { .. })
    ));
    let mut a = auth("pw", ChannelBinding::None, AuthPolicy::default());
    let mut b = BytesMut::from(&b"R\0\0\0\x08\0\0\0\x63"[..]);
    assert!(matches!(
        a.step(&Authentication::parse(&frame(&mut b)).unwrap(), &mut out),
        Err(AuthError::UnsupportedMethod { code: 99 })
    ));
    let mut a = auth("pw", ChannelBinding::None, AuthPolicy::default());
    assert!(matches!(
        step(&mut a, |b| encode_authentication_sasl(b, &["SCRAM-SHA-1"]).unwrap(), &mut out),
        Err(AuthError::NoSupportedMechanism { ref offered }) if offered == "SCRAM-SHA-1"
    ));
}
