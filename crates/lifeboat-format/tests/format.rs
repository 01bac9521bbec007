//! The public encodings used together, as a repository reader sees them.

use lifeboat_format::*;

#[test]
fn snapshot_json_keeps_every_field_and_ignores_unknown_ones() {
    let s = Snapshot {
        version: SNAPSHOT_VERSION,
        time: "2026-11-23T07:00:00.123456789Z".parse().unwrap(),
        time_end: "2026-11-23T07:01:00Z".parse().unwrap(),
        hostname: "ctrl1".into(),
        username: "root".into(),
        paths: vec!["/etc".into()],
        tags: vec!["nightly".into()],
        tree: Id([3; 32]),
        parent: Some(Id([4; 32])),
        streams: vec![SnapshotStream {
            name: "db.sql".into(),
            command: Some("mariadb-dump x".into()),
            size: 10,
        }],
        skipped: vec![SkippedEntry {
            path: "/etc/shadow".into(),
            error: "Permission denied".into(),
        }],
        summary: SnapshotSummary {
            files: 2,
            ..SnapshotSummary::default()
        },
        run_id: None,
        copied_from: Some(CopiedFrom {
            repository: Id([5; 32]),
            snapshot: Id([6; 32]),
        }),
        program_version: "0.1.0".into(),
    };
    let back = Snapshot::decode(&s.encode()).unwrap();
    assert_eq!(back, s);
    assert!(!back.is_complete());
    let mut v: serde_json::Value = serde_json::from_slice(&s.encode()).unwrap();
    v["field_from_the_future"] = serde_json::json!(1);
    assert_eq!(
        Snapshot::decode(&serde_json::to_vec(&v).unwrap()).unwrap(),
        s
    );
    v["version"] = serde_json::json!(SNAPSHOT_VERSION + 1);
    assert!(matches!(
        Snapshot::decode(&serde_json::to_vec(&v).unwrap()),
        Err(FormatError::Version { .. })
    ));
}

#[test]
fn copied_from_is_written_only_for_copies() {
    let mut v: serde_json::Value = serde_json::json!({
        "version": 1, "time": "2026-11-23T07:00:00Z", "time_end": "2026-11-23T07:00:01Z",
        "hostname": "h", "username": "u", "paths": [], "tree": Id([1; 32]).to_hex(),
        "program_version": "0.1.0",
    });
    // A snapshot written before the field existed reads as no copy, and is written back
    // without it.
    let s = Snapshot::decode(&serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(s.copied_from, None);
    assert!(
        !String::from_utf8(s.encode())
            .unwrap()
            .contains("copied_from")
    );
    assert_eq!(
        s.origin(Id([2; 32]), Id([3; 32])),
        CopiedFrom {
            repository: Id([2; 32]),
            snapshot: Id([3; 32])
        }
    );
    let from = CopiedFrom {
        repository: Id([4; 32]),
        snapshot: Id([5; 32]),
    };
    v["copied_from"] =
        serde_json::json!({"repository": Id([4; 32]).to_hex(), "snapshot": Id([5; 32]).to_hex()});
    let c = Snapshot::decode(&serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(c.copied_from, Some(from));
    assert_eq!(c.origin(Id([2; 32]), Id([3; 32])), from);
}

#[test]
fn config_limits_are_enforced() {
    let ok = RepoConfig {
        version: REPO_VERSION,
        id: Id([1; 32]),
        chunk_min: 256 << 10,
        chunk_avg: 1 << 20,
        chunk_max: 4 << 20,
        compression: 3,
        pack_size: 16 << 20,
    };
    assert_eq!(RepoConfig::decode(&ok.encode()).unwrap(), ok);
    for bad in [
        RepoConfig {
            chunk_avg: 1_000_000,
            ..ok.clone()
        },
        RepoConfig {
            chunk_min: 8 << 20,
            ..ok.clone()
        },
        RepoConfig {
            pack_size: 1024,
            ..ok.clone()
        },
        RepoConfig {
            chunk_max: 32 << 20,
            ..ok.clone()
        },
    ] {
        assert!(RepoConfig::decode(&bad.encode()).is_err(), "{bad:?}");
    }
}

#[test]
fn magics_are_distinct_and_checked() {
    let all = [
        magic::CONFIG,
        magic::KEY,
        magic::PACK,
        magic::INDEX,
        magic::SNAPSHOT,
    ];
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a, b);
        }
        assert!(strip_magic(&a[..], a).is_ok());
    }
    assert!(matches!(
        strip_magic(b"LBPACK02rest", magic::PACK),
        Err(FormatError::Magic { .. })
    ));
    assert!(matches!(
        strip_magic(b"LB", magic::PACK),
        Err(FormatError::Truncated(_))
    ));
}
