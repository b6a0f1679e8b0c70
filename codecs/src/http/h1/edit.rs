//! Re-encoding a head for the next hop: drop hop-by-hop and chosen fields,
//! append new ones (a credential, `Via`, `X-Forwarded-For`, `Forwarded`),
//! and copy every other line exactly as it arrived, so the gateway never
//! re-serialises a value it did not mean to change.
//!
//! New `Via`/`X-Forwarded-For`/`Forwarded` values are appended as new field
//! lines rather than by editing an existing line: RFC 9110 §5.3 makes
//! repeated lines of a list field equal to one comma-joined line.

use std::net::IpAddr;

use bytes::BytesMut;

use super::head::{RequestHead, ResponseHead};
use super::{Fields, H1Error, is_token, list_elements};
use crate::http::is_value_byte;

/// Fields that describe one connection, never forwarded (RFC 9110 §7.6.1,
/// plus the proxy credentials of RFC 9110 §11.7, which the first proxy
/// consumes).
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
];

/// Fields a `Connection` header may not nominate for removal: dropping them
/// would change how the next hop frames or routes the message.
const NOT_NOMINABLE: &[&str] = &["host", "content-length"];

/// Whether `name` is in [`HOP_BY_HOP`] (case-insensitive).
pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Builds the head sent to the next hop from a parsed one.
#[derive(Debug, Clone)]
pub struct HeadEditor<'a> {
    request: bool,
    start_line: Vec<u8>,
    fields: &'a Fields,
    keep: Vec<bool>,
    added: Vec<u8>,
}

impl<'a> HeadEditor<'a> {
    /// Start from a request head, all of its lines kept.
    pub fn for_request(head: &'a RequestHead) -> HeadEditor<'a> {
        HeadEditor::new(true, head.raw(), head.fields())
    }

    /// Start from a response head, all of its lines kept.
    pub fn for_response(head: &'a ResponseHead) -> HeadEditor<'a> {
        HeadEditor::new(false, head.raw(), head.fields())
    }

    fn new(request: bool, raw: &[u8], fields: &'a Fields) -> HeadEditor<'a> {
        let end = memchr::memchr(b'\n', raw).map_or(raw.len(), |i| i + 1);
        HeadEditor {
            request,
            start_line: raw[..end].to_vec(),
            fields,
            keep: vec![true; fields.len()],
            added: Vec::new(),
        }
    }

    /// Replace the request line (to send origin-form to an upstream, to
    /// rewrite a path prefix, or to speak HTTP/1.1 upstream).
    pub fn set_request_line(
        &mut self,
        method: &str,
        target: &str,
        minor_version: u8,
    ) -> Result<(), H1Error> {
        if !self.request {
            return Err(H1Error::BadOutgoingField {
                what: "request line of a response",
            });
        }
        if !is_token(method.as_bytes()) {
            return Err(H1Error::BadOutgoingField { what: "method" });
        }
        let t = target.as_bytes();
        if t.is_empty() || !t.iter().all(|b| (0x21..=0x7e).contains(b)) {
            return Err(H1Error::BadOutgoingField { what: "target" });
        }
        if minor_version > 1 {
            return Err(H1Error::BadOutgoingField { what: "version" });
        }
        self.start_line.clear();
        self.start_line.extend_from_slice(method.as_bytes());
        self.start_line.push(b' ');
        self.start_line.extend_from_slice(t);
        self.start_line.extend_from_slice(b" HTTP/1.");
        self.start_line.push(b'0' + minor_version);
        self.start_line.extend_from_slice(b"\r\n");
        Ok(())
    }

    /// Drop every line named `name`; returns how many were dropped.
    pub fn remove(&mut self, name: &str) -> usize {
        let mut n = 0;
        for (i, keep) in self.keep.iter_mut().enumerate() {
            if *keep
                && self
                    .fields
                    .name_at(i)
                    .is_some_and(|f| f.eq_ignore_ascii_case(name))
            {
                *keep = false;
                n += 1;
            }
        }
        n
    }

    /// Drop the [`HOP_BY_HOP`] fields and those the `Connection` header
    /// names (except Host and Content-Length, which a client could otherwise
    /// have stripped to desynchronise the next hop). Framing and upgrade
    /// fields the next hop needs are the caller's to append again.
    pub fn remove_hop_by_hop(&mut self) {
        let fields = self.fields;
        for token in fields.get_all("connection").flat_map(list_elements) {
            let Ok(name) = std::str::from_utf8(token) else {
                continue;
            };
            if !NOT_NOMINABLE.iter().any(|p| p.eq_ignore_ascii_case(name)) {
                self.remove(name);
            }
        }
        for h in HOP_BY_HOP {
            self.remove(h);
        }
    }

    /// Append `name: value`. Refuses a name that is not a token and a value
    /// with CR, LF, NUL, another control byte or surrounding whitespace, so a
    /// configured credential cannot inject a line.
    pub fn append(&mut self, name: &str, value: &[u8]) -> Result<(), H1Error> {
        if !is_token(name.as_bytes()) {
            return Err(H1Error::BadOutgoingField { what: "name" });
        }
        let edge_ws = |b: Option<&u8>| b.is_some_and(|&b| b == b' ' || b == b'\t');
        if !value.iter().all(|&b| is_value_byte(b) && b != 0x7f)
            || edge_ws(value.first())
            || edge_ws(value.last())
        {
            return Err(H1Error::BadOutgoingField { what: "value" });
        }
        self.added.extend_from_slice(name.as_bytes());
        self.added.extend_from_slice(b": ");
        self.added.extend_from_slice(value);
        self.added.extend_from_slice(b"\r\n");
        Ok(())
    }

    /// Append `Via: 1.x <pseudonym>` for a message received as HTTP/1.x.
    pub fn append_via(&mut self, received_minor: u8, pseudonym: &str) -> Result<(), H1Error> {
        if !is_token(pseudonym.as_bytes()) || received_minor > 1 {
            return Err(H1Error::BadOutgoingField { what: "via" });
        }
        let v = format!("1.{received_minor} {pseudonym}");
        self.append("Via", v.as_bytes())
    }

    /// Append `X-Forwarded-For: <client>`.
    pub fn append_x_forwarded_for(&mut self, client: IpAddr) -> Result<(), H1Error> {
        self.append("X-Forwarded-For", client.to_string().as_bytes())
    }

    /// Append `Forwarded: for=…;proto=…[;host="…"]` (RFC 7239).
    pub fn append_forwarded(
        &mut self,
        client: IpAddr,
        proto: &str,
        host: Option<&[u8]>,
    ) -> Result<(), H1Error> {
        if !is_token(proto.as_bytes()) {
            return Err(H1Error::BadOutgoingField { what: "proto" });
        }
        let mut v = forwarded_for(client).into_bytes();
        v.extend_from_slice(b";proto=");
        v.extend_from_slice(proto.as_bytes());
        if let Some(h) = host {
            // Host bytes (checked when parsed) hold no '"' or '\\'.
            if h.iter().any(|&b| b == b'"' || b == b'\\') {
                return Err(H1Error::BadOutgoingField { what: "host" });
            }
            v.extend_from_slice(b";host=\"");
            v.extend_from_slice(h);
            v.push(b'"');
        }
        self.append("Forwarded", &v)
    }

    /// Write the head: the start line, the kept lines as received, the
    /// appended lines, the empty line.
    pub fn encode(&self, out: &mut BytesMut) {
        out.extend_from_slice(&self.start_line);
        for (i, keep) in self.keep.iter().enumerate() {
            if *keep {
                out.extend_from_slice(self.fields.raw_line(i).unwrap_or_default());
            }
        }
        out.extend_from_slice(&self.added);
        out.extend_from_slice(b"\r\n");
    }
}

/// The `for=` element of a `Forwarded` value: IPv6 is bracketed and quoted.
pub fn forwarded_for(client: IpAddr) -> String {
    match client {
        IpAddr::V4(a) => format!("for={a}"),
        IpAddr::V6(a) => format!("for=\"[{a}]\""),
    }
}
