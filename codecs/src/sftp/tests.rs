#![allow(clippy::unwrap_used)]

use bytes::{BufMut, BytesMut};

use super::*;

/// A packet of `kind` with `fields` after the type byte.
fn packet(kind: u8, fields: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_u32(1 + fields.len() as u32);
    b.put_u8(kind);
    b.put_slice(fields);
    b
}

fn s(out: &mut Vec<u8>, v: &[u8]) {
    out.extend_from_slice(&(v.len() as u32).to_be_bytes());
    out.extend_from_slice(v);
}

fn one(kind: u8, fields: &[u8]) -> Frame {
    let mut b = packet(kind, fields);
    let f = frame(&mut b, MAX_PACKET).unwrap().unwrap();
    assert!(b.is_empty());
    f
}

#[test]
fn frames_need_whole_packets_and_cap_the_length_first() {
    let whole = packet(kind::INIT, &3u32.to_be_bytes());
    let mut b = BytesMut::from(&whole[..6]);
    assert_eq!(frame(&mut b, MAX_PACKET), Ok(None));
    b.extend_from_slice(&whole[6..]);
    let f = frame(&mut b, MAX_PACKET).unwrap().unwrap();
    assert_eq!(f.kind(), kind::INIT);
    assert_eq!(f.id(), None);
    assert_eq!(Request::decode(&f), Ok(Request::Init { version: 3 }));
    // A hostile length is refused from its four bytes alone.
    let mut b = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
    assert_eq!(
        frame(&mut b, MAX_PACKET),
        Err(SftpError::PacketTooLarge {
            len: 0xffff_ffff,
            max: MAX_PACKET
        })
    );
    let mut b = BytesMut::from(&[0, 0, 0, 0][..]);
    assert_eq!(frame(&mut b, MAX_PACKET), Err(SftpError::Empty));
}

#[test]
fn requests_decode_with_their_paths_and_handles() {
    let mut open = 7u32.to_be_bytes().to_vec();
    s(&mut open, b"/etc/passwd");
    open.extend_from_slice(&(pflags::WRITE | pflags::CREAT).to_be_bytes());
    open.extend_from_slice(&0u32.to_be_bytes()); // empty ATTRS
    let f = one(kind::OPEN, &open);
    assert_eq!(f.id(), Some(7));
    assert_eq!(
        Request::decode(&f),
        Ok(Request::Open {
            id: 7,
            path: b"/etc/passwd",
            pflags: pflags::WRITE | pflags::CREAT
        })
    );

    let mut write = 8u32.to_be_bytes().to_vec();
    s(&mut write, b"h1");
    write.extend_from_slice(&4096u64.to_be_bytes());
    s(&mut write, b"data");
    assert_eq!(
        Request::decode(&one(kind::WRITE, &write)),
        Ok(Request::Write {
            id: 8,
            handle: b"h1",
            offset: 4096,
            data: b"data"
        })
    );

    let mut rename = 9u32.to_be_bytes().to_vec();
    s(&mut rename, b"a");
    s(&mut rename, b"b");
    assert_eq!(
        Request::decode(&one(kind::RENAME, &rename)),
        Ok(Request::Rename {
            id: 9,
            old: b"a",
            new: b"b"
        })
    );

    let mut ext = 10u32.to_be_bytes().to_vec();
    s(&mut ext, b"posix-rename@openssh.com");
    s(&mut ext, b"/x");
    s(&mut ext, b"/etc/y");
    assert_eq!(
        Request::decode(&one(kind::EXTENDED, &ext)),
        Ok(Request::Extended {
            id: 10,
            ext: Extension::PosixRename {
                old: b"/x",
                new: b"/etc/y"
            }
        })
    );
    let mut other = 11u32.to_be_bytes().to_vec();
    s(&mut other, b"x@example.com");
    other.extend_from_slice(b"anything");
    assert_eq!(
        Request::decode(&one(kind::EXTENDED, &other)),
        Ok(Request::Extended {
            id: 11,
            ext: Extension::Other {
                name: b"x@example.com"
            }
        })
    );
}

#[test]
fn hostile_requests_are_errors() {
    // A path length past the packet's end.
    let mut open = 1u32.to_be_bytes().to_vec();
    open.extend_from_slice(&1000u32.to_be_bytes());
    open.extend_from_slice(b"/etc");
    assert_eq!(
        Request::decode(&one(kind::OPEN, &open)),
        Err(SftpError::Truncated {
            kind: kind::OPEN,
            field: "path"
        })
    );
    // A reply type sent as a request.
    assert!(matches!(
        Request::decode(&one(kind::STATUS, &1u32.to_be_bytes())),
        Err(SftpError::WrongSide { .. })
    ));
    // Bytes after a REMOVE's path.
    let mut rm = 2u32.to_be_bytes().to_vec();
    s(&mut rm, b"/x");
    rm.push(0);
    assert_eq!(
        Request::decode(&one(kind::REMOVE, &rm)),
        Err(SftpError::Trailing {
            kind: kind::REMOVE,
            extra: 1
        })
    );
    // No id at all.
    assert!(Request::decode(&one(kind::CLOSE, &[0, 0])).is_err());
}

#[test]
fn replies_decode_and_status_encodes() {
    let mut h = 3u32.to_be_bytes().to_vec();
    s(&mut h, b"\0\0\0\x01");
    assert_eq!(
        Reply::decode(&one(kind::HANDLE, &h)),
        Ok(Reply::Handle {
            id: 3,
            handle: b"\0\0\0\x01"
        })
    );
    let mut name = 4u32.to_be_bytes().to_vec();
    name.extend_from_slice(&1u32.to_be_bytes());
    s(&mut name, b"/root");
    s(&mut name, b"/root");
    name.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(
        Reply::decode(&one(kind::NAME, &name)),
        Ok(Reply::Name {
            id: 4,
            count: 1,
            first: Some(b"/root")
        })
    );
    let mut out = BytesMut::new();
    encode_status(5, status::PERMISSION_DENIED, "no", &mut out);
    let f = frame(&mut out, MAX_PACKET).unwrap().unwrap();
    assert_eq!(
        Reply::decode(&f),
        Ok(Reply::Status {
            id: 5,
            code: status::PERMISSION_DENIED,
            message: b"no"
        })
    );
    assert!(matches!(
        Reply::decode(&one(kind::OPEN, &1u32.to_be_bytes())),
        Err(SftpError::WrongSide { .. })
    ));
}
