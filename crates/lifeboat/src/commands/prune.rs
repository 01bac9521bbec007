//! `lifeboat prune`.

use super::print_json;
use crate::cli::{Global, PruneArgs};
use crate::context;
use crate::exit;
use crate::ui::{self, Bar};
use anyhow::Result;
use lifeboat_repo::prune::{self, PackFate, PruneOptions, PrunePlan, PruneResult};
use lifeboat_repo::{LeaseHolder, LeaseTiming, MaintenanceLease, Progress, Repository};
use std::sync::Arc;

pub fn holder(command: &str) -> LeaseHolder {
    let uid = nix::unistd::getuid();
    LeaseHolder {
        hostname: super::backup::hostname(),
        username: nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| uid.to_string()),
        command: command.to_string(),
    }
}

pub fn run(g: &Global, a: PruneArgs, progress: Arc<Progress>) -> Result<u8> {
    let mut repo = context::open(g)?;
    prune_open(g, &mut repo, &a, progress)
}

/// Prunes an open repository (also the tail of `forget --prune`).
pub fn prune_open(
    g: &Global,
    repo: &mut Repository,
    a: &PruneArgs,
    progress: Arc<Progress>,
) -> Result<u8> {
    let started = std::time::Instant::now();
    let opts = PruneOptions {
        keep_delete: a.keep_delete,
        max_unused_percent: a.max_unused,
        max_repack: a.max_repack,
    };
    let timing = LeaseTiming::from_env();
    // A dry run reads only: it takes no lease and blocks no one.
    let lease = if a.dry_run {
        None
    } else {
        Some(MaintenanceLease::acquire(repo, &holder("prune"))?)
    };
    let bar = Bar::start(g, progress.clone(), ui::Kind::Total);
    let planned = prune::plan(repo, &opts, timing, &progress);
    let plan = match planned {
        Ok(p) => p,
        Err(e) => {
            bar.finish();
            return Err(e.into());
        }
    };
    let result = match &lease {
        Some(l) => prune::execute(repo, &plan, l, &progress).map(Some),
        None => Ok(None),
    };
    bar.finish();
    let result = result?;
    drop(lease);
    report(
        g,
        a,
        &plan,
        result.as_ref(),
        started.elapsed().as_secs_f64(),
    );
    Ok(exit::OK)
}

fn fate_name(f: PackFate) -> &'static str {
    match f {
        PackFate::Keep => "keep",
        PackFate::KeepPartly => "keep-partly-used",
        PackFate::Repack => "repack",
        PackFate::Mark(_) => "mark",
        PackFate::Recover => "recover",
        PackFate::Wait => "wait",
        PackFate::Delete => "delete",
    }
}

fn report(g: &Global, a: &PruneArgs, plan: &PrunePlan, res: Option<&PruneResult>, secs: f64) {
    let count = |f: fn(PackFate) -> bool| plan.count(f);
    let n_delete = count(|f| f == PackFate::Delete);
    let n_mark = count(|f| matches!(f, PackFate::Mark(_)));
    let n_repack = count(|f| f == PackFate::Repack);
    let n_wait = count(|f| f == PackFate::Wait);
    let n_recover = count(|f| f == PackFate::Recover);
    if g.json {
        let packs: Vec<_> = plan
            .packs
            .iter()
            .filter(|p| a.verbose || !matches!(p.fate, PackFate::Keep))
            .map(|p| {
                serde_json::json!({
                    "pack": p.pack.to_hex(), "size": p.size, "fate": fate_name(p.fate),
                    "reason": match p.fate { PackFate::Mark(r) => r.as_str(), _ => p.mark.map(|m| m.reason.as_str()).unwrap_or("") },
                    "marked_at": p.mark.map(|m| m.marked_at),
                    "used_blobs": p.used_blobs, "unused_blobs": p.unused_blobs, "used_bytes": p.used_bytes,
                    "note": p.note,
                })
            })
            .collect();
        print_json(&serde_json::json!({
            "message_type": "summary",
            "dry_run": a.dry_run,
            "snapshots": plan.snapshots,
            "packs_total": plan.packs.len(),
            "bytes_total": plan.total_bytes(),
            "bytes_used": plan.used_bytes(),
            "delete": n_delete, "mark": n_mark, "repack": n_repack, "wait": n_wait, "recover": n_recover,
            "bytes_freed_now": plan.freed_now(),
            "bytes_freed_later": plan.freed_later(),
            "bytes_repacked": plan.repack_bytes(),
            "index_rewritten": plan.compact_index,
            "stale_leases_removed": plan.stale_leases,
            "warnings": plan.warnings,
            "packs": packs,
            "result": res.map(|r| serde_json::json!({
                "deleted_packs": r.deleted_packs, "deleted_bytes": r.deleted_bytes,
                "repacked_packs": r.repacked_packs, "new_packs": r.new_packs, "new_pack_bytes": r.new_pack_bytes,
                "marked": r.marked, "recovered": r.recovered,
                "segments_written": r.segments_written, "segments_removed": r.segments_removed,
                "temporaries_removed": r.temporaries_removed, "warnings": r.warnings,
            })),
            "duration_seconds": secs,
        }));
        return;
    }
    for w in plan
        .warnings
        .iter()
        .chain(res.iter().flat_map(|r| &r.warnings))
    {
        eprintln!("warning: {w}");
    }
    if g.quiet {
        return;
    }
    if a.verbose {
        for p in plan.packs.iter().filter(|p| p.fate != PackFate::Keep) {
            println!(
                "{} {:<16} {:>10}  {}{}",
                p.pack.short(),
                fate_name(p.fate),
                ui::size(p.size),
                match p.fate {
                    PackFate::Mark(r) => r.as_str(),
                    _ => p.mark.map(|m| m.reason.as_str()).unwrap_or(""),
                },
                if p.note.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", p.note)
                }
            );
        }
    }
    let verb = |now: &str, dry: &str| {
        if a.dry_run {
            dry.to_string()
        } else {
            now.to_string()
        }
    };
    println!(
        "{} snapshots; {} packs, {} ({} used by snapshots)",
        plan.snapshots,
        plan.packs.len(),
        ui::size(plan.total_bytes()),
        ui::size(plan.used_bytes())
    );
    println!(
        "{} {n_delete} packs marked at least {} ago ({})",
        verb("deleted", "would delete"),
        prune::fmt_secs(a.keep_delete.as_secs() as i64),
        ui::size(plan.freed_now())
    );
    if n_repack > 0 {
        println!(
            "{} {n_repack} partly used packs (copying {})",
            verb("repacked", "would repack"),
            ui::size(plan.repack_bytes())
        );
    }
    println!(
        "{} {n_mark} unneeded packs; {n_wait} marked packs wait for their grace period; {} comes back after it",
        verb("marked", "would mark"),
        ui::size(plan.freed_later())
    );
    if n_recover > 0 {
        println!(
            "{} {n_recover} marked packs that a snapshot needs again",
            verb("unmarked", "would unmark")
        );
    }
    if !plan.stale_leases.is_empty() {
        println!(
            "{} {} leases of backups that died",
            verb("removed", "would remove"),
            plan.stale_leases.len()
        );
    }
    match res {
        Some(r) => println!(
            "done in {secs:.1}s: {} freed, {} new packs, index {}",
            ui::size(r.deleted_bytes),
            r.new_packs,
            if plan.compact_index {
                "rewritten"
            } else {
                "unchanged"
            }
        ),
        None => println!("dry run: nothing was changed"),
    }
}
