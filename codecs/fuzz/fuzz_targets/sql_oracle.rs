//! The long run of the differential oracle (codecs/oracle): fuzzer input,
//! taken as text, must never find tollgate more permissive than
//! PostgreSQL's own parser. Needs the `oracle` feature (libpg_query):
//! `cargo +nightly fuzz run sql_oracle --features oracle`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_codecs::sql::Classifier;
use tollgate_sql_oracle::{Severity, check, generate};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut classifier = Classifier::new();
    // The input itself, then a generated script mutated by the input's
    // bytes, so the fuzzer also explores around the grammar's shapes.
    let mut rng = generate::Rng::new(
        data.iter()
            .fold(0u64, |h, &b| h.rotate_left(5) ^ u64::from(b)),
    );
    let generated = generate::script(&mut rng);
    let mutated = generate::mutate(&mut rng, &generated);
    for sql in [text, generated.as_str(), mutated.as_str()] {
        let outcome = check(&mut classifier, sql);
        if let Some(f) = outcome
            .findings
            .iter()
            .find(|f| f.severity == Severity::Permissive)
        {
            panic!("{} in {sql:?}", f.what);
        }
    }
});
