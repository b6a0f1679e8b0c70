//! Fuzzes the SQL lexer and classifier in every dialect mode: no panic,
//! every token inside the input and in order, every statement's span and
//! token range inside the input, nested statements inside their parent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_codecs::sql::{Classifier, Dialect, MySqlMode, NO_PARENT, PgMode, tokenize};

const DIALECTS: [Dialect; 4] = [
    Dialect::POSTGRES,
    Dialect::Postgres(PgMode {
        standard_conforming_strings: false,
    }),
    Dialect::MYSQL,
    Dialect::MySql(MySqlMode {
        ansi_quotes: true,
        backslash_escapes: false,
        server_version: 80036,
        mariadb: true,
    }),
];

fuzz_target!(|data: &[u8]| {
    let mut tokens = Vec::new();
    let mut classifier = Classifier::new();
    for dialect in DIALECTS {
        tokenize(data, dialect, &mut tokens).unwrap_or_default();
        let mut last = 0u32;
        for t in &tokens {
            assert!(t.start >= last && t.end >= t.start && t.end as usize <= data.len());
            last = t.end;
        }
        let classified = classifier.classify(data, dialect);
        let statements = classified.statements();
        for s in statements {
            assert!(s.span.end as usize <= data.len() && s.span.start <= s.span.end);
            if s.parent != NO_PARENT {
                let parent = statements[s.parent as usize];
                assert!(parent.span.start <= s.span.start && s.span.end <= parent.span.end);
            }
        }
    }
});
