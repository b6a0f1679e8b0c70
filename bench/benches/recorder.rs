//! Criterion bench: the recorder's cost per raw session byte. Compares zstd
//! levels -1, 1 (default) and 3 for encode + compress + CRC + SHA-256 chain into
//! an in-memory sink (pure CPU), and level 1 with each block appended to a
//! real temporary file and fsynced (CPU + disk), on a realistic mix of SQL
//! text, row data and random bytes.

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

fn raw_bytes(records: &[Record]) -> u64 {
    records.iter().map(|r| r.data_len() as u64).sum()
}

/// Builds every block of `records`, handing each to `sink`.
fn build_all(builder: &mut BlockBuilder, records: &[Record], sink: &mut impl FnMut(&[u8])) {
    let mut head = ZERO_HASH;
    for (seq, r) in records.iter().enumerate() {
        builder.push(seq as u64, r).expect("bench records fit");
        if builder.raw_len() >= BLOCK_SIZE {
            let b = builder.finish(&head).expect("compress");
            head = b.hash;
            sink(b.bytes);
        }
    }
    if !builder.is_empty() {
        let b = builder.finish(&head).expect("compress");
        sink(b.bytes);
    }
}

fn bench_cpu(c: &mut Criterion) {
    let records = corpus();
    let mut group = c.benchmark_group("recorder_block_cpu");
    group.throughput(Throughput::Bytes(raw_bytes(&records)));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    // Level -1 (zstd "fast") is shown for the 1 GB/s goal; 1 is the default.
    for level in [-1, 1, 3] {
        let mut builder = BlockBuilder::new(level).expect("zstd");
        let mut ratio = (0u64, 0u64);
        build_all(&mut builder, &records, &mut |b| ratio.1 += b.len() as u64);
        ratio.0 = raw_bytes(&records);
        eprintln!(
            "zstd level {level}: {} raw -> {} on disk ({:.2}x)",
            ratio.0,
            ratio.1,
            ratio.0 as f64 / ratio.1 as f64
        );
        group.bench_with_input(BenchmarkId::new("zstd_level", level), &level, |b, _| {
            b.iter(|| {
                build_all(&mut builder, &records, &mut |bytes| {
                    black_box(bytes);
                })
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
    group.bench_function("zstd_level/1", |b| {
        b.iter(|| {
            let mut file: File = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&path)
                .expect("tmp file");
            build_all(&mut builder, &records, &mut |bytes| {
                file.write_all(bytes).expect("write");
                file.sync_data().expect("fsync");
            });
        })
    });
    group.finish();
    let _ = std::fs::remove_file(&path);
}

criterion_group!(benches, bench_cpu, bench_disk);
criterion_main!(benches);
