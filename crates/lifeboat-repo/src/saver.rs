//! Storing blobs: deduplicate, compress (on worker threads), seal into packs, write packs,
//! and at the end write one index segment for everything this saver stored.
//!
//! The caller hashes (BLAKE3 runs at several GB/s, so the reading thread can afford it and
//! learns ids at once); compression, the expensive part, runs on one worker per core; one
//! packer thread seals blobs into the open pack of their type and writes full packs.

use crate::error::{RepoError, Result};
use crate::index::Index;
use crate::repository::{PACK_HEADER_LEN, Repository, pack_handle};
use crossbeam_channel::{Receiver, Sender, bounded};
use lifeboat_crypto::{FileCipher, Keys, SALT_LEN, TRAILER_COUNTER};
use lifeboat_format::{
    BlobEntry, BlobType, Compression, Id, IndexPack, IndexSegment, encode_blob_entries, magic,
};
use lifeboat_storage::Storage;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

struct Job {
    blob_type: BlobType,
    id: Id,
    data: Vec<u8>,
}

/// A blob ready to be sealed into a pack: its payload is already compressed (or not).
pub(crate) struct Packed {
    pub blob_type: BlobType,
    pub id: Id,
    pub compression: Compression,
    pub raw_len: u32,
    pub payload: Vec<u8>,
}

struct Shared {
    /// Whether the packer also lists every blob id it stored (`Saved::ids`; copy needs it).
    collect_ids: AtomicBool,
    error: Mutex<Option<RepoError>>,
    failed: AtomicBool,
}

impl Shared {
    fn fail(&self, e: RepoError) {
        if let Ok(mut slot) = self.error.lock()
            && slot.is_none()
        {
            *slot = Some(e);
        }
        self.failed.store(true, Ordering::SeqCst);
    }
}

pub struct BlobSaver {
    keys: Arc<Keys>,
    index: Arc<Index>,
    /// Ids stored (or being stored) by this saver, so a blob seen twice is sent once.
    pending: Mutex<HashSet<Id>>,
    /// Ids the saver must store again even if the index has them (blobs found bad).
    distrust: HashSet<Id>,
    /// Per pack number: marked by prune, as read after this backup's lease was taken. Blobs
    /// only found there are stored again, since prune may delete those packs.
    marked: Vec<bool>,
    /// Per pack number: this saver reused a blob from it (checked before the snapshot is
    /// written if a prune ran meanwhile).
    used: Vec<AtomicBool>,
    jobs: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    packer: Option<JoinHandle<Saved>>,
    shared: Arc<Shared>,
}

impl BlobSaver {
    /// Starts the worker and packer threads. With `dry_run`, nothing is written but the
    /// counters still say what would have been.
    pub fn new(repo: &Repository, compression: i32, dry_run: bool) -> Self {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let (job_tx, job_rx) = bounded::<Job>(threads * 2);
        let (pack_tx, pack_rx) = bounded::<Packed>(threads * 2);
        let shared = Arc::new(Shared {
            collect_ids: AtomicBool::new(false),
            error: Mutex::new(None),
            failed: AtomicBool::new(false),
        });
        let workers = (0..threads)
            .map(|_| {
                let (rx, tx) = (job_rx.clone(), pack_tx.clone());
                std::thread::spawn(move || compress_worker(rx, tx, compression))
            })
            .collect();
        drop(pack_tx);
        let packer = {
            let keys = repo.keys().clone();
            let storage = repo.storage().clone();
            let shared = shared.clone();
            let pack_size = repo.config().pack_size as usize;
            std::thread::spawn(move || packer(pack_rx, keys, storage, shared, pack_size, dry_run))
        };
        BlobSaver {
            keys: repo.keys().clone(),
            index: repo.index().clone(),
            pending: Mutex::new(HashSet::new()),
            distrust: HashSet::new(),
            marked: Vec::new(),
            used: (0..repo.index().packs().len())
                .map(|_| AtomicBool::new(false))
                .collect(),
            jobs: Some(job_tx),
            workers,
            packer: Some(packer),
            shared,
        }
    }

    /// Blobs to store again even though the index lists them (found damaged by `check`).
    pub fn distrust(&mut self, ids: impl IntoIterator<Item = Id>) {
        self.distrust.extend(ids);
    }

    /// Makes [`BlobSaver::finish`] list the ids of the blobs stored (costs 32 bytes each).
    pub fn collect_ids(&mut self) {
        self.shared.collect_ids.store(true, Ordering::Relaxed);
    }

    /// Packs (by index number) whose blobs must not be reused: those prune has marked.
    pub fn set_marked(&mut self, marked: Vec<bool>) {
        self.marked = marked;
    }

    /// Whether the index holds this blob in a pack this backup may reuse; records the use.
    fn reusable(&self, id: &Id) -> bool {
        if self.distrust.contains(id) {
            return false;
        }
        let Some(loc) = self.index.get(id) else {
            return false;
        };
        let n = loc.pack_number as usize;
        if self.marked.get(n).copied().unwrap_or(false) {
            return false;
        }
        if let Some(u) = self.used.get(n) {
            u.store(true, Ordering::Relaxed);
        }
        true
    }

    /// The packs this saver reused blobs from.
    pub fn used_packs(&self) -> Vec<Id> {
        let packs = self.index.packs();
        self.used
            .iter()
            .enumerate()
            .filter(|(_, u)| u.load(Ordering::Relaxed))
            .filter_map(|(i, _)| packs.get(i).map(|(id, _)| *id))
            .collect()
    }

    fn check_failed(&self) -> Result<()> {
        if self.shared.failed.load(Ordering::SeqCst) {
            return Err(self.take_error());
        }
        Ok(())
    }

    fn take_error(&self) -> RepoError {
        self.shared
            .error
            .lock()
            .ok()
            .and_then(|mut e| e.take())
            .unwrap_or_else(|| RepoError::Invalid("the blob saver failed earlier".into()))
    }

    /// Whether a blob with this id is already stored or on its way.
    pub fn has(&self, id: &Id) -> bool {
        self.reusable(id) || self.pending.lock().map(|p| p.contains(id)).unwrap_or(false)
    }

    /// Stores a blob unless it is already there; returns its id and whether it was new.
    pub fn save(&self, blob_type: BlobType, data: &[u8]) -> Result<(Id, bool)> {
        self.check_failed()?;
        // Readers reject larger blobs (and with them the whole index segment), so refuse to
        // write one: only a directory of about half a million entries gets a tree this big.
        if data.len() > lifeboat_format::MAX_BLOB_LEN as usize {
            return Err(RepoError::Invalid(format!(
                "a {:?} blob of {} bytes exceeds the {} byte limit (a directory with too many entries?)",
                blob_type,
                data.len(),
                lifeboat_format::MAX_BLOB_LEN
            )));
        }
        let id = self.keys.blob_id(data);
        if self.reusable(&id) {
            return Ok((id, false));
        }
        let new = self
            .pending
            .lock()
            .map(|mut p| p.insert(id))
            .unwrap_or(true);
        if !new {
            return Ok((id, false));
        }
        let job = Job {
            blob_type,
            id,
            data: data.to_vec(),
        };
        let sent = self
            .jobs
            .as_ref()
            .map(|j| j.send(job).is_ok())
            .unwrap_or(false);
        if !sent {
            return Err(self.take_error());
        }
        Ok((id, true))
    }

    /// Waits for every blob to be in a written pack and every pack in a written index
    /// segment (segments are written as packs fill, every 100 000 blobs, and at the end).
    /// Returns what was stored. On error nothing references the packs already written;
    /// they stay as unreferenced data for `prune`.
    pub fn finish(mut self, _repo: &Repository) -> Result<Saved> {
        self.jobs.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        let saved = self
            .packer
            .take()
            .map(|p| p.join().unwrap_or_default())
            .unwrap_or_default();
        self.check_failed()?;
        Ok(saved)
    }
}

impl Drop for BlobSaver {
    fn drop(&mut self) {
        // An abandoned saver (an error elsewhere) still stops its threads.
        self.jobs.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        if let Some(p) = self.packer.take() {
            let _ = p.join();
        }
    }
}

fn compress_worker(rx: Receiver<Job>, tx: Sender<Packed>, level: i32) {
    let mut compressor = if level > 0 {
        zstd::bulk::Compressor::new(level).ok()
    } else {
        None
    };
    for job in rx {
        let raw_len = job.data.len() as u32;
        let mut out = None;
        if let Some(c) = compressor.as_mut() {
            // Only keep the compressed form if it is smaller; the bound leaves room to fail fast.
            let mut buf = Vec::with_capacity(job.data.len());
            if let Ok(n) = c.compress_to_buffer(&job.data, &mut buf)
                && n < job.data.len()
            {
                out = Some(buf);
            }
        }
        let packed = match out {
            Some(payload) => Packed {
                blob_type: job.blob_type,
                id: job.id,
                compression: Compression::Zstd,
                raw_len,
                payload,
            },
            None => Packed {
                blob_type: job.blob_type,
                id: job.id,
                compression: Compression::None,
                raw_len,
                payload: job.data,
            },
        };
        if tx.send(packed).is_err() {
            return;
        }
    }
}

/// A pack being filled.
pub(crate) struct OpenPack {
    pub buf: Vec<u8>,
    cipher: FileCipher,
    entries: Vec<BlobEntry>,
}

impl OpenPack {
    pub fn new(keys: &Keys, capacity: usize) -> Result<Self> {
        // The salt carries the current data-key generation (after a rotation).
        let salt = keys
            .new_salt()
            .map_err(|e| RepoError::Crypto(e.to_string()))?;
        let cipher = keys
            .file_cipher(&salt)
            .map_err(|e| RepoError::Crypto(e.to_string()))?;
        let mut buf = Vec::with_capacity(capacity + (1 << 20));
        buf.extend_from_slice(magic::PACK);
        buf.extend_from_slice(&salt);
        Ok(OpenPack {
            buf,
            cipher,
            entries: Vec::new(),
        })
    }

    pub fn add(&mut self, p: Packed) -> Result<()> {
        let offset = u32::try_from(self.buf.len())
            .map_err(|_| RepoError::Invalid("pack exceeds 4 GiB".into()))?;
        let mut payload = p.payload;
        // The blob's offset is its nonce counter: unique within the pack, known to readers
        // from the index without any extra field.
        self.cipher
            .seal(offset as u64, b"", &mut payload)
            .map_err(|e| RepoError::Crypto(e.to_string()))?;
        let stored_len = payload.len() as u32;
        self.buf.extend_from_slice(&payload);
        self.entries.push(BlobEntry {
            id: p.id,
            blob_type: p.blob_type,
            compression: p.compression,
            offset,
            stored_len,
            raw_len: p.raw_len,
        });
        Ok(())
    }

    /// Appends the sealed trailer and its length; returns the pack's bytes and entries.
    pub fn seal(mut self) -> Result<(Vec<u8>, Vec<BlobEntry>)> {
        let mut trailer = encode_blob_entries(&self.entries);
        self.cipher
            .seal(TRAILER_COUNTER, magic::PACK, &mut trailer)
            .map_err(|e| RepoError::Crypto(e.to_string()))?;
        self.buf.extend_from_slice(&trailer);
        self.buf
            .extend_from_slice(&(trailer.len() as u32).to_le_bytes());
        Ok((self.buf, self.entries))
    }
}

/// Blobs per index segment a backup writes: segments are written as the backup goes, so
/// its memory does not grow with a list of every new blob, and a backup killed late keeps
/// most of its stored data reusable.
const SEGMENT_BLOBS: usize = 100_000;

/// Puts packs to storage from a few threads when the storage serves several requests at
/// once (the remote backends): the packer fills the next pack while earlier ones upload, so
/// a backup over a network is not one round trip per pack. With one connection (local disk)
/// it puts in the packer's own thread, as before.
struct Uploader {
    storage: Arc<dyn Storage>,
    shared: Arc<Shared>,
    tx: Option<Sender<(lifeboat_storage::Handle, Vec<u8>)>>,
    threads: Vec<JoinHandle<()>>,
    /// Packs handed over and not yet stored.
    inflight: Arc<(Mutex<usize>, std::sync::Condvar)>,
}

impl Uploader {
    fn new(storage: Arc<dyn Storage>, shared: Arc<Shared>, dry_run: bool) -> Self {
        let n = if dry_run { 1 } else { storage.parallelism() };
        let inflight = Arc::new((Mutex::new(0usize), std::sync::Condvar::new()));
        if n <= 1 {
            return Uploader {
                storage,
                shared,
                tx: None,
                threads: Vec::new(),
                inflight,
            };
        }
        // At most n packs wait while n upload: memory stays at 2n packs in flight.
        let (tx, rx) = bounded::<(lifeboat_storage::Handle, Vec<u8>)>(n);
        let threads = (0..n)
            .map(|_| {
                let (rx, storage, shared, inflight) = (
                    rx.clone(),
                    storage.clone(),
                    shared.clone(),
                    inflight.clone(),
                );
                std::thread::spawn(move || {
                    for (h, bytes) in rx {
                        if !shared.failed.load(Ordering::SeqCst)
                            && let Err(e) = storage.put(&h, &bytes)
                        {
                            shared.fail(e.into());
                        }
                        drop(bytes);
                        let (m, cv) = &*inflight;
                        let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
                        *g -= 1;
                        cv.notify_all();
                    }
                })
            })
            .collect();
        Uploader {
            storage,
            shared,
            tx: Some(tx),
            threads,
            inflight,
        }
    }

    fn put(&self, h: lifeboat_storage::Handle, bytes: Vec<u8>) -> Result<()> {
        let Some(tx) = &self.tx else {
            return Ok(self.storage.put(&h, &bytes)?);
        };
        {
            let mut g = self.inflight.0.lock().unwrap_or_else(|e| e.into_inner());
            *g += 1;
        }
        if tx.send((h, bytes)).is_err() {
            return Err(RepoError::Interrupted);
        }
        Ok(())
    }

    /// Waits until every pack handed over is stored (or failed): an index segment may only
    /// name packs that are in storage.
    fn wait(&self) -> Result<()> {
        let (m, cv) = &*self.inflight;
        let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
        while *g > 0 {
            g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        if self.shared.failed.load(Ordering::SeqCst) {
            return Err(RepoError::Interrupted);
        }
        Ok(())
    }
}

impl Drop for Uploader {
    fn drop(&mut self) {
        self.tx = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// What a saver stored.
#[derive(Debug, Default, Clone)]
pub struct Saved {
    pub packs: Vec<Id>,
    pub blobs: u64,
    /// Plaintext bytes of the new blobs.
    pub bytes_raw: u64,
    /// Bytes they take in packs.
    pub bytes_stored: u64,
    /// The ids of the blobs stored, when asked for ([`BlobSaver::collect_ids`]).
    pub ids: Vec<Id>,
}

fn packer(
    rx: Receiver<Packed>,
    keys: Arc<Keys>,
    storage: Arc<dyn Storage>,
    shared: Arc<Shared>,
    pack_size: usize,
    dry_run: bool,
) -> Saved {
    let mut open: [Option<OpenPack>; 2] = [None, None];
    let mut saved = Saved::default();
    let uploader = Uploader::new(storage.clone(), shared.clone(), dry_run);
    // Packs written but not yet in a segment.
    let mut segment: Vec<IndexPack> = Vec::new();
    let write_segment = |segment: &mut Vec<IndexPack>| -> Result<()> {
        if segment.is_empty() || dry_run {
            segment.clear();
            return Ok(());
        }
        uploader.wait()?;
        let seg = IndexSegment {
            packs: std::mem::take(segment),
        };
        crate::repository::write_sealed_to(
            &*storage,
            &keys,
            lifeboat_storage::FileKind::Index,
            magic::INDEX,
            &seg.encode(),
        )?;
        Ok(())
    };
    let flush = |p: OpenPack, saved: &mut Saved, segment: &mut Vec<IndexPack>| -> Result<()> {
        let (bytes, blobs) = p.seal()?;
        let id = lifeboat_crypto::storage_id(&bytes);
        let pack_len = bytes.len() as u64;
        if !dry_run {
            uploader.put(pack_handle(&id), bytes)?;
        }
        saved.packs.push(id);
        if shared.collect_ids.load(Ordering::Relaxed) {
            saved.ids.extend(blobs.iter().map(|b| b.id));
        }
        for b in &blobs {
            saved.blobs += 1;
            saved.bytes_raw += b.raw_len as u64;
            saved.bytes_stored += b.stored_len as u64;
        }
        segment.push(IndexPack {
            pack: id,
            pack_len,
            blobs,
        });
        if segment.iter().map(|p| p.blobs.len()).sum::<usize>() >= SEGMENT_BLOBS {
            write_segment(segment)?;
        }
        Ok(())
    };
    for p in rx {
        if shared.failed.load(Ordering::SeqCst) {
            continue; // drain, so the workers and the caller never block on a dead packer
        }
        let slot = p.blob_type as usize;
        let res = (|| {
            if open[slot].is_none() {
                open[slot] = Some(OpenPack::new(&keys, pack_size)?);
            }
            let Some(pack) = open[slot].as_mut() else {
                return Ok(());
            };
            pack.add(p)?;
            if pack.buf.len() >= pack_size
                && let Some(full) = open[slot].take()
            {
                flush(full, &mut saved, &mut segment)?;
            }
            Ok(())
        })();
        if let Err(e) = res {
            shared.fail(e);
        }
    }
    if !shared.failed.load(Ordering::SeqCst) {
        for slot in open.iter_mut() {
            if let Some(p) = slot.take()
                && let Err(e) = flush(p, &mut saved, &mut segment)
            {
                shared.fail(e);
                break;
            }
        }
        // The rest of the packs; a failed backup leaves its last packs unindexed (prune
        // removes them after its grace period).
        if !shared.failed.load(Ordering::SeqCst)
            && let Err(e) = write_segment(&mut segment)
        {
            shared.fail(e);
        }
    }
    saved
}

/// Reads a whole pack's trailer: the blobs it holds, authenticated. Used by `check` and to
/// rebuild the index from packs alone.
pub fn parse_pack(
    keys: &Keys,
    pack: &[u8],
) -> std::result::Result<(FileCipher, Vec<BlobEntry>), String> {
    if pack.len() < PACK_HEADER_LEN + 16 + 4 {
        return Err(format!("{} bytes is too short for a pack", pack.len()));
    }
    lifeboat_format::strip_magic(pack, magic::PACK).map_err(|e| e.to_string())?;
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(&pack[8..PACK_HEADER_LEN]);
    let cipher = keys.file_cipher(&salt).map_err(|e| e.to_string())?;
    let n = pack.len();
    let tlen = u32::from_le_bytes([pack[n - 4], pack[n - 3], pack[n - 2], pack[n - 1]]) as usize;
    if tlen < 16 || tlen + 4 + PACK_HEADER_LEN > n {
        return Err(format!("trailer length {tlen} does not fit the pack"));
    }
    let tstart = n - 4 - tlen;
    let mut trailer = pack[tstart..n - 4].to_vec();
    let plain = cipher
        .open(TRAILER_COUNTER, magic::PACK, &mut trailer, "pack trailer")
        .map_err(|e| e.to_string())?;
    let entries =
        lifeboat_format::decode_blob_entries(plain, PACK_HEADER_LEN as u64, tstart as u64)
            .map_err(|e| e.to_string())?;
    Ok((cipher, entries))
}
