//! Writes the contents of restored files in pack order.
//!
//! Reading file by file costs a request per blob (or per pack window) and reads a stretch of a
//! pack again for every file that shares it. Instead, the files are taken in large groups (the
//! whole snapshot unless it is huge); the blobs a group needs are sorted by pack and offset and
//! merged into stretches: one ranged read each, at most [`MAX_STRETCH`] bytes, gaps of up to
//! [`MAX_GAP`] read and dropped. Worker threads fetch stretches and write every blob to every
//! place that needs it. So each pack is read about once, front to back, whatever the files'
//! order.
//!
//! A file is created at its first write and finished (closed, verified, given its metadata) by
//! whichever worker writes its last blob. A file's blobs can be in packs read far apart, so at
//! most [`MAX_OPEN`] files (or `RestoreOptions::open_files`) are kept open: the longest-open one is closed, and opened again if
//! more of it comes.

use crate::error::RepoError;
use crate::index::BlobLocation;
use crate::progress::Progress;
use crate::repository::{PACK_HEADER_LEN, Repository, open_blob, pack_handle};
use crate::restorer::{RestoreOptions, handle_existing, verify_file};
use crate::source::{FileWriter, RestoreTarget, SourceError};
use lifeboat_format::{Content, Id, Node, NodeKind};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Longest single read. Each worker holds at most one stretch, so this times the number of
/// workers bounds the memory that reads take.
const MAX_STRETCH: u64 = 4 << 20;
/// Unneeded bytes between two needed blobs that are still read: cheaper than a second
/// request on any storage (about what a link moves in a round trip).
const MAX_GAP: u64 = 1 << 20;
/// Blob placements (and files) in one group. Their bookkeeping is about 200 bytes each, so a
/// group costs some tens of MiB at most; a snapshot of millions of small files is restored in
/// several groups.
const GROUP_PLACES: usize = 200_000;
/// Files kept open at once unless the options say otherwise.
const MAX_OPEN: usize = 256;

/// What became of one file: `Ok(true)` written, `Ok(false)` left as it was.
pub(crate) type FileResult = (PathBuf, std::result::Result<bool, String>);

enum WriterState {
    /// Not created yet.
    New,
    Open(Arc<dyn FileWriter>),
    /// Created, closed for now (too many open files); opened again on the next write.
    Closed,
}

/// A file being restored.
struct Slot<'a> {
    path: &'a Path,
    node: &'a Node,
    /// (offset, length) of each hole: written as zeros unless the restore is sparse.
    holes: Vec<(u64, u64)>,
    writer: Mutex<WriterState>,
    /// Blob placements not yet written (or given up on).
    remaining: AtomicUsize,
    error: Mutex<Option<String>>,
}

impl Slot<'_> {
    fn fail(&self, e: String) {
        let mut g = self.error.lock().unwrap_or_else(PoisonError::into_inner);
        if g.is_none() {
            *g = Some(e);
        }
    }
    fn failed(&self) -> bool {
        self.error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

/// One blob of a stretch and the places (file, offset) it goes to.
struct BlobUse<'a> {
    id: Id,
    loc: BlobLocation,
    places: Vec<(Arc<Slot<'a>>, u64)>,
}

enum Job<'a> {
    /// A ranged read of one pack and the blobs in it.
    Stretch {
        start: u64,
        end: u64,
        blobs: Vec<BlobUse<'a>>,
    },
    /// A file without stored data (empty, or only holes).
    Bare(Arc<Slot<'a>>),
}

struct Shared<'a> {
    repo: &'a Repository,
    target: &'a dyn RestoreTarget,
    opts: &'a RestoreOptions,
    progress: &'a Progress,
    results: Mutex<Vec<FileResult>>,
    /// Files with an open writer, longest open first (finished ones are skipped when met).
    open: Mutex<VecDeque<Arc<Slot<'a>>>>,
    open_count: AtomicUsize,
    max_open: usize,
}

/// Restores the contents (and then the metadata) of `files`; one result per file, in no
/// particular order. Stops early, without results for the rest, when the restore is
/// cancelled.
pub(crate) fn write_files(
    repo: &Repository,
    target: &dyn RestoreTarget,
    files: &[(PathBuf, Node)],
    opts: &RestoreOptions,
    progress: &Progress,
) -> Vec<FileResult> {
    let shared = Shared {
        repo,
        target,
        opts,
        progress,
        results: Mutex::new(Vec::with_capacity(files.len())),
        open: Mutex::new(VecDeque::new()),
        open_count: AtomicUsize::new(0),
        max_open: if opts.open_files == 0 {
            MAX_OPEN
        } else {
            opts.open_files
        },
    };
    let threads = opts.threads.max(1);
    let (tx, rx) = crossbeam_channel::bounded::<Job>(threads * 2);
    std::thread::scope(|s| {
        for _ in 0..threads {
            let rx = rx.clone();
            let shared = &shared;
            s.spawn(move || {
                for job in rx {
                    // After a cancel the queue is drained without work, so the producer is
                    // never stuck on a full queue.
                    if !shared.progress.cancelled() {
                        run(shared, job);
                    }
                }
            });
        }
        drop(rx);
        produce(&shared, files, &tx);
        drop(tx);
    });
    shared
        .results
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Walks the files in order, decides which are restored, and hands out their blobs group by
/// group.
fn produce<'a>(
    shared: &Shared<'a>,
    files: &'a [(PathBuf, Node)],
    tx: &crossbeam_channel::Sender<Job<'a>>,
) {
    let mut group = Group::default();
    for (path, node) in files {
        if shared.progress.cancelled() {
            return;
        }
        match plan_file(shared, path, node) {
            Ok(Some((slot, places))) => group.add(slot, places),
            Ok(None) => {}
            Err(e) => push_result(shared, path, Err(e)),
        }
        if group.places >= GROUP_PLACES && !group.flush(shared, tx) {
            return;
        }
    }
    group.flush(shared, tx);
}

/// A blob, where it is stored, and the offset in the file it goes to.
type Placement = (Id, BlobLocation, u64);
/// The same with the file.
type Use<'a> = (Id, BlobLocation, Arc<Slot<'a>>, u64);
/// A file to restore and its blobs.
type Planned<'a> = (Arc<Slot<'a>>, Vec<Placement>);

/// Checks what is in the way of one file and finds its blobs: `None` when the file is left
/// as it is.
fn plan_file<'a>(
    shared: &Shared<'a>,
    path: &'a Path,
    node: &'a Node,
) -> std::result::Result<Option<Planned<'a>>, String> {
    let go = handle_existing(
        shared.target,
        path,
        NodeKind::File,
        Some(node),
        shared.opts.overwrite,
    )
    .map_err(|e| e.to_string())?;
    if !go {
        Progress::add(&shared.progress.bytes_skipped, node.size);
        push_result(shared, path, Ok(false));
        return Ok(None);
    }
    let mut places = Vec::new();
    let mut holes = Vec::new();
    let mut offset = 0u64;
    for c in &node.content {
        match c {
            Content::Chunk(id) => {
                let loc = shared
                    .repo
                    .index()
                    .get(id)
                    .ok_or_else(|| RepoError::MissingBlob(id.to_hex()).to_string())?;
                let len = u64::from(loc.raw_len);
                places.push((*id, loc, offset));
                offset += len;
            }
            Content::Hole(n) => {
                holes.push((offset, *n));
                offset = offset.saturating_add(*n);
            }
        }
    }
    if offset != node.size {
        let msg = format!(
            "content adds up to {offset} bytes, the snapshot says {}",
            node.size
        );
        return Err(RepoError::corrupt(path.display().to_string(), msg).to_string());
    }
    let slot = Arc::new(Slot {
        path,
        node,
        holes,
        writer: Mutex::new(WriterState::New),
        remaining: AtomicUsize::new(places.len()),
        error: Mutex::new(None),
    });
    Ok(Some((slot, places)))
}

#[derive(Default)]
struct Group<'a> {
    /// Files without stored data.
    bare: Vec<Arc<Slot<'a>>>,
    places: usize,
    /// Per pack number (in order of first use): the blobs needed from it and where they go.
    packs: Vec<Vec<Use<'a>>>,
    pack_at: HashMap<u32, usize>,
}

impl<'a> Group<'a> {
    fn add(&mut self, slot: Arc<Slot<'a>>, places: Vec<Placement>) {
        self.places += places.len().max(1);
        if places.is_empty() {
            self.bare.push(slot);
            return;
        }
        for (id, loc, offset) in places {
            let i = *self.pack_at.entry(loc.pack_number).or_insert_with(|| {
                self.packs.push(Vec::new());
                self.packs.len() - 1
            });
            self.packs[i].push((id, loc, slot.clone(), offset));
        }
    }

    /// Hands the group's work to the workers; `false` when they are gone (cancelled).
    fn flush(&mut self, shared: &Shared<'a>, tx: &crossbeam_channel::Sender<Job<'a>>) -> bool {
        let group = std::mem::take(self);
        for slot in group.bare {
            if tx.send(Job::Bare(slot)).is_err() {
                return false;
            }
        }
        for mut uses in group.packs {
            uses.sort_by_key(|u| u.1.offset);
            let header_wanted = uses
                .first()
                .is_some_and(|u| shared.repo.cached_cipher(u.1.pack_number).is_none());
            let mut blobs: Vec<BlobUse<'a>> = Vec::new();
            let (mut start, mut end) = (0u64, 0u64);
            for (id, loc, slot, offset) in uses {
                let (off, len) = (u64::from(loc.offset), u64::from(loc.stored_len));
                if let Some(last) = blobs.last_mut() {
                    if last.loc.offset == loc.offset {
                        last.places.push((slot, offset));
                        continue;
                    }
                    if off > end + MAX_GAP || off + len - start > MAX_STRETCH {
                        let blobs = std::mem::take(&mut blobs);
                        if tx.send(Job::Stretch { start, end, blobs }).is_err() {
                            return false;
                        }
                    }
                }
                if blobs.is_empty() {
                    // A pack read from (near) its start brings its header along, which saves
                    // the separate read for its cipher.
                    let near = off <= MAX_GAP + PACK_HEADER_LEN as u64;
                    start = if header_wanted && near { 0 } else { off };
                }
                end = off + len;
                blobs.push(BlobUse {
                    id,
                    loc,
                    places: vec![(slot, offset)],
                });
            }
            if !blobs.is_empty() && tx.send(Job::Stretch { start, end, blobs }).is_err() {
                return false;
            }
        }
        true
    }
}

fn run<'a>(shared: &Shared<'a>, job: Job<'a>) {
    match job {
        Job::Bare(slot) => {
            // Creating it is all there is to do (a failure is recorded in the slot).
            let _ = writer(shared, &slot);
            finish(shared, &slot);
        }
        Job::Stretch { start, end, blobs } => {
            let Some(first) = blobs.first() else { return };
            let pack = pack_handle(&first.loc.pack);
            let read = shared
                .repo
                .storage()
                .get_range(&pack, start, end - start)
                .map_err(RepoError::from)
                .and_then(|data| {
                    if data.len() as u64 != end - start {
                        let msg = format!("short read: {} of {} bytes", data.len(), end - start);
                        return Err(RepoError::corrupt(pack.path(), msg));
                    }
                    Ok(data)
                });
            let Ok(mut data) = read else {
                // One blob at a time then, so that only what is really damaged or missing
                // fails (and its error names the blob).
                for b in blobs {
                    let r = shared
                        .repo
                        .read_blob(&b.id)
                        .map_err(|e| format!("blob {}: {e}", b.id.short()));
                    deliver(shared, b.places, r.as_deref());
                }
                return;
            };
            let cipher = if start == 0 && shared.repo.cached_cipher(first.loc.pack_number).is_none()
            {
                shared.repo.cipher_from_header(&first.loc, &data)
            } else {
                shared.repo.cipher_for(&first.loc)
            };
            for b in blobs {
                let r = cipher.as_ref().map_err(|e| e.to_string()).and_then(|c| {
                    let at = (u64::from(b.loc.offset) - start) as usize;
                    let buf = &mut data[at..at + b.loc.stored_len as usize];
                    open_blob(shared.repo.keys(), c, &b.id, &b.loc, buf).map_err(|d| {
                        let what = format!("blob {} in {}", b.id.short(), pack.path());
                        RepoError::corrupt(what, d).to_string()
                    })
                });
                deliver(shared, b.places, r.as_deref());
            }
        }
    }
}

/// Writes one blob's data (or its error) to every place that needs it.
fn deliver<'a>(
    shared: &Shared<'a>,
    places: Vec<(Arc<Slot<'a>>, u64)>,
    data: std::result::Result<&[u8], &String>,
) {
    for (slot, offset) in places {
        match data {
            Ok(d) if !slot.failed() && !shared.progress.cancelled() => {
                if let Some(w) = writer(shared, &slot) {
                    match w.write_at(offset, d) {
                        Ok(()) => Progress::add(&shared.progress.bytes, d.len() as u64),
                        Err(e) => slot.fail(e.to_string()),
                    }
                }
            }
            Ok(_) => {}
            Err(e) => slot.fail(e.clone()),
        }
        if slot.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            finish(shared, &slot);
        }
    }
}

/// The file's writer: created on first use (with the zeros of its holes written unless the
/// restore is sparse), opened again after it was closed; `None` once the file has failed.
fn writer<'a>(shared: &Shared<'a>, slot: &Arc<Slot<'a>>) -> Option<Arc<dyn FileWriter>> {
    let w = {
        let mut g = slot.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if let WriterState::Open(w) = &*g {
            return Some(w.clone());
        }
        if slot.failed() {
            return None;
        }
        let opened = match *g {
            WriterState::Closed => shared.target.reopen_file(slot.path, slot.node),
            _ => {
                shared.progress.set_current(slot.path.display().to_string());
                shared
                    .target
                    .create_file(slot.path, slot.node, shared.opts.sparse)
                    .and_then(|w| {
                        if !shared.opts.sparse {
                            write_holes(w.as_ref(), &slot.holes)?;
                        }
                        Ok(w)
                    })
            }
        };
        match opened {
            Ok(w) => {
                let w: Arc<dyn FileWriter> = Arc::from(w);
                *g = WriterState::Open(w.clone());
                w
            }
            Err(e) => {
                slot.fail(e.to_string());
                return None;
            }
        }
    };
    shared.open_count.fetch_add(1, Ordering::AcqRel);
    // Close the longest-open files beyond the limit. Their writers are taken out under their
    // own lock only, never while holding the queue's, so no two locks are ever nested.
    let mut victims = Vec::new();
    {
        let mut q = shared.open.lock().unwrap_or_else(PoisonError::into_inner);
        // Files finished (or closed) meanwhile leave the front of the queue here; a busy
        // writer is left alone (try_lock), it is open anyway.
        while let Some(f) = q.front() {
            let gone = f
                .writer
                .try_lock()
                .is_ok_and(|g| !matches!(*g, WriterState::Open(_)));
            if !gone {
                break;
            }
            q.pop_front();
        }
        q.push_back(slot.clone());
        let mut excess = shared
            .open_count
            .load(Ordering::Acquire)
            .saturating_sub(shared.max_open);
        while excess > 0 {
            let Some(v) = q.pop_front() else { break };
            if !Arc::ptr_eq(&v, slot) {
                victims.push(v);
                excess -= 1;
            }
        }
    }
    for v in victims {
        let mut g = v.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(*g, WriterState::Open(_)) {
            // Dropped, not finished: a thread still writing holds its own reference.
            *g = WriterState::Closed;
            shared.open_count.fetch_sub(1, Ordering::AcqRel);
        }
    }
    Some(w)
}

fn write_holes(w: &dyn FileWriter, holes: &[(u64, u64)]) -> std::result::Result<(), SourceError> {
    let zeros = vec![0u8; 1 << 20];
    for &(offset, n) in holes {
        let mut done = 0u64;
        while done < n {
            let k = (n - done).min(zeros.len() as u64) as usize;
            w.write_at(offset + done, &zeros[..k])?;
            done += k as u64;
        }
    }
    Ok(())
}

/// Closes a file whose last blob has been written, verifies it if asked, applies its
/// metadata and records the result.
fn finish(shared: &Shared<'_>, slot: &Slot<'_>) {
    let w = std::mem::replace(
        &mut *slot.writer.lock().unwrap_or_else(PoisonError::into_inner),
        WriterState::Closed,
    );
    let mut r: std::result::Result<bool, String> = match slot
        .error
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
    {
        Some(e) => Err(e),
        None => Ok(true),
    };
    match w {
        WriterState::Open(w) => {
            shared.open_count.fetch_sub(1, Ordering::AcqRel);
            if let Err(e) = w.finish() {
                r = r.and(Err(e.to_string()));
            }
        }
        // Closed earlier to keep few files open; nothing is left to flush.
        WriterState::Closed => {}
        WriterState::New => {
            // Never written: only possible after an error, which r holds.
            if r.is_ok() {
                r = Err("nothing was written".into());
            }
        }
    }
    if r.is_ok()
        && shared.opts.verify
        && let Err(e) = verify_file(shared.repo, shared.target, slot.path, slot.node)
    {
        r = Err(e.to_string());
    }
    if r.is_ok()
        && let Err(e) = shared.target.set_metadata(slot.path, slot.node)
    {
        r = Err(e.to_string());
    }
    push_result(shared, slot.path, r);
}

fn push_result(shared: &Shared<'_>, path: &Path, r: std::result::Result<bool, String>) {
    Progress::add(&shared.progress.files, 1);
    shared
        .results
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((path.to_path_buf(), r));
}
