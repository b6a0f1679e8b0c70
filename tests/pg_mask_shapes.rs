//! Masking by column name on re-run prepared statements and portals: the
//! gateway must know the row shape of every statement and portal it relays
//! (asyncpg's and tokio-postgres's statement caches, psycopg's prepared
//! statements, raw named statements), and fail closed where it cannot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::BytesMut;
use common::pggw::PgGateway;
use common::pgwire::{Msg, Wire};
use tollgate_codecs::pg::{self, DataRow, ObjectKind};

/// The quickstart's rule: a name rule only, no content detector that could
/// catch the value by accident.
const BY_NAME: &str = r#"
[[target.masking.rules]]
name = "ssn-column"
columns = ["ssn"]
style = "partial"
keep = 4
"#;

const SSN: &str = "123-45-6789";
const MASKED: &str = "***-**-6789";

fn setup(name: &str, extra: &str) -> PgGateway {
    let g = PgGateway::builder()
        .tables(&format!("{BY_NAME}{extra}"))
        .start(name);
    g.direct(&format!(
        "create table customers (id int, name text, ssn text);
         insert into customers values (1, 'Alice', '{SSN}'), (2, 'Bob', '987-65-4320');
         alter table customers owner to {}",
        g.role
    ));
    g
}

#[test]
fn asyncpg_statement_cache_is_masked_on_every_execution() {
    let g = setup("shape_asyncpg", "");
    let t = g.token("ci-job", "ci", "10m");
    let out = common::python(
        "import asyncio, asyncpg, sys\n\
         async def main():\n\
         \x20   c = await asyncpg.connect(sys.argv[1], ssl=False)\n\
         \x20   for _ in range(4):\n\
         \x20       r = await c.fetchrow('select ssn, name, id from customers where id = $1', 1)\n\
         \x20       print(r['ssn'], r['name'], r['id'])\n\
         \x20   st = await c.prepare('select id, ssn from customers order by id')\n\
         \x20   for _ in range(2):\n\
         \x20       print([tuple(r) for r in await st.fetch()])\n\
         \x20   await c.close()\n\
         asyncio.run(main())\n",
        &[&format!(
            "postgresql://ci-job:{t}@127.0.0.1:{}/{}",
            g.port, g.db
        )],
    );
    assert!(!out.contains(SSN), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    for l in &lines[..4] {
        assert_eq!(*l, format!("{MASKED} Alice 1"));
    }
    for l in &lines[4..] {
        assert_eq!(*l, format!("[(1, '{MASKED}'), (2, '***-**-4320')]"));
    }
}

#[test]
fn tokio_postgres_prepared_binary_results_are_masked() {
    let g = setup("shape_tokio", "");
    let t = g.token("ci-job", "ci", "10m");
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
        let stmt = client
            .prepare("select id, ssn from customers where id = $1")
            .await
            .unwrap();
        for _ in 0..3 {
            // Binary results (tokio-postgres asks for binary everywhere).
            let rows = client.query(&stmt, &[&1i32]).await.unwrap();
            let ssn: &str = rows[0].get(1);
            assert_eq!(ssn, MASKED);
            let id: i32 = rows[0].get(0);
            assert_eq!(id, 1);
        }
        // Unprepared queries go through an unnamed prepared statement too.
        for _ in 0..2 {
            let row = client
                .query_one("select ssn from customers where id = 2", &[])
                .await
                .unwrap();
            assert_eq!(row.get::<_, &str>(0), "***-**-4320");
        }
        drop(client);
        let _ = conn.await;
    });
}

#[test]
fn psycopg_prepared_statements_are_masked() {
    let g = setup("shape_psycopg", "");
    let t = g.token("ci-job", "ci", "10m");
    let out = common::python(
        "import psycopg, sys\n\
         with psycopg.connect(sys.argv[1], prepare_threshold=0) as c:\n\
         \x20   for binary in (False, True, False, True):\n\
         \x20       cur = c.cursor(binary=binary)\n\
         \x20       cur.execute('select ssn, id from customers where id = %s', (1,))\n\
         \x20       print('|'.join(str(v) for v in cur.fetchone()))\n",
        &[&g.conninfo(&t)],
    );
    assert_eq!(
        out,
        vec![format!("{MASKED}|1"); 4].join("\n"),
        "every execution masked"
    );
}

/// The client's messages for one named statement, built with the codec.
fn parse(b: &mut BytesMut, name: &str, sql: &str) {
    pg::encode_parse(b, name.as_bytes(), sql.as_bytes(), &[]).unwrap();
}
fn bind_execute(b: &mut BytesMut, portal: &str, stmt: &str, binary: bool) {
    let formats: &[i16] = if binary { &[1] } else { &[] };
    pg::encode_bind(
        b,
        portal.as_bytes(),
        stmt.as_bytes(),
        &[],
        std::iter::empty(),
        formats,
    )
    .unwrap();
    pg::encode_execute(b, portal.as_bytes(), 0).unwrap();
}

fn rows(msgs: &[Msg]) -> Vec<Vec<Option<String>>> {
    msgs.iter()
        .filter(|m| m.tag == b'D')
        .map(|m| {
            DataRow::parse_body(&m.body)
                .unwrap()
                .values()
                .map(|v| v.map(|v| String::from_utf8_lossy(v).into_owned()))
                .collect()
        })
        .collect()
}

fn login(g: &PgGateway) -> Wire {
    let t = g.token("ci-job", "ci", "10m");
    let (w, msgs) = Wire::login(g.port, &g.db, &t);
    assert_eq!(msgs.last().map(|m| m.tag), Some(b'Z'), "{msgs:?}");
    w
}

#[test]
fn raw_named_statements_keep_their_shape_until_closed() {
    let g = setup("shape_raw", "");
    let mut w = login(&g);
    // Described once, in its own batch; executed in later batches.
    let mut b = BytesMut::new();
    parse(&mut b, "s1", "select name, ssn from customers where id = 1");
    pg::encode_describe(&mut b, ObjectKind::Statement, b"s1").unwrap();
    pg::encode_sync(&mut b);
    w.send_raw(&b);
    let msgs = w.until_ready();
    assert!(msgs.iter().any(|m| m.tag == b'T'), "{msgs:?}");
    for binary in [false, true, false] {
        let mut b = BytesMut::new();
        bind_execute(&mut b, "", "s1", binary);
        pg::encode_sync(&mut b);
        w.send_raw(&b);
        let r = rows(&w.until_ready());
        assert_eq!(
            r,
            vec![vec![Some("Alice".into()), Some(MASKED.into())]],
            "binary={binary}"
        );
    }
    // A named portal executed in pieces, in the same transaction.
    let mut b = BytesMut::new();
    pg::encode_query(&mut b, b"begin").unwrap();
    w.send_raw(&b);
    w.until_ready();
    let mut b = BytesMut::new();
    parse(&mut b, "s2", "select ssn from customers order by id");
    pg::encode_describe(&mut b, ObjectKind::Statement, b"s2").unwrap();
    pg::encode_bind(&mut b, b"p2", b"s2", &[], std::iter::empty(), &[]).unwrap();
    pg::encode_execute(&mut b, b"p2", 1).unwrap();
    pg::encode_sync(&mut b);
    w.send_raw(&b);
    assert_eq!(rows(&w.until_ready()), vec![vec![Some(MASKED.into())]]);
    let mut b = BytesMut::new();
    pg::encode_execute(&mut b, b"p2", 1).unwrap();
    pg::encode_sync(&mut b);
    w.send_raw(&b);
    assert_eq!(
        rows(&w.until_ready()),
        vec![vec![Some("***-**-4320".into())]]
    );
    let mut b = BytesMut::new();
    pg::encode_query(&mut b, b"commit").unwrap();
    w.send_raw(&b);
    w.until_ready();
    // Closed, then re-parsed under the same name with another shape: the
    // old shape must not be reused (id is not masked, ssn is).
    let mut b = BytesMut::new();
    pg::encode_close(&mut b, ObjectKind::Statement, b"s1").unwrap();
    parse(&mut b, "s1", "select ssn, id from customers where id = 2");
    pg::encode_describe(&mut b, ObjectKind::Statement, b"s1").unwrap();
    pg::encode_sync(&mut b);
    bind_execute(&mut b, "", "s1", false);
    pg::encode_sync(&mut b);
    w.send_raw(&b);
    w.until_ready();
    assert_eq!(
        rows(&w.until_ready()),
        vec![vec![Some("***-**-4320".into()), Some("2".into())]]
    );
}

#[test]
fn a_shape_never_described_fails_closed() {
    let g = setup("shape_unknown", "");
    let mut w = login(&g);
    // Never described: the gateway cannot tell which column is ssn.
    let mut b = BytesMut::new();
    parse(&mut b, "s1", "select name, ssn from customers where id = 1");
    pg::encode_sync(&mut b);
    bind_execute(&mut b, "", "s1", false);
    pg::encode_sync(&mut b);
    w.send_raw(&b);
    w.until_ready();
    let msgs = w.until_ready();
    let r = rows(&msgs);
    assert_eq!(r, vec![vec![None, None]], "mask_all: every value NULL");
    // DEALLOCATE ALL forgets the shapes it had learned.
    let mut b = BytesMut::new();
    parse(&mut b, "s2", "select ssn, name from customers where id = 1");
    pg::encode_describe(&mut b, ObjectKind::Statement, b"s2").unwrap();
    pg::encode_sync(&mut b);
    w.send_raw(&b);
    w.until_ready();
    let mut b = BytesMut::new();
    pg::encode_query(&mut b, b"deallocate all").unwrap();
    parse(&mut b, "s2", "select name, ssn from customers where id = 1");
    pg::encode_sync(&mut b);
    bind_execute(&mut b, "", "s2", false);
    pg::encode_sync(&mut b);
    w.send_raw(&b);
    w.until_ready();
    w.until_ready();
    let r = rows(&w.until_ready());
    assert_eq!(r, vec![vec![None, None]], "after DEALLOCATE ALL: unknown");
}

#[test]
fn a_shape_never_described_can_be_refused() {
    let g = setup(
        "shape_refuse",
        "[target.masking]\nunknown_shape = \"refuse\"\n",
    );
    let mut w = login(&g);
    let mut b = BytesMut::new();
    parse(&mut b, "s1", "select name, ssn from customers where id = 1");
    pg::encode_sync(&mut b);
    bind_execute(&mut b, "", "s1", false);
    pg::encode_sync(&mut b);
    w.send_raw(&b);
    w.until_ready();
    let msgs = w.until_ready();
    assert!(rows(&msgs).is_empty(), "{msgs:?}");
    let e = common::pgwire::error_of(&msgs).expect("an error");
    assert_eq!(e.field(b'C').as_deref(), Some("42501"), "{e:?}");
    assert!(
        e.field(b'M').unwrap().contains("row shape"),
        "{:?}",
        e.field(b'M')
    );
    let all = format!("{msgs:?}");
    assert!(!all.contains("6789"), "{all}");
}
