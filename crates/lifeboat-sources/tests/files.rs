//! A tree with every kind of metadata Lifeboat keeps, read with `FsSource`, restored with
//! `FsTarget` and compared field by field. Needs root (chown, mknod, trusted.* xattrs), as in CI.

use lifeboat_format::{Node, NodeKind};
use lifeboat_repo::source::{FileSource, RestoreTarget, SourceEntry};
use lifeboat_sources::{ExcludeError, FsSource, FsSourceOptions, FsTarget, FsTargetOptions};
use rustix::fs::{AtFlags, CWD, FileType, Mode, Timespec, Timestamps};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const MIB: u64 = 1 << 20;

fn set_times(path: &Path, atime: (i64, i64), mtime: (i64, i64)) {
    let ts = |(s, n)| Timespec {
        tv_sec: s,
        tv_nsec: n,
    };
    let times = Timestamps {
        last_access: ts(atime),
        last_modification: ts(mtime),
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A POSIX ACL in the kernel's xattr format: version 2, then (tag, perm, id) entries.
fn acl(entries: &[(u16, u16, u32)]) -> Vec<u8> {
    let mut v = 2u32.to_le_bytes().to_vec();
    for &(tag, perm, id) in entries {
        v.extend(tag.to_le_bytes());
        v.extend(perm.to_le_bytes());
        v.extend(id.to_le_bytes());
    }
    v
}
const UNDEFINED: u32 = u32::MAX;

fn access_acl() -> Vec<u8> {
    // user::rw- user:1234:r-- group::r-- mask::r-- other::---
    acl(&[
        (1, 6, UNDEFINED),
        (2, 4, 1234),
        (4, 4, UNDEFINED),
        (0x10, 4, UNDEFINED),
        (0x20, 0, UNDEFINED),
    ])
}

fn default_acl() -> Vec<u8> {
    acl(&[(1, 7, UNDEFINED), (4, 5, UNDEFINED), (0x20, 5, UNDEFINED)])
}

/// Builds the test tree; times are set last, deepest first, so nothing disturbs them.
fn build_tree(root: &Path) {
    let p = |s: &str| root.join(s);
    fs::write(p("file"), b"hello world").unwrap();
    chmod(&p("file"), 0o640);
    xattr::set(p("file"), "user.a", b"1").unwrap();
    xattr::set(p("file"), "trusted.b", b"two").unwrap();
    xattr::set(p("file"), "security.c", b"\x00\xff").unwrap();
    fs::write(p("empty"), b"").unwrap();
    fs::create_dir_all(p("dir/nested/deeper")).unwrap();
    fs::write(p("dir/nested/deeper/leaf"), b"leaf").unwrap();
    std::os::unix::fs::symlink("file", p("link")).unwrap();
    xattr::set(p("link"), "trusted.l", b"on the link").unwrap();
    std::os::unix::fs::symlink("nowhere/at/all", p("dangling")).unwrap();
    fs::write(p("hard1"), b"linked").unwrap();
    fs::hard_link(p("hard1"), p("hard2")).unwrap();
    let sparse = fs::File::create(p("sparse")).unwrap();
    sparse.set_len(8 * MIB).unwrap();
    sparse.write_all_at(&[1u8; 4096], 0).unwrap();
    sparse.write_all_at(&[2u8; 4096], 6 * MIB).unwrap();
    drop(sparse);
    rustix::fs::mknodat(
        CWD,
        p("fifo"),
        FileType::Fifo,
        Mode::from_raw_mode(0o620),
        0,
    )
    .unwrap();
    let null = rustix::fs::makedev(1, 3);
    rustix::fs::mknodat(
        CWD,
        p("null"),
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o666),
        null,
    )
    .unwrap();
    drop(std::os::unix::net::UnixListener::bind(p("sock")).unwrap());
    for (name, mode) in [("setuid", 0o4755), ("setgid", 0o2711)] {
        fs::write(p(name), b"#!/bin/sh\n").unwrap();
        chmod(&p(name), mode);
    }
    fs::create_dir(p("sticky")).unwrap();
    chmod(&p("sticky"), 0o1777);
    fs::write(p("owned"), b"theirs").unwrap();
    std::os::unix::fs::lchown(p("owned"), Some(1234), Some(5678)).unwrap();
    fs::write(p("acl"), b"acl").unwrap();
    chmod(&p("acl"), 0o640);
    xattr::set(p("acl"), "system.posix_acl_access", &access_acl()).unwrap();
    fs::create_dir(p("acldir")).unwrap();
    xattr::set(p("acldir"), "system.posix_acl_default", &default_acl()).unwrap();
    fs::write(root.join(OsStr::from_bytes(b"caf\xe9")), b"latin-1").unwrap();

    let mut all: Vec<PathBuf> = Vec::new();
    collect_paths(root, &mut all);
    // Deepest first: setting a child's times must not come after its directory's.
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (i, path) in all.iter().enumerate() {
        let i = i as i64;
        set_times(
            path,
            (1_600_000_000 + i, 123_456_789),
            (1_500_000_000 + i, 987_654_321),
        );
    }
}

fn collect_paths(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            collect_paths(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

/// Every entry under `root` in walk order (a directory before its children), keyed by the
/// path below `root` as bytes.
fn walk(src: &FsSource, root: &Path) -> Vec<(Vec<u8>, SourceEntry)> {
    fn rec(src: &FsSource, root: &Path, e: SourceEntry, out: &mut Vec<(Vec<u8>, SourceEntry)>) {
        let rel = e
            .path
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        let dir = e.node.is_dir().then(|| e.clone());
        out.push((rel, e));
        if let Some(dir) = dir {
            for child in src.read_dir(&dir).unwrap() {
                rec(src, root, child.unwrap(), out);
            }
        }
    }
    let mut out = Vec::new();
    rec(src, root, src.stat(root).unwrap().unwrap(), &mut out);
    out
}

fn source() -> FsSource {
    FsSource::new(FsSourceOptions::default()).unwrap()
}

fn by_name(entries: &[(Vec<u8>, SourceEntry)]) -> HashMap<Vec<u8>, Node> {
    entries
        .iter()
        .map(|(rel, e)| (rel.clone(), e.node.clone()))
        .collect()
}

#[test]
fn stat_and_read_dir_see_all_metadata() {
    let dir = tempfile::tempdir().unwrap();
    build_tree(dir.path());
    let entries = walk(&source(), dir.path());
    let n = by_name(&entries);
    let node = |name: &[u8]| {
        n.get(name)
            .unwrap_or_else(|| panic!("{} missing", String::from_utf8_lossy(name)))
    };

    let names: Vec<&[u8]> = entries.iter().map(|(r, _)| r.as_slice()).collect();
    let top: Vec<&[u8]> = names
        .iter()
        .copied()
        .filter(|r| !r.is_empty() && !r.contains(&b'/'))
        .collect();
    let mut sorted = top.clone();
    sorted.sort();
    assert_eq!(top, sorted, "children come sorted by name bytes");
    assert!(!n.contains_key(&b"sock"[..]), "sockets are skipped");
    assert_eq!(
        entries.len(),
        21,
        "{:?}",
        names
            .iter()
            .map(|r| String::from_utf8_lossy(r))
            .collect::<Vec<_>>()
    );

    let f = node(b"file");
    assert_eq!(f.name, b"file");
    assert_eq!(
        (f.kind, f.mode, f.size, f.nlink),
        (Some(NodeKind::File), 0o640, 11, 1)
    );
    assert_eq!(
        (f.uid, f.gid, f.user.as_slice(), f.group.as_slice()),
        (0, 0, &b"root"[..], &b"root"[..])
    );
    assert_eq!(f.mtime.nanos, 987_654_321);
    assert_eq!(f.atime.nanos, 123_456_789);
    assert!(f.mtime.secs >= 1_500_000_000 && f.mtime.secs < 1_500_000_100);
    assert!(f.ctime.secs > 1_700_000_000);
    let md = fs::symlink_metadata(dir.path().join("file")).unwrap();
    assert_eq!((f.dev, f.inode), (md.dev(), md.ino()));
    let xattrs: Vec<(&[u8], &[u8])> = f
        .xattrs
        .iter()
        .map(|(k, v)| (k.as_slice(), v.as_slice()))
        .collect();
    assert_eq!(
        xattrs,
        vec![
            (&b"security.c"[..], &b"\x00\xff"[..]),
            (b"trusted.b", b"two"),
            (b"user.a", b"1")
        ]
    );

    assert_eq!(
        (node(b"empty").size, node(b"empty").kind),
        (0, Some(NodeKind::File))
    );
    assert_eq!(node(b"dir/nested/deeper/leaf").size, 4);
    assert_eq!(node(b"dir/nested").kind, Some(NodeKind::Dir));
    let link = node(b"link");
    assert_eq!(
        (link.kind, link.target.as_slice(), link.size),
        (Some(NodeKind::Symlink), &b"file"[..], 4)
    );
    assert_eq!(
        link.xattrs,
        vec![(b"trusted.l".to_vec(), b"on the link".to_vec())],
        "the link's own xattrs"
    );
    assert_eq!(node(b"dangling").target, b"nowhere/at/all");
    let (h1, h2) = (node(b"hard1"), node(b"hard2"));
    assert_eq!((h1.nlink, h2.nlink, h1.inode), (2, 2, h2.inode));
    assert_eq!(node(b"fifo").kind, Some(NodeKind::Fifo));
    let null = node(b"null");
    assert_eq!(
        (null.kind, null.rdev, null.size),
        (Some(NodeKind::CharDevice), rustix::fs::makedev(1, 3), 0)
    );
    assert_eq!(node(b"setuid").mode, 0o4755);
    assert_eq!(node(b"setgid").mode, 0o2711);
    assert_eq!(node(b"sticky").mode, 0o1777);
    let owned = node(b"owned");
    assert_eq!((owned.uid, owned.gid), (1234, 5678));
    let acl = node(b"acl");
    assert_eq!(acl.mode, 0o640);
    assert_eq!(
        acl.xattrs,
        vec![(b"system.posix_acl_access".to_vec(), access_acl())]
    );
    assert_eq!(
        node(b"acldir").xattrs,
        vec![(b"system.posix_acl_default".to_vec(), default_acl())]
    );
    assert_eq!(node(b"caf\xe9").name, b"caf\xe9");

    // The sparse file: two 4 KiB data regions, at 0 and 6 MiB, rounded to file system blocks.
    let sparse = &entries.iter().find(|(r, _)| r == b"sparse").unwrap().1;
    assert_eq!(sparse.node.size, 8 * MIB);
    let regions = source().open(sparse).unwrap().data_regions().unwrap();
    assert_eq!(regions.len(), 2, "{regions:?}");
    let (a, b) = (regions[0], regions[1]);
    assert!(a.0 == 0 && a.1 >= 4096 && a.1 <= MIB, "{regions:?}");
    assert!(
        b.0 <= 6 * MIB && b.0 + b.1 >= 6 * MIB + 4096 && b.0 + b.1 <= 7 * MIB,
        "{regions:?}"
    );
}

/// Restores `entries` under `dst` the way the restorer does: contents as they come, hard links
/// to the first name seen, directories' metadata last and deepest first.
fn restore(src: &FsSource, entries: &[(Vec<u8>, SourceEntry)], dst: &Path) {
    let target = FsTarget::new(FsTargetOptions::default());
    let mut inodes: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut dirs = Vec::new();
    for (rel, e) in entries {
        let path = if rel.is_empty() {
            dst.to_path_buf()
        } else {
            dst.join(OsStr::from_bytes(rel))
        };
        let node = &e.node;
        match node.kind() {
            NodeKind::Dir => {
                target.create_dir(&path).unwrap();
                dirs.push((path, node.clone()));
                continue;
            }
            NodeKind::File if node.nlink > 1 && inodes.contains_key(&(node.dev, node.inode)) => {
                target
                    .hard_link(&inodes[&(node.dev, node.inode)], &path)
                    .unwrap();
                continue;
            }
            NodeKind::File => {
                inodes.insert((node.dev, node.inode), path.clone());
                let w = target.create_file(&path, node, true).unwrap();
                let mut r = src.open(e).unwrap();
                for (start, len) in r.data_regions().unwrap() {
                    let mut buf = vec![0u8; len as usize];
                    let mut done = 0;
                    while done < buf.len() {
                        let n = r.read_at(start + done as u64, &mut buf[done..]).unwrap();
                        assert!(n > 0);
                        done += n;
                    }
                    w.write_at(start, &buf).unwrap();
                }
                w.finish().unwrap();
            }
            _ => target.create_special(&path, node).unwrap(),
        }
        target.set_metadata(&path, node).unwrap();
    }
    for (path, node) in dirs.iter().rev() {
        target.set_metadata(path, node).unwrap();
    }
}

#[test]
fn restore_reproduces_every_field() {
    let (src_dir, dst_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    build_tree(src_dir.path());
    let src = source();
    let before = walk(&src, src_dir.path());
    restore(&src, &before, dst_dir.path());
    let after = by_name(&walk(&src, dst_dir.path()));
    assert_eq!(after.len(), before.len());
    for (rel, e) in &before {
        let (want, got) = (&e.node, &after[rel]);
        let what = String::from_utf8_lossy(rel);
        if !rel.is_empty() {
            assert_eq!(got.name, want.name, "{what}");
        }
        assert_eq!(got.kind, want.kind, "{what}");
        assert_eq!(got.mode, want.mode, "mode of {what}");
        assert_eq!(
            (got.uid, got.gid, &got.user, &got.group),
            (want.uid, want.gid, &want.user, &want.group),
            "{what}"
        );
        assert_eq!(got.mtime, want.mtime, "mtime of {what}");
        assert_eq!(got.atime, want.atime, "atime of {what}");
        assert_eq!(
            (got.size, got.nlink, got.rdev),
            (want.size, want.nlink, want.rdev),
            "{what}"
        );
        assert_eq!(got.target, want.target, "{what}");
        assert_eq!(got.xattrs, want.xattrs, "xattrs of {what}");
        if want.kind() == NodeKind::File {
            let read = |root: &Path| fs::read(root.join(OsStr::from_bytes(rel))).unwrap();
            assert!(
                read(dst_dir.path()) == read(src_dir.path()),
                "content of {what}"
            );
        }
    }
    assert_eq!(after[&b"hard1"[..]].inode, after[&b"hard2"[..]].inode);
    let blocks = fs::metadata(dst_dir.path().join("sparse"))
        .unwrap()
        .blocks();
    assert!(
        blocks * 512 <= 256 * 1024,
        "holes were filled: {blocks} blocks"
    );
}

#[test]
fn excludes_leave_entries_out() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    for d in ["sub", "cache", "build/out", "other/build"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    for f in [
        "a.log",
        "keep.txt",
        "sub/b.log",
        "sub/keep.txt",
        "cache/CACHEDIR.TAG",
        "cache/data",
        "build/out/x",
    ] {
        fs::write(root.join(f), b"x").unwrap();
    }
    fs::write(root.join("other/build/y"), b"y").unwrap();
    let listing = |opts: FsSourceOptions| -> Vec<String> {
        let src = FsSource::new(opts).unwrap();
        walk(&src, &root)
            .into_iter()
            .map(|(r, _)| String::from_utf8(r).unwrap())
            .collect()
    };
    let all = listing(FsSourceOptions::default());
    assert_eq!(all.len(), 15, "{all:?}");
    let without = |gone: &[&str]| -> Vec<String> {
        all.iter()
            .filter(|r| {
                !gone
                    .iter()
                    .any(|g| r == g || r.starts_with(&format!("{g}/")))
            })
            .cloned()
            .collect()
    };

    let globs = FsSourceOptions {
        excludes: vec!["*.log".into(), "build/out".into()],
        ..Default::default()
    };
    assert_eq!(
        listing(globs),
        without(&["a.log", "sub/b.log", "build/out"])
    );

    let anchored = format!("{}/sub/*", root.display());
    let opts = FsSourceOptions {
        excludes: vec![anchored, "build/".into()],
        ..Default::default()
    };
    assert_eq!(
        listing(opts),
        without(&["sub/b.log", "sub/keep.txt", "build", "other/build"])
    );

    let file = dir.path().join("excludes");
    fs::write(&file, "# what not to keep\n\nkeep.txt\n").unwrap();
    let opts = FsSourceOptions {
        exclude_files: vec![file],
        ..Default::default()
    };
    assert_eq!(listing(opts), without(&["keep.txt", "sub/keep.txt"]));

    let marker = FsSourceOptions {
        exclude_if_present: vec!["CACHEDIR.TAG".into()],
        ..Default::default()
    };
    assert_eq!(listing(marker.clone()), without(&["cache"]));
    let src = FsSource::new(marker).unwrap();
    assert!(src.stat(&root.join("cache")).unwrap().is_none());
    let cache = source().stat(&root.join("cache")).unwrap().unwrap();
    assert!(src.read_dir(&cache).unwrap().is_empty());

    let bad = FsSource::new(FsSourceOptions {
        excludes: vec!["[oops".into()],
        ..Default::default()
    });
    assert!(matches!(bad, Err(ExcludeError::Pattern { ref pattern, .. }) if pattern == "[oops"));
    let missing = FsSourceOptions {
        exclude_files: vec![dir.path().join("nope")],
        ..Default::default()
    };
    let err = FsSource::new(missing).err().unwrap();
    assert!(
        matches!(err, ExcludeError::File { .. }) && err.to_string().contains("nope"),
        "{err}"
    );
}

#[test]
fn a_file_gone_before_open_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("brief"), b"here and gone").unwrap();
    let src = source();
    let root = src.stat(dir.path()).unwrap().unwrap();
    let children = src.read_dir(&root).unwrap();
    let entry = children[0].as_ref().unwrap();
    fs::remove_file(&entry.path).unwrap();
    let err = src.open(entry).err().unwrap();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.op, "open");
    assert_eq!(err.path, entry.path);
}

#[test]
fn one_file_system_keeps_mount_points_empty() {
    let root_dev = fs::symlink_metadata("/").unwrap().dev();
    if fs::symlink_metadata("/proc")
        .map(|m| m.dev())
        .unwrap_or(root_dev)
        == root_dev
    {
        eprintln!("/proc is not a separate mount here; nothing to test");
        return;
    }
    let one = FsSource::new(FsSourceOptions {
        one_file_system: true,
        ..Default::default()
    })
    .unwrap();
    let root = one.stat(Path::new("/")).unwrap().unwrap();
    let proc = one
        .read_dir(&root)
        .unwrap()
        .into_iter()
        .flatten()
        .find(|e| e.node.name == b"proc")
        .unwrap();
    assert!(proc.node.is_dir());
    assert!(one.read_dir(&proc).unwrap().is_empty());
    assert!(!source().read_dir(&proc).unwrap().is_empty());
    // Named on its own, a mount point is a top-level path and is read.
    let proc_top = one.stat(Path::new("/proc")).unwrap().unwrap();
    assert!(!one.read_dir(&proc_top).unwrap().is_empty());
}
