//! MySQL framing and decoding under hostile input: lengths above the cap,
//! sequence ids out of order, multi-packet payloads, truncated and mutated
//! packets. Errors, never panics, and nothing reserved for a lie.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::BytesMut;
use tollgate_codecs::mysql::*;

fn header(len: usize, seq: u8) -> [u8; 4] {
    [len as u8, (len >> 8) as u8, (len >> 16) as u8, seq]
}

#[test]
fn a_length_above_the_cap_fails_on_the_header_alone() {
    let mut buf = BytesMut::from(&header(1000, 0)[..]);
    let cap = buf.capacity();
    assert_eq!(
        next_packet(&mut buf, 999),
        Err(MySqlError::PacketTooLarge {
            len: 1000,
            max: 999
        })
    );
    assert_eq!(buf.capacity(), cap, "nothing reserved");
    // A run of full chunks is refused as soon as their sum passes the cap,
    // before the payload arrives.
    let mut buf = BytesMut::from(&header(MAX_CHUNK, 0)[..]);
    assert_eq!(
        next_packet(&mut buf, 1 << 20).unwrap_err(),
        MySqlError::PacketTooLarge {
            len: MAX_CHUNK,
            max: 1 << 20
        }
    );
}

#[test]
fn multi_packet_payloads_join_and_check_their_sequence_ids() {
    // 16 MiB - 1, then 16 MiB - 1, then 5 bytes: one logical payload.
    let payload: Vec<u8> = (0..2 * MAX_CHUNK + 5).map(|i| (i % 251) as u8).collect();
    let mut wire = BytesMut::new();
    let next = write_packet(&mut wire, 7, &payload);
    assert_eq!(next, 10);
    assert_eq!(wire.len(), payload.len() + 12);
    // Byte by byte at the edges: None until the last chunk is complete.
    let mut buf = BytesMut::from(&wire[..wire.len() - 1]);
    assert_eq!(next_packet(&mut buf, 64 << 20).unwrap(), None);
    buf.extend_from_slice(&wire[wire.len() - 1..]);
    let p = next_packet(&mut buf, 64 << 20).unwrap().unwrap();
    assert_eq!((p.seq, p.last_seq, p.next_seq()), (7, 9, 10));
    assert_eq!(&p.payload[..], &payload[..]);
    assert_eq!(&p.raw[..], &wire[..]);
    assert!(buf.is_empty());
    // Exactly one chunk long: an empty packet ends it.
    let payload = vec![1u8; MAX_CHUNK];
    let mut wire = BytesMut::new();
    assert_eq!(write_packet(&mut wire, 0, &payload), 2);
    assert_eq!(&wire[wire.len() - 4..], &header(0, 1));
    let p = next_packet(&mut wire, 64 << 20).unwrap().unwrap();
    assert_eq!(p.payload.len(), MAX_CHUNK);
    // A continuation chunk with the wrong sequence id.
    let mut wire = BytesMut::new();
    write_packet(&mut wire, 0, &vec![0u8; MAX_CHUNK + 1]);
    wire[MAX_CHUNK + 4 + 3] = 5;
    assert_eq!(
        next_packet(&mut wire, 64 << 20),
        Err(MySqlError::Sequence {
            expected: 1,
            got: 5
        })
    );
}

#[test]
fn encode_packet_splits_payloads_that_grow_past_one_chunk() {
    let mut out = BytesMut::new();
    let next = encode_packet(&mut out, 3, |o| {
        o.extend_from_slice(&vec![9u8; MAX_CHUNK + 10]);
        Ok(())
    })
    .unwrap();
    assert_eq!(next, 5);
    let p = next_packet(&mut out, 64 << 20).unwrap().unwrap();
    assert_eq!((p.seq, p.payload.len()), (3, MAX_CHUNK + 10));
    // An encoder error leaves the buffer as it was.
    let mut out = BytesMut::from(&b"keep"[..]);
    let err = encode_packet(&mut out, 0, |o| put_nul_str(o, b"a\0b", "user"));
    assert_eq!(err, Err(MySqlError::InteriorNul { what: "user" }));
    assert_eq!(&out[..], b"keep");
}

#[test]
fn length_encoded_strings_that_lie_fail() {
    // A text row whose value claims 2^63 bytes, a column count of 2^40, a
    // connect-attribute block longer than the packet.
    let mut row = vec![0xFE];
    row.extend_from_slice(&(1u64 << 63).to_le_bytes());
    assert!(TextRow::parse(&row, 1).is_err());
    let mut count = vec![0xFE];
    count.extend_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(QueryResponse::parse(&count, caps::CODEC_SUPPORTED).is_err());
    for bad in [&[0xFB][..], &[0xFF][..], &[0xFC, 1][..], &[0xFD, 1, 2][..]] {
        assert!(Reader::new("t", bad).lenenc("n").is_err(), "{bad:?}");
    }
    // Binary rows: an unknown column type, a temporal length that is not
    // one of the valid ones, a bitmap cut short.
    assert!(BinaryRow::parse(&[0, 0, 1], &[200]).is_err());
    assert!(BinaryRow::parse(&[0, 0, 5, 1, 2, 3, 4, 5], &[column_type::DATE]).is_err());
    assert!(BinaryRow::parse(&[0], &[column_type::LONG; 9]).is_err());
    assert!(
        BinaryRow::parse(&[1, 0], &[]).is_err(),
        "header must be 0x00"
    );
}

/// A greeting, a login packet, rows, column definitions and commands, each
/// cut at every length and with every byte flipped: errors or values, never
/// a panic, and whatever decodes re-encodes to a packet that decodes again.
#[test]
fn truncated_and_mutated_packets_never_panic() {
    let mut samples: Vec<Vec<u8>> = Vec::new();
    let mut b = BytesMut::new();
    Greeting {
        server_version: b"10.11.14-MariaDB",
        connection_id: 9,
        nonce: (1..=20).collect(),
        capabilities: caps::CODEC_SUPPORTED,
        mariadb_capabilities: 0,
        charset: 45,
        status: 2,
        auth_plugin: b"caching_sha2_password",
    }
    .encode(&mut b)
    .unwrap();
    samples.push(b.to_vec());
    let mut b = BytesMut::new();
    HandshakeResponse {
        head: ClientHead {
            capabilities: caps::CODEC_SUPPORTED,
            max_packet: 1 << 24,
            charset: 45,
            mariadb_capabilities: 0,
        },
        user: b"svc",
        auth_response: &[0xAA; 32],
        database: Some(b"app"),
        auth_plugin: Some(b"caching_sha2_password"),
        attrs: vec![(b"_client_name", b"libmariadb"), (b"_pid", b"42")],
    }
    .encode(&mut b)
    .unwrap();
    samples.push(b.to_vec());
    samples.push(vec![0x01, 0xFB, 3, b'a', b'b', b'c', 0]);
    samples.push(
        b"\x03def\x03app\x01t\x01t\x01a\x01a\x0c\x3f\x00\x0b\x00\x00\x00\x03\x03\x50\x00\x00\x00"
            .to_vec(),
    );
    samples.push(
        b"\x17\x01\x00\x00\x00\x00\x01\x00\x00\x00\x00\x01\x08\x00\x05\x00\x00\x00\x00\x00\x00\x00"
            .to_vec(),
    );
    samples.push(
        b"\x11bob\x00\x14aaaaaaaaaaaaaaaaaaaa\x00app\x00\x2d\x00mysql_native_password\x00\x00"
            .to_vec(),
    );
    for s in &samples {
        for cut in 0..=s.len() {
            decode_everything(&s[..cut]);
        }
        for i in 0..s.len() {
            for x in [0x00, 0xFF, 0xFB, 0xFE, 0x80] {
                let mut m = s.clone();
                m[i] = x;
                decode_everything(&m);
            }
        }
    }
}

fn decode_everything(p: &[u8]) {
    let caps = caps::CODEC_SUPPORTED;
    let _ = Greeting::parse(p);
    let _ = ClientHead::parse_ssl_request(p);
    if let Ok(h) = HandshakeResponse::parse(p) {
        let mut out = BytesMut::new();
        if h.encode(&mut out).is_ok() {
            assert!(HandshakeResponse::parse(&out).is_ok());
        }
    }
    let _ = AuthSwitchRequest::parse(p);
    let _ = (
        OkPacket::parse(p, caps),
        ErrPacket::parse(p),
        EofPacket::parse(p),
    );
    let _ = QueryResponse::parse(p, caps);
    if let Ok(c) = ColumnDefinition::parse(p) {
        let mut out = BytesMut::new();
        c.encode(&mut out);
        // The filler is written as zeros: equal up to it.
        assert_eq!(ColumnDefinition::parse(&out).unwrap(), c);
    }
    for n in 0..4 {
        if let Ok(r) = TextRow::parse(p, n) {
            assert_eq!(r.values().count(), n);
        }
    }
    let types = [
        column_type::LONG,
        column_type::VAR_STRING,
        column_type::DATETIME,
    ];
    if let Ok(r) = BinaryRow::parse(p, &types) {
        assert_eq!(r.values().count(), 3);
        let mut out = BytesMut::new();
        r.encode_replacing(&mut out, &[(1, Some(b"masked value"))])
            .unwrap();
        assert!(BinaryRow::parse(&out, &types).is_ok());
    }
    if let Ok(Command::StmtExecute(e)) = Command::parse(p, caps) {
        let _ = e.decode_params(3, None, |i| i == 1);
    }
    let _ = PrepareOk::parse(p);
}

/// Found by the mysql_packets fuzz target: a login packet whose flags say
/// "database" and "plugin" but that names none re-encoded to one that named
/// empty ones. An empty name now reads as none, so the round trip holds.
#[test]
fn login_packets_without_database_or_plugin_round_trip() {
    let h = HandshakeResponse {
        head: ClientHead {
            capabilities: caps::CODEC_SUPPORTED,
            max_packet: 1 << 24,
            charset: 45,
            mariadb_capabilities: 0,
        },
        user: b"",
        auth_response: b"",
        database: None,
        auth_plugin: None,
        attrs: Vec::new(),
    };
    let mut out = BytesMut::new();
    h.encode(&mut out).unwrap();
    assert_eq!(HandshakeResponse::parse(&out).unwrap(), h);
}
