//! Criterion bench: mask (placeholder until its issue lands).
fn main() {}
