//! Every PostgreSQL encoder's output read back through the framing layer and its typed parser.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::BytesMut;
use tollgate_codecs::pg::*;

fn backend() -> Caps {
    Caps::backend(&Limits::default())
}

fn frontend() -> Caps {
    Caps::frontend(&Limits::default())
}

/// Cuts exactly one frame from `buf`, asserting nothing is left over.
fn only_frame(mut buf: BytesMut, caps: &Caps) -> Frame {
    let f = next_frame(&mut buf, caps).unwrap().expect("a whole frame");
    assert!(buf.is_empty(), "{} bytes left after the frame", buf.len());
    f
}

fn encoded(caps: &Caps, enc: impl FnOnce(&mut BytesMut)) -> Frame {
    let mut buf = BytesMut::new();
    enc(&mut buf);
    only_frame(buf, caps)
}

#[test]
fn pg_error_and_notice_responses() {
    let fields = ErrorFields {
        detail: Some("rule drop-database"),
        hint: Some("ask for approval"),
        ..ErrorFields::error("42501", "DROP DATABASE is not allowed")
    };
    let f = encoded(&backend(), |b| encode_error_response(b, &fields).unwrap());
    assert_eq!(f.tag(), b'E');
    let e = ErrorResponse::parse(&f).unwrap();
    assert!(!e.is_notice());
    assert_eq!(e.severity(), Some(&b"ERROR"[..]));
    assert_eq!(e.code(), Some(&b"42501"[..]));
    assert_eq!(e.message(), Some(&b"DROP DATABASE is not allowed"[..]));
    assert_eq!(e.field(b'D'), Some(&b"rule drop-database"[..]));
    assert_eq!(e.field(b'H'), Some(&b"ask for approval"[..]));

    let f = encoded(&backend(), |b| {
        encode_notice_response(
            b,
            &ErrorFields {
                severity: "NOTICE",
                ..ErrorFields::error("00000", "hi")
            },
        )
        .unwrap()
    });
    let n = ErrorResponse::parse(&f).unwrap();
    assert!(n.is_notice());
    assert_eq!((n.severity(), n.field(b'D')), (Some(&b"NOTICE"[..]), None));
    assert!(matches!(
        BackendMessage::parse(&f).unwrap(),
        BackendMessage::NoticeResponse(_)
    ));
}

#[test]
fn pg_authentication_requests() {
    type Encoder = Box<dyn Fn(&mut BytesMut)>;
    let cases: Vec<(Encoder, Authentication<'static>)> = vec![
        (Box::new(encode_authentication_ok), Authentication::Ok),
        (
            Box::new(encode_authentication_cleartext_password),
            Authentication::CleartextPassword,
        ),
        (
            Box::new(|b| encode_authentication_md5_password(b, [1, 2, 3, 4])),
            Authentication::Md5Password { salt: [1, 2, 3, 4] },
        ),
        (
            Box::new(|b| encode_authentication_sasl_continue(b, b"r=abc,s=xyz,i=4096").unwrap()),
            Authentication::SaslContinue {
                data: b"r=abc,s=xyz,i=4096",
            },
        ),
        (
            Box::new(|b| encode_authentication_sasl_final(b, b"v=sig").unwrap()),
            Authentication::SaslFinal { data: b"v=sig" },
        ),
    ];
    for (enc, want) in cases {
        let f = encoded(&backend(), |b| enc(b));
        assert_eq!(Authentication::parse(&f).unwrap(), want);
    }
    let f = encoded(&backend(), |b| {
        encode_authentication_sasl(b, &["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]).unwrap()
    });
    let Authentication::Sasl { mechanisms } = Authentication::parse(&f).unwrap() else {
        panic!("not SASL")
    };
    assert_eq!(
        mechanisms.collect::<Vec<_>>(),
        vec![&b"SCRAM-SHA-256-PLUS"[..], b"SCRAM-SHA-256"]
    );
}

#[test]
fn pg_session_setup_messages() {
    let f = encoded(&backend(), |b| {
        encode_backend_key_data(b, 4242, &[9, 8, 7, 6]).unwrap()
    });
    assert_eq!(
        BackendKeyData::parse(&f).unwrap(),
        BackendKeyData {
            pid: 4242,
            secret_key: &[9, 8, 7, 6]
        }
    );

    let f = encoded(&backend(), |b| {
        encode_parameter_status(b, b"server_version", b"15.8").unwrap()
    });
    assert_eq!(
        ParameterStatus::parse(&f).unwrap(),
        ParameterStatus {
            name: b"server_version",
            value: b"15.8"
        }
    );

    for status in [
        TransactionStatus::Idle,
        TransactionStatus::InTransaction,
        TransactionStatus::Failed,
    ] {
        let f = encoded(&backend(), |b| encode_ready_for_query(b, status));
        assert_eq!(ReadyForQuery::parse(&f).unwrap().status, status);
    }

    let f = encoded(&backend(), |b| {
        encode_negotiate_protocol_version(b, 0, &[b"_pq_.a", b"_pq_.bb"]).unwrap()
    });
    let n = NegotiateProtocolVersion::parse(&f).unwrap();
    assert_eq!(n.newest_minor, 0);
    assert_eq!(
        n.unrecognized().collect::<Vec<_>>(),
        vec![&b"_pq_.a"[..], b"_pq_.bb"]
    );
}

#[test]
fn pg_results() {
    let fields = [
        Field {
            name: b"id",
            table_oid: 16384,
            column_id: 1,
            type_oid: 23,
            type_size: 4,
            type_modifier: -1,
            format: 0,
        },
        Field {
            name: b"ssn",
            table_oid: 16384,
            column_id: 2,
            type_oid: 25,
            type_size: -1,
            type_modifier: -1,
            format: 1,
        },
    ];
    let f = encoded(&backend(), |b| encode_row_description(b, fields).unwrap());
    let rd = RowDescription::parse(&f).unwrap();
    assert_eq!(rd.len(), 2);
    assert_eq!(rd.fields().collect::<Vec<_>>(), fields);

    let vals: [Option<&[u8]>; 4] = [Some(b"1"), None, Some(b""), Some(b"123-45-6789")];
    let f = encoded(&backend(), |b| encode_data_row(b, vals).unwrap());
    let row = DataRow::parse(&f).unwrap();
    assert_eq!(row.values().collect::<Vec<_>>(), vals);
    let ranges: Vec<_> = row.value_ranges().collect();
    assert_eq!(ranges[1], None);
    assert_eq!(&f.bytes()[ranges[3].clone().unwrap()], b"123-45-6789");
    assert_eq!(&f.bytes()[ranges[2].clone().unwrap()], b"");

    let f = encoded(&backend(), |b| {
        encode_command_complete(b, b"SELECT 42").unwrap()
    });
    let cc = CommandComplete::parse(&f).unwrap();
    assert_eq!((cc.tag, cc.rows()), (&b"SELECT 42"[..], Some(42)));

    let f = encoded(&backend(), |b| encode_copy_data(b, b"1\tx\n").unwrap());
    assert_eq!(CopyData::parse(&f).unwrap().data, b"1\tx\n");
    assert!(
        matches!(BackendMessage::parse(&f).unwrap(), BackendMessage::CopyData(d) if d.data == b"1\tx\n")
    );

    for (tag, want) in [
        (b'1', "ParseComplete"),
        (b'2', "BindComplete"),
        (b'3', "CloseComplete"),
        (b'n', "NoData"),
        (b's', "PortalSuspended"),
        (b'I', "EmptyQueryResponse"),
        (b'c', "CopyDone"),
    ] {
        let f = encoded(&backend(), |b| encode_empty(b, tag));
        assert_eq!(format!("{:?}", BackendMessage::parse(&f).unwrap()), want);
    }
}

#[test]
fn pg_data_row_with_replacements_keeps_the_other_columns() {
    let vals: [Option<&[u8]>; 5] = [
        Some(b"a"),
        Some(b"secret"),
        None,
        Some(b"bb"),
        Some(b"card 4111"),
    ];
    let f = encoded(&backend(), |b| encode_data_row(b, vals).unwrap());
    let row = DataRow::parse(&f).unwrap();
    let f2 = encoded(&backend(), |b| {
        encode_data_row_replacing(
            b,
            &row,
            &[(1, Some(b"***")), (2, Some(b"was null")), (4, None)],
        )
        .unwrap()
    });
    let got: Vec<_> = DataRow::parse(&f2).unwrap().values().collect();
    assert_eq!(
        got,
        [
            Some(&b"a"[..]),
            Some(b"***"),
            Some(b"was null"),
            Some(b"bb"),
            None
        ]
    );

    // No replacements: the same bytes.
    let f3 = encoded(&backend(), |b| {
        encode_data_row_replacing(b, &row, &[]).unwrap()
    });
    assert_eq!(f3, f);

    // Out of order, duplicated or out of range: refused, buffer untouched.
    for bad in [
        &[(3, None), (1, None)][..],
        &[(1, None), (1, None)],
        &[(5, None)],
    ] {
        let mut b = BytesMut::from(&b"keep"[..]);
        assert!(matches!(
            encode_data_row_replacing(&mut b, &row, bad),
            Err(PgError::InvalidArgument { .. })
        ));
        assert_eq!(&b[..], b"keep");
    }
}

#[test]
fn pg_copy_responses_parse() {
    // No encoder (the gateway only forwards these): built by hand.
    let mut b = BytesMut::from(&b"H\0\0\0\x0b\x00\x00\x02\x00\x00\x00\x01"[..]);
    let f = next_frame(&mut b, &backend()).unwrap().unwrap();
    let c = CopyResponse::parse(&f).unwrap();
    assert_eq!((c.tag, c.format), (b'H', 0));
    assert_eq!(c.column_formats.iter().collect::<Vec<_>>(), [0, 1]);
    assert!(matches!(
        BackendMessage::parse(&f).unwrap(),
        BackendMessage::CopyOutResponse(_)
    ));
}

#[test]
fn pg_startup_phase() {
    let mut b = BytesMut::new();
    encode_ssl_request(&mut b);
    encode_gssenc_request(&mut b);
    encode_cancel_request(&mut b, 77, &[1, 2, 3, 4]).unwrap();
    encode_startup_message(
        &mut b,
        0,
        [
            ("user", "ci-job"),
            ("database", "payments"),
            ("application_name", "psql"),
        ],
    )
    .unwrap();
    let caps = frontend();
    let mut got = Vec::new();
    while let Some(f) = next_startup_frame(&mut b, &caps).unwrap() {
        got.push(f);
    }
    assert!(b.is_empty());
    assert_eq!(got[0].parse().unwrap(), StartupPacket::SslRequest);
    assert_eq!(got[1].parse().unwrap(), StartupPacket::GssEncRequest);
    assert_eq!(
        got[2].parse().unwrap(),
        StartupPacket::CancelRequest(CancelRequest {
            pid: 77,
            secret_key: &[1, 2, 3, 4]
        })
    );
    let StartupPacket::Startup(m) = got[3].parse().unwrap() else {
        panic!("not a StartupMessage")
    };
    assert_eq!(m.minor_version(), 0);
    assert_eq!(m.user(), Some(&b"ci-job"[..]));
    assert_eq!(m.database(), Some(&b"payments"[..]));
    assert_eq!(m.application_name(), Some(&b"psql"[..]));
    assert_eq!(m.params().count(), 3);
}

#[test]
fn pg_authentication_responses() {
    let f = encoded(&frontend(), |b| {
        encode_password_message(b, b"md5abc").unwrap()
    });
    assert_eq!(PasswordMessage::parse(&f).unwrap().password, b"md5abc");

    let f = encoded(&frontend(), |b| {
        encode_sasl_initial_response(b, b"SCRAM-SHA-256", Some(b"n,,n=,r=x")).unwrap()
    });
    let s = SaslInitialResponse::parse(&f).unwrap();
    assert_eq!(
        (s.mechanism, s.data),
        (&b"SCRAM-SHA-256"[..], Some(&b"n,,n=,r=x"[..]))
    );
    let f = encoded(&frontend(), |b| {
        encode_sasl_initial_response(b, b"X", None).unwrap()
    });
    assert_eq!(SaslInitialResponse::parse(&f).unwrap().data, None);

    let f = encoded(&frontend(), |b| {
        encode_sasl_response(b, b"c=biws,r=x,p=y").unwrap()
    });
    assert_eq!(SaslResponse::parse(&f).unwrap().data, b"c=biws,r=x,p=y");
    assert!(matches!(
        FrontendMessage::parse(&f).unwrap(),
        FrontendMessage::AuthResponse(b"c=biws,r=x,p=y")
    ));
}

#[test]
fn pg_extended_protocol() {
    let f = encoded(&frontend(), |b| {
        encode_query(b, b"select 1; select 2").unwrap()
    });
    assert_eq!(Query::parse(&f).unwrap().sql, b"select 1; select 2");

    let f = encoded(&frontend(), |b| {
        encode_parse(b, b"s1", b"select $1::int, $2", &[23, 0]).unwrap()
    });
    let p = Parse::parse(&f).unwrap();
    assert_eq!((p.name, p.query), (&b"s1"[..], &b"select $1::int, $2"[..]));
    assert_eq!(p.param_types.iter().collect::<Vec<_>>(), [23, 0]);

    let params: [Option<&[u8]>; 2] = [Some(b"\0\0\0\x07"), None];
    let f = encoded(&frontend(), |b| {
        encode_bind(b, b"p1", b"s1", &[1, 0], params, &[1]).unwrap()
    });
    let bind = Bind::parse(&f).unwrap();
    assert_eq!((bind.portal, bind.statement), (&b"p1"[..], &b"s1"[..]));
    assert_eq!(bind.params.clone().collect::<Vec<_>>(), params);
    assert_eq!((bind.param_format(0), bind.param_format(1)), (1, 0));
    assert_eq!(bind.result_formats.iter().collect::<Vec<_>>(), [1]);

    let f = encoded(&frontend(), |b| {
        encode_describe(b, ObjectKind::Portal, b"p1").unwrap()
    });
    assert_eq!(
        Describe::parse(&f).unwrap(),
        Describe {
            kind: ObjectKind::Portal,
            name: b"p1"
        }
    );
    let f = encoded(&frontend(), |b| {
        encode_close(b, ObjectKind::Statement, b"s1").unwrap()
    });
    assert_eq!(
        Close::parse(&f).unwrap(),
        Close {
            kind: ObjectKind::Statement,
            name: b"s1"
        }
    );
    let f = encoded(&frontend(), |b| encode_execute(b, b"p1", 100).unwrap());
    assert_eq!(
        Execute::parse(&f).unwrap(),
        Execute {
            portal: b"p1",
            max_rows: 100
        }
    );

    for (enc, want) in [
        (encode_sync as fn(&mut BytesMut), "Sync"),
        (encode_flush, "Flush"),
        (encode_terminate, "Terminate"),
    ] {
        let f = encoded(&frontend(), enc);
        assert_eq!(format!("{:?}", FrontendMessage::parse(&f).unwrap()), want);
    }
}

#[test]
fn pg_encoders_refuse_input_that_would_break_framing() {
    let mut b = BytesMut::from(&b"prefix"[..]);
    assert_eq!(
        encode_query(&mut b, b"select 1\0; drop table t").unwrap_err(),
        PgError::InteriorNul { what: "query" }
    );
    assert!(encode_startup_message(&mut b, 0, [("", "x")]).is_err());
    assert!(encode_backend_key_data(&mut b, 1, &[1, 2, 3]).is_err());
    assert!(encode_error_response(&mut b, &ErrorFields::error("42501", "bad\0")).is_err());
    assert_eq!(
        &b[..],
        b"prefix",
        "a failed encoder must leave the buffer as it was"
    );
}

#[test]
fn pg_a_parser_refuses_a_frame_of_another_type() {
    let f = encoded(&frontend(), |b| encode_query(b, b"select 1").unwrap());
    assert_eq!(
        Parse::parse(&f).unwrap_err(),
        PgError::UnexpectedMessage {
            expected: b'P',
            got: b'Q'
        }
    );
}
