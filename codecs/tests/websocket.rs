//! WebSocket frame codec (RFC 6455 §5.7 examples, fragmentation, hostile
//! lengths and masking), the handshake, and the Kubernetes exec channels.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{Bytes, BytesMut};
use tollgate_codecs::http::h1::{Limits, parse_request_head, parse_response_head};
use tollgate_codecs::websocket::k8s::{
    Channel, ChannelEvent, ChannelProtocol, decode_channel_message, encode_channel_close,
    encode_channel_data,
};
use tollgate_codecs::websocket::{
    FrameDecoder, FrameEvent, Message, MessageAssembler, Opcode, Sender, WsError, accept_key,
    check_upgrade_request, check_upgrade_response, encode_close, encode_frame, encode_frame_header,
    mask_payload, parse_close,
};

const MAX: u64 = 1 << 20;

/// Every message in `bytes` fed in `step`-byte reads.
fn messages(from: Sender, bytes: &[u8], step: usize) -> Result<Vec<Message>, WsError> {
    let mut d = FrameDecoder::new(from, MAX);
    let mut a = MessageAssembler::new(1024);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in bytes.chunks(step.max(1)) {
        buf.extend_from_slice(piece);
        while let Some(ev) = d.decode(&mut buf)? {
            if let Some(m) = a.push(&ev)? {
                out.push(m);
            }
        }
    }
    assert!(d.at_frame_boundary() && buf.is_empty());
    Ok(out)
}

fn msg(opcode: Opcode, data: &'static [u8]) -> Message {
    Message {
        opcode,
        data: Bytes::from_static(data),
        dropped: 0,
    }
}

#[test]
fn rfc6455_examples() {
    let hello = msg(Opcode::Text, b"Hello");
    let unmasked = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let masked = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let fragmented = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
    for step in 1..=masked.len() {
        assert_eq!(
            messages(Sender::Server, &unmasked, step).unwrap(),
            vec![hello.clone()]
        );
        assert_eq!(
            messages(Sender::Client, &masked, step).unwrap(),
            vec![hello.clone()]
        );
        assert_eq!(
            messages(Sender::Server, &fragmented, step).unwrap(),
            vec![hello.clone()]
        );
    }
    let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    assert_eq!(
        messages(Sender::Server, &ping, 3).unwrap(),
        vec![msg(Opcode::Ping, b"Hello")]
    );
    let pong = [
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(
        messages(Sender::Client, &pong, 3).unwrap(),
        vec![msg(Opcode::Pong, b"Hello")]
    );
    // 256 and 65536 bytes: the 16- and 64-bit length forms.
    for (len, head) in [
        (256usize, &[0x82u8, 0x7e, 0x01, 0x00][..]),
        (65536, &[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0][..]),
    ] {
        let mut f = head.to_vec();
        f.resize(head.len() + len, 7);
        let m = messages(Sender::Server, &f, 1000).unwrap();
        assert_eq!(
            (m[0].opcode, m[0].data.len() as u64 + m[0].dropped),
            (Opcode::Binary, len as u64)
        );
    }
    // Both encoders produce the RFC's bytes.
    let mut out = BytesMut::new();
    encode_frame(true, Opcode::Text, b"Hello", None, &mut out).unwrap();
    encode_frame(
        true,
        Opcode::Text,
        b"Hello",
        Some([0x37, 0xfa, 0x21, 0x3d]),
        &mut out,
    )
    .unwrap();
    assert_eq!(&out[..7], &unmasked);
    assert_eq!(&out[7..], &masked);
}

#[test]
fn control_frames_interleave_with_fragments() {
    // "Hel" (no FIN), a ping, "lo" (FIN): the ping comes out first.
    let bytes = [
        0x01, 0x03, b'H', b'e', b'l', 0x89, 0x00, 0x80, 0x02, b'l', b'o',
    ];
    let got = messages(Sender::Server, &bytes, 1).unwrap();
    assert_eq!(
        got,
        vec![msg(Opcode::Ping, b""), msg(Opcode::Text, b"Hello")]
    );
}

#[test]
fn recording_cap_counts_what_it_drops() {
    let mut f = vec![0x02, 0x7e, 0x07, 0xd0]; // 2000 bytes, not final
    f.resize(4 + 2000, b'a');
    f.extend_from_slice(&[0x80, 0x7e, 0x03, 0xe8]); // 1000 more, final
    f.resize(f.len() + 1000, b'b');
    let m = messages(Sender::Server, &f, 333).unwrap();
    assert_eq!((m[0].data.len(), m[0].dropped), (1024, 2000 - 1024 + 1000));
    assert!(m[0].data.iter().all(|&b| b == b'a'));
}

fn first_error(from: Sender, max: u64, bytes: &[u8]) -> WsError {
    let mut d = FrameDecoder::new(from, max);
    let mut a = MessageAssembler::new(64);
    let mut buf = BytesMut::from(bytes);
    loop {
        match d.decode(&mut buf) {
            Ok(Some(ev)) => {
                if let Err(e) = a.push(&ev) {
                    return e;
                }
            }
            Ok(None) => panic!("accepted {bytes:02x?}"),
            Err(e) => return e,
        }
    }
}

#[test]
fn hostile_frames_are_refused() {
    use Sender::*;
    let cases: &[(Sender, &[u8], WsError)] = &[
        // Masking in the wrong direction.
        (
            Client,
            &[0x81, 0x05, b'H', b'e', b'l', b'l', b'o'],
            WsError::UnmaskedClientFrame,
        ),
        (
            Server,
            &[0x81, 0x85, 1, 2, 3, 4, 0, 0, 0, 0, 0],
            WsError::MaskedServerFrame,
        ),
        // RSV bits and reserved opcodes.
        (Server, &[0xc1, 0x00], WsError::ReservedBits),
        (Server, &[0x91, 0x00], WsError::ReservedBits),
        (Server, &[0x83, 0x00], WsError::ReservedOpcode(3)),
        (Server, &[0x8b, 0x00], WsError::ReservedOpcode(0xb)),
        // Control frames: fragmented or long.
        (Server, &[0x09, 0x00], WsError::BadControlFrame),
        (Server, &[0x88, 0x7e, 0x00, 0x7e], WsError::BadControlFrame),
        // Lengths: non-minimal, top bit, over the cap (refused before any payload).
        (Server, &[0x82, 0x7e, 0x00, 0x7d], WsError::BadLength),
        (
            Server,
            &[0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0xff, 0xff],
            WsError::BadLength,
        ),
        (
            Server,
            &[0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0],
            WsError::BadLength,
        ),
        (
            Server,
            &[0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            WsError::FrameTooLarge {
                len: i64::MAX as u64,
                max: MAX,
            },
        ),
        (
            Server,
            &[0x82, 0x7f, 0, 0, 0, 0, 0, 0x10, 0, 1],
            WsError::FrameTooLarge {
                len: MAX + 1,
                max: MAX,
            },
        ),
        // Fragmentation order.
        (Server, &[0x80, 0x00], WsError::UnexpectedContinuation),
        (
            Server,
            &[0x01, 0x00, 0x82, 0x00],
            WsError::MessageInterleaved,
        ),
        // Close payloads.
        (Server, &[0x88, 0x01, 0x03], WsError::BadClose),
        (Server, &[0x88, 0x02, 0x03, 0xed], WsError::BadClose), // 1005 may not be sent
        (Server, &[0x88, 0x02, 0x03, 0xe7], WsError::BadClose), // 999
        (Server, &[0x88, 0x03, 0x03, 0xe8, 0xff], WsError::BadClose), // reason not UTF-8
    ];
    for (from, bytes, want) in cases {
        assert_eq!(&first_error(*from, MAX, bytes), want, "{bytes:02x?}");
    }
    assert_eq!(WsError::FrameTooLarge { len: 1, max: 0 }.close_code(), 1009);
    assert_eq!(WsError::UnmaskedClientFrame.close_code(), 1002);
}

#[test]
fn close_frames() {
    assert_eq!(parse_close(b""), Ok(None));
    assert_eq!(parse_close(b"\x03\xe8bye"), Ok(Some((1000, "bye"))));
    assert_eq!(parse_close(b"\x0f\xa0"), Ok(Some((4000, ""))));
    let mut out = BytesMut::new();
    let long = "é".repeat(100);
    encode_close(Some(1001), &long, None, &mut out).unwrap();
    let m = messages(Sender::Server, &out, 7).unwrap();
    let (code, reason) = parse_close(&m[0].data).unwrap().unwrap();
    assert_eq!((code, reason.len()), (1001, 122));
    assert!(encode_frame(false, Opcode::Ping, b"", None, &mut out).is_err());
    assert!(encode_frame(true, Opcode::Ping, &[0; 126], None, &mut out).is_err());
}

#[test]
fn encoder_and_decoder_agree_on_every_length_form() {
    let key = [9, 8, 7, 6];
    for len in [0usize, 1, 125, 126, 127, 65535, 65536, 70000] {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut out = BytesMut::new();
        encode_frame(true, Opcode::Binary, &payload, Some(key), &mut out).unwrap();
        let mut d = FrameDecoder::new(Sender::Client, MAX);
        let mut got = Vec::new();
        while let Some(ev) = d.decode(&mut out).unwrap() {
            match ev {
                FrameEvent::Header(h) => assert_eq!((h.len, h.mask), (len as u64, Some(key))),
                FrameEvent::Payload(p) => got.extend_from_slice(&p),
                FrameEvent::End => break,
            }
        }
        assert_eq!(got, payload, "len {len}");
    }
}

const UPGRADE: &[u8] =
    b"GET /api/v1/namespaces/prod/pods/p/exec?command=sh&stdin=true HTTP/1.1\r\n\
Host: k8s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Protocol: v5.channel.k8s.io, v4.channel.k8s.io\r\n\r\n";

#[test]
fn handshake() {
    assert_eq!(
        accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    let l = Limits::default();
    let req = parse_request_head(&mut BytesMut::from(UPGRADE), &l)
        .unwrap()
        .unwrap();
    let up = check_upgrade_request(&req).unwrap();
    assert_eq!(
        up.protocols,
        vec![&b"v5.channel.k8s.io"[..], b"v4.channel.k8s.io"]
    );
    let resp = |extra: &str| {
        let raw = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{extra}\r\n"
        );
        parse_response_head(&mut BytesMut::from(raw.as_bytes()), &l)
            .unwrap()
            .unwrap()
    };
    let good = resp(
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n",
    );
    let chosen = check_upgrade_response(&good, up.key, &up.protocols).unwrap();
    assert_eq!(
        chosen.and_then(ChannelProtocol::from_name),
        Some(ChannelProtocol::V5)
    );
    let wrong = resp("Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n");
    assert!(check_upgrade_response(&wrong, up.key, &up.protocols).is_err());
    let ext = resp(
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Extensions: permessage-deflate\r\n",
    );
    assert!(check_upgrade_response(&ext, up.key, &up.protocols).is_err());
    let unoffered = resp(
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: v3.channel.k8s.io\r\n",
    );
    assert!(check_upgrade_response(&unoffered, up.key, &up.protocols).is_err());
    for (from, to) in [
        ("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
        ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ=="),
        ("Upgrade: websocket", "Upgrade: h2c"),
        ("GET", "POST"),
    ] {
        let raw = String::from_utf8(UPGRADE.to_vec())
            .unwrap()
            .replace(from, to);
        let req = parse_request_head(&mut BytesMut::from(raw.as_bytes()), &l)
            .unwrap()
            .unwrap();
        assert!(check_upgrade_request(&req).is_err(), "{to}");
    }
}

fn binary(data: &[u8]) -> Message {
    Message {
        opcode: Opcode::Binary,
        data: Bytes::copy_from_slice(data),
        dropped: 0,
    }
}

#[test]
fn kubernetes_exec_channels() {
    use ChannelProtocol::*;
    use Sender::*;
    let dec = |p, from, data: &[u8]| decode_channel_message(p, from, &binary(data));
    let data = |channel, d: &'static [u8]| {
        Some(ChannelEvent::Data {
            channel,
            data: Bytes::from_static(d),
        })
    };
    assert_eq!(
        dec(V5, Client, b"\x00ls -l\n"),
        Ok(data(Channel::Stdin, b"ls -l\n"))
    );
    assert_eq!(
        dec(V4, Server, b"\x01total 0\n"),
        Ok(data(Channel::Stdout, b"total 0\n"))
    );
    assert_eq!(
        dec(V5, Server, b"\x02oops"),
        Ok(data(Channel::Stderr, b"oops"))
    );
    assert_eq!(
        dec(V5, Server, b"\x03{\"status\":\"Success\"}"),
        Ok(data(Channel::Error, b"{\"status\":\"Success\"}"))
    );
    assert_eq!(
        dec(V5, Client, b"\x04{\"Width\":80,\"Height\":24}"),
        Ok(data(Channel::Resize, b"{\"Width\":80,\"Height\":24}"))
    );
    assert_eq!(dec(V5, Server, b"\x01"), Ok(data(Channel::Stdout, b"")));
    assert_eq!(dec(V5, Client, b""), Ok(None));
    assert_eq!(
        dec(V5, Client, b"\xff\x00"),
        Ok(Some(ChannelEvent::Close {
            channel: Channel::Stdin
        }))
    );
    // v4 has no close signal; malformed closes, unknown channels and the
    // wrong side are refused.
    assert!(dec(V4, Client, b"\xff\x00").is_err());
    assert!(dec(V5, Client, b"\xff").is_err());
    assert!(dec(V5, Client, b"\xff\x00\x00").is_err());
    assert!(dec(V5, Client, b"\xff\x09").is_err());
    assert!(dec(V5, Client, b"\x05x").is_err());
    assert!(dec(V5, Client, b"\x01stdout from the client").is_err());
    assert!(dec(V5, Server, b"\x00stdin from the server").is_err());
    let text = Message {
        opcode: Opcode::Text,
        data: Bytes::from_static(b"0aGk="),
        dropped: 0,
    };
    assert!(decode_channel_message(V5, Client, &text).is_err());
    let ping = Message {
        opcode: Opcode::Ping,
        data: Bytes::new(),
        dropped: 0,
    };
    assert_eq!(decode_channel_message(V5, Client, &ping), Ok(None));
}

/// Encoded channel payloads decode back, carried in real masked frames.
#[test]
fn kubernetes_channel_encoding_round_trips() {
    use ChannelProtocol::*;
    use Sender::*;
    let data = |channel, d: &'static [u8]| {
        Some(ChannelEvent::Data {
            channel,
            data: Bytes::from_static(d),
        })
    };
    let mut payload = BytesMut::new();
    encode_channel_data(Channel::Stdin, b"exit\n", &mut payload);
    let mut close = BytesMut::new();
    encode_channel_close(Channel::Stdin, &mut close);
    let mut wire = BytesMut::new();
    encode_frame(
        true,
        Opcode::Binary,
        &payload,
        Some([1, 2, 3, 4]),
        &mut wire,
    )
    .unwrap();
    encode_frame(true, Opcode::Binary, &close, Some([5, 6, 7, 8]), &mut wire).unwrap();
    let got: Vec<_> = messages(Client, &wire, 2)
        .unwrap()
        .iter()
        .map(|m| decode_channel_message(V5, Client, m).unwrap())
        .collect();
    assert_eq!(
        got,
        vec![
            data(Channel::Stdin, b"exit\n"),
            Some(ChannelEvent::Close {
                channel: Channel::Stdin
            })
        ]
    );
}

/// A relay decodes a client's frame in pieces (for the recording) and sends
/// it on re-encoded: header, then each piece masked again under the same
/// key and offset. The upstream must get the client's bytes exactly.
#[test]
fn relay_reencodes_streamed_frames_byte_for_byte() {
    let mut wire = BytesMut::new();
    let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    encode_frame(
        false,
        Opcode::Binary,
        &payload,
        Some([0xde, 0xad, 0xbe, 0xef]),
        &mut wire,
    )
    .unwrap();
    encode_frame(true, Opcode::Ping, b"p", Some([1, 1, 1, 1]), &mut wire).unwrap();
    encode_frame(
        true,
        Opcode::Continuation,
        b"tail",
        Some([9, 9, 9, 9]),
        &mut wire,
    )
    .unwrap();
    let original = wire.clone();
    for step in [1usize, 5, 333, 4096] {
        let mut d = FrameDecoder::new(Sender::Client, MAX);
        let (mut buf, mut relayed) = (BytesMut::new(), BytesMut::new());
        let (mut key, mut offset) = (None, 0u64);
        for piece in original.chunks(step) {
            buf.extend_from_slice(piece);
            while let Some(ev) = d.decode(&mut buf).unwrap() {
                match ev {
                    FrameEvent::Header(h) => {
                        encode_frame_header(&h, &mut relayed).unwrap();
                        (key, offset) = (h.mask, 0);
                    }
                    FrameEvent::Payload(p) => {
                        let mut p = p.to_vec();
                        mask_payload(&mut p, key.unwrap(), offset);
                        offset += p.len() as u64;
                        relayed.extend_from_slice(&p);
                    }
                    FrameEvent::End => {}
                }
            }
        }
        assert_eq!(relayed, original, "step {step}");
    }
}
