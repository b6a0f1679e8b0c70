//! Fuzzes the PostgreSQL backend decoders (upstream → gateway), every accessor, and the DataRow re-encoder masking uses.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tollgate_codecs::pg::*;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let caps = Caps::backend(&limits);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(f)) = next_frame(&mut buf, &caps) {
        let Ok(msg) = BackendMessage::parse(&f) else {
            continue;
        };
        match msg {
            BackendMessage::Authentication(Authentication::Sasl { mechanisms }) => {
                let _ = mechanisms.count();
            }
            BackendMessage::RowDescription(rd) => assert_eq!(rd.fields().count(), rd.len()),
            BackendMessage::DataRow(row) => {
                assert_eq!(row.values().count(), row.len());
                assert_eq!(row.value_ranges().count(), row.len());
                // Replacing a value must re-encode to a row with the same column count.
                let mut out = BytesMut::new();
                if encode_data_row_replacing(&mut out, &row, &[(0, None)]).is_ok() {
                    let again = next_frame(&mut out, &caps);
                    if let Ok(Some(g)) = again {
                        let parsed = DataRow::parse(&g).map(|r| r.len());
                        assert_eq!(parsed.ok(), Some(row.len()));
                    }
                }
            }
            BackendMessage::ErrorResponse(e) | BackendMessage::NoticeResponse(e) => {
                let _ = (e.fields().count(), e.severity(), e.code(), e.message(), e.is_notice());
            }
            BackendMessage::CommandComplete(c) => {
                let _ = c.rows();
            }
            BackendMessage::ParameterDescription(p) => assert_eq!(p.types.iter().count(), p.types.len()),
            BackendMessage::CopyInResponse(c)
            | BackendMessage::CopyOutResponse(c)
            | BackendMessage::CopyBothResponse(c) => {
                assert_eq!(c.column_formats.iter().count(), c.column_formats.len());
            }
            BackendMessage::NegotiateProtocolVersion(n) => {
                let _ = n.unrecognized().count();
            }
            other => {
                let _ = format!("{other:?}");
            }
        }
    }
});
