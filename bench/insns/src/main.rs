//! Runs the classify criterion bench's workload (`bench/benches/classify.rs`)
//! a given number of times and exits, so that an instruction counter
//! (`perf stat`, `valgrind --tool=callgrind`) can measure it: the difference
//! between two iteration counts divided by the extra statements is the cost
//! of one statement, without start-up, warm-up or the VM's clock in it.
//!
//! Usage: `tollgate-insns <lex|classify|classify_batch> <iterations>`.
//! Only the API that every measured commit has is used (`tokenize`,
//! `Classifier::classify`), so bench/insns.sh builds this file unchanged
//! against old commits' codecs.

use std::hint::black_box;
use std::process::ExitCode;

use tollgate_codecs::sql::{Classifier, Dialect, tokenize};

mod mix;
use mix::MIX;

/// Which part of the bench to repeat.
#[derive(Clone, Copy)]
enum Mode {
    Lex,
    Classify,
    ClassifyBatch,
}

/// Repeats `mode` over the mix `iterations` times; returns a checksum so the
/// work cannot be optimised away and two builds can be seen to agree.
fn run(mode: Mode, iterations: u64) -> usize {
    let mut sum = 0usize;
    let mut tokens = Vec::new();
    let mut classifier = Classifier::new();
    let batch = MIX.join("; ");
    for _ in 0..iterations {
        match mode {
            Mode::Lex => {
                for sql in MIX {
                    let _ = tokenize(black_box(sql.as_bytes()), Dialect::POSTGRES, &mut tokens);
                    sum = sum.wrapping_add(black_box(tokens.len()));
                }
            }
            Mode::Classify => {
                for sql in MIX {
                    let classified =
                        classifier.classify(black_box(sql.as_bytes()), Dialect::POSTGRES);
                    sum = sum.wrapping_add(black_box(classified.statements().len()));
                }
            }
            Mode::ClassifyBatch => {
                let classified =
                    classifier.classify(black_box(batch.as_bytes()), Dialect::POSTGRES);
                sum = sum.wrapping_add(black_box(classified.statements().len()));
            }
        }
    }
    sum
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match args.first().map(String::as_str) {
        Some("lex") => Mode::Lex,
        Some("classify") => Mode::Classify,
        Some("classify_batch") => Mode::ClassifyBatch,
        _ => {
            eprintln!("usage: tollgate-insns <lex|classify|classify_batch> <iterations>");
            return ExitCode::FAILURE;
        }
    };
    let Some(iterations) = args.get(1).and_then(|n| n.parse::<u64>().ok()) else {
        eprintln!("usage: tollgate-insns <lex|classify|classify_batch> <iterations>");
        return ExitCode::FAILURE;
    };
    println!("checksum {}", run(mode, iterations));
    ExitCode::SUCCESS
}
