//! The conformance suite every backend must pass: the local backend always, and SFTP, S3 and
//! Swift against the real servers of `scripts/remote/all` when their variables are set
//! (`eval "$(scripts/remote/all env)"`). With `CI=true` a missing server is a failure, not a
//! skip.

use lifeboat_storage::swift_auth::{Secret, SwiftCredentials};
use lifeboat_storage::{
    FileKind, Handle, LocalStorage, ObjectStorage, S3Target, SftpStorage, SftpTarget, Storage,
    StorageError, SwiftTarget,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

struct Backend {
    name: &'static str,
    storage: Arc<dyn Storage>,
    /// The repository's folder on this machine, where the backend has one (local, SFTP to
    /// loopback): lets a test plant what a killed writer leaves.
    local_root: Option<PathBuf>,
    _tmp: Option<tempfile::TempDir>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        if self.name == "sftp"
            && let Some(r) = &self.local_root
        {
            let _ = std::fs::remove_dir_all(r);
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn require(what: &str, var: &str) -> Option<String> {
    let v = env(var);
    if v.is_none() && env("CI").as_deref() == Some("true") {
        panic!(
            "{what} tests need {var}: start the servers with scripts/remote/all start and eval \"$(scripts/remote/all env)\""
        );
    }
    v
}

/// A name no other test run uses, for folders and prefixes on shared servers.
fn unique(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{tag}-{t:x}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

const BUCKET: &str = "lifeboat-conformance";

fn sftp_target(path: String) -> Option<SftpTarget> {
    let host = require("SFTP", "LIFEBOAT_SFTP_HOST")?;
    Some(SftpTarget {
        host,
        port: env("LIFEBOAT_SFTP_PORT").and_then(|p| p.parse().ok()),
        user: env("LIFEBOAT_SFTP_USER"),
        path,
        ssh_args: env("LIFEBOAT_SFTP_SSH_CONFIG")
            .map(|f| vec!["-F".to_string(), f])
            .unwrap_or_default(),
        ssh_program: None,
    })
}

fn swift_v1() -> Option<SwiftCredentials> {
    Some(SwiftCredentials::V1 {
        auth_url: require("Swift", "LIFEBOAT_SWIFT_AUTH_URL")?,
        user: env("LIFEBOAT_SWIFT_USER")?,
        key: Secret::new(env("LIFEBOAT_SWIFT_KEY")?),
    })
}

/// The S3 bucket is the tempauth account's Swift container of the same name (s3api maps
/// one onto the other), so it is made through the Swift API.
fn ensure_bucket() -> Option<()> {
    let creds = swift_v1()?;
    let s = ObjectStorage::swift(
        SwiftTarget {
            container: BUCKET.into(),
            prefix: unique("bucket-probe"),
        },
        creds,
        2,
    )
    .unwrap();
    s.create().unwrap();
    Some(())
}

fn s3(prefix: String, secret_override: Option<&str>, bucket: &str) -> Option<ObjectStorage> {
    let endpoint = require("S3", "LIFEBOAT_S3_ENDPOINT")?;
    Some(
        ObjectStorage::s3(
            S3Target {
                endpoint: Some(endpoint),
                bucket: bucket.into(),
                prefix,
                region: env("LIFEBOAT_S3_REGION"),
                path_style: Some(true),
                access_key: env("LIFEBOAT_S3_ACCESS_KEY_ID"),
                secret_key: secret_override
                    .map(str::to_string)
                    .or_else(|| env("LIFEBOAT_S3_SECRET_ACCESS_KEY"))
                    .map(Secret::new),
            },
            4,
        )
        .unwrap(),
    )
}

fn backends() -> Vec<Backend> {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("repo");
    let mut out = vec![Backend {
        name: "local",
        storage: Arc::new(LocalStorage::new(&root)),
        local_root: Some(root),
        _tmp: Some(d),
    }];
    if let Some(dir) = require("SFTP", "LIFEBOAT_SFTP_DIR") {
        let path = format!("{dir}/{}", unique("conformance"));
        if let Some(t) = sftp_target(path.clone()) {
            out.push(Backend {
                name: "sftp",
                storage: Arc::new(SftpStorage::new(t, 4)),
                local_root: Some(path.into()),
                _tmp: None,
            });
        }
    }
    if ensure_bucket().is_some()
        && let Some(s) = s3(unique("conformance"), None, BUCKET)
    {
        out.push(Backend {
            name: "s3",
            storage: Arc::new(s),
            local_root: None,
            _tmp: None,
        });
    }
    if require("Swift with Keystone", "OS_AUTH_URL").is_some() {
        let creds = SwiftCredentials::from_env().unwrap();
        out.push(Backend {
            name: "swift",
            storage: Arc::new(
                ObjectStorage::swift(
                    SwiftTarget {
                        container: "lifeboat-conformance".into(),
                        prefix: unique("conformance"),
                    },
                    creds,
                    4,
                )
                .unwrap(),
            ),
            local_root: None,
            _tmp: None,
        });
    }
    out
}

#[test]
fn create_twice_is_refused() {
    for b in backends() {
        let s = &b.storage;
        s.create().unwrap();
        s.put(&Handle::config(), b"cfg").unwrap();
        assert!(matches!(s.create(), Err(StorageError::AlreadyExists(_))));
    }
}

#[test]
fn put_get_range_list_delete() {
    for b in backends() {
        let s = &b.storage;
        s.create().unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let pack = Handle::new(FileKind::Pack, "ab".to_string() + &"0".repeat(62));
        s.put(&pack, &data).unwrap();
        assert_eq!(s.get(&pack).unwrap(), data);
        assert_eq!(s.size(&pack).unwrap(), data.len() as u64);
        assert_eq!(s.get_range(&pack, 1000, 5000).unwrap(), &data[1000..6000]);
        let past = s.get_range(&pack, data.len() as u64 - 10, 20);
        assert!(
            matches!(past, Err(StorageError::Truncated { .. })),
            "{}: {past:?}",
            b.name
        );
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
    for b in backends() {
        let s = &b.storage;
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
    for b in backends() {
        let s = &b.storage;
        s.create().unwrap();
        let s = s.clone();
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
    for b in backends() {
        let s = &b.storage;
        let Some(root) = &b.local_root else { continue };
        s.create().unwrap();
        s.put(&Handle::new(FileKind::Snapshot, "a".repeat(64)), b"x")
            .unwrap();
        // What a write killed half-way leaves (the local backend's temporary naming).
        let tmp = root.join("snapshots/.tmp-dead-0000000000000001");
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

#[test]
fn large_pack_and_many_pack_folders() {
    for b in backends() {
        let s = &b.storage;
        s.create().unwrap();
        let big: Vec<u8> = (0..48u32 << 20)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let h = Handle::new(FileKind::Pack, "ff".to_string() + &"1".repeat(62));
        s.put(&h, &big).unwrap();
        assert_eq!(s.size(&h).unwrap(), big.len() as u64, "{}", b.name);
        let at = (40u64 << 20) + 12345;
        assert_eq!(
            s.get_range(&h, at, 1 << 20).unwrap(),
            &big[at as usize..at as usize + (1 << 20)],
            "{}",
            b.name
        );
        let names: Vec<String> = (0..300u32)
            .map(|i| {
                format!(
                    "{:064x}",
                    u128::from(i) * 0x0123_4567_89ab_cdef_u128 + u128::from(i)
                )
            })
            .collect();
        std::thread::scope(|sc| {
            for chunk in names.chunks(40) {
                sc.spawn(move || {
                    for n in chunk {
                        s.put(&Handle::new(FileKind::Pack, n.clone()), n.as_bytes())
                            .unwrap();
                    }
                });
            }
        });
        let listed = s.list(FileKind::Pack).unwrap();
        assert_eq!(listed.len(), 301, "{}", b.name);
        for n in &names {
            assert!(listed.contains(&(n.clone(), 64)), "{}: {n} missing", b.name);
        }
    }
}

#[test]
fn racing_create_new_has_one_winner() {
    for b in backends() {
        let s = &b.storage;
        s.create().unwrap();
        let h = Handle::new(FileKind::Lock, "maintenance-1");
        let wins: Vec<Option<Vec<u8>>> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..6u8)
                .map(|i| {
                    let h = h.clone();
                    sc.spawn(move || {
                        let body = vec![i; 1000 + usize::from(i)];
                        match s.create_new(&h, &body) {
                            Ok(()) => Some(body),
                            Err(StorageError::AlreadyExists(_)) => None,
                            Err(e) => panic!("{}: {e}", b.name),
                        }
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<_> = wins.into_iter().flatten().collect();
        assert_eq!(winners.len(), 1, "{}: exactly one writer wins", b.name);
        assert_eq!(s.get(&h).unwrap(), winners[0], "{}", b.name);
    }
}

#[test]
fn wrong_credentials_and_unknown_places_are_told_apart() {
    // SFTP: a key the server does not know.
    if let Some(dir) = require("SFTP", "LIFEBOAT_SFTP_DIR") {
        let d = tempfile::tempdir().unwrap();
        let key = d.path().join("id_other");
        let ok = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(ok.success());
        let mut t = sftp_target(format!("{dir}/{}", unique("auth"))).unwrap();
        t.ssh_args.extend([
            "-o".to_string(),
            "IdentitiesOnly=yes".to_string(),
            "-i".to_string(),
            key.display().to_string(),
        ]);
        // The test ssh_config names the good key for the host; use the address with the
        // options of the config but our key only.
        t.ssh_args.retain(|a| a != "-F");
        t.ssh_args.retain(|a| !a.ends_with("ssh_config"));
        let known = env("LIFEBOAT_SFTP_KNOWN_HOSTS").unwrap();
        t.ssh_args
            .extend(["-o".to_string(), format!("UserKnownHostsFile={known}")]);
        let s = SftpStorage::new(t, 1);
        match s.get(&Handle::config()) {
            Err(StorageError::Auth(m)) => assert!(m.contains("refused"), "{m}"),
            other => panic!("sftp with a wrong key: {other:?}"),
        }
    }
    // S3: a wrong secret key; an unknown bucket.
    if ensure_bucket().is_some() {
        let s = s3(unique("auth"), Some("not-the-secret"), BUCKET).unwrap();
        match s.get(&Handle::config()) {
            Err(StorageError::Auth(_)) | Err(StorageError::PermissionDenied(_)) => {}
            other => panic!("s3 with a wrong secret: {other:?}"),
        }
        let s = s3(unique("nobucket"), None, "lifeboat-no-such-bucket").unwrap();
        match s.list(FileKind::Snapshot) {
            Err(StorageError::NoSuchLocation(m)) => assert!(m.contains("bucket"), "{m}"),
            other => panic!("s3 with an unknown bucket: {other:?}"),
        }
    }
    // Swift: a wrong key.
    if let Some(SwiftCredentials::V1 { auth_url, user, .. }) = swift_v1() {
        let s = ObjectStorage::swift(
            SwiftTarget {
                container: BUCKET.into(),
                prefix: unique("auth"),
            },
            SwiftCredentials::V1 {
                auth_url,
                user,
                key: Secret::new("wrong-key"),
            },
            1,
        )
        .unwrap();
        match s.get(&Handle::config()) {
            Err(StorageError::Auth(m)) => assert!(!m.contains("wrong-key"), "{m}"),
            other => panic!("swift with a wrong key: {other:?}"),
        }
    }
}
