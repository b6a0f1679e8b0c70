//! Criterion bench: the recorder's cost per raw session byte, on the path a
//! session's records take (encoded into the shard's staging buffer, then cut
//! into blocks: compress + CRC + SHA-256 chain). Compares zstd levels -1, 1
//! (default) and 3 into an in-memory sink (pure CPU) on two corpora — `mixed`
//! (SQL text, row data with random values, 10 % random bytes) and `oltp`
//! (pgbench -S-like extended-protocol exchanges of 16 interleaved sessions)
//! and `bulk` (64 KiB reads of incompressible bytes, as a bulk transfer) —
//! 256 KiB blocks against the default 64 KiB, and level 1 with each block
//! appended to a real temporary file and fsynced (CPU + disk).

// Setup failures (no temp dir, zstd refusing a level) end a bench run.
#![allow(clippy::expect_used)]

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tollgate_recorder::Bytes;
use tollgate_recorder::block::BlockBuilder;
use tollgate_recorder::format::ZERO_HASH;
use tollgate_recorder::{Record, RecordBody};

const BLOCK_SIZE: usize = 64 << 10;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// About 8 MiB of records shaped like a database session: queries from the
/// client, row data back from the target, and some opaque binary.
fn corpus() -> Vec<Record> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let tables = ["invoices", "customers", "orders", "payments", "audit_log"];
    let names = ["alice", "bob", "carol", "dave", "erin", "frank"];
    let mut out = Vec::new();
    let mut total = 0usize;
    let mut ts = 1_790_000_000_000_000_000u64;
    while total < 8 << 20 {
        ts += 50_000;
        let roll = rng.below(10);
        let body = if roll < 4 {
            let t = tables[rng.below(5) as usize];
            let q = format!(
                "SELECT id, customer_id, amount, status, created_at FROM {t} WHERE customer_id = {} AND created_at > now() - interval '{} days' ORDER BY id LIMIT {};",
                rng.below(1_000_000),
                rng.below(90),
                rng.below(500)
            );
            RecordBody::ClientData(Bytes::from(q.into_bytes()))
        } else if roll < 9 {
            // PostgreSQL DataRow-like messages: type byte, lengths, text values.
            let rows = 10 + rng.below(200);
            let mut b = Vec::new();
            for _ in 0..rows {
                let values = [
                    rng.below(10_000_000).to_string(),
                    names[rng.below(6) as usize].to_string(),
                    format!("{}.{:02}", rng.below(100_000), rng.below(100)),
                    ["paid", "open", "void"][rng.below(3) as usize].to_string(),
                    format!(
                        "2026-{:02}-{:02} {:02}:{:02}:{:02}+00",
                        1 + rng.below(12),
                        1 + rng.below(28),
                        rng.below(24),
                        rng.below(60),
                        rng.below(60)
                    ),
                ];
                let len: usize = values.iter().map(|v| 4 + v.len()).sum::<usize>() + 6;
                b.push(b'D');
                b.extend_from_slice(&(len as u32).to_be_bytes());
                b.extend_from_slice(&(values.len() as u16).to_be_bytes());
                for v in &values {
                    b.extend_from_slice(&(v.len() as u32).to_be_bytes());
                    b.extend_from_slice(v.as_bytes());
                }
            }
            RecordBody::TargetData(Bytes::from(b))
        } else {
            let n = 256 + rng.below(4096) as usize;
            RecordBody::TargetData(Bytes::from(
                (0..n).map(|_| rng.next() as u8).collect::<Vec<u8>>(),
            ))
        };
        total += match &body {
            RecordBody::ClientData(b) | RecordBody::TargetData(b) => b.len(),
            _ => 0,
        };
        out.push(Record {
            session: 1 + rng.below(64),
            timestamp_ns: ts,
            body,
        });
    }
    out
}

/// About 8 MiB of pgbench -S-like traffic (`-M prepared`): Bind / Execute /
/// Sync from the client, BindComplete / DataRow / CommandComplete /
/// ReadyForQuery back, one record per direction per transaction, 16
/// sessions interleaved.
fn oltp_corpus() -> Vec<Record> {
    fn msg(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
        out.push(tag);
        out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        out.extend_from_slice(body);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let sessions: Vec<u64> = (0..16).map(|_| rng.next() >> 24).collect();
    let mut out = Vec::new();
    let mut total = 0usize;
    let mut ts = 1_790_000_000_000_000_000u64;
    while total < 8 << 20 {
        let session = sessions[rng.below(16) as usize];
        let aid = (1 + rng.below(1_000_000)).to_string();
        let mut c = Vec::new();
        let mut bind = b"\0P0_1\0\0\0\0\x01".to_vec();
        bind.extend_from_slice(&(aid.len() as u32).to_be_bytes());
        bind.extend_from_slice(aid.as_bytes());
        bind.extend_from_slice(&[0, 0]);
        msg(&mut c, b'B', &bind);
        msg(&mut c, b'E', b"\0\0\0\0\0");
        msg(&mut c, b'S', b"");
        let balance = (rng.below(10_000_000) as i64 - 5_000_000).to_string();
        let mut t = Vec::new();
        msg(&mut t, b'2', b"");
        let mut row = vec![0, 1];
        row.extend_from_slice(&(balance.len() as u32).to_be_bytes());
        row.extend_from_slice(balance.as_bytes());
        msg(&mut t, b'D', &row);
        msg(&mut t, b'C', b"SELECT 1\0");
        msg(&mut t, b'Z', b"I");
        total += c.len() + t.len();
        ts += 20_000 + rng.below(40_000);
        out.push(Record {
            session,
            timestamp_ns: ts,
            body: RecordBody::ClientData(Bytes::from(c)),
        });
        ts += 20_000 + rng.below(40_000);
        out.push(Record {
            session,
            timestamp_ns: ts,
            body: RecordBody::TargetData(Bytes::from(t)),
        });
    }
    out
}

/// 8 MiB of a bulk transfer as the TCP relay records it: 64 KiB reads of
/// incompressible bytes (tollgate-load's bulk payload is pseudo-random).
fn bulk_corpus() -> Vec<Record> {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    (0..128u64)
        .map(|i| Record {
            session: 7,
            timestamp_ns: 1_790_000_000_000_000_000 + i * 10_000,
            body: RecordBody::ClientData(Bytes::from(
                (0..64 << 10).map(|_| rng.next() as u8).collect::<Vec<u8>>(),
            )),
        })
        .collect()
}

fn raw_bytes(records: &[Record]) -> u64 {
    records.iter().map(|r| r.data_len() as u64).sum()
}

/// Stages every record the way a session does (encoded into one buffer)
/// and cuts a block whenever `block_size` bytes are staged, handing each to
/// `sink`.
fn build_all(
    builder: &mut BlockBuilder,
    staging: &mut Vec<u8>,
    block_size: usize,
    records: &[Record],
    sink: &mut impl FnMut(&[u8]),
) {
    let mut head = ZERO_HASH;
    let (mut first, mut count) = (0u64, 0u32);
    staging.clear();
    for (seq, r) in records.iter().enumerate() {
        r.encode_into(staging).expect("bench records fit");
        count += 1;
        if staging.len() >= block_size {
            let b = builder
                .build(staging, first, count, &head)
                .expect("compress");
            head = b.hash;
            sink(b.bytes);
            staging.clear();
            (first, count) = (seq as u64 + 1, 0);
        }
    }
    if count > 0 {
        let b = builder
            .build(staging, first, count, &head)
            .expect("compress");
        sink(b.bytes);
    }
}

fn bench_cpu(c: &mut Criterion) {
    let corpora = [
        ("mixed", corpus()),
        ("oltp", oltp_corpus()),
        ("bulk", bulk_corpus()),
    ];
    let mut group = c.benchmark_group("recorder_block_cpu");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    let mut staging = Vec::new();
    // Level -1 (zstd "fast") is shown for the 1 GB/s goal; 1 is the default.
    let cases = [
        ("mixed", BLOCK_SIZE, -1),
        ("mixed", BLOCK_SIZE, 1),
        ("mixed", BLOCK_SIZE, 3),
        ("mixed", 4 * BLOCK_SIZE, 1),
        ("oltp", BLOCK_SIZE, -1),
        ("oltp", BLOCK_SIZE, 1),
        ("oltp", BLOCK_SIZE, 3),
        ("bulk", BLOCK_SIZE, 1),
        ("bulk", BLOCK_SIZE, 3),
    ];
    for (name, block_size, level) in cases {
        let records = &corpora.iter().find(|(n, _)| *n == name).expect("corpus").1;
        group.throughput(Throughput::Bytes(raw_bytes(records)));
        let mut builder = BlockBuilder::new(level).expect("zstd");
        let mut on_disk = 0u64;
        build_all(&mut builder, &mut staging, block_size, records, &mut |b| {
            on_disk += b.len() as u64
        });
        let raw = raw_bytes(records);
        let id = format!("{name}/{}k_blocks/zstd_level", block_size >> 10);
        eprintln!(
            "{id} {level}: {raw} raw -> {on_disk} on disk ({:.2}x)",
            raw as f64 / on_disk as f64
        );
        group.bench_with_input(BenchmarkId::new(id, level), &level, |b, _| {
            b.iter(|| {
                build_all(
                    &mut builder,
                    &mut staging,
                    block_size,
                    records,
                    &mut |bytes| {
                        black_box(bytes);
                    },
                )
            })
        });
    }
    group.finish();
}

fn bench_disk(c: &mut Criterion) {
    let records = corpus();
    let path = std::env::temp_dir().join(format!(
        "tollgate-recorder-bench-{}.seg",
        std::process::id()
    ));
    let mut group = c.benchmark_group("recorder_block_fsync");
    group.throughput(Throughput::Bytes(raw_bytes(&records)));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(6))
        .warm_up_time(Duration::from_secs(1));
    let mut builder = BlockBuilder::new(1).expect("zstd");
    let mut staging = Vec::new();
    group.bench_function("mixed/64k_blocks/zstd_level/1", |b| {
        b.iter(|| {
            let mut file: File = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&path)
                .expect("tmp file");
            build_all(
                &mut builder,
                &mut staging,
                BLOCK_SIZE,
                &records,
                &mut |bytes| {
                    file.write_all(bytes).expect("write");
                    file.sync_data().expect("fsync");
                },
            );
        })
    });
    group.finish();
    let _ = std::fs::remove_file(&path);
}

criterion_group!(benches, bench_cpu, bench_disk);
criterion_main!(benches);
