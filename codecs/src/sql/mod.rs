//! SQL lexing and statement classification for the PostgreSQL and MySQL
//! dialects: what a SQL string will do, read from a real token stream.

pub mod class;
pub mod classify;
mod features;
mod head;
pub mod keywords;
pub mod lexer;
pub mod normalize;
pub mod presets;
pub mod selector;

pub use class::{Flags, ObjectKind, StatementClass};
pub use classify::{
    Classified, Classifier, MAX_NESTING, NO_PARENT, Name, Span, Statement, push_ident,
};
pub use keywords::Kw;
pub use lexer::{Dialect, LexError, MySqlMode, PgMode, Token, TokenKind, tokenize};
pub use normalize::{decode_string, write_normalized};
pub use presets::{PRESET_VERSION, Preset};
pub use selector::{Feature, Selector};
