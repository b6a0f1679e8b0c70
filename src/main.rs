//! The `tollgate` binary: command-line front end of the appliance.
fn main() {}
