//! Restore in pack order (issue 5): files whose blobs lie in packs read far apart stay
//! correct when only a few files may be open at once, and a damaged or missing pack fails
//! exactly the files that need it.

use super::*;
use lifeboat_repo::source::FileWriter;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A restore target in memory that counts open writers.
#[derive(Default)]
struct MemTarget {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    files: Mutex<HashMap<PathBuf, Vec<u8>>>,
    open: AtomicUsize,
    max_open: AtomicUsize,
    reopens: AtomicUsize,
    finished: AtomicUsize,
}

struct MemWriter {
    inner: Arc<Inner>,
    path: PathBuf,
}

impl MemWriter {
    fn new(inner: &Arc<Inner>, path: &Path) -> Self {
        let now = inner.open.fetch_add(1, Ordering::SeqCst) + 1;
        inner.max_open.fetch_max(now, Ordering::SeqCst);
        MemWriter {
            inner: inner.clone(),
            path: path.to_path_buf(),
        }
    }
}

impl Drop for MemWriter {
    fn drop(&mut self) {
        self.inner.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl FileWriter for MemWriter {
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), SourceError> {
        let mut files = self.inner.files.lock().unwrap();
        let f = files.get_mut(&self.path).expect("created before written");
        let end = offset as usize + data.len();
        assert!(end <= f.len(), "write past the end of {:?}", self.path);
        f[offset as usize..end].copy_from_slice(data);
        Ok(())
    }
    fn finish(&self) -> Result<(), SourceError> {
        self.inner.finished.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

impl RestoreTarget for MemTarget {
    fn existing(&self, _: &Path) -> Result<Option<Node>, SourceError> {
        Ok(None)
    }
    fn remove(&self, _: &Path) -> Result<(), SourceError> {
        Ok(())
    }
    fn create_dir(&self, _: &Path) -> Result<(), SourceError> {
        Ok(())
    }
    fn create_file(&self, p: &Path, n: &Node, _: bool) -> Result<Box<dyn FileWriter>, SourceError> {
        self.inner
            .files
            .lock()
            .unwrap()
            .insert(p.to_path_buf(), vec![0xEE; n.size as usize]);
        Ok(Box::new(MemWriter::new(&self.inner, p)))
    }
    fn reopen_file(&self, p: &Path, _: &Node) -> Result<Box<dyn FileWriter>, SourceError> {
        assert!(
            self.inner.files.lock().unwrap().contains_key(p),
            "reopened before created: {p:?}"
        );
        self.inner.reopens.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(MemWriter::new(&self.inner, p)))
    }
    fn create_special(&self, _: &Path, _: &Node) -> Result<(), SourceError> {
        Ok(())
    }
    fn hard_link(&self, _: &Path, _: &Path) -> Result<(), SourceError> {
        Ok(())
    }
    fn set_metadata(&self, _: &Path, _: &Node) -> Result<(), SourceError> {
        Ok(())
    }
    fn list_dir(&self, _: &Path) -> Result<Vec<Vec<u8>>, SourceError> {
        Ok(vec![])
    }
}

fn restore_opts(threads: usize, open_files: usize) -> lifeboat_repo::RestoreOptions {
    lifeboat_repo::RestoreOptions {
        target: PathBuf::from("/t"),
        source_path: PathBuf::from("/"),
        includes: vec![],
        excludes: vec![],
        overwrite: Overwrite::Always,
        delete: false,
        sparse: false,
        verify: false,
        threads,
        open_files,
    }
}

/// Files of a second backup start with the content of the first backup's files (blobs in its
/// packs) and go on with new content (blobs in new packs): restoring the second snapshot in
/// pack order writes the start of every file long before its end.
fn two_generations(src: &MemSource, files: usize) -> BTreeMap<PathBuf, Vec<u8>> {
    for i in 0..files {
        let old = bytes(300 << 10, 1000 + i as u64);
        src.add(&format!("/d/f{i:03}"), old, Behaviour::Normal);
    }
    let mut expected = BTreeMap::new();
    for i in 0..files {
        let mut data = bytes(300 << 10, 1000 + i as u64);
        data.extend(bytes(200 << 10, 5000 + i as u64));
        expected.insert(PathBuf::from(format!("/t/d/f{i:03}")), data);
    }
    expected
}

#[test]
fn issue5_pack_order_restore_reopens_files_beyond_the_open_limit() {
    let d = tempfile::tempdir().unwrap();
    let mut repo = new_repo(d.path());
    let src = MemSource::default();
    let expected = two_generations(&src, 24);
    backup(&repo, &src, vec![], &opts(&["/d"]), &Progress::default()).unwrap();
    for (p, data) in &expected {
        let name = Path::new("/").join(p.strip_prefix("/t").unwrap());
        src.add(&name.display().to_string(), data.clone(), Behaviour::Normal);
    }
    let res = backup(&repo, &src, vec![], &opts(&["/d"]), &Progress::default()).unwrap();
    repo.load_index().unwrap();

    for (threads, open_files) in [(1, 1), (4, 2), (3, 0)] {
        let target = MemTarget::default();
        let progress = Progress::default();
        let o = restore_opts(threads, open_files);
        let s = lifeboat_repo::restore(&repo, res.snapshot.tree, &o, &target, &progress).unwrap();
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        assert_eq!(s.files, expected.len() as u64);
        let files = target.inner.files.lock().unwrap();
        for (p, data) in &expected {
            let got = files.get(p).unwrap_or_else(|| panic!("{p:?} not restored"));
            assert!(
                got == data,
                "{p:?} differs after restore ({threads}, {open_files})"
            );
        }
        assert_eq!(
            target.inner.open.load(Ordering::SeqCst),
            0,
            "a writer leaked"
        );
        let max = target.inner.max_open.load(Ordering::SeqCst);
        let reopens = target.inner.reopens.load(Ordering::SeqCst);
        if open_files > 0 {
            // A writer being used by a thread stays open until that write is done.
            assert!(max <= open_files + threads, "{max} open at once");
            assert!(reopens > 0, "the limit of {open_files} never closed a file");
        } else {
            assert_eq!(reopens, 0, "closed files below the default limit");
        }
        assert_eq!(
            Progress::get(&progress.bytes),
            expected.values().map(|d| d.len() as u64).sum::<u64>()
        );
    }
}

#[test]
fn issue5_a_damaged_blob_or_missing_pack_fails_only_the_files_that_need_it() {
    let d = tempfile::tempdir().unwrap();
    let mut repo = new_repo(d.path());
    let src = MemSource::default();
    for i in 0..12u64 {
        src.add(
            &format!("/d/g{i:02}"),
            bytes(150 << 10, 70 + i),
            Behaviour::Normal,
        );
    }
    let res = backup(&repo, &src, vec![], &opts(&["/d"]), &Progress::default()).unwrap();
    repo.load_index().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(d.path().join("repo")));

    // Which file's first blob is where.
    let tree = repo.load_tree(&res.snapshot.tree).unwrap();
    let d_node = tree.nodes.iter().find(|n| n.name == b"d").unwrap();
    let files = repo.load_tree(&d_node.subtree.unwrap()).unwrap();
    let first_blob = |n: &Node| match n.content.first() {
        Some(Content::Chunk(id)) => repo.index().get(id).unwrap(),
        _ => panic!("no content"),
    };
    let victim = first_blob(&files.nodes[3]);
    let needs = |pred: &dyn Fn(&lifeboat_repo::index::BlobLocation) -> bool| {
        files
            .nodes
            .iter()
            .filter(|n| {
                n.content.iter().any(|c| match c {
                    Content::Chunk(id) => pred(&repo.index().get(id).unwrap()),
                    Content::Hole(_) => false,
                })
            })
            .map(|n| format!("/t/d/{}", String::from_utf8_lossy(&n.name)))
            .collect::<std::collections::BTreeSet<_>>()
    };

    // One flipped byte inside one blob.
    let pack = lifeboat_repo::pack_handle(&victim.pack);
    let path = d.path().join("repo").join(pack.path());
    let mut raw = std::fs::read(&path).unwrap();
    raw[victim.offset as usize + 40] ^= 0x55;
    std::fs::write(&path, &raw).unwrap();
    let damaged = needs(&|l| l.pack == victim.pack && l.offset == victim.offset);
    assert!(!damaged.is_empty() && damaged.len() < files.nodes.len());
    let target = MemTarget::default();
    let s = lifeboat_repo::restore(
        &repo,
        res.snapshot.tree,
        &restore_opts(3, 0),
        &target,
        &Progress::default(),
    )
    .unwrap();
    let failed: std::collections::BTreeSet<_> = s.errors.iter().map(|e| e.0.clone()).collect();
    assert_eq!(failed, damaged, "{:?}", s.errors);
    assert!(
        s.errors
            .iter()
            .all(|e| e.1.contains(&victim.pack.to_hex()[..8])),
        "the error names the pack: {:?}",
        s.errors
    );
    assert_eq!(s.files as usize, files.nodes.len() - damaged.len());

    // The whole pack gone: the files with a blob in it fail, the others restore. (A fresh
    // session: the first one keeps the packs it read open.)
    storage.delete(&pack).unwrap();
    let mut repo = Repository::open(storage.clone(), b"pw").unwrap();
    repo.load_index().unwrap();
    let missing = needs(&|l| l.pack == victim.pack);
    let target = MemTarget::default();
    let s = lifeboat_repo::restore(
        &repo,
        res.snapshot.tree,
        &restore_opts(2, 0),
        &target,
        &Progress::default(),
    )
    .unwrap();
    let failed: std::collections::BTreeSet<_> = s.errors.iter().map(|e| e.0.clone()).collect();
    assert_eq!(failed, missing, "{:?}", s.errors);
    assert_eq!(s.files as usize, files.nodes.len() - missing.len());
    assert_eq!(
        target.inner.open.load(Ordering::SeqCst),
        0,
        "a writer leaked"
    );
}
