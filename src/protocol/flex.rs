//! Kafka's flexible ("compact") encoding for the values of coordinator records in the
//! internal topics (`__consumer_offsets`, `__transaction_state`): a version, the fields,
//! compact strings and arrays (length + 1 as an unsigned varint), and a tagged-field
//! section after each struct.
//!
//! The reader treats its input as untrusted even though the broker wrote it: every length
//! is checked against what remains, and nothing is preallocated from a length field.

use bytes::{BufMut, BytesMut};
use uuid::Uuid;

/// Why a value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FlexError(pub String);

fn err(msg: impl Into<String>) -> FlexError {
    FlexError(msg.into())
}

/// Writes a flexible value: version, fields, then the top-level tagged fields.
pub struct FlexWriter {
    b: BytesMut,
    /// Top-level tagged fields, in increasing tag order.
    tagged: Vec<(u32, Vec<u8>)>,
}

impl FlexWriter {
    pub fn new(version: i16) -> FlexWriter {
        let mut b = BytesMut::new();
        b.put_i16(version);
        FlexWriter {
            b,
            tagged: Vec::new(),
        }
    }

    /// The value's bytes, its top-level tagged fields last.
    pub fn finish(mut self) -> Vec<u8> {
        let tagged = std::mem::take(&mut self.tagged);
        self.uvarint(tagged.len() as u64);
        for (tag, bytes) in tagged {
            self.uvarint(tag as u64);
            self.uvarint(bytes.len() as u64);
            self.b.put_slice(&bytes);
        }
        self.b.to_vec()
    }

    /// A top-level tagged field (tags must be added in increasing order).
    pub fn tagged(&mut self, tag: u32, bytes: Vec<u8>) {
        self.tagged.push((tag, bytes));
    }

    pub fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.b.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.b.put_u8(v as u8);
    }

    /// A compact array length.
    pub fn len(&mut self, n: usize) {
        self.uvarint(n as u64 + 1);
    }

    /// A compact null array or string.
    pub fn null(&mut self) {
        self.uvarint(0);
    }

    /// An empty tagged-field section (after a nested struct).
    pub fn tags(&mut self) {
        self.uvarint(0);
    }

    pub fn i8(&mut self, v: i8) {
        self.b.put_i8(v);
    }

    pub fn i16(&mut self, v: i16) {
        self.b.put_i16(v);
    }

    pub fn i32(&mut self, v: i32) {
        self.b.put_i32(v);
    }

    pub fn i64(&mut self, v: i64) {
        self.b.put_i64(v);
    }

    pub fn uuid(&mut self, id: Uuid) {
        self.b.put_slice(id.as_bytes());
    }

    pub fn string(&mut self, s: &str) {
        self.len(s.len());
        self.b.put_slice(s.as_bytes());
    }

    pub fn nullable(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.string(s),
            None => self.null(),
        }
    }

    pub fn bytes(&mut self, v: &[u8]) {
        self.len(v.len());
        self.b.put_slice(v);
    }

    pub fn strings(&mut self, v: &[String]) {
        self.len(v.len());
        for s in v {
            self.string(s);
        }
    }

    /// Topic ids with their partitions, each entry a struct with its own tag section.
    pub fn partitions(&mut self, v: &[(Uuid, Vec<i32>)]) {
        self.len(v.len());
        for (id, ps) in v {
            self.uuid(*id);
            self.len(ps.len());
            for p in ps {
                self.i32(*p);
            }
            self.tags();
        }
    }
}

/// Reads a flexible value written by [`FlexWriter`] (or by Kafka).
pub struct FlexReader<'a>(&'a [u8]);

impl<'a> FlexReader<'a> {
    /// The value's version and a reader of its fields.
    pub fn new(bytes: &'a [u8]) -> Result<(i16, FlexReader<'a>), FlexError> {
        let mut r = FlexReader(bytes);
        let version = r.i16()?;
        Ok((version, r))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], FlexError> {
        if self.0.len() < n {
            return Err(err(format!(
                "field of {n} bytes runs past the end ({} left)",
                self.0.len()
            )));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    /// The next `n` bytes as they are (fields of a non-flexible version).
    pub fn raw(&mut self, n: usize) -> Result<&'a [u8], FlexError> {
        self.take(n)
    }

    /// Nothing may follow the value.
    pub fn finish(&self) -> Result<(), FlexError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(err(format!("{} bytes after the value", self.0.len())))
        }
    }

    pub fn uvarint(&mut self) -> Result<u64, FlexError> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.take(1)?[0];
            v |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(err("varint longer than 10 bytes"))
    }

    /// A compact length; None for null.
    pub fn compact(&mut self) -> Result<Option<usize>, FlexError> {
        match self.uvarint()? {
            0 => Ok(None),
            n => {
                let n = (n - 1) as usize;
                // Every element takes at least one byte: a larger count cannot be real.
                if n > self.0.len() {
                    return Err(err(format!(
                        "length {n} exceeds the {} bytes left",
                        self.0.len()
                    )));
                }
                Ok(Some(n))
            }
        }
    }

    /// A compact array length (null counts as empty).
    pub fn count(&mut self) -> Result<usize, FlexError> {
        Ok(self.compact()?.unwrap_or(0))
    }

    /// Skip a tagged-field section.
    pub fn tags(&mut self) -> Result<(), FlexError> {
        self.tagged().map(|_| ())
    }

    /// A tagged-field section: (tag, bytes) of each field.
    pub fn tagged(&mut self) -> Result<Vec<(u64, &'a [u8])>, FlexError> {
        let mut out = Vec::new();
        for _ in 0..self.uvarint()? {
            let tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            out.push((tag, self.take(size)?));
        }
        Ok(out)
    }

    pub fn i8(&mut self) -> Result<i8, FlexError> {
        Ok(self.take(1)?[0] as i8)
    }

    pub fn i16(&mut self) -> Result<i16, FlexError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub fn i32(&mut self) -> Result<i32, FlexError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i64(&mut self) -> Result<i64, FlexError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    pub fn uuid(&mut self) -> Result<Uuid, FlexError> {
        let b = self.take(16)?;
        Ok(Uuid::from_slice(b).unwrap_or_default())
    }

    pub fn nullable(&mut self) -> Result<Option<String>, FlexError> {
        match self.compact()? {
            None => Ok(None),
            Some(n) => String::from_utf8(self.take(n)?.to_vec())
                .map(Some)
                .map_err(|_| err("string is not UTF-8")),
        }
    }

    pub fn string(&mut self) -> Result<String, FlexError> {
        self.nullable()?
            .ok_or_else(|| err("null where a string is required"))
    }

    pub fn bytes(&mut self) -> Result<Vec<u8>, FlexError> {
        let n = self.count()?;
        Ok(self.take(n)?.to_vec())
    }

    pub fn strings(&mut self) -> Result<Vec<String>, FlexError> {
        let mut out = Vec::new();
        for _ in 0..self.count()? {
            out.push(self.string()?);
        }
        Ok(out)
    }

    pub fn partitions(&mut self) -> Result<Vec<(Uuid, Vec<i32>)>, FlexError> {
        let mut out = Vec::new();
        for _ in 0..self.count()? {
            let id = self.uuid()?;
            let mut ps = Vec::new();
            for _ in 0..self.count()? {
                ps.push(self.i32()?);
            }
            self.tags()?;
            out.push((id, ps));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_with_tagged_fields() {
        let mut w = FlexWriter::new(1);
        w.i64(42);
        w.string("topic");
        w.nullable(None);
        w.len(2);
        w.i32(1);
        w.i32(2);
        w.tagged(0, 7i64.to_be_bytes().to_vec());
        w.tagged(2, 2i16.to_be_bytes().to_vec());
        let bytes = w.finish();
        let (version, mut r) = FlexReader::new(&bytes).unwrap();
        assert_eq!(version, 1);
        assert_eq!(r.i64().unwrap(), 42);
        assert_eq!(r.string().unwrap(), "topic");
        assert_eq!(r.nullable().unwrap(), None);
        assert_eq!(r.count().unwrap(), 2);
        assert_eq!((r.i32().unwrap(), r.i32().unwrap()), (1, 2));
        let tags = r.tagged().unwrap();
        assert_eq!(tags.len(), 2);
        assert_eq!((tags[1].0, tags[1].1), (2, &[0u8, 2][..]));
        r.finish().unwrap();
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        for bytes in [&[][..], &[0], &[0, 1, 0xff], &[0, 1, 0x80, 0x80, 0x80]] {
            if let Ok((_, mut r)) = FlexReader::new(bytes) {
                assert!(r.string().is_err() || r.tagged().is_err() || r.finish().is_err());
            }
        }
        let (_, mut r) = FlexReader::new(&[0, 0, 200, 1]).unwrap();
        assert!(r.strings().is_err());
    }
}
