//! An unrecorded tunnel after a `101` to `Upgrade: SPDY/3.1` (old `kubectl
//! exec`), relayed only where `[target.http] allow_unrecorded_spdy` says
//! so: raw bytes both ways, none of them recorded; the recording holds its
//! start (the `101` head and a start record) and its end with the byte
//! counts ([`super::wsrec`]).

use std::cell::Cell;

use bytes::BytesMut;
use futures_util::future::{Either, select};

use super::io::{Meter, Peer, Side};
use crate::pipeline::EndReason;
use crate::tls::{ReadHalf, WriteHalf};

/// Copy `from` → `to` until EOF, then shut down `to`'s write half.
async fn copy(
    from: Peer,
    r: &mut ReadHalf,
    buf: &mut BytesMut,
    meter: Meter<'_>,
    w: &mut WriteHalf,
    count: &Cell<u64>,
) -> Result<(), EndReason> {
    let other = match from {
        Peer::Client => Peer::Upstream,
        Peer::Upstream => Peer::Client,
    };
    loop {
        if !buf.is_empty() {
            let data = buf.split().freeze();
            count.set(count.get() + data.len() as u64);
            w.write_all(data).await.map_err(|e| other.io(e))?;
        }
        if buf.capacity() < 16 << 10 {
            buf.reserve(16 << 10);
        }
        let n = r.read_into(buf).await.map_err(|e| from.io(e))?;
        if n == 0 {
            return w.shutdown().await.map_err(|e| other.io(e));
        }
        meter.add(n);
    }
}

/// Relay until both sides have closed (or one fails); the bytes each way.
pub(crate) async fn relay(
    client: &mut Side,
    client_meter: Meter<'_>,
    up: &mut Side,
    up_meter: Meter<'_>,
) -> (EndReason, u64, u64) {
    let (sent_up, sent_down) = (Cell::new(0), Cell::new(0));
    let Side {
        r: cr,
        w: cw,
        buf: cbuf,
        ..
    } = client;
    let Side {
        r: ur,
        w: uw,
        buf: ubuf,
        ..
    } = up;
    let upward = std::pin::pin!(copy(Peer::Client, cr, cbuf, client_meter, uw, &sent_up));
    let downward = std::pin::pin!(copy(Peer::Upstream, ur, ubuf, up_meter, cw, &sent_down));
    let reason = match select(upward, downward).await {
        Either::Left((Ok(()), rest)) => rest.await.err().unwrap_or(EndReason::Closed),
        Either::Right((Ok(()), rest)) => rest.await.err().unwrap_or(EndReason::Closed),
        Either::Left((Err(e), _)) | Either::Right((Err(e), _)) => e,
    };
    (reason, sent_up.get(), sent_down.get())
}
