//! Hostile input: absurd lengths, counts that lie, random and mutated bytes. Errors, never panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::BytesMut;
use tollgate_codecs::pg::*;

fn caps() -> [Caps; 2] {
    [
        Caps::frontend(&Limits::default()),
        Caps::backend(&Limits::default()),
    ]
}

#[test]
fn pg_absurd_lengths_fail_before_any_allocation() {
    for caps in caps() {
        for tag in 0..=255u8 {
            let Some(max) = caps.max_for(tag) else {
                continue;
            };
            for len in [0i32, 3, -1, -5, i32::MIN, i32::MAX, max as i32 + 1] {
                let mut buf = BytesMut::with_capacity(8);
                buf.extend_from_slice(&[tag]);
                buf.extend_from_slice(&len.to_be_bytes());
                let before = buf.capacity();
                let err = next_frame(&mut buf, &caps).unwrap_err();
                assert!(
                    matches!(
                        err,
                        PgError::InvalidLength { .. } | PgError::MessageTooLarge { .. }
                    ),
                    "tag {tag} len {len}: {err}"
                );
                assert_eq!(
                    buf.capacity(),
                    before,
                    "tag {tag} len {len} reserved memory"
                );
            }
        }
    }
    for len in [0i32, 3, 7, -1, i32::MAX, 10_001] {
        let mut buf = BytesMut::from(&len.to_be_bytes()[..]);
        assert!(
            next_startup_frame(&mut buf, &caps()[0]).is_err(),
            "startup len {len}"
        );
    }
}

fn frame(tag: u8, body: &[u8]) -> Frame {
    let mut b = BytesMut::new();
    b.extend_from_slice(&[tag]);
    b.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    b.extend_from_slice(body);
    Frame::from_bytes(b.freeze()).unwrap()
}

#[test]
fn pg_data_row_lies_are_errors() {
    let cases: &[(&str, &[u8])] = &[
        ("count above the values", b"\0\x02\0\0\0\x01a"),
        ("length past the end", b"\0\x01\0\0\0\x09abc"),
        ("huge length", b"\0\x01\x7f\xff\xff\xffabc"),
        ("length below -1", b"\0\x01\xff\xff\xff\xfe"),
        ("count cut short", b"\0"),
        ("trailing bytes", b"\0\x01\0\0\0\x01ab"),
        ("count 65535 with no values", b"\xff\xff"),
    ];
    for (what, body) in cases {
        let f = frame(b'D', body);
        assert!(
            matches!(
                DataRow::parse(&f),
                Err(PgError::Malformed { tag: b'D', .. })
            ),
            "{what}"
        );
        assert!(BackendMessage::parse(&f).is_err(), "{what}");
    }
    assert_eq!(
        DataRow::parse(&frame(b'D', b"\0\x01\xff\xff\xff\xff"))
            .unwrap()
            .values()
            .next(),
        Some(None)
    );
}

#[test]
fn pg_other_count_lies_are_errors() {
    let cases: &[(u8, &[u8], bool)] = &[
        (
            b'T',
            b"\0\x02n\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0",
            false,
        ),
        (b't', b"\0\x03\0\0\0\x17", false),
        (b'v', b"\0\0\0\0\x7f\xff\xff\xff_pq_.x\0", false),
        (b'v', b"\0\0\0\0\xff\xff\xff\xff", false),
        (b'R', b"\0\0\0\x0aSCRAM-SHA-256\0", false),
        (b'R', b"\0\0\0\x05ab", false),
        (b'K', b"\0\0\0\x01ab", false),
        (b'E', b"SERROR\0", false),
        (b'H', b"\0\0\x05\0\0", false),
        (b'Z', b"Q", false),
        (b'B', b"\0\0\0\x02\0\0\0\0\0\x01\0\0\0\x09x\0\0", true),
        (b'B', b"\0\0\0\x02\0\0\0\0\0\x01\0\0\0\x00\0\0", true),
        (b'P', b"s\0select\0\0\x02\0\0\0\x17", true),
        (b'F', b"\0\0\0\x01\0\0\0\x01\0\0\0\x05ab\0\0", true),
        (b'p', b"SCRAM\0\0\0\0\x10abc", true),
        (b'D', b"X\0", true),
        (b'E', b"portal", true),
    ];
    for (tag, body, frontend) in cases {
        let f = frame(*tag, body);
        let err = if *frontend {
            let typed = match tag {
                b'p' => SaslInitialResponse::parse(&f).map(|_| ()),
                _ => FrontendMessage::parse(&f).map(|_| ()),
            };
            typed.unwrap_err()
        } else {
            BackendMessage::parse(&f).unwrap_err()
        };
        assert!(
            matches!(err, PgError::Malformed { .. }),
            "{}: {err}",
            *tag as char
        );
    }
}

/// splitmix64: a seeded generator, so a failure reproduces (codecs has no rand dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Runs every parser that could apply to `f`; results are ignored, panics are not.
fn parse_everything(f: &Frame) {
    if let Ok(BackendMessage::DataRow(row)) = BackendMessage::parse(f) {
        let n = row.values().count();
        assert_eq!(n, row.len());
        assert_eq!(row.value_ranges().count(), n);
        let mut out = BytesMut::new();
        encode_data_row_replacing(&mut out, &row, &[(0, Some(b"x"))]).ok();
    }
    if let Ok(BackendMessage::RowDescription(rd)) = BackendMessage::parse(f) {
        assert_eq!(rd.fields().count(), rd.len());
    }
    if let Ok(BackendMessage::ErrorResponse(e)) = BackendMessage::parse(f) {
        let _ = (e.fields().count(), e.severity(), e.code(), e.message());
    }
    if let Ok(BackendMessage::Authentication(Authentication::Sasl { mechanisms })) =
        BackendMessage::parse(f)
    {
        let _ = mechanisms.count();
    }
    if let Ok(BackendMessage::NegotiateProtocolVersion(n)) = BackendMessage::parse(f) {
        let _ = n.unrecognized().count();
    }
    if let Ok(FrontendMessage::Bind(b)) = FrontendMessage::parse(f) {
        assert_eq!(b.params.clone().count(), b.params.len());
        let _ = (b.param_format(3), b.result_formats.iter().count());
    }
    let _ = (
        PasswordMessage::parse(f),
        SaslInitialResponse::parse(f),
        SaslResponse::parse(f),
    );
    let _ = (
        CopyResponse::parse(f),
        CommandComplete::parse(f).map(|c| c.rows()),
    );
}

fn valid_messages() -> BytesMut {
    let mut b = BytesMut::new();
    encode_data_row(&mut b, [Some(&b"abc"[..]), None, Some(b"")]).unwrap();
    let field = Field {
        name: b"c",
        table_oid: 1,
        column_id: 1,
        type_oid: 25,
        type_size: -1,
        type_modifier: -1,
        format: 0,
    };
    encode_row_description(&mut b, [field, field]).unwrap();
    encode_error_response(&mut b, &ErrorFields::error("XX000", "x")).unwrap();
    encode_authentication_sasl(&mut b, &["SCRAM-SHA-256"]).unwrap();
    encode_negotiate_protocol_version(&mut b, 0, &[b"_pq_.a"]).unwrap();
    encode_bind(&mut b, b"", b"s", &[0], [Some(&b"1"[..]), None], &[1]).unwrap();
    encode_parse(&mut b, b"", b"select $1", &[23]).unwrap();
    encode_sasl_initial_response(&mut b, b"SCRAM-SHA-256", Some(b"n,,n=,r=abc")).unwrap();
    encode_backend_key_data(&mut b, 1, b"abcd").unwrap();
    b
}

#[test]
fn pg_random_and_mutated_bytes_never_panic() {
    let mut rng = Rng(0x7011_6a7e);
    let seeds = valid_messages();
    for round in 0..20_000 {
        let mut bytes = if round % 2 == 0 {
            (0..rng.below(64))
                .map(|_| rng.next() as u8)
                .collect::<Vec<u8>>()
        } else {
            let mut v = seeds.to_vec();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            v
        };
        // Keep frames parseable often enough: force a plausible header now and then.
        if round % 3 == 0 && bytes.len() >= 5 {
            let len = (bytes.len() - 1) as i32;
            bytes[1..5].copy_from_slice(&len.to_be_bytes());
        }
        for caps in caps() {
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(f)) = next_frame(&mut buf, &caps) {
                parse_everything(&f);
            }
            let mut buf = BytesMut::from(&bytes[..]);
            if let Ok(Some(s)) = next_startup_frame(&mut buf, &caps)
                && let Ok(StartupPacket::Startup(m)) = s.parse()
            {
                let _ = (
                    m.params().count(),
                    m.user(),
                    m.database(),
                    m.protocol_options().count(),
                );
            }
        }
        // The typed views also take bodies of any shape directly.
        for tag in [
            b'D', b'T', b'E', b'R', b'v', b'B', b'P', b'F', b'p', b'K', b'A', b'V', b't', b'G',
            b'Z',
        ] {
            let f = frame(tag, &bytes);
            parse_everything(&f);
        }
    }
}
