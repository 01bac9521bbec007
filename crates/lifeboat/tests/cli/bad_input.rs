//! Bad input gets a clear message and a documented exit code, and loses nothing.

use crate::support::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

#[test]
fn wrong_password_exits_12_and_writes_nothing() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), b"data").unwrap();
    env.backup(&[src.to_str().unwrap()]);
    let before = env.repo_files();
    for args in [
        vec!["backup", src.to_str().unwrap()],
        vec!["snapshots"],
        vec!["check"],
    ] {
        let out = env
            .cmd()
            .env("LIFEBOAT_PASSWORD", "wrong horse")
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(12), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("wrong password"), "{err}");
        assert!(
            !err.contains("wrong horse") && !err.contains(PASSWORD),
            "a password leaked into: {err}"
        );
    }
    assert_eq!(env.repo_files(), before);
}

#[test]
fn missing_or_foreign_repository_exits_10() {
    let env = Env::empty();
    let (code, _, err) = env.run(&["snapshots"]);
    assert_eq!(code, 10);
    assert!(
        err.contains("no repository at") && err.contains("lifeboat init"),
        "{err}"
    );
    fs::create_dir(&env.repo).unwrap();
    fs::write(
        env.repo.join("config"),
        b"this is not a lifeboat repository",
    )
    .unwrap();
    let (code, _, _) = env.run(&["backup", "/etc/hostname"]);
    assert_eq!(code, 10);
}

#[test]
fn second_init_is_refused() {
    let env = Env::new();
    env.refused(&["init"], 1, "already exists");
}

#[test]
fn password_sources() {
    let env = Env::new();
    let pwfile = env.path("pw");
    fs::write(&pwfile, format!("{PASSWORD}\n")).unwrap();
    let out = env
        .cmd()
        .env_remove("LIFEBOAT_PASSWORD")
        .args(["--password-file", pwfile.to_str().unwrap(), "snapshots"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = env
        .cmd()
        .env_remove("LIFEBOAT_PASSWORD")
        .env(
            "LIFEBOAT_PASSWORD_COMMAND",
            format!("cat {}", pwfile.display()),
        )
        .args(["snapshots"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = env
        .cmd()
        .env_remove("LIFEBOAT_PASSWORD")
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("LIFEBOAT_PASSWORD"),
        "says how to give one"
    );
    let out = env
        .cmd()
        .env_remove("LIFEBOAT_PASSWORD")
        .args(["--password-command", "exit 1", "snapshots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn missing_path_is_an_error_before_anything_is_written() {
    let env = Env::new();
    env.refused(&["backup", "/no/such/path"], 1, "/no/such/path");
}

/// Runs as `nobody`, so that a root-owned 0600 file is really unreadable.
#[test]
fn unreadable_files_are_skipped_listed_and_exit_3() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("private")).unwrap();
    fs::write(src.join("public"), b"everyone").unwrap();
    fs::write(src.join("secret"), b"root only").unwrap();
    fs::set_permissions(src.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(src.join("private/inner"), b"x").unwrap();
    fs::set_permissions(src.join("private"), fs::Permissions::from_mode(0o700)).unwrap();
    // nobody needs to reach the tree and write the repository.
    fs::set_permissions(env.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    Command::new("chown")
        .args(["-R", "nobody"])
        .arg(&env.repo)
        .status()
        .unwrap();
    let bin = assert_cmd::cargo::cargo_bin("lifeboat");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&bin)
        .args([
            "-r",
            env.repo.to_str().unwrap(),
            "--no-cache",
            "backup",
            src.to_str().unwrap(),
        ])
        .env("LIFEBOAT_PASSWORD", PASSWORD)
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("secret") && err.contains("ermission denied"),
        "{err}"
    );
    assert!(err.contains("private"), "{err}");
    let snaps = env.json(&["snapshots"]);
    assert_eq!(snaps[0]["complete"], false);
    assert_eq!(snaps[0]["skipped"].as_array().unwrap().len(), 2);
    assert!(env.ok(&["snapshots"]).contains("INCOMPLETE"));
    let ls = env.ok(&["ls", "latest"]);
    assert!(ls.contains("public") && !ls.contains("secret"));
}

/// A repository on a 8 MiB tmpfs: the backup that does not fit fails cleanly, and the earlier
/// snapshot still checks and restores.
#[test]
fn full_disk_fails_the_backup_and_keeps_earlier_snapshots() {
    let env = Env::empty();
    fs::create_dir(&env.repo).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&env.repo)
        .status()
        .unwrap();
    assert!(st.success(), "mounting a tmpfs needs root");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _u = Unmount(&env.repo);
    env.ok(INIT_SMALL_PACKS);
    let small = env.path("small");
    fs::create_dir(&small).unwrap();
    fs::write(small.join("f"), bytes(1 << 20, 1)).unwrap();
    let first = env.backup(&[small.to_str().unwrap()]);
    let big = env.path("big");
    fs::create_dir(&big).unwrap();
    fs::write(big.join("f"), bytes(20 << 20, 2)).unwrap();
    let (code, _, err) = env.run(&["backup", big.to_str().unwrap()]);
    assert_eq!(code, 15, "exit 15: the storage is full; {err}");
    assert!(err.contains("no space left"), "{err}");
    assert_eq!(env.snapshot_ids(), vec![first.clone()]);
    env.ok(&["check", "--read-data"]);
    let out = env.path("out");
    env.ok(&["restore", &first, "--target", out.to_str().unwrap()]);
    assert_eq!(
        fs::read(restored(&out, &small).join("f")).unwrap(),
        bytes(1 << 20, 1)
    );
}

fn pack_files(env: &Env) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = files_under(&env.repo.join("data"))
        .into_keys()
        .map(|k| env.repo.join("data").join(k))
        .collect();
    v.sort();
    v
}

#[test]
fn corrupt_pack_is_named_with_what_it_affects_and_the_rest_restores() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("victim"), bytes(3 << 20, 3)).unwrap();
    let id = env.backup(&[src.to_str().unwrap()]);
    fs::write(src.join("survivor"), bytes(100_000, 4)).unwrap();
    env.backup(&[src.to_str().unwrap()]);
    // The pack holding the victim's data is the biggest one.
    let victim_pack = pack_files(&env)
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut b = fs::read(&victim_pack).unwrap();
    b[1000] ^= 0x40;
    fs::write(&victim_pack, &b).unwrap();

    let (code, _, err) = env.run(&["check"]);
    assert_eq!(code, 0, "structure is intact: {err}");
    let (code, _, err) = env.run(&["check", "--read-data"]);
    assert_eq!(code, 1);
    let name = victim_pack.file_name().unwrap().to_str().unwrap();
    assert!(err.contains(name), "names the pack: {err}");
    assert!(
        err.contains(&format!("snapshot {}: {}/victim", &id[..8], src.display())),
        "names the file: {err}"
    );

    let out = env.path("out");
    let (code, _, err) = env.run(&["restore", "latest", "--target", out.to_str().unwrap()]);
    assert_eq!(code, 1, "a restore that could not write everything says so");
    assert!(err.contains("victim") && err.contains("damaged"), "{err}");
    assert_eq!(
        fs::read(restored(&out, &src).join("survivor")).unwrap(),
        bytes(100_000, 4)
    );
}

#[test]
fn truncated_pack_and_damaged_index_or_snapshot_are_reported() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), bytes(2 << 20, 5)).unwrap();
    env.backup(&[src.to_str().unwrap()]);
    let pack = pack_files(&env)
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let len = fs::metadata(&pack).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&pack)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let (code, _, err) = env.run(&["check"]);
    assert_eq!(code, 1);
    assert!(err.contains("truncated"), "{err}");

    let env = Env::new();
    fs::write(src.join("g"), b"more").unwrap();
    env.backup(&[src.to_str().unwrap()]);
    flip_byte_in_only_file(&env.repo.join("index"), |n| n / 2);
    let (code, _, err) = env.run(&["check"]);
    assert_eq!(code, 1);
    assert!(err.contains("index/") && err.contains("damaged"), "{err}");

    let env = Env::new();
    env.backup(&[src.to_str().unwrap()]);
    flip_byte_in_only_file(&env.repo.join("snapshots"), |_| 20);
    let (code, _, err) = env.run(&["check"]);
    assert_eq!(code, 1);
    assert!(err.contains("snapshots/"), "{err}");
}

/// Regression (issue 3): `init` wrote key files and configurations its own reader refused,
/// leaving a repository nobody could open.
#[test]
fn issue3_init_refuses_settings_its_readers_would_reject() {
    let env = Env::empty();
    for args in [
        vec!["init", "--kdf-passes", "65"],
        vec!["init", "--kdf-memory-kib", "4"],
        vec!["init", "--chunk-size", "3000"],
    ] {
        let (code, _, err) = env.run(&args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(
            !env.repo.join("config").exists() && !env.repo.join("keys").exists(),
            "{args:?} wrote something"
        );
    }
}

/// Flips one bit of the byte at `pos(len)` in the only file under `dir`.
fn flip_byte_in_only_file(dir: &Path, pos: impl Fn(usize) -> usize) {
    let rel = files_under(dir).into_keys().next().expect("a file");
    let p = dir.join(rel);
    let mut b = fs::read(&p).unwrap();
    let i = pos(b.len());
    b[i] ^= 1;
    fs::write(&p, &b).unwrap();
}
