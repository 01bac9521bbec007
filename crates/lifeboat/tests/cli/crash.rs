//! Crash safety as a tested property: signals, kill -9 at random moments, and flipped bytes in
//! every kind of repository file. Earlier snapshots must always restore bit for bit.
//!
//! `LIFEBOAT_CRASH_ROUNDS` sets the number of kill -9 rounds (default 10 here; the crash test
//! target `scripts/crash-test` runs 60).

use crate::support::*;
use std::fs;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn wait_with_timeout(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return st.code().or(Some(-1));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_child(child);
    let _ = rustix::process::kill_process(pid, sig);
}

#[test]
fn sigint_and_sigterm_exit_130_and_leave_no_snapshot() {
    let env = Env::new();
    for sig in [rustix::process::Signal::TERM, rustix::process::Signal::INT] {
        // An endless dump: only the signal can end this backup.
        let mut child = env
            .cmd()
            .args([
                "backup",
                "--from-command",
                "db.sql=while true; do head -c 1048576 /dev/urandom; done",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        signal(&child, sig);
        let code = wait_with_timeout(&mut child, Duration::from_secs(10));
        assert_eq!(code, Some(130), "{sig:?}");
        let mut err = String::new();
        use std::io::Read;
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(err.contains("interrupted"), "{err}");
    }
    assert!(env.snapshot_ids().is_empty());
    env.ok(&["check", "--read-data"]);
}

fn rounds() -> usize {
    std::env::var("LIFEBOAT_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

/// A tiny deterministic generator for kill delays.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn kill_9_at_random_moments_never_harms_earlier_snapshots() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("base")).unwrap();
    for i in 0..20 {
        fs::write(
            src.join(format!("base/f{i}")),
            bytes(50_000 + i * 1000, i as u64),
        )
        .unwrap();
    }
    let mut rng = 0x2545f4914f6cdd1d_u64;
    let mut completed: Vec<(String, u64)> = Vec::new(); // (snapshot id, seed of `current`)
    let s = src.to_str().unwrap().to_string();
    for round in 0..rounds() as u64 {
        let seed = 1000 + round;
        fs::write(src.join("current"), bytes(12 << 20, seed)).unwrap();
        let tag = format!("round-{seed}");
        let mut child = env
            .cmd()
            .args([
                "backup",
                &s,
                "--tag",
                &tag,
                "--force",
                "--from-command",
                "stream=head -c 8000000 /dev/urandom",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = next(&mut rng) % 900;
        std::thread::sleep(Duration::from_millis(delay));
        signal(&child, rustix::process::Signal::KILL);
        let _ = wait_with_timeout(&mut child, Duration::from_secs(30));
        // Whatever the moment, the repository is consistent.
        let (code, _, err) = env.run(&["check"]);
        assert_eq!(code, 0, "round {round}, killed after {delay} ms: {err}");
        let snaps = env.json(&["snapshots", "--tag", &tag]);
        if let Some(snap) = snaps.as_array().and_then(|a| a.first()) {
            completed.push((snap["id"].as_str().unwrap().to_string(), seed));
        }
    }
    // One backup that surely completes, so there is always something to verify.
    let seed = 999;
    fs::write(src.join("current"), bytes(12 << 20, seed)).unwrap();
    completed.push((env.backup(&[&s, "--force"]), seed));

    let (code, _, err) = env.run(&["check", "--read-data"]);
    assert_eq!(code, 0, "{err}");
    for (id, seed) in &completed {
        let out = env.path(&format!("restore-{id}"));
        env.ok(&["restore", id, "--target", out.to_str().unwrap()]);
        let back = restored(&out, Path::new(&s));
        assert_eq!(
            fs::read(back.join("current")).unwrap(),
            bytes(12 << 20, *seed),
            "snapshot {id}"
        );
        for i in 0..20 {
            assert_eq!(
                fs::read(back.join(format!("base/f{i}"))).unwrap(),
                bytes(50_000 + i * 1000, i as u64)
            );
        }
        fs::remove_dir_all(&out).unwrap();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            fs::copy(&p, &t).unwrap();
        }
    }
}

#[test]
fn every_flipped_byte_is_detected() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a"), bytes(300_000, 1)).unwrap();
    fs::write(src.join("b"), b"small file").unwrap();
    env.backup(&[src.to_str().unwrap()]);
    fs::write(src.join("c"), bytes(100_000, 2)).unwrap();
    env.backup(&[src.to_str().unwrap(), "--from-command", "s=seq 1 1000"]);
    let pristine = env.path("pristine");
    copy_dir(&env.repo, &pristine);

    let files = files_under(&pristine);
    let mut checked = 0;
    for (rel, content) in &files {
        let n = content.len();
        for pos in [0, 7, 8, n / 3, n / 2, n - 17, n - 5, n - 1] {
            fs::remove_dir_all(&env.repo).unwrap();
            copy_dir(&pristine, &env.repo);
            let mut b = content.clone();
            b[pos] ^= 0x01;
            fs::write(env.repo.join(rel), &b).unwrap();
            let (code, _, err) = env.run(&["check", "--read-data"]);
            assert_ne!(
                code,
                0,
                "flip at {pos} of {} went unnoticed: {err}",
                rel.display()
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 8 * 6,
        "config, key, packs, index segments and snapshots were all covered"
    );
}
