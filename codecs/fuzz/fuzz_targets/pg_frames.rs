//! Fuzzes PostgreSQL framing and every typed view, both directions and the startup phase.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tollgate_codecs::pg::*;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    for caps in [Caps::frontend(&limits), Caps::backend(&limits)] {
        let mut buf = BytesMut::from(data);
        if let Ok(Some(s)) = next_startup_frame(&mut buf, &caps)
            && let Ok(StartupPacket::Startup(m)) = s.parse()
        {
            let _ = m.params().count();
        }
        let mut buf = BytesMut::from(data);
        while let Ok(Some(f)) = next_frame(&mut buf, &caps) {
            match BackendMessage::parse(&f) {
                Ok(BackendMessage::DataRow(row)) => {
                    assert_eq!(row.values().count(), row.len());
                    let mut out = BytesMut::new();
                    let _ = encode_data_row_replacing(&mut out, &row, &[(0, None)]);
                }
                Ok(BackendMessage::RowDescription(rd)) => assert_eq!(rd.fields().count(), rd.len()),
                Ok(BackendMessage::ErrorResponse(e)) => {
                    let _ = e.fields().count();
                }
                _ => {}
            }
            if let Ok(FrontendMessage::Bind(b)) = FrontendMessage::parse(&f) {
                assert_eq!(b.params.clone().count(), b.params.len());
            }
            let _ = (SaslInitialResponse::parse(&f), PasswordMessage::parse(&f));
        }
    }
});
