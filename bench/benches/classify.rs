//! Criterion bench: classify (placeholder until its issue lands).
fn main() {}
