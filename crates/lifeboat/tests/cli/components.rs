//! Components from the configuration file: `backup COMPONENT...`, `components`, and the
//! failures a dump can have (exit status, timeout) never becoming a good-looking snapshot.

use crate::support::*;
use serde_json::Value;
use std::fs;
use std::time::{Duration, Instant};

fn config(env: &Env, body: &str) -> String {
    let p = env.path(&format!("lifeboat-{}.toml", body.len()));
    fs::write(&p, body).unwrap();
    p.to_str().unwrap().to_string()
}

fn last_json(out: &str) -> Value {
    serde_json::from_str(out.lines().last().unwrap_or("")).unwrap_or(Value::Null)
}

#[test]
fn components_are_backed_up_one_snapshot_each_with_one_run_id() {
    let env = Env::new();
    let etc = env.path("etc-nova");
    fs::create_dir_all(&etc).unwrap();
    fs::write(etc.join("nova.conf"), "[DEFAULT]\ndebug = false\n").unwrap();
    fs::write(etc.join("x.pyc"), "compiled").unwrap();
    let cfg = config(
        &env,
        &format!(
            r#"
[components.nova-config]
kind = "files"
paths = ["{}"]
exclude = ["*.pyc"]

[components.nova-db]
kind = "command"
backup = "printf 'CREATE TABLE t (i int);\n'"
stream = "nova.sql"
tags = ["nightly"]
"#,
            etc.display()
        ),
    );
    let out = env.ok(&[
        "--config",
        &cfg,
        "--json",
        "backup",
        "nova-config",
        "nova-db",
    ]);
    let lines: Vec<Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["component"], "nova-config");
    assert_eq!(lines[1]["component"], "nova-db");
    let run = lines[0]["run_id"].as_str().unwrap();
    assert_eq!(lines[1]["run_id"], run, "one run id across the components");

    let snaps = env.json(&["snapshots"]);
    let snaps = snaps.as_array().unwrap();
    assert_eq!(snaps.len(), 2);
    let db = snaps
        .iter()
        .find(|s| {
            s["tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == "component:nova-db")
        })
        .unwrap();
    let tags: Vec<&str> = db["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        tags.contains(&"kind:command") && tags.contains(&"nightly"),
        "{tags:?}"
    );
    assert_eq!(db["run_id"], run);
    let dumped = env.ok(&["dump", db["id"].as_str().unwrap(), "nova.sql"]);
    assert_eq!(dumped, "CREATE TABLE t (i int);\n");
    // The files component honoured its exclude.
    let ls = env.ok(&[
        "--config",
        &cfg,
        "ls",
        "latest",
        "--tag",
        "component:nova-config",
        "-R",
    ]);
    assert!(ls.contains("nova.conf") && !ls.contains("x.pyc"), "{ls}");

    let v = env.json(&["--config", &cfg, "components"]);
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        assert!(r["last_good"]["snapshot"].is_string(), "{r}");
    }
}

#[test]
fn a_failing_or_hanging_dump_writes_no_snapshot_and_the_last_good_backup_stays() {
    let env = Env::new();
    let flag = env.path("broken");
    let cfg = config(
        &env,
        &format!(
            r#"
[components.db]
kind = "command"
backup = "if [ -e {flag} ]; then echo 'mysqldump: Got error: 1045: Access denied' >&2; exit 2; fi; echo dump"

[components.slow]
kind = "command"
backup = "sleep 37; echo late"
timeout = "1s"
"#,
            flag = flag.display()
        ),
    );
    env.ok(&["--config", &cfg, "backup", "db"]);
    let good = env.json(&["--config", &cfg, "components"]);
    let good_id = good[0]["last_good"]["snapshot"]
        .as_str()
        .unwrap()
        .to_string();

    fs::write(&flag, "").unwrap();
    let (code, _, err) = env.run(&["--config", &cfg, "backup", "db"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("Access denied"),
        "the dump's stderr is in the message: {err}"
    );
    assert!(err.contains("components failed"), "{err}");
    assert_eq!(
        env.snapshot_ids().len(),
        1,
        "no snapshot for the failed dump"
    );
    let v = env.json(&["--config", &cfg, "components"]);
    assert_eq!(v[0]["last_good"]["snapshot"], good_id.as_str());

    let t0 = Instant::now();
    let (code, _, err) = env.run(&["--config", &cfg, "backup", "slow"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("timed out"), "{err}");
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "the timeout stopped it"
    );
    assert_eq!(env.snapshot_ids().len(), 1);
    // The whole pipeline is gone, not only the shell.
    std::thread::sleep(Duration::from_millis(300));
    let left = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| fs::read(e.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).contains("sleep\u{0}37"))
        .count();
    assert_eq!(left, 0, "the timed-out dump is still running");
}

#[test]
fn the_configuration_names_the_repository_and_password_file_and_refuses_typos() {
    let env = Env::new();
    let pwfile = env.path("pw");
    fs::write(&pwfile, format!("{PASSWORD}\n")).unwrap();
    let cfg = config(
        &env,
        &format!(
            "[repository]\nlocation = \"{}\"\npassword_file = \"{}\"\n\n[components.x]\nkind = \"command\"\nbackup = \"echo hi\"\n",
            env.repo.display(),
            pwfile.display()
        ),
    );
    // No -r and no LIFEBOAT_PASSWORD: both come from the file.
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("lifeboat"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", env.dir.path())
        .env("LIFEBOAT_CONFIG", &cfg)
        .args(["--json", "backup", "x"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(last_json(&String::from_utf8_lossy(&out.stdout))["snapshot_id"].is_string());

    let bad = config(
        &env,
        "[components.x]\nkind = \"files\"\npath = [\"/etc\"]\n",
    );
    let (code, _, err) = env.run(&["--config", &bad, "components"]);
    assert_eq!(code, 1);
    assert!(err.contains("line") && err.contains("path"), "{err}");
    let (code, _, err) = env.run(&["--config", "/nonexistent/lifeboat.toml", "snapshots"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/lifeboat.toml"), "{err}");
    // Mixing components and paths is ambiguous.
    let (code, _, err) = env.run(&["--config", &cfg, "backup", "x", "/etc/hostname"]);
    assert_eq!(code, 1);
    assert!(err.contains("not both"), "{err}");
}

#[test]
fn a_dump_the_validation_command_rejects_writes_no_snapshot() {
    let env = Env::new();
    // A dump that ends as a complete mysqldump does ("-- Dump completed"), and one cut short.
    let cfg = config(
        &env,
        r#"
[components.whole]
kind = "command"
backup = "printf 'CREATE TABLE t (i int);\n-- Dump completed on 2026-12-03\n'"
validate = "tail -n 1 | grep -q '^-- Dump completed'"

[components.cut]
kind = "command"
backup = "printf 'CREATE TABLE t (i int);\nINSERT INTO t VALUES'"
validate = "tail -n 1 | grep -q '^-- Dump completed' || { echo 'no completion line' >&2; exit 1; }"
"#,
    );
    env.ok(&["--config", &cfg, "backup", "whole"]);
    let (code, _, err) = env.run(&["--config", &cfg, "backup", "cut"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("rejected the dump") && err.contains("no completion line"),
        "{err}"
    );
    let v = env.json(&["--config", &cfg, "components"]);
    let rows = v.as_array().unwrap();
    let cut = rows.iter().find(|r| r["name"] == "cut").unwrap();
    assert!(cut["last_good"].is_null(), "{cut}");
    assert_eq!(env.snapshot_ids().len(), 1);
}

#[test]
fn component_restore_plans_runs_with_a_journal_and_resumes() {
    let env = Env::new();
    let etc = env.path("etc-svc");
    fs::create_dir_all(&etc).unwrap();
    fs::write(etc.join("svc.conf"), "port = 1\n").unwrap();
    let live = env.path("live.db");
    fs::write(&live, "rows: 1 2 3\n").unwrap();
    let broken = env.path("restore-broken");
    let cfg = config(
        &env,
        &format!(
            r#"
[components.svc-config]
kind = "files"
paths = ["{etc}"]

[components.svc-db]
kind = "command"
backup = "cat {live}"
restore = "if [ -e {broken} ]; then echo 'ERROR 2002: cannot connect' >&2; exit 1; fi; cat > {live}"
stream = "svc.db"
"#,
            etc = etc.display(),
            live = live.display(),
            broken = broken.display()
        ),
    );
    env.ok(&["--config", &cfg, "backup", "svc-config", "svc-db"]);
    fs::write(&live, "rows: damaged\n").unwrap();

    // The plan changes nothing; without --yes nothing runs.
    let before = env.repo_files();
    let plan = env.ok(&["--config", &cfg, "restore", "svc-db", "--plan"]);
    assert!(
        plan.contains("1. safety backup") && plan.contains("2. feed svc.db"),
        "{plan}"
    );
    let (code, _, err) = env.run(&["--config", &cfg, "restore", "svc-db"]);
    assert_eq!(code, 1);
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(env.repo_files(), before);
    assert_eq!(fs::read_to_string(&live).unwrap(), "rows: damaged\n");

    // Interrupted at step 2: the journal says where, and --resume finishes it.
    fs::write(&broken, "").unwrap();
    let (code, _, err) = env.run(&["--config", &cfg, "restore", "svc-db", "--yes"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("stopped at step 2 of 2") && err.contains("cannot connect"),
        "{err}"
    );
    let (code, _, err) = env.run(&["--config", &cfg, "restore", "svc-db", "--yes"]);
    assert_eq!(code, 1);
    assert!(err.contains("--resume"), "{err}");
    fs::remove_file(&broken).unwrap();
    let out = env.ok(&["--config", &cfg, "restore", "svc-db", "--yes", "--resume"]);
    assert!(out.contains("restored"), "{out}");
    assert!(
        !out.contains("step 1/2"),
        "the safety step is not run again: {out}"
    );
    assert_eq!(fs::read_to_string(&live).unwrap(), "rows: 1 2 3\n");
    // The safety dump holds what was there before, and restores it.
    let snaps = env.json(&["snapshots", "--tag", "safety"]);
    let safety = snaps.as_array().unwrap();
    assert_eq!(safety.len(), 1);
    let before_restore = env.ok(&["dump", safety[0]["id"].as_str().unwrap(), "svc.db"]);
    assert_eq!(before_restore, "rows: damaged\n");

    // A files component: its directory lost, restored in place (no safety: nothing there).
    fs::remove_dir_all(&etc).unwrap();
    env.ok(&["--config", &cfg, "restore", "svc-config", "--yes"]);
    assert_eq!(
        fs::read_to_string(etc.join("svc.conf")).unwrap(),
        "port = 1\n"
    );
}
