//! The PostgreSQL session: start-up, caller authentication by token, upstream
//! login with the stored credential, then policy, masking and recording on
//! every message.

use compio::net::TcpStream;

use crate::engine::session::SessionEntry;
use crate::engine::shard::ShardCtx;

/// Serve one PostgreSQL client connection to its end.
pub(crate) async fn serve(
    _ctx: &ShardCtx,
    _targets: &[usize],
    _entry: &SessionEntry,
    client: TcpStream,
) {
    drop(client);
}
