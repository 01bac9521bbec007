//! Prune: removes what no snapshot references, in two phases, beside running backups.
//!
//! A pack is never deleted by the prune that finds it unneeded. That prune **marks** it
//! (`marks/`, with the time); a later prune deletes it only if it is still unneeded, was
//! marked at least the grace period (`keep_delete`) ago, and no backup that could have reused
//! it is still running. Backups never reuse blobs from marked packs (they store them again),
//! so once marks are visible no new reference to a marked pack appears, and a backup that
//! started before the marks protects the packs with its lease until it finishes. A marked
//! pack that a snapshot turns out to need (a backup that started before the marks and reused
//! it) is unmarked again: "recovered".
//!
//! Partly used packs are **repacked** when the repository's unused space exceeds
//! `max_unused`: their used blobs are copied (still compressed, re-sealed under the new
//! pack's key) into new packs, the new packs are indexed, and the old packs are marked like
//! any other unneeded pack.
//!
//! Order of writes, each step safe to interrupt: new packs → their index segment → the new
//! marks file (then the older marks files are removed) → compacted index segments without the
//! packs about to be deleted (then the segments they replace are removed) → pack deletions.
//! At every point each snapshot's blobs are listed by some index segment in a pack that
//! exists. Only one prune runs at a time (the maintenance lease), and it re-checks its lease
//! before every deletion.

use crate::index::Index;
use crate::lease::{LeaseTiming, MaintenanceLease};
use crate::progress::Progress;
use crate::repack::Repacker;
use crate::repository::{Repository, pack_handle};
use crate::{RepoError, Result};
use lifeboat_format::{
    BlobEntry, BlobType, Content, Id, IndexPack, IndexSegment, LeaseKind, Mark, MarkReason, Marks,
};
use lifeboat_storage::{FileKind, Handle, StorageError};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Index segments are merged when there are more than this many (each backup writes one).
const COMPACT_SEGMENTS: usize = 64;
/// Blobs per compacted segment: keeps each segment's decoded size around 10 MiB.
const BLOBS_PER_SEGMENT: usize = 200_000;

#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// How long a marked pack waits before it may be deleted.
    pub keep_delete: Duration,
    /// Unused space tolerated in partly used packs, in percent of the used space.
    pub max_unused_percent: f64,
    /// At most this many bytes of used blobs are copied by a repack.
    pub max_repack: Option<u64>,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            keep_delete: Duration::from_secs(24 * 3600),
            max_unused_percent: 5.0,
            max_repack: None,
        }
    }
}

/// What prune does to one pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackFate {
    /// Holds only needed blobs: nothing to do.
    Keep,
    /// Partly used; stays (the unused space is within `max_unused`).
    KeepPartly,
    /// Partly used; its needed blobs are copied to new packs, then it is marked.
    Repack,
    /// Unneeded and not yet marked: marked now.
    Mark(MarkReason),
    /// Marked, but needed again: unmarked.
    Recover,
    /// Marked and still unneeded, waiting for its grace period or for a running backup.
    Wait,
    /// Marked long enough ago, still unneeded, no backup could reuse it: deleted now.
    Delete,
}

#[derive(Debug, Clone)]
pub struct PackPlan {
    pub pack: Id,
    /// Size in storage (or in the index when missing from storage).
    pub size: u64,
    pub used_blobs: u64,
    pub unused_blobs: u64,
    /// Stored bytes of needed blobs.
    pub used_bytes: u64,
    pub blob_type: Option<BlobType>,
    pub indexed: bool,
    pub stored: bool,
    pub mark: Option<Mark>,
    pub fate: PackFate,
    /// Why it waits (for `Wait`).
    pub note: String,
    /// The needed blobs, kept for partly used packs (what a repack copies).
    pub needed: Vec<BlobEntry>,
}

/// The whole decision, printable before anything happens (`--dry-run`).
#[derive(Debug, Default)]
pub struct PrunePlan {
    pub snapshots: usize,
    pub packs: Vec<PackPlan>,
    /// Indexed packs missing from storage that hold nothing needed: dropped from the index.
    pub dropped_from_index: Vec<Id>,
    /// Whether index segments are rewritten (deletions, or too many small segments).
    pub compact_index: bool,
    pub segments: Vec<String>,
    pub marks_files: Vec<String>,
    pub new_marks: Marks,
    /// Backup leases that expired more than the grace period ago (their backups are dead).
    pub stale_leases: Vec<String>,
    pub warnings: Vec<String>,
    pub now: i64,
    pub keep_delete: Duration,
    /// Snapshots sealed under an old data key: written again under the current one (a new
    /// file name), then the old file removed.
    pub reseal_snapshots: Vec<Id>,
    /// The marks file is sealed under an old data key: written again even if unchanged.
    pub rekey_marks: bool,
}

/// The data-key generation an object (pack, sealed file) was sealed under, from the salt after
/// its magic; None if it cannot be read.
fn object_generation(repo: &Repository, h: &Handle) -> Option<u64> {
    let b = repo.storage().get_range(h, 0, 8 + 32).ok()?;
    let salt: [u8; 32] = b.get(8..40)?.try_into().ok()?;
    Some(repo.keys().generation_of(&salt))
}

impl PrunePlan {
    fn sum(&self, f: impl Fn(&PackPlan) -> bool, v: impl Fn(&PackPlan) -> u64) -> u64 {
        self.packs.iter().filter(|p| f(p)).map(v).sum()
    }
    pub fn count(&self, fate: impl Fn(PackFate) -> bool) -> usize {
        self.packs.iter().filter(|p| fate(p.fate)).count()
    }
    /// Bytes freed by this run's deletions.
    pub fn freed_now(&self) -> u64 {
        self.sum(|p| p.fate == PackFate::Delete, |p| p.size)
    }
    /// Bytes that later prunes free (marked now or waiting), minus what repacking copies.
    pub fn freed_later(&self) -> u64 {
        self.sum(
            |p| {
                matches!(
                    p.fate,
                    PackFate::Mark(_) | PackFate::Wait | PackFate::Repack
                )
            },
            |p| p.size,
        )
        .saturating_sub(self.repack_bytes())
    }
    /// Bytes of needed blobs a repack copies.
    pub fn repack_bytes(&self) -> u64 {
        self.sum(|p| p.fate == PackFate::Repack, |p| p.used_bytes)
    }
    pub fn used_bytes(&self) -> u64 {
        self.sum(|p| p.stored, |p| p.used_bytes)
    }
    pub fn total_bytes(&self) -> u64 {
        self.sum(|p| p.stored, |p| p.size)
    }
}

/// What a prune did.
#[derive(Debug, Default)]
pub struct PruneResult {
    pub deleted_packs: usize,
    pub deleted_bytes: u64,
    pub repacked_packs: usize,
    pub new_packs: usize,
    pub new_pack_bytes: u64,
    pub marked: usize,
    pub recovered: usize,
    pub segments_written: usize,
    pub segments_removed: usize,
    pub warnings: Vec<String>,
    /// Temporary files of killed writes removed.
    pub temporaries_removed: usize,
    /// Snapshots sealed anew under the current key: (old id, new id).
    pub resealed_snapshots: Vec<(Id, Id)>,
}

fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// One bit per index row, set from several threads.
struct Bits(Vec<AtomicU64>);

impl Bits {
    fn new(n: usize) -> Self {
        Bits((0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect())
    }
    /// Sets the bit; returns whether it was already set.
    fn set(&self, i: usize) -> bool {
        let m = 1u64 << (i % 64);
        self.0[i / 64].fetch_or(m, Ordering::Relaxed) & m != 0
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 64].load(Ordering::Relaxed) & (1u64 << (i % 64)) != 0
    }
}

/// Marks every blob the snapshots reference. Refuses if any cannot be found or read: prune
/// must never decide on a partial view.
fn referenced(
    repo: &Repository,
    index: &Index,
    trees: Vec<(String, Id)>,
    progress: &Progress,
) -> Result<Bits> {
    use rayon::prelude::*;
    let bits = Bits::new(index.len());
    let missing = |snap: &str, what: &str, id: &Id| {
        RepoError::Refused(format!(
            "snapshot {snap} references {what} {} that is in no index; prune stops so that nothing is deleted on a partial view; run `lifeboat check` (and `lifeboat repair index` if packs are unindexed)",
            id.short()
        ))
    };
    let mut frontier: Vec<(String, Id)> = Vec::new();
    for (snap, t) in trees {
        let pos = index
            .position(&t)
            .ok_or_else(|| missing(&snap, "tree", &t))?;
        if !bits.set(pos) {
            frontier.push((snap, t));
        }
    }
    while !frontier.is_empty() {
        if progress.cancelled() {
            return Err(RepoError::Interrupted);
        }
        let next: Vec<Result<Vec<(String, Id)>>> = frontier
            .par_iter()
            .map(|(snap, t)| {
                let tree = repo.load_tree(t).map_err(|e| {
                    RepoError::Refused(format!(
                        "tree {} of snapshot {snap} cannot be read ({e}); prune stops so that nothing is deleted on a partial view; run `lifeboat check`",
                        t.short()
                    ))
                })?;
                Progress::add(&progress.dirs, 1);
                let mut sub = Vec::new();
                for node in &tree.nodes {
                    for c in &node.content {
                        if let Content::Chunk(id) = c {
                            let pos = index
                                .position(id)
                                .ok_or_else(|| missing(snap, "data blob", id))?;
                            bits.set(pos);
                        }
                    }
                    if let Some(st) = node.subtree {
                        let pos = index
                            .position(&st)
                            .ok_or_else(|| missing(snap, "tree", &st))?;
                        if !bits.set(pos) {
                            sub.push((snap.clone(), st));
                        }
                    }
                }
                Ok(sub)
            })
            .collect();
        let mut f = Vec::new();
        for r in next {
            f.extend(r?);
        }
        frontier = f;
    }
    Ok(bits)
}

/// Works out what to do. Reads everything, writes nothing.
pub fn plan(
    repo: &mut Repository,
    opts: &PruneOptions,
    timing: LeaseTiming,
    progress: &Progress,
) -> Result<PrunePlan> {
    let now = now_secs();
    let mut plan = PrunePlan {
        now,
        keep_delete: opts.keep_delete,
        ..PrunePlan::default()
    };
    // Snapshots before the index: a snapshot's index segment is written before the
    // snapshot, so every snapshot listed here has its segment in the listing that follows.
    progress.set_current("reading snapshots");
    let (snaps, bad) = repo.snapshots()?;
    if let Some((file, e)) = bad.first() {
        return Err(RepoError::Refused(format!(
            "{file} cannot be read ({e}); prune cannot know what it references and stops; run `lifeboat check`, then repair or forget that snapshot"
        )));
    }
    plan.snapshots = snaps.len();
    progress.set_current("reading the index");
    let ir = repo.load_index()?;
    if let Some((file, e)) = ir.damaged.iter().find(|(f, _)| f.starts_with("index/")) {
        return Err(RepoError::Refused(format!(
            "{file} cannot be read ({e}); its packs would look unneeded; run `lifeboat repair index` first"
        )));
    }
    for (file, e) in ir.damaged.iter().filter(|(f, _)| !f.starts_with("index/")) {
        plan.warnings.push(format!(
            "{file} cannot be read ({e}); the packs it marked are marked again"
        ));
    }
    plan.segments = ir.files.clone();
    let marks_state = repo.read_marks()?;
    plan.marks_files = marks_state.files.clone();
    let old_marks = marks_state.marks().cloned().unwrap_or_default();
    let stored: HashMap<String, u64> = repo.storage().list(FileKind::Pack)?.into_iter().collect();

    // Leases: which running backups protect marked packs, and the clock's sanity.
    let margin = timing.margin.as_secs() as i64;
    let mut protect_from: Option<i64> = None;
    let mut newest_seen = old_marks.written_at;
    for e in repo.leases()? {
        if e.kind() != Some(LeaseKind::Backup) {
            continue;
        }
        match &e.lease {
            Ok(l) => {
                newest_seen = newest_seen.max(l.renewed.as_second());
                if l.expires.as_second() + opts.keep_delete.as_secs() as i64 <= now {
                    plan.stale_leases.push(e.name.clone());
                } else {
                    let s = l.started.as_second();
                    protect_from = Some(protect_from.map_or(s, |p: i64| p.min(s)));
                }
            }
            Err(why) => {
                plan.warnings.push(format!(
                    "locks/{} cannot be read ({why}); no pack is deleted while it exists (remove it if no backup is running)",
                    e.name
                ));
                protect_from = Some(i64::MIN);
            }
        }
    }
    if newest_seen > now + margin {
        return Err(RepoError::Refused(format!(
            "this host's clock ({}) is behind the newest time recorded in the repository ({}) by more than {margin}s; prune stops because marks written with a wrong time could let packs be deleted too early; fix the clock (NTP) and run it again",
            fmt_time(now),
            fmt_time(newest_seen)
        )));
    }

    progress.set_current("finding referenced data");
    let index = repo.index().clone();
    let trees = snaps.iter().map(|(id, s)| (id.short(), s.tree)).collect();
    let bits = referenced(repo, &index, trees, progress)?;
    let rotated = repo.keys().current_generation() != 0;

    // Per-pack accounting from the segments themselves (the in-memory index keeps one
    // location per blob; duplicates elsewhere count as unused).
    progress.set_current("accounting packs");
    let mut by_pack: HashMap<Id, PackPlan> = HashMap::new();
    let pack_numbers: HashMap<Id, u32> = index
        .packs()
        .iter()
        .enumerate()
        .map(|(n, (id, _))| (*id, n as u32))
        .collect();
    for name in &plan.segments {
        let seg = repo.read_index_segment(&Handle::new(FileKind::Index, name.clone()))?;
        for p in seg.packs {
            if by_pack.contains_key(&p.pack) {
                continue;
            }
            let n = pack_numbers.get(&p.pack).copied();
            let mut pp = PackPlan {
                pack: p.pack,
                size: stored.get(&p.pack.to_hex()).copied().unwrap_or(p.pack_len),
                used_blobs: 0,
                unused_blobs: 0,
                used_bytes: 0,
                blob_type: p.blobs.first().map(|b| b.blob_type),
                indexed: true,
                stored: stored.contains_key(&p.pack.to_hex()),
                mark: old_marks.get(&p.pack).copied(),
                fate: PackFate::Keep,
                note: String::new(),
                needed: Vec::new(),
            };
            for b in &p.blobs {
                let used = index.position(&b.id).is_some_and(|pos| {
                    bits.get(pos) && index.at(pos).map(|(_, l)| l.pack_number) == n
                });
                if used {
                    pp.used_blobs += 1;
                    pp.used_bytes += b.stored_len as u64;
                    pp.needed.push(*b);
                } else {
                    pp.unused_blobs += 1;
                }
            }
            if pp.unused_blobs == 0 && !rotated {
                // Only partly used packs are repacked (and, after a key rotation, any pack
                // still sealed under an old key).
                pp.needed = Vec::new();
            }
            by_pack.insert(p.pack, pp);
        }
    }
    for (name, size) in &stored {
        let Ok(id) = name.parse::<Id>() else {
            plan.warnings.push(format!(
                "data/ holds {name}, which is not a pack name; left alone"
            ));
            continue;
        };
        by_pack.entry(id).or_insert(PackPlan {
            pack: id,
            size: *size,
            used_blobs: 0,
            unused_blobs: 0,
            used_bytes: 0,
            blob_type: None,
            indexed: false,
            stored: true,
            mark: old_marks.get(&id).copied(),
            fate: PackFate::Keep,
            note: String::new(),
            needed: Vec::new(),
        });
    }

    // Decide each pack's fate.
    let eligible = |m: &Mark| -> std::result::Result<(), String> {
        let age = now - m.marked_at;
        if age < opts.keep_delete.as_secs() as i64 {
            return Err(format!(
                "marked {} ago, deleted after {}",
                fmt_secs(age.max(0)),
                fmt_secs(opts.keep_delete.as_secs() as i64)
            ));
        }
        if let Some(p) = protect_from
            && p <= m.marked_at + margin
        {
            return Err("a backup that started before it was marked is still running".into());
        }
        Ok(())
    };
    let mut packs: Vec<PackPlan> = by_pack.into_values().collect();
    packs.sort_by_key(|p| p.pack);
    for p in &mut packs {
        if p.indexed && !p.stored {
            if p.used_blobs > 0 {
                return Err(RepoError::Refused(format!(
                    "pack {} holds data that snapshots need but is missing from storage; prune stops; run `lifeboat check` to see what is affected",
                    p.pack.short()
                )));
            }
            plan.dropped_from_index.push(p.pack);
            continue;
        }
        let needed = p.used_blobs > 0;
        p.fate = match (&p.mark, needed) {
            (Some(_), true) => PackFate::Recover,
            (Some(m), false) => match eligible(m) {
                Ok(()) => PackFate::Delete,
                Err(why) => {
                    p.note = why;
                    PackFate::Wait
                }
            },
            (None, true) if p.unused_blobs > 0 => PackFate::KeepPartly,
            (None, true) => PackFate::Keep,
            (None, false) if p.indexed => PackFate::Mark(MarkReason::Unreferenced),
            (None, false) => PackFate::Mark(MarkReason::Unindexed),
        };
    }

    // Repack the partly used packs with the most unused space first, until what is left is
    // within max_unused (of the used space) or max_repack is reached.
    let used_total: u64 = packs.iter().map(|p| p.used_bytes).sum();
    let allowed_unused = (used_total as f64 * opts.max_unused_percent / 100.0) as u64;
    let mut unused_left: u64 = packs
        .iter()
        .filter(|p| p.fate == PackFate::KeepPartly)
        .map(|p| p.size.saturating_sub(p.used_bytes))
        .sum();
    let mut order: Vec<usize> = (0..packs.len())
        .filter(|i| packs[*i].fate == PackFate::KeepPartly)
        .collect();
    order.sort_by(|a, b| {
        let r = |p: &PackPlan| p.used_bytes as f64 / p.size.max(1) as f64;
        r(&packs[*a])
            .total_cmp(&r(&packs[*b]))
            .then(packs[*b].size.cmp(&packs[*a].size))
    });
    let mut repack_bytes = 0u64;
    for i in order {
        if unused_left <= allowed_unused {
            break;
        }
        let p = &mut packs[i];
        if let Some(max) = opts.max_repack
            && repack_bytes + p.used_bytes > max
        {
            continue;
        }
        repack_bytes += p.used_bytes;
        unused_left -= p.size.saturating_sub(p.used_bytes);
        p.fate = PackFate::Repack;
    }

    // After a key rotation: packs still sealed under an old data key are repacked (re-sealed
    // under the current one) within what max_repack leaves, and so are the index segments
    // and snapshots (below), so that a leaked old key stops mattering.
    if rotated {
        progress.set_current("finding data sealed under old keys");
        use rayon::prelude::*;
        let current = repo.keys().current_generation();
        let stale: Vec<bool> = packs
            .par_iter()
            .map(|p| {
                matches!(
                    p.fate,
                    PackFate::Keep | PackFate::KeepPartly | PackFate::Recover
                ) && p.used_blobs > 0
                    && object_generation(repo, &pack_handle(&p.pack)) != Some(current)
            })
            .collect();
        for (p, old) in packs.iter_mut().zip(stale) {
            if !old {
                continue;
            }
            if let Some(max) = opts.max_repack
                && repack_bytes + p.used_bytes > max
            {
                continue;
            }
            repack_bytes += p.used_bytes;
            p.note = "sealed under an old key".into();
            p.fate = PackFate::Repack;
        }
        for name in &plan.segments {
            if object_generation(repo, &Handle::new(FileKind::Index, name.clone())) != Some(current)
            {
                plan.compact_index = true;
            }
        }
        for (id, _) in &snaps {
            if object_generation(repo, &Handle::new(FileKind::Snapshot, id.to_hex()))
                != Some(current)
            {
                plan.reseal_snapshots.push(*id);
            }
        }
        plan.rekey_marks = marks_state.name().is_some_and(|n| {
            object_generation(repo, &Handle::new(FileKind::Marks, n)) != Some(current)
        });
    }

    // The marks after this run: previous marks that still apply, plus the new ones.
    let mut marks: Vec<Mark> = Vec::new();
    for p in &packs {
        match p.fate {
            PackFate::Wait | PackFate::Delete => marks.extend(p.mark),
            PackFate::Mark(reason) => marks.push(Mark {
                pack: p.pack,
                marked_at: now,
                reason,
            }),
            PackFate::Repack => marks.push(Mark {
                pack: p.pack,
                marked_at: now,
                reason: MarkReason::Repacked,
            }),
            _ => {}
        }
    }
    marks.sort_by_key(|m| m.pack);
    plan.new_marks = Marks {
        written_at: now,
        marks,
    };
    plan.packs = packs;
    plan.compact_index = plan.compact_index
        || plan.count(|f| f == PackFate::Delete) > 0
        || !plan.dropped_from_index.is_empty()
        || plan.segments.len() > COMPACT_SEGMENTS;
    Ok(plan)
}

fn fmt_time(s: i64) -> String {
    jiff::Timestamp::from_second(s)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| s.to_string())
}

/// "3d 4h", "25m", "40s".
pub fn fmt_secs(s: i64) -> String {
    let (d, h, m) = (s / 86400, (s % 86400) / 3600, (s % 3600) / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m")
    } else {
        format!("{s}s")
    }
}

/// Carries out a plan under the maintenance lease.
pub fn execute(
    repo: &Repository,
    plan: &PrunePlan,
    lease: &MaintenanceLease,
    progress: &Progress,
) -> Result<PruneResult> {
    let mut res = PruneResult::default();
    let interrupted = || {
        if progress.cancelled() {
            Err(RepoError::Interrupted)
        } else {
            Ok(())
        }
    };

    // 1. Repack: copy needed blobs into new packs and index them. A pack whose needed blobs
    // cannot all be read back stays as it is (unmarked): its damage is check's to report.
    let repack: Vec<&PackPlan> = plan
        .packs
        .iter()
        .filter(|p| p.fate == PackFate::Repack)
        .collect();
    let mut not_repacked: HashSet<Id> = HashSet::new();
    if !repack.is_empty() {
        progress.set_current("repacking");
        Progress::add(
            &progress.bytes_total,
            repack.iter().map(|p| p.size).sum::<u64>(),
        );
        let mut rp = Repacker::new(repo);
        for p in &repack {
            interrupted()?;
            lease.check()?;
            let o = rp.copy_pack(&p.pack, &p.needed, false)?;
            if let Some((blob, why)) = o.failed.first() {
                res.warnings.push(format!(
                    "pack {} was not repacked: blob {} cannot be read ({why}); run `lifeboat check --read-data`",
                    p.pack.short(),
                    blob.short()
                ));
                not_repacked.insert(p.pack);
            } else {
                res.repacked_packs += 1;
            }
            Progress::add(&progress.bytes, p.size);
        }
        let new_packs = rp.finish()?;
        if !new_packs.is_empty() {
            lease.check()?;
            res.new_packs = new_packs.len();
            res.new_pack_bytes = new_packs.iter().map(|p| p.pack_len).sum();
            repo.write_index_segment(&IndexSegment { packs: new_packs })?;
            res.segments_written += 1;
        }
    }

    // 2. The new marks, then the older marks files.
    interrupted()?;
    let old_current = plan.marks_files.clone();
    let marks_changed = {
        let prev: HashSet<(Id, i64)> = plan
            .packs
            .iter()
            .filter_map(|p| p.mark.map(|m| (m.pack, m.marked_at)))
            .collect();
        let next: HashSet<(Id, i64)> = plan
            .new_marks
            .marks
            .iter()
            .map(|m| (m.pack, m.marked_at))
            .collect();
        prev != next || old_current.len() > 1 || plan.rekey_marks
    };
    if marks_changed {
        lease.check()?;
        // New marks carry the time they become visible, not the time planning began: a
        // backup that starts in between (and so may reuse these packs) is then within the
        // skew margin of the mark and protected by its lease.
        let written = now_secs().max(plan.now);
        let mut marks = plan.new_marks.clone();
        marks.marks.retain(|m| !not_repacked.contains(&m.pack));
        marks.written_at = written;
        for m in &mut marks.marks {
            if m.marked_at == plan.now {
                m.marked_at = written;
            }
        }
        let name = repo.write_marks(&marks)?;
        for f in old_current.iter().filter(|f| **f != name) {
            lease.check()?;
            delete_quietly(repo, &Handle::new(FileKind::Marks, f.clone()))?;
        }
    }
    res.marked = plan.count(|f| matches!(f, PackFate::Mark(_) | PackFate::Repack));
    res.recovered = plan.count(|f| f == PackFate::Recover);

    // 3. Compacted index without the packs about to go.
    let deleting: Vec<&PackPlan> = plan
        .packs
        .iter()
        .filter(|p| p.fate == PackFate::Delete)
        .collect();
    if plan.compact_index {
        interrupted()?;
        progress.set_current("rewriting the index");
        let gone: HashSet<Id> = deleting
            .iter()
            .map(|p| p.pack)
            .chain(plan.dropped_from_index.iter().copied())
            .collect();
        let mut seen: HashSet<Id> = HashSet::new();
        let mut batch: Vec<IndexPack> = Vec::new();
        let mut batch_blobs = 0usize;
        for name in &plan.segments {
            let seg = repo.read_index_segment(&Handle::new(FileKind::Index, name.clone()))?;
            for p in seg.packs {
                if gone.contains(&p.pack) || !seen.insert(p.pack) {
                    continue;
                }
                batch_blobs += p.blobs.len();
                batch.push(p);
                if batch_blobs >= BLOBS_PER_SEGMENT {
                    lease.check()?;
                    repo.write_index_segment(&IndexSegment {
                        packs: std::mem::take(&mut batch),
                    })?;
                    res.segments_written += 1;
                    batch_blobs = 0;
                }
            }
        }
        if !batch.is_empty() {
            lease.check()?;
            repo.write_index_segment(&IndexSegment { packs: batch })?;
            res.segments_written += 1;
        }
        for name in &plan.segments {
            lease.check()?;
            delete_quietly(repo, &Handle::new(FileKind::Index, name.clone()))?;
            res.segments_removed += 1;
        }
    }

    // 3b. Snapshots sealed under an old key: the same snapshot sealed anew (its file name,
    // the hash of its bytes, changes), then the old file goes.
    for id in &plan.reseal_snapshots {
        interrupted()?;
        lease.check()?;
        let snap = match repo.read_snapshot(id) {
            Ok(s) => s,
            Err(RepoError::Storage(StorageError::NotFound(_))) => continue, // forgotten meanwhile
            Err(e) => return Err(e),
        };
        let new = repo.write_snapshot(&snap)?;
        if new != *id {
            delete_quietly(repo, &Handle::new(FileKind::Snapshot, id.to_hex()))?;
        }
        res.resealed_snapshots.push((*id, new));
    }

    // 4. Deletions, each after a lease check; a full check (with I/O) first and every
    // few seconds.
    if !deleting.is_empty() {
        progress.set_current("deleting packs");
        lease.verify()?;
        let mut last_verify = std::time::Instant::now();
        for p in deleting {
            interrupted()?;
            if last_verify.elapsed() > Duration::from_secs(5) {
                lease.verify()?;
                last_verify = std::time::Instant::now();
            }
            lease.check()?;
            delete_quietly(repo, &pack_handle(&p.pack))?;
            res.deleted_packs += 1;
            res.deleted_bytes += p.size;
        }
    }

    // 5. Leases of backups that died long ago, and temporary files of killed writes (older
    // than a day whatever the grace period: a live write never takes that long).
    for name in &plan.stale_leases {
        lease.check()?;
        delete_quietly(repo, &Handle::new(FileKind::Lock, name.clone()))?;
    }
    lease.check()?;
    res.temporaries_removed = repo
        .storage()
        .remove_stale_temporaries(plan.keep_delete.max(Duration::from_secs(24 * 3600)))?;
    Ok(res)
}

/// Deletes an object; one that is already gone is fine.
fn delete_quietly(repo: &Repository, h: &Handle) -> Result<()> {
    match repo.storage().delete(h) {
        Ok(()) | Err(StorageError::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
