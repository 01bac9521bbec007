//! `lifeboat key list|add|remove|passwd`: several passwords for one repository, changing one,
//! and the refusals that keep at least one working key.

use crate::support::{Env, PASSWORD};
use serde_json::Value;

/// Cheap Argon2 parameters, as `Env::new` uses for `init`.
const CHEAP: [&str; 4] = ["--kdf-memory-kib", "1024", "--kdf-passes", "1"];

/// Writes `password` into a file and returns its path, for --new-password-file.
fn password_file(env: &Env, name: &str, password: &str) -> String {
    let p = env.path(name);
    std::fs::write(&p, format!("{password}\n")).expect("write password file");
    p.display().to_string()
}

/// `key add` with the new password from a file; returns the new key's id.
fn add_key(env: &Env, password: &str) -> String {
    let f = password_file(env, "new-password", password);
    let mut args = vec!["key", "add", "--new-password-file", f.as_str()];
    args.extend_from_slice(&CHEAP);
    let v = env.json(&args);
    assert_eq!(v["message_type"], "key_added");
    v["id"].as_str().expect("id").to_string()
}

/// `key list --json` opened with `password`.
fn list(env: &Env, password: &str) -> Vec<Value> {
    let (code, out, err) = env.run_as(password, &["--json", "key", "list"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str::<Value>(&out)
        .expect("JSON")
        .as_array()
        .expect("array")
        .clone()
}

fn current(keys: &[Value]) -> String {
    let c: Vec<_> = keys.iter().filter(|k| k["current"] == true).collect();
    assert_eq!(c.len(), 1, "exactly one current key: {keys:?}");
    c[0]["id"].as_str().expect("id").to_string()
}

/// A small backup, so that "opens" also means "its data reads back".
fn backup_one_file(env: &Env) -> std::path::PathBuf {
    let src = env.path("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(src.join("f"), b"contents").expect("write");
    env.backup(&[src.to_str().expect("utf-8 path")]);
    src.join("f")
}

fn reads_back(env: &Env, password: &str, file: &std::path::Path) {
    let (code, out, err) = env.run_as(
        password,
        &["dump", "latest", file.to_str().expect("utf-8 path")],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "contents");
}

#[test]
fn key_add_lets_either_password_open_and_list_marks_the_current_one() {
    let env = Env::new();
    let file = backup_one_file(&env);
    let first = current(&list(&env, PASSWORD));
    let added = add_key(&env, "second password");
    assert_ne!(added, first);

    reads_back(&env, PASSWORD, &file);
    reads_back(&env, "second password", &file);

    let by_first = list(&env, PASSWORD);
    assert_eq!(by_first.len(), 2);
    assert_eq!(current(&by_first), first);
    for k in &by_first {
        assert!(k["damaged"].is_null(), "{k}");
        assert_eq!(k["kdf"]["memory_kib"], 1024);
        assert_eq!(k["kdf"]["passes"], 1);
    }
    assert_eq!(current(&list(&env, "second password")), added);

    // The human listing marks the current key and shows short ids.
    let (code, out, _) = env.run_as("second password", &["key", "list"]);
    assert_eq!(code, 0);
    let marked: Vec<_> = out.lines().filter(|l| l.starts_with('*')).collect();
    assert_eq!(marked.len(), 1, "{out}");
    assert!(marked[0].contains(&added[..8]), "{out}");
    assert!(out.contains(&first[..8]) && out.contains("2 keys"), "{out}");

    // The new password can also come from LIFEBOAT_NEW_PASSWORD.
    let mut args = vec!["--json", "key", "add"];
    args.extend_from_slice(&CHEAP);
    let out = env
        .cmd()
        .env("LIFEBOAT_NEW_PASSWORD", "third password")
        .args(&args)
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!stdout.contains("third password") && !stderr.contains("third password"));
    reads_back(&env, "third password", &file);
    assert_eq!(list(&env, PASSWORD).len(), 3);
}

#[test]
fn key_passwd_then_the_old_password_fails_and_the_new_one_works() {
    let env = Env::new();
    let file = backup_one_file(&env);
    let old = current(&list(&env, PASSWORD));
    let f = password_file(&env, "new-password", "new password");
    let mut args = vec!["key", "passwd", "--new-password-file", f.as_str()];
    args.extend_from_slice(&CHEAP);
    let v = env.json(&args);
    assert_eq!(v["message_type"], "key_changed");
    assert_eq!(v["removed"], old.as_str());

    let (code, _, err) = env.run(&["snapshots"]);
    assert_eq!(code, 12, "the old password must no longer open: {err}");
    assert!(err.contains("wrong password"), "{err}");
    reads_back(&env, "new password", &file);
    let keys = list(&env, "new password");
    assert_eq!(keys.len(), 1);
    assert_eq!(current(&keys), v["id"].as_str().expect("id"));
}

#[test]
fn the_last_key_and_the_current_key_cannot_be_removed() {
    let env = Env::new();
    let own = current(&list(&env, PASSWORD));
    env.refused(&["key", "remove", &own[..8]], 1, "add another key first");
    let other = add_key(&env, "other password");
    env.refused(
        &["key", "remove", &own],
        1,
        "is the one this password opened",
    );

    // Another key can go; its password then opens nothing.
    let v = env.json(&["key", "remove", &other[..12]]);
    assert_eq!(v["message_type"], "key_removed");
    assert_eq!(v["id"], other.as_str());
    let (code, _, err) = env.run_as("other password", &["snapshots"]);
    assert_eq!(code, 12, "{err}");
    env.ok(&["snapshots"]);

    // With two keys, each password can remove the other's key, never its own.
    add_key(&env, "other password");
    let (code, _, err) = env.run_as("other password", &["key", "remove", &own]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = env.run(&["snapshots"]);
    assert_eq!(code, 12, "{err}");
}

#[test]
fn removing_a_key_that_does_not_exist_says_so() {
    let env = Env::new();
    env.refused(
        &["key", "remove", "deadbeef"],
        1,
        "no key file matches \"deadbeef\"",
    );
    env.refused(&["key", "remove", "not-hex"], 1, "no key file matches");
}

#[test]
fn a_damaged_key_file_is_listed_as_damaged_and_the_others_still_work() {
    let env = Env::new();
    let file = backup_one_file(&env);
    let own = current(&list(&env, PASSWORD));
    let other = add_key(&env, "other password");
    // One flipped bit in the other key's wrapped master key.
    let p = env.repo.join("keys").join(&other);
    let mut b = std::fs::read(&p).expect("read key file");
    b[100] ^= 1;
    std::fs::write(&p, &b).expect("write key file");
    // And a file that is no key file at all, under a name tried before every other.
    let junk = "0".repeat(64);
    std::fs::write(env.repo.join("keys").join(&junk), b"not a key").expect("write");

    let keys = list(&env, PASSWORD);
    assert_eq!(keys.len(), 3);
    let find = |id: &str| {
        keys.iter()
            .find(|k| k["id"] == id)
            .unwrap_or_else(|| panic!("{id} not listed: {keys:?}"))
    };
    assert!(find(&other)["damaged"].is_string());
    assert!(find(&junk)["damaged"].is_string());
    assert!(find(&junk)["kdf"].is_null());
    assert!(find(&own)["damaged"].is_null());
    let (code, out, _) = env.run(&["key", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("DAMAGED") && out.contains("3 keys, 2 damaged"),
        "{out}"
    );

    // The undamaged key still opens and reads; the damaged one's password opens nothing.
    reads_back(&env, PASSWORD, &file);
    let (code, _, err) = env.run_as("other password", &["snapshots"]);
    assert_eq!(code, 12, "{err}");
    // The damaged files can be removed like any other key file.
    env.ok(&["key", "remove", &junk]);
    env.ok(&["key", "remove", &other]);
    assert_eq!(list(&env, PASSWORD).len(), 1);
}

#[test]
fn key_add_needs_a_new_password_and_the_current_one() {
    let env = Env::new();
    env.refused(&["key", "add"], 1, "no new password");
    let empty = password_file(&env, "empty", "");
    env.refused(
        &["key", "add", "--new-password-file", &empty],
        1,
        "the new password is empty",
    );
    let before = env.repo_files();
    let f = password_file(&env, "new-password", "new password");
    let (code, _, err) = env.run_as(
        "not the password",
        &["key", "passwd", "--new-password-file", &f],
    );
    assert_eq!(code, 12, "{err}");
    assert_eq!(env.repo_files(), before);
}

/// Every pack, index segment and snapshot is sealed under the keyring's current generation.
fn all_sealed_under_current_key(env: &Env, password: &str) -> (usize, usize) {
    use lifeboat_storage::{FileKind, Handle, Storage};
    let storage: std::sync::Arc<dyn Storage> =
        std::sync::Arc::new(lifeboat_storage::LocalStorage::new(&env.repo));
    let repo = lifeboat_repo::Repository::open(storage.clone(), password.as_bytes()).unwrap();
    let current = repo.keys().current_generation();
    let (mut old, mut total) = (0, 0);
    for kind in [FileKind::Pack, FileKind::Index, FileKind::Snapshot] {
        for (name, _) in storage.list(kind).unwrap() {
            let b = storage.get_range(&Handle::new(kind, name), 0, 40).unwrap();
            let salt: [u8; 32] = b[8..40].try_into().unwrap();
            total += 1;
            if repo.keys().generation_of(&salt) != current {
                old += 1;
            }
        }
    }
    (old, total)
}

#[test]
fn issue4_key_rotate_reencrypts_everything_and_old_passwords_stop_working() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), crate::support::bytes(800_000, 1)).unwrap();
    let first = env.backup(&[src.to_str().unwrap()]);
    std::fs::write(env.path("pw2"), "second password\n").unwrap();
    env.ok(&[
        "key",
        "add",
        "--new-password-file",
        env.path("pw2").to_str().unwrap(),
    ]);

    // Other keys would be removed: refused without --yes, nothing changed.
    std::fs::write(env.path("new"), "rotated password\n").unwrap();
    let newpw = env.path("new");
    env.refused(
        &[
            "key",
            "rotate",
            "--new-password-file",
            newpw.to_str().unwrap(),
        ],
        1,
        "--yes",
    );
    env.ok(&[
        "key",
        "rotate",
        "--yes",
        "--new-password-file",
        newpw.to_str().unwrap(),
    ]);
    // Both old passwords stop working; the new one works.
    assert_eq!(env.run(&["snapshots"]).0, 12);
    assert_eq!(env.run_as("second password", &["snapshots"]).0, 12);
    let new = "rotated password";
    assert_eq!(env.run_as(new, &["snapshots"]).0, 0);
    let (old, total) = all_sealed_under_current_key(&env, new);
    assert_eq!(old, total, "nothing re-encrypted yet");

    // New data under the new key, deduplicated against the old (same ids).
    std::fs::write(src.join("b"), crate::support::bytes(300_000, 2)).unwrap();
    let (c, out, err) = env.run_as(new, &["--json", "backup", src.to_str().unwrap()]);
    assert_eq!(c, 0, "{err}");
    let v: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let added = v["bytes_added"]
        .as_u64()
        .or(v["summary"]["bytes_added"].as_u64())
        .unwrap();
    assert!(added < 500_000, "old data deduplicated: {added}");

    // Prune re-encrypts what is under the old key; a second prune deletes the old packs.
    for _ in 0..2 {
        let (c, _, err) = env.run_as(new, &["prune", "--keep-delete", "0"]);
        assert_eq!(c, 0, "{err}");
    }
    let (old, total) = all_sealed_under_current_key(&env, new);
    assert_eq!(old, 0, "{old} of {total} objects still under the old key");
    let (c, _, err) = env.run_as(new, &["check", "--read-data"]);
    assert_eq!(c, 0, "{err}");
    // Snapshot files were sealed anew (new names); both snapshots restore.
    let (_, out, _) = env.run_as(new, &["--json", "snapshots"]);
    let snaps: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let ids: Vec<String> = snaps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(!ids.iter().any(|i| first.starts_with(i.as_str())));
    for id in ids {
        let t = env.path(&format!("r-{id}"));
        let (c, _, err) = env.run_as(new, &["restore", &id, "--target", t.to_str().unwrap()]);
        assert_eq!(c, 0, "{err}");
        let got = crate::support::restored(&t, &src);
        assert_eq!(
            std::fs::read(got.join("a")).unwrap(),
            crate::support::bytes(800_000, 1)
        );
    }
}

#[test]
fn key_rotate_now_reencrypts_at_once() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), crate::support::bytes(500_000, 3)).unwrap();
    env.backup(&[src.to_str().unwrap()]);
    std::fs::write(env.path("new"), "after\n").unwrap();
    env.ok(&[
        "key",
        "rotate",
        "--now",
        "--new-password-file",
        env.path("new").to_str().unwrap(),
    ]);
    // Only the packs waiting for the grace period are still under the old key.
    let (c, _, err) = env.run_as("after", &["prune", "--keep-delete", "0"]);
    assert_eq!(c, 0, "{err}");
    let (old, _) = all_sealed_under_current_key(&env, "after");
    assert_eq!(old, 0);
    assert_eq!(env.run_as("after", &["check", "--read-data"]).0, 0);
}
