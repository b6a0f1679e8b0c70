//! Framing under every possible read boundary: a partial message is never cut, a whole one always is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::BytesMut;
use tollgate_codecs::pg::*;

/// A server stream with one of most message kinds, as a driver would see after startup.
fn backend_stream() -> BytesMut {
    let mut b = BytesMut::new();
    encode_authentication_ok(&mut b);
    encode_parameter_status(&mut b, b"client_encoding", b"UTF8").unwrap();
    encode_backend_key_data(&mut b, 1, b"abcd").unwrap();
    encode_ready_for_query(&mut b, TransactionStatus::Idle);
    let field = Field {
        name: b"n",
        table_oid: 0,
        column_id: 0,
        type_oid: 23,
        type_size: 4,
        type_modifier: -1,
        format: 0,
    };
    encode_row_description(&mut b, [field]).unwrap();
    for i in 0..3u8 {
        encode_data_row(&mut b, [Some(&[b'0' + i][..]), None]).unwrap();
    }
    encode_command_complete(&mut b, b"SELECT 3").unwrap();
    encode_error_response(&mut b, &ErrorFields::error("42501", "blocked")).unwrap();
    encode_copy_data(&mut b, &[7; 300]).unwrap();
    encode_empty(&mut b, b'c');
    encode_ready_for_query(&mut b, TransactionStatus::InTransaction);
    b
}

fn drain(buf: &mut BytesMut, caps: &Caps, out: &mut Vec<Frame>) {
    while let Some(f) = next_frame(buf, caps).unwrap() {
        out.push(f);
    }
}

#[test]
fn pg_every_split_point_yields_the_same_frames() {
    let caps = Caps::backend(&Limits::default());
    let whole = backend_stream();
    let mut all = Vec::new();
    drain(&mut whole.clone(), &caps, &mut all);
    assert_eq!(all.len(), 13);
    let ends: Vec<usize> = all
        .iter()
        .scan(0, |at, f| {
            *at += f.len();
            Some(*at)
        })
        .collect();

    for split in 0..=whole.len() {
        let mut buf = BytesMut::from(&whole[..split]);
        let mut got = Vec::new();
        drain(&mut buf, &caps, &mut got);
        // Exactly the messages wholly inside the first `split` bytes come out.
        assert_eq!(
            got.len(),
            ends.iter().filter(|&&e| e <= split).count(),
            "split at {split}"
        );
        buf.extend_from_slice(&whole[split..]);
        drain(&mut buf, &caps, &mut got);
        assert!(buf.is_empty());
        assert_eq!(got, all, "split at {split}");
    }
}

#[test]
fn pg_byte_at_a_time_startup_then_typed_messages() {
    let mut wire = BytesMut::new();
    encode_startup_message(&mut wire, 0, [("user", "u"), ("database", "d")]).unwrap();
    encode_password_message(&mut wire, b"token").unwrap();
    encode_query(&mut wire, b"select 1").unwrap();
    encode_terminate(&mut wire);
    let caps = Caps::frontend(&Limits::default());

    let mut buf = BytesMut::new();
    let mut startup = None;
    let mut typed = Vec::new();
    for &byte in wire.iter() {
        buf.extend_from_slice(&[byte]);
        if startup.is_none() {
            startup = next_startup_frame(&mut buf, &caps).unwrap();
        } else {
            drain(&mut buf, &caps, &mut typed);
        }
    }
    let startup = startup.unwrap();
    assert!(
        matches!(startup.parse().unwrap(), StartupPacket::Startup(m) if m.user() == Some(b"u"))
    );
    let tags: Vec<u8> = typed.iter().map(Frame::tag).collect();
    assert_eq!(tags, b"pQX");
    // Frames are views of the read buffer: the body is the bytes that were sent.
    assert_eq!(Query::parse(&typed[1]).unwrap().sql, b"select 1");
}

#[test]
fn pg_a_mutable_frame_can_be_masked_in_place() {
    let caps = Caps::backend(&Limits::default());
    let mut buf = BytesMut::new();
    encode_data_row(&mut buf, [Some(&b"alice@example.com"[..]), Some(b"42")]).unwrap();
    encode_ready_for_query(&mut buf, TransactionStatus::Idle);
    let mut f = next_frame_mut(&mut buf, &caps).unwrap().unwrap();
    let body_range = {
        let row = DataRow::parse_body(f.body()).unwrap();
        row.value_ranges().next().flatten().unwrap()
    };
    let at = HEADER_LEN;
    f.bytes_mut()[at + body_range.start..at + body_range.end].fill(b'*');
    let f = f.freeze();
    let values: Vec<_> = DataRow::parse(&f).unwrap().values().collect();
    assert_eq!(values, [Some(&b"*****************"[..]), Some(b"42")]);
    // The rest of the read buffer is untouched.
    assert_eq!(next_frame(&mut buf, &caps).unwrap().unwrap().tag(), b'Z');
}

#[test]
fn pg_caps_are_configurable_per_tag() {
    let limits = Limits {
        sql: 64,
        ..Limits::default()
    };
    let caps = Caps::frontend(&limits);
    let mut buf = BytesMut::new();
    encode_query(&mut buf, &[b'x'; 100]).unwrap();
    assert!(matches!(
        next_frame(&mut buf, &caps),
        Err(PgError::MessageTooLarge {
            tag: b'Q',
            len: 105,
            max: 64
        })
    ));
    let caps = caps.with_max(b'Q', 200);
    assert!(next_frame(&mut buf, &caps).unwrap().is_some());
    assert_eq!(caps.max_for(b'G'), None);
}
