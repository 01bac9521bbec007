//! Writes the seed corpora in `fuzz/seeds/<target>/`: small, valid encodings of each
//! structure, so that fuzzing starts from inputs that get past the first checks. Sealed seeds
//! (`pack`, `sealed_file`) use the fixed fuzzing key of `src/fuzz.key`.
//!
//! Deterministic: running it again rewrites the same bytes. Every seed is decoded again
//! before it is written, so a format change that breaks a seed fails here, loudly.
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example make-seeds
//!     cargo run --manifest-path fuzz/Cargo.toml --example make-seeds -- --new-key
//!
//! `--new-key` first writes a fresh random `src/fuzz.key` (cheap Argon2 parameters, password
//! `lifeboat_fuzz::KEY_PASSWORD`); run it once more without the flag to reseal the seeds with
//! the new key (the key is compiled into the targets, so the binary must be rebuilt).

use lifeboat_crypto::{MasterKey, SALT_LEN, TRAILER_COUNTER};
use lifeboat_format::{
    BadBlob, BlobEntry, BlobType, Compression, Content, Health, Id, IndexPack, IndexSegment,
    KdfParams, KeyFile, Keyring, Lease, LeaseKind, Mark, MarkReason, Marks, Node, NodeKind,
    RepoConfig, SkippedEntry, Snapshot, SnapshotStream, SnapshotSummary, Timestamp, Tree,
    decode_blob_entries, encode_blob_entries, magic,
};
use lifeboat_repo::PACK_HEADER_LEN;
use lifeboat_repo::saver::parse_pack;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if std::env::args().any(|a| a == "--new-key") {
        let kdf = KdfParams {
            m_cost_kib: 8,
            t_cost: 1,
            p_cost: 1,
        };
        let kf = MasterKey::generate()
            .and_then(|m| m.wrap(lifeboat_fuzz::KEY_PASSWORD, kdf))
            .expect("generating the fuzzing key");
        std::fs::write(root.join("src/fuzz.key"), kf.encode()).expect("writing src/fuzz.key");
        println!(
            "wrote src/fuzz.key; run make-seeds again (without --new-key) to reseal the seeds"
        );
        return;
    }
    let seeds = root.join("seeds");
    let mut total = 0;
    let mut out = |target: &str, files: Vec<(&str, Vec<u8>)>| {
        let dir = seeds.join(target);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("removing old seeds");
        }
        std::fs::create_dir_all(&dir).expect("creating the seed directory");
        for (name, bytes) in files {
            total += bytes.len();
            write(&dir.join(name), &bytes);
        }
    };

    // tree
    let trees = [("empty", Tree::default()), ("small", sample_tree())];
    out(
        "tree",
        trees
            .iter()
            .map(|(name, t)| {
                let b = t.encode();
                assert_eq!(Tree::decode(&b).as_ref(), Ok(t), "tree seed {name}");
                (*name, b)
            })
            .collect(),
    );

    // index_segment
    let segs = [
        ("empty", IndexSegment::default()),
        ("two-packs", sample_segment()),
    ];
    out(
        "index_segment",
        segs.iter()
            .map(|(name, s)| {
                let b = s.encode();
                assert_eq!(
                    IndexSegment::decode(&b).as_ref(),
                    Ok(s),
                    "index seed {name}"
                );
                (*name, b)
            })
            .collect(),
    );

    // blob_entries: data_end (u64 LE) then the trailer plaintext
    let (entries, end) = tiled_entries(
        PACK_HEADER_LEN as u32,
        &[
            (BlobType::Data, 5),
            (BlobType::Data, 300),
            (BlobType::Tree, 64),
        ],
    );
    let blob_seeds: Vec<(&str, Vec<u8>)> = [
        ("empty", Vec::new(), PACK_HEADER_LEN as u64),
        ("three", entries, end),
    ]
    .into_iter()
    .map(|(name, entries, end)| {
        let plain = encode_blob_entries(&entries);
        assert_eq!(
            decode_blob_entries(&plain, PACK_HEADER_LEN as u64, end),
            Ok(entries)
        );
        let mut b = end.to_le_bytes().to_vec();
        b.extend_from_slice(&plain);
        (name, b)
    })
    .collect();
    out("blob_entries", blob_seeds);

    // keyfile
    let default_params = KeyFile {
        kdf: KdfParams::DEFAULT,
        salt: [0x11; 32],
        nonce: [0x22; 12],
        wrapped: vec![0x33; 80],
    }
    .encode();
    // Version 2 (after a key rotation): a sealed keyring of 76 + 40 x generations bytes plus
    // the tag. Not really sealed (the target does not unwrap), only the right length.
    let v2 = |generations: usize, fill: u8| {
        KeyFile {
            kdf: KdfParams {
                m_cost_kib: 8,
                t_cost: 1,
                p_cost: 1,
            },
            salt: [fill; 32],
            nonce: [fill ^ 0xff; 12],
            wrapped: vec![fill; 76 + 40 * generations + 16],
        }
        .encode()
    };
    let key_seeds = vec![
        ("fuzz-key", lifeboat_fuzz::KEY_FILE.to_vec()),
        ("default-params", default_params),
        ("v2-one-generation", v2(1, 0x44)),
        ("v2-three-generations", v2(3, 0x55)),
    ];
    for (name, b) in &key_seeds {
        let kf = KeyFile::decode(b).unwrap_or_else(|e| panic!("key seed {name}: {e}"));
        assert_eq!(kf.encode(), *b, "key seed {name}");
        assert_eq!(
            kf.is_keyring(),
            b.starts_with(magic::KEY_V2),
            "key seed {name}"
        );
    }
    out("keyfile", key_seeds);

    // keyring: the plaintext of a version-2 key file
    let ring = |current: u64, tags: &[u64]| Keyring {
        master: [0x5a; 64],
        current,
        generations: tags.iter().map(|&t| (t, [t as u8; 32])).collect(),
    };
    let rings = [
        ("no-generations", ring(0, &[])),
        (
            "one-generation",
            ring(0x1122_3344_5566_7788, &[0x1122_3344_5566_7788]),
        ),
        // Generations are kept in the order of rotation, not sorted; the current one need
        // not be the last.
        ("three-generations", ring(7, &[u64::MAX, 7, 3])),
        ("current-derived", ring(0, &[9])),
    ];
    out(
        "keyring",
        rings
            .iter()
            .map(|(name, k)| {
                let b = k.encode();
                assert_eq!(Keyring::decode(&b).as_ref(), Ok(k), "keyring seed {name}");
                (*name, b)
            })
            .collect(),
    );

    // marks
    let mark = |b: u8, marked_at: i64, reason: MarkReason| Mark {
        pack: Id([b; 32]),
        marked_at,
        reason,
    };
    let marks = [
        ("empty", Marks::default()),
        (
            "one",
            Marks {
                written_at: 1,
                marks: vec![mark(0xab, -1, MarkReason::Repacked)],
            },
        ),
        (
            "three",
            Marks {
                written_at: 1_800_000_000,
                marks: vec![
                    mark(0x01, 1_799_990_000, MarkReason::Unreferenced),
                    mark(0x80, 1_799_999_999, MarkReason::Repacked),
                    mark(0xfe, i64::MAX, MarkReason::Unindexed),
                ],
            },
        ),
    ];
    out(
        "marks",
        marks
            .iter()
            .map(|(name, m)| {
                let b = m.encode();
                assert_eq!(Marks::decode(&b).as_ref(), Ok(m), "marks seed {name}");
                (*name, b)
            })
            .collect(),
    );

    // health
    let bad = |blob: u8, pack: u8, found_at: i64| BadBlob {
        blob: Id([blob; 32]),
        pack: Id([pack; 32]),
        found_at,
    };
    let healths = [
        ("empty", Health::default()),
        (
            "one-verified",
            Health {
                written_at: 10,
                verified: vec![(Id([2; 32]), 4)],
                bad: vec![],
            },
        ),
        (
            "several",
            Health {
                written_at: 1_800_000_000,
                verified: vec![
                    (Id([1; 32]), 1_799_000_000),
                    (Id([2; 32]), -3),
                    (Id([0xf0; 32]), 1_800_000_000),
                ],
                bad: vec![bad(9, 2, 6), bad(9, 3, 7), bad(0xa0, 2, i64::MIN)],
            },
        ),
    ];
    out(
        "health",
        healths
            .iter()
            .map(|(name, h)| {
                let b = h.encode();
                assert_eq!(Health::decode(&b).as_ref(), Ok(h), "health seed {name}");
                (*name, b)
            })
            .collect(),
    );

    // lease (JSON)
    let t = |s: &str| s.parse::<jiff::Timestamp>().expect("timestamp");
    let leases = [
        (
            "maintenance.json",
            Lease {
                version: 1,
                kind: LeaseKind::Maintenance,
                token: "00ff00ff00ff00ff00ff00ff00ff00ff".into(),
                hostname: "ctrl1".into(),
                username: "root".into(),
                pid: 4242,
                command: "prune".into(),
                started: t("2026-11-23T07:00:00Z"),
                renewed: t("2026-11-23T07:05:00.5Z"),
                expires: t("2026-11-23T07:20:00.5Z"),
            },
        ),
        (
            "backup.json",
            Lease {
                version: 1,
                kind: LeaseKind::Backup,
                token: "a1b2c3".into(),
                hostname: "h\u{f4}te \"q\"".into(),
                username: "".into(),
                pid: u32::MAX,
                command: "backup /etc".into(),
                started: t("1970-01-01T00:00:00Z"),
                renewed: t("2026-11-23T07:00:00.123456789Z"),
                expires: t("9999-12-30T00:00:00Z"),
            },
        ),
    ];
    out(
        "lease",
        leases
            .iter()
            .map(|(name, l)| {
                let b = l.encode();
                assert_eq!(Lease::decode(&b).as_ref(), Ok(l), "lease seed {name}");
                (*name, b)
            })
            .collect(),
    );

    // snapshot (the target runs both JSON decoders on every input)
    let full = sample_snapshot();
    let minimal = br#"{"version":1,"time":"1970-01-01T00:00:00Z","time_end":"1970-01-01T00:00:00Z","hostname":"","username":"","paths":[],"tree":"0000000000000000000000000000000000000000000000000000000000000000","program_version":""}"#.to_vec();
    let config = sample_config();
    assert_eq!(Snapshot::decode(&full.encode()).as_ref(), Ok(&full));
    Snapshot::decode(&minimal).expect("minimal snapshot seed");
    assert_eq!(RepoConfig::decode(&config.encode()).as_ref(), Ok(&config));
    out(
        "snapshot",
        vec![
            ("full.json", full.encode()),
            ("minimal.json", minimal),
            ("config.json", config.encode()),
        ],
    );

    // pack: sealed like the packer seals them
    let packs = vec![
        ("empty", sample_pack(&[])),
        (
            "three-blobs",
            sample_pack(&[b"hello", &[0xa5; 200], &sample_tree().encode()]),
        ),
    ];
    for (name, p) in &packs {
        parse_pack(lifeboat_fuzz::keys(), p).unwrap_or_else(|e| panic!("pack seed {name}: {e}"));
    }
    out("pack", packs);

    // sealed_file: config, index segment and snapshot, sealed as the repository seals them
    // (the repository compresses index and snapshot plaintexts; open_file does not care).
    let mut config_header = magic::CONFIG.to_vec();
    config_header.extend_from_slice(&config.id.0);
    let sealed = vec![
        ("config", seal(&config_header, &config.encode(), 1)),
        ("index", seal(magic::INDEX, &sample_segment().encode(), 2)),
        (
            "snapshot",
            seal(magic::SNAPSHOT, &minimal_snapshot_json(), 3),
        ),
    ];
    for ((name, s), header) in
        sealed
            .iter()
            .zip([&config_header[..], magic::INDEX, magic::SNAPSHOT])
    {
        lifeboat_fuzz::keys()
            .open_file(header, s, "seed")
            .unwrap_or_else(|e| panic!("sealed seed {name}: {e}"));
    }
    out("sealed_file", sealed);

    println!("wrote {total} bytes of seeds under {}", seeds.display());
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn ts(secs: i64, nanos: u32) -> Timestamp {
    Timestamp { secs, nanos }
}

fn node(name: &[u8], kind: NodeKind) -> Node {
    Node {
        name: name.to_vec(),
        kind: Some(kind),
        mode: 0o644,
        uid: 1000,
        gid: 100,
        user: b"alice".to_vec(),
        group: b"users".to_vec(),
        mtime: ts(1_700_000_000, 123_456_789),
        atime: ts(-5, 0),
        ctime: ts(1_700_000_001, 999_999_999),
        dev: 2049,
        inode: 42,
        nlink: 1,
        ..Node::default()
    }
}

fn sample_tree() -> Tree {
    let mut file = node(b"a.txt", NodeKind::File);
    file.mode = 0o4755;
    file.size = 70_000;
    file.xattrs = vec![
        (
            b"system.posix_acl_access".to_vec(),
            vec![2, 0, 0, 0, 1, 0, 6, 0],
        ),
        (b"user.k".to_vec(), b"v".to_vec()),
    ];
    file.content = vec![
        Content::Chunk(Id([9; 32])),
        Content::Hole(4096),
        Content::Chunk(Id([10; 32])),
    ];
    let mut dir = node(b"bin", NodeKind::Dir);
    dir.mode = 0o755;
    dir.nlink = 2;
    dir.subtree = Some(Id([7; 32]));
    let mut link = node(b"link", NodeKind::Symlink);
    link.target = b"../a.txt".to_vec();
    link.size = 8;
    let mut chr = node(b"null", NodeKind::CharDevice);
    chr.rdev = 0x103;
    chr.user = Vec::new();
    let mut blk = node(b"sda", NodeKind::BlockDevice);
    blk.rdev = 0x800;
    let fifo = node(b"pipe", NodeKind::Fifo);
    let mut odd = node(b"caf\xe9", NodeKind::File);
    odd.uid = u32::MAX;
    odd.mtime = ts(i64::MIN, 0);
    let mut t = Tree {
        nodes: vec![file, dir, link, chr, blk, fifo, odd],
    };
    t.sort();
    t
}

/// Entries of blobs of these types and stored lengths, laid end to end from `start`;
/// returns them and where the last one ends. Even ones are uncompressed, odd ones zstd.
fn tiled_entries(start: u32, blobs: &[(BlobType, u32)]) -> (Vec<BlobEntry>, u64) {
    let mut off = start;
    let entries = blobs
        .iter()
        .enumerate()
        .map(|(i, &(blob_type, stored_len))| {
            let zstd = i % 2 == 1;
            let e = BlobEntry {
                id: Id([i as u8 + 1; 32]),
                blob_type,
                compression: if zstd {
                    Compression::Zstd
                } else {
                    Compression::None
                },
                offset: off,
                stored_len: stored_len + 16,
                raw_len: if zstd { stored_len * 3 } else { stored_len },
            };
            off += stored_len + 16;
            e
        })
        .collect();
    (entries, off as u64)
}

fn sample_segment() -> IndexSegment {
    let (a, a_end) = tiled_entries(40, &[(BlobType::Data, 100), (BlobType::Data, 2000)]);
    let (b, b_end) = tiled_entries(40, &[(BlobType::Tree, 50)]);
    IndexSegment {
        packs: vec![
            IndexPack {
                pack: Id([0xaa; 32]),
                pack_len: a_end + 4 + 4 + 2 * 46 + 16,
                blobs: a,
            },
            IndexPack {
                pack: Id([0xbb; 32]),
                pack_len: b_end + 4 + 4 + 46 + 16,
                blobs: b,
            },
        ],
    }
}

fn sample_snapshot() -> Snapshot {
    let t = |s: &str| s.parse::<jiff::Timestamp>().expect("timestamp");
    Snapshot {
        version: 1,
        time: t("2026-11-23T07:00:00.123456789Z"),
        time_end: t("2026-11-23T07:01:02Z"),
        hostname: "host".into(),
        username: "root".into(),
        paths: vec!["/etc".into(), "/home/alice".into()],
        tags: vec!["daily".into()],
        tree: Id([1; 32]),
        parent: Some(Id([2; 32])),
        streams: vec![
            SnapshotStream {
                name: "stdin".into(),
                command: None,
                size: 12,
            },
            SnapshotStream {
                name: "db.sql".into(),
                command: Some("pg_dump db".into()),
                size: 4096,
            },
        ],
        skipped: vec![SkippedEntry {
            path: "/etc/shadow-".into(),
            error: "permission denied".into(),
        }],
        summary: SnapshotSummary {
            files: 10,
            dirs: 2,
            other: 1,
            files_unchanged: 3,
            bytes_read: 1000,
            bytes_total: 5000,
            blobs_added: 4,
            bytes_added: 900,
            bytes_stored: 700,
        },
        run_id: Some("run-1".into()),
        copied_from: None,
        program_version: "0.1.0".into(),
    }
}

fn minimal_snapshot_json() -> Vec<u8> {
    let mut s = sample_snapshot();
    s.streams.clear();
    s.skipped.clear();
    s.encode()
}

fn sample_config() -> RepoConfig {
    RepoConfig {
        version: 1,
        id: Id([0x42; 32]),
        chunk_min: 256 << 10,
        chunk_avg: 1 << 20,
        chunk_max: 4 << 20,
        compression: 3,
        pack_size: 16 << 20,
    }
}

/// A pack as the packer writes it: magic, salt, blobs sealed with their offset as nonce
/// counter, the sealed trailer and its length. Blobs are stored uncompressed.
fn sample_pack(blobs: &[&[u8]]) -> Vec<u8> {
    let keys = lifeboat_fuzz::keys();
    let salt = [blobs.len() as u8; SALT_LEN];
    let cipher = keys.file_cipher(&salt).expect("pack cipher");
    let mut buf = magic::PACK.to_vec();
    buf.extend_from_slice(&salt);
    let mut entries = Vec::new();
    for (i, plain) in blobs.iter().enumerate() {
        let offset = buf.len() as u32;
        let mut sealed = plain.to_vec();
        cipher
            .seal(offset as u64, b"", &mut sealed)
            .expect("seal blob");
        entries.push(BlobEntry {
            id: keys.blob_id(plain),
            blob_type: if i == 2 {
                BlobType::Tree
            } else {
                BlobType::Data
            },
            compression: Compression::None,
            offset,
            stored_len: sealed.len() as u32,
            raw_len: plain.len() as u32,
        });
        buf.extend_from_slice(&sealed);
    }
    let mut trailer = encode_blob_entries(&entries);
    cipher
        .seal(TRAILER_COUNTER, magic::PACK, &mut trailer)
        .expect("seal trailer");
    buf.extend_from_slice(&trailer);
    buf.extend_from_slice(&(trailer.len() as u32).to_le_bytes());
    buf
}

/// What `Keys::seal_file` writes, but with a fixed salt so the seeds are reproducible:
/// `header | salt | AES-GCM(plaintext) with counter 0 and the header as AAD | tag`.
fn seal(header: &[u8], plaintext: &[u8], salt_byte: u8) -> Vec<u8> {
    let salt = [salt_byte; SALT_LEN];
    let mut body = plaintext.to_vec();
    lifeboat_fuzz::keys()
        .file_cipher(&salt)
        .expect("file cipher")
        .seal(0, header, &mut body)
        .expect("seal");
    let mut out = header.to_vec();
    out.extend_from_slice(&salt);
    out.extend_from_slice(&body);
    out
}
