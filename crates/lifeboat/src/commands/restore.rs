//! `lifeboat restore`.

use super::{filter, print_json};
use crate::cli::{Global, OverwriteArg, RestoreArgs};
use crate::context;
use crate::exit;
use crate::ui::{self, Bar};
use anyhow::Result;
use lifeboat_repo::source::Overwrite;
use lifeboat_repo::{Progress, RestoreOptions};
use lifeboat_sources::{FsTarget, FsTargetOptions};
use std::path::PathBuf;
use std::sync::Arc;

pub fn run(g: &Global, a: RestoreArgs, progress: Arc<Progress>) -> Result<u8> {
    if let Some(cfg) = g.loaded.clone()
        && cfg.components.contains_key(&a.snapshot)
    {
        return super::component_restore::run(g, &cfg, a, progress);
    }
    if a.plan || a.yes || a.from.is_some() || a.no_safety {
        return Err(crate::exit::fail(
            exit::ERROR,
            format!(
                "{:?} is not a component of the configuration; --plan, --yes, --snapshot and --no-safety are for component restores",
                a.snapshot
            ),
        ));
    }
    let repo = context::open(g)?;
    run_open(g, &repo, a, progress)
}

/// Restores a snapshot (`a.snapshot`) from an open repository.
pub fn run_open(
    g: &Global,
    repo: &lifeboat_repo::Repository,
    a: RestoreArgs,
    progress: Arc<Progress>,
) -> Result<u8> {
    let started = std::time::Instant::now();
    let Some(target) = a.target.clone() else {
        return Err(crate::exit::fail(
            exit::ERROR,
            "restore needs --target DIR (the directory to restore into)",
        ));
    };
    // `SNAPSHOT:PATH` restores the contents of PATH into the target, as restic does.
    let (spec, sub) = match a.snapshot.split_once(':') {
        Some((s, p)) => (s.to_string(), PathBuf::from("/").join(p)),
        None => (a.snapshot.clone(), PathBuf::from("/")),
    };
    let (id, snap) = repo.find_snapshot(&spec, &filter(&a.filter))?;
    let target = std::path::absolute(&target)?;
    let opts = RestoreOptions {
        target: target.clone(),
        source_path: sub,
        includes: a.includes.clone(),
        excludes: a.excludes.clone(),
        overwrite: match a.overwrite {
            OverwriteArg::Always => Overwrite::Always,
            OverwriteArg::IfChanged => Overwrite::IfChanged,
            OverwriteArg::Never => Overwrite::Never,
        },
        delete: a.delete,
        sparse: a.sparse,
        verify: a.verify,
        // Remote storage serves more requests at once than a disk; more files then overlap.
        threads: repo.storage().parallelism().clamp(4, 16),
        open_files: 0,
    };
    let fs = FsTarget::new(FsTargetOptions::default());
    let bar = Bar::start(g, progress.clone(), ui::Kind::Total);
    let result = lifeboat_repo::restore(repo, snap.tree, &opts, &fs, &progress);
    bar.finish();
    let s = result?;
    let secs = started.elapsed().as_secs_f64();
    if g.json {
        print_json(&serde_json::json!({
            "message_type": "summary",
            "snapshot_id": id.to_hex(),
            "target": target.display().to_string(),
            "files": s.files, "dirs": s.dirs, "other": s.other,
            "files_skipped": s.files_skipped,
            "bytes_written": s.bytes_written,
            "deleted": s.deleted,
            "verified": s.verified,
            "duration_seconds": secs,
            "errors": s.errors.iter().map(|(p, e)| serde_json::json!({"path": p, "error": e})).collect::<Vec<_>>(),
        }));
    } else {
        for (p, e) in &s.errors {
            eprintln!("error: {p}: {e}");
        }
        if !g.quiet {
            println!(
                "restored snapshot {} to {}: {} files, {} dirs, {} other, {} written{}{}{} in {:.1}s",
                id.short(),
                target.display(),
                s.files,
                s.dirs,
                s.other,
                ui::size(s.bytes_written),
                if s.files_skipped > 0 {
                    format!(", {} left as they were", s.files_skipped)
                } else {
                    String::new()
                },
                if s.deleted > 0 {
                    format!(", {} deleted", s.deleted)
                } else {
                    String::new()
                },
                if a.verify {
                    format!(", {} verified", s.verified)
                } else {
                    String::new()
                },
                secs
            );
        }
    }
    if s.errors.is_empty() {
        Ok(exit::OK)
    } else {
        if !g.json {
            eprintln!(
                "lifeboat: {} entries could not be restored (listed above)",
                s.errors.len()
            );
        }
        Ok(exit::ERROR)
    }
}
