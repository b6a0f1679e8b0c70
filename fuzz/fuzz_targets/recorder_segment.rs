//! Fuzzes the recorder's readers (list, export walk, verify) on hostile segment and index files.
//!
//! A valid recording is written once (on an in-memory file system) by the real writer. Each
//! input then either replaces one of its files outright or patches it (byte flips, a cut),
//! so the readers see both garbage and nearly-valid files with damage deep inside.
#![no_main]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};

use libfuzzer_sys::fuzz_target;
use tollgate_recorder::fs::{FileSystem, SimFs};
use tollgate_recorder::{
    Bytes, Record, RecordBody, Recorder, RecorderConfig, RecordingDir, Selection, SessionEnd,
    SessionFilter, SessionStart,
};

const DIR: &str = "/rec";

struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

fn block_on<F: Future>(fut: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// Every file of a small valid recording: (path, contents).
fn baseline() -> &'static Vec<(PathBuf, Vec<u8>)> {
    static FILES: OnceLock<Vec<(PathBuf, Vec<u8>)>> = OnceLock::new();
    FILES.get_or_init(|| {
        let fs = SimFs::new();
        let mut cfg = RecorderConfig::new(DIR);
        cfg.segment_max_bytes = 4096;
        let rec = Recorder::open_with_fs(&cfg, 1, Arc::new(fs.clone()))
            .unwrap_or_else(|e| panic!("recorder: {e}"));
        let shard = rec.shard(0).unwrap_or_else(|e| panic!("shard: {e}"));
        let records = [
            RecordBody::SessionStart(SessionStart {
                subject: "svc".into(),
                target: "db".into(),
                ..Default::default()
            }),
            RecordBody::ClientData(Bytes::from_static(b"Q\0\0\0\x0dselect 1\0")),
            RecordBody::TargetData(Bytes::from(vec![7u8; 3000])),
            RecordBody::SessionEnd(SessionEnd::default()),
        ];
        for (i, body) in records.into_iter().enumerate() {
            let record = Record { session: 1, timestamp_ns: 10 + i as u64, body };
            let seq = block_on(shard.record(record)).unwrap_or_else(|e| panic!("record: {e}"));
            block_on(shard.wait_durable(seq)).unwrap_or_else(|e| panic!("durable: {e}"));
        }
        rec.shutdown().unwrap_or_else(|e| panic!("shutdown: {e}"));
        let mut files = Vec::new();
        collect(&fs, Path::new(DIR), &mut files);
        assert!(!files.is_empty(), "the writer left no files");
        files
    })
}

fn collect(fs: &SimFs, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for name in fs.list(dir).unwrap_or_default() {
        let path = dir.join(name);
        match fs.read(&path) {
            Some(data) => out.push((path, data)),
            None => collect(fs, &path, out),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let files = baseline();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let victim = usize::from(mode >> 1) % files.len();
    let fs = SimFs::new();
    for (i, (path, contents)) in files.iter().enumerate() {
        let contents = if i != victim {
            contents.clone()
        } else if mode & 1 == 0 {
            rest.to_vec()
        } else {
            // Patches: (offset u16, xor u8) triples; a trailing byte cuts the file.
            let mut c = contents.clone();
            let mut it = rest.chunks_exact(3);
            for p in &mut it {
                let at = usize::from(u16::from_le_bytes([p[0], p[1]]));
                if let Some(b) = c.get_mut(at % contents.len().max(1)) {
                    *b ^= p[2];
                }
            }
            if let [cut, ..] = it.remainder() {
                c.truncate(c.len() * usize::from(*cut) / 256);
            }
            c
        };
        if let Some(parent) = path.parent() {
            let _ = fs.create_dir_all(parent);
        }
        let _ = fs.write_file(path, &contents);
    }
    let dir = RecordingDir::with_fs(Arc::new(fs), DIR);
    let _ = dir.list_sessions(&SessionFilter::default());
    let _ = dir.for_each_record(Selection::All, &SessionFilter::default(), None, &mut |r| {
        let _ = (r.kind, r.session, r.body.len());
        Ok(())
    });
    let _ = dir.for_each_record(Selection::Session(1), &SessionFilter::default(), None, &mut |_| Ok(()));
    let _ = dir.verify(None);
});
