//! Criterion bench: jwt (placeholder until its issue lands).
fn main() {}
