//! Fuzzes the PostgreSQL frontend decoders (client → gateway) and every accessor of each typed view.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tollgate_codecs::pg::*;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let caps = Caps::frontend(&limits);
    // The startup phase: SSLRequest, CancelRequest, StartupMessage and its parameters.
    let mut buf = BytesMut::from(data);
    if let Ok(Some(s)) = next_startup_frame(&mut buf, &caps) {
        let _ = (s.code(), s.body().len());
        if let Ok(StartupPacket::Startup(m)) = s.parse() {
            let _ = (m.minor_version(), m.user(), m.database(), m.application_name());
            let _ = m.params().count();
            let _ = m.protocol_options().count();
        }
    }
    let mut buf = BytesMut::from(data);
    while let Ok(Some(f)) = next_frame(&mut buf, &caps) {
        let Ok(msg) = FrontendMessage::parse(&f) else {
            continue;
        };
        match msg {
            FrontendMessage::Parse(p) => assert_eq!(p.param_types.iter().count(), p.param_types.len()),
            FrontendMessage::Bind(b) => {
                assert_eq!(b.params.clone().count(), b.params.len());
                assert_eq!(b.param_formats.iter().count(), b.param_formats.len());
                assert_eq!(b.result_formats.iter().count(), b.result_formats.len());
                for i in 0..b.params.len() {
                    let _ = b.param_format(i);
                }
            }
            FrontendMessage::FunctionCall(c) => {
                assert_eq!(c.args.clone().count(), c.args.len());
                let _ = c.arg_formats.iter().count();
            }
            FrontendMessage::AuthResponse(body) => {
                let _ = (
                    PasswordMessage::parse_body(body),
                    SaslInitialResponse::parse_body(body),
                    SaslResponse::parse_body(body),
                );
            }
            other => {
                let _ = format!("{other:?}");
            }
        }
    }
});
