//! Opening and creating a repository, and reading what is in it.

use crate::error::{RepoError, Result};
use crate::index::{BlobLocation, Index};
use lifeboat_crypto::{FileCipher, Keys, MasterKey, SALT_LEN};
use lifeboat_format::{
    Compression, Id, IndexSegment, KdfParams, KeyFile, RepoConfig, Snapshot, Tree, magic,
};
use lifeboat_storage::{FileKind, Handle, Storage, StorageError};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Settings fixed when a repository is created.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub chunk_avg: u32,
    pub compression: i32,
    pub pack_size: u32,
    pub kdf: KdfParams,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            chunk_avg: 1 << 20,
            compression: 3,
            pack_size: 16 << 20,
            kdf: KdfParams::DEFAULT,
        }
    }
}

/// Length of a pack's header: magic and salt.
pub const PACK_HEADER_LEN: usize = 8 + SALT_LEN;

pub struct Repository {
    storage: Arc<dyn Storage>,
    /// Kept (zeroized on drop) so that `key add`/`key passwd` can wrap it under another
    /// password; everything else works with the derived `keys`.
    pub(crate) master: MasterKey,
    /// Name of the key file (under `keys/`) that opened this session, or that `init` wrote:
    /// `key remove` refuses it and `key passwd` replaces it.
    pub(crate) key_name: String,
    pub(crate) keys: Arc<Keys>,
    config: RepoConfig,
    index: Arc<Index>,
    /// Each pack's cipher, derived from the salt in its header: one small read per pack
    /// instead of one per blob.
    ciphers: Mutex<HashMap<u32, Arc<FileCipher>>>,
    cache: Option<PathBuf>,
    /// Recently read stretches of packs, for storage where each read is a network request:
    /// blobs read one at a time (the trees of a walk, `dump`, `diff`) are mostly neighbours
    /// in their packs, and one 8 MiB read then serves dozens of them. (A restore's file
    /// contents go their own way, see `pack_order`.)
    windows: (
        Mutex<std::collections::VecDeque<ReadWindow>>,
        std::sync::Condvar,
    ),
}

struct ReadWindow {
    /// By id, not number: pack numbers change when the index is loaded again.
    pack: Id,
    start: u64,
    /// None while one thread fetches it (the others wait on the condition variable).
    data: Option<Arc<Vec<u8>>>,
}

/// How much of a pack one read fetches on remote storage, and how many such stretches are
/// kept (the memory this costs: at most their product).
const WINDOW_BYTES: u64 = 8 << 20;
const WINDOWS_KEPT: usize = 16;

/// A stored file that could not be read: its path in the repository and why.
pub type Damaged = (String, String);

/// A snapshot and its id.
pub type SnapshotEntry = (Id, Snapshot);

/// Problems met while loading the index; the index holds everything that could be read.
#[derive(Debug, Default)]
pub struct IndexReport {
    pub segments: usize,
    /// Names of the segments read (prune replaces exactly these when it compacts).
    pub files: Vec<String>,
    /// The marks file applied (packs waiting for deletion), if any.
    pub marks_file: Option<String>,
    pub damaged: Vec<Damaged>,
}

impl Repository {
    /// Creates a repository: storage layout, a key file for `password`, then the config
    /// (last, because its presence is what makes a folder a repository).
    pub fn init(storage: Arc<dyn Storage>, password: &[u8], opts: &InitOptions) -> Result<Self> {
        match storage.get(&Handle::config()) {
            Ok(_) => return Err(RepoError::AlreadyExists(storage.location())),
            Err(StorageError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let params = lifeboat_chunker::ChunkerParams::with_average(opts.chunk_avg as usize)
            .ok_or_else(|| {
                RepoError::Invalid(format!(
                    "chunk size {} is not a power of two between 1 KiB and 4 MiB",
                    opts.chunk_avg
                ))
            })?;
        if !(0..=22).contains(&opts.compression) {
            return Err(RepoError::Invalid(format!(
                "compression level {} is not between 0 and 22",
                opts.compression
            )));
        }
        let master = MasterKey::generate().map_err(|e| RepoError::Crypto(e.to_string()))?;
        let mut id = [0u8; 32];
        lifeboat_crypto::random_bytes(&mut id).map_err(|e| RepoError::Crypto(e.to_string()))?;
        let config = RepoConfig {
            version: lifeboat_format::REPO_VERSION,
            id: Id(id),
            chunk_min: params.min as u32,
            chunk_avg: params.avg as u32,
            chunk_max: params.max as u32,
            compression: opts.compression,
            pack_size: opts.pack_size,
        };
        // Write nothing a reader of this version would refuse (Argon2 parameters or pack sizes
        // outside the decoders' limits), and check before anything is written.
        let probe = KeyFile {
            kdf: opts.kdf,
            salt: [0; 32],
            nonce: [0; 12],
            wrapped: vec![0; lifeboat_format::KEYFILE_WRAPPED_LEN],
        };
        KeyFile::decode(&probe.encode())
            .map_err(|e| RepoError::Invalid(format!("refusing to write this key file: {e}")))?;
        RepoConfig::decode(&config.encode()).map_err(|e| {
            RepoError::Invalid(format!("refusing to write this configuration: {e}"))
        })?;
        storage.create().map_err(|e| match e {
            StorageError::AlreadyExists(_) => RepoError::AlreadyExists(storage.location()),
            e => e.into(),
        })?;
        let kf = master
            .wrap(password, opts.kdf)
            .map_err(|e| RepoError::Crypto(e.to_string()))?;
        let kf_bytes = kf.encode();
        let key_name = lifeboat_crypto::storage_id(&kf_bytes).to_hex();
        storage.put(&Handle::new(FileKind::Key, key_name.clone()), &kf_bytes)?;
        let sealed = master
            .keys()
            .seal_file(&config_header(&config.id), &config.encode())
            .map_err(|e| RepoError::Crypto(e.to_string()))?;
        storage
            .create_new(&Handle::config(), &sealed)
            .map_err(|e| match e {
                StorageError::AlreadyExists(_) => RepoError::AlreadyExists(storage.location()),
                e => e.into(),
            })?;
        Ok(Repository::from_parts(storage, master, key_name, config))
    }

    fn from_parts(
        storage: Arc<dyn Storage>,
        master: MasterKey,
        key_name: String,
        config: RepoConfig,
    ) -> Self {
        Repository {
            storage,
            keys: Arc::new(master.keys()),
            master,
            key_name,
            config,
            index: Arc::new(Index::default()),
            ciphers: Mutex::new(HashMap::new()),
            cache: None,
            windows: (
                Mutex::new(std::collections::VecDeque::new()),
                std::sync::Condvar::new(),
            ),
        }
    }

    /// Opens a repository with a password: tries every key file, then reads the config.
    /// Does not load the index ([`Repository::load_index`]).
    pub fn open(storage: Arc<dyn Storage>, password: &[u8]) -> Result<Self> {
        let cfg = match storage.get(&Handle::config()) {
            Ok(c) => c,
            Err(StorageError::NotFound(_)) => {
                return Err(RepoError::NotARepository(storage.location()));
            }
            Err(e) => return Err(e.into()),
        };
        let rest = lifeboat_format::strip_magic(&cfg, magic::CONFIG)
            .map_err(|_| RepoError::NotARepository(storage.location()))?;
        let repo_id = Id(rest
            .get(..32)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| RepoError::corrupt("config", "too short"))?);
        let keyfiles = storage.list(FileKind::Key)?;
        if keyfiles.is_empty() {
            return Err(RepoError::corrupt(
                "keys/",
                "the repository has no key files",
            ));
        }
        // A key file that opens with this password is not necessarily this repository's: two
        // `init`s racing on one location with the same password leave the loser's key file,
        // wrapping a master key that never sealed the config. So a key whose master key does
        // not open the config only moves on to the next key file, and the config is reported
        // damaged only when no key file leads to it.
        let mut config_failure = None;
        for (name, _) in &keyfiles {
            let bytes = match storage.get(&Handle::new(FileKind::Key, name.clone())) {
                Ok(b) => b,
                // Removed (`key remove`) between listing and reading.
                Err(StorageError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            let Ok(kf) = KeyFile::decode(&bytes) else {
                continue;
            };
            let Ok(master) = MasterKey::unwrap(password, &kf) else {
                continue;
            };
            let plain = match master
                .keys()
                .open_file(&config_header(&repo_id), &cfg, "config")
            {
                Ok(p) => p,
                Err(e) => {
                    config_failure.get_or_insert(RepoError::from_crypto("config", e));
                    continue;
                }
            };
            // From here the config has authenticated under this key: another key file (same
            // master key, or a different one that cannot authenticate it) would not help.
            let config =
                RepoConfig::decode(&plain).map_err(|e| RepoError::from_format("config", e))?;
            if config.id != repo_id {
                return Err(RepoError::corrupt(
                    "config",
                    "repository id in clear and sealed differ",
                ));
            }
            return Ok(Repository::from_parts(
                storage,
                master,
                name.clone(),
                config,
            ));
        }
        Err(config_failure.unwrap_or_else(|| RepoError::WrongPassword(storage.location())))
    }

    /// Keeps copies of index segments and snapshots under `dir`: opening a remote repository
    /// then reads only what is new. Every cached file is checked against its name (the hash
    /// of its bytes) before use, so a damaged cache is re-fetched, never trusted.
    pub fn set_cache(&mut self, dir: Option<PathBuf>) {
        self.cache = dir.map(|d| d.join(self.config.id.to_hex()));
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }
    pub fn keys(&self) -> &Arc<Keys> {
        &self.keys
    }
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }
    pub fn index(&self) -> &Arc<Index> {
        &self.index
    }

    /// Reads an index segment or snapshot file, through the cache when there is one.
    pub(crate) fn get_file(&self, h: &Handle) -> Result<Vec<u8>> {
        let cached = self.cache.as_ref().map(|c| c.join(h.path()));
        if let Some(p) = &cached
            && let Ok(b) = std::fs::read(p)
            && lifeboat_crypto::storage_id(&b).to_hex() == h.name
        {
            return Ok(b);
        }
        let b = self.storage.get(h)?;
        if let Some(p) = &cached {
            // A cache that cannot be written only costs speed.
            if let Some(parent) = p.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let _ = std::fs::write(p, &b);
        }
        Ok(b)
    }

    /// Loads every index segment. A damaged segment is reported and left out (its packs
    /// can be re-indexed from their trailers by `repair index`); the rest still loads.
    pub fn load_index(&mut self) -> Result<IndexReport> {
        let mut report = IndexReport::default();
        let marks = self.read_marks()?;
        report.damaged.extend(marks.damaged.iter().cloned());
        report.marks_file = marks.name();
        let mut builder = crate::index::IndexBuilder::new(marks.marks(), marks.name());
        // Damaged copies that check recorded: readers then prefer an undamaged one.
        if let Ok(h) = self.read_health() {
            builder.set_bad(h.health.bad.iter().map(|b| (b.blob, b.pack)).collect());
        }
        for (name, _) in self.storage.list(FileKind::Index)? {
            let h = Handle::new(FileKind::Index, name.clone());
            match self.read_index_segment(&h) {
                Ok(seg) => {
                    report.segments += 1;
                    report.files.push(name.clone());
                    builder.add_segment(seg.packs);
                }
                Err(e @ RepoError::Corrupt { .. }) => {
                    report.damaged.push((h.path(), e.to_string()))
                }
                Err(RepoError::Storage(StorageError::NotFound(_))) => {} // removed meanwhile
                Err(e) => return Err(e),
            }
        }
        self.index = Arc::new(builder.finish());
        self.ciphers.lock().map(|mut c| c.clear()).ok();
        Ok(report)
    }

    pub fn read_index_segment(&self, h: &Handle) -> Result<IndexSegment> {
        let plain = self.read_sealed(h, magic::INDEX, "index", 1 << 30)?;
        IndexSegment::decode(&plain).map_err(|e| RepoError::from_format(h.path(), e))
    }

    /// Reads a sealed file (index segment or snapshot): checks its name, opens it, and
    /// decompresses at most `max` bytes.
    pub(crate) fn read_sealed(
        &self,
        h: &Handle,
        magic: &[u8; 8],
        what: &'static str,
        max: usize,
    ) -> Result<Vec<u8>> {
        let stored = self.get_file(h)?;
        if lifeboat_crypto::storage_id(&stored).to_hex() != h.name {
            return Err(RepoError::corrupt(
                h.path(),
                "contents do not match the file name",
            ));
        }
        let plain = self
            .keys
            .open_file(magic, &stored, what)
            .map_err(|e| RepoError::from_crypto(h.path(), e))?;
        decompress(&plain, max).map_err(|e| RepoError::corrupt(h.path(), e))
    }

    /// Compresses, seals and stores a small file; returns its name.
    pub(crate) fn write_sealed(&self, kind: FileKind, magic: &[u8; 8], plain: &[u8]) -> Result<Id> {
        write_sealed_to(&*self.storage, &self.keys, kind, magic, plain)
    }

    /// Writes an index segment; returns its name.
    pub fn write_index_segment(&self, seg: &IndexSegment) -> Result<Id> {
        self.write_sealed(FileKind::Index, magic::INDEX, &seg.encode())
    }

    /// Writes a snapshot: the commit point of a backup. Everything it references must be in
    /// packs and index segments that are already durable.
    pub fn write_snapshot(&self, snap: &Snapshot) -> Result<Id> {
        self.write_sealed(FileKind::Snapshot, magic::SNAPSHOT, &snap.encode())
    }

    pub fn read_snapshot(&self, id: &Id) -> Result<Snapshot> {
        let h = Handle::new(FileKind::Snapshot, id.to_hex());
        let plain = self.read_sealed(&h, magic::SNAPSHOT, "snapshot", 64 << 20)?;
        Snapshot::decode(&plain).map_err(|e| RepoError::from_format(h.path(), e))
    }

    /// All snapshots, oldest first, and the snapshot files that could not be read (file, why).
    pub fn snapshots(&self) -> Result<(Vec<SnapshotEntry>, Vec<Damaged>)> {
        let mut out = Vec::new();
        let mut bad = Vec::new();
        for (name, _) in self.storage.list(FileKind::Snapshot)? {
            let Ok(id) = name.parse::<Id>() else {
                bad.push((
                    format!("snapshots/{name}"),
                    "not a snapshot file name".to_string(),
                ));
                continue;
            };
            match self.read_snapshot(&id) {
                Ok(s) => out.push((id, s)),
                Err(RepoError::Storage(StorageError::NotFound(_))) => {}
                Err(e @ RepoError::Corrupt { .. }) => {
                    bad.push((format!("snapshots/{name}"), e.to_string()))
                }
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        Ok((out, bad))
    }

    /// Finds a snapshot by id, unique id prefix, or `latest` among those matching `filter`.
    pub fn find_snapshot(&self, spec: &str, filter: &SnapshotFilter) -> Result<(Id, Snapshot)> {
        let (all, _) = self.snapshots()?;
        if spec == "latest" {
            return all
                .into_iter()
                .rev()
                .find(|(_, s)| filter.matches(s))
                .ok_or_else(|| RepoError::NoSnapshot(format!("latest{}", filter.describe())));
        }
        let spec_l = spec.to_ascii_lowercase();
        let mut found: Vec<_> = all
            .into_iter()
            .filter(|(id, _)| id.to_hex().starts_with(&spec_l))
            .collect();
        match found.len() {
            0 => Err(RepoError::NoSnapshot(spec.to_string())),
            1 => Ok(found.remove(0)),
            _ => Err(RepoError::AmbiguousSnapshot(spec.to_string())),
        }
    }

    /// The cipher of a pack whose header has been read already, if any.
    pub(crate) fn cached_cipher(&self, pack_number: u32) -> Option<Arc<FileCipher>> {
        self.ciphers
            .lock()
            .ok()
            .and_then(|c| c.get(&pack_number).cloned())
    }

    pub(crate) fn cipher_for(&self, loc: &BlobLocation) -> Result<Arc<FileCipher>> {
        if let Some(c) = self.cached_cipher(loc.pack_number) {
            return Ok(c);
        }
        let h = pack_handle(&loc.pack);
        let header = self.storage.get_range(&h, 0, PACK_HEADER_LEN as u64)?;
        self.cipher_from_header(loc, &header)
    }

    /// Derives (and caches) a pack's cipher from its header bytes, read by the caller (a
    /// restore that reads a pack from its start gets the header with the first blobs).
    pub(crate) fn cipher_from_header(
        &self,
        loc: &BlobLocation,
        header: &[u8],
    ) -> Result<Arc<FileCipher>> {
        let h = pack_handle(&loc.pack);
        let header = header.get(..PACK_HEADER_LEN).unwrap_or(header);
        let salt = lifeboat_format::strip_magic(header, magic::PACK)
            .map_err(|e| RepoError::from_format(h.path(), e))?;
        let salt: [u8; SALT_LEN] = salt
            .try_into()
            .map_err(|_| RepoError::corrupt(h.path(), "short header"))?;
        let c = Arc::new(
            self.keys
                .file_cipher(&salt)
                .map_err(|e| RepoError::Crypto(e.to_string()))?,
        );
        if let Ok(mut m) = self.ciphers.lock() {
            m.insert(loc.pack_number, c.clone());
        }
        Ok(c)
    }

    /// Reads, authenticates, decompresses and verifies one blob.
    pub fn read_blob(&self, id: &Id) -> Result<Vec<u8>> {
        let loc = self
            .index
            .get(id)
            .ok_or_else(|| RepoError::MissingBlob(id.to_hex()))?;
        let cipher = self.cipher_for(&loc)?;
        let h = pack_handle(&loc.pack);
        let mut buf = self.read_stored(&h, &loc)?;
        open_blob(&self.keys, &cipher, id, &loc, &mut buf)
            .map_err(|d| RepoError::corrupt(format!("blob {} in {}", id.short(), h.path()), d))
    }

    /// A blob's stored bytes: one ranged read on local disk; on remote storage, served from
    /// (or fetched as) the window of its pack that holds it. Windows are aligned, so threads
    /// reading neighbouring blobs ask for the same window, and a window being fetched is
    /// waited for rather than fetched twice.
    fn read_stored(&self, h: &Handle, loc: &BlobLocation) -> Result<Vec<u8>> {
        let (off, len) = (loc.offset as u64, loc.stored_len as u64);
        if self.storage.parallelism() <= 1 || len >= WINDOW_BYTES {
            return Ok(self.storage.get_range(h, off, len)?);
        }
        let pack_len = self
            .index
            .packs()
            .get(loc.pack_number as usize)
            .map(|p| p.1)
            .unwrap_or(0);
        let start = off / WINDOW_BYTES * WINDOW_BYTES;
        // A blob that crosses the boundary stretches its window to its end.
        let end = (start + WINDOW_BYTES).min(pack_len).max(off + len);
        let slice = |w: &ReadWindow| -> Option<Vec<u8>> {
            let data = w.data.as_ref()?;
            (w.pack == loc.pack && w.start <= off && off + len <= w.start + data.len() as u64).then(
                || {
                    let at = (off - w.start) as usize;
                    data[at..at + len as usize].to_vec()
                },
            )
        };
        let (lock, cv) = &self.windows;
        let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(out) = g.iter().find_map(slice) {
                return Ok(out);
            }
            let loading = g
                .iter()
                .any(|w| w.pack == loc.pack && w.start == start && w.data.is_none());
            if !loading {
                break;
            }
            g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        g.push_back(ReadWindow {
            pack: loc.pack,
            start,
            data: None,
        });
        drop(g);
        let fetched = self.storage.get_range(h, start, end - start);
        let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
        let slot = g
            .iter()
            .position(|w| w.pack == loc.pack && w.start == start && w.data.is_none());
        let out = match fetched {
            Ok(data) => {
                let data = Arc::new(data);
                let at = (off - start) as usize;
                let out = data[at..at + len as usize].to_vec();
                if let Some(i) = slot {
                    g[i].data = Some(data);
                }
                Ok(out)
            }
            Err(e) => {
                // Waiters find no window and fetch it themselves (and meet the error).
                if let Some(i) = slot {
                    g.remove(i);
                }
                Err(e.into())
            }
        };
        // Forget the oldest finished windows beyond the budget.
        while g.len() > WINDOWS_KEPT {
            match g.iter().position(|w| w.data.is_some()) {
                Some(i) => {
                    g.remove(i);
                }
                None => break,
            }
        }
        cv.notify_all();
        out
    }

    pub fn load_tree(&self, id: &Id) -> Result<Tree> {
        let b = self.read_blob(id)?;
        Tree::decode(&b).map_err(|e| RepoError::from_format(format!("tree {}", id.short()), e))
    }
}

/// Decrypts, decompresses and checks one sealed blob (`buf` holds its stored bytes).
pub(crate) fn open_blob(
    keys: &Keys,
    cipher: &FileCipher,
    id: &Id,
    loc: &BlobLocation,
    buf: &mut [u8],
) -> std::result::Result<Vec<u8>, String> {
    let plain = cipher
        .open(loc.offset as u64, b"", buf, "blob")
        .map_err(|e| e.to_string())?;
    let raw = match loc.compression {
        Compression::None => plain.to_vec(),
        Compression::Zstd => decompress(plain, loc.raw_len as usize)?,
    };
    if raw.len() != loc.raw_len as usize {
        return Err(format!(
            "length {} differs from the index's {}",
            raw.len(),
            loc.raw_len
        ));
    }
    if keys.blob_id(&raw) != *id {
        return Err("content does not match its id".into());
    }
    Ok(raw)
}

/// Compresses, seals and stores a small file; returns its name. (Also used by the saver's
/// packer thread, which has the keys and the storage but not the repository.)
pub(crate) fn write_sealed_to(
    storage: &dyn Storage,
    keys: &Keys,
    kind: FileKind,
    magic: &[u8; 8],
    plain: &[u8],
) -> Result<Id> {
    let sealed = keys
        .seal_file(magic, &compress(plain, 3)?)
        .map_err(|e| RepoError::Crypto(e.to_string()))?;
    let id = lifeboat_crypto::storage_id(&sealed);
    storage.put(&Handle::new(kind, id.to_hex()), &sealed)?;
    Ok(id)
}

pub fn pack_handle(id: &Id) -> Handle {
    Handle::new(FileKind::Pack, id.to_hex())
}

pub(crate) fn config_header(id: &Id) -> Vec<u8> {
    let mut h = magic::CONFIG.to_vec();
    h.extend_from_slice(&id.0);
    h
}

/// Compresses a sealed file's body. Readers always decompress these, so a failure is an
/// error, never a silent fall-back to the raw bytes.
pub(crate) fn compress(data: &[u8], level: i32) -> Result<Vec<u8>> {
    zstd::bulk::compress(data, level)
        .map_err(|e| RepoError::Invalid(format!("zstd compression failed: {e}")))
}

pub(crate) fn decompress(data: &[u8], max: usize) -> std::result::Result<Vec<u8>, String> {
    // One decompression context per thread: creating one per blob cost as much as the
    // decompression itself in a restore of many small files.
    thread_local! {
        static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { std::cell::RefCell::new(None) };
    }
    DCTX.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new().map_err(|e| format!("zstd: {e}"))?);
        }
        match slot.as_mut() {
            Some(d) => d.decompress(data, max).map_err(|e| format!("zstd: {e}")),
            None => zstd::bulk::decompress(data, max).map_err(|e| format!("zstd: {e}")),
        }
    })
}

/// Which snapshots a listing or `latest` considers.
#[derive(Debug, Clone, Default)]
pub struct SnapshotFilter {
    pub hosts: Vec<String>,
    pub tags: Vec<String>,
    pub paths: Vec<String>,
}

impl SnapshotFilter {
    pub fn matches(&self, s: &Snapshot) -> bool {
        (self.hosts.is_empty() || self.hosts.contains(&s.hostname))
            && self.tags.iter().all(|t| s.tags.contains(t))
            && (self.paths.is_empty() || self.paths.iter().all(|p| s.paths.contains(p)))
    }
    fn describe(&self) -> String {
        let mut d = String::new();
        if !self.hosts.is_empty() {
            d += &format!(" for host {}", self.hosts.join(","));
        }
        if !self.tags.is_empty() {
            d += &format!(" with tags {}", self.tags.join(","));
        }
        d
    }
}
