//! The compio runtime every tollgate-load thread runs on, set up the way the
//! gateway's shards are (see ../shared/RUNTIME.md): single issuer with deferred
//! task work, which costs about a quarter less CPU per request than the defaults.

use std::io;

use compio::driver::ProactorBuilder;
use compio::runtime::{Runtime, RuntimeBuilder};

/// Builds a runtime for the calling thread; call it on the thread that will use it.
pub fn build() -> io::Result<Runtime> {
    let mut proactor = ProactorBuilder::new();
    proactor.single_issuer(true).defer_taskrun(true);
    RuntimeBuilder::new().with_proactor(proactor).build()
}
