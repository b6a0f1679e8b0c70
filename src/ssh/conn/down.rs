//! Upstream → caller for one channel (the task `Gate::attach` spawns).

use std::sync::Arc;

use russh::server::{self, Msg};
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::sync::mpsc;

use super::super::sftp::SftpDown;
use super::{Meter, forward, typed};

/// Upstream → caller for one channel: bytes (recorded first, within the
/// cap), EOF, exit status and signal unchanged, request answers to the
/// handler, close.
pub(super) async fn down(
    mut up: ChannelReadHalf,
    caller: ChannelWriteHalf<Msg>,
    handle: server::Handle,
    replies: mpsc::Sender<bool>,
    side: Down,
) {
    let Down {
        mut stdout,
        mut stderr,
        forward,
        mut sftp,
        tail,
    } = side;
    let cid = caller.id();
    loop {
        // An sftp refusal goes to the caller between whole packets.
        let msg = match sftp.as_mut() {
            None => up.wait().await,
            Some(s) => tokio::select! {
                m = up.wait() => m,
                Some(refusal) = s.refusal() => {
                    if caller.data_bytes(refusal).await.is_err() {
                        break;
                    }
                    continue;
                }
            },
        };
        let Some(msg) = msg else { break };
        let ok = match msg {
            ChannelMsg::Data { data } => {
                tail.push(&data);
                stdout.record(&data).await
                    && match sftp.as_mut() {
                        Some(s) => s.relay_down(data, &caller).await,
                        None => caller.data_bytes(data).await.is_ok(),
                    }
            }
            ChannelMsg::ExtendedData { data, ext } => {
                stderr.record(&data).await && caller.extended_data_bytes(ext, data).await.is_ok()
            }
            ChannelMsg::Eof => caller.eof().await.is_ok(),
            ChannelMsg::ExitStatus { exit_status } => caller.exit_status(exit_status).await.is_ok(),
            ChannelMsg::ExitSignal {
                signal_name,
                core_dumped,
                error_message,
                lang_tag,
            } => handle
                .exit_signal_request(cid, signal_name, core_dumped, error_message, lang_tag)
                .await
                .is_ok(),
            ChannelMsg::Success => replies.send(true).await.is_ok(),
            ChannelMsg::Failure => replies.send(false).await.is_ok(),
            ChannelMsg::Close => break,
            _ => true,
        };
        if !ok {
            break;
        }
    }
    // russh does not report the caller's answer to this close.
    if let Some(f) = forward {
        f.note().await;
    }
    let _ = caller.close().await;
}

/// What the upstream → caller task of a channel records and watches.
pub(super) struct Down {
    pub(super) stdout: Meter,
    pub(super) stderr: Meter,
    pub(super) forward: Option<Arc<forward::ForwardEnd>>,
    pub(super) sftp: Option<SftpDown>,
    pub(super) tail: Arc<typed::PromptWatch>,
}
