//! End-to-end masking through the PostgreSQL gateway: by column name, by
//! content, in COPY TO STDOUT, and exemptions by group.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pggw::PgGateway;

const MASKING: &str = r#"
[[target.masking.rules]]
name = "ssn-column"
columns = ["ssn", "*_ssn"]
style = "partial"
keep = 4
exempt_groups = ["auditors"]

[[target.masking.rules]]
name = "pii-content"
detectors = ["email", "us_ssn", "card"]
style = "redact"
replacement = "[redacted]"
exempt_groups = ["auditors"]
"#;

const SSN: &str = "123-45-6789";
const EMAIL: &str = "alice@example.com";
const CARD: &str = "4111 1111 1111 1111";

fn setup(name: &str) -> PgGateway {
    let g = PgGateway::builder().tables(MASKING).start(name);
    g.direct(&format!(
        "create table customers (id int, name text, email text, ssn text, note text);
         insert into customers values
           (1, 'Alice', '{EMAIL}', '{SSN}', 'card {CARD} on file'),
           (2, 'Bob', 'bob@example.org', '987-65-4320', 'nothing sensitive');
         alter table customers owner to {}",
        g.role
    ));
    g
}

#[test]
fn masked_by_column_name_and_by_content() {
    let g = setup("maskcols");
    let t = g.token("ci-job", "ci", "10m");
    let (ok, out, err) = g.psql(&t, "select ssn from customers where id = 1");
    assert!(ok, "{err}");
    assert_eq!(
        out, "***-**-6789",
        "partial keeps the last 4 and the separators"
    );
    // Renamed column: the statement names `ssn`, so its alias is masked
    // by the column rule too (see README, derived columns).
    let (ok, out, _) = g.psql(&t, "select ssn as x from customers where id = 1");
    assert!(ok);
    assert_eq!(out, "***-**-6789");
    let (_, out, _) = g.psql(&t, "select email, note from customers where id = 1");
    assert_eq!(out, "[redacted]|card [redacted] on file");
    // Clean values pass untouched.
    let (_, out, _) = g.psql(&t, "select name, note from customers where id = 2");
    assert_eq!(out, "Bob|nothing sensitive");
    // The stored data is unchanged (direct path).
    assert_eq!(g.direct("select ssn from customers where id = 1"), SSN);
}

#[test]
fn copy_to_stdout_rows_are_masked() {
    let g = setup("maskcopy");
    let t = g.token("ci-job", "ci", "10m");
    for fmt in ["", "with (format csv)"] {
        let (ok, out, err) = g.psql(
            &t,
            &format!("copy (select * from customers order by id) to stdout {fmt}"),
        );
        assert!(ok, "{err}");
        assert!(
            !out.contains(SSN) && !out.contains(EMAIL) && !out.contains("4111"),
            "{fmt}: {out}"
        );
        assert!(out.contains("[redacted]"), "{out}");
        assert!(
            out.contains("Alice") && out.contains("nothing sensitive"),
            "{out}"
        );
    }
}

#[test]
fn an_exempt_group_sees_clear_values() {
    let g = setup("maskexempt");
    let t = g.token("auditor-1", "ci,auditors", "10m");
    let (ok, out, err) = g.psql(&t, "select ssn, email from customers where id = 1");
    assert!(ok, "{err}");
    assert_eq!(out, format!("{SSN}|{EMAIL}"));
}

#[test]
fn extended_protocol_results_are_masked_too() {
    let g = setup("maskext");
    let t = g.token("ci-job", "ci", "10m");
    // psycopg 3 sends Parse/Bind/Describe/Execute/Sync, binary where it can.
    let out = common::python(
        "import psycopg, sys\n\
         with psycopg.connect(sys.argv[1]) as c:\n\
         \x20   for binary in (False, True):\n\
         \x20       cur = c.cursor(binary=binary)\n\
         \x20       cur.execute('select ssn, email, id from customers where id = %s', (1,))\n\
         \x20       print('|'.join(str(v) for v in cur.fetchone()))\n",
        &[&g.conninfo(&t)],
    );
    assert_eq!(out, "***-**-6789|[redacted]|1\n***-**-6789|[redacted]|1");
}
