//! Tests of the shape tracker (beside it, so shapes.rs stays short).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::BytesMut;
use tollgate_codecs::pg::{Field, HEADER_LEN};

use super::*;

/// Feeds encoded client frames to the tracker.
fn client(s: &mut Shapes, f: impl FnOnce(&mut BytesMut)) {
    let mut b = BytesMut::new();
    f(&mut b);
    let mut rest = &b[..];
    while !rest.is_empty() {
        let len = 1 + u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
        s.client_message(rest[0], &rest[HEADER_LEN..len]).unwrap();
        rest = &rest[len..];
    }
}

fn up(s: &mut Shapes, t: u8, body: &[u8]) -> Step {
    s.upstream_message(t, body).unwrap()
}

fn row_description(names: &[&str]) -> Vec<u8> {
    let mut b = BytesMut::new();
    pg::encode_row_description(
        &mut b,
        names.iter().map(|n| Field {
            name: n.as_bytes(),
            table_oid: 1,
            column_id: 1,
            type_oid: 25,
            type_size: -1,
            type_modifier: -1,
            format: 0,
        }),
    )
    .unwrap();
    b[HEADER_LEN..].to_vec()
}

fn known(step: Step) -> Vec<(String, i16)> {
    match step {
        Step::Result(ResultShape::Known { columns, .. }) => columns
            .iter()
            .map(|c| (String::from_utf8(c.name.to_vec()).unwrap(), c.format))
            .collect(),
        other => panic!("not a known shape: {other:?}"),
    }
}

const IDLE: &[u8] = b"I";

#[test]
fn a_described_statement_keeps_its_shape_with_each_binds_formats() {
    let mut s = Shapes::default();
    client(&mut s, |b| {
        pg::encode_parse(b, b"s1", b"select a, ssn from t", &[]).unwrap();
        pg::encode_describe(b, ObjectKind::Statement, b"s1").unwrap();
        pg::encode_sync(b);
    });
    up(&mut s, tag::PARSE_COMPLETE, b"");
    up(&mut s, tag::PARAMETER_DESCRIPTION, &[0, 0]);
    up(
        &mut s,
        tag::ROW_DESCRIPTION,
        &row_description(&["a", "ssn"]),
    );
    up(&mut s, tag::READY_FOR_QUERY, IDLE);
    for formats in [&[1i16][..], &[0, 1][..]] {
        client(&mut s, |b| {
            pg::encode_bind(b, b"", b"s1", &[], std::iter::empty(), formats).unwrap();
            pg::encode_execute(b, b"", 0).unwrap();
            pg::encode_sync(b);
        });
        up(&mut s, tag::BIND_COMPLETE, b"");
        let shape = known(up(&mut s, tag::DATA_ROW, &[0, 0]));
        let want_a = if formats.len() == 1 { 1 } else { 0 };
        assert_eq!(shape, vec![("a".into(), want_a), ("ssn".into(), 1)]);
        assert!(matches!(up(&mut s, tag::DATA_ROW, &[0, 0]), Step::Same));
        assert!(matches!(
            up(&mut s, tag::COMMAND_COMPLETE, b"SELECT 2\0"),
            Step::End
        ));
        up(&mut s, tag::READY_FOR_QUERY, IDLE);
    }
    assert!(s.pending.is_empty());
}

#[test]
fn unknown_after_an_error_a_close_or_deallocate() {
    let mut s = Shapes::default();
    // Never described.
    client(&mut s, |b| {
        pg::encode_parse(b, b"s1", b"select ssn from t", &[]).unwrap();
        pg::encode_bind(b, b"", b"s1", &[], std::iter::empty(), &[]).unwrap();
        pg::encode_execute(b, b"", 0).unwrap();
        pg::encode_sync(b);
    });
    up(&mut s, tag::PARSE_COMPLETE, b"");
    up(&mut s, tag::BIND_COMPLETE, b"");
    assert!(matches!(
        up(&mut s, tag::DATA_ROW, &[0, 0]),
        Step::Result(ResultShape::Unknown { .. })
    ));
    up(&mut s, tag::COMMAND_COMPLETE, b"SELECT 1\0");
    up(&mut s, tag::READY_FOR_QUERY, IDLE);
    // A failed Parse creates nothing, and voids the batch to Sync.
    client(&mut s, |b| {
        pg::encode_parse(b, b"s2", b"selec", &[]).unwrap();
        pg::encode_describe(b, ObjectKind::Statement, b"s2").unwrap();
        pg::encode_sync(b);
    });
    up(&mut s, tag::ERROR_RESPONSE, b"\0");
    up(&mut s, tag::READY_FOR_QUERY, IDLE);
    assert!(s.pending.is_empty() && !s.statements.contains_key(&b"s2"[..]));
    // Described, then DEALLOCATE ALL through a simple query.
    client(&mut s, |b| {
        pg::encode_parse(b, b"s3", b"select ssn from t", &[]).unwrap();
        pg::encode_describe(b, ObjectKind::Statement, b"s3").unwrap();
        pg::encode_sync(b);
        pg::encode_query(b, b"deallocate all").unwrap();
    });
    up(&mut s, tag::PARSE_COMPLETE, b"");
    up(&mut s, tag::PARAMETER_DESCRIPTION, &[0, 0]);
    up(&mut s, tag::ROW_DESCRIPTION, &row_description(&["ssn"]));
    up(&mut s, tag::READY_FOR_QUERY, IDLE);
    assert!(s.statements[&b"s3"[..]].columns.is_some());
    up(&mut s, tag::COMMAND_COMPLETE, b"DEALLOCATE ALL\0");
    up(&mut s, tag::READY_FOR_QUERY, IDLE);
    assert!(s.statements.is_empty() && s.pending.is_empty());
}

#[test]
fn portals_end_with_their_transaction() {
    let mut s = Shapes::default();
    client(&mut s, |b| {
        pg::encode_parse(b, b"", b"select ssn from t", &[]).unwrap();
        pg::encode_bind(b, b"p", b"", &[], std::iter::empty(), &[]).unwrap();
        pg::encode_describe(b, ObjectKind::Portal, b"p").unwrap();
        pg::encode_sync(b);
    });
    up(&mut s, tag::PARSE_COMPLETE, b"");
    up(&mut s, tag::BIND_COMPLETE, b"");
    up(&mut s, tag::ROW_DESCRIPTION, &row_description(&["ssn"]));
    up(&mut s, tag::READY_FOR_QUERY, b"T");
    assert!(s.portals.contains_key(&b"p"[..]));
    client(&mut s, |b| {
        pg::encode_execute(b, b"p", 0).unwrap();
        pg::encode_sync(b);
    });
    assert_eq!(
        known(up(&mut s, tag::DATA_ROW, &[0, 0])),
        vec![("ssn".into(), 0)]
    );
    up(&mut s, tag::COMMAND_COMPLETE, b"SELECT 1\0");
    up(&mut s, tag::READY_FOR_QUERY, IDLE);
    assert!(s.portals.is_empty());
}
/// Feeds one upstream message the way the relay does: first asks
/// whether it answers the gateway's COPY description (then it is not
/// relayed), then tracks it.
fn relayed(s: &mut Shapes, t: u8, body: &[u8]) -> (bool, Step) {
    let dropped = s.copy_probe_drop(t);
    (!dropped, up(s, t, body))
}

fn copy_query(s: &mut Shapes, sql: &str) {
    let mut frame = BytesMut::new();
    pg::encode_query(&mut frame, sql.as_bytes()).unwrap();
    let sent = crate::pg::copystmt::probe_for(sql.as_bytes(), true, true, &frame)
        .unwrap()
        .unwrap();
    client(s, |b| b.extend_from_slice(&sent));
}

#[test]
fn a_copy_description_reaches_its_copy_and_never_the_client() {
    let mut s = Shapes::default();
    copy_query(&mut s, "copy t to stdout");
    for (t, body) in [
        (tag::PARSE_COMPLETE, &b""[..]),
        (tag::PARAMETER_DESCRIPTION, &[0, 0][..]),
        (tag::ROW_DESCRIPTION, &row_description(&["id", "ssn"])[..]),
        (tag::CLOSE_COMPLETE, &b""[..]),
        (tag::READY_FOR_QUERY, IDLE),
    ] {
        assert!(!relayed(&mut s, t, body).0, "{t}");
    }
    let (shown, step) = relayed(&mut s, tag::COPY_OUT_RESPONSE, &[0, 0, 2, 0, 0, 0, 0]);
    assert!(shown);
    let Step::Copy(CopyShape {
        columns: Some(c),
        statement: Some(st),
    }) = step
    else {
        panic!("no columns: {step:?}");
    };
    assert_eq!(c.columns.len(), 2);
    assert_eq!(c.sql.as_deref(), Some(&b"SELECT * FROM t"[..]));
    assert_eq!(&*st, b"copy t to stdout");
    assert!(relayed(&mut s, tag::COMMAND_COMPLETE, b"COPY 0\0").0);
    assert!(relayed(&mut s, tag::READY_FOR_QUERY, IDLE).0);
    assert!(s.pending.is_empty() && s.copy_next.is_none());
}

#[test]
fn a_failed_copy_description_is_the_copys_one_error() {
    let mut s = Shapes::default();
    copy_query(&mut s, "copy nosuch to stdout");
    // The description's error is relayed, its ReadyForQuery is not.
    assert!(relayed(&mut s, tag::ERROR_RESPONSE, b"\0").0);
    assert!(!relayed(&mut s, tag::READY_FOR_QUERY, b"E").0);
    // The COPY's own error (same, or "transaction aborted") is dropped.
    assert!(!relayed(&mut s, tag::ERROR_RESPONSE, b"\0").0);
    assert!(relayed(&mut s, tag::READY_FOR_QUERY, b"E").0);
    assert!(s.pending.is_empty() && !s.drop_copy_error);
    // The next error is the client's again.
    client(&mut s, |b| pg::encode_query(b, b"selec").unwrap());
    assert!(relayed(&mut s, tag::ERROR_RESPONSE, b"\0").0);
}
