//! `forget`: retention policies over snapshots at chosen times (`backup --time`), dry runs,
//! JSON, the refusal to forget everything by accident, explicit ids, grouping, local-time
//! buckets, damaged snapshot files, and restores of what was kept.

use crate::support::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// POSIX TZ strings, so the tests need no time zone database and give the same buckets on
/// every machine.
const UTC: &str = "UTC0";
const PLUS10: &str = "<+10>-10";

fn run_tz(env: &Env, tz: &str, args: &[&str]) -> (i32, String, String) {
    let out = env.cmd().env("TZ", tz).args(args).output().expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok_tz(env: &Env, tz: &str, args: &[&str]) -> String {
    let (code, out, err) = run_tz(env, tz, args);
    assert_eq!(code, 0, "lifeboat {args:?}:\nstdout: {out}\nstderr: {err}");
    out
}

fn json_tz(env: &Env, tz: &str, args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let out = ok_tz(env, tz, &a);
    serde_json::from_str(out.lines().last().unwrap_or("")).expect("JSON")
}

/// A source directory whose one file says which backup it is.
struct Source {
    dir: PathBuf,
}

impl Source {
    fn new(env: &Env, name: &str) -> Source {
        let dir = env.path(name);
        fs::create_dir_all(&dir).expect("mkdir");
        Source { dir }
    }

    fn s(&self) -> &str {
        self.dir.to_str().expect("utf-8 path")
    }

    /// Backs up with the file saying `time`, recorded at `time`; returns the snapshot id.
    fn backup_at(&self, env: &Env, time: &str, extra: &[&str]) -> String {
        fs::write(self.dir.join("label"), time).expect("write");
        let mut a = vec![self.s(), "--time", time];
        a.extend_from_slice(extra);
        env.backup(&a)
    }
}

/// snapshot id -> time, as `snapshots --json` shows them.
fn times(env: &Env) -> BTreeMap<String, String> {
    env.json(&["snapshots"])
        .as_array()
        .expect("array")
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap_or("").to_string(),
                s["time"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The kept snapshots of a forget --json result: time -> reasons, over all groups.
fn kept_reasons(v: &Value, by_id: &BTreeMap<String, String>) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for g in v["groups"].as_array().expect("groups") {
        for k in g["keep"].as_array().expect("keep") {
            let id = k["id"].as_str().expect("id");
            let reasons = k["reasons"]
                .as_array()
                .expect("reasons")
                .iter()
                .map(|r| r.as_str().unwrap_or("").to_string())
                .collect();
            out.insert(by_id.get(id).cloned().unwrap_or_default(), reasons);
        }
    }
    out
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_str().unwrap_or("").to_string())
        .collect()
}

const TWENTY: [&str; 20] = [
    "2023-11-15T10:00:00Z",
    "2023-12-01T10:00:00Z",
    "2023-12-20T10:00:00Z",
    "2024-01-05T10:00:00Z",
    "2024-01-20T10:00:00Z",
    "2024-01-31T23:00:00Z",
    "2024-02-01T09:00:00Z",
    "2024-02-05T09:00:00Z", // Monday, ISO week 6
    "2024-02-11T09:00:00Z", // Sunday, ISO week 6
    "2024-02-12T09:00:00Z", // Monday, ISO week 7
    "2024-02-13T09:00:00Z",
    "2024-02-14T08:00:00Z",
    "2024-02-14T20:00:00Z",
    "2024-02-15T01:00:00Z",
    "2024-02-15T02:30:00Z",
    "2024-02-15T02:45:00Z",
    "2024-02-15T07:00:00Z",
    "2024-02-15T12:00:00Z",
    "2024-02-15T12:30:00Z",
    "2024-02-15T18:00:00Z",
];

#[test]
fn policy_keeps_the_expected_snapshots_and_they_still_restore() {
    let env = Env::new();
    let src = Source::new(&env, "src");
    for t in TWENTY {
        src.backup_at(&env, t, &["--host", "ctrl1"]);
    }
    let by_id = times(&env);
    assert_eq!(by_id.len(), 20);
    let policy = [
        "forget",
        "--keep-last",
        "2",
        "--keep-daily",
        "3",
        "--keep-weekly",
        "2",
        "--keep-monthly",
        "3",
        "--keep-yearly",
        "2",
    ];
    let v = json_tz(&env, UTC, &[&policy[..], &["--dry-run"]].concat());
    let want: BTreeMap<String, Vec<String>> = [
        (
            "2024-02-15T18:00:00Z",
            &["last 1", "daily 1", "weekly 1", "monthly 1", "yearly 1"][..],
        ),
        ("2024-02-15T12:30:00Z", &["last 2"]),
        ("2024-02-14T20:00:00Z", &["daily 2"]),
        ("2024-02-13T09:00:00Z", &["daily 3"]),
        ("2024-02-11T09:00:00Z", &["weekly 2"]),
        ("2024-01-31T23:00:00Z", &["monthly 2"]),
        ("2023-12-20T10:00:00Z", &["monthly 3", "yearly 2"]),
    ]
    .iter()
    .map(|(t, r)| (t.to_string(), r.iter().map(|s| s.to_string()).collect()))
    .collect();
    assert_eq!(kept_reasons(&v, &by_id), want);

    let out = ok_tz(&env, UTC, &policy);
    assert!(out.contains("removed 13 of 20 snapshots"), "{out}");
    assert!(
        out.contains("run `lifeboat prune` to free the space"),
        "{out}"
    );
    assert!(out.contains("daily 2"), "{out}");
    let left: Vec<String> = times(&env).into_values().collect();
    let mut want_times: Vec<String> = want.keys().cloned().collect();
    want_times.sort();
    let mut left_sorted = left.clone();
    left_sorted.sort();
    assert_eq!(left_sorted, want_times);

    // The data of every kept snapshot is still there; forget removed only snapshot files.
    for (id, t) in times(&env) {
        let target = env.path(&format!("restore-{}", &id[..8]));
        env.ok(&["restore", &id, "--target", target.to_str().expect("utf-8")]);
        let label = restored(&target, &src.dir.join("label"));
        assert_eq!(fs::read_to_string(&label).expect("restored label"), t);
    }
    env.ok(&["check", "--read-data"]);

    // Applying the same policy again removes nothing.
    let out = ok_tz(&env, UTC, &policy);
    assert!(
        out.contains("nothing to remove (7 snapshots kept)"),
        "{out}"
    );
    assert!(!out.contains("lifeboat prune"), "{out}");
}

#[test]
fn buckets_follow_the_local_time_zone() {
    let env = Env::new();
    let src = Source::new(&env, "src");
    let early = src.backup_at(&env, "2024-01-20T10:00:00Z", &[]);
    // 23:00 UTC on 31 January is 09:00 on 1 February at UTC+10.
    let late = src.backup_at(&env, "2024-01-31T23:00:00Z", &[]);
    // A civil time is read in the local time zone: 19:00 at UTC+10 is 09:00 UTC.
    fs::write(src.dir.join("label"), "local").expect("write");
    let out = ok_tz(
        &env,
        PLUS10,
        &["--json", "backup", src.s(), "--time", "2024-02-01 19:00:00"],
    );
    let v: Value = serde_json::from_str(out.lines().last().unwrap_or("")).expect("JSON");
    let newest = v["snapshot_id"].as_str().expect("id").to_string();
    assert_eq!(times(&env)[&newest], "2024-02-01T09:00:00Z");

    let args = ["forget", "--keep-monthly", "2", "--dry-run"];
    let utc = json_tz(&env, UTC, &args);
    assert_eq!(strs(&utc["remove"]), [early]);
    let plus10 = json_tz(&env, PLUS10, &args);
    assert_eq!(strs(&plus10["remove"]), [late]);
    let by_id = times(&env);
    assert_eq!(
        kept_reasons(&plus10, &by_id)["2024-01-20T10:00:00Z"],
        ["monthly 2"]
    );
}

#[test]
fn dry_run_changes_nothing_and_says_why() {
    let env = Env::new();
    let src = Source::new(&env, "src");
    for t in [
        "2024-03-01T10:00:00Z",
        "2024-03-02T10:00:00Z",
        "2024-03-03T10:00:00Z",
    ] {
        src.backup_at(&env, t, &["--tag", "nightly"]);
    }
    let before = env.repo_files();
    let out = ok_tz(
        &env,
        UTC,
        &[
            "forget",
            "--keep-last",
            "1",
            "--keep-within",
            "1d",
            "--dry-run",
        ],
    );
    assert_eq!(env.repo_files(), before, "a dry run changed the repository");
    assert!(out.contains("policy: keep 1 last, within 1d"), "{out}");
    assert!(out.contains("keep 1, remove 2"), "{out}");
    assert!(out.contains("last 1, within 1d"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("  remove ")).count(),
        2,
        "{out}"
    );
    assert!(
        out.contains("dry run: would remove 2 of 3 snapshots; nothing was changed"),
        "{out}"
    );
    assert!(!out.contains("lifeboat prune"), "{out}");
    // Tags keep whatever carries them.
    let out = ok_tz(&env, UTC, &["forget", "--keep-tag", "nightly", "-n"]);
    assert!(out.contains("would remove 0 of 3"), "{out}");
    assert!(out.contains("tag nightly"), "{out}");
    assert_eq!(env.repo_files(), before);
}

#[test]
fn json_lists_groups_decisions_and_reasons() {
    let env = Env::new();
    let src = Source::new(&env, "src");
    let a1 = src.backup_at(&env, "2024-03-01T10:00:00Z", &["--host", "a"]);
    let a2 = src.backup_at(&env, "2024-03-02T10:00:00Z", &["--host", "a", "--tag", "t"]);
    let b1 = src.backup_at(&env, "2024-03-01T11:00:00Z", &["--host", "b"]);
    let v = json_tz(&env, UTC, &["forget", "--keep-last", "1"]);
    assert_eq!(v["message_type"], "forget");
    assert_eq!(v["dry_run"], false);
    assert_eq!(v["policy"], "keep 1 last");
    assert_eq!(v["group_by"], "host,paths");
    let groups = v["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["group"]["host"], "a");
    assert_eq!(strs(&groups[0]["group"]["paths"]), [src.s()]);
    assert!(groups[0]["group"].get("tags").is_none());
    let kept = &groups[0]["keep"][0];
    assert_eq!(kept["id"], a2.as_str());
    assert_eq!(kept["short_id"], &a2[..8]);
    assert_eq!(kept["time"], "2024-03-02T10:00:00Z");
    assert_eq!(kept["hostname"], "a");
    assert_eq!(strs(&kept["tags"]), ["t"]);
    assert_eq!(strs(&kept["reasons"]), ["last 1"]);
    assert_eq!(groups[0]["remove"][0]["id"], a1.as_str());
    assert_eq!(
        strs(&groups[0]["remove"][0]["reasons"]),
        Vec::<String>::new()
    );
    assert_eq!(groups[1]["keep"][0]["id"], b1.as_str());
    let mut keep = strs(&v["keep"]);
    keep.sort();
    let mut want = vec![a2.clone(), b1.clone()];
    want.sort();
    assert_eq!(keep, want);
    assert_eq!(strs(&v["remove"]), std::slice::from_ref(&a1));
    assert_eq!(strs(&v["removed"]), [a1]);
    assert_eq!(v["damaged"].as_array().map(Vec::len), Some(0));
    assert_eq!(v["failed"].as_array().map(Vec::len), Some(0));
    let mut left = env.snapshot_ids();
    left.sort();
    assert_eq!(left, want);
}

#[test]
fn refuses_to_forget_without_a_keep_option() {
    let env = Env::new();
    let src = Source::new(&env, "src");
    src.backup_at(&env, "2024-03-01T10:00:00Z", &[]);
    for args in [
        &["forget"][..],
        &["forget", "--host", "x"],
        &["forget", "--keep-daily", "0"],
        &["forget", "--dry-run"],
    ] {
        env.refused(args, 1, "--defaults");
        env.refused(args, 1, "--keep-none");
    }
    // Contradictions are usage errors, and change nothing either.
    env.refused(
        &["forget", "--keep-none", "--keep-last", "1"],
        2,
        "cannot be used",
    );
    env.refused(&["forget", "--all", "--defaults"], 2, "cannot be used");
    env.refused(&["forget", "--keep-within", "7"], 2, "not a duration");
    env.refused(&["forget", "--keep-within", "0d"], 2, "more than zero");
    env.refused(&["forget", "--keep-daily=-1"], 2, "not a count");
    env.refused(
        &["forget", "--group-by", "hostname", "--keep-last", "1"],
        2,
        "cannot group by",
    );
    assert_eq!(env.snapshot_ids().len(), 1);
}

#[test]
fn keep_none_forgets_every_selected_snapshot() {
    let env = Env::new();
    let src = Source::new(&env, "src");
    src.backup_at(&env, "2024-03-01T10:00:00Z", &["--host", "a"]);
    src.backup_at(&env, "2024-03-02T10:00:00Z", &["--host", "a"]);
    let b = src.backup_at(&env, "2024-03-01T10:00:00Z", &["--host", "b"]);
    let c = src.backup_at(&env, "2024-03-01T10:00:00Z", &["--host", "c"]);
    let out = env.ok(&["forget", "--keep-none", "--host", "a"]);
    assert!(out.contains("removed 2 of 2 snapshots"), "{out}");
    assert!(out.contains("lifeboat prune"), "{out}");
    let mut left = env.snapshot_ids();
    left.sort();
    let mut want = vec![b.clone(), c.clone()];
    want.sort();
    assert_eq!(left, want);
    // `--all` is the same option.
    let v = env.json(&["forget", "--all", "--host", "b"]);
    assert_eq!(v["policy"], "keep none");
    assert_eq!(strs(&v["removed"]), [b]);
    assert_eq!(env.snapshot_ids(), [c]);
}

#[test]
fn snapshot_ids_forget_exactly_those() {
    let env = Env::new();
    let src = Source::new(&env, "src");
    let s1 = src.backup_at(&env, "2024-03-01T10:00:00Z", &[]);
    let s2 = src.backup_at(&env, "2024-03-02T10:00:00Z", &[]);
    let s3 = src.backup_at(&env, "2024-03-03T10:00:00Z", &[]);
    let s4 = src.backup_at(&env, "2024-03-04T10:00:00Z", &[]);
    env.refused(&["forget", "0000000000"], 1, "0000000000");
    env.refused(&["forget", "not-hex"], 1, "not a snapshot id");
    env.refused(&["forget", &s1, "--keep-last", "1"], 2, "cannot be used");
    let before = env.repo_files();
    let v = env.json(&["forget", "--dry-run", &s2[..8], &s2]);
    assert_eq!(strs(&v["remove"]), std::slice::from_ref(&s2));
    assert!(v["policy"].is_null());
    assert_eq!(env.repo_files(), before);

    let out = env.ok(&["forget", &s2[..10], &s3]);
    assert!(out.contains("removed 2 of 2 snapshots"), "{out}");
    let mut left = env.snapshot_ids();
    left.sort();
    let mut want = vec![s1.clone(), s4.clone()];
    want.sort();
    assert_eq!(left, want);
    // `latest` is the newest by time.
    env.ok(&["forget", "latest"]);
    assert_eq!(env.snapshot_ids(), [s1]);
}

#[test]
fn groups_by_host_and_paths_unless_told_otherwise() {
    let env = Env::new();
    let etc = Source::new(&env, "etc");
    let var = Source::new(&env, "var");
    for (i, t) in [
        "2024-03-01T10:00:00Z",
        "2024-03-02T10:00:00Z",
        "2024-03-03T10:00:00Z",
    ]
    .iter()
    .enumerate()
    {
        etc.backup_at(&env, t, &["--host", "ctrl1"]);
        etc.backup_at(&env, t, &["--host", "ctrl2"]);
        if i == 0 {
            var.backup_at(&env, t, &["--host", "ctrl1"]);
        }
    }
    // host,paths: ctrl1 /etc, ctrl1 /var, ctrl2 /etc.
    let v = json_tz(&env, UTC, &["forget", "--keep-last", "1", "-n"]);
    assert_eq!(v["groups"].as_array().map(Vec::len), Some(3));
    assert_eq!(strs(&v["keep"]).len(), 3);
    // host only: ctrl1's /var backup is older than its /etc ones and goes.
    let v = json_tz(
        &env,
        UTC,
        &["forget", "--keep-last", "1", "-g", "host", "-n"],
    );
    assert_eq!(v["groups"].as_array().map(Vec::len), Some(2));
    assert_eq!(strs(&v["keep"]).len(), 2);
    assert_eq!(
        v["groups"][0]["group"],
        serde_json::json!({"host": "ctrl1"})
    );
    // One group for everything: one snapshot stays.
    let v = json_tz(
        &env,
        UTC,
        &["forget", "--keep-last", "1", "--group-by", "", "-n"],
    );
    assert_eq!(v["groups"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["groups"][0]["group"], serde_json::json!({}));
    assert_eq!(strs(&v["keep"]).len(), 1);
    assert_eq!(strs(&v["remove"]).len(), 6);
    // The filter selects what is considered at all: ctrl2 is not touched.
    let out = ok_tz(
        &env,
        UTC,
        &["forget", "--keep-last", "1", "--host", "ctrl1"],
    );
    assert!(out.contains("removed 2 of 4 snapshots"), "{out}");
    let hosts: Vec<String> = env
        .json(&["snapshots", "--host", "ctrl2"])
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["hostname"].to_string())
        .collect();
    assert_eq!(hosts.len(), 3);
    assert_eq!(env.snapshot_ids().len(), 5);
}

#[test]
fn defaults_keep_a_week_of_days_then_weeks_and_months() {
    let env = Env::new();
    let src = Source::new(&env, "src");
    // Friday 1 March to Sunday 10 March 2024, one backup a day.
    for day in 1..=10 {
        src.backup_at(&env, &format!("2024-03-{day:02}T12:00:00Z"), &[]);
    }
    let by_id = times(&env);
    let v = json_tz(
        &env,
        UTC,
        &["forget", "--defaults", "--keep-last", "1", "-n"],
    );
    assert_eq!(v["policy"], "keep 1 last, 7 daily, 4 weekly, 6 monthly");
    let kept = kept_reasons(&v, &by_id);
    let day = |d: u32| format!("2024-03-{d:02}T12:00:00Z");
    assert_eq!(
        kept[&day(10)],
        ["last 1", "daily 1", "weekly 1", "monthly 1"]
    );
    assert_eq!(kept[&day(4)], ["daily 7"]);
    // Sunday 3 March ends the week before.
    assert_eq!(kept[&day(3)], ["weekly 2"]);
    // Counts left over keep the oldest snapshot.
    assert_eq!(kept[&day(1)], ["oldest weekly", "oldest monthly"]);
    assert_eq!(kept.len(), 9);
    assert_eq!(strs(&v["remove"]).len(), 1);
    assert_eq!(by_id[&strs(&v["remove"])[0]], day(2));
}

#[test]
fn a_damaged_snapshot_is_never_forgotten_by_a_policy() {
    let env = Env::new();
    let src = Source::new(&env, "src");
    let bad = src.backup_at(&env, "2024-03-01T10:00:00Z", &[]);
    let good = src.backup_at(&env, "2024-03-02T10:00:00Z", &[]);
    let file = env.repo.join("snapshots").join(&bad);
    let mut bytes = fs::read(&file).expect("read snapshot");
    let n = bytes.len();
    bytes[n / 2] ^= 0x40;
    fs::write(&file, &bytes).expect("write");

    // --no-cache: over a remote backend a cached good copy would stand in for the file.
    let (code, out, err) = env.run(&["--no-cache", "forget", "--keep-none"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains(&format!("snapshots/{bad}")), "{err}");
    assert!(err.contains("left alone"), "{err}");
    assert!(file.exists(), "a policy removed a damaged snapshot file");
    assert!(!env.repo.join("snapshots").join(&good).exists());
    let v = env.json(&["--no-cache", "forget", "--keep-none"]);
    assert_eq!(v["damaged"][0]["file"], format!("snapshots/{bad}"));
    assert!(file.exists());

    // Named by id, it is removed: that is the operator's decision.
    let out = env.ok(&["--no-cache", "forget", &bad[..12]]);
    assert!(out.contains("damaged snapshot file"), "{out}");
    assert!(!file.exists());
}

#[test]
fn backup_time_is_recorded_and_validated() {
    let env = Env::new();
    let src = Source::new(&env, "src");
    let id = src.backup_at(&env, "2019-06-30T22:15:00+02:00", &[]);
    let snaps = env.json(&["snapshots"]);
    assert_eq!(snaps[0]["id"], id.as_str());
    assert_eq!(snaps[0]["time"], "2019-06-30T20:15:00Z");
    // Only the backdated snapshot is left, not the one stamped with the real time.
    assert_eq!(files_in(&env.repo.join("snapshots")), 1);
    env.refused(
        &["backup", src.s(), "--time", "last tuesday"],
        2,
        "not a time",
    );
}

fn files_in(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}
