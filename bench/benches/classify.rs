//! Criterion bench: SQL classification and command-policy evaluation.
//!
//! Compares, on one realistic 20-statement mix (short OLTP reads and writes
//! with WHERE, a few long analytical queries, some DDL and session
//! statements), per statement:
//! - `lex`: the lexer alone;
//! - `classify`: lexer + classifier (the issue's goal: >= 3 M statements/s
//!   per core);
//! - `evaluate`: full `Policy::evaluate` with a 10-rule policy (classes,
//!   function and relation globs, keywords, one regex);
//! - `classify_batch`: the same 20 statements joined by `; ` into one
//!   simple-query string, classified in one call (statement splitting).
//!
//! Throughput is in statements (`Throughput::Elements`), one core.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tollgate::policy::rules::{
    ActionKind, Caller, EvalScratch, Policy, PolicyConfig, PreparedVerdicts, RuleConfig,
};
use tollgate_codecs::sql::{Classifier, Dialect, tokenize};

const MIX: &[&str] = &[
    "SELECT id, email, created_at FROM users WHERE id = $1",
    "SELECT * FROM orders WHERE customer_id = $1 AND status = 'open' ORDER BY created_at DESC LIMIT 20",
    "INSERT INTO events (kind, payload, at) VALUES ($1, $2, now())",
    "UPDATE accounts SET balance = balance - $1, updated_at = now() WHERE id = $2",
    "SELECT u.id, u.name, count(o.id) FROM users u LEFT JOIN orders o ON o.user_id = u.id WHERE u.id = $1 GROUP BY u.id, u.name",
    "DELETE FROM sessions WHERE expires_at < now()",
    "BEGIN",
    "SELECT value FROM settings WHERE key = 'feature.flags'",
    "INSERT INTO order_items (order_id, sku, qty, price) VALUES ($1, $2, $3, $4) RETURNING id",
    "COMMIT",
    "UPDATE inventory SET qty = qty - 1 WHERE sku = $1 AND qty > 0",
    "SELECT 1",
    "WITH monthly AS (SELECT date_trunc('month', o.created_at) AS month, c.region, sum(oi.qty * oi.price) AS revenue, count(DISTINCT o.customer_id) AS buyers FROM orders o JOIN order_items oi ON oi.order_id = o.id JOIN customers c ON c.id = o.customer_id WHERE o.created_at >= now() - interval '12 months' AND o.status IN ('paid', 'shipped') GROUP BY 1, 2), ranked AS (SELECT month, region, revenue, buyers, rank() OVER (PARTITION BY month ORDER BY revenue DESC) AS r FROM monthly) SELECT month, region, revenue, buyers FROM ranked WHERE r <= 5 ORDER BY month, r",
    "SELECT p.id, p.name, coalesce(s.total, 0) AS sold, coalesce(r.avg_rating, 0) AS rating /* dashboard */ FROM products p LEFT JOIN (SELECT sku, sum(qty) AS total FROM order_items GROUP BY sku) s ON s.sku = p.sku LEFT JOIN (SELECT product_id, avg(stars) AS avg_rating FROM reviews WHERE created_at > now() - interval '90 days' GROUP BY product_id) r ON r.product_id = p.id WHERE p.active AND p.category_id = ANY($1) ORDER BY sold DESC NULLS LAST LIMIT 100",
    "SELECT c.id, c.email, max(o.created_at) AS last_order, sum(o.total) FILTER (WHERE o.status = 'paid') AS lifetime FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.created_at BETWEEN $1 AND $2 GROUP BY c.id, c.email HAVING sum(o.total) > 1000 ORDER BY lifetime DESC",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders (customer_id, created_at)",
    "ALTER TABLE customers ADD COLUMN marketing_opt_in boolean NOT NULL DEFAULT false",
    "CREATE TABLE IF NOT EXISTS audit_log (id bigserial PRIMARY KEY, actor text NOT NULL, action text NOT NULL, at timestamptz DEFAULT now())",
    "SET statement_timeout = '5s'",
    "SELECT id FROM jobs WHERE state = 'queued' ORDER BY priority DESC LIMIT 1 FOR UPDATE SKIP LOCKED",
];

/// A rule with the given name, action and criteria (the bench crate has no
/// TOML parser; this is the struct the `[[target.policy.rules]]` table becomes).
fn rule(
    name: &str,
    action: ActionKind,
    classes: &[&str],
    functions: &[&str],
    relations: &[&str],
) -> RuleConfig {
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    RuleConfig {
        name: name.to_string(),
        action,
        message: None,
        classes: owned(classes),
        preset: None,
        functions: owned(functions),
        relations: owned(relations),
        keywords: Vec::new(),
        regex: None,
        subjects: Vec::new(),
        groups: Vec::new(),
        shadow: false,
    }
}

/// Ten rules of every kind: classes, function and relation globs, keywords, a regex.
fn ten_rule_policy() -> PolicyConfig {
    use ActionKind::{Approve, Audit, Block};
    let mut sleep = rule("no-sleep", Block, &["select"], &["pg_sleep*"], &[]);
    sleep.keywords = vec!["pg_sleep".into(), "dbms_lock".into()];
    let mut copy_file = rule("no-copy-file", Block, &["copy"], &[], &[]);
    copy_file.regex = Some(r"^COPY .* (FROM|TO) \?".into());
    PolicyConfig {
        unclassified: Block,
        unmatched: ActionKind::Allow,
        rules: vec![
            rule(
                "no-destructive",
                Block,
                &[
                    "drop_database",
                    "drop_schema",
                    "truncate",
                    "delete_without_where",
                    "update_without_where",
                    "copy_to_program",
                    "copy_from_program",
                    "alter_system",
                ],
                &[],
                &[],
            ),
            rule(
                "no-file-access",
                Block,
                &[],
                &[
                    "pg_read_file",
                    "pg_read_binary_file",
                    "lo_import",
                    "lo_export",
                    "dblink*",
                    "pg_ls_dir",
                ],
                &[],
            ),
            rule(
                "no-kill",
                Block,
                &[],
                &["pg_terminate_backend", "pg_cancel_backend"],
                &[],
            ),
            rule(
                "roles-need-approval",
                Approve,
                &[
                    "create_role",
                    "alter_role",
                    "drop_role",
                    "grant",
                    "revoke",
                    "set_role",
                ],
                &[],
                &[],
            ),
            rule(
                "payments-approval",
                Approve,
                &["update", "delete", "insert"],
                &[],
                &["payments.*", "*.cards"],
            ),
            rule(
                "secrets-read-audit",
                Audit,
                &[],
                &[],
                &["*.secrets", "vault.*"],
            ),
            rule("ddl-audit", Audit, &["create", "alter", "drop"], &[], &[]),
            sleep,
            rule("no-lock-table", Block, &["lock"], &[], &[]),
            copy_file,
        ],
        mode: Default::default(),
    }
}

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

    let policy = match Policy::compile(&ten_rule_policy()) {
        Ok(p) => p,
        Err(e) => panic!("bench policy: {e}"),
    };
    let groups = vec!["dev".to_string()];
    let caller = Caller {
        subject: "ci-job",
        groups: &groups,
    };
    let mut scratch = EvalScratch::new();
    let mut prepared = PreparedVerdicts::new();
    group.bench_function("evaluate_10_rules", |b| {
        b.iter(|| {
            for sql in MIX {
                let verdict = policy.evaluate(
                    black_box(sql.as_bytes()),
                    Dialect::POSTGRES,
                    &caller,
                    &mut scratch,
                    &mut prepared,
                );
                black_box(verdict.kind());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
