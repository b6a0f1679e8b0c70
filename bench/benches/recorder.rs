//! Criterion bench: recorder (placeholder until its issue lands).
fn main() {}
