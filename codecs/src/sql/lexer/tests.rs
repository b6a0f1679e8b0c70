//! Lexer tests: token streams per dialect, the dispatch and identifier
//! tables against the predicates they replaced, and the old lexer as a
//! differential reference on random input.

use super::*;

fn lex(sql: &str, dialect: Dialect) -> Vec<(TokenKind, String)> {
    let mut out = Vec::new();
    tokenize(sql.as_bytes(), dialect, &mut out).unwrap();
    out.iter()
        .map(|t| {
            let text = String::from_utf8_lossy(t.text(sql.as_bytes())).into_owned();
            (t.kind, text)
        })
        .collect()
}

fn texts(sql: &str, dialect: Dialect) -> Vec<String> {
    lex(sql, dialect).into_iter().map(|(_, t)| t).collect()
}

const PG_OFF: Dialect = Dialect::Postgres(PgMode {
    standard_conforming_strings: false,
});

#[test]
fn words_numbers_and_punctuation() {
    let got = lex("SELECT a.b, 1.5e-3 FROM t;", Dialect::POSTGRES);
    let kinds: Vec<_> = got.iter().map(|(k, _)| *k).collect();
    use TokenKind::*;
    assert_eq!(
        kinds,
        [Word, Word, Dot, Word, Comma, Number, Word, Word, Semicolon]
    );
    assert_eq!(got[5].1, "1.5e-3");
}

#[test]
fn comments_vanish_and_pg_nests_them() {
    assert_eq!(
        texts("dRoP/**/DATABASE", Dialect::POSTGRES),
        ["dRoP", "DATABASE"]
    );
    assert_eq!(
        texts("a /* x /* y */ still */ b -- c\nd", Dialect::POSTGRES),
        ["a", "b", "d"]
    );
    // MySQL does not nest: the first `*/` ends the comment.
    assert_eq!(
        texts("a /* x /* y */ b */", Dialect::MYSQL),
        ["a", "b", "*/"]
    );
}

#[test]
fn mysql_comment_rules() {
    assert_eq!(texts("a # c\nb", Dialect::MYSQL), ["a", "b"]);
    assert_eq!(texts("a # c\nb", Dialect::POSTGRES), ["a", "#", "c", "b"]);
    // `--` without a following space is two minus signs in MySQL.
    assert_eq!(texts("1--1", Dialect::MYSQL), ["1", "--", "1"]);
    assert_eq!(texts("1--1", Dialect::POSTGRES), ["1"]);
    // A lone CR does not end a MySQL line comment.
    assert_eq!(texts("a -- x\rWHERE\nb", Dialect::MYSQL), ["a", "b"]);
    assert_eq!(
        texts("a -- x\rWHERE\nb", Dialect::POSTGRES),
        ["a", "WHERE", "b"]
    );
}

#[test]
fn mysql_executable_comments_are_code() {
    assert_eq!(
        texts("/*!DROP*/ DATABASE x", Dialect::MYSQL),
        ["DROP", "DATABASE", "x"]
    );
    let v8 = Dialect::MySql(MySqlMode {
        server_version: 80036,
        ..match Dialect::MYSQL {
            Dialect::MySql(m) => m,
            Dialect::Postgres(_) => unreachable!(),
        }
    });
    assert_eq!(
        texts("/*!50001 DROP */ TABLE t", v8),
        ["DROP", "TABLE", "t"]
    );
    assert_eq!(texts("/*!90001 DROP */ TABLE t", v8), ["TABLE", "t"]);
    // Unknown version: cannot tell, so the statement is ambiguous.
    let got = lex("/*!50001 DROP */ TABLE t", Dialect::MYSQL);
    assert_eq!(got.last().unwrap().0, TokenKind::Ambiguous);
    // MariaDB-only comments are plain comments on MySQL.
    assert_eq!(texts("/*M! DROP */ TABLE t", v8), ["TABLE", "t"]);
    // PostgreSQL has no executable comments.
    assert_eq!(texts("/*!DROP*/ x", Dialect::POSTGRES), ["x"]);
}

#[test]
fn strings_by_dialect() {
    // Standard strings: backslash is an ordinary character.
    assert_eq!(
        texts(r"SELECT '\'; DROP TABLE x; --'", Dialect::POSTGRES),
        ["SELECT", r"'\'", ";", "DROP", "TABLE", "x", ";"]
    );
    // E-strings and MySQL strings escape the quote.
    assert_eq!(
        texts(r"SELECT E'\'; DROP TABLE x; --'", Dialect::POSTGRES),
        ["SELECT", r"E'\'; DROP TABLE x; --'"]
    );
    assert_eq!(
        texts(r"SELECT '\'; DROP'", Dialect::MYSQL),
        ["SELECT", r"'\'; DROP'"]
    );
    assert_eq!(
        texts(r"SELECT '\'; DROP'", PG_OFF),
        ["SELECT", r"'\'; DROP'"]
    );
    assert_eq!(texts("'it''s'", Dialect::POSTGRES), ["'it''s'"]);
    // MySQL double quotes are strings unless ANSI_QUOTES.
    assert_eq!(lex(r#""a\"b""#, Dialect::MYSQL)[0].0, TokenKind::String);
    assert_eq!(
        lex(r#""drop""#, Dialect::POSTGRES)[0].0,
        TokenKind::QuotedIdent
    );
    assert_eq!(lex("`a``b`", Dialect::MYSQL)[0].1, "`a``b`");
    assert_eq!(lex("X'4142'", Dialect::POSTGRES)[0].0, TokenKind::String);
    assert_eq!(
        lex(r#"U&"d\0061t""#, Dialect::POSTGRES)[0].0,
        TokenKind::QuotedIdent
    );
}

#[test]
fn dollar_quotes_and_params() {
    assert_eq!(
        texts("SELECT $$;DROP$$, $a$ $$ ; $a$, $1", Dialect::POSTGRES),
        ["SELECT", "$$;DROP$$", ",", "$a$ $$ ; $a$", ",", "$1"]
    );
    assert_eq!(texts("a$b", Dialect::POSTGRES), ["a$b"]);
    assert_eq!(lex("$$;", Dialect::MYSQL)[0].0, TokenKind::Word);
    assert_eq!(lex("?", Dialect::MYSQL)[0].0, TokenKind::Param);
}

#[test]
fn unterminated_input_never_panics() {
    for sql in [
        "'abc", "\"abc", "/* abc", "$x$ abc", "E'\\", "/*!", "`a", "/* /* */",
    ] {
        let got = lex(sql, Dialect::POSTGRES);
        let got_my = lex(sql, Dialect::MYSQL);
        assert!(
            got.iter()
                .chain(&got_my)
                .any(|(k, _)| *k == TokenKind::Unterminated),
            "{sql}: {got:?} / {got_my:?}"
        );
    }
    assert_eq!(
        lex("/* a */ /* b", Dialect::MYSQL).last().unwrap().0,
        TokenKind::Unterminated
    );
}

#[test]
fn hostile_bytes_are_tokens() {
    let sql: Vec<u8> = (0u8..=255).collect();
    for d in [Dialect::POSTGRES, Dialect::MYSQL, PG_OFF] {
        let mut out = Vec::new();
        tokenize(&sql, d, &mut out).unwrap();
        assert!(
            out.iter()
                .all(|t| t.start <= t.end && t.end as usize <= sql.len())
        );
    }
    // Non-breaking space (UTF-8 C2 A0) joins words rather than splitting them.
    assert_eq!(texts("DROP\u{a0}DATABASE", Dialect::POSTGRES).len(), 1);
}

/// The old predicates the dispatch table replaced, byte by byte.
fn old_action(b: u8, next: u8, mysql: bool) -> &'static str {
    match b {
        _ if class(b) & SPACE != 0 => "space",
        b'-' if next == b'-' => "dash",
        b'#' if mysql => "hash",
        b'/' if next == b'*' => "slash",
        b'*' if next == b'/' => "star",
        b'\'' => "quote",
        b'"' => "dquote",
        b'`' if mysql => "backtick",
        b'$' if !mysql => "dollar",
        b'0'..=b'9' => "digit",
        b'.' => "dot",
        b',' => "comma",
        b'(' => "lparen",
        b')' => "rparen",
        b';' => "semicolon",
        b'?' if mysql => "param",
        _ if class(b) & IDENT_START != 0 || (b == b'$' && mysql) => "word",
        _ if class(b) & OP != 0 => "op",
        _ => "other",
    }
}

fn new_action(b: u8, next: u8, mysql: bool) -> &'static str {
    let table = if mysql { &MYSQL_ACTIONS } else { &PG_ACTIONS };
    match table[b as usize] {
        Act::Space => "space",
        Act::Dash if next == b'-' => "dash",
        Act::Hash => "hash",
        Act::Slash if next == b'*' => "slash",
        Act::Star if next == b'/' => "star",
        Act::Quote => "quote",
        Act::DoubleQuote => "dquote",
        Act::Backtick => "backtick",
        Act::Dollar => "dollar",
        Act::Digit => "digit",
        Act::Dot => "dot",
        Act::Comma => "comma",
        Act::LParen => "lparen",
        Act::RParen => "rparen",
        Act::Semicolon => "semicolon",
        Act::Param => "param",
        Act::Word => "word",
        Act::Dash | Act::Slash | Act::Star | Act::Op => "op",
        Act::Other => "other",
    }
}

#[test]
fn action_tables_match_the_old_predicates_on_every_byte() {
    for mysql in [false, true] {
        for b in 0..=255u8 {
            for next in [0u8, b'-', b'*', b'/', b'a', b' '] {
                assert_eq!(
                    new_action(b, next, mysql),
                    old_action(b, next, mysql),
                    "byte {b:#04x} before {next:#04x}, mysql {mysql}"
                );
            }
        }
    }
}

#[test]
fn ident_lanes_match_the_class_table_in_every_lane() {
    let fillers = [0u8, b'a', b' ', 0xff, b'_', b'9', b'$', 0x7f];
    for b in 0..=255u8 {
        for lane in 0..8 {
            for &fill in &fillers {
                let mut bytes = [fill; 8];
                bytes[lane] = b;
                let mask = ident_lanes(u64::from_le_bytes(bytes));
                for (l, &x) in bytes.iter().enumerate() {
                    let got = mask & (0x80 << (8 * l)) != 0;
                    let want = class(x) & IDENT_CONT != 0;
                    assert_eq!(got, want, "byte {x:#04x} in lane {l} (probe {b:#04x})");
                }
            }
        }
    }
}

#[test]
fn ident_end_stops_at_the_first_non_identifier_byte() {
    let sql = b"abcdefghijklmnopqrstu_$9\xc3\xa9 x";
    assert_eq!(ident_end(sql, 0), sql.len() - 2);
    for start in 0..sql.len() {
        let want = start
            + sql[start..]
                .iter()
                .position(|&b| class(b) & IDENT_CONT == 0)
                .unwrap_or(sql.len() - start);
        assert_eq!(ident_end(sql, start), want, "from {start}");
    }
    assert_eq!(ident_end(b"abc", 3), 3);
    assert_eq!(ident_end(b"", 0), 0);
}

/// Deterministic pseudo-random SQL-ish text: fragments chosen to hit
/// every lexer path (quotes, comments, dollar quotes, versioned
/// comments, operators, prefixes, high bytes) in random orders.
fn random_sql(seed: &mut u64, len: usize) -> Vec<u8> {
    const PARTS: &[&[u8]] = &[
        b"SELECT",
        b" ",
        b"\n",
        b"\t",
        b"\r",
        b"a",
        b"x_1",
        b"$",
        b"$1",
        b"$a$",
        b"$$",
        b"'",
        b"''",
        b"\"",
        b"`",
        b"\\",
        b"--",
        b"-- c\n",
        b"'\n'",
        b"' -- c\n\x0c'",
        b"\\'",
        b"B'",
        b"\x0b",
        b"#",
        b"/*",
        b"*/",
        b"/*!",
        b"/*!50001",
        b"/*M!",
        b"*",
        b"/",
        b"-",
        b"+",
        b"e",
        b"E'",
        b"X'",
        b"U&'",
        b"U&\"",
        b"N'",
        b"b'",
        b".",
        b".5",
        b"1e-3",
        b"0x1f",
        b"12",
        b",",
        b"(",
        b")",
        b";",
        b"?",
        b":",
        b"::",
        b"<>",
        b"\xc2\xa0",
        b"\xff",
        b"\x00",
        b"drop",
        b"From",
        b"low_priority",
        b"abcdefghijklmnopq",
        b"{",
        b"@",
    ];
    let mut out = Vec::with_capacity(len * 4);
    for _ in 0..len {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        out.extend_from_slice(PARTS[(*seed % PARTS.len() as u64) as usize]);
    }
    out
}

#[test]
fn matches_the_reference_lexer_on_random_input() {
    let v8 = Dialect::MySql(MySqlMode {
        ansi_quotes: false,
        backslash_escapes: true,
        server_version: 80036,
        mariadb: false,
    });
    let ansi = Dialect::MySql(MySqlMode {
        ansi_quotes: true,
        backslash_escapes: false,
        server_version: 0,
        mariadb: true,
    });
    let dialects = [Dialect::POSTGRES, PG_OFF, Dialect::MYSQL, v8, ansi];
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let (mut got, mut want, mut semicolons) = (Vec::new(), Vec::new(), Vec::new());
    let mut tokens = 0usize;
    for round in 0..20_000 {
        let sql = random_sql(&mut seed, 1 + round % 40);
        for d in dialects {
            tokenize_split(&sql, d, &mut got, &mut semicolons).unwrap();
            super::reference::tokenize(&sql, d, &mut want).unwrap();
            assert_eq!(got, want, "{:?} in {d:?}", String::from_utf8_lossy(&sql));
            let expected: Vec<u32> = (0..got.len() as u32)
                .filter(|&i| got[i as usize].kind == TokenKind::Semicolon)
                .collect();
            assert_eq!(semicolons, expected);
            tokens += got.len();
        }
    }
    // The generator really exercises the lexer (not a run of empties).
    assert!(tokens > 200_000, "{tokens} tokens");
}

/// Issue 12 A: each case is input where reading a literal differently from
/// scan.l moves a statement boundary. `want` is the server's token texts.
#[test]
fn pg_literals_end_where_the_server_ends_them() {
    let on = Dialect::POSTGRES;
    // Continuation keeps `E`'s escapes: `\'` does not close the second part.
    assert_eq!(
        texts("SELECT E'a'\n'x\\''; DROP TABLE t; -- '", on),
        ["SELECT", "E'a'\n'x\\''", ";", "DROP", "TABLE", "t", ";"]
    );
    // A plain literal's continued part takes no escapes.
    assert_eq!(
        texts("SELECT 'a'\n'x\\'; DROP TABLE t; -- '", on),
        ["SELECT", "'a'\n'x\\'", ";", "DROP", "TABLE", "t", ";"]
    );
    // ... unless standard_conforming_strings is off.
    assert_eq!(
        texts("SELECT 'a'\n'x\\'; DROP TABLE t; -- '", PG_OFF),
        ["SELECT", "'a'\n'x\\'; DROP TABLE t; -- '"]
    );
    // Whitespace must hold a newline; `--` comments count, block comments do not.
    assert_eq!(texts("'a' 'b'", on), ["'a'", "'b'"]);
    assert_eq!(texts("'a' -- c\n\t'b'", on), ["'a' -- c\n\t'b'"]);
    assert_eq!(
        texts("'a'\r\n-- c\r\n \x0c'b' x", on),
        ["'a'\r\n-- c\r\n \x0c'b'", "x"]
    );
    assert_eq!(texts("'a'/*\n*/'b'", on), ["'a'", "'b'"]);
    assert_eq!(texts("'a'\n-- c'", on), ["'a'"]);
    assert_eq!(texts("E'a'\n'b'\n'c' d", on), ["E'a'\n'b'\n'c'", "d"]);
    // Bit strings take no escapes and no doubled quotes, in either mode.
    assert_eq!(
        texts("SELECT B'\\' ; DROP TABLE t; -- '", PG_OFF),
        ["SELECT", "B'\\'", ";", "DROP", "TABLE", "t", ";"]
    );
    assert_eq!(texts("X'01''0a'", on), ["X'01'", "'0a'"]);
    assert_eq!(texts("x'0'\n'1'", on), ["x'0'\n'1'"]);
    // U& literals take no backslash escapes even when plain strings do.
    assert_eq!(
        texts("SELECT U&'\\' ; DROP TABLE t; -- '", PG_OFF),
        ["SELECT", "U&'\\'", ";", "DROP", "TABLE", "t", ";"]
    );
    assert_eq!(
        texts("U&'d!0061t' UESCAPE '!'\n'x'", on),
        ["U&'d!0061t'", "UESCAPE", "'!'\n'x'"]
    );
    // N'..' reads like a plain literal in the session's mode.
    assert_eq!(texts("N'\\' ; x '", PG_OFF), ["N'\\' ; x '"]);
    assert_eq!(texts("N'\\' ; x", on), ["N'\\'", ";", "x"]);
}

#[test]
fn pg_dollar_tags_params_and_operators() {
    let on = Dialect::POSTGRES;
    // Tags: a letter, `_` or high byte, then those or digits; never `$`.
    assert_eq!(texts("$a1$ ; $b$ ; $a1$ ;", on), ["$a1$ ; $b$ ; $a1$", ";"]);
    assert_eq!(texts("$_$x$_$", on), ["$_$x$_$"]);
    assert_eq!(texts("$\u{e9}$x$\u{e9}$", on), ["$\u{e9}$x$\u{e9}$"]);
    // `$1` is a parameter, so `$1$` opens no quote.
    assert_eq!(texts("$1$ ; DROP", on), ["$1", "$", ";", "DROP"]);
    // A `$` inside a word is part of the word, not a tag.
    assert_eq!(texts("x$a$ ; DROP", on), ["x$a$", ";", "DROP"]);
    // A closing delimiter inside a longer tag-like run does not close.
    assert_eq!(texts("$a$ $ba$ $a$ ;", on), ["$a$ $ba$ $a$", ";"]);
    // Operators end where a comment starts (scan.l trims them there).
    assert_eq!(texts("1 +-- c\n; x", on), ["1", "+", ";", "x"]);
    assert_eq!(texts("1 @/* ; */2", on), ["1", "@", "2"]);
    assert_eq!(texts("1 */* ; */2", on), ["1", "*", "2"]);
    // Nested comments: the first `*/` does not end the outer one.
    assert_eq!(texts("/* /* */ ; DROP */ x", on), ["x"]);
    assert_eq!(texts("/*/ ; */ x", on), ["x"]);
    assert_eq!(texts("/**/ x /***/ y", on), ["x", "y"]);
}

/// Found by the oracle (codecs/oracle): PostgreSQL 15 numbers never take
/// letters, so a keyword glued to a number is still a keyword.
#[test]
fn pg_numbers_end_where_scan_l_ends_them() {
    let on = Dialect::POSTGRES;
    assert_eq!(texts("SELECT 1FROM t", on), ["SELECT", "1", "FROM", "t"]);
    assert_eq!(
        texts("SET x = 1.5e-3WHERE id", on),
        ["SET", "x", "=", "1.5e-3", "WHERE", "id"]
    );
    assert_eq!(texts(".5AS where", on), [".5", "AS", "where"]);
    assert_eq!(texts("1..x", on), ["1", ".", ".", "x"]);
    assert_eq!(
        texts("1.e5 1.5e 2e+ 0x1f", on),
        ["1.e5", "1.5", "e", "2", "e", "+", "0", "x1f"]
    );
    // `1e'x'`: the `e` opens an escape string.
    assert_eq!(texts("1e'\\'' ; x", on), ["1", "e'\\''", ";", "x"]);
    // MySQL identifiers may start with digits: unchanged there.
    assert_eq!(
        texts("SELECT 1FROM t", Dialect::MYSQL),
        ["SELECT", "1FROM", "t"]
    );
}
