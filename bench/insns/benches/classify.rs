//! Criterion bench: the lexer and classifier parts of
//! `bench/benches/classify.rs` (same mix, same group and function names,
//! same throughput unit: statements), built against the codecs crate of any
//! commit by bench/insns.sh, so old and new binaries can be timed back to
//! back in the same minutes on a noisy machine.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tollgate_codecs::sql::{Classifier, Dialect, tokenize};

#[path = "../src/mix.rs"]
mod mix;
use mix::MIX;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("classify");
    group.throughput(Throughput::Elements(MIX.len() as u64));

    let mut tokens = Vec::new();
    group.bench_function("lex", |b| {
        b.iter(|| {
            for sql in MIX {
                let _ = tokenize(black_box(sql.as_bytes()), Dialect::POSTGRES, &mut tokens);
                black_box(tokens.len());
            }
        })
    });

    let mut classifier = Classifier::new();
    group.bench_function("classify", |b| {
        b.iter(|| {
            for sql in MIX {
                let classified = classifier.classify(black_box(sql.as_bytes()), Dialect::POSTGRES);
                black_box(classified.statements().len());
            }
        })
    });

    let batch = MIX.join("; ");
    group.bench_function("classify_batch", |b| {
        b.iter(|| {
            let classified = classifier.classify(black_box(batch.as_bytes()), Dialect::POSTGRES);
            black_box(classified.statements().len());
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
