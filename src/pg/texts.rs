//! Content masking of the server's free-text messages: ErrorResponse and
//! NoticeResponse texts (message, detail, hint, context, where) and
//! NOTIFY payloads. Values reach them through the server itself
//! (`invalid input syntax for type integer: "alice@example.com"`, a
//! `RAISE NOTICE '%', email`, `pg_notify('ch', email)`). Only the content
//! detectors apply: there is no column to match a name rule against.

use bytes::{Bytes, BytesMut};
use tollgate_codecs::pg::{ErrorResponse, NotificationResponse, tag};

use crate::policy::mask::{MaskOutcome, MaskPolicy, MaskScratch, ResultPlan};

/// Fields that carry text the server may have copied a value into.
fn is_text_field(code: u8) -> bool {
    matches!(code, b'M' | b'D' | b'H' | b'W' | b'q')
}

/// Masks the text fields of an ErrorResponse/NoticeResponse body; `None`
/// when nothing matched (forward the frame as it is) or it does not parse
/// (the relay forwards the server's bytes; the codec already bounded them).
pub fn error_or_notice(
    m: &MaskPolicy,
    caller: &ResultPlan,
    t: u8,
    body: &[u8],
    scratch: &mut MaskScratch,
) -> Option<Bytes> {
    let e = ErrorResponse::parse_body(t, body).ok()?;
    let mut changed = false;
    let mut b = BytesMut::with_capacity(body.len() + 16);
    b.extend_from_slice(&[t, 0, 0, 0, 0]);
    for (code, value) in e.fields() {
        b.extend_from_slice(&[code]);
        let masked = if is_text_field(code) {
            masked_text(m, caller, value, scratch)
        } else {
            None
        };
        match masked {
            Some(v) => {
                changed = true;
                b.extend_from_slice(&v);
            }
            None => b.extend_from_slice(value),
        }
        b.extend_from_slice(&[0]);
    }
    b.extend_from_slice(&[0]);
    if !changed {
        return None;
    }
    patch_len(b)
}

/// Masks a NotificationResponse's payload (the channel name is the
/// client's own choice and is left alone).
pub fn notification(
    m: &MaskPolicy,
    caller: &ResultPlan,
    body: &[u8],
    scratch: &mut MaskScratch,
) -> Option<Bytes> {
    let n = NotificationResponse::parse_body(body).ok()?;
    let payload = masked_text(m, caller, n.payload, scratch)?;
    let mut b = BytesMut::with_capacity(body.len() + 16);
    b.extend_from_slice(&[tag::NOTIFICATION_RESPONSE, 0, 0, 0, 0]);
    b.extend_from_slice(&n.pid.to_be_bytes());
    b.extend_from_slice(n.channel);
    b.extend_from_slice(&[0]);
    b.extend_from_slice(&payload);
    b.extend_from_slice(&[0]);
    patch_len(b)
}

/// The masked text, without NUL bytes (they would end the C string early).
fn masked_text(
    m: &MaskPolicy,
    caller: &ResultPlan,
    text: &[u8],
    scratch: &mut MaskScratch,
) -> Option<Vec<u8>> {
    match m.mask_text(caller, text, scratch) {
        MaskOutcome::Unchanged => None,
        MaskOutcome::Replaced(v) => Some(v.iter().copied().filter(|b| *b != 0).collect()),
        MaskOutcome::Null => Some(b"****".to_vec()),
    }
}

fn patch_len(mut b: BytesMut) -> Option<Bytes> {
    let len = u32::try_from(b.len() - 1).ok()?;
    b[1..5].copy_from_slice(&len.to_be_bytes());
    Some(b.freeze())
}
