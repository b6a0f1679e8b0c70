//! Protocol switches on an HTTP connection (`Upgrade`). A WebSocket
//! upgrade is checked (RFC 6455: GET, version 13, one 16-byte key), judged
//! by the rules like any request, forwarded, and the upstream's `101`
//! checked (`Sec-WebSocket-Accept` for the key, no extension, a
//! sub-protocol among those offered) before the frames are relayed
//! ([`super::ws`]). `SPDY/3.1` is refused unless the target allows it
//! unrecorded ([`super::tunnel`]). Any other protocol: `501`.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tollgate_codecs::http::h1::{BodyFraming, HeadEditor, RequestHead, ResponseHead};
use tollgate_codecs::websocket::check_upgrade_request;
use tollgate_codecs::websocket::check_upgrade_response;
use tollgate_codecs::websocket::k8s::ChannelProtocol;
use tracing::{info, warn};

use super::exchange::Exchange;
use super::io::{Peer, answer};
use super::{tunnel, ws, wsrec};
use crate::pipeline::EndReason;

/// A protocol switch the caller asked for and the gateway may relay.
pub(super) enum Switch {
    WebSocket { key: Vec<u8>, offered: Vec<Vec<u8>> },
    Spdy,
}

impl Switch {
    /// The `Upgrade` value sent upstream.
    pub fn token(&self) -> &'static [u8] {
        match self {
            Switch::WebSocket { .. } => b"websocket",
            Switch::Spdy => b"SPDY/3.1",
        }
    }
}

fn recorder(e: impl std::fmt::Display) -> EndReason {
    EndReason::RecorderFailed(e.to_string())
}

impl Exchange<'_> {
    /// What the caller's `Upgrade` asks for, refused (answered, and the
    /// session ended) when it is not a switch this target relays.
    pub(super) async fn switch_asked(&mut self, head: &RequestHead) -> Result<Switch, EndReason> {
        let f = head.fields();
        let refuse = |status: u16, body: &str, why: String| {
            (
                answer(status, &[("Content-Type", "text/plain")], body, true),
                why,
            )
        };
        let refusal = if self.mask.is_some() {
            // Messages are relayed as they arrive, not masked: a caller whose
            // responses are masked gets no channel around the masking.
            refuse(
                403,
                "protocol upgrades are refused: this target masks responses for you\n",
                "upgrade refused: the target masks responses for the caller".into(),
            )
        } else if f.has_token("upgrade", "websocket") {
            if head.framing() != BodyFraming::None {
                refuse(
                    400,
                    "bad request\n",
                    "an upgrade request with a body".into(),
                )
            } else {
                match check_upgrade_request(head) {
                    Ok(u) => {
                        return Ok(Switch::WebSocket {
                            key: u.key.to_vec(),
                            offered: u.protocols.iter().map(|p| p.to_vec()).collect(),
                        });
                    }
                    Err(e) => refuse(400, "bad request\n", format!("websocket upgrade: {e}")),
                }
            }
        } else if f.has_token("upgrade", "spdy/3.1") {
            if self.h.allow_unrecorded_spdy && head.framing() == BodyFraming::None {
                return Ok(Switch::Spdy);
            }
            refuse(
                403,
                "SPDY/3.1 upgrades are refused: they cannot be recorded \
                 (use a client that speaks WebSocket, e.g. kubectl >= 1.30)\n",
                "SPDY/3.1 upgrade refused (allow_unrecorded_spdy is off)".into(),
            )
        } else {
            refuse(
                501,
                "upgrade not supported\n",
                "protocol upgrade refused".into(),
            )
        };
        let _ = self.client.side.write(refusal.0).await;
        Err(EndReason::Refused(refusal.1))
    }

    /// The upstream answered an upgrade request with `101`: check it, pass
    /// it on, relay the new protocol until the connection ends.
    pub(super) async fn switch(
        &mut self,
        sw: Switch,
        resp: ResponseHead,
    ) -> Result<bool, EndReason> {
        let k8s = match self.check_switch(&sw, &resp) {
            Ok(k) => k,
            Err(why) => {
                let bad = answer(502, &[], "bad gateway\n", true);
                let _ = self.client.side.write(bad).await;
                return Err(EndReason::UpstreamProtocol(why));
            }
        };
        let head = switched_head(&resp, &sw, &self.h.via).map_err(|e| {
            warn!(session = %self.s.entry.id, error = %e, "101 head not rewritten");
            Peer::Upstream.protocol(e)
        })?;
        let recording = self.live.recording;
        if recording.enabled() {
            recording
                .target_data_durable(Instant::now(), &head)
                .await
                .map_err(recorder)?;
        }
        self.client.side.write(head).await?;
        let (client_meter, up_meter) = (self.client_meter(), self.upstream_meter());
        let Some(up) = self.up.as_mut() else {
            return Err(EndReason::UpstreamClosed);
        };
        let reason = match sw {
            Switch::WebSocket { .. } => {
                info!(session = %self.s.entry.id, subprotocol = k8s.map_or("-", |k| k.name()), "websocket open");
                let setup = ws::WsSetup {
                    k8s,
                    max_frame: self.h.websocket_max_frame,
                    keep: self.h.record_message_bytes,
                };
                let clock = self.live.frame_clock;
                ws::relay(
                    &mut self.client.side,
                    client_meter,
                    &mut up.side,
                    up_meter,
                    recording,
                    clock,
                    &setup,
                )
                .await
            }
            Switch::Spdy => {
                warn!(session = %self.s.entry.id, "SPDY/3.1 tunnel open: its bytes are not recorded");
                if recording.enabled() {
                    let start = wsrec::tunnel_start(sw.token());
                    recording
                        .client_data(Instant::now(), &start)
                        .await
                        .map_err(recorder)?
                        .forwardable()
                        .await
                        .map_err(recorder)?;
                }
                let (reason, sent_up, sent_down) =
                    tunnel::relay(&mut self.client.side, client_meter, &mut up.side, up_meter)
                        .await;
                info!(session = %self.s.entry.id, bytes_up = sent_up, bytes_down = sent_down, reason = %reason, "SPDY/3.1 tunnel closed");
                if recording.enabled() {
                    let end = wsrec::tunnel_end(sent_up, sent_down);
                    recording
                        .client_data(Instant::now(), &end)
                        .await
                        .map_err(recorder)?
                        .forwardable()
                        .await
                        .map_err(recorder)?;
                }
                reason
            }
        };
        Err(reason)
    }

    /// The upstream's `101` fits the request; the Kubernetes channel
    /// protocol it chose, if any.
    fn check_switch(
        &self,
        sw: &Switch,
        resp: &ResponseHead,
    ) -> Result<Option<ChannelProtocol>, String> {
        match sw {
            Switch::WebSocket { key, offered } => {
                let offered: Vec<&[u8]> = offered.iter().map(Vec::as_slice).collect();
                check_upgrade_response(resp, key, &offered)
                    .map(|p| p.and_then(ChannelProtocol::from_name))
                    .map_err(|e| format!("websocket: {e}"))
            }
            Switch::Spdy => {
                let f = resp.fields();
                if f.has_token("upgrade", "spdy/3.1") && f.has_token("connection", "upgrade") {
                    Ok(None)
                } else {
                    Err("a 101 that is not a SPDY/3.1 upgrade".into())
                }
            }
        }
    }
}

/// The `101` as the caller gets it: hop-by-hop fields out, the upgrade
/// fields and `Via` in.
fn switched_head(
    resp: &ResponseHead,
    sw: &Switch,
    via: &str,
) -> Result<Bytes, tollgate_codecs::http::h1::H1Error> {
    let mut e = HeadEditor::for_response(resp);
    e.remove_hop_by_hop();
    e.append("Connection", b"Upgrade")?;
    e.append("Upgrade", sw.token())?;
    e.append_via(resp.minor_version(), via)?;
    let mut out = BytesMut::new();
    e.encode(&mut out);
    Ok(out.freeze())
}
