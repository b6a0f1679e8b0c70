//! SQL lexing and statement classification for the PostgreSQL and MySQL
//! dialects: what a SQL string will do, read from a real token stream.

pub mod keywords;
pub mod lexer;

pub use keywords::Kw;
pub use lexer::{Dialect, LexError, MySqlMode, PgMode, Token, TokenKind, tokenize};
