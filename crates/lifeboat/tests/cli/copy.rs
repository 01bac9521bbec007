//! `lifeboat copy` between real repositories with different keys and chunk sizes: what
//! arrives restores bit for bit, a second run copies nothing, a copy killed with kill -9 is
//! completed by the next run, and only what the target lacks is stored.

use crate::metadata::build_tree;
use crate::support::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TARGET_PASSWORD: &str = "the target's own password";

/// A second repository, in its own directory, with its own password and `init` options.
fn new_target(init: &[&str]) -> Env {
    let t = Env::empty();
    let mut args = vec!["init", "--kdf-memory-kib", "1024", "--kdf-passes", "1"];
    args.extend_from_slice(init);
    t_ok(&t, &args);
    t
}

/// A command on the target, with the target's password.
fn t_cmd(t: &Env) -> Command {
    let mut c = t.cmd();
    c.env("LIFEBOAT_PASSWORD", TARGET_PASSWORD);
    c
}

fn t_ok(t: &Env, args: &[&str]) -> String {
    let out = t_cmd(t).args(args).output().expect("run");
    assert!(
        out.status.success(),
        "target: lifeboat {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn t_json(t: &Env, args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let out = t_ok(t, &a);
    serde_json::from_str(out.lines().last().unwrap_or("")).expect("JSON")
}

/// `lifeboat copy --to TARGET` from `env`'s repository: (exit code, stdout, stderr).
fn copy(env: &Env, t: &Env, args: &[&str]) -> (i32, String, String) {
    let out = env
        .cmd()
        .env("LIFEBOAT_TO_PASSWORD", TARGET_PASSWORD)
        .args(["copy", "--to", t.repo.to_str().unwrap()])
        .args(args)
        .output()
        .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `copy --json`, which must succeed; its summary.
fn copy_json(env: &Env, t: &Env, args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let (code, out, err) = copy(env, t, &a);
    assert_eq!(code, 0, "copy {args:?}: {err}");
    serde_json::from_str(out.lines().last().unwrap_or("")).expect("JSON")
}

/// Source snapshot id -> target snapshot id, from a copy summary.
fn pairs(v: &Value) -> BTreeMap<String, String> {
    v["snapshots"]
        .as_array()
        .expect("snapshots")
        .iter()
        .map(|s| {
            (
                s["source"].as_str().unwrap().to_string(),
                s["target"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn backup_stdin(env: &Env, name: &str, payload: &[u8]) -> String {
    let mut child = env
        .cmd()
        .args(["--json", "backup", "--stdin-filename", name, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(payload).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["snapshot_id"].as_str().unwrap().to_string()
}

/// A snapshot as `snapshots --json` shows it, without what a copy changes by design: its
/// id, its root tree (other blob ids), its parent and the program that wrote it.
fn kept_fields(mut s: Value) -> Value {
    // `copied_from` is what a copy adds (checked on its own below).
    for k in [
        "id",
        "short_id",
        "tree",
        "parent",
        "program_version",
        "copied_from",
    ] {
        s.as_object_mut().unwrap().remove(k);
    }
    s
}

fn by_id(list: &Value) -> BTreeMap<String, Value> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_string(), s.clone()))
        .collect()
}

#[test]
fn every_kind_of_entry_and_a_stream_arrive_intact_and_a_second_run_copies_nothing() {
    let env = Env::new();
    let src = env.path("src");
    build_tree(&src);
    env.backup(&[src.to_str().unwrap(), "--tag", "files"]);
    let payload = bytes((3 << 20) + 12345, 77);
    backup_stdin(&env, "db.sql", &payload);
    // Other password, other keys and a sixteenth of the source's chunk size.
    let target = new_target(&["--chunk-size", "64KiB"]);

    let v = copy_json(&env, &target, &[]);
    assert_eq!(v["snapshots_copied"], 2, "{v}");
    assert_eq!(v["snapshots_skipped"], 0);
    assert!(v["blobs_added"].as_u64().unwrap() > 0);
    let map = pairs(&v);
    let src_snaps = by_id(&env.json(&["snapshots"]));
    let dst_snaps = by_id(&t_json(&target, &["snapshots"]));
    assert_eq!(dst_snaps.len(), 2);
    for (s, t) in &map {
        // Time, host, user, paths, tags, streams, skipped and summary are kept.
        assert_eq!(
            kept_fields(src_snaps[s].clone()),
            kept_fields(dst_snaps[t].clone())
        );
        assert_eq!(dst_snaps[t]["copied_from"]["snapshot"], s.as_str());
        assert!(src_snaps[s]["copied_from"].is_null());
        // Every node field of every entry is kept (names, modes, owners, all three times,
        // sizes, inodes, link counts, targets, xattr names).
        let ls_src = env.ok(&["ls", s, "--json"]);
        let ls_dst = t_ok(&target, &["ls", t, "--json"]);
        assert_eq!(ls_src, ls_dst, "ls of {s} and its copy {t}");
        // Bit for bit, with sparse files as sparse files.
        let (a, b) = (env.path(&format!("r-{s}")), env.path(&format!("r-{t}")));
        env.ok(&["restore", s, "--target", a.to_str().unwrap(), "--sparse"]);
        t_ok(
            &target,
            &[
                "restore",
                t,
                "--target",
                b.to_str().unwrap(),
                "--sparse",
                "--verify",
            ],
        );
        assert_same_tree(&a, &b);
        if src_snaps[s]["tags"][0] == "files" {
            let sp = fs::metadata(restored(&b, &src).join("sparse.img")).unwrap();
            assert_eq!(sp.len(), 16 << 20);
            assert!(sp.blocks() * 512 < 1 << 20, "holes arrive as holes");
        } else {
            assert_eq!(fs::read(b.join("db.sql")).unwrap(), payload);
        }
    }
    let (code, _, err) = t_cmd(&target)
        .args(["check", "--read-data"])
        .output()
        .map(|o| {
            (
                o.status.code().unwrap_or(-1),
                String::new(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .unwrap();
    assert_eq!(code, 0, "{err}");
    // The target cut the content with its own chunks: the 3 MiB file and the 3 MiB stream
    // are about 96 blobs at 64 KiB, where the source's 1 MiB chunks made about 6.
    assert!(v["blobs_added"].as_u64().unwrap() > 64, "{v}");

    // Again: everything is there already. Not one byte of the target changes.
    let before = target.repo_files();
    let v2 = copy_json(&env, &target, &[]);
    assert_eq!(v2["snapshots_copied"], 0, "{v2}");
    assert_eq!(v2["snapshots_skipped"], 2);
    assert_eq!(v2["blobs_added"], 0);
    assert_eq!(v2["bytes_read"], 0);
    assert_eq!(pairs(&v2), map);
    assert_eq!(target.repo_files(), before);
}

#[test]
fn a_copy_killed_with_kill_9_is_completed_by_the_next_run() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("base")).unwrap();
    for i in 0..10 {
        fs::write(src.join(format!("base/f{i}")), bytes(40_000 + i, i as u64)).unwrap();
    }
    let s = src.to_str().unwrap();
    let n = 6u64;
    let size = 8 << 20;
    for i in 0..n {
        // Even seeds: `bytes` ORs 1 into its seed, so 500 and 501 would be the same data.
        fs::write(src.join("current"), bytes(size, 500 + 2 * i)).unwrap();
        env.backup(&[s, "--tag", &format!("gen{i}")]);
    }
    let target = new_target(&["--chunk-size", "256KiB"]);
    let mut child = env
        .cmd()
        .env("LIFEBOAT_TO_PASSWORD", TARGET_PASSWORD)
        .args(["copy", "--to", target.repo.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed while copying the second snapshot: the first is committed, the second has
    // packs (and maybe its index segment) but no snapshot yet.
    let started = Instant::now();
    let snaps_dir = target.repo.join("snapshots");
    // Written snapshots, not the invisible temporary file of one being written.
    let count = || {
        fs::read_dir(&snaps_dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .count() as u64
            })
            .unwrap_or(0)
    };
    while count() == 0 {
        assert!(started.elapsed() < Duration::from_secs(120), "no snapshot");
        assert!(child.try_wait().unwrap().is_none(), "copy ended early");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let committed = count();
    assert!(committed < n, "the copy finished before it was killed");
    // The copy held a backup lease on the target, as a backup does (a prune would have
    // kept what it reused); the dead process's lease is left to expire.
    let leases: Vec<String> = fs::read_dir(target.repo.join("locks"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        leases.iter().any(|l| l.starts_with("backup-")),
        "{leases:?}"
    );
    t_ok(&target, &["check"]);

    let v = copy_json(&env, &target, &[]);
    assert_eq!(v["snapshots_skipped"].as_u64().unwrap(), committed, "{v}");
    assert_eq!(v["snapshots_copied"].as_u64().unwrap(), n - committed);
    // The committed snapshots' data was not stored again: at most the content of the
    // snapshots still missing (each has 8 MiB that no other has) was added.
    let added = v["bytes_added"].as_u64().unwrap();
    assert!(
        added <= (n - committed) * (size as u64 + (1 << 20)),
        "{added} bytes added for {} snapshots",
        n - committed
    );
    assert_eq!(copy_json(&env, &target, &[])["snapshots_copied"], 0);
    t_ok(&target, &["check", "--read-data"]);
    let dst = t_json(&target, &["snapshots"]);
    assert_eq!(dst.as_array().unwrap().len() as u64, n);
    for i in 0..n {
        let out = env.path(&format!("restore-{i}"));
        let tag = format!("gen{i}");
        t_ok(
            &target,
            &[
                "restore",
                "latest",
                "--tag",
                &tag,
                "--target",
                out.to_str().unwrap(),
            ],
        );
        let back = restored(&out, Path::new(s));
        assert_eq!(
            fs::read(back.join("current")).unwrap(),
            bytes(size, 500 + 2 * i)
        );
        for f in 0..10 {
            assert_eq!(
                fs::read(back.join(format!("base/f{f}"))).unwrap(),
                bytes(40_000 + f, f as u64)
            );
        }
    }
}

#[test]
fn a_target_holding_similar_data_gets_only_what_it_lacks() {
    let env = Env::new();
    let target = new_target(&["--chunk-size", "64KiB"]);
    let data = env.path("data");
    fs::create_dir_all(&data).unwrap();
    for i in 0..3 {
        fs::write(data.join(format!("f{i}")), bytes(4 << 20, 40 + 2 * i)).unwrap();
    }
    let d = data.to_str().unwrap();
    // The target's own backup of the data, then a little changes and the source backs it up.
    t_ok(&target, &["backup", d, "-q"]);
    let mut f1 = bytes(4 << 20, 42);
    f1[2_000_000..2_000_100].fill(7);
    fs::write(data.join("f1"), f1).unwrap();
    let mut f2 = fs::OpenOptions::new()
        .append(true)
        .open(data.join("f2"))
        .unwrap();
    f2.write_all(&bytes(10_000, 99)).unwrap();
    let id = env.backup(&[d]);
    let total = 12u64 << 20;

    // A dry run says what would be added and writes nothing.
    let before = target.repo_files();
    let dry = copy_json(&env, &target, &["--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["snapshots_copied"], 1);
    assert_eq!(target.repo_files(), before);

    let v = copy_json(&env, &target, &[]);
    let added = v["bytes_added"].as_u64().unwrap();
    assert_eq!(v["bytes_read"].as_u64().unwrap(), total + 10_000);
    assert!(added < total / 10, "{added} bytes added for {total} bytes");
    assert_eq!(v["blobs_added"], dry["blobs_added"]);
    assert_eq!(v["bytes_added"], dry["bytes_added"]);

    let t = &pairs(&v)[&id];
    let (a, b) = (env.path("ra"), env.path("rb"));
    env.ok(&["restore", &id, "--target", a.to_str().unwrap()]);
    t_ok(&target, &["restore", t, "--target", b.to_str().unwrap()]);
    assert_same_tree(&a, &b);
}

#[test]
fn only_the_selected_snapshots_are_copied() {
    let env = Env::new();
    let f = env.path("f");
    fs::write(&f, b"small").unwrap();
    let f = f.to_str().unwrap();
    let a1 = env.backup(&[f, "--host", "alpha"]);
    let b1 = env.backup(&[f, "--host", "beta"]);
    let a2 = env.backup(&[f, "--host", "alpha", "--tag", "x"]);
    let target = new_target(&[]);
    let v = copy_json(&env, &target, &["--host", "alpha"]);
    assert_eq!(pairs(&v).keys().collect::<Vec<_>>(), {
        let mut k = vec![&a1, &a2];
        k.sort();
        k
    });
    let v = copy_json(&env, &target, &[&b1[..8], &a1]);
    assert_eq!(v["snapshots_copied"], 1);
    assert_eq!(v["snapshots_skipped"], 1);
    let hosts: Vec<String> = t_json(&target, &["snapshots"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["hostname"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        hosts,
        ["alpha", "beta", "alpha"],
        "listed in the source's order"
    );
    // Copying back into the source finds every snapshot there already: none is doubled.
    let back = t_cmd(&target)
        .env("LIFEBOAT_TO_PASSWORD", PASSWORD)
        .args(["--json", "copy", "--to", env.repo.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(back.status.success());
    let v: Value = serde_json::from_slice(&back.stdout).unwrap();
    assert_eq!(v["snapshots_skipped"], 3, "{v}");
    assert_eq!(env.snapshot_ids().len(), 3);
}

#[test]
fn a_missing_target_a_wrong_password_and_the_same_repository_are_refused() {
    let env = Env::new();
    let f = env.path("f");
    fs::write(&f, b"small").unwrap();
    env.backup(&[f.to_str().unwrap()]);
    let target = new_target(&[]);
    let before = target.repo_files();

    let wrong = "not the target's password";
    let (code, _, err) = env
        .cmd()
        .env("LIFEBOAT_TO_PASSWORD", wrong)
        .args(["copy", "--to", target.repo.to_str().unwrap()])
        .output()
        .map(|o| {
            (
                o.status.code().unwrap_or(-1),
                (),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .unwrap();
    assert_eq!(code, 12, "{err}");
    assert!(
        err.contains("wrong password") && err.contains(target.repo.to_str().unwrap()),
        "{err}"
    );
    assert!(!err.contains(wrong), "the password is never shown");
    let pw_file = env.path("to-password");
    fs::write(&pw_file, format!("{wrong}\n")).unwrap();
    let (code, _, err) = copy(
        &env,
        &target,
        &["--to-password-file", pw_file.to_str().unwrap()],
    );
    assert_eq!(code, 12, "the file comes before the environment: {err}");
    assert!(err.contains("--to-password-file"), "{err}");
    assert_eq!(target.repo_files(), before);

    let missing = env.path("nothing-here");
    let (code, _, err) = env
        .cmd()
        .env("LIFEBOAT_TO_PASSWORD", TARGET_PASSWORD)
        .args(["copy", "--to", missing.to_str().unwrap()])
        .output()
        .map(|o| {
            (
                o.status.code().unwrap_or(-1),
                (),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .unwrap();
    assert_eq!(code, 10, "{err}");
    assert!(err.contains("lifeboat init -r"), "{err}");
    assert!(!missing.exists(), "copy never creates a target");

    let (code, _, err) = env
        .cmd()
        .args(["copy", "--to", target.repo.to_str().unwrap()])
        .output()
        .map(|o| {
            (
                o.status.code().unwrap_or(-1),
                (),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("LIFEBOAT_TO_PASSWORD"), "{err}");

    let (code, _, err) = env
        .cmd()
        .env("LIFEBOAT_TO_PASSWORD", PASSWORD)
        .args([
            "copy",
            "--to",
            &format!("file://{}", env.repo.to_str().unwrap()),
        ])
        .output()
        .map(|o| {
            (
                o.status.code().unwrap_or(-1),
                (),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("same repository"), "{err}");
    assert_eq!(target.repo_files(), before);
}
