//! Fuzzes the WebSocket frame decoder, the message assembler and the
//! Kubernetes channel decoder. The first byte picks the sender and a split
//! point; one read and two reads must give the same messages, and every
//! decoded frame must re-encode to exactly the bytes it came from.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tollgate_codecs::websocket::k8s::{ChannelProtocol, decode_channel_message};
use tollgate_codecs::websocket::{
    FrameDecoder, FrameEvent, FrameHeader, MessageAssembler, Sender, encode_frame,
};

const MAX_FRAME: u64 = 1 << 16;

fn run(from: Sender, data: &[u8], cut: usize) -> Vec<String> {
    let mut d = FrameDecoder::new(from, MAX_FRAME);
    let mut a = MessageAssembler::new(512);
    let mut buf = BytesMut::from(&data[..cut]);
    let mut fed = false;
    let mut out = Vec::new();
    // The current frame: its header, payload, and where it began in `data`.
    let mut frame: Option<(FrameHeader, Vec<u8>, usize)> = None;
    loop {
        let consumed = data.len() - (buf.len() + if fed { 0 } else { data.len() - cut });
        let ev = match d.decode(&mut buf) {
            Ok(Some(ev)) => ev,
            Ok(None) if !fed => {
                buf.extend_from_slice(&data[cut..]);
                fed = true;
                continue;
            }
            Ok(None) => break,
            Err(e) => {
                out.push(format!("{e:?} {}", e.close_code()));
                break;
            }
        };
        match &ev {
            FrameEvent::Header(h) => frame = Some((*h, Vec::new(), consumed)),
            FrameEvent::Payload(p) => {
                if let Some(f) = frame.as_mut() {
                    f.1.extend_from_slice(p);
                }
            }
            FrameEvent::End => {
                if let Some((h, payload, start)) = frame.take() {
                    let end = data.len() - (buf.len() + if fed { 0 } else { data.len() - cut });
                    let mut again = BytesMut::new();
                    encode_frame(h.fin, h.opcode, &payload, h.mask, &mut again)
                        .expect("a decoded frame encodes");
                    assert_eq!(&again[..], &data[start..end], "re-encoded frame differs");
                }
            }
        }
        match a.push(&ev) {
            Ok(Some(m)) => {
                let k8s = decode_channel_message(ChannelProtocol::V5, from, &m);
                let k4 = decode_channel_message(ChannelProtocol::V4, from, &m);
                out.push(format!("{m:?} {k8s:?} {k4:?}"));
            }
            Ok(None) => {}
            Err(e) => {
                out.push(format!("{e:?}"));
                break;
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    let from = if pick & 1 == 0 {
        Sender::Client
    } else {
        Sender::Server
    };
    let whole = run(from, data, data.len());
    let cut = usize::from(pick >> 1) * data.len() / 127;
    assert_eq!(
        whole,
        run(from, data, cut),
        "split at {cut} changed the messages"
    );
});
