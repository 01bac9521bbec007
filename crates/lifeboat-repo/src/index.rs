//! The in-memory index: where every blob is. A sorted table of 48-byte entries (id, pack
//! number, offset, stored length, raw length with the blob's type and compression in its top
//! bits) searched by binary search. restic spends 56 bytes per blob plus its map's overhead.

use lifeboat_format::{BlobEntry, BlobType, Compression, Id, IndexPack, Marks};

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
    /// Per pack number: marked by prune (waiting to be deleted). Such packs still serve
    /// reads, but new backups do not reuse their blobs.
    marked: Vec<bool>,
    entries: Vec<Entry>,
    /// The marks file this index was built with (none if there was none).
    marks_file: Option<String>,
}

impl Index {
    /// Builds the index from segments' packs. A blob stored in several packs (two backups
    /// racing to store the same content) keeps one location, chosen deterministically.
    pub fn build(packs: impl IntoIterator<Item = IndexPack>) -> Self {
        Self::build_with_marks(packs, None, None)
    }

    /// Like [`Index::build`], knowing which packs prune has marked: of several locations of
    /// a blob, one in an unmarked pack is preferred.
    pub fn build_with_marks(
        packs: impl IntoIterator<Item = IndexPack>,
        marks: Option<&Marks>,
        marks_file: Option<String>,
    ) -> Self {
        let mut b = IndexBuilder::new(marks, marks_file);
        for p in packs {
            b.add(p);
        }
        b.finish()
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
        self.position(id).map(|i| &self.entries[i])
    }

    /// The blob's row in the table (0..len): lets callers keep one bit per blob.
    pub fn position(&self, id: &Id) -> Option<usize> {
        self.entries.binary_search_by(|e| e.id.cmp(id)).ok()
    }

    pub fn get(&self, id: &Id) -> Option<BlobLocation> {
        self.find(id).map(|e| self.location(e))
    }

    /// The blob's location if it is in a pack that prune has not marked: what a backup may
    /// reuse. A blob only in marked packs is stored again (prune may delete those packs).
    pub fn get_live(&self, id: &Id) -> Option<BlobLocation> {
        self.find(id)
            .filter(|e| !self.marked[e.pack as usize])
            .map(|e| self.location(e))
    }

    pub fn contains_live(&self, id: &Id) -> bool {
        self.get_live(id).is_some()
    }

    /// Whether prune has marked this pack (by number).
    pub fn is_marked(&self, pack_number: u32) -> bool {
        self.marked
            .get(pack_number as usize)
            .copied()
            .unwrap_or(false)
    }

    /// The marks file this index was built with.
    pub fn marks_file(&self) -> Option<&str> {
        self.marks_file.as_deref()
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
        self.entries.iter().map(|e| (e.id, self.location(e)))
    }

    /// The blob at a row of the table ([`Index::position`]).
    pub fn at(&self, pos: usize) -> Option<(Id, BlobLocation)> {
        self.entries.get(pos).map(|e| (e.id, self.location(e)))
    }

    /// Bytes the table itself occupies (for the memory benchmark).
    pub fn table_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.packs.capacity() * 40
            + self.marked.capacity()
    }
}

/// Builds an [`Index`] segment by segment, so that loading never holds more than the table
/// (48 bytes per blob, allocated exactly) plus one decoded segment.
pub struct IndexBuilder<'a> {
    idx: Index,
    marks: Option<&'a Marks>,
    seen: std::collections::HashMap<Id, u32>,
    /// (blob, pack) pairs `check` found damaged: another copy is preferred.
    bad: std::collections::HashSet<(Id, Id)>,
}

impl<'a> IndexBuilder<'a> {
    pub fn new(marks: Option<&'a Marks>, marks_file: Option<String>) -> Self {
        IndexBuilder {
            idx: Index {
                marks_file,
                ..Index::default()
            },
            marks,
            seen: std::collections::HashMap::new(),
            bad: std::collections::HashSet::new(),
        }
    }

    /// Copies recorded as damaged, (blob, pack): of several locations, an undamaged one wins.
    pub fn set_bad(&mut self, bad: std::collections::HashSet<(Id, Id)>) {
        self.bad = bad;
    }

    /// Adds a segment's packs, growing the table by exactly their blob count (large
    /// reallocations are remapped, not copied, so the table never needs twice its size).
    pub fn add_segment(&mut self, packs: Vec<IndexPack>) {
        let n: usize = packs.iter().map(|p| p.blobs.len()).sum();
        self.idx.entries.reserve_exact(n);
        for p in packs {
            self.add(p);
        }
    }

    pub fn add(&mut self, p: IndexPack) {
        let idx = &mut self.idx;
        let marks = self.marks;
        let n = *self.seen.entry(p.pack).or_insert_with(|| {
            idx.packs.push((p.pack, p.pack_len));
            idx.marked
                .push(marks.is_some_and(|m| m.get(&p.pack).is_some()));
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

    pub fn finish(self) -> Index {
        let mut idx = self.idx;
        let marked = &idx.marked;
        idx.entries.sort_unstable_by(|a, b| {
            a.id.cmp(&b.id)
                .then(marked[a.pack as usize].cmp(&marked[b.pack as usize]))
                .then(a.pack.cmp(&b.pack))
        });
        if !self.bad.is_empty() {
            let is_bad = |e: &Entry| self.bad.contains(&(e.id, idx.packs[e.pack as usize].0));
            let mut i = 0;
            while i < idx.entries.len() {
                let mut j = i + 1;
                while j < idx.entries.len() && idx.entries[j].id == idx.entries[i].id {
                    j += 1;
                }
                if j - i > 1
                    && is_bad(&idx.entries[i])
                    && let Some(k) = (i + 1..j).find(|k| !is_bad(&idx.entries[*k]))
                {
                    idx.entries.swap(i, k);
                }
                i = j;
            }
        }
        idx.entries.dedup_by(|a, b| a.id == b.id);
        idx.entries.shrink_to_fit();
        idx
    }
}

/// The table's rows grouped by pack number: 4 bytes per blob, instead of a copy of the
/// locations (what `check` needs to compare each pack with its trailer).
pub struct RowsByPack {
    starts: Vec<u32>,
    rows: Vec<u32>,
}

impl RowsByPack {
    pub fn rows(&self, pack_number: u32) -> &[u32] {
        let n = pack_number as usize;
        match (self.starts.get(n), self.starts.get(n + 1)) {
            (Some(&a), Some(&b)) => &self.rows[a as usize..b as usize],
            _ => &[],
        }
    }
}

impl Index {
    pub fn rows_by_pack(&self) -> RowsByPack {
        let mut starts = vec![0u32; self.packs.len() + 1];
        for e in &self.entries {
            starts[e.pack as usize + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        let mut fill = starts.clone();
        let mut rows = vec![0u32; self.entries.len()];
        for (i, e) in self.entries.iter().enumerate() {
            let slot = &mut fill[e.pack as usize];
            rows[*slot as usize] = i as u32;
            *slot += 1;
        }
        RowsByPack { starts, rows }
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

    #[test]
    fn a_copy_in_an_unmarked_pack_is_preferred_and_marked_only_blobs_are_not_live() {
        let blob = |i: u8| BlobEntry {
            id: Id([i; 32]),
            blob_type: BlobType::Data,
            compression: Compression::None,
            offset: 40,
            stored_len: 20,
            raw_len: 4,
        };
        let marked_pack = Id([1; 32]);
        let marks = Marks {
            written_at: 0,
            marks: vec![lifeboat_format::Mark {
                pack: marked_pack,
                marked_at: 0,
                reason: lifeboat_format::MarkReason::Repacked,
            }],
        };
        // The marked pack comes first (and has the lower number); the copy elsewhere wins.
        let idx = Index::build_with_marks(
            vec![
                IndexPack {
                    pack: marked_pack,
                    pack_len: 99,
                    blobs: vec![blob(5), blob(6)],
                },
                IndexPack {
                    pack: Id([2; 32]),
                    pack_len: 99,
                    blobs: vec![blob(5)],
                },
            ],
            Some(&marks),
            Some("m".into()),
        );
        assert_eq!(idx.get(&Id([5; 32])).unwrap().pack, Id([2; 32]));
        assert!(idx.contains_live(&Id([5; 32])));
        // Only in the marked pack: readable, but not reusable by a backup.
        assert_eq!(idx.get(&Id([6; 32])).unwrap().pack, marked_pack);
        assert!(!idx.contains_live(&Id([6; 32])));
        assert!(idx.is_marked(0) && !idx.is_marked(1));
        assert_eq!(idx.marks_file(), Some("m"));
        let by = idx.rows_by_pack();
        let ids = |n| {
            by.rows(n)
                .iter()
                .map(|r| idx.at(*r as usize).unwrap().0)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(0), vec![Id([6; 32])]);
        assert_eq!(ids(1), vec![Id([5; 32])]);
        assert!(by.rows(7).is_empty());
    }
}
