//! The conformance suite every backend must pass. Today it runs against the local backend;
//! each remote backend adds a line to `backends()`.

use lifeboat_storage::{FileKind, Handle, LocalStorage, Storage, StorageError};

fn backends() -> Vec<(tempfile::TempDir, Box<dyn Storage>)> {
    let d = tempfile::tempdir().unwrap();
    let s = LocalStorage::new(d.path().join("repo"));
    vec![(d, Box::new(s))]
}

#[test]
fn create_twice_is_refused() {
    for (_d, s) in backends() {
        s.create().unwrap();
        s.put(&Handle::config(), b"cfg").unwrap();
        assert!(matches!(s.create(), Err(StorageError::AlreadyExists(_))));
    }
}

#[test]
fn put_get_range_list_delete() {
    for (_d, s) in backends() {
        s.create().unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let pack = Handle::new(FileKind::Pack, "ab".to_string() + &"0".repeat(62));
        s.put(&pack, &data).unwrap();
        assert_eq!(s.get(&pack).unwrap(), data);
        assert_eq!(s.size(&pack).unwrap(), data.len() as u64);
        assert_eq!(s.get_range(&pack, 1000, 5000).unwrap(), &data[1000..6000]);
        assert!(matches!(
            s.get_range(&pack, data.len() as u64 - 10, 20),
            Err(StorageError::Truncated { .. })
        ));
        for i in 0..300 {
            s.put(&Handle::new(FileKind::Snapshot, format!("{i:064x}")), b"x")
                .unwrap();
        }
        assert_eq!(s.list(FileKind::Snapshot).unwrap().len(), 300);
        assert_eq!(
            s.list(FileKind::Pack).unwrap(),
            vec![(pack.name.clone(), data.len() as u64)]
        );
        s.delete(&pack).unwrap();
        assert!(matches!(s.get(&pack), Err(StorageError::NotFound(_))));
        assert!(matches!(
            s.get_range(&pack, 0, 10),
            Err(StorageError::NotFound(_))
        ));
        assert!(matches!(s.delete(&pack), Err(StorageError::NotFound(_))));
        assert!(s.list(FileKind::Pack).unwrap().is_empty());
    }
}

#[test]
fn create_new_is_exclusive() {
    for (_d, s) in backends() {
        s.create().unwrap();
        let h = Handle::new(FileKind::Lock, "lease");
        s.create_new(&h, b"one").unwrap();
        assert!(matches!(
            s.create_new(&h, b"two"),
            Err(StorageError::AlreadyExists(_))
        ));
        assert_eq!(s.get(&h).unwrap(), b"one");
        assert!(
            s.list(FileKind::Lock)
                .unwrap()
                .iter()
                .all(|(n, _)| n == "lease")
        );
    }
}

#[test]
fn concurrent_writers_of_the_same_name() {
    for (_d, s) in backends() {
        s.create().unwrap();
        let s: std::sync::Arc<dyn Storage> = s.into();
        let h = Handle::new(FileKind::Index, "same");
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (s, h) = (s.clone(), h.clone());
                std::thread::spawn(move || s.put(&h, &[7u8; 100_000]).unwrap())
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(s.get(&h).unwrap(), vec![7u8; 100_000]);
        assert_eq!(s.list(FileKind::Index).unwrap().len(), 1);
    }
}

#[test]
fn missing_repository_reads_not_found() {
    let d = tempfile::tempdir().unwrap();
    let s = LocalStorage::new(d.path().join("nothing"));
    assert!(matches!(
        s.get(&Handle::config()),
        Err(StorageError::NotFound(_))
    ));
}

#[test]
fn stale_temporaries_are_removed_and_fresh_ones_kept() {
    for (dir, s) in backends() {
        s.create().unwrap();
        s.put(&Handle::new(FileKind::Snapshot, "a".repeat(64)), b"x")
            .unwrap();
        // What a write killed half-way leaves (the local backend's temporary naming).
        let tmp = dir.path().join("repo/snapshots/.tmp-dead-0000000000000001");
        std::fs::write(&tmp, b"partial").unwrap();
        assert_eq!(
            s.remove_stale_temporaries(std::time::Duration::from_secs(3600))
                .unwrap(),
            0,
            "a fresh temporary may belong to a live write"
        );
        assert!(tmp.exists());
        assert_eq!(
            s.remove_stale_temporaries(std::time::Duration::ZERO)
                .unwrap(),
            1
        );
        assert!(!tmp.exists());
        assert_eq!(s.list(FileKind::Snapshot).unwrap().len(), 1, "objects stay");
    }
}
