//! The two primitive encodings every binary structure is built from: fixed-width
//! little-endian integers and LEB128 varints (unsigned; signed values are zigzag-mapped).

use crate::FormatError;

/// Appends encoded values to a byte vector.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with_capacity(n: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(n),
        }
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u32_le(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64_le(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    /// Unsigned LEB128: 7 bits per byte, low bits first, high bit set on all but the last.
    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }
    /// Zigzag (0,-1,1,-2,... -> 0,1,2,3,...) then LEB128, so small negative numbers stay short.
    pub fn varint_signed(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }
    /// A varint length followed by that many bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.raw(b);
    }
    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads encoded values from a byte slice; every read is bounds-checked.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FormatError> {
        if self.remaining() < n {
            return Err(FormatError::Truncated(what));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], FormatError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    pub fn u8(&mut self, what: &'static str) -> Result<u8, FormatError> {
        Ok(self.take(1, what)?[0])
    }
    pub fn u32_le(&mut self, what: &'static str) -> Result<u32, FormatError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    pub fn u64_le(&mut self, what: &'static str) -> Result<u64, FormatError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    pub fn varint(&mut self, what: &'static str) -> Result<u64, FormatError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.u8(what)?;
            let bits = (b & 0x7f) as u64;
            // The tenth byte may only carry the one remaining bit of a u64.
            if i == 9 && bits > 1 {
                return Err(FormatError::invalid(what, "varint overflows 64 bits"));
            }
            v |= bits << (7 * i);
            if b & 0x80 == 0 {
                // Reject non-minimal encodings so every value has exactly one encoding,
                // which keeps tree ids a function of the tree's content.
                if i > 0 && b == 0 {
                    return Err(FormatError::invalid(what, "non-minimal varint"));
                }
                return Ok(v);
            }
        }
        Err(FormatError::invalid(what, "varint longer than 10 bytes"))
    }
    pub fn varint_signed(&mut self, what: &'static str) -> Result<i64, FormatError> {
        let u = self.varint(what)?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
    pub fn varint_u32(&mut self, what: &'static str) -> Result<u32, FormatError> {
        let v = self.varint(what)?;
        u32::try_from(v).map_err(|_| FormatError::invalid(what, format!("{v} exceeds 32 bits")))
    }
    /// A length-prefixed byte string of at most `max` bytes.
    pub fn bytes(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], FormatError> {
        let n = self.varint(what)?;
        if n > max as u64 {
            return Err(FormatError::invalid(
                what,
                format!("length {n} exceeds {max}"),
            ));
        }
        self.take(n as usize, what)
    }
    pub fn finish(self) -> Result<(), FormatError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(FormatError::Trailing(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn varint_golden() {
        let mut w = Writer::new();
        w.varint(0);
        w.varint(127);
        w.varint(128);
        w.varint(300);
        w.varint_signed(-1);
        w.varint_signed(1);
        assert_eq!(w.buf, [0x00, 0x7f, 0x80, 0x01, 0xac, 0x02, 0x01, 0x02]);
    }

    #[test]
    fn rejects_non_minimal_and_overlong() {
        assert!(Reader::new(&[0x80, 0x00]).varint("x").is_err());
        assert!(Reader::new(&[0xff; 11]).varint("x").is_err());
        assert!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02])
                .varint("x")
                .is_err()
        );
        assert_eq!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).varint("x"),
            Ok(u64::MAX)
        );
    }

    proptest! {
        #[test]
        fn varint_roundtrip(v: u64, s: i64) {
            let mut w = Writer::new();
            w.varint(v);
            w.varint_signed(s);
            let mut r = Reader::new(&w.buf);
            prop_assert_eq!(r.varint("v").unwrap(), v);
            prop_assert_eq!(r.varint_signed("s").unwrap(), s);
            r.finish().unwrap();
        }
    }
}
