//! Named streams: standard input and command output. A dump that fails must never become a
//! good-looking snapshot.

use crate::support::*;
use std::io::Write;
use std::process::Stdio;

#[test]
fn stdin_and_commands_are_stored_as_files() {
    let env = Env::new();
    let mut child = env
        .cmd()
        .args([
            "--json",
            "backup",
            "--stdin-filename",
            "dump.sql",
            "-",
            "--from-command",
            "rows.txt=seq 1 200000",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let payload = bytes(5 << 20, 77);
    child.stdin.take().unwrap().write_all(&payload).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let snaps = env.json(&["snapshots"]);
    let streams = snaps[0]["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 2);
    assert!(
        streams
            .iter()
            .any(|s| s["name"] == "rows.txt" && s["command"] == "seq 1 200000")
    );
    let dumped = env
        .cmd()
        .args(["dump", "latest", "dump.sql"])
        .output()
        .unwrap();
    assert_eq!(dumped.stdout, payload);
    let rows = env
        .cmd()
        .args(["dump", "latest", "/rows.txt"])
        .output()
        .unwrap();
    let expect: String = (1..=200000).map(|i| format!("{i}\n")).collect();
    assert_eq!(String::from_utf8(rows.stdout).unwrap(), expect);
}

#[test]
fn failing_command_writes_no_snapshot() {
    let env = Env::new();
    let before = env.repo_files();
    for (cmd, why) in [
        (
            "echo partial; echo 'mariadb-dump: Got error 2013: Lost connection' >&2; exit 2",
            "exited with status 2",
        ),
        ("echo partial; kill -9 $$", "killed by signal 9"),
        ("true", "produced no data"),
        ("/nonexistent/dump-tool", "exited with status 127"),
    ] {
        let (code, _, err) = env.run(&["backup", "--from-command", &format!("db.sql={cmd}")]);
        assert_eq!(code, 1, "{cmd}: {err}");
        assert!(err.contains(why), "{cmd}: {err}");
        assert!(err.contains("no snapshot was written"), "{err}");
    }
    let (_, _, err) = env.run(&[
        "backup",
        "--from-command",
        "db.sql=echo x; echo 'Lost connection' >&2; exit 3",
    ]);
    assert!(
        err.contains("Lost connection"),
        "the dump's stderr is shown: {err}"
    );
    assert!(env.snapshot_ids().is_empty());
    // Packs may have been written, but no snapshot, index or anything referencing them.
    let after = env.repo_files();
    assert!(after.keys().filter(|k| k.starts_with("snapshots")).count() == 0);
    assert_eq!(before.keys().filter(|k| k.starts_with("index")).count(), 0);
}

#[test]
fn stream_names_are_checked() {
    let env = Env::new();
    let src = env.path("etc");
    std::fs::create_dir(&src).unwrap();
    for (args, msg) in [
        (
            vec!["backup", "--from-command", "a/b=echo x"],
            "contains '/'",
        ),
        (vec!["backup", "--from-command", "noequals"], "NAME=COMMAND"),
        (vec!["backup", "-"], "--stdin-filename"),
        (
            vec![
                "backup",
                "--from-command",
                "a=echo 1",
                "--from-command",
                "a=echo 2",
            ],
            "repeated",
        ),
    ] {
        env.refused(&args, 1, msg);
    }
    // A stream named like a top-level directory of the backup would shadow it.
    let (code, _, err) = env.run(&["backup", "/tmp", "--from-command", "tmp=echo x"]);
    assert_eq!(code, 1);
    assert!(err.contains("also a top-level path"), "{err}");
}

#[test]
/// Regression (issue 3): dump commands inherited LIFEBOAT_PASSWORD from lifeboat's environment.
fn issue3_password_never_reaches_argv_or_environment_of_commands() {
    let env = Env::new();
    // The dump command records the command lines of lifeboat and of itself.
    env.backup(&[
        "--from-command",
        "argv=cat /proc/$PPID/cmdline; echo; cat /proc/self/cmdline; env",
    ]);
    let out = env.cmd().args(["dump", "latest", "argv"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("backup"), "{text}");
    assert!(
        !text.contains(PASSWORD),
        "the password reached a child's argv or environment: {text}"
    );
}

/// Regression (issue 3): a stream name the tree decoder rejects (over 4096 bytes) made the
/// snapshot's root tree unreadable.
#[test]
fn issue3_stream_names_follow_the_tree_rules() {
    let env = Env::new();
    let long = format!("{}=echo x", "a".repeat(5000));
    env.refused(
        &["backup", "--from-command", &long],
        1,
        "longer than 4096 bytes",
    );
    let mut child = env
        .cmd()
        .args(["backup", "--stdin-filename", &"b".repeat(4097), "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"data").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(env.snapshot_ids().is_empty());
}
