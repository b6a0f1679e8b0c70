//! A bounds-checked cursor over a message body; every read is fallible, nothing panics.

use super::error::PgError;

#[derive(Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    tag: u8,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(tag: u8, buf: &'a [u8]) -> Self {
        Reader { buf, tag }
    }

    pub(crate) fn err(&self, what: &'static str) -> PgError {
        PgError::Malformed {
            tag: self.tag,
            what,
        }
    }

    pub(crate) fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], PgError> {
        if n > self.buf.len() {
            return Err(self.err(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], PgError> {
        let Some((head, tail)) = self.buf.split_first_chunk::<N>() else {
            return Err(self.err(what));
        };
        self.buf = tail;
        Ok(*head)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, PgError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn i16(&mut self, what: &'static str) -> Result<i16, PgError> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, PgError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32, PgError> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, PgError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// A NUL-terminated string, returned without its NUL.
    pub(crate) fn cstr(&mut self, what: &'static str) -> Result<&'a [u8], PgError> {
        let end = memchr::memchr(0, self.buf).ok_or_else(|| self.err(what))?;
        let s = &self.buf[..end];
        self.buf = &self.buf[end + 1..];
        Ok(s)
    }

    /// PostgreSQL checks that a message was consumed exactly (`pq_getmsgend`); so do we.
    pub(crate) fn finish(&self) -> Result<(), PgError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.err("trailing bytes after the message"))
        }
    }
}

/// Advances `r` past `count` length-prefixed values (-1 = NULL), checking
/// every length against what is left, and returns the bytes they span.
pub(crate) fn skip_values<'a>(r: &mut Reader<'a>, count: u16) -> Result<&'a [u8], PgError> {
    let start = r.remaining();
    for _ in 0..count {
        let len = r.i32("value length runs past the message")?;
        if len < -1 {
            return Err(r.err("negative value length"));
        }
        if len > 0 {
            r.take(len as usize, "value runs past the message")?;
        }
    }
    Ok(&start[..start.len() - r.remaining().len()])
}

/// Validated length-prefixed values (DataRow columns, Bind parameters,
/// FunctionCall arguments): `None` is SQL NULL.
#[derive(Clone)]
pub struct Values<'a> {
    r: Reader<'a>,
    left: u16,
}

impl<'a> Values<'a> {
    pub(crate) fn new(raw: &'a [u8], count: u16) -> Self {
        Values {
            r: Reader::new(0, raw),
            left: count,
        }
    }
}

impl std::fmt::Debug for Values<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

impl<'a> Iterator for Values<'a> {
    type Item = Option<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The span was validated when the message was parsed, so these reads
        // cannot fail; ending the iteration is the panic-free answer if they did.
        let len = self.r.i32("").ok()?;
        if len < 0 {
            return Some(None);
        }
        self.r.take(len as usize, "").ok().map(Some)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

impl ExactSizeIterator for Values<'_> {}

/// Validated format codes (0 text, 1 binary), two bytes each.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Formats<'a> {
    raw: &'a [u8],
}

impl<'a> Formats<'a> {
    pub(crate) fn read(
        r: &mut Reader<'a>,
        count: u16,
        what: &'static str,
    ) -> Result<Self, PgError> {
        Ok(Formats {
            raw: r.take(count as usize * 2, what)?,
        })
    }

    pub fn len(&self) -> usize {
        self.raw.len() / 2
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<i16> {
        let b = self.raw.get(i * 2..i * 2 + 2)?;
        Some(i16::from_be_bytes([b[0], b[1]]))
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = i16> + 'a {
        self.raw
            .chunks_exact(2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
    }

    /// The format of column/parameter `i` under the protocol's rule: no codes
    /// means all text, one code applies to all, otherwise one per item.
    pub fn format_of(&self, i: usize) -> i16 {
        match self.len() {
            0 => 0,
            1 => self.get(0).unwrap_or(0),
            _ => self.get(i).unwrap_or(0),
        }
    }
}

impl std::fmt::Debug for Formats<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Validated type OIDs, four bytes each.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Oids<'a> {
    raw: &'a [u8],
}

impl<'a> Oids<'a> {
    pub(crate) fn read(
        r: &mut Reader<'a>,
        count: u16,
        what: &'static str,
    ) -> Result<Self, PgError> {
        Ok(Oids {
            raw: r.take(count as usize * 4, what)?,
        })
    }

    pub fn len(&self) -> usize {
        self.raw.len() / 4
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        self.raw
            .chunks_exact(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

impl std::fmt::Debug for Oids<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A Reader over a frame's body, after checking the frame is of the expected type.
pub(crate) fn expect(frame: &super::Frame, tag: u8) -> Result<Reader<'_>, PgError> {
    if frame.tag() != tag {
        return Err(PgError::UnexpectedMessage {
            expected: tag,
            got: frame.tag(),
        });
    }
    Ok(Reader::new(tag, frame.body()))
}

/// `parse(&Frame)` (checks the tag) and `parse_body(&[u8])` for a typed view
/// whose layout is read by its `read(Reader)`.
macro_rules! typed_view {
    ($ty:ident, $tag:expr) => {
        impl<'a> $ty<'a> {
            pub const TAG: u8 = $tag;

            #[allow(clippy::self_named_constructors)]
            pub fn parse(frame: &'a $crate::pg::Frame) -> Result<Self, $crate::pg::PgError> {
                Self::read($crate::pg::read::expect(frame, $tag)?)
            }

            pub fn parse_body(body: &'a [u8]) -> Result<Self, $crate::pg::PgError> {
                Self::read($crate::pg::read::Reader::new($tag, body))
            }
        }
    };
}
pub(crate) use typed_view;
