//! `lifeboat repair index|snapshots`: lost index segments, a damaged segment, and a lost pack
//! whose files are recorded as lost while everything else stays restorable.

use crate::support::*;
use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

fn packs(env: &Env) -> BTreeSet<PathBuf> {
    files_under(&env.repo.join("data")).into_keys().collect()
}

fn index_files(env: &Env) -> Vec<PathBuf> {
    files_under(&env.repo.join("index"))
        .into_keys()
        .map(|p| env.repo.join("index").join(p))
        .collect()
}

#[test]
fn repair_index_rebuilds_the_index_from_pack_trailers() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), bytes(700_000, 1)).unwrap();
    env.backup(&[src.to_str().unwrap()]);
    fs::write(src.join("b"), bytes(700_000, 2)).unwrap();
    let id = env.backup(&[src.to_str().unwrap()]);
    for f in index_files(&env) {
        fs::remove_file(f).unwrap();
    }
    let (code, _, _) = env.run(&["check"]);
    assert_eq!(code, 1, "check must see the missing index");
    let v = env.json(&["repair", "index", "--dry-run"]);
    assert_eq!(
        v["packs_from_trailers"].as_u64().unwrap(),
        packs(&env).len() as u64
    );
    assert!(index_files(&env).is_empty(), "a dry run wrote a segment");
    env.ok(&["repair", "index"]);
    env.ok(&["check", "--read-data"]);
    let target = env.path("r");
    env.ok(&["restore", &id, "--target", target.to_str().unwrap(), "-q"]);
    assert_same_tree(&src, &restored(&target, &src));
}

#[test]
fn issue4_a_damaged_index_segment_stops_prune_until_repair_index() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), bytes(500_000, 3)).unwrap();
    let first = env.backup(&[src.to_str().unwrap()]);
    fs::write(src.join("a"), bytes(500_000, 4)).unwrap();
    let second = env.backup(&[src.to_str().unwrap()]);
    env.ok(&["forget", &first]);
    let seg = index_files(&env).into_iter().next().unwrap();
    let mut b = fs::read(&seg).unwrap();
    b[60] ^= 0x01;
    fs::write(&seg, b).unwrap();
    // --no-cache: over a remote backend a cached good copy would stand in for the segment.
    env.refused(
        &["--no-cache", "prune", "--keep-delete", "0"],
        1,
        "repair index",
    );
    env.ok(&["repair", "index"]);
    env.ok(&["prune", "--keep-delete", "0"]);
    env.ok(&["prune", "--keep-delete", "0"]);
    env.ok(&["check", "--read-data"]);
    let target = env.path("r");
    env.ok(&[
        "restore",
        &second,
        "--target",
        target.to_str().unwrap(),
        "-q",
    ]);
    assert_same_tree(&src, &restored(&target, &src));
}

#[test]
fn repair_snapshots_records_lost_files_and_keeps_the_rest_restorable() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("keep")).unwrap();
    fs::write(src.join("keep/a"), bytes(600_000, 5)).unwrap();
    env.backup(&[src.to_str().unwrap()]);
    let before = packs(&env);
    fs::write(src.join("lost"), bytes(900_000, 6)).unwrap();
    let id = env.backup(&[src.to_str().unwrap()]);
    // The new data pack holds only "lost"'s content: lose it.
    let new: Vec<PathBuf> = packs(&env).difference(&before).cloned().collect();
    let data_pack = new
        .iter()
        .max_by_key(|p| fs::metadata(env.repo.join("data").join(p)).unwrap().len())
        .unwrap();
    fs::remove_file(env.repo.join("data").join(data_pack)).unwrap();
    env.ok(&["repair", "index"]);
    let (code, _, err) = env.run(&["check"]);
    assert_eq!(code, 1, "{err}");

    let v = env.json(&["repair", "snapshots", "--dry-run"]);
    assert_eq!(v["repaired"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(env.snapshot_ids().len(), 2);
    let v = env.json(&["repair", "snapshots"]);
    let rep = &v["repaired"][0];
    assert!(rep["snapshot"].as_str().unwrap().starts_with(&id));
    let lost: Vec<&str> = rep["lost"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["path"].as_str().unwrap())
        .collect();
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert!(lost[0].ends_with("/src/lost"), "{lost:?}");
    // The original is forgotten; the new one says it is incomplete and why.
    let snaps = env.json(&["snapshots"]);
    let repaired = snaps
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == "repaired")
        })
        .expect("a repaired snapshot");
    assert_eq!(repaired["complete"], false, "{repaired}");
    assert!(
        !env.snapshot_ids()
            .iter()
            .any(|s| id.starts_with(s.as_str()))
    );
    env.ok(&["check", "--read-data"]);
    let target = env.path("r");
    env.ok(&[
        "restore",
        repaired["id"].as_str().unwrap(),
        "--target",
        target.to_str().unwrap(),
        "-q",
    ]);
    let out = restored(&target, &src);
    assert_eq!(fs::read(out.join("keep/a")).unwrap(), bytes(600_000, 5));
    assert_eq!(fs::metadata(out.join("lost")).unwrap().len(), 0);
    // Prune works again on the repaired repository.
    env.ok(&["prune", "--keep-delete", "0"]);
}

/// The data pack a backup added (the largest new pack).
fn new_data_pack(env: &Env, before: &BTreeSet<PathBuf>) -> PathBuf {
    let new: Vec<PathBuf> = packs(env).difference(before).cloned().collect();
    env.repo.join("data").join(
        new.iter()
            .max_by_key(|p| fs::metadata(env.repo.join("data").join(p)).unwrap().len())
            .unwrap(),
    )
}

#[test]
fn issue4_damage_found_by_check_is_healed_by_the_next_backup_and_repair_packs() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), bytes(300_000, 11)).unwrap();
    fs::write(src.join("b"), bytes(300_000, 12)).unwrap();
    let first = env.backup(&[src.to_str().unwrap()]);
    let pack = new_data_pack(&env, &BTreeSet::new());
    // Bit rot in the middle of the data pack: one blob is damaged, the others are fine.
    let mut b = fs::read(&pack).unwrap();
    let n = b.len() / 2;
    b[n] ^= 0x10;
    fs::write(&pack, b).unwrap();
    let (code, _, err) = env.run(&["check", "--read-data"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("repair packs"), "{err}");
    let v = env.json(&["check"]);
    assert_eq!(v["bad_blobs"], 1, "the damage is recorded: {v}");

    // The next backup meets the same content and stores the damaged blob again.
    let (_, out, _) = env.run(&["--json", "backup", src.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert!(
        v["bytes_added"]
            .as_u64()
            .or(v["summary"]["bytes_added"].as_u64())
            .unwrap_or(0)
            > 0,
        "{v}"
    );
    // Readers now prefer the new copy: the old snapshot restores whole again.
    let target = env.path("r1");
    env.ok(&[
        "restore",
        &first,
        "--target",
        target.to_str().unwrap(),
        "-q",
    ]);
    assert_same_tree(&src, &restored(&target, &src));

    // repair packs saves the readable blobs of the damaged pack and marks it; prune removes it.
    let before = env.repo_files();
    let v = env.json(&["repair", "packs", "--dry-run"]);
    assert_eq!(env.repo_files(), before, "a dry run changed the repository");
    assert_eq!(v["packs"][0]["lost"].as_array().unwrap().len(), 1, "{v}");
    env.ok(&["repair", "packs"]);
    env.ok(&["prune", "--keep-delete", "0"]);
    assert!(!pack.exists(), "the damaged pack is gone");
    env.ok(&["check", "--read-data"]);
    let v = env.json(&["check"]);
    assert_eq!(v["bad_blobs"], 0, "{v}");
    for id in env.snapshot_ids() {
        let t = env.path(&format!("r-{id}"));
        env.ok(&["restore", &id, "--target", t.to_str().unwrap(), "-q"]);
        assert_same_tree(&src, &restored(&t, &src));
    }
}

#[test]
fn read_data_subset_covers_every_pack_over_successive_runs() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    // Ten backups of new content: about twenty packs.
    for i in 0..10u64 {
        fs::write(src.join(format!("f{i}")), bytes(200_000, 100 + i)).unwrap();
        env.backup(&[src.to_str().unwrap()]);
    }
    let total = packs(&env).len() as u64;
    let mut runs = 0;
    loop {
        let v = env.json(&["check", "--read-data-subset", "25%"]);
        runs += 1;
        assert!(v["packs_read"].as_u64().unwrap() >= 1, "{v}");
        if v["packs_never_verified"] == 0 {
            break;
        }
        assert!(runs < 8, "not covered after {runs} runs of 25%: {v}");
    }
    assert!(runs <= 5, "{runs} runs of 25% for {total} packs");
    // Everything was verified within the hour: nothing is old enough to read again.
    let v = env.json(&["check", "--max-age", "1h"]);
    assert_eq!(v["packs_read"], 0, "{v}");
    let v = env.json(&["check", "--max-age", "0"]);
    assert_eq!(v["packs_read"].as_u64().unwrap(), total, "{v}");
}
