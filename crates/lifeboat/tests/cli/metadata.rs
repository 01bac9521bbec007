//! A tree with every kind of entry and metadata, backed up and restored, compared field by
//! field; hard links restored as hard links, sparse files as sparse files.

use crate::support::*;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

fn set_times(p: &Path, secs: i64, nanos: i64) {
    let t = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: nanos,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        p,
        &rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .expect("utimensat");
}

/// Builds the metadata test tree under `root`.
pub fn build_tree(root: &Path) {
    fs::create_dir_all(root.join("dir/nested/deeper")).unwrap();
    fs::write(root.join("plain.txt"), b"hello\n").unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join("dir/nested/big.bin"), bytes(3 << 20, 11)).unwrap();
    fs::write(root.join("dir/nested/deeper/small"), bytes(1000, 12)).unwrap();
    symlink("plain.txt", root.join("link")).unwrap();
    symlink("/nonexistent/target", root.join("dangling")).unwrap();
    fs::write(root.join("hard1"), b"linked content").unwrap();
    fs::hard_link(root.join("hard1"), root.join("dir/hard2")).unwrap();
    // Sparse: 16 MiB apparent, data at 0 and at 10 MiB.
    {
        let f = fs::File::create(root.join("sparse.img")).unwrap();
        f.set_len(16 << 20).unwrap();
        use std::os::unix::fs::FileExt;
        f.write_all_at(&bytes(8192, 13), 0).unwrap();
        f.write_all_at(&bytes(8192, 14), 10 << 20).unwrap();
    }
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("null-dev"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(root.join("socket")).unwrap();
    std::mem::forget(_sock);
    let setuid = root.join("setuid-prog");
    fs::write(&setuid, b"#!/bin/sh\n").unwrap();
    std::os::unix::fs::chown(&setuid, Some(1234), Some(5678)).unwrap();
    fs::set_permissions(&setuid, fs::Permissions::from_mode(0o4755)).unwrap();
    fs::set_permissions(root.join("dir"), fs::Permissions::from_mode(0o2775)).unwrap();
    fs::create_dir(root.join("sticky")).unwrap();
    fs::set_permissions(root.join("sticky"), fs::Permissions::from_mode(0o1777)).unwrap();
    let x = root.join("plain.txt");
    xattr::set(&x, "user.comment", b"a user attribute").unwrap();
    xattr::set(&x, "trusted.secret", b"\x00\x01binary").unwrap();
    xattr::set(&x, "security.label", b"lbl").unwrap();
    // A POSIX ACL granting uid 1234 read access (the kernel's xattr form of `setfacl -m u:1234:r`).
    let mut acl = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in [
        (1u16, 6u16, u32::MAX),
        (2, 4, 1234),
        (4, 4, u32::MAX),
        (0x10, 4, u32::MAX),
        (0x20, 4, u32::MAX),
    ] {
        acl.extend(tag.to_le_bytes());
        acl.extend(perm.to_le_bytes());
        acl.extend(id.to_le_bytes());
    }
    xattr::set(root.join("empty"), "system.posix_acl_access", &acl).unwrap();
    fs::write(
        root.join(OsStr::from_bytes(b"caf\xe9-latin1.txt")),
        b"not utf-8 name",
    )
    .unwrap();
    fs::write(root.join("dir/nested/with space & 'quote'"), b"q").unwrap();
    set_times(&root.join("plain.txt"), 1_600_000_000, 123_456_789);
    set_times(&root.join("link"), 1_500_000_000, 987_654_321);
    for d in ["dir/nested/deeper", "dir/nested", "dir", "sticky"] {
        set_times(&root.join(d), 1_400_000_000, 555);
    }
}

#[test]
fn every_kind_of_entry_round_trips() {
    let env = Env::new();
    let src = env.path("src");
    build_tree(&src);
    let id = env.backup(&[src.to_str().unwrap()]);
    let ls = env.ok(&["ls", &id, "--json"]);
    assert!(!ls.contains("\"socket\""), "sockets are never stored");
    let (_, _, err) = env.run(&["backup", src.to_str().unwrap()]);
    assert!(
        err.contains("note: 1 socket(s) not stored") && err.contains("/socket"),
        "{err}"
    );
    assert!(
        ls.contains("caf\\\\xe9"),
        "non-UTF-8 names are shown escaped: {ls}"
    );

    let out = env.path("out");
    env.ok(&[
        "restore",
        &id,
        "--target",
        out.to_str().unwrap(),
        "--sparse",
        "--verify",
    ]);
    let back = restored(&out, &src);
    // atime with nanoseconds, read before anything (readlink included) touches it.
    let l = fs::symlink_metadata(back.join("link")).unwrap();
    assert_eq!((l.atime(), l.atime_nsec()), (1_500_000_000, 987_654_321));
    fs::remove_file(src.join("socket")).unwrap();
    assert_same_tree(&src, &back);

    // Hard links come back as one inode with two names.
    let (a, b) = (
        fs::metadata(back.join("hard1")).unwrap(),
        fs::metadata(back.join("dir/hard2")).unwrap(),
    );
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
    // The sparse file is sparse again: 16 KiB of data, not 16 MiB of blocks.
    let sp = fs::metadata(back.join("sparse.img")).unwrap();
    assert_eq!(sp.len(), 16 << 20);
    assert!(
        sp.blocks() * 512 < 1 << 20,
        "restored sparse file uses {} bytes",
        sp.blocks() * 512
    );
}

#[test]
fn restore_without_sparse_writes_zeros_and_dump_streams_content() {
    let env = Env::new();
    let src = env.path("src");
    build_tree(&src);
    let id = env.backup(&[src.to_str().unwrap()]);
    let out = env.path("out");
    env.ok(&[
        "restore",
        &id,
        "--target",
        out.to_str().unwrap(),
        "--include",
        "sparse.img",
    ]);
    let back = restored(&out, &src);
    assert_eq!(
        fs::read(back.join("sparse.img")).unwrap(),
        fs::read(src.join("sparse.img")).unwrap()
    );
    assert!(
        !back.join("plain.txt").exists(),
        "--include restores only what matches"
    );

    let dumped = env
        .cmd()
        .args([
            "dump",
            &id,
            &format!("{}/dir/nested/big.bin", src.display()),
        ])
        .output()
        .unwrap();
    assert!(dumped.status.success());
    assert_eq!(dumped.stdout, bytes(3 << 20, 11));
}

#[test]
fn dump_of_a_directory_is_a_tar_with_xattrs() {
    let env = Env::new();
    let src = env.path("src");
    build_tree(&src);
    fs::remove_file(src.join("socket")).unwrap();
    let id = env.backup(&[src.to_str().unwrap()]);
    let tar = env
        .cmd()
        .args(["dump", &id, src.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        tar.status.success(),
        "{}",
        String::from_utf8_lossy(&tar.stderr)
    );
    let x = env.path("x");
    fs::create_dir(&x).unwrap();
    let mut child = Command::new("tar")
        .args([
            "--xattrs",
            "--xattrs-include=*",
            "--acls",
            "--numeric-owner",
            "-xpf",
            "-",
            "-C",
        ])
        .arg(&x)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&tar.stdout).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        fs::read(x.join("dir/nested/big.bin")).unwrap(),
        bytes(3 << 20, 11)
    );
    assert_eq!(
        xattr::get(x.join("plain.txt"), "user.comment")
            .unwrap()
            .unwrap(),
        b"a user attribute"
    );
    let m = fs::metadata(x.join("setuid-prog")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o4755, 1234, 5678));
    assert_eq!(
        fs::read_link(x.join("link")).unwrap(),
        Path::new("plain.txt")
    );
    assert_eq!(
        fs::metadata(x.join("hard1")).unwrap().ino(),
        fs::metadata(x.join("dir/hard2")).unwrap().ino()
    );
}
