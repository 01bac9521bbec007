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
