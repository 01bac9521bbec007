//! `check`: prove that the repository is whole. Structure by default (index segments,
//! snapshots, every tree, every referenced blob listed and its pack present at the right
//! size); with `read_data`, every selected pack is read, authenticated and every blob in it
//! decompressed and hashed against its id. Each problem names the file at fault, and for
//! damaged data the snapshots and paths it affects.

use crate::error::{RepoError, Result};
use crate::index::BlobLocation;
use crate::progress::Progress;
use crate::repository::{Repository, open_blob, pack_handle};
use crate::saver::parse_pack;
use crate::walk::{Walk, walk_tree};
use lifeboat_format::{Content, Id};
use lifeboat_storage::{FileKind, StorageError};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Which packs to read in full.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadData {
    None,
    All,
    /// The least recently verified packs (never verified first), adding up to this share of
    /// the repository's bytes, in percent: nightly runs cover everything over time.
    Percent(f64),
    /// Part `n` of `t` (1-based): the packs whose id's first 32 bits modulo `t` is `n - 1`,
    /// so `1/7` .. `7/7` on seven nights cover everything.
    Slice(u32, u32),
}

#[derive(Debug, Default)]
pub struct CheckReport {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    pub snapshots: usize,
    pub trees: usize,
    pub packs: usize,
    pub packs_read: usize,
    pub blobs_read: usize,
    pub bytes_read: u64,
    /// (snapshot id, path) of every file that cannot be restored whole.
    pub affected: Vec<(String, String)>,
    /// Packs never read and verified by any check (from the health record).
    pub packs_never_verified: usize,
    /// Unix seconds of the oldest verification among verified packs.
    pub oldest_verification: Option<i64>,
    /// Damaged blobs recorded (found now or by earlier checks and not yet healed).
    pub bad_blobs: usize,
}

/// Options of a check beyond what to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// Skip packs verified less than this many seconds ago (`--max-age`).
    pub max_age: Option<i64>,
}

pub fn check(repo: &mut Repository, read: ReadData, progress: &Progress) -> Result<CheckReport> {
    check_with(repo, read, CheckOptions::default(), progress)
}

pub fn check_with(
    repo: &mut Repository,
    read: ReadData,
    opts: CheckOptions,
    progress: &Progress,
) -> Result<CheckReport> {
    let mut r = CheckReport::default();
    let now = jiff::Timestamp::now().as_second();
    let health = repo.read_health()?;
    for (file, e) in &health.damaged {
        r.warnings.push(format!(
            "{file}: {e}; what it recorded is forgotten (the next checks verify again)"
        ));
    }
    let ir = repo.load_index()?;
    for (file, e) in ir.damaged {
        r.errors.push(format!("{file}: {e}"));
    }
    let index = repo.index().clone();
    let stored: HashMap<String, u64> = repo.storage().list(FileKind::Pack)?.into_iter().collect();
    r.packs = index.packs().len();

    // Blobs that cannot be read, with the reason, from missing or truncated packs.
    let mut bad: HashMap<Id, String> = HashMap::new();
    // Rows grouped by pack (4 bytes per blob); locations are materialised one pack at a
    // time, so check's memory stays close to the index's own.
    let by_pack = index.rows_by_pack();
    let blobs_of = |n: u32| -> Vec<(Id, BlobLocation)> {
        by_pack
            .rows(n)
            .iter()
            .filter_map(|r| index.at(*r as usize))
            .collect()
    };
    let mut indexed: HashSet<String> = HashSet::new();
    for (n, (pack, len)) in index.packs().iter().enumerate() {
        let name = pack.to_hex();
        indexed.insert(name.clone());
        let problem = match stored.get(&name) {
            None => Some("is missing".to_string()),
            Some(s) if s != len => Some(format!(
                "is {s} bytes, the index says {len} (truncated or damaged)"
            )),
            _ => None,
        };
        if let Some(p) = problem {
            if !stored.contains_key(&name) && index.is_marked(n as u32) {
                // Marked by prune and deleted since this index was read: only an error if a
                // snapshot still needs it, which the tree walk below reports.
                r.warnings.push(format!(
                    "pack {} was deleted by prune while this check ran",
                    pack.short()
                ));
            } else {
                r.errors.push(format!("pack {}: {p}", pack_handle(pack)));
            }
            for (id, _) in blobs_of(n as u32) {
                bad.insert(id, format!("pack {} {p}", pack.short()));
            }
        }
    }
    let unindexed = stored.keys().filter(|k| !indexed.contains(*k)).count();
    if unindexed > 0 {
        r.warnings.push(format!(
            "{unindexed} pack(s) are in no index yet: being written by a backup or prune that runs now, or left by one that was interrupted; they hold no snapshot's data, and prune removes leftovers after its grace period"
        ));
    }

    // Snapshots and trees.
    let (snaps, bad_snaps) = repo.snapshots()?;
    for (file, e) in bad_snaps {
        r.errors.push(format!("{file}: {e}"));
    }
    r.snapshots = snaps.len();
    // Trees level by level, each level's trees loaded and checked in parallel; a tree shared
    // by several snapshots (an unchanged directory) is checked once.
    let mut seen_trees: HashSet<Id> = HashSet::new();
    let mut frontier: Vec<(String, Id, PathBuf)> = snaps
        .iter()
        .map(|(sid, snap)| (sid.short(), snap.tree, PathBuf::from("/")))
        .collect();
    while !frontier.is_empty() {
        if progress.cancelled() {
            return Err(RepoError::Interrupted);
        }
        frontier.retain(|(_, t, _)| seen_trees.insert(*t));
        use rayon::prelude::*;
        let results: Vec<Result<TreeVerdict>> = frontier
            .par_iter()
            .map(|(_, t, p)| check_tree(repo, *t, p, &bad))
            .collect();
        let mut next = Vec::new();
        for ((sid, _, _), v) in frontier.iter().zip(results) {
            let v = v?;
            r.errors
                .extend(v.errors.into_iter().map(|e| format!("snapshot {sid}: {e}")));
            next.extend(v.subtrees.into_iter().map(|(t, p)| (sid.clone(), t, p)));
        }
        frontier = next;
    }
    r.trees = seen_trees.len();

    // Data: which packs to read.
    let hv = &health.health;
    let stale = |id: &Id| match (opts.max_age, hv.verified_at(id)) {
        (Some(age), Some(t)) => now - t >= age,
        _ => true,
    };
    let mut candidates: Vec<(u32, Id, u64)> = index
        .packs()
        .iter()
        .enumerate()
        .map(|(n, (id, len))| (n as u32, *id, *len))
        .filter(|(_, id, _)| stored.contains_key(&id.to_hex()) && stale(id))
        .collect();
    let selected: Vec<(u32, Id, u64)> = match read {
        ReadData::None => Vec::new(),
        ReadData::All => candidates,
        ReadData::Slice(n, t) => candidates
            .into_iter()
            .filter(|(_, id, _)| {
                u32::from_le_bytes([id.0[0], id.0[1], id.0[2], id.0[3]]) % t == n - 1
            })
            .collect(),
        ReadData::Percent(p) => {
            // Least recently verified first; never-verified packs before all others.
            candidates.sort_by_key(|(_, id, _)| (hv.verified_at(id).unwrap_or(i64::MIN), *id));
            let total: u64 = index.packs().iter().map(|(_, l)| *l).sum();
            let want = (total as f64 * p / 100.0).ceil() as u64;
            let mut got = 0u64;
            candidates
                .into_iter()
                .take_while(|(_, _, len)| {
                    let take = got < want;
                    got += len;
                    take
                })
                .collect()
        }
    };
    Progress::add(&progress.bytes_total, selected.iter().map(|s| s.2).sum());
    // Packs are independent: verify them on every core, then merge in pack order.
    let queue = std::sync::Mutex::new(selected.iter());
    let results = std::sync::Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let failure = std::sync::Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    if progress.cancelled() {
                        return;
                    }
                    let Some(&(n, pack, _)) = queue.lock().ok().and_then(|mut q| q.next()) else {
                        return;
                    };
                    let blobs = blobs_of(n);
                    match verify_pack(repo, pack, &blobs, progress) {
                        Ok(Some(v)) => results.lock().map(|mut r| r.push((n, v))).unwrap_or(()),
                        Ok(None) => {}
                        Err(e) => {
                            if let Ok(mut f) = failure.lock() {
                                f.get_or_insert(e);
                            }
                            return;
                        }
                    }
                }
            });
        }
    });
    if progress.cancelled() {
        return Err(RepoError::Interrupted);
    }
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(n, _)| *n);
    let mut update = lifeboat_format::Health {
        written_at: now,
        ..Default::default()
    };
    for (n, v) in results {
        let pack = index.packs()[n as usize].0;
        r.packs_read += 1;
        r.bytes_read += v.bytes;
        r.blobs_read += v.blobs_read;
        if v.errors.is_empty() {
            update.verified.push((pack, now));
        }
        r.errors.extend(v.errors);
        for (id, _) in &v.bad {
            update.bad.push(lifeboat_format::BadBlob {
                blob: *id,
                pack,
                found_at: now,
            });
        }
        bad.extend(v.bad);
    }
    update.verified.sort();
    update.bad.sort();
    update
        .bad
        .dedup_by(|a, b| (a.blob, a.pack) == (b.blob, b.pack));
    // Record what was verified and found (when anything was read), forgetting packs that
    // are gone. A failure to record costs only the memory of this run, not the check.
    let merged = health.health.merge(&update);
    let merged = lifeboat_format::Health {
        written_at: now,
        verified: merged
            .verified
            .into_iter()
            .filter(|(p, _)| stored.contains_key(&p.to_hex()))
            .collect(),
        bad: merged
            .bad
            .into_iter()
            .filter(|b| stored.contains_key(&b.pack.to_hex()))
            .collect(),
    };
    if (r.packs_read > 0 || !update.bad.is_empty())
        && let Err(e) = repo.write_health(&merged, &health.files)
    {
        r.warnings.push(format!(
            "could not record what this check verified ({e}); the next subset check may read the same packs again"
        ));
    }
    r.bad_blobs = merged.bad.len();
    r.packs_never_verified = index
        .packs()
        .iter()
        .filter(|(id, _)| merged.verified_at(id).is_none())
        .count();
    r.oldest_verification = index
        .packs()
        .iter()
        .filter_map(|(id, _)| merged.verified_at(id))
        .min();
    // Damaged blobs recorded by earlier checks still break files until healed.
    for b in &merged.bad {
        if index.get(&b.blob).is_some_and(|l| l.pack == b.pack) {
            bad.entry(b.blob)
                .or_insert_with(|| format!("recorded damaged in pack {}", b.pack.short()));
        }
    }

    // Map damaged blobs to the files they break.
    if !bad.is_empty() {
        for (sid, snap) in &snaps {
            let mut affected = BTreeMap::new();
            let _ = walk_tree(
                repo,
                snap.tree,
                Path::new("/"),
                &mut |p, n| {
                    if let Some(why) = n.content.iter().find_map(|c| match c {
                        Content::Chunk(id) => bad.get(id),
                        Content::Hole(_) => None,
                    }) {
                        affected.insert(p.display().to_string(), why.clone());
                    }
                    Ok(Walk::Continue)
                },
                &mut |_, _| Ok(()),
            );
            for (p, _) in affected {
                r.affected.push((sid.short(), p));
            }
        }
    }
    Ok(r)
}

/// What checking one tree found: its problems, and its subtrees to check next.
struct TreeVerdict {
    errors: Vec<String>,
    subtrees: Vec<(Id, PathBuf)>,
}

fn check_tree(
    repo: &Repository,
    tree: Id,
    path: &Path,
    bad: &HashMap<Id, String>,
) -> Result<TreeVerdict> {
    let mut v = TreeVerdict {
        errors: Vec::new(),
        subtrees: Vec::new(),
    };
    if let Some(why) = bad.get(&tree) {
        v.errors
            .push(format!("tree of {} is unreadable: {why}", path.display()));
        return Ok(v);
    }
    let t = match repo.load_tree(&tree) {
        Ok(t) => t,
        Err(e @ (RepoError::Corrupt { .. } | RepoError::MissingBlob(_))) => {
            v.errors.push(format!("tree of {}: {e}", path.display()));
            return Ok(v);
        }
        Err(RepoError::Storage(StorageError::NotFound(w))) => {
            v.errors
                .push(format!("tree of {}: {w} is missing", path.display()));
            return Ok(v);
        }
        Err(RepoError::Storage(StorageError::Truncated { what, .. })) => {
            v.errors
                .push(format!("tree of {}: {what} is truncated", path.display()));
            return Ok(v);
        }
        Err(e) => return Err(e),
    };
    for n in &t.nodes {
        let p = path.join(std::ffi::OsStr::from_bytes(&n.name));
        let mut size = 0u64;
        for c in &n.content {
            match c {
                Content::Chunk(id) => match repo.index().get(id) {
                    None => {
                        v.errors.push(format!(
                            "{}: blob {} is not in the index",
                            p.display(),
                            id.short()
                        ));
                        break;
                    }
                    Some(l) => size += l.raw_len as u64,
                },
                Content::Hole(h) => size = size.saturating_add(*h),
            }
        }
        // A file's content must add up to its size (an empty content list only to size 0),
        // exactly what restore requires.
        if n.kind() == lifeboat_format::NodeKind::File && size != n.size {
            v.errors.push(format!(
                "{}: content adds up to {size} bytes, the node says {}",
                p.display(),
                n.size
            ));
        }
        if let (true, Some(sub)) = (n.is_dir(), n.subtree) {
            v.subtrees.push((sub, p));
        }
    }
    Ok(v)
}

use std::os::unix::ffi::OsStrExt;

/// What reading one pack found.
struct PackVerdict {
    bytes: u64,
    blobs_read: usize,
    errors: Vec<String>,
    bad: Vec<(Id, String)>,
}

/// Reads one pack whole and checks its name, its trailer against the index, and every blob.
/// `Ok(None)` when the pack vanished meanwhile (a concurrent prune).
fn verify_pack(
    repo: &Repository,
    pack: Id,
    blobs: &[(Id, BlobLocation)],
    progress: &Progress,
) -> Result<Option<PackVerdict>> {
    let h = pack_handle(&pack);
    progress.set_current(h.path());
    let bytes = match repo.storage().get(&h) {
        Ok(b) => b,
        Err(StorageError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Progress::add(&progress.bytes, bytes.len() as u64);
    let mut v = PackVerdict {
        bytes: bytes.len() as u64,
        blobs_read: 0,
        errors: Vec::new(),
        bad: Vec::new(),
    };
    let fail = |what: String, ids: &[(Id, BlobLocation)], v: &mut PackVerdict| {
        v.errors.push(format!("pack {}: {what}", h.path()));
        for (id, _) in ids {
            v.bad
                .push((*id, format!("pack {} is damaged", pack.short())));
        }
    };
    if lifeboat_crypto::storage_id(&bytes) != pack {
        // An error for the pack; which blobs are damaged is for the per-blob checks below
        // (the health record then names only those).
        v.errors.push(format!(
            "pack {}: contents do not match its name (bytes changed on storage)",
            h.path()
        ));
    }
    let (cipher, trailer) = match parse_pack(repo.keys(), &bytes) {
        Ok(x) => x,
        Err(e) => {
            fail(format!("trailer unreadable: {e}"), blobs, &mut v);
            return Ok(Some(v));
        }
    };
    let in_trailer: HashMap<Id, _> = trailer.iter().map(|e| (e.id, *e)).collect();
    for (id, loc) in blobs {
        match in_trailer.get(id) {
            Some(e) if *e == crate::index::entry_of(*id, loc) => {}
            _ => {
                fail(
                    format!(
                        "blob {} is listed in the index but not in the pack's trailer",
                        id.short()
                    ),
                    &[(*id, *loc)],
                    &mut v,
                );
                continue;
            }
        }
        let start = loc.offset as usize;
        let Some(slice) = bytes.get(start..start + loc.stored_len as usize) else {
            fail(
                format!("blob {} lies beyond the end of the pack", id.short()),
                &[(*id, *loc)],
                &mut v,
            );
            continue;
        };
        let mut buf = slice.to_vec();
        v.blobs_read += 1;
        if let Err(e) = open_blob(repo.keys(), &cipher, id, loc, &mut buf) {
            fail(format!("blob {}: {e}", id.short()), &[(*id, *loc)], &mut v);
        }
    }
    Ok(Some(v))
}
