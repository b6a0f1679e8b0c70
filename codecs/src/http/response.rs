//! HTTP/1.1 response encoding: status line, caller headers (checked so no
//! value can inject a header or split the response) and a `Content-Length`
//! body.

use bytes::{BufMut, BytesMut};

use super::{HttpError, is_tchar, is_value_byte};

/// The reason phrase for the status codes tollgate sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Append a complete response to `out`. `Content-Length` is written here;
/// the caller must not pass it (or `Transfer-Encoding`) in `headers`.
pub fn encode_response(
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    out: &mut BytesMut,
) -> Result<(), HttpError> {
    if !(100..=999).contains(&status) {
        return Err(HttpError::BadResponseHeader { what: "status" });
    }
    for (name, value) in headers {
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(HttpError::BadResponseHeader { what: "name" });
        }
        if !value.bytes().all(is_value_byte) {
            return Err(HttpError::BadResponseHeader { what: "value" });
        }
        if name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
        {
            return Err(HttpError::BadResponseHeader {
                what: "framing header",
            });
        }
    }
    let reason = reason_phrase(status);
    let len_buf = itoa_buf(body.len());
    let len = len_buf.as_str();
    let approx = 32
        + reason.len()
        + len.len()
        + body.len()
        + headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum::<usize>();
    out.reserve(approx);
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(itoa_buf(status as usize).as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(reason.as_bytes());
    out.put_slice(b"\r\n");
    for (name, value) in headers {
        out.put_slice(name.as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"Content-Length: ");
    out.put_slice(len.as_bytes());
    out.put_slice(b"\r\n\r\n");
    out.put_slice(body);
    Ok(())
}

/// Decimal formatting without going through `fmt` machinery.
struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[self.start..]).unwrap_or("0")
    }
}

fn itoa_buf(mut n: usize) -> Digits {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    Digits { buf, start: i }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::http::{Limits, parse_request};

    #[test]
    fn encodes_status_headers_and_length() {
        let mut out = BytesMut::new();
        encode_response(
            404,
            &[("Content-Type", "application/json")],
            b"{\"error\":\"no\"}",
            &mut out,
        )
        .unwrap();
        assert_eq!(
            &out[..],
            &b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{\"error\":\"no\"}"[..]
        );
        let mut out = BytesMut::new();
        encode_response(200, &[], b"", &mut out).unwrap();
        assert_eq!(
            &out[..],
            &b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"[..]
        );
    }

    #[test]
    fn refuses_header_injection_and_framing_headers() {
        let mut out = BytesMut::new();
        for h in [
            ("X", "a\r\nSet-Cookie: x"),
            ("X", "a\nb"),
            ("X Y", "a"),
            ("", "a"),
            ("Content-Length", "5"),
            ("transfer-encoding", "chunked"),
        ] {
            assert!(encode_response(200, &[h], b"", &mut out).is_err(), "{h:?}");
        }
        assert!(out.is_empty());
        assert!(encode_response(42, &[], b"", &mut out).is_err());
    }

    #[test]
    fn a_response_head_parses_as_a_message_with_the_same_body() {
        // Reuse the request parser's head rules on our own output by
        // swapping the status line for a request line.
        let mut out = BytesMut::new();
        encode_response(201, &[("Host", "x"), ("X-A", "1")], b"12345", &mut out).unwrap();
        let text = String::from_utf8(out.to_vec()).unwrap();
        let as_request = text.replacen("HTTP/1.1 201 Created", "PUT / HTTP/1.1", 1);
        let mut b = BytesMut::from(as_request.as_bytes());
        let r = parse_request(&mut b, &Limits::default()).unwrap().unwrap();
        assert_eq!(&r.body()[..], b"12345");
        assert_eq!(r.header_str("x-a"), Some("1"));
    }
}
