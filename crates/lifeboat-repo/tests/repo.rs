//! Integration tests of the repository through its public API, with an in-memory source whose
//! files can vanish, shrink or fail mid-read on demand: the faults a live system produces
//! that a test on real files cannot time.

use lifeboat_format::{Content, KdfParams, Node, NodeKind, Timestamp};
use lifeboat_repo::source::{
    FileReader, FileSource, Overwrite, RestoreTarget, SourceEntry, SourceError,
};
use lifeboat_repo::walk::{Walk, walk_tree};
use lifeboat_repo::{BackupOptions, InitOptions, Progress, ReadData, Repository, backup, check};
use lifeboat_storage::{FileKind, LocalStorage, Storage};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[path = "repo/maintenance.rs"]
mod maintenance;
#[path = "repo/restore.rs"]
mod restore;

#[derive(Clone)]
enum Behaviour {
    Normal,
    /// Gone between listing and open.
    Vanish,
    /// Shorter when read than when listed.
    Shrink(usize),
    /// Fails with EIO after this many bytes.
    FailAfter(u64),
}

#[derive(Default)]
struct MemSource {
    files: Mutex<BTreeMap<PathBuf, (Vec<u8>, Behaviour)>>,
}

impl MemSource {
    fn add(&self, p: &str, data: Vec<u8>, b: Behaviour) {
        self.files
            .lock()
            .unwrap()
            .insert(PathBuf::from(p), (data, b));
    }
    fn node(name: &[u8], kind: NodeKind, size: u64, ino: u64) -> Node {
        Node {
            name: name.to_vec(),
            kind: Some(kind),
            mode: 0o644,
            mtime: Timestamp {
                secs: 1_700_000_000,
                nanos: 0,
            },
            size,
            inode: ino,
            nlink: 1,
            ..Node::default()
        }
    }
}

impl FileSource for MemSource {
    fn stat(&self, path: &Path) -> Result<Option<SourceEntry>, SourceError> {
        let name = path
            .file_name()
            .map(|n| n.as_encoded_bytes().to_vec())
            .unwrap_or_default();
        Ok(Some(SourceEntry {
            path: path.to_path_buf(),
            node: Self::node(&name, NodeKind::Dir, 0, 1),
        }))
    }
    fn read_dir(
        &self,
        dir: &SourceEntry,
    ) -> Result<Vec<Result<SourceEntry, SourceError>>, SourceError> {
        let files = self.files.lock().unwrap();
        Ok(files
            .iter()
            .filter(|(p, _)| p.parent() == Some(dir.path.as_path()))
            .enumerate()
            .map(|(i, (p, (d, _)))| {
                let name = p.file_name().unwrap().as_encoded_bytes();
                Ok(SourceEntry {
                    path: p.clone(),
                    node: Self::node(name, NodeKind::File, d.len() as u64, 100 + i as u64),
                })
            })
            .collect())
    }
    fn open(&self, entry: &SourceEntry) -> Result<Box<dyn FileReader>, SourceError> {
        let (data, b) = self
            .files
            .lock()
            .unwrap()
            .get(&entry.path)
            .cloned()
            .expect("listed");
        match b {
            Behaviour::Vanish => Err(SourceError::new(
                &entry.path,
                "open",
                io::Error::from(io::ErrorKind::NotFound),
            )),
            Behaviour::Shrink(n) => Ok(Box::new(MemReader {
                data: data[..n].to_vec(),
                listed: data.len() as u64,
                fail_after: None,
            })),
            Behaviour::FailAfter(n) => Ok(Box::new(MemReader {
                listed: data.len() as u64,
                data,
                fail_after: Some(n),
            })),
            Behaviour::Normal => Ok(Box::new(MemReader {
                listed: data.len() as u64,
                data,
                fail_after: None,
            })),
        }
    }
}

struct MemReader {
    data: Vec<u8>,
    listed: u64,
    fail_after: Option<u64>,
}

impl FileReader for MemReader {
    fn data_regions(&mut self) -> Result<Vec<(u64, u64)>, SourceError> {
        Ok(vec![(0, self.listed)])
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, SourceError> {
        if self.fail_after.is_some_and(|n| offset >= n) {
            return Err(SourceError::new(
                "/mem",
                "read",
                io::Error::from_raw_os_error(5),
            ));
        }
        let start = (offset as usize).min(self.data.len());
        let mut n = buf.len().min(self.data.len() - start);
        if let Some(limit) = self.fail_after {
            n = n.min((limit - offset) as usize);
        }
        buf[..n].copy_from_slice(&self.data[start..start + n]);
        Ok(n)
    }
}

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn fast() -> InitOptions {
    InitOptions {
        kdf: KdfParams {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        },
        pack_size: 1 << 20,
        chunk_avg: 64 << 10,
        ..InitOptions::default()
    }
}

fn new_repo(dir: &Path) -> Repository {
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.join("repo")).without_sync());
    Repository::init(storage, b"pw", &fast()).unwrap()
}

fn opts(paths: &[&str]) -> BackupOptions {
    BackupOptions {
        paths: paths.iter().map(PathBuf::from).collect(),
        hostname: "h".into(),
        ..BackupOptions::default()
    }
}

fn file_sizes(repo: &Repository, tree: lifeboat_format::Id) -> BTreeMap<String, (u64, u64)> {
    let mut out = BTreeMap::new();
    walk_tree(
        repo,
        tree,
        Path::new("/"),
        &mut |p, n| {
            if n.kind() == NodeKind::File {
                let stored: u64 = n
                    .content
                    .iter()
                    .map(|c| match c {
                        Content::Chunk(id) => {
                            repo.index().get(id).map(|l| l.raw_len as u64).unwrap_or(0)
                        }
                        Content::Hole(h) => *h,
                    })
                    .sum();
                out.insert(p.display().to_string(), (n.size, stored));
            }
            Ok(Walk::Continue)
        },
        &mut |_, e| Err(e),
    )
    .unwrap();
    out
}

#[test]
fn files_that_vanish_shrink_or_fail_while_read() {
    let d = tempfile::tempdir().unwrap();
    let mut repo = new_repo(d.path());
    let src = MemSource::default();
    src.add("/data/ok", bytes(300_000, 1), Behaviour::Normal);
    src.add("/data/vanished", bytes(1000, 2), Behaviour::Vanish);
    src.add(
        "/data/shrunk",
        bytes(500_000, 3),
        Behaviour::Shrink(123_456),
    );
    src.add(
        "/data/eio",
        bytes(400_000, 4),
        Behaviour::FailAfter(200_000),
    );
    let res = backup(&repo, &src, vec![], &opts(&["/data"]), &Progress::default()).unwrap();
    let s = &res.snapshot;
    let skipped: Vec<&str> = s.skipped.iter().map(|k| k.path.as_str()).collect();
    assert_eq!(
        skipped,
        vec!["/data/eio", "/data/vanished"],
        "{:?}",
        s.skipped
    );
    assert!(s.skipped[0].error.contains("Input/output error"));
    repo.load_index().unwrap();
    let sizes = file_sizes(&repo, s.tree);
    // The shrunk file is stored as it was read, and its node says so: no lie in the snapshot.
    assert_eq!(sizes["/data/shrunk"], (123_456, 123_456));
    assert_eq!(sizes["/data/ok"], (300_000, 300_000));
    assert!(!sizes.contains_key("/data/eio") && !sizes.contains_key("/data/vanished"));
    let r = check(&mut repo, ReadData::All, &Progress::default()).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

#[test]
fn index_can_be_rebuilt_from_pack_trailers_alone() {
    let d = tempfile::tempdir().unwrap();
    let mut repo = new_repo(d.path());
    let src = MemSource::default();
    for i in 0..30 {
        src.add(
            &format!("/d/f{i}"),
            bytes(100_000 + i * 7000, i as u64),
            Behaviour::Normal,
        );
    }
    backup(&repo, &src, vec![], &opts(&["/d"]), &Progress::default()).unwrap();
    repo.load_index().unwrap();
    let mut from_index: Vec<_> = repo
        .index()
        .iter()
        .map(|(id, l)| (id, l.pack, l.offset, l.stored_len, l.raw_len))
        .collect();
    let mut from_packs = Vec::new();
    for (name, _) in repo.storage().list(FileKind::Pack).unwrap() {
        let bytes = repo
            .storage()
            .get(&lifeboat_storage::Handle::new(FileKind::Pack, name.clone()))
            .unwrap();
        let (_, entries) = lifeboat_repo::saver::parse_pack(repo.keys(), &bytes).unwrap();
        for e in entries {
            from_packs.push((
                e.id,
                name.parse().unwrap(),
                e.offset,
                e.stored_len,
                e.raw_len,
            ));
        }
    }
    from_index.sort();
    from_packs.sort();
    assert_eq!(from_index, from_packs);
    assert!(repo.index().len() > 30);
}

#[test]
fn cache_is_only_an_optimisation() {
    let d = tempfile::tempdir().unwrap();
    let repo = new_repo(d.path());
    let src = MemSource::default();
    src.add("/d/f", bytes(200_000, 9), Behaviour::Normal);
    backup(&repo, &src, vec![], &opts(&["/d"]), &Progress::default()).unwrap();
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(d.path().join("repo")));
    let cache = d.path().join("cache");
    let open = || {
        let mut r = Repository::open(storage.clone(), b"pw").unwrap();
        r.set_cache(Some(cache.clone()));
        r.load_index().unwrap();
        let (snaps, bad) = r.snapshots().unwrap();
        assert!(bad.is_empty());
        (r.index().len(), snaps.len())
    };
    let first = open();
    // Damage every cached file: the next open must notice and fetch from the repository.
    let mut damaged = 0;
    for e in walk(&cache) {
        let mut b = std::fs::read(&e).unwrap();
        b[0] ^= 0xff;
        std::fs::write(&e, b).unwrap();
        damaged += 1;
    }
    assert!(damaged >= 2, "index and snapshot were cached");
    assert_eq!(open(), first);
    std::fs::remove_dir_all(&cache).unwrap();
    assert_eq!(open(), first);
}

fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(p).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn wrong_password_and_missing_repository_are_typed_errors() {
    let d = tempfile::tempdir().unwrap();
    new_repo(d.path());
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(d.path().join("repo")));
    assert!(matches!(
        Repository::open(storage.clone(), b"nope"),
        Err(lifeboat_repo::RepoError::WrongPassword(_))
    ));
    let none: Arc<dyn Storage> = Arc::new(LocalStorage::new(d.path().join("none")));
    assert!(matches!(
        Repository::open(none, b"pw"),
        Err(lifeboat_repo::RepoError::NotARepository(_))
    ));
    assert!(matches!(
        Repository::init(storage, b"pw", &fast()),
        Err(lifeboat_repo::RepoError::AlreadyExists(_))
    ));
}

/// A restore target that records what it was asked to do, to check the restorer's ordering.
#[derive(Default)]
struct Recorder {
    log: Mutex<Vec<String>>,
}

struct NullWriter;
impl lifeboat_repo::source::FileWriter for NullWriter {
    fn write_at(&self, _: u64, _: &[u8]) -> Result<(), SourceError> {
        Ok(())
    }
    fn finish(&self) -> Result<(), SourceError> {
        Ok(())
    }
}

impl RestoreTarget for Recorder {
    fn existing(&self, _: &Path) -> Result<Option<Node>, SourceError> {
        Ok(None)
    }
    fn remove(&self, _: &Path) -> Result<(), SourceError> {
        Ok(())
    }
    fn create_dir(&self, p: &Path) -> Result<(), SourceError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("mkdir {}", p.display()));
        Ok(())
    }
    fn create_file(
        &self,
        p: &Path,
        _: &Node,
        _: bool,
    ) -> Result<Box<dyn lifeboat_repo::source::FileWriter>, SourceError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("file {}", p.display()));
        Ok(Box::new(NullWriter))
    }
    fn reopen_file(
        &self,
        _: &Path,
        _: &Node,
    ) -> Result<Box<dyn lifeboat_repo::source::FileWriter>, SourceError> {
        Ok(Box::new(NullWriter))
    }
    fn create_special(&self, _: &Path, _: &Node) -> Result<(), SourceError> {
        Ok(())
    }
    fn hard_link(&self, _: &Path, _: &Path) -> Result<(), SourceError> {
        Ok(())
    }
    fn set_metadata(&self, p: &Path, _: &Node) -> Result<(), SourceError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("meta {}", p.display()));
        Ok(())
    }
    fn list_dir(&self, _: &Path) -> Result<Vec<Vec<u8>>, SourceError> {
        Ok(vec![])
    }
}

#[test]
fn directory_metadata_is_applied_after_contents_deepest_first() {
    let d = tempfile::tempdir().unwrap();
    let mut repo = new_repo(d.path());
    let src = MemSource::default();
    src.add("/a/f", bytes(10, 1), Behaviour::Normal);
    let res = backup(&repo, &src, vec![], &opts(&["/a"]), &Progress::default()).unwrap();
    repo.load_index().unwrap();
    let rec = Recorder::default();
    let o = lifeboat_repo::RestoreOptions {
        target: PathBuf::from("/t"),
        source_path: PathBuf::from("/"),
        includes: vec![],
        excludes: vec![],
        overwrite: Overwrite::Always,
        delete: false,
        sparse: true,
        verify: false,
        threads: 2,
        open_files: 0,
    };
    lifeboat_repo::restore(&repo, res.snapshot.tree, &o, &rec, &Progress::default()).unwrap();
    let log = rec.log.into_inner().unwrap();
    let pos = |s: &str| {
        log.iter()
            .position(|l| l == s)
            .unwrap_or_else(|| panic!("{s} not in {log:?}"))
    };
    assert!(pos("mkdir /t/a") < pos("file /t/a/f"));
    assert!(pos("meta /t/a/f") < pos("meta /t/a"));
    assert!(pos("meta /t/a") < pos("meta /t"));
}

/// Issue 3: two `init`s racing on one location with the same password leave the loser's key
/// file, which opens with that password but wraps a master key that never sealed the config.
/// `open` must move on to the next key file instead of reporting the config damaged.
#[test]
fn issue3_open_tries_next_key_when_config_does_not_open() {
    let d = tempfile::tempdir().unwrap();
    let winner = new_repo(d.path());
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(d.path().join("repo")));
    let (winner_key, _) = storage.list(FileKind::Key).unwrap().remove(0);
    // The loser's key file, named as init names it, and sorting before the winner's so that
    // it is tried first (names are hashes: draw until one does).
    let loser = lifeboat_crypto::MasterKey::generate().unwrap();
    let (name, bytes) = loop {
        let b = loser.wrap(b"pw", fast().kdf).unwrap().encode();
        let n = lifeboat_crypto::storage_id(&b).to_hex();
        if n < winner_key {
            break (n, b);
        }
    };
    let h = lifeboat_storage::Handle::new(FileKind::Key, name.clone());
    storage.put(&h, &bytes).unwrap();
    assert_eq!(storage.list(FileKind::Key).unwrap()[0].0, name);

    let repo = Repository::open(storage.clone(), b"pw").expect("the winner's key opens it");
    assert_eq!(repo.config().id, winner.config().id);
    assert_eq!(repo.keys().blob_id(b"x"), winner.keys().blob_id(b"x"));
    let current: Vec<_> = repo
        .key_files()
        .unwrap()
        .into_iter()
        .filter(|k| k.current)
        .collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].name, winner_key);

    // Only when no key file leads to the config is the config reported damaged (and a
    // password no key file opens is still a wrong password).
    storage
        .delete(&lifeboat_storage::Handle::new(FileKind::Key, winner_key))
        .unwrap();
    assert!(matches!(
        Repository::open(storage.clone(), b"pw"),
        Err(lifeboat_repo::RepoError::Corrupt { .. })
    ));
    assert!(matches!(
        Repository::open(storage, b"other"),
        Err(lifeboat_repo::RepoError::WrongPassword(_))
    ));
}
