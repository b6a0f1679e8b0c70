//! Grammar-based generation and mutation of SQL for the oracle. No
//! package ships PostgreSQL's regression SQL (checked: Debian's
//! postgresql-15 installs pg_regress but not src/test/regress/sql), so
//! beside the installed server's own SQL scripts the corpus is generated
//! here: statements built from the shapes that decide boundaries, classes
//! and WHERE clauses (every literal form scan.l has, nested comments,
//! relation_expr forms, keyword labels, CTEs, COPY/EXPLAIN/PREPARE
//! wrappers), then mutated byte-wise with the fragments that move
//! boundaries. Deterministic per seed.

/// xorshift64: small, fast, reproducible from a printed seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}

const TARGETS: &[&str] = &[
    "t",
    "public.t",
    "\"T\"",
    "s.\"x y\"",
    "ONLY t",
    "ONLY (t)",
    "ONLY (s.t)",
    "t *",
    "t AS a",
    "t a",
    "\"where\"",
    "t$1",
    "caf\u{e9}",
    "set",
    "values v",
    "quick",
    "ONLY ignore",
];

const LITERALS: &[&str] = &[
    "'a'",
    "'it''s'",
    "E'a\\'b'",
    "E'\\\\'",
    "'a'\n'b'",
    "E'a'\n'\\''",
    "'a' -- c\n'b'",
    "'a'\r\n\t'b'",
    "U&'d\\0061t'",
    "U&'d!0061t' UESCAPE '!'",
    "B'0101'",
    "X'0f'",
    "x'0'\n'1'",
    "N'n'",
    "$$x$$",
    "$q$ ; DROP TABLE t; $q$",
    "$_1$ $$ $_1$",
    "1",
    "1.5e-3",
    ".5",
    "$1",
    "(SELECT 1)",
    "ARRAY[1, 2]",
    "1::int",
    "'x' || 'y'",
];

const GAPS: &[&str] = &[
    " ",
    "\n",
    "\t",
    " /* c */ ",
    " /* a /* nested ; */ b */ ",
    " -- c ; DROP\n",
    "\r\n",
    "/**/",
];

const WHERES: &[&str] = &[
    "",
    " WHERE id = 1",
    " WHERE x = LIT",
    " WHERE (SELECT true)",
    " WHERE id IN (SELECT 1 WHERE false)",
];

const RETURNS: &[&str] = &[
    "",
    " RETURNING *",
    " RETURNING 1 AS where",
    " RETURNING x AS from",
    " RETURNING t.where",
    " RETURNING LIT AS x",
    " RETURNING 1 AS \"where\"",
];

fn fill(rng: &mut Rng, template: &str) -> String {
    let mut out = String::with_capacity(template.len() * 2);
    let mut rest = template;
    while let Some(at) = rest.find(['~', 'L']) {
        out.push_str(&rest[..at]);
        if rest[at..].starts_with("LIT") {
            out.push_str(rng.pick(LITERALS));
            rest = &rest[at + 3..];
        } else if rest[at..].starts_with('~') {
            out.push_str(rng.pick(GAPS));
            rest = &rest[at + 1..];
        } else {
            out.push('L');
            rest = &rest[at + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// A DELETE or UPDATE of some target, WHERE and RETURNING.
fn dml(rng: &mut Rng) -> String {
    let target = rng.pick(TARGETS);
    let wh = rng.pick(WHERES);
    let ret = rng.pick(RETURNS);
    let body = if rng.chance(50) {
        let using = if rng.chance(20) { " USING u" } else { "" };
        format!("DELETE~FROM {target}{using}{wh}{ret}")
    } else {
        let from = if rng.chance(20) { " FROM u" } else { "" };
        format!("UPDATE~{target}~SET x = LIT{from}{wh}{ret}")
    };
    fill(rng, &body)
}

/// Statements around the DML core: other classes and wrappers.
const OTHERS: &[&str] = &[
    "MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN DELETE",
    "MERGE INTO t AS m USING u ON m.id = u.id WHEN MATCHED THEN UPDATE SET x = LIT",
    "INSERT INTO t SELECT LIT FROM u ON CONFLICT (id) DO UPDATE SET x = LIT",
    "INSERT INTO t (a) VALUES (LIT) RETURNING a AS where",
    "DELETE FROM t WHERE CURRENT OF c",
    "SELECT LIT INTO t2 FROM t",
    "CREATE TABLE t2 AS SELECT LIT AS where",
    "COPY t TO STDOUT",
    "COPY t (a) FROM STDIN",
    "TABLE t",
    "DO $$ BEGIN NULL; END $$",
    "CALL p(LIT)",
    "GRANT SELECT ON t TO r",
    "REVOKE ALL ON t FROM r",
    "SET search_path = LIT",
    "BEGIN",
    "COMMIT",
    "VALUES (LIT)",
    "SELECT (update) FROM t",
    "SELECT update + 1 AS delete FROM t WHERE update > 0",
];

const WRAPPERS: &[&str] = &[
    "WITH d AS (DML)~SELECT * FROM d",
    "WITH d AS MATERIALIZED (DML), e AS (SELECT 1) SELECT * FROM d, e",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3), d AS (DML) SELECT * FROM r",
    "WITH d AS (DML) DML",
    "WITH d AS (DML) INSERT INTO t SELECT * FROM d",
    "COPY (DMLR) TO STDOUT",
    "EXPLAIN ANALYZE DML",
    "EXPLAIN (ANALYZE) DML",
    "EXPLAIN (ANALYZE off, COSTS true) DML",
    "EXPLAIN (COSTS false) DML",
    "EXPLAIN DML",
    "PREPARE p AS DML",
    "PREPARE p (int) AS DML",
    "(SELECT LIT)",
    "SELECT * FROM (SELECT LIT AS where) s WHERE true",
];

/// `wrapper` with each `DML` (`DMLR`: with a RETURNING) replaced by a
/// generated DELETE/UPDATE.
fn wrap(rng: &mut Rng, wrapper: &str) -> String {
    let mut out = String::new();
    let mut rest = wrapper;
    while let Some(at) = rest.find("DML") {
        out.push_str(&rest[..at]);
        let inner = dml(rng);
        let returning = rest[at..].starts_with("DMLR");
        out.push_str(&inner);
        if returning && !inner.contains("RETURNING") {
            out.push_str(" RETURNING 1");
        }
        rest = &rest[at + if returning { 4 } else { 3 }..];
    }
    out.push_str(rest);
    fill(rng, &out)
}

/// One generated statement.
pub fn statement(rng: &mut Rng) -> String {
    match rng.below(16) {
        12 | 13 => {
            let template = rng.pick(OTHERS);
            fill(rng, template)
        }
        14 | 15 => {
            let wrapper = rng.pick(WRAPPERS);
            wrap(rng, wrapper)
        }
        0..=3 => dml(rng),
        4 => {
            let inner = dml(rng);
            fill(rng, &format!("WITH d AS ({inner})~SELECT * FROM d"))
        }
        5 => {
            let inner = dml(rng);
            let ret = if inner.contains("RETURNING") {
                ""
            } else {
                " RETURNING 1"
            };
            format!("COPY ({inner}{ret}) TO STDOUT")
        }
        6 => format!("EXPLAIN ANALYZE {}", dml(rng)),
        7 => format!("PREPARE p AS {}", dml(rng)),
        8 => fill(rng, "SELECT LIT,~LIT AS where FROM t~WHERE x = LIT"),
        9 => fill(rng, "INSERT INTO t VALUES (LIT,~LIT)"),
        10 => {
            let what = rng.pick(&["t", "TABLE t", "ONLY t, u"]);
            fill(rng, &format!("TRUNCATE~{what}"))
        }
        _ => {
            let template = rng.pick(&[
                "DROP TABLE~t",
                "DROP~TABLE IF EXISTS t CASCADE",
                "SELECT LIT",
            ]);
            fill(rng, template)
        }
    }
}

/// One to three generated statements joined by `;` and gaps.
pub fn script(rng: &mut Rng) -> String {
    let n = 1 + rng.below(3);
    let mut out = String::new();
    for i in 0..n {
        if i > 0 {
            out.push_str(rng.pick(&[";", "; ", ";\n", " ; -- c\n", ";/* ; */"]));
        }
        out.push_str(&statement(rng));
    }
    out
}

const FRAGMENTS: &[&str] = &[
    "'",
    "E'",
    "\\",
    "\n",
    "--",
    "/*",
    "*/",
    "$$",
    "$a$",
    ";",
    " WHERE ",
    " AS ",
    "(",
    ")",
    "\"",
    "U&",
    "B'",
    " RETURNING 1 AS where",
    "''",
    "\r",
    "*",
    " ONLY ",
    "-",
    " FROM ",
    " SET ",
    " UPDATE ",
    " DELETE FROM t ",
    ".",
    "1",
    "e",
    " WHERE true",
    ", ",
    "::",
    "U&\"",
    "$1",
    "\t",
    " USING u ",
    " RETURNING ",
];

/// `sql` with one to three random edits: a fragment inserted, or a span
/// deleted. Edits land on character boundaries, so the result stays UTF-8.
pub fn mutate(rng: &mut Rng, sql: &str) -> String {
    let mut out = sql.to_string();
    for _ in 0..1 + rng.below(3) {
        let mut at = rng.below(out.len() + 1);
        while !out.is_char_boundary(at) {
            at -= 1;
        }
        if rng.chance(75) || out.is_empty() {
            out.insert_str(at, rng.pick(FRAGMENTS));
        } else {
            let mut end = (at + 1 + rng.below(6)).min(out.len());
            while !out.is_char_boundary(end) {
                end += 1;
            }
            out.replace_range(at..end, "");
        }
    }
    out
}
