//! Chunked transfer coding (RFC 9112 §7.1): an incremental decoder that hands
//! out data as it arrives (a body is never held whole), and the encoder.

use bytes::{Buf, Bytes, BytesMut};

use super::fields::{Fields, SectionScan, parse_field_lines};
use super::{H1Error, Limits, is_ows};

/// What [`ChunkedDecoder::decode`] found next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkEvent {
    /// Body bytes, already de-chunked: a whole chunk or the part of one that
    /// has arrived.
    Data(Bytes),
    /// The last chunk and the trailer section (often empty); the body is
    /// complete and the bytes after it in the buffer are the next message.
    End(Fields),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size,
    Data { remaining: u64 },
    DataEnd,
    Trailers,
    Done,
}

/// Decodes one chunked body from the front of a buffer, across as many reads
/// as it takes.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    limits: Limits,
    trailer_scan: SectionScan,
}

/// Trailer fields refused because a recipient that merges trailers into the
/// header section would let them change framing, routing or credentials
/// after the gateway judged the head (RFC 9110 §6.5.1).
const FORBIDDEN_TRAILERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "trailer",
    "host",
    "connection",
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "content-type",
    "content-encoding",
    "expect",
    "upgrade",
];

impl ChunkedDecoder {
    pub fn new(limits: &Limits) -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::Size,
            limits: *limits,
            trailer_scan: SectionScan::default(),
        }
    }

    /// The last chunk and trailers have been decoded.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consume from the front of `buf` and return the next event, or
    /// `Ok(None)` when more bytes are needed (or the body is done). Only the
    /// bytes of the body are consumed; a pipelined next message stays.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<ChunkEvent>, H1Error> {
        loop {
            match self.state {
                State::Size => {
                    let Some(size) = self.size_line(buf)? else {
                        return Ok(None);
                    };
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::Data { remaining: size }
                    };
                }
                State::Data { remaining } => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    // Bounded by buf.len(), so it fits in usize.
                    let n = remaining.min(buf.len() as u64) as usize;
                    let left = remaining - n as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data { remaining: left }
                    };
                    return Ok(Some(ChunkEvent::Data(buf.split_to(n).freeze())));
                }
                State::DataEnd => {
                    if !b"\r\n".starts_with(&buf[..buf.len().min(2)]) {
                        return Err(H1Error::MissingChunkCrlf);
                    }
                    if buf.len() < 2 {
                        return Ok(None);
                    }
                    buf.advance(2);
                    self.state = State::Size;
                }
                State::Trailers => return self.trailers(buf),
                State::Done => return Ok(None),
            }
        }
    }

    /// Consume a complete chunk-size line and return the size.
    fn size_line(&self, buf: &mut BytesMut) -> Result<Option<u64>, H1Error> {
        let max = self.limits.max_chunk_line;
        let window = &buf[..buf.len().min(max + 2)];
        let Some(lf) = memchr::memchr(b'\n', window) else {
            if buf.len() >= max + 2 {
                return Err(H1Error::ChunkLineTooLong { max });
            }
            return Ok(None);
        };
        if lf == 0 || window[lf - 1] != b'\r' {
            return Err(H1Error::BareLf { line: 0 });
        }
        if lf - 1 > max {
            return Err(H1Error::ChunkLineTooLong { max });
        }
        let size = parse_size_line(&window[..lf - 1])?;
        buf.advance(lf + 1);
        Ok(Some(size))
    }

    fn trailers(&mut self, buf: &mut BytesMut) -> Result<Option<ChunkEvent>, H1Error> {
        let max = self.limits.max_trailers;
        let too_large = H1Error::TrailersTooLarge { max };
        let max_fields = self.limits.max_headers;
        let Some(len) = self
            .trailer_scan
            .find_end(buf, max, 0, max_fields, too_large)?
        else {
            return Ok(None);
        };
        let raw = buf.split_to(len).freeze();
        let lines = parse_field_lines(&raw, 0, len - 2, 1)?;
        let fields = Fields::new(raw, lines);
        for (i, (name, _)) in fields.iter().enumerate() {
            if FORBIDDEN_TRAILERS
                .iter()
                .any(|f| f.eq_ignore_ascii_case(name))
            {
                return Err(H1Error::ForbiddenTrailer { line: i + 1 });
            }
        }
        self.state = State::Done;
        Ok(Some(ChunkEvent::End(fields)))
    }
}

/// `chunk-size *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )`; the
/// extensions are checked and skipped. At most 16 hex digits, so the size
/// cannot overflow a u64.
fn parse_size_line(line: &[u8]) -> Result<u64, H1Error> {
    if memchr::memchr(b'\r', line).is_some() {
        return Err(H1Error::BareCr { line: 0 });
    }
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err(H1Error::BadChunkSize);
    }
    let size = line[..digits].iter().fold(0u64, |n, &d| {
        // Hex digits only, checked above.
        let v = (d as char).to_digit(16).unwrap_or(0);
        (n << 4) | u64::from(v)
    });
    let mut rest = &line[digits..];
    // BWS is allowed only before a ';'.
    while let Some((&b';', after)) = skip_ows(rest).split_first() {
        rest = skip_token(skip_ows(after)).ok_or(H1Error::BadChunkExtension)?;
        if let Some((&b'=', after)) = skip_ows(rest).split_first() {
            let val = skip_ows(after);
            rest = match val.first() {
                Some(b'"') => skip_quoted(val),
                _ => skip_token(val),
            }
            .ok_or(H1Error::BadChunkExtension)?;
        }
    }
    if !rest.is_empty() {
        return Err(match line[digits] {
            b';' | b' ' | b'\t' => H1Error::BadChunkExtension,
            _ => H1Error::BadChunkSize,
        });
    }
    Ok(size)
}

fn skip_ows(v: &[u8]) -> &[u8] {
    let n = v.iter().take_while(|&&b| is_ows(b)).count();
    &v[n..]
}

/// Skip a non-empty token; `None` if there is none.
fn skip_token(v: &[u8]) -> Option<&[u8]> {
    let n = v.iter().take_while(|&&b| crate::http::is_tchar(b)).count();
    (n > 0).then(|| &v[n..])
}

/// Skip a quoted-string starting at `v[0] == '"'`.
fn skip_quoted(v: &[u8]) -> Option<&[u8]> {
    let mut i = 1;
    while i < v.len() {
        match v[i] {
            b'"' => return Some(&v[i + 1..]),
            b'\\' => {
                let next = *v.get(i + 1)?;
                if !(next == b'\t' || next >= 0x20) || next == 0x7f {
                    return None;
                }
                i += 2;
            }
            b if b == b'\t' || (b >= 0x20 && b != 0x7f) => i += 1,
            _ => return None,
        }
    }
    None
}

/// Write one chunk (`size CRLF data CRLF`). Empty `data` writes nothing:
/// a zero-size chunk would end the body.
pub fn encode_chunk(data: &[u8], out: &mut BytesMut) {
    if data.is_empty() {
        return;
    }
    let mut hex = [0u8; 16];
    let mut n = data.len();
    let mut i = hex.len();
    while n > 0 || i == hex.len() {
        i -= 1;
        hex[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
    }
    out.reserve(hex.len() - i + data.len() + 4);
    out.extend_from_slice(&hex[i..]);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Write the last chunk and the trailer section (each line copied as it
/// was received), ending the body.
pub fn encode_last_chunk(trailers: Option<&Fields>, out: &mut BytesMut) {
    out.extend_from_slice(b"0\r\n");
    if let Some(t) = trailers {
        for i in 0..t.len() {
            out.extend_from_slice(t.raw_line(i).unwrap_or_default());
        }
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn size_lines() {
        assert_eq!(parse_size_line(b"1a"), Ok(26));
        assert_eq!(parse_size_line(b"ffffffffffffffff"), Ok(u64::MAX));
        assert_eq!(
            parse_size_line(b"10000000000000000"),
            Err(H1Error::BadChunkSize)
        );
        assert_eq!(parse_size_line(b"5 ; a=b ;c;d=\"x\\\"y\""), Ok(5));
        assert_eq!(parse_size_line(b""), Err(H1Error::BadChunkSize));
        assert_eq!(parse_size_line(b" 5"), Err(H1Error::BadChunkSize));
        assert_eq!(parse_size_line(b"-5"), Err(H1Error::BadChunkSize));
        assert_eq!(parse_size_line(b"5;"), Err(H1Error::BadChunkExtension));
        assert_eq!(
            parse_size_line(b"5;a=\"open"),
            Err(H1Error::BadChunkExtension)
        );
        assert_eq!(parse_size_line(b"5;a=b c"), Err(H1Error::BadChunkExtension));
        assert_eq!(parse_size_line(b"5x"), Err(H1Error::BadChunkSize));
        assert_eq!(parse_size_line(b"5 "), Err(H1Error::BadChunkExtension));
        assert_eq!(parse_size_line(b"5\r"), Err(H1Error::BareCr { line: 0 }));
    }

    #[test]
    fn encoder_round_trips() {
        let mut out = BytesMut::new();
        encode_chunk(b"", &mut out);
        assert!(out.is_empty());
        encode_chunk(&[b'x'; 300], &mut out);
        assert!(out.starts_with(b"12c\r\n"));
        encode_last_chunk(None, &mut out);
        let mut d = ChunkedDecoder::new(&Limits::default());
        let ChunkEvent::Data(data) = d.decode(&mut out).unwrap().unwrap() else {
            panic!("data expected")
        };
        assert_eq!(data.len(), 300);
        assert_eq!(
            d.decode(&mut out).unwrap(),
            Some(ChunkEvent::End(Fields::empty()))
        );
        assert!(d.is_done() && out.is_empty());
    }
}
