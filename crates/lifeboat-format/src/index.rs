//! Blob entries (what a pack holds and where) and index segments (which packs hold which
//! blobs). A pack's trailer and an index segment use the same 46-byte entry, so the index can
//! be rebuilt from pack trailers alone.

use crate::codec::{Reader, Writer};
use crate::{FormatError, Id};

/// What a blob holds. Tree blobs live in packs of their own so that listing a snapshot never
/// reads file data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlobType {
    Data = 0,
    Tree = 1,
}

impl BlobType {
    fn from_u8(v: u8) -> Result<Self, FormatError> {
        match v {
            0 => Ok(BlobType::Data),
            1 => Ok(BlobType::Tree),
            _ => Err(FormatError::invalid("blob type", format!("{v}"))),
        }
    }
}

/// How a blob's plaintext was compressed before sealing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Stored as is (compression would not have shrunk it).
    None = 0,
    /// One zstd frame.
    Zstd = 1,
}

impl Compression {
    fn from_u8(v: u8) -> Result<Self, FormatError> {
        match v {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Zstd),
            _ => Err(FormatError::invalid("compression", format!("{v}"))),
        }
    }
}

/// One blob inside a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobEntry {
    pub id: Id,
    pub blob_type: BlobType,
    pub compression: Compression,
    /// Byte offset of the sealed blob from the start of the pack file.
    pub offset: u32,
    /// Length of the sealed blob (ciphertext plus the 16-byte tag).
    pub stored_len: u32,
    /// Length of the plaintext before compression.
    pub raw_len: u32,
}

/// Encoded length of one [`BlobEntry`].
pub const BLOB_ENTRY_LEN: usize = 1 + 1 + 32 + 4 + 4 + 4;

/// Largest plaintext blob any reader accepts (the chunker's maximum is 16 MiB; trees are
/// bounded by this too).
pub const MAX_BLOB_LEN: u32 = 64 << 20;

impl BlobEntry {
    fn encode(&self, w: &mut Writer) {
        w.u8(self.blob_type as u8);
        w.u8(self.compression as u8);
        w.raw(&self.id.0);
        w.u32_le(self.offset);
        w.u32_le(self.stored_len);
        w.u32_le(self.raw_len);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, FormatError> {
        let blob_type = BlobType::from_u8(r.u8("blob type")?)?;
        let compression = Compression::from_u8(r.u8("compression")?)?;
        let id = Id(r.array("blob id")?);
        let offset = r.u32_le("blob offset")?;
        let stored_len = r.u32_le("blob stored length")?;
        let raw_len = r.u32_le("blob raw length")?;
        if stored_len < 16 {
            return Err(FormatError::invalid(
                "blob stored length",
                "shorter than an AEAD tag",
            ));
        }
        if raw_len > MAX_BLOB_LEN || stored_len > MAX_BLOB_LEN + 64 {
            return Err(FormatError::invalid(
                "blob length",
                "exceeds the 64 MiB limit",
            ));
        }
        if compression == Compression::None && stored_len != raw_len + 16 {
            return Err(FormatError::invalid(
                "blob stored length",
                "does not match raw length",
            ));
        }
        Ok(BlobEntry {
            id,
            blob_type,
            compression,
            offset,
            stored_len,
            raw_len,
        })
    }
}

/// Encodes a pack trailer's plaintext: u32 count, then the entries.
pub fn encode_blob_entries(entries: &[BlobEntry]) -> Vec<u8> {
    let mut w = Writer::with_capacity(4 + entries.len() * BLOB_ENTRY_LEN);
    w.u32_le(entries.len() as u32);
    for e in entries {
        e.encode(&mut w);
    }
    w.into_inner()
}

/// Decodes a pack trailer's plaintext and checks that the blobs tile the pack between the
/// header (`data_start`) and the trailer (`data_end`) in order, with no gap or overlap.
pub fn decode_blob_entries(
    data: &[u8],
    data_start: u64,
    data_end: u64,
) -> Result<Vec<BlobEntry>, FormatError> {
    let mut r = Reader::new(data);
    let n = r.u32_le("blob count")? as usize;
    if n.saturating_mul(BLOB_ENTRY_LEN) != r.remaining() {
        return Err(FormatError::invalid(
            "blob count",
            format!("{n} entries do not fit"),
        ));
    }
    let mut out = Vec::with_capacity(n);
    let mut pos = data_start;
    for _ in 0..n {
        let e = BlobEntry::decode(&mut r)?;
        if e.offset as u64 != pos {
            return Err(FormatError::invalid(
                "blob offset",
                format!("{} != expected {pos}", e.offset),
            ));
        }
        pos += e.stored_len as u64;
        out.push(e);
    }
    if pos != data_end {
        return Err(FormatError::invalid(
            "pack layout",
            "blobs do not reach the trailer",
        ));
    }
    r.finish()?;
    Ok(out)
}

/// The blobs of one pack, as an index segment lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPack {
    pub pack: Id,
    /// Length of the whole pack file; lets `check` spot a truncated pack without reading it.
    pub pack_len: u64,
    pub blobs: Vec<BlobEntry>,
}

/// An index segment: written once by one backup (or repair), never modified.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexSegment {
    pub packs: Vec<IndexPack>,
}

/// Version byte of the index segment plaintext.
const INDEX_VERSION: u8 = 1;

impl IndexSegment {
    pub fn encode(&self) -> Vec<u8> {
        let blobs: usize = self.packs.iter().map(|p| p.blobs.len()).sum();
        let mut w = Writer::with_capacity(8 + self.packs.len() * 48 + blobs * BLOB_ENTRY_LEN);
        w.u8(INDEX_VERSION);
        w.u32_le(self.packs.len() as u32);
        for p in &self.packs {
            w.raw(&p.pack.0);
            w.u64_le(p.pack_len);
            w.u32_le(p.blobs.len() as u32);
            for b in &p.blobs {
                b.encode(&mut w);
            }
        }
        w.into_inner()
    }

    pub fn decode(data: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(data);
        let v = r.u8("index version")?;
        if v != INDEX_VERSION {
            return Err(FormatError::Version {
                what: "index segment",
                found: v as u64,
                supported: 1,
            });
        }
        let np = r.u32_le("pack count")? as usize;
        // Each pack needs at least 44 bytes; refuse counts the data cannot hold before allocating.
        if np.saturating_mul(44) > r.remaining() {
            return Err(FormatError::invalid(
                "pack count",
                format!("{np} packs do not fit"),
            ));
        }
        let mut packs = Vec::with_capacity(np);
        for _ in 0..np {
            let pack = Id(r.array("pack id")?);
            let pack_len = r.u64_le("pack length")?;
            let nb = r.u32_le("blob count")? as usize;
            if nb.saturating_mul(BLOB_ENTRY_LEN) > r.remaining() {
                return Err(FormatError::invalid(
                    "blob count",
                    format!("{nb} blobs do not fit"),
                ));
            }
            let mut blobs = Vec::with_capacity(nb);
            for _ in 0..nb {
                let b = BlobEntry::decode(&mut r)?;
                if b.offset as u64 + b.stored_len as u64 > pack_len {
                    return Err(FormatError::invalid(
                        "blob offset",
                        "beyond the end of the pack",
                    ));
                }
                blobs.push(b);
            }
            packs.push(IndexPack {
                pack,
                pack_len,
                blobs,
            });
        }
        r.finish()?;
        Ok(IndexSegment { packs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(i: u8, offset: u32, len: u32) -> BlobEntry {
        BlobEntry {
            id: Id([i; 32]),
            blob_type: BlobType::Data,
            compression: Compression::Zstd,
            offset,
            stored_len: len,
            raw_len: len * 2,
        }
    }

    #[test]
    fn golden_blob_entry() {
        let bytes = encode_blob_entries(&[entry(7, 40, 100)]);
        let mut expect = vec![1, 0, 0, 0, 0, 1];
        expect.extend([7u8; 32]);
        expect.extend([40, 0, 0, 0, 100, 0, 0, 0, 200, 0, 0, 0]);
        assert_eq!(bytes, expect);
        assert_eq!(
            decode_blob_entries(&bytes, 40, 140).unwrap(),
            vec![entry(7, 40, 100)]
        );
    }

    #[test]
    fn trailer_must_tile_the_pack() {
        let bytes = encode_blob_entries(&[entry(1, 40, 100), entry(2, 141, 100)]);
        assert!(decode_blob_entries(&bytes, 40, 241).is_err());
        let bytes = encode_blob_entries(&[entry(1, 40, 100)]);
        assert!(decode_blob_entries(&bytes, 40, 150).is_err());
    }

    proptest! {
        #[test]
        fn index_roundtrip(lens in proptest::collection::vec(16u32..100_000, 0..20), packs in 1usize..4) {
            let mut seg = IndexSegment::default();
            for p in 0..packs {
                let mut off = 40;
                let blobs: Vec<_> = lens.iter().enumerate().map(|(i, &l)| {
                    let e = entry((i + p) as u8, off, l);
                    off += l;
                    e
                }).collect();
                seg.packs.push(IndexPack { pack: Id([p as u8; 32]), pack_len: off as u64 + 100, blobs });
            }
            prop_assert_eq!(IndexSegment::decode(&seg.encode()).unwrap(), seg);
        }

        #[test]
        fn index_decode_never_panics(data: Vec<u8>) {
            let _ = IndexSegment::decode(&data);
            let _ = decode_blob_entries(&data, 40, 1000);
        }
    }
}
