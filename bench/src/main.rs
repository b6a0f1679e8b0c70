//! `tollgate-load`: the bundled load tool.
fn main() {}
