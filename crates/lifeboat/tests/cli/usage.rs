//! The everyday commands and their output: listings in text and JSON, the default repository,
//! excludes, unchanged backups, overwrite modes, completions and man pages.

use crate::support::*;
use std::fs;
use std::path::Path;

/// The binary with private XDG directories and neither a repository nor a password.
fn bare(env: &Env) -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("lifeboat"));
    c.env_clear()
        .env("HOME", env.dir.path())
        .env("XDG_DATA_HOME", env.path("data"))
        .env("XDG_CONFIG_HOME", env.path("config"))
        .env("XDG_CACHE_HOME", env.path("cache"));
    c
}

#[test]
fn default_repository_with_generated_password() {
    let env = Env::empty();
    let out = bare(&env)
        .args(["init", "--kdf-memory-kib", "1024", "--kdf-passes", "1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let pwfile = env.path("config/lifeboat/password");
    assert!(
        text.contains(pwfile.to_str().unwrap()) && text.contains("Keep a copy"),
        "{text}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&pwfile).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(env.path("data/lifeboat/repo/config").exists());
    // The generated password is never printed.
    let pw = fs::read_to_string(&pwfile).unwrap();
    assert!(!text.contains(pw.trim()));

    let src = env.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), b"x").unwrap();
    let out = bare(&env)
        .args(["backup", src.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bare(&env).args(["snapshots"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 snapshots"));
}

#[test]
fn listings_in_text_and_json() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("etc/nova")).unwrap();
    fs::write(src.join("etc/nova/nova.conf"), b"[DEFAULT]\n").unwrap();
    fs::write(src.join("etc/hosts"), b"127.0.0.1 localhost\n").unwrap();
    let s = src.to_str().unwrap();
    let first = env.backup(&[s, "--tag", "nightly", "--host", "ctrl1"]);
    fs::write(src.join("etc/nova/nova.conf"), b"[DEFAULT]\ndebug = true\n").unwrap();
    fs::remove_file(src.join("etc/hosts")).unwrap();
    fs::write(src.join("etc/new"), b"n").unwrap();
    let second = env.backup(&[s, "--host", "ctrl1"]);

    let snaps = env.json(&["snapshots"]);
    let arr = snaps.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[0]["tags"][0], "nightly");
    assert_eq!(arr[0]["hostname"], "ctrl1");
    assert_eq!(
        env.json(&["snapshots", "--tag", "nightly"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let text = env.ok(&["snapshots"]);
    assert!(
        text.contains(&first[..8]) && text.contains("2 snapshots"),
        "{text}"
    );

    // latest with a filter, prefixes, ambiguity errors.
    let l = env.ok(&["ls", "latest", "--host", "ctrl1"]);
    assert!(l.contains("etc/new") && !l.contains("etc/hosts"));
    let l = env.ok(&["ls", &first[..10], &format!("{s}/etc"), "--long"]);
    assert!(l.contains("hosts") && l.contains("-rw-"), "{l}");
    let (code, _, err) = env.run(&["ls", "ffffffffffffffffffff"]);
    assert_eq!(code, 1);
    assert!(err.contains("no snapshot matches"), "{err}");

    let d = env.json(&["diff", &first, &second]);
    let changes: Vec<(String, String)> = d["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["change"].as_str().unwrap().to_string(),
                c["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        changes.contains(&("-".into(), format!("{s}/etc/hosts"))),
        "{changes:?}"
    );
    assert!(changes.contains(&("+".into(), format!("{s}/etc/new"))));
    assert!(changes.contains(&("M".into(), format!("{s}/etc/nova/nova.conf"))));

    let f = env.json(&["find", "*.conf"]);
    assert_eq!(
        f.as_array().unwrap().len(),
        2,
        "one nova.conf in each snapshot"
    );
    let f = env.ok(&["find", "hosts"]);
    assert!(f.contains("1 matches in 2 snapshots"), "{f}");
}

#[test]
fn unchanged_backup_reads_nothing_and_excludes_apply() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("cache")).unwrap();
    fs::create_dir_all(src.join("skipme")).unwrap();
    fs::write(src.join("skipme/.nobackup"), b"").unwrap();
    fs::write(src.join("skipme/data"), b"x").unwrap();
    fs::write(src.join("cache/tmp.o"), b"junk").unwrap();
    fs::write(src.join("keep.o"), b"o").unwrap();
    fs::write(src.join("data.bin"), bytes(2 << 20, 5)).unwrap();
    let excl = env.path("excludes");
    fs::write(&excl, "# comment\n\ncache\n").unwrap();
    let s = src.to_str().unwrap();
    let args = [
        s,
        "--exclude-file",
        excl.to_str().unwrap(),
        "--exclude-if-present",
        ".nobackup",
        "--exclude",
        "*.tmp",
    ];
    let first = env.json(&[&["backup"][..], &args[..]].concat());
    assert_eq!(first["bytes_read"], (2 << 20) + 1);
    let ls = env.ok(&["ls", "latest"]);
    assert!(
        !ls.contains("cache") && !ls.contains("skipme") && ls.contains("keep.o"),
        "{ls}"
    );

    let again = env.json(&[&["backup"][..], &args[..]].concat());
    assert_eq!(
        again["bytes_read"], 0,
        "an unchanged tree is a stat walk: {again}"
    );
    assert_eq!(again["files_unchanged"], 2);
    assert!(again["bytes_added"].as_u64().unwrap() < 10_000);

    // Deleting the local cache changes no result.
    let _ = fs::remove_dir_all(env.path("cache"));
    let third = env.json(&[&["backup", "--no-cache"][..], &args[..]].concat());
    assert_eq!(third["bytes_read"], 0, "{third}");

    // --force reads everything again but stores nothing new.
    let forced = env.json(&[&["backup", "--force"][..], &args[..]].concat());
    assert_eq!(forced["bytes_read"], (2 << 20) + 1);
    // No data stored again (trees may differ: over a remote backend the local cache appears
    // in the test's folder, a parent of the source).
    assert!(forced["bytes_added"].as_u64().unwrap() < 10_000, "{forced}");

    // A dry run writes nothing.
    let before = env.repo_files();
    fs::write(src.join("new"), bytes(100_000, 9)).unwrap();
    let dry = env.json(&[&["backup", "--dry-run"][..], &args[..]].concat());
    assert!(dry["snapshot_id"].is_null());
    assert_eq!(env.repo_files(), before);
}

#[test]
fn overwrite_modes_and_delete() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a"), b"snapshot a").unwrap();
    fs::write(src.join("b"), b"snapshot b").unwrap();
    let id = env.backup(&[src.to_str().unwrap()]);
    let spec = format!("{id}:{}", src.display());
    let t = env.path("t");
    fs::create_dir(&t).unwrap();
    fs::write(t.join("a"), b"local change").unwrap();
    fs::write(t.join("extra"), b"not in snapshot").unwrap();

    env.ok(&[
        "restore",
        &spec,
        "--target",
        t.to_str().unwrap(),
        "--overwrite",
        "never",
    ]);
    assert_eq!(fs::read(t.join("a")).unwrap(), b"local change");
    assert_eq!(fs::read(t.join("b")).unwrap(), b"snapshot b");

    env.ok(&[
        "restore",
        &spec,
        "--target",
        t.to_str().unwrap(),
        "--overwrite",
        "if-changed",
    ]);
    assert_eq!(fs::read(t.join("a")).unwrap(), b"snapshot a");
    assert!(t.join("extra").exists());

    let v = env.json(&[
        "restore",
        &spec,
        "--target",
        t.to_str().unwrap(),
        "--delete",
        "--overwrite",
        "if-changed",
    ]);
    assert_eq!(v["deleted"], 1);
    assert_eq!(v["files_skipped"], 2, "unchanged files are left alone: {v}");
    assert!(!t.join("extra").exists());
}

#[test]
fn completions_and_man_page() {
    let env = Env::empty();
    let bash = env.ok(&["completions", "bash"]);
    assert!(bash.contains("lifeboat") && bash.contains("--read-data-subset"));
    let dir = env.path("man");
    env.ok(&["man", dir.to_str().unwrap()]);
    assert!(Path::new(&dir.join("lifeboat.1")).exists());
    assert!(dir.join("lifeboat-backup.1").exists());
    let help = env.ok(&["--help"]);
    assert!(help.contains("Exit codes") && help.contains("130 interrupted"));
}

#[test]
fn concurrent_backups_into_one_repository_need_no_lock() {
    let env = Env::new();
    let mut children = Vec::new();
    for i in 0..4u64 {
        let src = env.path(&format!("src{i}"));
        fs::create_dir(&src).unwrap();
        // Shared content (deduplicated across the racing backups) and content of their own.
        fs::write(src.join("shared"), bytes(3 << 20, 42)).unwrap();
        fs::write(src.join("own"), bytes(2 << 20, i)).unwrap();
        children.push((
            src.clone(),
            env.cmd()
                .args(["backup", "-q", src.to_str().unwrap()])
                .spawn()
                .unwrap(),
        ));
    }
    for (_, c) in &mut children {
        assert!(c.wait().unwrap().success());
    }
    assert_eq!(env.snapshot_ids().len(), 4);
    env.ok(&["check", "--read-data"]);
    for id in env.snapshot_ids() {
        let out = env.path(&format!("out-{id}"));
        env.ok(&[
            "restore",
            &id,
            "--target",
            out.to_str().unwrap(),
            "--verify",
        ]);
    }
    for (i, (src, _)) in children.iter().enumerate() {
        let found = env.snapshot_ids().iter().any(|id| {
            let p = restored(&env.path(&format!("out-{id}")), src);
            fs::read(p.join("own"))
                .map(|b| b == bytes(2 << 20, i as u64))
                .unwrap_or(false)
        });
        assert!(found, "backup {i} restores");
    }
}
