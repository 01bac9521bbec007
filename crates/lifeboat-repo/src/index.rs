//! The in-memory index: where every blob is. A sorted table of 48-byte entries (id, pack
//! number, offset, stored length, raw length with the blob's type and compression in its top
//! bits) searched by binary search. restic spends 56 bytes per blob plus its map's overhead.

use lifeboat_format::{BlobEntry, BlobType, Compression, Id, IndexPack};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    id: Id,
    pack: u32,
    offset: u32,
    stored_len: u32,
    /// Raw length in the low 30 bits (blobs are at most 64 MiB), bit 31 = tree, bit 30 = zstd.
    raw_and_flags: u32,
}

const TREE_BIT: u32 = 1 << 31;
const ZSTD_BIT: u32 = 1 << 30;
const LEN_MASK: u32 = ZSTD_BIT - 1;

/// Where one blob is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    pub pack: Id,
    pub pack_number: u32,
    pub blob_type: BlobType,
    pub compression: Compression,
    pub offset: u32,
    pub stored_len: u32,
    pub raw_len: u32,
}

#[derive(Default)]
pub struct Index {
    packs: Vec<(Id, u64)>,
    entries: Vec<Entry>,
}

impl Index {
    /// Builds the index from segments' packs. A blob stored in several packs (two backups
    /// racing to store the same content) keeps one location, chosen deterministically.
    pub fn build(packs: impl IntoIterator<Item = IndexPack>) -> Self {
        let mut idx = Index::default();
        let mut seen = std::collections::HashMap::new();
        for p in packs {
            let n = *seen.entry(p.pack).or_insert_with(|| {
                idx.packs.push((p.pack, p.pack_len));
                (idx.packs.len() - 1) as u32
            });
            for b in p.blobs {
                idx.entries.push(Entry {
                    id: b.id,
                    pack: n,
                    offset: b.offset,
                    stored_len: b.stored_len,
                    raw_and_flags: (b.raw_len & LEN_MASK)
                        | if b.blob_type == BlobType::Tree {
                            TREE_BIT
                        } else {
                            0
                        }
                        | if b.compression == Compression::Zstd {
                            ZSTD_BIT
                        } else {
                            0
                        },
                });
            }
        }
        idx.entries
            .sort_unstable_by(|a, b| a.id.cmp(&b.id).then(a.pack.cmp(&b.pack)));
        idx.entries.dedup_by(|a, b| a.id == b.id);
        idx.entries.shrink_to_fit();
        idx
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.find(id).is_some()
    }

    fn find(&self, id: &Id) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| e.id.cmp(id))
            .ok()
            .map(|i| &self.entries[i])
    }

    pub fn get(&self, id: &Id) -> Option<BlobLocation> {
        self.find(id).map(|e| self.location(e))
    }

    fn location(&self, e: &Entry) -> BlobLocation {
        BlobLocation {
            pack: self.packs[e.pack as usize].0,
            pack_number: e.pack,
            blob_type: if e.raw_and_flags & TREE_BIT != 0 {
                BlobType::Tree
            } else {
                BlobType::Data
            },
            compression: if e.raw_and_flags & ZSTD_BIT != 0 {
                Compression::Zstd
            } else {
                Compression::None
            },
            offset: e.offset,
            stored_len: e.stored_len,
            raw_len: e.raw_and_flags & LEN_MASK,
        }
    }

    /// Every pack the index knows, with its length.
    pub fn packs(&self) -> &[(Id, u64)] {
        &self.packs
    }

    /// Every blob with its location, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (Id, BlobLocation)> + '_ {
        self.entries
            .iter()
            .filter_map(|e| self.get(&e.id).map(|l| (e.id, l)))
    }

    /// Bytes the table itself occupies (for the memory benchmark).
    pub fn table_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>() + self.packs.capacity() * 40
    }
}

/// The entries of a pack as blob entries (for `check`, which compares them with trailers).
pub fn entry_of(id: Id, l: &BlobLocation) -> BlobEntry {
    BlobEntry {
        id,
        blob_type: l.blob_type,
        compression: l.compression,
        offset: l.offset,
        stored_len: l.stored_len,
        raw_len: l.raw_len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_is_48_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 48);
    }

    #[test]
    fn build_and_lookup() {
        let blob = |i: u8, t| BlobEntry {
            id: Id([i; 32]),
            blob_type: t,
            compression: Compression::Zstd,
            offset: 40 + i as u32,
            stored_len: 20,
            raw_len: 1000 + i as u32,
        };
        let idx = Index::build(vec![
            IndexPack {
                pack: Id([1; 32]),
                pack_len: 99,
                blobs: vec![blob(3, BlobType::Data), blob(1, BlobType::Tree)],
            },
            IndexPack {
                pack: Id([2; 32]),
                pack_len: 99,
                blobs: vec![blob(3, BlobType::Data), blob(2, BlobType::Data)],
            },
        ]);
        assert_eq!(idx.len(), 3);
        let l = idx.get(&Id([1; 32])).unwrap();
        assert_eq!(
            (l.blob_type, l.raw_len, l.pack),
            (BlobType::Tree, 1001, Id([1; 32]))
        );
        assert_eq!(idx.get(&Id([3; 32])).unwrap().pack, Id([1; 32]));
        assert!(idx.get(&Id([9; 32])).is_none());
    }
}
