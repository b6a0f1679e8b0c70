//! Masking follows the data and keeps it valid: typed placeholders for
//! non-text columns, arrays and records in text and binary formats, columns
//! derived from a masked one, JSON keys, and the server's own texts
//! (errors, notices, NOTIFY payloads) — through psycopg (text and binary),
//! asyncpg and tokio-postgres, every row decoded without error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pggw::PgGateway;

const RULES: &str = r#"
[[target.masking.rules]]
name = "by-name"
columns = ["ssn", "salary", "born"]
style = "redact"

[[target.masking.rules]]
name = "content"
detectors = ["email"]
style = "redact"
replacement = "[redacted]"
"#;

const SSN: &str = "123-45-6789";
const EMAIL: &str = "alice@example.com";
const SALARY: &str = "987654";

fn setup(name: &str) -> PgGateway {
    setup_with(name, "")
}

fn setup_with(name: &str, extra: &str) -> PgGateway {
    let g = PgGateway::builder()
        .tables(&format!("{RULES}{extra}"))
        .start(name);
    g.direct(&format!(
        "create table customers (id int, name text, email text, ssn text, salary bigint, born date);
         insert into customers values
           (1, 'Alice', '{EMAIL}', '{SSN}', {SALARY}, '1990-05-17'),
           (2, 'Bob', 'bob@example.org', '987-65-4320', 123456, '1985-01-02');
         alter table customers owner to {}",
        g.role
    ));
    g
}

fn clean(out: &str) {
    for secret in [
        SSN,
        EMAIL,
        SALARY,
        "1990-05-17",
        "987-65-4320",
        "bob@example.org",
    ] {
        assert!(!out.contains(secret), "{secret} in clear: {out}");
    }
}

#[test]
fn typed_columns_stay_valid_in_every_client() {
    let g = setup("typed");
    let t = g.token("ci-job", "ci", "10m");
    // psycopg, text and binary: a bigint and a date masked by name decode.
    let out = common::python(
        "import psycopg, sys\n\
         with psycopg.connect(sys.argv[1]) as c:\n\
         \x20   for binary in (False, True):\n\
         \x20       cur = c.cursor(binary=binary)\n\
         \x20       cur.execute('select id, salary, born, ssn from customers order by id')\n\
         \x20       for r in cur.fetchall():\n\
         \x20           print(repr(r))\n",
        &[&g.conninfo(&t)],
    );
    clean(&out);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "(1, 0, datetime.date(2000, 1, 1), '****')",
            "(2, 0, datetime.date(2000, 1, 1), '****')"
        ]
        .repeat(2)
    );
    // asyncpg: binary everywhere, statement cache.
    let out = common::python(
        "import asyncio, asyncpg, sys\n\
         async def main():\n\
         \x20   c = await asyncpg.connect(sys.argv[1], ssl=False)\n\
         \x20   for _ in range(2):\n\
         \x20       for r in await c.fetch('select id, salary, born from customers order by id'):\n\
         \x20           print(tuple(r))\n\
         \x20   await c.close()\n\
         asyncio.run(main())\n",
        &[&format!(
            "postgresql://ci-job:{t}@127.0.0.1:{}/{}",
            g.port, g.db
        )],
    );
    clean(&out);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "(1, 0, datetime.date(2000, 1, 1))",
            "(2, 0, datetime.date(2000, 1, 1))"
        ]
        .repeat(2)
    );
    // tokio-postgres: typed getters.
    let conninfo = g.conninfo(&t);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
            .await
            .unwrap();
        let conn = tokio::spawn(conn);
        for _ in 0..2 {
            let rows = client
                .query("select id, salary, ssn from customers order by id", &[])
                .await
                .unwrap();
            assert_eq!(rows.len(), 2);
            for r in &rows {
                assert_eq!(r.get::<_, i64>(1), 0);
                assert_eq!(r.get::<_, &str>(2), "****");
            }
        }
        drop(client);
        let _ = conn.await;
    });
}

#[test]
fn arrays_and_records_are_masked_in_text_and_binary() {
    let g = setup("arrays");
    let t = g.token("ci-job", "ci", "10m");
    let out = common::python(
        "import psycopg, sys\n\
         with psycopg.connect(sys.argv[1]) as c:\n\
         \x20   for binary in (False, True):\n\
         \x20       cur = c.cursor(binary=binary)\n\
         \x20       cur.execute(\"select array[email, name] as a, row(email, id) as r, array[[note]] as n from (select *, 'x ' || email as note from customers) s where id = 1\")\n\
         \x20       print(repr(cur.fetchone()))\n",
        &[&g.conninfo(&t)],
    );
    clean(&out);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        lines[0],
        "(['[redacted]', 'Alice'], ('[redacted]', '1'), [['x [redacted]']])"
    );
    assert_eq!(
        lines[1],
        "(['[redacted]', 'Alice'], ('[redacted]', 1), [['x [redacted]']])"
    );
    // asyncpg decodes binary arrays itself.
    let out = common::python(
        "import asyncio, asyncpg, sys\n\
         async def main():\n\
         \x20   c = await asyncpg.connect(sys.argv[1], ssl=False)\n\
         \x20   print(await c.fetchval('select array_agg(email order by id) from customers'))\n\
         \x20   print(await c.fetchval('select array[salary] from customers where id = 1'))\n\
         \x20   await c.close()\n\
         asyncio.run(main())\n",
        &[&format!(
            "postgresql://ci-job:{t}@127.0.0.1:{}/{}",
            g.port, g.db
        )],
    );
    clean(&out);
    assert_eq!(out, "['[redacted]', '[redacted]']\n[0]");
}

#[test]
fn derived_columns_are_masked() {
    let g = setup("derived");
    let t = g.token("ci-job", "ci", "10m");
    for sql in [
        "select array_agg(ssn order by id) from customers",
        "select upper(ssn) from customers where id = 1",
        "select ssn || '' from customers where id = 1",
        "select ssn as x from customers where id = 1",
        "select ssn x from customers where id = 1",
        "select jsonb_build_object('ssn', ssn) from customers where id = 1",
        "select row_to_json(c) from customers c where id = 1",
        "select json_agg(c) from customers c",
        "select to_jsonb(c) from customers c where id = 1",
        "select salary + 1 from customers where id = 1",
        // `json` keeps duplicate keys as written: a JSON parser that keeps
        // the last one never sees the first.
        "select json_build_object('n', json_build_object('ssn', ssn), 'n', '{}'::json) from customers where id = 1",
        "select json_build_object('n', row_to_json(c), 'n', 1) from customers c where id = 1",
    ] {
        let (ok, out, err) = g.psql(&t, sql);
        assert!(ok, "{sql}: {err}");
        clean(&out);
        assert!(
            !out.contains("6789") && !out.contains("987655"),
            "{sql}: {out}"
        );
    }
    // JSON stays JSON, with the masked keys' values masked and the rest kept.
    let out = common::python(
        "import psycopg, sys, json\n\
         with psycopg.connect(sys.argv[1]) as c:\n\
         \x20   for binary in (False, True):\n\
         \x20       cur = c.cursor(binary=binary)\n\
         \x20       cur.execute('select row_to_json(c), to_jsonb(c) from customers c where id = 1')\n\
         \x20       for doc in cur.fetchone():\n\
         \x20           print(json.dumps(doc, sort_keys=True))\n",
        &[&g.conninfo(&t)],
    );
    clean(&out);
    let want = r#"{"born": "****", "email": "[redacted]", "id": 1, "name": "Alice", "salary": "****", "ssn": "****"}"#;
    assert_eq!(out, [want; 4].join("\n"));
    // A plain column next to a masked reference keeps its value.
    let (_, out, _) = g.psql(&t, "select name from customers where ssn = '123-45-6789'");
    assert_eq!(out, "Alice");
}

#[test]
fn derived_columns_can_be_refused() {
    let g = setup_with(
        "derived_refuse",
        "[target.masking]\nunknown_origin = \"refuse\"\n",
    );
    let t = g.token("ci-job", "ci", "10m");
    let (ok, out, err) = g.psql(&t, "select upper(ssn) from customers where id = 1");
    assert!(!ok);
    clean(&out);
    assert!(
        err.contains("cannot tell where result column \"upper\" comes from")
            && err.contains("\"ssn\""),
        "{err}"
    );
    // Plain columns next to a masked reference are still served.
    let (ok, out, err) = g.psql(
        &t,
        "select name, ssn from customers where ssn = '123-45-6789'",
    );
    assert!(ok, "{err}");
    assert_eq!(out, "Alice|****");
}

#[test]
fn errors_notices_and_notifications_are_masked() {
    let g = setup("texts");
    let t = g.token("ci-job", "ci", "10m");
    let (ok, _, err) = g.psql(&t, &format!("select '{EMAIL}'::int"));
    assert!(!ok);
    // psql echoes the client's own statement (LINE 1: …); the server's
    // message is what must be masked.
    let error = err.lines().find(|l| l.starts_with("ERROR:")).unwrap();
    assert_eq!(
        error, "ERROR:  invalid input syntax for type integer: \"[redacted]\"",
        "{err}"
    );
    let (ok, _, err) = g.psql(
        &t,
        &format!("do $$begin raise notice 'hello %', '{EMAIL}'; end$$"),
    );
    assert!(ok, "{err}");
    assert!(
        err.contains("hello [redacted]") && !err.contains(EMAIL),
        "{err}"
    );
    let out = common::python(
        "import psycopg, sys\n\
         with psycopg.connect(sys.argv[1], autocommit=True) as c:\n\
         \x20   c.execute('listen ch')\n\
         \x20   c.execute(\"select pg_notify('ch', 'mail ' || email) from customers where id = 1\")\n\
         \x20   for n in c.notifies(timeout=10, stop_after=1):\n\
         \x20       print(n.channel, n.payload)\n",
        &[&g.conninfo(&t)],
    );
    assert_eq!(out, "ch mail [redacted]");
}
