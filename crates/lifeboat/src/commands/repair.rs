//! `lifeboat repair index|snapshots`.

use super::print_json;
use crate::cli::{Global, RepairArgs, RepairCommand};
use crate::context;
use crate::exit;
use crate::ui::{self, Bar};
use anyhow::Result;
use lifeboat_repo::repair;
use lifeboat_repo::{MaintenanceLease, Progress, SnapshotFilter};
use std::collections::HashSet;
use std::sync::Arc;

pub fn run(g: &Global, a: RepairArgs, progress: Arc<Progress>) -> Result<u8> {
    let mut repo = context::open_uncached(g)?;
    match a.command {
        RepairCommand::Index {
            read_all_packs,
            dry_run,
        } => {
            let lease = if dry_run {
                None
            } else {
                Some(MaintenanceLease::acquire(
                    &repo,
                    &super::prune::holder("repair index"),
                )?)
            };
            let bar = Bar::start(g, progress.clone(), ui::Kind::Total);
            let r = repair::repair_index(&repo, lease.as_ref(), read_all_packs, &progress);
            bar.finish();
            let r = r?;
            if g.json {
                print_json(&serde_json::json!({
                    "message_type": "summary", "dry_run": dry_run,
                    "packs_from_segments": r.from_segments, "packs_from_trailers": r.from_trailers,
                    "missing_packs": r.missing.iter().map(|i| i.to_hex()).collect::<Vec<_>>(),
                    "damaged_packs": r.damaged.iter().map(|(i, w)| serde_json::json!({"pack": i.to_hex(), "error": w})).collect::<Vec<_>>(),
                    "damaged_segments": r.damaged_segments,
                    "segments_written": r.segments_written, "segments_removed": r.segments_removed,
                }));
            } else {
                for (id, why) in &r.damaged {
                    eprintln!("warning: pack {}: {why}; not indexed", id.short());
                }
                for id in &r.missing {
                    eprintln!(
                        "warning: pack {} is listed in the index but missing from storage; left out",
                        id.short()
                    );
                }
                if !g.quiet {
                    println!(
                        "{} packs from readable index segments, {} from their trailers; {} damaged segment(s); {}",
                        r.from_segments,
                        r.from_trailers,
                        r.damaged_segments,
                        if dry_run {
                            "dry run: nothing was changed".to_string()
                        } else {
                            format!(
                                "wrote {} segment(s), removed {}",
                                r.segments_written, r.segments_removed
                            )
                        }
                    );
                    if !r.missing.is_empty() || !r.damaged.is_empty() {
                        println!(
                            "data is missing: run `lifeboat check` to see which snapshots it affects, then `lifeboat repair snapshots`"
                        );
                    }
                }
            }
            Ok(exit::OK)
        }
        RepairCommand::Packs { packs, dry_run } => {
            let stored: Vec<String> = repo
                .storage()
                .list(lifeboat_storage::FileKind::Pack)?
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            let mut ids: Vec<lifeboat_format::Id> = Vec::new();
            if packs.is_empty() {
                let h = repo.read_health()?;
                for b in &h.health.bad {
                    if stored.contains(&b.pack.to_hex()) && !ids.contains(&b.pack) {
                        ids.push(b.pack);
                    }
                }
                if ids.is_empty() {
                    if !g.quiet && !g.json {
                        println!(
                            "no damaged pack is recorded; `lifeboat check --read-data` finds them"
                        );
                    }
                    if g.json {
                        print_json(
                            &serde_json::json!({"message_type": "summary", "dry_run": dry_run, "packs": []}),
                        );
                    }
                    return Ok(exit::OK);
                }
            } else {
                for p in &packs {
                    let m: Vec<&String> = stored
                        .iter()
                        .filter(|s| s.starts_with(&p.to_ascii_lowercase()))
                        .collect();
                    match m.as_slice() {
                        [one] => ids.push(one.parse().map_err(|_| {
                            crate::exit::fail(exit::ERROR, format!("{one} is not a pack id"))
                        })?),
                        [] => {
                            return Err(crate::exit::fail(
                                exit::ERROR,
                                format!("no pack matches {p:?}"),
                            ));
                        }
                        _ => {
                            return Err(crate::exit::fail(
                                exit::ERROR,
                                format!("{p:?} matches several packs; give more digits"),
                            ));
                        }
                    }
                }
            }
            let lease = if dry_run {
                None
            } else {
                Some(MaintenanceLease::acquire(
                    &repo,
                    &super::prune::holder("repair packs"),
                )?)
            };
            let bar = Bar::start(g, progress.clone(), ui::Kind::Total);
            let r = repair::repair_packs(&repo, lease.as_ref(), &ids, &progress);
            bar.finish();
            let r = r?;
            let lost: usize = r.iter().map(|s| s.lost.len()).sum();
            if g.json {
                print_json(&serde_json::json!({
                    "message_type": "summary", "dry_run": dry_run,
                    "packs": r.iter().map(|s| serde_json::json!({
                        "pack": s.pack.to_hex(), "saved_blobs": s.copied,
                        "lost": s.lost.iter().map(|(b, w)| serde_json::json!({"blob": b.to_hex(), "error": w})).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                }));
            } else if !g.quiet {
                for s in &r {
                    println!(
                        "pack {}: {} blob(s) {}, {} cannot be read",
                        s.pack.short(),
                        s.copied,
                        if dry_run { "can be saved" } else { "saved" },
                        s.lost.len()
                    );
                    for (b, w) in &s.lost {
                        println!("  blob {}: {w}", b.short());
                    }
                }
                if dry_run {
                    println!("dry run: nothing was changed");
                } else {
                    println!(
                        "the damaged packs are marked; `lifeboat prune` removes them after the grace period"
                    );
                }
                if lost > 0 {
                    println!(
                        "{lost} blob(s) could not be saved: a backup stores again what it still finds at the source; `lifeboat repair snapshots` records the files that stay lost"
                    );
                }
            }
            Ok(exit::OK)
        }
        RepairCommand::Snapshots {
            snapshots,
            keep_original,
            dry_run,
        } => {
            let ir = repo.load_index()?;
            for (f, e) in &ir.damaged {
                eprintln!(
                    "warning: {f}: {e} (run `lifeboat repair index` first, or data it lists counts as lost)"
                );
            }
            let ids = if snapshots.is_empty() {
                repo.snapshots()?.0.into_iter().map(|(id, _)| id).collect()
            } else {
                let mut v = Vec::new();
                for s in &snapshots {
                    v.push(repo.find_snapshot(s, &SnapshotFilter::default())?.0);
                }
                v
            };
            let lease = if dry_run {
                None
            } else {
                Some(MaintenanceLease::acquire(
                    &repo,
                    &super::prune::holder("repair snapshots"),
                )?)
            };
            // Blobs check found damaged and for which the index knows no other copy.
            let index = repo.index().clone();
            let bad: HashSet<lifeboat_format::Id> = repo
                .read_health()?
                .health
                .bad
                .iter()
                .filter(|b| index.get(&b.blob).is_some_and(|l| l.pack == b.pack))
                .map(|b| b.blob)
                .collect();
            let r = repair::repair_snapshots(
                &repo,
                lease.as_ref(),
                &ids,
                &bad,
                keep_original,
                &progress,
            )?;
            if g.json {
                print_json(&serde_json::json!({
                    "message_type": "summary", "dry_run": dry_run, "checked": ids.len(),
                    "repaired": r.iter().map(|s| serde_json::json!({
                        "snapshot": s.old.to_hex(), "new_snapshot": s.new.map(|n| n.to_hex()),
                        "lost": s.lost.iter().map(|l| serde_json::json!({"path": l.path, "error": l.error})).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                }));
            } else if !g.quiet {
                for s in &r {
                    println!(
                        "snapshot {}{}: {} path(s) lost",
                        s.old.short(),
                        s.new
                            .map(|n| format!(" -> {}", n.short()))
                            .unwrap_or_default(),
                        s.lost.len()
                    );
                    for l in &s.lost {
                        println!("  {}: {}", l.path, l.error);
                    }
                }
                println!(
                    "{} of {} snapshots {}",
                    r.len(),
                    ids.len(),
                    if dry_run {
                        "would be rewritten (dry run: nothing was changed)"
                    } else {
                        "rewritten"
                    }
                );
            }
            Ok(exit::OK)
        }
    }
}
