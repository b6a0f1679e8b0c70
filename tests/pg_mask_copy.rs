//! COPY TO STDOUT masked by column name (issue 11 item 4): the gateway has
//! the server describe what each COPY sends, on the session's own
//! connection, and masks the rows field by field in text, CSV and binary.
//! Real PostgreSQL, psycopg's copy API and psql's `\copy`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pggw::PgGateway;

/// Name rules only: no content detector could find these values.
const MASKING: &str = r#"
[[target.masking.rules]]
name = "ssn-column"
columns = ["ssn", "tax_*"]
style = "partial"
keep = 4
"#;

const SSN: &str = "123-45-6789";
const MASKED: &str = "***-**-6789";
const TAX: &str = "987654321";

fn setup(name: &str) -> PgGateway {
    let g = PgGateway::builder().tables(MASKING).start(name);
    g.direct(&format!(
        "create table customers (id int, name text, ssn text, tax_id bigint);
         insert into customers values (1, 'Alice', '{SSN}', {TAX}),
           (2, E'Bob\\t\"the, \\\\builder\"', null, null);
         create view v_customers as select id, ssn, name from customers;
         create schema app;
         create table app.\"Customers\" (id int, ssn text, name text);
         insert into app.\"Customers\" values (1, '{SSN}', 'Alice');
         create schema other;
         create table other.customers (ssn text, id int, name text);
         insert into other.customers values ('{SSN}', 1, 'Alice');
         create table gen (id int, ssn text, twice int generated always as (id * 2) stored);
         insert into gen (id, ssn) values (1, '{SSN}');
         grant usage on schema app, other to {r};
         grant select on all tables in schema public, app, other to {r};",
        r = g.role
    ));
    g
}

/// Runs each `[sql, search_path]` through psycopg's copy API and prints,
/// per COPY, the rows as lists of fields (text and CSV read by the
/// standard parsers, binary by a reader of the format).
const COPY_PY: &str = r#"
import csv, io, json, struct, sys
import psycopg
def binary_rows(data):
    assert data[:11] == b'PGCOPY\n\xff\r\n\x00', data[:11]
    ext = struct.unpack('>I', data[15:19])[0]
    at, rows = 19 + ext, []
    while True:
        (n,) = struct.unpack('>h', data[at:at + 2]); at += 2
        if n == -1:
            assert at == len(data)
            return rows
        row = []
        for _ in range(n):
            (l,) = struct.unpack('>i', data[at:at + 4]); at += 4
            if l == -1:
                row.append(None)
            else:
                row.append(data[at:at + l].hex() if l == 8 else data[at:at + l].decode()); at += l
        rows.append(row)
out = []
with psycopg.connect(sys.argv[1], autocommit=True) as c:
    for sql, path in json.loads(sys.argv[2]):
        c.execute('set search_path = ' + path)
        data = b''
        with c.cursor().copy(sql) as cp:
            for chunk in cp:
                data += bytes(chunk)
        if 'binary' in sql:
            rows = binary_rows(data)
        elif 'csv' in sql:
            rows = [r for r in csv.reader(io.StringIO(data.decode()))]
        else:
            rows = [[None if f == '\\N' else f.replace('\\t', '\t').replace('\\\\', '\\')
                     for f in line.split('\t')] for line in data.decode().splitlines()]
        out.append({'sql': sql, 'rows': rows, 'raw': data.decode('latin-1')})
    # Typed binary decoding of masked values (psycopg's own loaders).
    c.execute('set search_path = public')
    with c.cursor().copy('copy customers to stdout (format binary)') as cp:
        cp.set_types(['int4', 'text', 'text', 'int8'])
        out.append({'typed': [list(r) for r in cp.rows()]})
print(json.dumps(out))
"#;

#[test]
fn copy_to_stdout_is_masked_by_column_name_in_every_format() {
    let g = setup("maskcopycols");
    let t = g.token("ci-job", "ci", "10m");
    let forms: &[(&str, &str, usize)] = &[
        // (COPY target, search_path, index of the masked column)
        ("customers", "public", 2),
        ("customers (ssn, name)", "public", 0),
        (
            "(select ssn as x, name from customers order by id)",
            "public",
            0,
        ),
        (r#"app."Customers""#, "public", 1),
        ("(select * from v_customers order by id)", "public", 1),
        // Resolved where the server resolves it: other.customers, whose
        // ssn is the first column (public.customers has it third).
        ("customers", "other, public", 0),
    ];
    let mut cases = Vec::new();
    for (target, path, _) in forms {
        for fmt in ["", " (format csv, header)", " (format binary)", " (header)"] {
            cases.push(serde_json::json!([
                format!("copy {target} to stdout{fmt}"),
                path
            ]));
        }
    }
    let out = common::python(
        COPY_PY,
        &[
            &g.conninfo(&t),
            &serde_json::Value::Array(cases).to_string(),
        ],
    );
    let results: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(results.len(), forms.len() * 4 + 1, "{out}");
    for (i, r) in results[..forms.len() * 4].iter().enumerate() {
        let (_, _, col) = forms[i / 4];
        let sql = r["sql"].as_str().unwrap();
        let raw = r["raw"].as_str().unwrap();
        assert!(!raw.contains(SSN) && !raw.contains(TAX), "{sql}: {raw:?}");
        let mut rows: Vec<Vec<serde_json::Value>> =
            serde_json::from_value(r["rows"].clone()).unwrap();
        if sql.contains("header") {
            let header = rows.remove(0);
            assert!(header.iter().any(|h| h == "name"), "{sql}: {header:?}");
        }
        assert_eq!(rows[0][col], MASKED, "{sql}: {rows:?}");
        assert!(
            rows[0].iter().any(|v| v == "Alice"),
            "{sql}: other columns pass: {rows:?}"
        );
        let width = rows[0].len();
        assert!(rows.iter().all(|r| r.len() == width), "{sql}: {rows:?}");
        if i < 4 {
            // `copy customers`: escapes and quoting survive the re-encoding
            // of the row; the bigint is masked to a value valid for its type.
            let zero = if sql.contains("binary") {
                "0000000000000000"
            } else {
                "0"
            };
            assert_eq!(rows[0][3], zero, "{sql}: {rows:?}");
            assert_eq!(rows[1][1], "Bob\t\"the, \\builder\"", "{sql}: {rows:?}");
            for v in &rows[1][2..] {
                assert!(v.is_null() || v == "", "{sql}: NULL stays NULL: {rows:?}");
            }
        }
    }
    let typed = &results[forms.len() * 4]["typed"];
    assert_eq!(
        typed[0],
        serde_json::json!([1, "Alice", MASKED, 0]),
        "{typed}"
    );
    // The stored data is unchanged.
    assert_eq!(g.direct("select ssn from customers where id = 1"), SSN);
}

#[test]
fn psql_backslash_copy_is_masked_by_column_name() {
    let g = setup("maskcopypsql");
    let t = g.token("ci-job", "ci", "10m");
    let (ok, out, err) = g.psql_script(
        &t,
        "\\copy customers to stdout\n\
         \\copy (select id, ssn from customers order by id) to stdout with csv\n\
         \\copy app.\"Customers\" (ssn) to stdout\n",
    );
    assert!(ok, "{err}");
    assert!(!out.contains(SSN), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            &format!("1\tAlice\t{MASKED}\t0")[..],
            "2\tBob\\t\"the, \\\\builder\"\t\\N\t\\N",
            &format!("1,{MASKED}")[..],
            "2,",
            MASKED,
        ],
        "{out}"
    );
}

#[test]
fn a_copy_whose_columns_cannot_be_known_is_refused() {
    let g = setup("maskcopyrefuse");
    let t = g.token("ci-job", "ci", "10m");
    // Several statements: the COPY's names resolve after the ones before it.
    let (ok, out, err) = g.psql(&t, "select 1; copy customers to stdout");
    assert!(!ok && !out.contains(SSN), "{out}");
    assert!(
        err.contains("cannot mask this COPY by column name"),
        "{err}"
    );
    // An option the gateway does not follow.
    let (ok, out, err) = g.psql(&t, "copy customers to stdout (encoding 'UTF8')");
    assert!(!ok && !out.contains(SSN), "{out}");
    assert!(err.contains("encoding"), "{err}");
    // A generated column: COPY leaves it out, the description has it.
    let (ok, out, err) = g.psql(&t, "copy gen to stdout");
    assert!(!ok && !out.contains(SSN), "{out}");
    assert!(
        err.contains("cannot tell which columns this COPY sends"),
        "{err}"
    );
    // Named columns work there.
    let (ok, out, err) = g.psql(&t, "copy gen (id, ssn) to stdout");
    assert!(ok, "{err}");
    assert_eq!(out, format!("1\t{MASKED}"));
}

#[test]
fn a_failed_copy_gets_its_own_error_once_and_the_session_goes_on() {
    let g = setup("maskcopyerr");
    let t = g.token("ci-job", "ci", "10m");
    let (_, out, err) = g.psql_script(
        &t,
        "copy nosuch to stdout;\n\
         select 42;\n\
         begin;\n\
         copy (select nosuch from customers) to stdout;\n\
         rollback;\n\
         copy customers (ssn) to stdout;\n",
    );
    assert_eq!(
        err.matches("relation \"nosuch\" does not exist").count(),
        1,
        "{err}"
    );
    assert_eq!(
        err.matches("column \"nosuch\" does not exist").count(),
        1,
        "{err}"
    );
    assert!(!err.contains("current transaction is aborted"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.contains("ERROR")).count(),
        2,
        "{err}"
    );
    assert!(
        out.contains("42") && out.contains(MASKED) && !out.contains(SSN),
        "{out}"
    );
}
