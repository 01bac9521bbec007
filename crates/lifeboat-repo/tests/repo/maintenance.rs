//! Prune and leases through the library: two-phase deletion, reuse rules, and lease takeover
//! with a holder whose storage is cut off (the "suspended old holder").

use super::{Behaviour, MemSource, bytes, new_repo, opts};
use lifeboat_format::Id;
use lifeboat_repo::prune::{self, PackFate, PruneOptions};
use lifeboat_repo::{
    LeaseHolder, LeaseTiming, MaintenanceLease, Progress, ReadData, RepoError, Repository, backup,
    check,
};
use lifeboat_storage::{FileKind, Handle, LocalStorage, Storage, StorageError};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn holder(name: &str) -> LeaseHolder {
    LeaseHolder {
        hostname: name.into(),
        username: "tester".into(),
        command: "prune".into(),
    }
}

fn quick() -> LeaseTiming {
    LeaseTiming {
        ttl: Duration::from_millis(1500),
        renew_every: Duration::from_millis(200),
        margin: Duration::from_millis(300),
    }
}

fn no_grace() -> PruneOptions {
    PruneOptions {
        keep_delete: Duration::ZERO,
        ..PruneOptions::default()
    }
}

fn packs(repo: &Repository) -> BTreeSet<String> {
    repo.storage()
        .list(FileKind::Pack)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

fn run_prune(repo: &mut Repository, o: &PruneOptions) -> prune::PrunePlan {
    let lease = MaintenanceLease::acquire_with(repo, &holder("ctrl"), quick()).unwrap();
    let p = Progress::default();
    let plan = prune::plan(repo, o, quick(), &p).unwrap();
    prune::execute(repo, &plan, &lease, &p).unwrap();
    plan
}

/// Two snapshots with disjoint content; returns (repo, first snapshot id).
fn two_snapshots(dir: &Path) -> (Repository, Id, MemSource) {
    let mut repo = new_repo(dir);
    let src = MemSource::default();
    src.add("/d/a", bytes(300_000, 1), Behaviour::Normal);
    let first = backup(&repo, &src, vec![], &opts(&["/d"]), &Progress::default()).unwrap();
    repo.load_index().unwrap();
    let src2 = MemSource::default();
    src2.add("/d/b", bytes(300_000, 2), Behaviour::Normal);
    backup(&repo, &src2, vec![], &opts(&["/d"]), &Progress::default()).unwrap();
    repo.load_index().unwrap();
    (repo, first.id.unwrap(), src)
}

fn forget(repo: &Repository, id: &Id) {
    repo.storage()
        .delete(&Handle::new(FileKind::Snapshot, id.to_hex()))
        .unwrap();
}

#[test]
fn prune_marks_first_and_deletes_only_at_a_later_prune() {
    let d = tempfile::tempdir().unwrap();
    let (mut repo, first, _) = two_snapshots(d.path());
    let before = packs(&repo);
    forget(&repo, &first);
    let p1 = run_prune(&mut repo, &no_grace());
    assert_eq!(
        p1.count(|f| matches!(f, PackFate::Mark(_))),
        2,
        "data and tree pack"
    );
    assert_eq!(packs(&repo), before, "the first prune deletes nothing");
    // A grace period not yet over: they wait.
    let p2 = run_prune(
        &mut repo,
        &PruneOptions {
            keep_delete: Duration::from_secs(3600),
            ..PruneOptions::default()
        },
    );
    assert_eq!(p2.count(|f| f == PackFate::Wait), 2);
    assert_eq!(packs(&repo), before);
    let p3 = run_prune(&mut repo, &no_grace());
    assert_eq!(p3.count(|f| f == PackFate::Delete), 2);
    assert_eq!(packs(&repo).len(), before.len() - 2);
    let r = check(&mut repo, ReadData::All, &Progress::default()).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

#[test]
fn backups_store_again_what_is_only_in_marked_packs() {
    let d = tempfile::tempdir().unwrap();
    let (mut repo, first, src) = two_snapshots(d.path());
    forget(&repo, &first);
    run_prune(&mut repo, &no_grace());
    repo.load_index().unwrap();
    // The same content again: the index still lists it, but only in marked packs.
    let again = backup(&repo, &src, vec![], &opts(&["/d"]), &Progress::default()).unwrap();
    assert!(
        again.snapshot.summary.bytes_added >= 300_000,
        "{:?}",
        again.snapshot.summary
    );
    repo.load_index().unwrap();
    let p = run_prune(&mut repo, &no_grace());
    assert_eq!(p.count(|f| f == PackFate::Delete), 2);
    assert_eq!(p.count(|f| f == PackFate::Recover), 0);
    let r = check(&mut repo, ReadData::All, &Progress::default()).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

#[test]
fn a_marked_pack_that_a_snapshot_needs_again_is_recovered() {
    let d = tempfile::tempdir().unwrap();
    let (mut repo, first, _) = two_snapshots(d.path());
    let h = Handle::new(FileKind::Snapshot, first.to_hex());
    let saved = repo.storage().get(&h).unwrap();
    forget(&repo, &first);
    run_prune(&mut repo, &no_grace());
    // A backup that began before the marks and reused those packs commits now.
    repo.storage().put(&h, &saved).unwrap();
    let p = run_prune(&mut repo, &no_grace());
    assert_eq!(p.count(|f| f == PackFate::Recover), 2);
    assert_eq!(p.count(|f| f == PackFate::Delete), 0);
    let marks = repo.read_marks().unwrap();
    assert!(marks.marks().is_none_or(|m| m.marks.is_empty()));
    let r = check(&mut repo, ReadData::All, &Progress::default()).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

#[test]
fn repack_copies_needed_blobs_and_the_old_pack_goes_later() {
    let d = tempfile::tempdir().unwrap();
    let mut repo = new_repo(d.path());
    let src = MemSource::default();
    src.add("/d/keep", bytes(200_000, 7), Behaviour::Normal);
    src.add("/d/drop", bytes(800_000, 8), Behaviour::Normal);
    let s1 = backup(&repo, &src, vec![], &opts(&["/d"]), &Progress::default()).unwrap();
    repo.load_index().unwrap();
    let src2 = MemSource::default();
    src2.add("/d/keep", bytes(200_000, 7), Behaviour::Normal);
    let s2 = backup(&repo, &src2, vec![], &opts(&["/d"]), &Progress::default()).unwrap();
    forget(&repo, &s1.id.unwrap());
    repo.load_index().unwrap();
    let p = run_prune(&mut repo, &no_grace());
    assert_eq!(p.count(|f| f == PackFate::Repack), 1, "{:?}", p.packs);
    let p = run_prune(&mut repo, &no_grace());
    assert!(p.count(|f| f == PackFate::Delete) >= 1);
    assert_eq!(p.count(|f| f == PackFate::Repack), 0);
    let r = check(&mut repo, ReadData::All, &Progress::default()).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    // The kept file still reads back whole.
    repo.load_index().unwrap();
    let tree = repo.load_tree(&s2.snapshot.tree).unwrap();
    assert!(!tree.nodes.is_empty());
    let total: u64 = packs(&repo)
        .iter()
        .map(|n| {
            repo.storage()
                .size(&Handle::new(FileKind::Pack, n.clone()))
                .unwrap()
        })
        .sum();
    assert!(total < 400_000, "the 800 kB file's data is gone: {total}");
}

#[test]
fn the_maintenance_lease_is_exclusive_and_names_its_holder() {
    let d = tempfile::tempdir().unwrap();
    let repo = new_repo(d.path());
    let a = MaintenanceLease::acquire_with(&repo, &holder("node-a"), quick()).unwrap();
    match MaintenanceLease::acquire_with(&repo, &holder("node-b"), quick()) {
        Err(e @ RepoError::Locked(_)) => {
            assert!(e.to_string().contains("prune by tester@node-a"), "{e}")
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("two holders"),
    }
    // Renewed while held: still exclusive after its first lifetime.
    std::thread::sleep(Duration::from_millis(2000));
    assert!(MaintenanceLease::acquire_with(&repo, &holder("node-b"), quick()).is_err());
    a.verify().unwrap();
    drop(a);
    let leases = repo.leases().unwrap();
    assert!(leases.is_empty(), "released: {leases:?}");
    MaintenanceLease::acquire_with(&repo, &holder("node-b"), quick()).unwrap();
}

/// Storage that can be cut off, as a suspended process or a partition would be.
struct Cuttable {
    inner: LocalStorage,
    cut: AtomicBool,
}

impl Cuttable {
    fn gate(&self) -> Result<(), StorageError> {
        if self.cut.load(Ordering::SeqCst) {
            return Err(StorageError::Io {
                what: "the repository".into(),
                source: std::io::Error::other("cut off by the test"),
                retryable: true,
            });
        }
        Ok(())
    }
}

impl Storage for Cuttable {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn create(&self) -> Result<(), StorageError> {
        self.gate()?;
        self.inner.create()
    }
    fn put(&self, h: &Handle, data: &[u8]) -> Result<(), StorageError> {
        self.gate()?;
        self.inner.put(h, data)
    }
    fn create_new(&self, h: &Handle, data: &[u8]) -> Result<(), StorageError> {
        self.gate()?;
        self.inner.create_new(h, data)
    }
    fn get(&self, h: &Handle) -> Result<Vec<u8>, StorageError> {
        self.gate()?;
        self.inner.get(h)
    }
    fn get_range(&self, h: &Handle, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        self.gate()?;
        self.inner.get_range(h, offset, len)
    }
    fn size(&self, h: &Handle) -> Result<u64, StorageError> {
        self.gate()?;
        self.inner.size(h)
    }
    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>, StorageError> {
        self.gate()?;
        self.inner.list(kind)
    }
    fn delete(&self, h: &Handle) -> Result<(), StorageError> {
        self.gate()?;
        self.inner.delete(h)
    }
}

#[test]
fn an_expired_lease_is_taken_over_and_its_old_holder_stops_before_deleting() {
    let d = tempfile::tempdir().unwrap();
    let (mut repo, first, _) = two_snapshots(d.path());
    forget(&repo, &first);
    run_prune(&mut repo, &no_grace()); // marks the forgotten snapshot's packs
    let before = packs(&repo);

    let cut = Arc::new(Cuttable {
        inner: LocalStorage::new(d.path().join("repo")).without_sync(),
        cut: AtomicBool::new(false),
    });
    let mut old = Repository::open(cut.clone(), b"pw").unwrap();
    let lease = MaintenanceLease::acquire_with(&old, &holder("old"), quick()).unwrap();
    let p = Progress::default();
    let plan = prune::plan(&mut old, &no_grace(), quick(), &p).unwrap();
    assert_eq!(plan.count(|f| f == PackFate::Delete), 2);

    // The old holder loses the storage past its lease's lifetime; another takes over.
    cut.cut.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(2000));
    let new = MaintenanceLease::acquire_with(&repo, &holder("new"), quick()).unwrap();
    cut.cut.store(false, Ordering::SeqCst);

    match prune::execute(&old, &plan, &lease, &p) {
        Err(RepoError::LeaseLost(why)) => assert!(!why.is_empty()),
        other => panic!("the old holder went on: {other:?}"),
    }
    assert_eq!(packs(&repo), before, "the old holder deleted something");
    drop(lease);
    // The new holder's lease survived the old one's release.
    new.verify().unwrap();
    drop(new);
    let r = check(&mut repo, ReadData::All, &Progress::default()).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

#[test]
fn a_running_backup_keeps_packs_marked_after_it_started() {
    let d = tempfile::tempdir().unwrap();
    let (mut repo, first, _) = two_snapshots(d.path());
    // A backup that holds its lease (started now) and has not finished.
    let running = lifeboat_repo::BackupLease::acquire(&repo, &holder("node-3")).unwrap();
    std::thread::sleep(Duration::from_millis(1100)); // marks come in a later second
    forget(&repo, &first);
    run_prune(&mut repo, &no_grace());
    let before = packs(&repo);
    let p = run_prune(&mut repo, &no_grace());
    assert_eq!(p.count(|f| f == PackFate::Wait), 2, "{:?}", p.packs);
    assert!(p.packs.iter().any(|x| x.note.contains("backup")));
    assert_eq!(packs(&repo), before);
    drop(running);
    let p = run_prune(&mut repo, &no_grace());
    assert_eq!(p.count(|f| f == PackFate::Delete), 2);
}
