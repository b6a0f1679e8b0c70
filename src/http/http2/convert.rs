//! An HTTP/2 request as the HTTP/1.1 head the relay judges and forwards,
//! and the relay's HTTP/1.1 response head as the HTTP/2 response the caller
//! gets. The request head is written out and parsed back by the same
//! HTTP/1.1 parser as every other request, so its caps and refusals (bad
//! bytes, oversize, smuggling shapes) hold for HTTP/2 callers too.

use bytes::{BufMut, Bytes, BytesMut};
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode};
use tollgate_codecs::http::h1::{HeadParser, Limits, RequestHead, ResponseHead, is_hop_by_hop};

/// Why a request cannot be relayed: the status it is answered with, and
/// the reason for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub status: u16,
    pub why: String,
}

fn refuse(status: u16, why: impl Into<String>) -> Refusal {
    Refusal {
        status,
        why: why.into(),
    }
}

/// The HTTP/1.1 head for an HTTP/2 request. `end_of_stream`: the request
/// has no body. Without `content-length`, a body is relayed chunked.
pub(crate) fn request_head(parts: &Parts, end_of_stream: bool) -> Result<RequestHead, Refusal> {
    // CONNECT (a tunnel) and extended CONNECT (RFC 8441, never enabled
    // here, so h2 refuses `:protocol` itself) have no place on a gateway
    // that judges each request.
    if parts.method == Method::CONNECT {
        return Err(refuse(405, "CONNECT over HTTP/2"));
    }
    let Some(pq) = parts.uri.path_and_query() else {
        return Err(refuse(400, "no :path"));
    };
    if !pq.as_str().starts_with('/') {
        return Err(refuse(400, "a :path that is not origin-form"));
    }
    let mut host: Option<&[u8]> = parts.uri.authority().map(|a| a.as_str().as_bytes());
    for v in parts.headers.get_all(http::header::HOST) {
        match host {
            Some(h) if h != v.as_bytes() => {
                return Err(refuse(400, ":authority and host disagree"));
            }
            Some(_) => {}
            None => host = Some(v.as_bytes()),
        }
    }
    let Some(host) = host else {
        return Err(refuse(400, "no :authority or host"));
    };
    let mut out = BytesMut::with_capacity(512);
    out.put_slice(parts.method.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(pq.as_str().as_bytes());
    out.put_slice(b" HTTP/1.1\r\nhost: ");
    out.put_slice(host);
    out.put_slice(b"\r\n");
    // RFC 9113 §8.2.3: cookie crumbs are joined with "; " for HTTP/1.1.
    let mut cookie: Option<Vec<u8>> = None;
    for (name, value) in &parts.headers {
        if name == http::header::HOST {
            continue;
        }
        if name == http::header::COOKIE {
            let c = cookie.get_or_insert_with(Vec::new);
            if !c.is_empty() {
                c.extend_from_slice(b"; ");
            }
            c.extend_from_slice(value.as_bytes());
            continue;
        }
        field(&mut out, name.as_str(), value.as_bytes());
    }
    if let Some(c) = cookie {
        field(&mut out, "cookie", &c);
    }
    let has_length = parts.headers.contains_key(http::header::CONTENT_LENGTH);
    if !end_of_stream && !has_length {
        field(&mut out, "transfer-encoding", b"chunked");
    }
    out.put_slice(b"\r\n");
    let mut parser = HeadParser::new(&Limits::default());
    match parser.request(&mut out) {
        Ok(Some(head)) if out.is_empty() => Ok(head),
        Ok(_) => Err(refuse(400, "the request did not read as one head")),
        Err(e) => Err(refuse(e.status(), e.to_string())),
    }
}

fn field(out: &mut BytesMut, name: &str, value: &[u8]) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// The HTTP/2 response for the relay's response head: hop-by-hop fields
/// (and the framing the HTTP/1.1 side used) left out.
pub(crate) fn response(head: &ResponseHead) -> Result<Response<()>, String> {
    let status =
        StatusCode::from_u16(head.status()).map_err(|e| format!("response status: {e}"))?;
    let mut r = Response::builder().status(status);
    for (name, value) in head.fields().iter() {
        if is_hop_by_hop(name)
            || name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("keep-alive")
            || name.eq_ignore_ascii_case("proxy-connection")
        {
            continue;
        }
        let name = http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
            .map_err(|e| format!("response field {name:?}: {e}"))?;
        let value =
            HeaderValue::from_bytes(value).map_err(|e| format!("response field {name}: {e}"))?;
        r = r.header(name, value);
    }
    r.body(()).map_err(|e| e.to_string())
}

/// A trailer section for HTTP/2 from the relay's decoded chunked trailers.
pub(crate) fn trailers(
    fields: &tollgate_codecs::http::h1::Fields,
) -> Result<http::HeaderMap, String> {
    let mut map = http::HeaderMap::new();
    for (name, value) in fields.iter() {
        if is_hop_by_hop(name) {
            continue;
        }
        let name = http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
            .map_err(|e| format!("trailer {name:?}: {e}"))?;
        let value = HeaderValue::from_bytes(value).map_err(|e| format!("trailer {name}: {e}"))?;
        map.append(name, value);
    }
    Ok(map)
}

/// An HTTP/2 request's trailers as the chunked body's last chunk.
pub(crate) fn last_chunk(trailers: Option<&http::HeaderMap>) -> Bytes {
    let mut out = BytesMut::from(&b"0\r\n"[..]);
    for (name, value) in trailers.into_iter().flatten() {
        field(&mut out, name.as_str(), value.as_bytes());
    }
    out.put_slice(b"\r\n");
    out.freeze()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tollgate_codecs::http::h1::BodyFraming;

    fn parts(req: http::request::Builder) -> Parts {
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_request_reads_as_its_http1_head() {
        let p = parts(
            http::Request::builder()
                .method("POST")
                .uri("https://api.example:8443/v1/items?x=1")
                .header("authorization", "Bearer t")
                .header("cookie", "a=1")
                .header("cookie", "b=2"),
        );
        let h = request_head(&p, false).unwrap();
        assert_eq!(h.method(), "POST");
        assert_eq!(h.path(), "/v1/items");
        assert_eq!(h.query(), Some("x=1"));
        assert_eq!(h.host(), Some(&b"api.example:8443"[..]));
        assert_eq!(h.fields().get("cookie"), Some(&b"a=1; b=2"[..]));
        assert_eq!(h.framing(), BodyFraming::Chunked);
        let h = request_head(&p, true).unwrap();
        assert_eq!(h.framing(), BodyFraming::None);
    }

    #[test]
    fn refusals() {
        let connect = parts(
            http::Request::builder()
                .method("CONNECT")
                .uri("https://db.internal:5432"),
        );
        assert_eq!(request_head(&connect, true).unwrap_err().status, 405);
        let star = parts(http::Request::builder().method("OPTIONS").uri("*"));
        assert_eq!(request_head(&star, true).unwrap_err().status, 400);
        let two_hosts = parts(
            http::Request::builder()
                .uri("https://a.example/")
                .header("host", "b.example"),
        );
        assert_eq!(request_head(&two_hosts, true).unwrap_err().status, 400);
    }

    #[test]
    fn responses_lose_hop_by_hop_fields() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\nVia: 1.1 tollgate\r\n\r\n"[..],
        );
        let head = HeadParser::new(&Limits::default())
            .response(&mut buf)
            .unwrap()
            .unwrap();
        let r = response(&head).unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/json");
        assert!(r.headers().get("transfer-encoding").is_none());
        assert!(r.headers().get("connection").is_none());
        assert_eq!(r.headers()["via"], "1.1 tollgate");
    }
}
