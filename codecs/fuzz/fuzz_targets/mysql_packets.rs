//! Fuzzes MySQL framing, every typed view, the row re-encoders and the
//! upstream login state machine: no panic; what decodes re-encodes to
//! something that decodes to the same values.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tollgate_codecs::mysql::*;

fuzz_target!(|data: &[u8]| {
    let caps = caps::CODEC_SUPPORTED;
    let mut buf = BytesMut::from(data);
    // Column types come from the column definitions seen so far, as a
    // client reading a result set learns them.
    let mut types: Vec<u8> = Vec::new();
    let mut login = UpstreamLogin::new(LoginConfig {
        user: b"u",
        password: b"p",
        database: None,
        tls: false,
        capabilities: caps,
        charset: UTF8MB4_GENERAL_CI,
        max_packet: 1 << 24,
        attrs: Vec::new(),
    });
    let mut out = BytesMut::new();
    let mut first = true;
    while let Ok(Some(p)) = next_packet(&mut buf, 1 << 20) {
        let payload = &p.payload[..];
        let _ = if first {
            login.greeting(&p, &mut out)
        } else {
            login.packet(&p, &mut out)
        };
        first = false;
        out.clear();
        if let Ok(c) = ColumnDefinition::parse(payload) {
            let mut again = BytesMut::new();
            c.encode(&mut again);
            assert_eq!(ColumnDefinition::parse(&again).ok(), Some(c.clone()));
            if types.len() < 64 {
                types.push(c.column_type);
            }
        }
        text_row(payload, types.len());
        binary_row(payload, &types);
        let _ = (
            Greeting::parse(payload),
            ClientHead::parse_ssl_request(payload),
        );
        if let Ok(h) = HandshakeResponse::parse(payload) {
            let mut again = BytesMut::new();
            if h.encode(&mut again).is_ok() {
                assert_eq!(HandshakeResponse::parse(&again).ok(), Some(h));
            }
        }
        let _ = (
            AuthSwitchRequest::parse(payload),
            auth_more_data::parse(payload),
        );
        let _ = (OkPacket::parse(payload, caps), ErrPacket::parse(payload));
        let _ = (EofPacket::parse(payload), EndOfRows::parse(payload, caps));
        let _ = (
            QueryResponse::parse(payload, caps),
            PrepareOk::parse(payload),
        );
        if let Ok(cmd) = Command::parse(payload, caps) {
            if let Command::StmtExecute(e) = &cmd {
                let _ = e.decode_params(types.len(), None, |i| i % 3 == 2);
            }
            let mut again = BytesMut::new();
            let _ = cmd.encode(&mut again, caps);
        }
    }
});

fn text_row(payload: &[u8], columns: usize) {
    if let Ok(row) = TextRow::parse(payload, columns) {
        assert_eq!(row.values().count(), columns);
        let mut again = BytesMut::new();
        row.encode_replacing(&mut again, &[]).unwrap();
        // Same values; the bytes may differ where the peer used a longer
        // length encoding than needed (servers never do; the re-encoding is
        // minimal).
        let back = TextRow::parse(&again, columns).unwrap();
        assert!(back.values().eq(row.values()));
        if columns > 0 {
            again.clear();
            row.encode_replacing(&mut again, &[(0, Some(b"****"))])
                .unwrap();
            let masked = TextRow::parse(&again, columns).unwrap();
            assert_eq!(masked.values().next(), Some(Some(&b"****"[..])));
        }
    }
}

fn binary_row(payload: &[u8], types: &[u8]) {
    if let Ok(row) = BinaryRow::parse(payload, types) {
        let values: Vec<_> = row.values().collect();
        assert_eq!(values.len(), types.len());
        let mut again = BytesMut::new();
        row.encode_replacing(&mut again, &[]).unwrap();
        let back = BinaryRow::parse(&again, types).unwrap();
        assert!(back.values().eq(values.iter().copied()));
        // NULL every column: the row shrinks to its header and bitmap.
        let nulls: Vec<(usize, Option<&[u8]>)> = (0..types.len()).map(|i| (i, None)).collect();
        again.clear();
        row.encode_replacing(&mut again, &nulls).unwrap();
        assert_eq!(again.len(), 1 + binary_null_bitmap_len(types.len()));
    }
}
