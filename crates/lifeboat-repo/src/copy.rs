//! Copying snapshots into another repository, one with other keys.
//!
//! Blob ids are keyed by each repository's id key and cut points depend on its chunker seed,
//! so nothing stored can be moved as it is. A copy reads each file's and stream's content
//! from the source (its blobs in order; holes stay holes), cuts it again with the target's
//! chunker, and stores only the chunks the target does not have yet. Trees are rebuilt with
//! the new content ids and subtree ids; every other field of every node is kept as it was.
//!
//! Each snapshot is committed like a backup (packs, its own index segment, then the
//! snapshot), so an interrupted copy loses at most the snapshot it was working on, and the
//! next run finds what earlier snapshots stored through their index segments. A target
//! snapshot records the snapshot it copies in `copied_from`; snapshots whose original the
//! target already holds are skipped, which makes `copy` resumable and idempotent.
//!
//! The target is written under a backup lease, read before its prune marks exactly as
//! `backup` does, so a prune of the target treats a running copy like a running backup.

use crate::archiver::check_reused_packs;
use crate::error::{RepoError, Result};
use crate::lease::{BackupLease, LeaseHolder};
use crate::progress::Progress;
use crate::repository::Repository;
use crate::saver::BlobSaver;
use lifeboat_chunker::{ChunkerParams, Chunking, Cutter, StreamChunker};
use lifeboat_format::{BlobType, Content, CopiedFrom, Id, Node, NodeKind, Snapshot, Tree};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Files at least this large have their converted content list remembered for the rest of
/// the run, so the same big file in the next snapshot (in a directory that changed
/// otherwise) is not read and cut again. Small files are cheap to convert again and are the
/// many, so leaving them out keeps the memory proportional to the big files.
const FILE_MEMO_MIN: u64 = 1 << 20;

#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Count what would be copied; write nothing to the target (and take no lease).
    pub dry_run: bool,
    /// Who holds the target's backup lease, for prune's messages.
    pub holder: LeaseHolder,
}

/// What copying one snapshot did to the target (or would do, in a dry run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// File and stream bytes read from the source's blobs (holes and content already
    /// converted earlier in the run are not read).
    pub bytes_read: u64,
    /// Files and streams in the snapshot.
    pub files: u64,
    /// Blobs (data and trees) the target did not have.
    pub blobs_added: u64,
    /// Their plaintext bytes.
    pub bytes_added: u64,
    /// Their bytes in the target's packs (compressed, sealed).
    pub bytes_stored: u64,
}

impl CopyStats {
    fn add(&mut self, o: &CopyStats) {
        self.bytes_read += o.bytes_read;
        self.files += o.files;
        self.blobs_added += o.blobs_added;
        self.bytes_added += o.bytes_added;
        self.bytes_stored += o.bytes_stored;
    }
}

#[derive(Debug, Clone)]
pub enum CopyOutcome {
    /// Copied as the target snapshot `target` (`None` in a dry run).
    Copied {
        target: Option<Id>,
        stats: CopyStats,
    },
    /// The target already holds this snapshot (a copy of it, or the original): not copied.
    AlreadyThere { target: Id },
    /// The source snapshot could not be read in full (damaged or missing data); no snapshot
    /// was written for it. The other snapshots were still copied.
    Failed { error: String },
}

/// One selected source snapshot and what became of it.
#[derive(Debug, Clone)]
pub struct SnapshotCopy {
    pub source: Id,
    pub snapshot: Snapshot,
    pub outcome: CopyOutcome,
}

#[derive(Debug, Default)]
pub struct CopyReport {
    /// In the order they were copied: oldest first.
    pub snapshots: Vec<SnapshotCopy>,
    /// The sum over the snapshots copied.
    pub totals: CopyStats,
}

impl CopyReport {
    pub fn copied(&self) -> usize {
        self.count(|o| matches!(o, CopyOutcome::Copied { .. }))
    }
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, CopyOutcome::AlreadyThere { .. }))
    }
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, CopyOutcome::Failed { .. }))
    }
    fn count(&self, f: impl Fn(&CopyOutcome) -> bool) -> usize {
        self.snapshots.iter().filter(|s| f(&s.outcome)).count()
    }
}

/// Why converting a snapshot stopped.
enum Failure {
    /// The source could not be read (damaged or missing data): this snapshot fails, the
    /// others are still copied.
    Source(RepoError),
    /// The target, the run or the process failed (storage, interrupt): stop the whole copy.
    Fatal(RepoError),
}

/// A converted subtree: the target's tree id, and what is below it (for the progress bar,
/// which otherwise would not move for subtrees that are not walked again).
#[derive(Clone, Copy)]
struct TreeMemo {
    target: Id,
    bytes: u64,
    files: u64,
}

/// What the run learnt from snapshots already committed to the target. Only committed
/// snapshots add to it: a snapshot that fails leaves packs that no index lists, and its
/// blobs must not be taken as stored.
#[derive(Default)]
struct RunState {
    /// Blobs stored by this run (their index segments are written, but the target's
    /// in-memory index was loaded before).
    added: HashSet<Id>,
    /// Source tree id -> converted tree. The conversion is a function of the tree's content
    /// and the target's keys, so an unchanged directory is converted once per run.
    trees: HashMap<Id, TreeMemo>,
    /// Digest of a big file's source content list -> its converted content list.
    files: HashMap<Id, Vec<Content>>,
    /// Packs this run wrote: a later snapshot may reuse their blobs.
    packs: Vec<Id>,
}

/// Copies `selected` (source snapshots) from `src` into `dst`, oldest first. `on_snapshot`
/// is told about each snapshot as soon as it is done (copied, skipped or failed).
///
/// Returns an error, after the snapshots already committed, only when the run cannot go
/// on (the target failed, the run was interrupted); a source snapshot that cannot be read
/// is reported in its [`CopyOutcome::Failed`] and the copy goes on with the others.
pub fn copy(
    src: &Repository,
    dst: &Repository,
    mut selected: Vec<(Id, Snapshot)>,
    opts: &CopyOptions,
    progress: &Progress,
    on_snapshot: &mut dyn FnMut(&SnapshotCopy),
) -> Result<CopyReport> {
    let src_id = src.config().id;
    let dst_id = dst.config().id;
    if src_id == dst_id {
        return Err(RepoError::Invalid(format!(
            "the source and the target are the same repository ({}); copy into another one",
            src_id.short()
        )));
    }
    // Oldest first, as a backup would have written them: a parent is copied before the
    // snapshots that name it, and the target lists them in the same order.
    selected.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
    selected.dedup_by(|a, b| a.0 == b.0);

    // As in `backup`: the lease first, the marks after it, so a prune that marks packs later
    // sees this lease and keeps those packs while the copy may still reuse them.
    let lease = if opts.dry_run {
        None
    } else {
        Some(BackupLease::acquire(dst, &opts.holder)?)
    };
    let marks = dst.read_marks()?;
    let marked: Vec<bool> = dst
        .index()
        .packs()
        .iter()
        .map(|(id, _)| marks.marks().is_some_and(|m| m.get(id).is_some()))
        .collect();

    // Every original the target holds: its own snapshots and the copies it has. A target
    // snapshot that cannot be read is left out; at worst its snapshot is copied again.
    let (existing, _damaged) = dst.snapshots()?;
    let mut in_target: HashMap<CopiedFrom, Id> = existing
        .iter()
        .map(|(id, s)| (s.origin(dst_id, *id), *id))
        .collect();

    let total: u64 = selected
        .iter()
        .filter(|(id, s)| !in_target.contains_key(&s.origin(src_id, *id)))
        .map(|(_, s)| s.summary.bytes_total)
        .sum();
    Progress::add(&progress.bytes_total, total);
    progress.totals_done.store(true, Ordering::Relaxed);

    let params = ChunkerParams {
        min: dst.config().chunk_min as usize,
        avg: dst.config().chunk_avg as usize,
        max: dst.config().chunk_max as usize,
    };
    let chunking = Chunking::Content(Cutter::new(params, dst.keys().chunker_seed));
    let mut run = RunState::default();
    let mut report = CopyReport::default();
    // Source snapshot id -> its snapshot in the target, for `parent`.
    let mut copied: HashMap<Id, Id> = HashMap::new();

    for (id, snap) in selected {
        if progress.cancelled() {
            return Err(RepoError::Interrupted);
        }
        let origin = snap.origin(src_id, id);
        let outcome = if let Some(t) = in_target.get(&origin) {
            copied.insert(id, *t);
            CopyOutcome::AlreadyThere { target: *t }
        } else {
            // The parent is named only if the target has it; a parent id from the source
            // would point at nothing there.
            let parent = snap.parent.and_then(|p| {
                copied.get(&p).copied().or_else(|| {
                    in_target
                        .get(&CopiedFrom {
                            repository: src_id,
                            snapshot: p,
                        })
                        .copied()
                })
            });
            let mut target = snap.clone();
            target.parent = parent;
            target.copied_from = Some(origin);
            // The trees and this file are written by this program; the rest describes
            // the backup that made the snapshot and is kept.
            target.program_version = env!("CARGO_PKG_VERSION").to_string();
            let job = SnapshotJob {
                src,
                dst,
                chunking: &chunking,
                marked: &marked,
                marks_files: &marks.files,
                lease: lease.as_ref(),
                dry_run: opts.dry_run,
                progress,
            };
            match job.run(&snap, target, &mut run)? {
                Ok((target_id, stats)) => {
                    if let Some(t) = target_id {
                        in_target.insert(origin, t);
                        copied.insert(id, t);
                    }
                    report.totals.add(&stats);
                    CopyOutcome::Copied {
                        target: target_id,
                        stats,
                    }
                }
                Err(e) => CopyOutcome::Failed {
                    error: e.to_string(),
                },
            }
        };
        let done = SnapshotCopy {
            source: id,
            snapshot: snap,
            outcome,
        };
        on_snapshot(&done);
        report.snapshots.push(done);
    }
    drop(lease);
    Ok(report)
}

/// A snapshot committed to the target (its id, `None` in a dry run), or why its source
/// could not be read.
type Committed = std::result::Result<(Option<Id>, CopyStats), RepoError>;

/// What copying one snapshot needs from the run.
struct SnapshotJob<'a> {
    src: &'a Repository,
    dst: &'a Repository,
    chunking: &'a Chunking,
    marked: &'a [bool],
    marks_files: &'a [String],
    lease: Option<&'a BackupLease>,
    dry_run: bool,
    progress: &'a Progress,
}

impl SnapshotJob<'_> {
    /// Converts and commits one snapshot. The outer error stops the run; the inner one is
    /// this snapshot's source failing.
    fn run(
        &self,
        source: &Snapshot,
        mut target: Snapshot,
        run: &mut RunState,
    ) -> Result<Committed> {
        let mut saver = BlobSaver::new(self.dst, self.dst.config().compression, self.dry_run);
        saver.set_marked(self.marked.to_vec());
        // Later snapshots of this run reuse what this one stores.
        saver.collect_ids();
        let conv = Converter {
            src: self.src,
            dst: self.dst,
            saver,
            chunking: self.chunking,
            run,
            trees: Mutex::new(HashMap::new()),
            files: Mutex::new(HashMap::new()),
            buffers: Mutex::new(Vec::new()),
            bytes_read: AtomicU64::new(0),
            file_count: AtomicU64::new(0),
            progress: self.progress,
        };
        let root = match conv.tree(&source.tree, "") {
            Ok(m) => m.target,
            // Dropping the converter stops the saver; packs it wrote stay unreferenced.
            Err(Failure::Source(e)) => return Ok(Err(e)),
            Err(Failure::Fatal(e)) => return Err(e),
        };
        let Converter {
            saver,
            trees,
            files,
            bytes_read,
            file_count,
            ..
        } = conv;
        let mut used = saver.used_packs();
        // Writes this snapshot's index segment: from here its blobs are found by any later
        // run, even if this one is killed before the snapshot is written.
        let saved = saver.finish(self.dst)?;
        if let Some(lease) = self.lease {
            used.extend(run.packs.iter().copied());
            check_reused_packs(self.dst, lease, self.marks_files, &used)?;
        }
        let mut stats = CopyStats {
            bytes_read: bytes_read.into_inner(),
            files: file_count.into_inner(),
            ..CopyStats::default()
        };
        stats.blobs_added += saved.blobs;
        stats.bytes_added += saved.bytes_raw;
        stats.bytes_stored += saved.bytes_stored;
        target.tree = root;
        if self.progress.cancelled() {
            return Err(RepoError::Interrupted);
        }
        let id = if self.dry_run {
            None
        } else {
            Some(self.dst.write_snapshot(&target)?)
        };
        // Committed (or, in a dry run, counted): what this snapshot stored may be reused.
        run.added.extend(saved.ids.iter().copied());
        run.packs.extend(saved.packs.iter().copied());
        run.trees.extend(trees.into_inner().unwrap_or_default());
        run.files.extend(files.into_inner().unwrap_or_default());
        Ok(Ok((id, stats)))
    }
}

/// Converts one snapshot's trees and content into the target's blobs.
struct Converter<'a> {
    src: &'a Repository,
    dst: &'a Repository,
    saver: BlobSaver,
    chunking: &'a Chunking,
    /// Read-only while a snapshot is converted; this snapshot's own findings go into
    /// `trees` and `files` and join the run's when it is committed.
    run: &'a RunState,
    trees: Mutex<HashMap<Id, TreeMemo>>,
    files: Mutex<HashMap<Id, Vec<Content>>>,
    /// Chunking buffers (two maximum chunks each), reused across files and threads.
    buffers: Mutex<Vec<Vec<u8>>>,
    bytes_read: AtomicU64,
    file_count: AtomicU64,
    progress: &'a Progress,
}

impl Converter<'_> {
    fn cancelled(&self) -> std::result::Result<(), Failure> {
        if self.progress.cancelled() {
            return Err(Failure::Fatal(RepoError::Interrupted));
        }
        Ok(())
    }

    /// Stores a blob in the target unless it is there (in its index, stored earlier in this
    /// run, or on its way in this snapshot); returns the target's id for it.
    fn store(&self, t: BlobType, data: &[u8]) -> std::result::Result<Id, Failure> {
        let id = self.dst.keys().blob_id(data);
        if self.run.added.contains(&id) || self.saver.has(&id) {
            return Ok(id);
        }
        self.saver
            .save(t, data)
            .map(|(id, _)| id)
            .map_err(Failure::Fatal)
    }

    fn tree_memo(&self, id: &Id) -> Option<TreeMemo> {
        if let Some(m) = self.run.trees.get(id) {
            return Some(*m);
        }
        self.trees.lock().ok().and_then(|t| t.get(id).copied())
    }

    /// Converts the source tree `id` (the directory at `path`) and everything below it.
    fn tree(&self, id: &Id, path: &str) -> std::result::Result<TreeMemo, Failure> {
        self.cancelled()?;
        if let Some(m) = self.tree_memo(id) {
            Progress::add(&self.progress.bytes_skipped, m.bytes);
            Progress::add(&self.progress.files, m.files);
            self.file_count.fetch_add(m.files, Ordering::Relaxed);
            return Ok(m);
        }
        let tree = self.src.load_tree(id).map_err(Failure::Source)?;
        use rayon::prelude::*;
        // Entries in parallel (rayon steals work across nested directories too); the
        // results keep their order, which is the tree's sorted order.
        let nodes: Vec<(Node, u64, u64)> = tree
            .nodes
            .into_par_iter()
            .map(|n| self.node(n, path))
            .collect::<std::result::Result<_, _>>()?;
        let (mut bytes, mut files) = (0, 0);
        let mut out = Vec::with_capacity(nodes.len());
        for (n, b, f) in nodes {
            bytes += b;
            files += f;
            out.push(n);
        }
        let target = self.store(BlobType::Tree, &Tree { nodes: out }.encode())?;
        let m = TreeMemo {
            target,
            bytes,
            files,
        };
        if let Ok(mut t) = self.trees.lock() {
            t.insert(*id, m);
        }
        Ok(m)
    }

    /// One node with its content and subtree converted; everything else is kept. Returns
    /// the node and the file bytes and files at or below it.
    fn node(&self, mut n: Node, dir: &str) -> std::result::Result<(Node, u64, u64), Failure> {
        let path = format!("{dir}/{}", lifeboat_format::escape_bytes(&n.name));
        match n.kind() {
            NodeKind::Dir => {
                let Some(sub) = n.subtree else {
                    // The tree decoder refuses a directory without a subtree.
                    return Err(Failure::Source(RepoError::corrupt(
                        format!("directory {path}"),
                        "it has no subtree",
                    )));
                };
                let m = self.tree(&sub, &path)?;
                n.subtree = Some(m.target);
                Ok((n, m.bytes, m.files))
            }
            NodeKind::File => {
                n.content = self.content(&n, &path)?;
                Progress::add(&self.progress.files, 1);
                self.file_count.fetch_add(1, Ordering::Relaxed);
                let size = n.size;
                Ok((n, size, 1))
            }
            _ => Ok((n, 0, 0)),
        }
    }

    /// A file's content in the target: each run of chunks (a data region, or a stream)
    /// is read from the source and cut again; holes are kept as they are.
    fn content(&self, n: &Node, path: &str) -> std::result::Result<Vec<Content>, Failure> {
        let memo_key = (n.size >= FILE_MEMO_MIN).then(|| content_digest(&n.content));
        if let Some(k) = &memo_key {
            let hit = self
                .run
                .files
                .get(k)
                .cloned()
                .or_else(|| self.files.lock().ok().and_then(|f| f.get(k).cloned()));
            if let Some(c) = hit {
                Progress::add(&self.progress.bytes_skipped, n.size);
                return Ok(c);
            }
        }
        let mut out = Vec::new();
        let mut size = 0u64;
        let mut i = 0;
        while let Some(item) = n.content.get(i) {
            match item {
                Content::Hole(len) => {
                    out.push(Content::Hole(*len));
                    Progress::add(&self.progress.bytes_skipped, *len);
                    size = size.saturating_add(*len);
                    i += 1;
                }
                Content::Chunk(_) => {
                    let end = n.content[i..]
                        .iter()
                        .position(|c| matches!(c, Content::Hole(_)))
                        .map_or(n.content.len(), |p| i + p);
                    size += self.region(&n.content[i..end], path, &mut out)?;
                    i = end;
                }
            }
        }
        // A content list that does not add up to the size would make the target's copy
        // fail `check` and `restore`: the source is damaged, so refuse to copy it.
        if size != n.size {
            return Err(Failure::Source(RepoError::corrupt(
                format!("file {path}"),
                format!(
                    "its content adds up to {size} bytes, its size is {}",
                    n.size
                ),
            )));
        }
        if let (Some(k), Ok(mut f)) = (memo_key, self.files.lock()) {
            f.insert(k, out.clone());
        }
        Ok(out)
    }

    /// Reads the chunks of one data region from the source and cuts them again with the
    /// target's chunker (from the region's start, as a backup cuts each region). Returns the
    /// region's length.
    fn region(
        &self,
        chunks: &[Content],
        path: &str,
        out: &mut Vec<Content>,
    ) -> std::result::Result<u64, Failure> {
        let buf = self
            .buffers
            .lock()
            .ok()
            .and_then(|mut b| b.pop())
            .unwrap_or_default();
        let reader = BlobsReader {
            src: self.src,
            chunks,
            next: 0,
            current: Vec::new(),
            pos: 0,
            error: None,
        };
        let mut chunker = StreamChunker::with_buffer(reader, self.chunking.clone(), buf);
        let mut len = 0u64;
        let res = loop {
            if let Err(f) = self.cancelled() {
                break Err(f);
            }
            match chunker.next_chunk() {
                Ok(Some(chunk)) => {
                    len += chunk.len() as u64;
                    Progress::add(&self.progress.bytes, chunk.len() as u64);
                    match self.store(BlobType::Data, chunk) {
                        Ok(id) => out.push(Content::Chunk(id)),
                        Err(f) => break Err(f),
                    }
                }
                Ok(None) => break Ok(len),
                // The reader kept the real error.
                Err(e) => break Err(Failure::Source(RepoError::Invalid(e.to_string()))),
            }
        };
        let (mut reader, buf) = chunker.into_parts();
        if let Ok(mut b) = self.buffers.lock() {
            b.push(buf);
        }
        self.bytes_read.fetch_add(len, Ordering::Relaxed);
        if let Some(e) = reader.error.take() {
            return Err(Failure::Source(RepoError::corrupt(
                format!("source file {path}"),
                e,
            )));
        }
        res
    }
}

/// The bytes of a run of source blobs, in order, read one blob at a time.
struct BlobsReader<'a> {
    src: &'a Repository,
    chunks: &'a [Content],
    next: usize,
    current: Vec<u8>,
    pos: usize,
    /// The first error, kept so that the copy can report it as the source's.
    error: Option<RepoError>,
}

impl Read for BlobsReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.current.len() {
            let Some(item) = self.chunks.get(self.next) else {
                return Ok(0);
            };
            self.next += 1;
            let Content::Chunk(id) = item else {
                continue; // regions hold chunks only; a hole is never passed here
            };
            match self.src.read_blob(id) {
                Ok(b) => {
                    self.current = b;
                    self.pos = 0;
                }
                Err(e) => {
                    let msg = e.to_string();
                    self.error = Some(e);
                    return Err(std::io::Error::other(msg));
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A digest naming a content list, for the file memo.
fn content_digest(content: &[Content]) -> Id {
    let mut b = Vec::with_capacity(content.len() * 33);
    for c in content {
        match c {
            Content::Chunk(id) => {
                b.push(0);
                b.extend_from_slice(&id.0);
            }
            Content::Hole(n) => {
                b.push(1);
                b.extend_from_slice(&n.to_le_bytes());
            }
        }
    }
    lifeboat_crypto::storage_id(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repository::InitOptions;
    use lifeboat_format::{KdfParams, SnapshotSummary, Timestamp};
    use lifeboat_storage::LocalStorage;
    use std::sync::Arc;

    fn repo(dir: &std::path::Path, name: &str, chunk_avg: u32) -> Repository {
        let opts = InitOptions {
            chunk_avg,
            compression: 3,
            pack_size: 1 << 20,
            kdf: KdfParams {
                m_cost_kib: 8,
                t_cost: 1,
                p_cost: 1,
            },
        };
        let storage = Arc::new(LocalStorage::new(dir.join(name)));
        Repository::init(storage.clone(), name.as_bytes(), &opts).expect("init");
        open(dir, name)
    }

    fn open(dir: &std::path::Path, name: &str) -> Repository {
        let storage = Arc::new(LocalStorage::new(dir.join(name)));
        let mut r = Repository::open(storage, name.as_bytes()).expect("open");
        r.load_index().expect("index");
        r
    }

    fn data(n: usize, mut x: u64) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.truncate(n);
        v
    }

    fn snapshot(tree: Id, secs: i64) -> Snapshot {
        let t = jiff::Timestamp::from_second(secs).expect("time");
        Snapshot {
            version: lifeboat_format::SNAPSHOT_VERSION,
            time: t,
            time_end: t,
            hostname: "h".into(),
            username: "u".into(),
            paths: vec!["/d".into()],
            tags: vec!["t".into()],
            tree,
            parent: None,
            streams: Vec::new(),
            skipped: Vec::new(),
            summary: SnapshotSummary {
                files: 1,
                ..SnapshotSummary::default()
            },
            run_id: Some("run".into()),
            copied_from: None,
            program_version: "0.0.1".into(),
        }
    }

    fn file(name: &str, content: Vec<Content>, size: u64) -> Node {
        Node {
            name: name.as_bytes().to_vec(),
            kind: Some(NodeKind::File),
            mode: 0o4755,
            uid: 1000,
            gid: 100,
            user: b"alice".to_vec(),
            group: b"users".to_vec(),
            mtime: Timestamp {
                secs: 1_700_000_000,
                nanos: 123,
            },
            atime: Timestamp { secs: -5, nanos: 0 },
            ctime: Timestamp {
                secs: 1,
                nanos: 999_999_999,
            },
            size,
            dev: 2049,
            inode: 42,
            nlink: 2,
            xattrs: vec![(b"user.k".to_vec(), b"v".to_vec())],
            content,
            ..Node::default()
        }
    }

    /// Writes a snapshot of `src` whose root holds one directory `d` with `nodes`; returns
    /// the snapshot's id.
    fn write_snapshot(src: &mut Repository, nodes: Vec<Node>, secs: i64) -> Id {
        let saver = BlobSaver::new(src, 3, false);
        let sub = saver
            .save(BlobType::Tree, &Tree { nodes }.encode())
            .expect("tree")
            .0;
        let dir = Node {
            name: b"d".to_vec(),
            kind: Some(NodeKind::Dir),
            mode: 0o755,
            subtree: Some(sub),
            ..Node::default()
        };
        let root = saver
            .save(BlobType::Tree, &Tree { nodes: vec![dir] }.encode())
            .expect("root")
            .0;
        saver.finish(src).expect("finish");
        let id = src.write_snapshot(&snapshot(root, secs)).expect("snapshot");
        src.load_index().expect("index");
        id
    }

    /// Stores `bytes` in `src` as one data blob per piece of `cuts` lengths.
    fn store(src: &mut Repository, bytes: &[u8], cuts: &[usize]) -> Vec<Content> {
        let saver = BlobSaver::new(src, 3, false);
        let mut out = Vec::new();
        let mut pos = 0;
        for c in cuts {
            let id = saver
                .save(BlobType::Data, &bytes[pos..pos + c])
                .expect("save")
                .0;
            out.push(Content::Chunk(id));
            pos += c;
        }
        saver.finish(src).expect("finish");
        src.load_index().expect("index");
        out
    }

    fn opts() -> CopyOptions {
        CopyOptions {
            dry_run: false,
            holder: LeaseHolder {
                hostname: "test".into(),
                username: "test".into(),
                command: "copy".into(),
            },
        }
    }

    fn run(src: &Repository, dst: &Repository) -> CopyReport {
        let (all, _) = src.snapshots().expect("snapshots");
        copy(src, dst, all, &opts(), &Progress::default(), &mut |_| {}).expect("copy")
    }

    fn read_content(r: &Repository, content: &[Content]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in content {
            match c {
                Content::Chunk(id) => out.extend(r.read_blob(id).expect("blob")),
                Content::Hole(n) => out.extend(std::iter::repeat_n(0u8, *n as usize)),
            }
        }
        out
    }

    #[test]
    fn regions_are_cut_again_holes_kept_and_every_other_field_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut src = repo(dir.path(), "src", 1 << 20);
        let dst = repo(dir.path(), "dst", 1 << 12);
        let (a, b) = (data(100_000, 1), data(30_000, 3));
        // The source's blobs cut at arbitrary places: the target must not care.
        let mut content = store(&mut src, &a, &[70_000, 30_000]);
        content.push(Content::Hole(5000));
        content.extend(store(&mut src, &b, &[30_000]));
        content.push(Content::Hole(7));
        let f = file("f", content, 135_007);
        let link = Node {
            name: b"l\xff".to_vec(),
            kind: Some(NodeKind::Symlink),
            target: b"f".to_vec(),
            size: 1,
            ..Node::default()
        };
        let sid = write_snapshot(&mut src, vec![f.clone(), link.clone()], 100);

        let report = run(&src, &dst);
        assert_eq!((report.copied(), report.failed()), (1, 0));
        let CopyOutcome::Copied {
            target: Some(tid), ..
        } = &report.snapshots[0].outcome
        else {
            panic!("not copied: {:?}", report.snapshots[0].outcome);
        };
        let dst = open(dir.path(), "dst");
        let copied = dst.read_snapshot(tid).unwrap();
        let original = src.read_snapshot(&sid).unwrap();
        assert_eq!(
            copied.copied_from,
            Some(CopiedFrom {
                repository: src.config().id,
                snapshot: sid
            })
        );
        assert_eq!(
            Snapshot {
                tree: original.tree,
                copied_from: None,
                program_version: original.program_version.clone(),
                ..copied.clone()
            },
            original
        );
        let root = dst.load_tree(&copied.tree).unwrap();
        let nodes = dst
            .load_tree(&root.nodes[0].subtree.unwrap())
            .unwrap()
            .nodes;
        assert_eq!(nodes[1], link);
        let g = &nodes[0];
        assert_eq!(
            Node {
                content: f.content.clone(),
                ..g.clone()
            },
            f
        );
        // Each region is cut from its own start with the target's chunker; holes stay.
        let cutter = Cutter::new(
            ChunkerParams::with_average(1 << 12).unwrap(),
            dst.keys().chunker_seed,
        );
        let cuts = |mut d: &[u8]| {
            let mut v = Vec::new();
            while !d.is_empty() {
                let n = cutter.cut(d);
                v.push(dst.keys().blob_id(&d[..n]));
                d = &d[n..];
            }
            v
        };
        let mut want: Vec<Content> = cuts(&a).into_iter().map(Content::Chunk).collect();
        want.push(Content::Hole(5000));
        want.extend(cuts(&b).into_iter().map(Content::Chunk));
        want.push(Content::Hole(7));
        assert_eq!(g.content, want);
        assert_eq!(
            read_content(&dst, &g.content),
            read_content(&src, &f.content)
        );
    }

    #[test]
    fn a_damaged_source_snapshot_fails_alone_and_copies_are_recognised_along_any_path() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = repo(dir.path(), "a", 1 << 16);
        let b = repo(dir.path(), "b", 1 << 14);
        let c = repo(dir.path(), "c", 1 << 12);
        let x = data(50_000, 5);
        let content = store(&mut a, &x, &[50_000]);
        write_snapshot(&mut a, vec![file("ok", content, 50_000)], 100);
        // A chunk no index has, and a content list shorter than the file's size.
        let missing = vec![Content::Chunk(Id([9; 32]))];
        write_snapshot(&mut a, vec![file("missing", missing, 10)], 200);
        let short = store(&mut a, &x[..10], &[10]);
        write_snapshot(&mut a, vec![file("short", short, 11)], 300);

        let r = run(&a, &b);
        assert_eq!((r.copied(), r.failed()), (1, 2), "{:?}", r.snapshots);
        let b = open(dir.path(), "b");
        assert_eq!(b.snapshots().unwrap().0.len(), 1);
        let r = run(&a, &b);
        assert_eq!((r.copied(), r.skipped(), r.failed()), (0, 1, 2));

        // A to B to C, then A to C: the same snapshot, not copied twice; nor back into A.
        let r = run(&b, &c);
        assert_eq!(r.copied(), 1);
        let c = open(dir.path(), "c");
        let r = run(&a, &c);
        assert_eq!((r.copied(), r.skipped()), (0, 1));
        let r = run(&c, &a);
        assert_eq!((r.copied(), r.skipped()), (0, 1));
        let (in_c, _) = c.snapshots().unwrap();
        assert_eq!(in_c.len(), 1);
        assert_eq!(
            in_c[0].1.copied_from.map(|o| o.repository),
            Some(a.config().id),
            "a copy of a copy names the original"
        );
    }

    #[test]
    fn a_dry_run_counts_what_a_copy_adds_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut src = repo(dir.path(), "src", 1 << 16);
        let dst = repo(dir.path(), "dst", 1 << 12);
        // Big enough for the file memo.
        let x = data(1_200_000, 7);
        let content = store(&mut src, &x, &[600_000, 600_000]);
        write_snapshot(&mut src, vec![file("f", content.clone(), 1_200_000)], 1);
        write_snapshot(&mut src, vec![file("g", content, 1_200_000)], 2);
        let (all, _) = src.snapshots().unwrap();
        let mut o = opts();
        o.dry_run = true;
        let dry = copy(&src, &dst, all, &o, &Progress::default(), &mut |_| {}).unwrap();
        assert_eq!(dry.copied(), 2);
        assert!(
            dst.storage()
                .list(lifeboat_storage::FileKind::Pack)
                .unwrap()
                .is_empty()
        );
        assert!(
            dst.storage()
                .list(lifeboat_storage::FileKind::Lock)
                .unwrap()
                .is_empty()
        );
        let real = run(&src, &dst);
        assert_eq!(dry.totals, real.totals);
        // The second snapshot's file is the first's: read once, stored once.
        assert_eq!(real.totals.bytes_read, 1_200_000);
        let CopyOutcome::Copied { stats, .. } = &real.snapshots[1].outcome else {
            panic!("not copied");
        };
        assert_eq!(stats.bytes_read, 0);
        assert_eq!(stats.blobs_added, 2, "two trees, no data");
    }
}
