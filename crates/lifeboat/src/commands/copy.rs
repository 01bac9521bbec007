//! `lifeboat copy`.

use super::{filter, print_json};
use crate::cli::{CopyArgs, Global};
use crate::context::{self, Location};
use crate::exit::{self, fail};
use crate::ui::{self, Bar};
use anyhow::{Context as _, Result};
use lifeboat_repo::copy::{CopyOptions, CopyOutcome, CopyReport, SnapshotCopy};
use lifeboat_repo::{LeaseHolder, Progress, RepoError, Repository};
use lifeboat_storage::{Handle, StorageError};
use serde_json::{Value, json};
use std::io::IsTerminal;
use std::sync::Arc;
use zeroize::Zeroizing;

pub fn run(g: &Global, a: CopyArgs, progress: Arc<Progress>) -> Result<u8> {
    let started = std::time::Instant::now();
    // The target is found like --repo, but none of the source's password options apply.
    let target_global = Global {
        repo: Some(a.to.clone()),
        password_file: None,
        password_command: None,
        ..g.clone()
    };
    let tloc = context::location(&target_global)?;
    let tstorage = context::storage(&target_global, &tloc)?;
    // A missing target is reported before asking for any password, and never created here:
    // the operator chooses its password and chunk size.
    if let Err(StorageError::NotFound(_)) = tstorage.size(&Handle::config()) {
        return Err(fail(
            exit::NO_REPOSITORY,
            format!(
                "no repository at {} (the copy target): create it first with `lifeboat init -r {}`, then copy again",
                tloc.display, a.to
            ),
        ));
    }

    let src = context::open(g)?;
    let f = filter(&a.filter);
    let selected = if a.snapshots.is_empty() {
        let (all, bad) = src.snapshots()?;
        for (file, e) in &bad {
            eprintln!("warning: {file} could not be read and is not copied: {e}");
        }
        all.into_iter().filter(|(_, s)| f.matches(s)).collect()
    } else {
        a.snapshots
            .iter()
            .map(|spec| src.find_snapshot(spec, &f))
            .collect::<std::result::Result<Vec<_>, _>>()?
    };

    let (pw, from) = target_password(&a, &tloc)?;
    let mut dst = match Repository::open(tstorage, &pw) {
        Ok(r) => r,
        Err(RepoError::WrongPassword(_)) => {
            return Err(fail(
                exit::WRONG_PASSWORD,
                format!(
                    "wrong password for the copy target at {}: no key file of it opens with the password from {from}",
                    tloc.display
                ),
            ));
        }
        Err(RepoError::NotARepository(_)) => {
            return Err(fail(
                exit::NO_REPOSITORY,
                format!(
                    "{} is not a repository (the copy target): create one with `lifeboat init -r {}`",
                    tloc.display, a.to
                ),
            ));
        }
        Err(e) => {
            return Err(anyhow::Error::from(e)
                .context(format!("opening the copy target at {}", tloc.display)));
        }
    };
    drop(pw);
    let report = dst.load_index()?;
    for (file, e) in report.damaged {
        eprintln!("warning: the target's {file} could not be read and was skipped: {e}");
    }

    if selected.is_empty() {
        if g.json {
            print_summary(&a, &CopyReport::default(), 0, started);
        } else if !g.quiet {
            println!("no snapshots to copy");
        }
        return Ok(exit::OK);
    }

    let opts = CopyOptions {
        dry_run: a.dry_run,
        holder: LeaseHolder {
            hostname: super::backup::hostname(),
            username: username(),
            command: "copy".into(),
        },
    };
    let bar = Bar::start(g, progress.clone(), ui::Kind::Total);
    // Lines as snapshots finish, unless a bar is drawn (they would tear it): then at the end.
    let live = !bar.is_shown() && !g.json && !g.quiet;
    let n = selected.len();
    let result = lifeboat_repo::copy::copy(&src, &dst, selected, &opts, &progress, &mut |c| {
        if live {
            print_line(c)
        }
    });
    bar.finish();
    let report = result?;
    if !live && !g.json && !g.quiet {
        report.snapshots.iter().for_each(print_line);
    }
    if g.json {
        print_summary(&a, &report, n, started);
    } else {
        for c in &report.snapshots {
            if let CopyOutcome::Failed { error } = &c.outcome {
                eprintln!(
                    "error: snapshot {} was not copied: {error}",
                    c.source.short()
                );
            }
        }
        if !g.quiet {
            let t = &report.totals;
            println!(
                "{} of {n} snapshots {}, {} already in the target, {} failed; {} read, {} new ({} stored) in {:.1}s",
                report.copied(),
                if a.dry_run {
                    "would be copied"
                } else {
                    "copied"
                },
                report.skipped(),
                report.failed(),
                ui::size(t.bytes_read),
                ui::size(t.bytes_added),
                ui::size(t.bytes_stored),
                started.elapsed().as_secs_f64()
            );
            if a.dry_run {
                println!("dry run: nothing was written");
            }
        }
    }
    if report.failed() > 0 {
        return Err(fail(
            exit::ERROR,
            format!(
                "{} snapshot(s) could not be read from the source and were not copied (run `lifeboat check` on the source); the others were",
                report.failed()
            ),
        ));
    }
    Ok(exit::OK)
}

fn print_line(c: &SnapshotCopy) {
    let s = &c.snapshot;
    let what = format!(
        "{} {} {}",
        ui::local_time(&s.time),
        s.hostname,
        s.paths
            .iter()
            .cloned()
            .chain(s.streams.iter().map(|st| format!("<{}>", st.name)))
            .collect::<Vec<_>>()
            .join(" ")
    );
    match &c.outcome {
        CopyOutcome::Copied { target, stats } => println!(
            "copied {} -> {}  {what}: {} new blobs, {} new",
            c.source.short(),
            target.map_or("(dry run)".to_string(), |t| t.short()),
            stats.blobs_added,
            ui::size(stats.bytes_added)
        ),
        CopyOutcome::AlreadyThere { target } => println!(
            "skipped {}: already in the target as {}  {what}",
            c.source.short(),
            target.short()
        ),
        CopyOutcome::Failed { .. } => println!("FAILED {}  {what}", c.source.short()),
    }
}

fn print_summary(a: &CopyArgs, r: &CopyReport, selected: usize, started: std::time::Instant) {
    let t = &r.totals;
    let list: Vec<Value> = r
        .snapshots
        .iter()
        .map(|c| {
            let (status, target, error) = match &c.outcome {
                CopyOutcome::Copied { target, .. } => ("copied", *target, None),
                CopyOutcome::AlreadyThere { target } => ("skipped", Some(*target), None),
                CopyOutcome::Failed { error } => ("failed", None, Some(error.clone())),
            };
            let stats = match &c.outcome {
                CopyOutcome::Copied { stats, .. } => json!({
                    "bytes_read": stats.bytes_read,
                    "blobs_added": stats.blobs_added,
                    "bytes_added": stats.bytes_added,
                    "bytes_stored": stats.bytes_stored,
                }),
                _ => Value::Null,
            };
            json!({
                "source": c.source.to_hex(),
                "target": target.map(|t| t.to_hex()),
                "status": status,
                "error": error,
                "stats": stats,
            })
        })
        .collect();
    print_json(&json!({
        "message_type": "summary",
        "dry_run": a.dry_run,
        "snapshots_selected": selected,
        "snapshots_copied": r.copied(),
        "snapshots_skipped": r.skipped(),
        "snapshots_failed": r.failed(),
        "bytes_read": t.bytes_read,
        "blobs_added": t.blobs_added,
        "bytes_added": t.bytes_added,
        "bytes_stored": t.bytes_stored,
        "duration_seconds": started.elapsed().as_secs_f64(),
        "snapshots": list,
    }));
}

/// The target's password, and where it came from (for the wrong-password message): from
/// --to-password-file, else LIFEBOAT_TO_PASSWORD, else a prompt on a terminal. Never argv.
fn target_password(a: &CopyArgs, loc: &Location) -> Result<(Zeroizing<Vec<u8>>, &'static str)> {
    if let Some(f) = &a.to_password_file {
        let b = Zeroizing::new(
            std::fs::read(f)
                .with_context(|| format!("reading the target's password file {}", f.display()))?,
        );
        return Ok((first_line(&b), "--to-password-file"));
    }
    if let Some(p) = std::env::var_os("LIFEBOAT_TO_PASSWORD") {
        use std::os::unix::ffi::OsStrExt;
        return Ok((
            Zeroizing::new(p.as_bytes().to_vec()),
            "LIFEBOAT_TO_PASSWORD",
        ));
    }
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        let p = Zeroizing::new(
            rpassword::prompt_password(format!(
                "Password of the target repository {}: ",
                loc.display
            ))
            .context("reading the target's password")?,
        );
        return Ok((Zeroizing::new(p.as_bytes().to_vec()), "the prompt"));
    }
    Err(fail(
        exit::ERROR,
        format!(
            "no password for the copy target at {}: give --to-password-file FILE, set LIFEBOAT_TO_PASSWORD, or run on a terminal",
            loc.display
        ),
    ))
}

/// The first line of a password file (as for the source's --password-file).
fn first_line(bytes: &[u8]) -> Zeroizing<Vec<u8>> {
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let mut line = bytes[..end].to_vec();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Zeroizing::new(line)
}

fn username() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}
