//! Repairs: rebuild the index from pack trailers, and rewrite snapshots that reference lost
//! data so that everything else in them stays restorable and the loss is recorded.
//!
//! Both run under the maintenance lease (they delete files that prune also reasons about) and
//! both write before they delete, so an interruption leaves at worst duplicates.

use crate::lease::MaintenanceLease;
use crate::progress::Progress;
use crate::repository::{PACK_HEADER_LEN, Repository, pack_handle};
use crate::saver::BlobSaver;
use crate::{RepoError, Result};
use lifeboat_crypto::{SALT_LEN, TRAILER_COUNTER};
use lifeboat_format::{
    BlobEntry, BlobType, Content, Id, IndexPack, IndexSegment, SkippedEntry, Snapshot, Tree, magic,
};
use lifeboat_storage::{FileKind, Handle, StorageError};
use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Blobs per rebuilt segment (as prune's compaction).
const BLOBS_PER_SEGMENT: usize = 200_000;

/// Reads a pack's trailer with three ranged reads (header, length, trailer): what rebuilding
/// the index needs, without downloading whole packs.
pub fn read_trailer(
    repo: &Repository,
    pack: &Id,
    size: u64,
) -> std::result::Result<Vec<BlobEntry>, String> {
    let h = pack_handle(pack);
    if size < (PACK_HEADER_LEN + 16 + 4) as u64 {
        return Err(format!("{size} bytes is too short for a pack"));
    }
    let header = repo
        .storage()
        .get_range(&h, 0, PACK_HEADER_LEN as u64)
        .map_err(|e| e.to_string())?;
    let salt = lifeboat_format::strip_magic(&header, magic::PACK).map_err(|e| e.to_string())?;
    let salt: [u8; SALT_LEN] = salt.try_into().map_err(|_| "short header".to_string())?;
    let tail = repo
        .storage()
        .get_range(&h, size - 4, 4)
        .map_err(|e| e.to_string())?;
    let tlen = u32::from_le_bytes(
        tail.as_slice()
            .try_into()
            .map_err(|_| "short read of the trailer length".to_string())?,
    ) as u64;
    if tlen < 16 || tlen + 4 + PACK_HEADER_LEN as u64 > size {
        return Err(format!("trailer length {tlen} does not fit the pack"));
    }
    let tstart = size - 4 - tlen;
    let mut trailer = repo
        .storage()
        .get_range(&h, tstart, tlen)
        .map_err(|e| e.to_string())?;
    let cipher = repo.keys().file_cipher(&salt).map_err(|e| e.to_string())?;
    let plain = cipher
        .open(TRAILER_COUNTER, magic::PACK, &mut trailer, "pack trailer")
        .map_err(|e| e.to_string())?;
    lifeboat_format::decode_blob_entries(plain, PACK_HEADER_LEN as u64, tstart)
        .map_err(|e| e.to_string())
}

#[derive(Debug, Default)]
pub struct RepairIndexReport {
    /// Packs whose entries came from a readable segment.
    pub from_segments: usize,
    /// Packs whose entries were read from their trailers.
    pub from_trailers: usize,
    /// Indexed packs no longer in storage (left out of the new index).
    pub missing: Vec<Id>,
    /// Packs whose trailer could not be read (not indexed; `check --read-data` tells more).
    pub damaged: Vec<(Id, String)>,
    pub segments_written: usize,
    pub segments_removed: usize,
    pub damaged_segments: usize,
}

/// Rebuilds the index: every pack in storage, from the segments where they are readable and
/// agree with the pack's size (unless `read_all`), else from the pack's own trailer. Then the
/// old segments are removed. Segments written meanwhile by backups are left alone.
pub fn repair_index(
    repo: &Repository,
    lease: Option<&MaintenanceLease>,
    read_all: bool,
    progress: &Progress,
) -> Result<RepairIndexReport> {
    let mut r = RepairIndexReport::default();
    let stored: HashMap<String, u64> = repo.storage().list(FileKind::Pack)?.into_iter().collect();
    let mut segments = Vec::new();
    let mut known: HashMap<Id, IndexPack> = HashMap::new();
    for (name, _) in repo.storage().list(FileKind::Index)? {
        let h = Handle::new(FileKind::Index, name.clone());
        match repo.read_index_segment(&h) {
            Ok(seg) => {
                for p in seg.packs {
                    match stored.get(&p.pack.to_hex()) {
                        None => {
                            if !r.missing.contains(&p.pack) {
                                r.missing.push(p.pack);
                            }
                        }
                        Some(size) if *size == p.pack_len && !read_all => {
                            known.entry(p.pack).or_insert(p);
                        }
                        Some(_) => {}
                    }
                }
            }
            Err(RepoError::Corrupt { .. }) => r.damaged_segments += 1,
            Err(RepoError::Storage(StorageError::NotFound(_))) => continue,
            Err(e) => return Err(e),
        }
        segments.push(name);
    }
    r.from_segments = known.len();
    let mut todo: Vec<(Id, u64)> = stored
        .iter()
        .filter_map(|(n, s)| n.parse::<Id>().ok().map(|id| (id, *s)))
        .filter(|(id, _)| !known.contains_key(id))
        .collect();
    todo.sort();
    Progress::add(&progress.files_total, todo.len() as u64);
    for (id, size) in todo {
        if progress.cancelled() {
            return Err(RepoError::Interrupted);
        }
        match read_trailer(repo, &id, size) {
            Ok(blobs) => {
                known.insert(
                    id,
                    IndexPack {
                        pack: id,
                        pack_len: size,
                        blobs,
                    },
                );
                r.from_trailers += 1;
            }
            Err(why) => r.damaged.push((id, why)),
        }
        Progress::add(&progress.files, 1);
    }
    let Some(lease) = lease else {
        return Ok(r); // a dry run
    };
    let mut packs: Vec<IndexPack> = known.into_values().collect();
    packs.sort_by_key(|p| p.pack);
    let mut batch = Vec::new();
    let mut n = 0;
    for p in packs {
        n += p.blobs.len();
        batch.push(p);
        if n >= BLOBS_PER_SEGMENT {
            lease.check()?;
            repo.write_index_segment(&IndexSegment {
                packs: std::mem::take(&mut batch),
            })?;
            r.segments_written += 1;
            n = 0;
        }
    }
    if !batch.is_empty() {
        lease.check()?;
        repo.write_index_segment(&IndexSegment { packs: batch })?;
        r.segments_written += 1;
    }
    for name in segments {
        lease.check()?;
        match repo
            .storage()
            .delete(&Handle::new(FileKind::Index, name.clone()))
        {
            Ok(()) | Err(StorageError::NotFound(_)) => r.segments_removed += 1,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(r)
}

/// One snapshot's repair.
#[derive(Debug)]
pub struct SnapshotRepair {
    pub old: Id,
    /// The rewritten snapshot (None for a dry run or when nothing was lost).
    pub new: Option<Id>,
    /// Paths whose data is lost, with why.
    pub lost: Vec<SkippedEntry>,
}

/// Tag added to rewritten snapshots.
pub const REPAIRED_TAG: &str = "repaired";

struct Rewriter<'a> {
    repo: &'a Repository,
    saver: Option<BlobSaver>,
    /// Trees already rewritten: new id and the losses below them (relative paths).
    memo: HashMap<Id, (Id, Vec<(PathBuf, String)>)>,
    bad: &'a HashSet<Id>,
}

impl Rewriter<'_> {
    fn usable(&self, id: &Id) -> bool {
        self.repo.index().contains(id) && !self.bad.contains(id)
    }

    /// Returns the tree's replacement and the losses below it, relative to the tree.
    fn tree(&mut self, id: &Id) -> Result<(Id, Vec<(PathBuf, String)>)> {
        if let Some(m) = self.memo.get(id) {
            return Ok(m.clone());
        }
        let tree = self.repo.load_tree(id)?;
        let mut lost = Vec::new();
        let mut nodes = Vec::with_capacity(tree.nodes.len());
        let mut changed = false;
        for mut node in tree.nodes {
            let name = PathBuf::from(std::ffi::OsStr::from_bytes(&node.name));
            let chunks = node
                .content
                .iter()
                .filter(|c| matches!(c, Content::Chunk(_)))
                .count();
            let missing = node
                .content
                .iter()
                .filter(|c| matches!(c, Content::Chunk(id) if !self.usable(id)))
                .count();
            if missing > 0 {
                lost.push((
                    name.clone(),
                    format!(
                        "lost in repair: {missing} of {chunks} chunks are missing or damaged; the file was emptied"
                    ),
                ));
                node.content.clear();
                node.size = 0;
                changed = true;
            }
            if let Some(st) = node.subtree {
                let sub = if self.usable(&st) {
                    self.tree(&st).ok()
                } else {
                    None
                };
                match sub {
                    Some((new, sub_lost)) => {
                        if new != st {
                            node.subtree = Some(new);
                            changed = true;
                        }
                        lost.extend(sub_lost.into_iter().map(|(p, w)| (name.join(p), w)));
                    }
                    None => {
                        let empty = self.save_tree(&Tree { nodes: vec![] })?;
                        node.subtree = Some(empty);
                        lost.push((
                            name.clone(),
                            "lost in repair: the directory's listing is missing or damaged; it was emptied".into(),
                        ));
                        changed = true;
                    }
                }
            }
            nodes.push(node);
        }
        let new = if changed {
            self.save_tree(&Tree { nodes })?
        } else {
            *id
        };
        self.memo.insert(*id, (new, lost.clone()));
        Ok((new, lost))
    }

    fn save_tree(&self, t: &Tree) -> Result<Id> {
        match &self.saver {
            Some(s) => Ok(s.save(BlobType::Tree, &t.encode())?.0),
            None => Ok(self.repo.keys().blob_id(&t.encode())),
        }
    }
}

/// Rewrites every snapshot in `ids` that references data missing from the index or listed in
/// `bad`: the lost files are emptied, lost directories listed as empty, every loss recorded in
/// the new snapshot's `skipped` list (so `snapshots` shows it INCOMPLETE) and the snapshot
/// tagged `repaired`. Unless `keep_original`, the original snapshot file is then deleted.
/// With `lease` = None nothing is written (a dry run).
pub fn repair_snapshots(
    repo: &Repository,
    lease: Option<&MaintenanceLease>,
    ids: &[Id],
    bad: &HashSet<Id>,
    keep_original: bool,
    progress: &Progress,
) -> Result<Vec<SnapshotRepair>> {
    let mut rw = Rewriter {
        repo,
        saver: lease.map(|_| BlobSaver::new(repo, repo.config().compression, false)),
        memo: HashMap::new(),
        bad,
    };
    let mut plan = Vec::new();
    for id in ids {
        if progress.cancelled() {
            return Err(RepoError::Interrupted);
        }
        let snap = repo.read_snapshot(id)?;
        let (root, lost) = if rw.usable(&snap.tree) {
            rw.tree(&snap.tree).unwrap_or_else(|e| {
                (
                    snap.tree,
                    vec![(PathBuf::from("/"), format!("lost in repair: {e}"))],
                )
            })
        } else {
            (
                snap.tree,
                vec![(
                    PathBuf::from("/"),
                    "lost in repair: the snapshot's root listing is missing".to_string(),
                )],
            )
        };
        let root = if lost.iter().any(|(p, _)| p == Path::new("/")) {
            rw.save_tree(&Tree { nodes: vec![] })?
        } else {
            root
        };
        Progress::add(&progress.files, 1);
        if lost.is_empty() {
            continue;
        }
        let lost: Vec<SkippedEntry> = lost
            .into_iter()
            .map(|(p, error)| SkippedEntry {
                path: Path::new("/").join(p).to_string_lossy().into_owned(),
                error,
            })
            .collect();
        plan.push((*id, snap, root, lost));
    }
    let mut out = Vec::new();
    let Some(lease) = lease else {
        return Ok(plan
            .into_iter()
            .map(|(old, _, _, lost)| SnapshotRepair {
                old,
                new: None,
                lost,
            })
            .collect());
    };
    // Trees first (packs and their index segment), then the snapshots that reference them.
    if let Some(s) = rw.saver.take() {
        s.finish(repo)?;
    }
    for (old, snap, root, lost) in plan {
        lease.check()?;
        let mut new: Snapshot = snap.clone();
        new.tree = root;
        new.skipped.extend(lost.iter().cloned());
        if !new.tags.iter().any(|t| t == REPAIRED_TAG) {
            new.tags.push(REPAIRED_TAG.into());
        }
        let new_id = repo.write_snapshot(&new)?;
        if !keep_original {
            match repo
                .storage()
                .delete(&Handle::new(FileKind::Snapshot, old.to_hex()))
            {
                Ok(()) | Err(StorageError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        out.push(SnapshotRepair {
            old,
            new: Some(new_id),
            lost,
        });
    }
    Ok(out)
}

/// What salvaging one pack gave.
#[derive(Debug)]
pub struct PackSalvage {
    pub pack: Id,
    pub copied: usize,
    /// Blobs that could not be read back whole: (blob, why).
    pub lost: Vec<(Id, String)>,
}

/// `repair packs`: copies every blob of `packs` that still reads back whole (authenticated,
/// decompressed, hashed against its id) into new packs, indexes them, and marks the old packs
/// for prune (reason "repacked"). Blobs that cannot be saved are listed: if no other copy
/// exists, `repair snapshots` records the files they break. With `lease` = None nothing is
/// written (a dry run that still reads and verifies).
pub fn repair_packs(
    repo: &Repository,
    lease: Option<&MaintenanceLease>,
    packs: &[Id],
    progress: &Progress,
) -> Result<Vec<PackSalvage>> {
    let wanted: HashSet<Id> = packs.iter().copied().collect();
    let mut entries: HashMap<Id, Vec<BlobEntry>> = HashMap::new();
    for (name, _) in repo.storage().list(FileKind::Index)? {
        let Ok(seg) = repo.read_index_segment(&Handle::new(FileKind::Index, name)) else {
            continue; // a damaged segment: the pack's trailer is the fallback below
        };
        for p in seg.packs {
            if wanted.contains(&p.pack) {
                entries.entry(p.pack).or_insert(p.blobs);
            }
        }
    }
    let stored: HashMap<String, u64> = repo.storage().list(FileKind::Pack)?.into_iter().collect();
    let mut rp = crate::repack::Repacker::new(repo);
    if lease.is_none() {
        rp = rp.dry_run();
    }
    let mut out = Vec::new();
    Progress::add(&progress.files_total, packs.len() as u64);
    for pack in packs {
        if progress.cancelled() {
            return Err(RepoError::Interrupted);
        }
        if let Some(l) = lease {
            l.check()?;
        }
        let blobs = match entries.remove(pack) {
            Some(b) => b,
            None => match stored.get(&pack.to_hex()) {
                Some(size) => read_trailer(repo, pack, *size).map_err(|why| {
                    RepoError::Refused(format!(
                        "pack {} is in no index and its trailer cannot be read ({why}); nothing can be salvaged from it",
                        pack.short()
                    ))
                })?,
                None => {
                    return Err(RepoError::Refused(format!(
                        "pack {} does not exist",
                        pack.short()
                    )));
                }
            },
        };
        let o = rp.copy_pack(pack, &blobs, true)?;
        out.push(PackSalvage {
            pack: *pack,
            copied: o.copied,
            lost: o.failed,
        });
        Progress::add(&progress.files, 1);
    }
    let new_packs = rp.finish()?;
    let Some(lease) = lease else {
        return Ok(out);
    };
    if !new_packs.is_empty() {
        lease.check()?;
        repo.write_index_segment(&IndexSegment { packs: new_packs })?;
    }
    let now = jiff::Timestamp::now().as_second();
    let marks: Vec<lifeboat_format::Mark> = out
        .iter()
        .map(|s| lifeboat_format::Mark {
            pack: s.pack,
            marked_at: now,
            reason: lifeboat_format::MarkReason::Repacked,
        })
        .collect();
    repo.add_marks(lease, &marks)?;
    Ok(out)
}
