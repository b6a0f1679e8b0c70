//! Criterion bench: result masking. Compares, on the same DataRow-like
//! values, (a) content scanning with every built-in detector on clean data
//! (words, integers, decimals, timestamps, UUIDs: the common case, where the
//! prefilters should make masking nearly free), (b) a column-name-only plan
//! with no content detectors, (c) the same clean data as COPY-style free
//! text through `mask_text`, (d) PII-dense rows (emails, cards, SSNs,
//! phones, IPs, tokens every few values) where detectors fire and rewrite,
//! (e) those dense rows as COPY text, and (f) digit-free prose (the text
//! columns alone) as COPY text, where only the bitmap pass's digit check
//! keeps the numeric detectors off.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tollgate::policy::mask::{
    Builtin, MaskOutcome, MaskPolicy, MaskRuleConfig, MaskScratch, MaskStyleKind, MaskingConfig,
    ResultPlan,
};

const ROWS: usize = 2_000;
const COLUMNS: [&str; 8] = [
    "id",
    "username",
    "status",
    "created_at",
    "request_id",
    "amount",
    "description",
    "notes",
];

/// A small deterministic generator, so every run measures the same bytes.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.next() as usize % xs.len()]
    }
}

const WORDS: &[&str] = &[
    "order",
    "shipped",
    "customer",
    "payment",
    "pending",
    "refund",
    "the",
    "invoice",
    "account",
    "warehouse",
    "delivery",
    "status",
    "updated",
    "by",
    "system",
    "batch",
    "priority",
    "normal",
    "review",
    "approved",
    "notes",
    "ticket",
    "escalated",
    "resolved",
    "with",
    "and",
    "for",
];

fn sentence(r: &mut Lcg, words: usize) -> String {
    (0..words)
        .map(|_| r.pick(WORDS))
        .collect::<Vec<_>>()
        .join(" ")
}

fn clean_row(r: &mut Lcg) -> Vec<String> {
    let words = 6 + (r.next() % 10) as usize;
    vec![
        (r.next() % 10_000_000).to_string(),
        format!("{}_{}", r.pick(WORDS), r.next() % 1000),
        r.pick(&["active", "suspended", "pending", "closed"])
            .to_owned(),
        format!(
            "2024-{:02}-{:02} {:02}:{:02}:{:02}.{:06}+00",
            r.next() % 12 + 1,
            r.next() % 28 + 1,
            r.next() % 24,
            r.next() % 60,
            r.next() % 60,
            r.next() % 1_000_000
        ),
        format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            r.next() as u32,
            r.next() as u16,
            r.next() % 0x1000,
            r.next() % 0x1000,
            (r.next() << 16) | (r.next() % 0x10000)
        ),
        format!("{}.{:02}", r.next() % 100_000, r.next() % 100),
        sentence(r, words),
        sentence(r, 3),
    ]
}

const PII: &[&str] = &[
    "jane.doe@example.com",
    "card 4111 1111 1111 1111 on file",
    "ssn 123-45-6789",
    "call +1 415 555 2671",
    "from 192.168.10.24",
    "5555555555554444",
    "key AKIAIOSFODNN7EXAMPLE",
    "DE89370400440532013000",
];

fn pii_row(r: &mut Lcg) -> Vec<String> {
    let mut row = clean_row(r);
    for slot in [1, 6, 7] {
        if r.next().is_multiple_of(2) {
            row[slot] = r.pick(PII).to_owned();
        }
    }
    row
}

fn rule(name: &str, columns: &[&str], detectors: &[&str]) -> MaskRuleConfig {
    MaskRuleConfig {
        name: name.into(),
        columns: columns.iter().map(|s| s.to_string()).collect(),
        detectors: detectors.iter().map(|s| s.to_string()).collect(),
        json_paths: Vec::new(),
        style: MaskStyleKind::Partial,
        keep: Some(4),
        replacement: None,
        preserve_length: false,
        exempt_groups: Vec::new(),
    }
}

fn policy(rules: Vec<MaskRuleConfig>) -> (MaskPolicy, ResultPlan) {
    let config = MaskingConfig {
        key_file: None,
        rules,
        custom: Vec::new(),
        ..Default::default()
    };
    let policy = MaskPolicy::new(&config, None).unwrap();
    let mut plan = ResultPlan::default();
    policy.plan_result(COLUMNS.iter().map(|c| c.as_bytes()), &[], &mut plan);
    (policy, plan)
}

fn mask_rows(
    policy: &MaskPolicy,
    plan: &ResultPlan,
    rows: &[Vec<String>],
    scratch: &mut MaskScratch,
) -> usize {
    let mut changed = 0;
    for row in rows {
        for (col, value) in row.iter().enumerate() {
            if !matches!(
                policy.mask_value(plan, col, value.as_bytes(), scratch),
                MaskOutcome::Unchanged
            ) {
                changed += 1;
            }
        }
    }
    changed
}

fn bytes_of(rows: &[Vec<String>]) -> u64 {
    rows.iter().flatten().map(|v| v.len() as u64).sum()
}

fn bench_mask(c: &mut Criterion) {
    let mut r = Lcg(42);
    let clean: Vec<Vec<String>> = (0..ROWS).map(|_| clean_row(&mut r)).collect();
    let dense: Vec<Vec<String>> = (0..ROWS).map(|_| pii_row(&mut r)).collect();
    let all: Vec<&str> = Builtin::ALL.iter().map(|b| b.name()).collect();
    let (content, content_plan) = policy(vec![rule("pii", &[], &all)]);
    let (by_name, name_plan) = policy(vec![rule("names", &["username", "*_ssn"], &[])]);
    let mut scratch = MaskScratch::default();

    let mut g = c.benchmark_group("mask");
    // PER_COLUMN=1 adds one bench per column kind, to see where the time goes.
    if std::env::var_os("PER_COLUMN").is_some() {
        for col in 0..COLUMNS.len() {
            let vals: Vec<&[u8]> = clean.iter().map(|r| r[col].as_bytes()).collect();
            g.throughput(Throughput::Bytes(vals.iter().map(|v| v.len() as u64).sum()));
            g.bench_function(format!("col_{}", COLUMNS[col]), |b| {
                b.iter(|| {
                    let mut n = 0;
                    for v in &vals {
                        n += usize::from(
                            content.mask_value(&content_plan, col, v, &mut scratch)
                                != MaskOutcome::Unchanged,
                        );
                    }
                    black_box(n)
                })
            });
        }
    }
    g.throughput(Throughput::Bytes(bytes_of(&clean)));
    g.bench_function("clean_rows_all_detectors", |b| {
        b.iter(|| {
            black_box(mask_rows(
                &content,
                &content_plan,
                black_box(&clean),
                &mut scratch,
            ))
        })
    });
    g.bench_function("clean_rows_column_names_only", |b| {
        b.iter(|| {
            black_box(mask_rows(
                &by_name,
                &name_plan,
                black_box(&clean),
                &mut scratch,
            ))
        })
    });

    let copy_text: String = clean
        .iter()
        .map(|row| row.join("\t"))
        .collect::<Vec<_>>()
        .join("\n");
    g.throughput(Throughput::Bytes(copy_text.len() as u64));
    g.bench_function("clean_copy_text_all_detectors", |b| {
        b.iter(|| {
            let mut changed = 0;
            for chunk in black_box(copy_text.as_bytes()).chunks(64 * 1024) {
                changed += usize::from(
                    content.mask_text(&content_plan, chunk, &mut scratch) != MaskOutcome::Unchanged,
                );
            }
            black_box(changed)
        })
    });

    let prose: String = clean
        .iter()
        .map(|row| row[6..].join("\t"))
        .collect::<Vec<_>>()
        .join("\n");
    g.throughput(Throughput::Bytes(prose.len() as u64));
    g.bench_function("clean_prose_copy_text_all_detectors", |b| {
        b.iter(|| {
            let mut changed = 0;
            for chunk in black_box(prose.as_bytes()).chunks(64 * 1024) {
                changed += usize::from(
                    content.mask_text(&content_plan, chunk, &mut scratch) != MaskOutcome::Unchanged,
                );
            }
            black_box(changed)
        })
    });

    // The same COPY framing over the PII-dense rows: candidates in every
    // row, so the exact detectors run on their chainable runs only.
    let dense_text: String = dense
        .iter()
        .map(|row| row.join("\t"))
        .collect::<Vec<_>>()
        .join("\n");
    g.throughput(Throughput::Bytes(dense_text.len() as u64));
    g.bench_function("pii_dense_copy_text_all_detectors", |b| {
        b.iter(|| {
            let mut changed = 0;
            for chunk in black_box(dense_text.as_bytes()).chunks(64 * 1024) {
                changed += usize::from(
                    content.mask_text(&content_plan, chunk, &mut scratch) != MaskOutcome::Unchanged,
                );
            }
            black_box(changed)
        })
    });

    g.throughput(Throughput::Bytes(bytes_of(&dense)));
    g.bench_function("pii_dense_rows_all_detectors", |b| {
        b.iter(|| {
            black_box(mask_rows(
                &content,
                &content_plan,
                black_box(&dense),
                &mut scratch,
            ))
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .sample_size(20);
    targets = bench_mask
}
criterion_main!(benches);
