//! HTTP/1.1 gateway (`protocol = "http"`) on the session pipeline: the
//! caller's bearer token in ([`adapter`]), the stored credential out, rules
//! on method and path ([`rules`]), bodies streamed ([`body`]) and recorded
//! up to a cap, request after request on a keep-alive connection
//! ([`exchange`]), response bodies masked ([`mask`]). The wire format is
//! `tollgate_codecs::http::h1`.
//! Protocol switches ([`upgrade`]): WebSocket relayed frame by frame with
//! its messages recorded ([`ws`], [`wsrec`]), SPDY/3.1 only as an
//! unrecorded tunnel where allowed ([`tunnel`]).

pub mod adapter;
mod body;
pub mod decode;
mod exchange;
pub(crate) mod http2;
mod io;
mod jsonbody;
mod mask;
pub mod rules;
mod tunnel;
mod upgrade;
mod ws;
pub mod wsrec;
