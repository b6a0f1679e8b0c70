//! Command rules: ordered, first match wins, over classified SQL statements.
