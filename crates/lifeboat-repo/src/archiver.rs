//! Backup: walk a [`FileSource`], read what changed, store new blobs, and write a snapshot.
//!
//! Change detection needs no separate cache file: the parent snapshot's trees already hold
//! each file's size, mtime, ctime and inode; a file whose four match, and whose blobs the
//! index still has, reuses the parent's content list and is not read. Deleting every local
//! cache therefore changes no result.

use crate::error::{RepoError, Result};
use crate::lease::{BackupLease, LeaseHolder};
use crate::progress::Progress;
use crate::repository::Repository;
use crate::saver::BlobSaver;
use crate::source::{FileReader, FileSource, SourceEntry, SourceError, StreamSource};
use lifeboat_chunker::{ChunkerParams, Chunking, Cutter, StreamChunker};
use lifeboat_format::{
    BlobType, Content, Id, Node, NodeKind, SkippedEntry, Snapshot, SnapshotStream, SnapshotSummary,
    Timestamp, Tree,
};
use lifeboat_storage::FileKind;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, Clone, Default)]
pub struct BackupOptions {
    /// Absolute paths to back up.
    pub paths: Vec<PathBuf>,
    pub tags: Vec<String>,
    pub hostname: String,
    pub username: String,
    pub parent: Option<(Id, Snapshot)>,
    /// zstd level; `None` takes the repository's default.
    pub compression: Option<i32>,
    pub dry_run: bool,
    pub run_id: Option<String>,
    /// The snapshot's time instead of now (importing older backups); the snapshot's end
    /// time keeps the backup's duration after it.
    pub time: Option<jiff::Timestamp>,
}

#[derive(Debug)]
pub struct BackupResult {
    /// `None` for a dry run.
    pub id: Option<Id>,
    pub snapshot: Snapshot,
}

/// Makes a path absolute and lexically normal (no `.`, `..` or repeated `/`), without
/// following symlinks: `/etc/` and `/etc/.` are both `/etc`.
pub fn normalize_path(p: &Path) -> std::io::Result<PathBuf> {
    let abs = std::path::absolute(p)?;
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The requested paths as a tree of components, so `/etc` and `/var/lib/glance` share a root.
#[derive(Default)]
struct PathTree {
    /// This path itself was requested: store everything below it.
    target: bool,
    children: BTreeMap<Vec<u8>, PathTree>,
}

impl PathTree {
    fn insert(&mut self, p: &Path) {
        let mut t = self;
        for c in p.components() {
            if let Component::Normal(n) = c {
                t = t.children.entry(n.as_bytes().to_vec()).or_default();
            }
        }
        t.target = true;
    }
}

enum Failure {
    /// One entry could not be read: record it, go on.
    Entry(SourceError),
    /// The repository or the run failed: stop.
    Fatal(RepoError),
}

impl From<RepoError> for Failure {
    fn from(e: RepoError) -> Self {
        Failure::Fatal(e)
    }
}

struct Archiver<'a> {
    repo: &'a Repository,
    source: &'a dyn FileSource,
    saver: BlobSaver,
    chunking: Chunking,
    progress: &'a Progress,
    skipped: Mutex<Vec<SkippedEntry>>,
    summary: Mutex<SnapshotSummary>,
    /// Chunking buffers (two maximum chunks each), reused across files and threads.
    buffers: Mutex<Vec<Vec<u8>>>,
}

/// Runs a backup of `opts.paths` from `source` plus `streams`, and writes the snapshot.
pub fn backup(
    repo: &Repository,
    source: &dyn FileSource,
    streams: Vec<Box<dyn StreamSource>>,
    opts: &BackupOptions,
    progress: &Progress,
) -> Result<BackupResult> {
    let start = jiff::Timestamp::now();
    let cfg = repo.config();
    let params = ChunkerParams {
        min: cfg.chunk_min as usize,
        avg: cfg.chunk_avg as usize,
        max: cfg.chunk_max as usize,
    };
    let level = opts.compression.unwrap_or(cfg.compression);
    // The lease comes first and the marks are read after it: a prune that marks packs
    // later sees this lease's start time and keeps those packs for this backup.
    let lease = if opts.dry_run {
        None
    } else {
        Some(BackupLease::acquire(
            repo,
            &LeaseHolder {
                hostname: opts.hostname.clone(),
                username: opts.username.clone(),
                command: "backup".into(),
            },
        )?)
    };
    let marks_at_start = repo.read_marks()?;
    let mut saver = BlobSaver::new(repo, level, opts.dry_run);
    // Self-healing: content that check found damaged is stored again when met. A health
    // record that cannot be read only loses that (check reports it).
    // Only where the index still points at the damaged copy: once an undamaged copy exists,
    // readers prefer it and nothing needs storing again.
    if let Ok(h) = repo.read_health() {
        let index = repo.index();
        saver.distrust(
            h.health
                .bad
                .iter()
                .filter(|b| index.get(&b.blob).is_some_and(|l| l.pack == b.pack))
                .map(|b| b.blob),
        );
    }
    saver.set_marked(
        repo.index()
            .packs()
            .iter()
            .map(|(id, _)| marks_at_start.marks().is_some_and(|m| m.get(id).is_some()))
            .collect(),
    );
    let a = Archiver {
        repo,
        source,
        saver,
        chunking: Chunking::Content(Cutter::new(params, repo.keys().chunker_seed)),
        progress,
        skipped: Mutex::new(Vec::new()),
        summary: Mutex::new(SnapshotSummary::default()),
        buffers: Mutex::new(Vec::new()),
    };

    let mut names = std::collections::HashSet::new();
    for s in &streams {
        let n = s.name();
        // The tree decoder's own rule, so a stream can never make its root tree unreadable.
        if !lifeboat_format::is_valid_name(n.as_bytes()) || !names.insert(n.to_string()) {
            return Err(RepoError::Invalid(format!(
                "stream name {n:?} is empty, repeated, longer than 4096 bytes, or contains '/' or NUL"
            )));
        }
    }

    // Streams first: a failing dump then fails the run before a long file walk.
    let mut root_nodes = Vec::new();
    let mut stream_meta = Vec::new();
    for s in streams {
        let (node, meta) = a.save_stream(s)?;
        root_nodes.push(node);
        stream_meta.push(meta);
    }

    let parent_root = match &opts.parent {
        Some((_, p)) => repo.load_tree(&p.tree).ok(),
        None => None,
    };
    let mut pt = PathTree::default();
    for p in &opts.paths {
        pt.insert(p);
    }
    let file_nodes = if pt.target {
        // "/" itself was requested: the root tree is the listing of "/".
        let entry = source
            .stat(Path::new("/"))
            .map_err(|e| RepoError::Invalid(e.to_string()))?
            .ok_or_else(|| RepoError::Invalid("/ is excluded".into()))?;
        match a.dir_children(&entry, parent_root.as_ref()) {
            Ok(n) => n,
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Entry(e)) => return Err(RepoError::Invalid(e.to_string())),
        }
    } else {
        a.path_level(Path::new("/"), &pt, parent_root.as_ref())?
    };
    for n in file_nodes {
        if root_nodes.iter().any(|r: &Node| r.name == n.name) {
            return Err(RepoError::Invalid(format!(
                "stream name {:?} is also a top-level path of the backup; choose another name",
                n.display_name()
            )));
        }
        root_nodes.push(n);
    }
    let mut root = Tree { nodes: root_nodes };
    root.sort();
    let (root_id, _) = a.saver.save(BlobType::Tree, &root.encode())?;

    let Archiver {
        saver,
        skipped,
        summary,
        ..
    } = a;
    let used_packs = saver.used_packs();
    let saved = saver.finish(repo)?;
    if let Some(lease) = &lease {
        check_reused_packs(repo, lease, &marks_at_start.files, &used_packs)?;
    }
    let mut summary = summary.into_inner().unwrap_or_default();
    summary.blobs_added += saved.blobs;
    summary.bytes_added += saved.bytes_raw;
    summary.bytes_stored += saved.bytes_stored;
    let end = jiff::Timestamp::now();
    let (time, time_end) = match opts.time {
        Some(t) => (t, t.checked_add(end.duration_since(start)).unwrap_or(t)),
        None => (start, end),
    };
    let snapshot = Snapshot {
        version: lifeboat_format::SNAPSHOT_VERSION,
        time,
        time_end,
        hostname: opts.hostname.clone(),
        username: opts.username.clone(),
        paths: opts
            .paths
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect(),
        tags: opts.tags.clone(),
        tree: root_id,
        parent: opts.parent.as_ref().map(|(id, _)| *id),
        streams: stream_meta,
        skipped: {
            // Entries are met in parallel; list them in path order.
            let mut k = skipped.into_inner().unwrap_or_default();
            k.sort_by(|a, b| a.path.cmp(&b.path));
            k
        },
        summary,
        run_id: opts.run_id.clone(),
        copied_from: None,
        program_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    if progress.cancelled() {
        return Err(RepoError::Interrupted);
    }
    let id = if opts.dry_run {
        None
    } else {
        Some(repo.write_snapshot(&snapshot)?)
    };
    Ok(BackupResult { id, snapshot })
}

/// Before the snapshot commits: if a prune ran while this backup did (the marks changed) or
/// this backup's lease lapsed (the process was suspended), check that every pack it reused is
/// still there. Prune deletes only packs marked for longer than its grace period and not
/// protected by a live backup lease, so this fails only in a run that outlived both.
pub(crate) fn check_reused_packs(
    repo: &Repository,
    lease: &BackupLease,
    marks_files_at_start: &[String],
    used: &[Id],
) -> Result<()> {
    let mut now: Vec<String> = repo
        .storage()
        .list(FileKind::Marks)?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    now.sort();
    let mut before = marks_files_at_start.to_vec();
    before.sort();
    if now == before && !lease.lapsed() {
        return Ok(());
    }
    let present: std::collections::HashSet<String> = repo
        .storage()
        .list(FileKind::Pack)?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let missing: Vec<&Id> = used
        .iter()
        .filter(|p| !present.contains(&p.to_hex()))
        .collect();
    if let Some(first) = missing.first() {
        return Err(RepoError::ConcurrentPrune(format!(
            "a prune deleted {} pack(s) this backup reused while it ran (first: {})",
            missing.len(),
            first.short()
        )));
    }
    Ok(())
}

impl Archiver<'_> {
    fn note_skip(&self, path: &Path, error: String) {
        Progress::add(&self.progress.errors, 1);
        if let Ok(mut s) = self.skipped.lock() {
            s.push(SkippedEntry {
                path: path.to_string_lossy().into_owned(),
                error,
            });
        }
    }

    fn count(&self, f: impl FnOnce(&mut SnapshotSummary)) {
        if let Ok(mut s) = self.summary.lock() {
            f(&mut s);
        }
    }

    /// The nodes of one level of the requested-path tree: requested paths in full, and the
    /// directories above them with only the requested children.
    fn path_level(&self, dir: &Path, pt: &PathTree, parent: Option<&Tree>) -> Result<Vec<Node>> {
        let mut nodes = Vec::new();
        for (name, child) in &pt.children {
            let path = dir.join(OsStr::from_bytes(name));
            let parent_node = parent.and_then(|t| t.find(name));
            let entry = match self.source.stat(&path) {
                Ok(Some(e)) => e,
                Ok(None) => continue,
                Err(e) => {
                    self.note_skip(&path, e.to_string());
                    continue;
                }
            };
            if child.target {
                match self.entry_node(&entry, parent_node) {
                    Ok(Some(n)) => nodes.push(n),
                    Ok(None) => {}
                    Err(Failure::Entry(e)) => self.note_skip(&path, e.to_string()),
                    Err(Failure::Fatal(e)) => return Err(e),
                }
            } else {
                if entry.node.kind() != NodeKind::Dir {
                    self.note_skip(
                        &path,
                        "not a directory, but paths below it were requested".into(),
                    );
                    continue;
                }
                let sub_parent = self.parent_subtree(parent_node);
                let children = self.path_level(&path, child, sub_parent.as_ref())?;
                let mut node = entry.node;
                node.subtree = Some(self.save_tree(children)?);
                nodes.push(node);
            }
        }
        Ok(nodes)
    }

    fn parent_subtree(&self, parent: Option<&Node>) -> Option<Tree> {
        let id = parent.filter(|n| n.is_dir())?.subtree?;
        // An unreadable parent tree only costs speed: everything below is read again.
        self.repo.load_tree(&id).ok()
    }

    fn save_tree(&self, nodes: Vec<Node>) -> Result<Id> {
        let mut t = Tree { nodes };
        t.sort();
        Ok(self.saver.save(BlobType::Tree, &t.encode())?.0)
    }

    fn entry_node(
        &self,
        entry: &SourceEntry,
        parent: Option<&Node>,
    ) -> std::result::Result<Option<Node>, Failure> {
        if self.progress.cancelled() {
            return Err(Failure::Fatal(RepoError::Interrupted));
        }
        let mut node = entry.node.clone();
        match node.kind() {
            NodeKind::Dir => {
                let sub_parent = self.parent_subtree(parent);
                let children = self.dir_children(entry, sub_parent.as_ref())?;
                node.subtree = Some(self.save_tree(children)?);
                Progress::add(&self.progress.dirs, 1);
                self.count(|s| s.dirs += 1);
            }
            NodeKind::File => {
                self.progress.set_current(entry.path.to_string_lossy());
                if let Some(content) = self.unchanged_content(&node, parent) {
                    node.content = content;
                    Progress::add(&self.progress.bytes_skipped, node.size);
                    self.count(|s| {
                        s.files += 1;
                        s.files_unchanged += 1;
                        s.bytes_total += node.size;
                    });
                } else {
                    let (content, size) = self.save_file(entry, node.size)?;
                    node.content = content;
                    // A file that grew or shrank while read is stored as read.
                    node.size = size;
                    self.count(|s| {
                        s.files += 1;
                        s.bytes_total += size;
                    });
                }
                Progress::add(&self.progress.files, 1);
            }
            _ => self.count(|s| s.other += 1),
        }
        Ok(Some(node))
    }

    fn dir_children(
        &self,
        entry: &SourceEntry,
        parent: Option<&Tree>,
    ) -> std::result::Result<Vec<Node>, Failure> {
        use rayon::prelude::*;
        let children = self.source.read_dir(entry).map_err(Failure::Entry)?;
        // Children in parallel (rayon steals work across nested directories too); the
        // results keep their order, so the tree is the same as a sequential walk's.
        let results: Vec<std::result::Result<Option<Node>, Failure>> = children
            .into_par_iter()
            .map(|child| match child {
                Ok(c) => {
                    let pn = parent.and_then(|t| t.find(&c.node.name));
                    match self.entry_node(&c, pn) {
                        Err(Failure::Entry(e)) => {
                            self.note_skip(&c.path, e.to_string());
                            Ok(None)
                        }
                        r => r,
                    }
                }
                Err(e) => {
                    let p = e.path.clone();
                    self.note_skip(&p, e.to_string());
                    Ok(None)
                }
            })
            .collect();
        let mut nodes = Vec::with_capacity(results.len());
        for r in results {
            if let Some(n) = r? {
                nodes.push(n);
            }
        }
        Ok(nodes)
    }

    fn unchanged_content(&self, node: &Node, parent: Option<&Node>) -> Option<Vec<Content>> {
        let p = parent?;
        let same = p.kind() == NodeKind::File
            && p.size == node.size
            && p.mtime == node.mtime
            && p.ctime == node.ctime
            && p.inode == node.inode;
        if !same {
            return None;
        }
        let all_there = p.content.iter().all(|c| match c {
            Content::Chunk(id) => self.saver.has(id),
            Content::Hole(_) => true,
        });
        all_there.then(|| p.content.clone())
    }

    fn save_file(
        &self,
        entry: &SourceEntry,
        size: u64,
    ) -> std::result::Result<(Vec<Content>, u64), Failure> {
        let mut reader = self.source.open(entry).map_err(Failure::Entry)?;
        let regions = reader.data_regions().map_err(Failure::Entry)?;
        let mut content = Vec::new();
        let mut pos = 0u64;
        let mut buf = self
            .buffers
            .lock()
            .ok()
            .and_then(|mut b| b.pop())
            .unwrap_or_default();
        let mut shrank = false;
        for (off, len) in regions {
            if off > pos {
                content.push(Content::Hole(off - pos));
                pos = off;
            }
            let mut region = RegionReader {
                reader: &mut *reader,
                pos: off,
                end: off + len,
                error: None,
            };
            let mut chunker = StreamChunker::with_buffer(&mut region, self.chunking.clone(), buf);
            let mut read = 0u64;
            loop {
                if self.progress.cancelled() {
                    return Err(Failure::Fatal(RepoError::Interrupted));
                }
                match chunker.next_chunk() {
                    Ok(Some(chunk)) => {
                        read += chunk.len() as u64;
                        Progress::add(&self.progress.bytes, chunk.len() as u64);
                        let (id, _) = self.saver.save(BlobType::Data, chunk)?;
                        content.push(Content::Chunk(id));
                    }
                    Ok(None) => break,
                    Err(_) => break, // the region reader kept the real error
                }
            }
            let (region, b) = chunker.into_parts();
            buf = b;
            if let Some(e) = region.error.take() {
                return Err(Failure::Entry(e));
            }
            self.count(|s| s.bytes_read += read);
            pos += read;
            if read < len {
                shrank = true; // the file shrank while read: store what was there
                break;
            }
        }
        if let Ok(mut b) = self.buffers.lock() {
            b.push(buf);
        }
        // A file that ends in a hole: the hole runs to the size seen at stat.
        if !shrank && pos < size {
            content.push(Content::Hole(size - pos));
            pos = size;
        }
        Ok((content, pos))
    }

    fn save_stream(&self, mut s: Box<dyn StreamSource>) -> Result<(Node, SnapshotStream)> {
        let name = s.name().to_string();
        self.progress.set_current(format!("stream {name}"));
        let mut chunker = StreamChunker::new(s.reader(), self.chunking.clone());
        let mut content = Vec::new();
        let mut size = 0u64;
        let res: Result<()> = (|| {
            loop {
                if self.progress.cancelled() {
                    return Err(RepoError::Interrupted);
                }
                match chunker.next_chunk() {
                    Ok(Some(chunk)) => {
                        size += chunk.len() as u64;
                        Progress::add(&self.progress.bytes, chunk.len() as u64);
                        content.push(Content::Chunk(self.saver.save(BlobType::Data, chunk)?.0));
                    }
                    Ok(None) => return Ok(()),
                    Err(e) => {
                        return Err(RepoError::StreamFailed(format!(
                            "reading stream {name:?} failed: {e}"
                        )));
                    }
                }
            }
        })();
        drop(chunker);
        let command = s.command().map(str::to_string);
        let finished = s.finish(res.is_err());
        res?;
        finished.map_err(|why| {
            RepoError::StreamFailed(format!("stream {name:?}: {why}; no snapshot was written"))
        })?;
        if size == 0 {
            return Err(RepoError::StreamFailed(format!(
                "stream {name:?} produced no data; no snapshot was written"
            )));
        }
        self.count(|s| {
            s.files += 1;
            s.bytes_read += size;
            s.bytes_total += size;
        });
        let now = jiff::Timestamp::now();
        let ts = Timestamp {
            secs: now.as_second(),
            nanos: now.subsec_nanosecond().max(0) as u32,
        };
        let node = Node {
            name: name.as_bytes().to_vec(),
            kind: Some(NodeKind::File),
            mode: 0o600,
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
            mtime: ts,
            atime: ts,
            ctime: ts,
            size,
            nlink: 1,
            content,
            ..Node::default()
        };
        Ok((
            node,
            SnapshotStream {
                name,
                command,
                size,
            },
        ))
    }
}

/// Reads one data region of a file through `read_at`, keeping the first error aside so the
/// archiver can report it with the file's path.
struct RegionReader<'a> {
    reader: &'a mut dyn FileReader,
    pos: u64,
    end: u64,
    error: Option<SourceError>,
}

impl Read for RegionReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.end {
            return Ok(0);
        }
        let want = buf.len().min((self.end - self.pos) as usize);
        match self.reader.read_at(self.pos, &mut buf[..want]) {
            Ok(n) => {
                self.pos += n as u64;
                Ok(n)
            }
            Err(e) => {
                let msg = e.to_string();
                self.error = Some(e);
                Err(std::io::Error::other(msg))
            }
        }
    }
}
