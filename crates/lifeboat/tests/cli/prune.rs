//! `lifeboat prune` end to end: two-phase deletion, the maintenance lease, prune killed at
//! random moments, backups and prunes at the same time, and a clock that jumps. After each,
//! every kept snapshot must restore bit for bit.

use crate::support::*;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Copies a directory tree (what a snapshot of it must restore to).
fn copy_tree(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Restores `snap` and compares it with the expected copy of `src`.
fn assert_restores(env: &Env, snap: &str, src: &Path, expected: &Path) {
    let target = env.path(&format!("restore-{snap}-{}", rand_u64()));
    env.ok(&["restore", snap, "--target", target.to_str().unwrap(), "-q"]);
    assert_same_tree(expected, &restored(&target, src));
    fs::remove_dir_all(&target).unwrap();
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    lifeboat_crypto::random_bytes(&mut b).unwrap();
    u64::from_le_bytes(b)
}

fn pack_names(env: &Env) -> Vec<String> {
    let mut v: Vec<String> = files_under(&env.repo.join("data"))
        .keys()
        .map(|p| p.display().to_string())
        .collect();
    v.sort();
    v
}

/// Three snapshots of a changing directory; returns their ids and the expected copies.
fn three_snapshots(env: &Env) -> (PathBuf, Vec<(String, PathBuf)>) {
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    let mut out = Vec::new();
    for i in 0..3u64 {
        fs::write(src.join("common"), bytes(400_000, 99)).unwrap();
        fs::write(src.join(format!("f{i}")), bytes(500_000 + i as usize, i)).unwrap();
        if i > 0 {
            fs::remove_file(src.join(format!("f{}", i - 1))).unwrap();
        }
        let id = env.backup(&[src.to_str().unwrap()]);
        let copy = env.path(&format!("expected-{i}"));
        copy_tree(&src, &copy);
        out.push((id, copy));
    }
    (src, out)
}

#[test]
fn prune_frees_forgotten_data_in_two_phases_and_kept_snapshots_restore() {
    let env = Env::new();
    let (src, snaps) = three_snapshots(&env);
    env.ok(&["forget", &snaps[0].0, &snaps[1].0]);
    let all = pack_names(&env);

    // A dry run changes nothing and says what would happen.
    let before = env.repo_files();
    let v = env.json(&["prune", "--dry-run", "--keep-delete", "0"]);
    assert_eq!(env.repo_files(), before);
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["delete"], 0);
    assert!(
        v["mark"].as_u64().unwrap() + v["repack"].as_u64().unwrap() >= 1,
        "{v}"
    );

    // First prune: marks, deletes nothing.
    let v = env.json(&["prune"]);
    assert_eq!(v["delete"], 0);
    assert_eq!(
        pack_names(&env).len(),
        all.len() + v["result"]["new_packs"].as_u64().unwrap() as usize
    );
    // Within the default grace period (24h): still nothing deleted.
    let v = env.json(&["prune"]);
    assert_eq!(v["delete"], 0, "{v}");
    assert!(v["wait"].as_u64().unwrap() >= 1, "{v}");
    // With no grace period: the marked packs go.
    let v = env.json(&["prune", "--keep-delete", "0"]);
    assert!(v["delete"].as_u64().unwrap() >= 1, "{v}");
    assert!(
        // The forgotten snapshots' own data: about 900 kB (f0 and f1 share most content).
        v["result"]["deleted_bytes"].as_u64().unwrap() >= 850_000,
        "{v}"
    );
    env.ok(&["check", "--read-data"]);
    assert_restores(&env, &snaps[2].0, &src, &snaps[2].1);
    // Nothing left to do.
    let v = env.json(&["prune", "--keep-delete", "0"]);
    assert_eq!(v["delete"], 0);
    assert_eq!(v["mark"], 0);
    assert_eq!(v["repack"], 0);
}

#[test]
fn issue4_prune_is_refused_with_exit_11_while_another_holds_the_lease() {
    let env = Env::new();
    three_snapshots(&env);
    let storage: Arc<dyn lifeboat_storage::Storage> =
        Arc::new(lifeboat_storage::LocalStorage::new(&env.repo));
    let repo = lifeboat_repo::Repository::open(storage, PASSWORD.as_bytes()).unwrap();
    let held = lifeboat_repo::MaintenanceLease::acquire(
        &repo,
        &lifeboat_repo::LeaseHolder {
            hostname: "ctrl-2".into(),
            username: "operator".into(),
            command: "prune".into(),
        },
    )
    .unwrap();
    let (code, _, err) = env.run(&["prune"]);
    assert_eq!(code, 11, "{err}");
    assert!(err.contains("prune by operator@ctrl-2"), "{err}");
    assert!(err.contains("expires"), "{err}");
    // A dry run takes no lease and still works; backups are never blocked.
    env.ok(&["prune", "--dry-run"]);
    env.backup(&[env.path("src").to_str().unwrap()]);
    drop(held);
    env.ok(&["prune"]);
}

#[test]
fn issue4_prune_refuses_to_act_on_a_damaged_snapshot() {
    let env = Env::new();
    let (_, snaps) = three_snapshots(&env);
    env.ok(&["forget", &snaps[0].0]);
    let snap_file = files_under(&env.repo.join("snapshots"))
        .into_keys()
        .next()
        .unwrap();
    let p = env.repo.join("snapshots").join(snap_file);
    let mut b = fs::read(&p).unwrap();
    let n = b.len() / 2;
    b[n] ^= 0x40;
    fs::write(&p, b).unwrap();
    env.refused(
        // --no-cache: over a remote backend a cached good copy would stand in for the
        // damaged file (which is safe, but not what this test is about).
        &["--no-cache", "prune", "--keep-delete", "0"],
        1,
        "cannot know what it references",
    );
}

/// Runs `lifeboat` with extra environment variables, optionally under a wrapper command.
fn cmd_with(env: &Env, wrapper: &[&str], vars: &[(&str, &str)]) -> Command {
    let base = env.cmd();
    let mut c = if let Some((w, rest)) = wrapper.split_first() {
        let mut c = Command::new(w);
        c.args(rest).arg(base.get_program());
        c
    } else {
        Command::new(base.get_program())
    };
    c.env_clear();
    for (k, v) in base.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    c.args(base.get_args());
    for (k, v) in vars {
        c.env(k, v);
    }
    c
}

#[test]
fn prune_killed_at_random_moments_leaves_every_kept_snapshot_restorable() {
    let rounds: usize = std::env::var("LIFEBOAT_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let ttl = [("LIFEBOAT_LEASE_TTL", "1")];
    for round in 0..rounds {
        let env = Env::new();
        let (src, snaps) = three_snapshots(&env);
        env.ok(&["forget", &snaps[0].0]);
        cmd_with(&env, &[], &ttl)
            .args(["prune", "-q"])
            .status()
            .unwrap();
        env.ok(&["forget", &snaps[1].0]);
        let mut child = cmd_with(&env, &[], &ttl)
            .args(["prune", "-q", "--keep-delete", "0", "--max-unused", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rand_u64() % 250));
        let _ = child.kill();
        let _ = child.wait();
        // Whatever the moment: the repository checks clean and the kept snapshot restores.
        let (code, out, err) = env.run(&["check", "--read-data"]);
        assert_eq!(code, 0, "round {round}: {out}{err}");
        assert_restores(&env, &snaps[2].0, &src, &snaps[2].1);
        // The dead prune's lease expires; the next prune finishes the work.
        std::thread::sleep(Duration::from_millis(1300));
        let out = cmd_with(&env, &[], &ttl)
            .args(["prune", "-q", "--keep-delete", "0", "--max-unused", "0"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        env.ok(&["check", "--read-data"]);
        assert_restores(&env, &snaps[2].0, &src, &snaps[2].1);
    }
}

#[test]
fn four_backups_and_prunes_at_the_same_time_lose_nothing() {
    let env = Arc::new(Env::new());
    let ttl = [("LIFEBOAT_LEASE_TTL", "2")];
    let rounds = 8u64;
    let expected: Arc<Mutex<BTreeMap<String, (PathBuf, PathBuf)>>> = Arc::default();
    let failed_backups = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4u64 {
        let (env, expected, failed) = (env.clone(), expected.clone(), failed_backups.clone());
        workers.push(std::thread::spawn(move || {
            let src = env.path(&format!("node{w}"));
            fs::create_dir_all(&src).unwrap();
            for r in 0..rounds {
                // Shared content across nodes and rounds (dedup), and content that each
                // round adds and a later round removes (becomes garbage after forget).
                fs::write(src.join("common"), bytes(300_000, 4242)).unwrap();
                fs::write(src.join(format!("r{r}")), bytes(200_000, w * 1000 + r)).unwrap();
                if r >= 2 {
                    let _ = fs::remove_file(src.join(format!("r{}", r - 2)));
                }
                let out = cmd_with(&env, &[], &ttl)
                    .args(["--json", "backup", src.to_str().unwrap()])
                    .output()
                    .unwrap();
                if !out.status.success() {
                    // Allowed only as the documented clean failure; never a bad snapshot.
                    failed
                        .lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&out.stderr).into_owned());
                    continue;
                }
                let stdout = String::from_utf8_lossy(&out.stdout);
                let v: serde_json::Value =
                    serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
                let id = v["snapshot_id"].as_str().unwrap().to_string();
                let copy = env.path(&format!("expected-{id}"));
                copy_tree(&src, &copy);
                expected.lock().unwrap().insert(id, (src.clone(), copy));
            }
        }));
    }
    let pruner = {
        let (env, done) = (env.clone(), done.clone());
        std::thread::spawn(move || {
            let (mut runs, mut deleted, mut after) = (0, 0, 0);
            // While the backups run, and then (a pack marked while a backup ran is only
            // deleted once no backup that could still use it runs: on a loaded machine the
            // four backups overlap all the time) up to three more rounds until one deletes.
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                if finished && (deleted > 0 || after >= 3) {
                    break;
                }
                if finished {
                    after += 1;
                }
                cmd_with(&env, &[], &ttl)
                    .args(["forget", "-q", "--keep-last", "2"])
                    .status()
                    .unwrap();
                let out = cmd_with(&env, &[], &ttl)
                    .args(["--json", "prune", "--keep-delete", "0", "--max-unused", "0"])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "prune: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let v: serde_json::Value = serde_json::from_str(
                    String::from_utf8_lossy(&out.stdout).lines().last().unwrap(),
                )
                .unwrap();
                deleted += v["result"]["deleted_packs"].as_u64().unwrap();
                runs += 1;
            }
            (runs, deleted)
        })
    };
    for w in workers {
        w.join().unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (prunes, deleted) = pruner.join().unwrap();
    assert!(prunes >= 2, "prune ran {prunes} times");
    // The test means something only if prune marked and deleted packs that the racing
    // backups' forgotten snapshots held.
    assert!(deleted >= 1, "{prunes} prunes deleted nothing");
    eprintln!("{prunes} prunes deleted {deleted} packs beside the backups");
    for f in failed_backups.lock().unwrap().iter() {
        assert!(
            f.contains("a prune deleted"),
            "unexpected backup failure: {f}"
        );
    }
    // Every snapshot that exists restores exactly what was backed up.
    let (code, out, err) = env.run(&["check", "--read-data"]);
    assert_eq!(code, 0, "{out}{err}");
    let ids = env.snapshot_ids();
    assert!(ids.len() >= 4, "{ids:?}");
    let exp = expected.lock().unwrap();
    for id in &ids {
        let full = exp
            .keys()
            .find(|k| k.starts_with(id.as_str()) || id.starts_with(k.as_str()))
            .unwrap_or_else(|| panic!("snapshot {id} was not written by a backup of this test"));
        let (src, copy) = &exp[full];
        assert_restores(&env, id, src, copy);
    }
}

fn faketime_available() -> bool {
    let ok = Command::new("faketime")
        .args(["-f", "+1d", "true"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok && std::env::var("CI").as_deref() == Ok("true") {
        panic!("faketime is missing; scripts/test installs it");
    }
    ok
}

#[test]
fn issue4_prune_refuses_when_its_clock_is_behind_the_repository() {
    if !faketime_available() {
        eprintln!("skipped: faketime is not installed (scripts/test installs it)");
        return;
    }
    let env = Env::new();
    let (_, snaps) = three_snapshots(&env);
    env.ok(&["forget", &snaps[0].0]);
    env.ok(&["prune"]); // marks, written with the right time
    let before = env.repo_files();
    let out = cmd_with(&env, &["faketime", "-f", "-2d"], &[])
        .args(["prune", "--keep-delete", "0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("clock"), "{err}");
    // Nothing changed but the lease that came and went.
    let mut after = env.repo_files();
    after.retain(|p, _| !p.starts_with("locks"));
    let mut b = before;
    b.retain(|p, _| !p.starts_with("locks"));
    assert_eq!(after, b);
}

#[test]
fn issue4_a_backup_whose_reused_pack_was_deleted_by_a_clock_jumped_prune_writes_no_snapshot() {
    if !faketime_available() {
        eprintln!("skipped: faketime is not installed (scripts/test installs it)");
        return;
    }
    let env = Env::new();
    let content = bytes(3_000_000, 5);
    let first = {
        let mut c = env
            .cmd()
            .args(["--json", "backup", "--stdin-filename", "db.sql", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(&content).unwrap();
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        let v: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap())
                .unwrap();
        v["snapshot_id"].as_str().unwrap().to_string()
    };
    // A backup starts (lease taken, marks read), then waits for its input.
    let mut running = env
        .cmd()
        .args(["backup", "--stdin-filename", "db.sql", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while files_under(&env.repo.join("locks")).is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(20), "no backup lease");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1100));
    // The first snapshot is forgotten and its packs marked after the backup started, so
    // the backup may reuse them; then a prune whose clock is three days ahead deletes them.
    env.ok(&["forget", &first]);
    env.ok(&["prune", "-q"]);
    let mut stdin = running.stdin.take().unwrap();
    stdin.write_all(&content).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let out = cmd_with(&env, &["faketime", "-f", "+3d"], &[])
        .args(["--json", "prune", "--keep-delete", "1d"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(stdin);
    let out = running.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("a prune deleted"), "{err}");
    assert!(env.snapshot_ids().is_empty(), "a snapshot was written");
    env.ok(&["check"]);
    // Run again: the data is stored anew.
    let mut again = env
        .cmd()
        .args(["backup", "-q", "--stdin-filename", "db.sql", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    again.stdin.take().unwrap().write_all(&content).unwrap();
    assert!(again.wait().unwrap().success());
    env.ok(&["check", "--read-data"]);
    let dumped = env
        .cmd()
        .args(["dump", "latest", "db.sql"])
        .output()
        .unwrap();
    assert_eq!(dumped.stdout, content);
}

#[test]
fn forget_with_prune_marks_then_frees() {
    let env = Env::new();
    let (src, snaps) = three_snapshots(&env);
    let v = env.json(&[
        "forget",
        "--keep-last",
        "1",
        "--prune",
        "--keep-delete",
        "0",
    ]);
    assert_eq!(
        v["message_type"], "summary",
        "the prune summary comes last: {v}"
    );
    assert_eq!(v["delete"], 0);
    let v = env.json(&[
        "forget",
        "--keep-last",
        "1",
        "--prune",
        "--keep-delete",
        "0",
    ]);
    assert!(v["result"]["deleted_bytes"].as_u64().unwrap() > 0, "{v}");
    env.ok(&["check", "--read-data"]);
    assert_restores(&env, &snaps[2].0, &src, &snaps[2].1);
    // --keep-delete belongs to --prune.
    let (code, _, err) = env.run(&["forget", "--keep-last", "1", "--keep-delete", "0"]);
    assert_eq!(code, 2, "{err}");
}
