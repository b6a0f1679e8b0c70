//! Fuzzes the SFTP framer and the request and reply decoders. The first
//! byte picks the direction and a split point; one read and two reads must
//! give the same packets, every packet's raw bytes must be exactly the
//! bytes it was cut from, and nothing may panic or buffer past the cap.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tollgate_codecs::sftp::{Reply, Request, frame};

const MAX: usize = 1 << 16;

fn run(requests: bool, data: &[u8], cut: usize) -> Vec<String> {
    let mut buf = BytesMut::from(&data[..cut]);
    let mut fed = false;
    let mut at = 0;
    let mut out = Vec::new();
    loop {
        match frame(&mut buf, MAX) {
            Ok(Some(f)) => {
                let raw = f.raw().clone();
                assert_eq!(&raw[..], &data[at..at + raw.len()], "frame is not its bytes");
                assert!(raw.len() <= MAX + 4);
                at += raw.len();
                if requests {
                    out.push(format!("{:?} {:?}", f.id(), Request::decode(&f)));
                } else {
                    out.push(format!("{:?} {:?}", f.id(), Reply::decode(&f)));
                }
            }
            Ok(None) if !fed => {
                buf.extend_from_slice(&data[cut..]);
                fed = true;
            }
            Ok(None) => break,
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
    let requests = pick & 1 == 0;
    let whole = run(requests, data, data.len());
    let cut = usize::from(pick >> 1) * data.len() / 127;
    assert_eq!(whole, run(requests, data, cut), "split at {cut} changed the packets");
});
