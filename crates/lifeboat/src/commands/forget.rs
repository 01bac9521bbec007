//! `lifeboat forget`: removes snapshot files, by a retention policy or by id. The data they
//! referenced stays until `lifeboat prune`.

use super::{filter, print_json};
use crate::cli::{ForgetArgs, Global};
use crate::context;
use crate::exit::{self, fail};
use crate::ui;
use anyhow::Result;
use lifeboat_format::{Id, Snapshot};
use lifeboat_repo::retention::{self, Decision, Group, KeepPolicy};
use lifeboat_repo::{Progress, RepoError, Repository};
use lifeboat_storage::{FileKind, Handle, StorageError};
use serde_json::{Value, json};
use std::sync::Arc;

pub fn run(g: &Global, a: ForgetArgs, progress: Arc<Progress>) -> Result<u8> {
    let policy = policy_of(&a);
    // Refuse before opening the repository: leaving out the options must never be read as
    // "forget everything", and the operator learns that without typing a password.
    if a.snapshots.is_empty() && !a.keep_none && policy.is_empty() {
        return Err(fail(
            exit::ERROR,
            "no keep option given, and forgetting without one would remove every snapshot. \
             Give a policy (e.g. --keep-daily 7 --keep-weekly 4), --defaults (keep-daily 7, \
             keep-weekly 4, keep-monthly 6), snapshot ids, or --keep-none to forget every \
             selected snapshot",
        ));
    }
    let repo = context::open(g)?;
    let (all, damaged) = repo.snapshots()?;

    // Damaged snapshot files named on the command line, by file name.
    let mut damaged_named: Vec<String> = Vec::new();
    let (groups, policy_text) = if !a.snapshots.is_empty() {
        let (groups, named) = by_id(&repo, &a, all, &damaged)?;
        damaged_named = named;
        (groups, None)
    } else {
        let f = filter(&a.filter);
        let selected: Vec<_> = all.into_iter().filter(|(_, s)| f.matches(s)).collect();
        if a.keep_none {
            (
                retention::forget_all(selected, a.group_by),
                Some("keep none".to_string()),
            )
        } else {
            let tz = jiff::tz::TimeZone::system();
            let groups =
                retention::apply(selected, &policy, a.group_by, &tz, jiff::Timestamp::now())
                    .map_err(|e| fail(exit::ERROR, e.to_string()))?;
            (groups, Some(policy.to_string()))
        }
    };

    // Damaged snapshot files cannot be dated or grouped, so no policy may decide about them;
    // they stay until `check` has been looked at and they are removed by name.
    if !g.json {
        for (file, e) in &damaged {
            let named = file
                .strip_prefix("snapshots/")
                .is_some_and(|n| damaged_named.iter().any(|d| d == n));
            if !named {
                eprintln!("warning: {file} could not be read and is left alone: {e}");
            }
        }
    }

    let mut removed: Vec<&Decision> = Vec::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    let to_remove: Vec<&Decision> = groups.iter().flat_map(|g| &g.remove).collect();
    let mut damaged_removed: Vec<String> = Vec::new();
    if !a.dry_run {
        for d in &to_remove {
            if progress.cancelled() {
                return Err(RepoError::Interrupted.into());
            }
            match delete(&repo, &d.id) {
                Ok(()) => removed.push(d),
                Err(e) => failed.push((d.id.to_hex(), e)),
            }
        }
        for name in &damaged_named {
            if progress.cancelled() {
                return Err(RepoError::Interrupted.into());
            }
            match delete_name(&repo, name) {
                Ok(()) => damaged_removed.push(name.clone()),
                Err(e) => failed.push((name.clone(), e)),
            }
        }
    }

    if g.json {
        let list = |ds: &[Decision]| ds.iter().map(decision_json).collect::<Vec<_>>();
        print_json(&json!({
            "message_type": "forget",
            "dry_run": a.dry_run,
            "policy": policy_text,
            "group_by": if a.snapshots.is_empty() { Some(a.group_by.to_string()) } else { None },
            "groups": groups.iter().map(|grp| json!({
                "group": group_key_json(grp),
                "keep": list(&grp.keep),
                "remove": list(&grp.remove),
            })).collect::<Vec<_>>(),
            "keep": groups.iter().flat_map(|g| &g.keep).map(|d| d.id.to_hex()).collect::<Vec<_>>(),
            "remove": to_remove.iter().map(|d| d.id.to_hex()).chain(damaged_named.iter().cloned()).collect::<Vec<_>>(),
            "removed": removed.iter().map(|d| d.id.to_hex()).chain(damaged_removed.iter().cloned()).collect::<Vec<_>>(),
            "damaged": damaged.iter().map(|(f, e)| json!({"file": f, "error": e})).collect::<Vec<_>>(),
            "failed": failed.iter().map(|(id, e)| json!({"id": id, "error": e})).collect::<Vec<_>>(),
        }));
    } else {
        for (id, e) in &failed {
            eprintln!("error: could not remove snapshots/{id}: {e}");
        }
        if !g.quiet {
            print_text(&a, &groups, policy_text.as_deref(), &damaged_named);
            let n_remove = to_remove.len() + damaged_named.len();
            let n_total = n_remove + groups.iter().map(|g| g.keep.len()).sum::<usize>();
            let n_removed = removed.len() + damaged_removed.len();
            if a.dry_run {
                println!(
                    "dry run: would remove {n_remove} of {n_total} snapshots; nothing was changed"
                );
            } else if n_remove == 0 {
                println!("nothing to remove ({n_total} snapshots kept)");
            } else {
                println!("removed {n_removed} of {n_total} snapshots");
            }
            if !a.dry_run && n_removed > 0 && !a.prune {
                println!("run `lifeboat prune` to free the space");
            }
        }
    }
    if failed.is_empty() {
        if a.prune {
            let mut repo = repo;
            return super::prune::prune_open(
                g,
                &mut repo,
                &crate::cli::PruneArgs {
                    keep_delete: a.keep_delete,
                    max_unused: a.max_unused,
                    max_repack: a.max_repack,
                    dry_run: a.dry_run,
                    verbose: false,
                },
                progress,
            );
        }
        Ok(exit::OK)
    } else {
        Err(fail(
            exit::ERROR,
            format!(
                "{} snapshot(s) could not be removed (listed above); running forget again \
                 retries them",
                failed.len()
            ),
        ))
    }
}

fn policy_of(a: &ForgetArgs) -> KeepPolicy {
    let p = KeepPolicy {
        last: a.keep_last.unwrap_or(0),
        hourly: a.keep_hourly.unwrap_or(0),
        daily: a.keep_daily.unwrap_or(0),
        weekly: a.keep_weekly.unwrap_or(0),
        monthly: a.keep_monthly.unwrap_or(0),
        yearly: a.keep_yearly.unwrap_or(0),
        within: a.keep_within,
        tags: a.keep_tags.clone(),
    };
    if a.defaults { p.with_defaults() } else { p }
}

/// Snapshot ids on the command line: exactly those, as one group with nothing kept, and the
/// names of damaged snapshot files among them. A damaged file (shown by `check` and by the
/// warning) is removed only when named: that is the operator's decision, never a policy's.
fn by_id(
    repo: &Repository,
    a: &ForgetArgs,
    all: Vec<(Id, Snapshot)>,
    damaged: &[(String, String)],
) -> Result<(Vec<Group>, Vec<String>)> {
    let f = filter(&a.filter);
    let mut chosen: Vec<Id> = Vec::new();
    let mut named: Vec<String> = Vec::new();
    for spec in &a.snapshots {
        match resolve(repo, spec, &f, &all, damaged)? {
            Resolved::Readable(id) if !chosen.contains(&id) => chosen.push(id),
            Resolved::Damaged(name) if !named.contains(&name) => named.push(name),
            _ => {}
        }
    }
    let mut remove: Vec<Decision> = all
        .into_iter()
        .filter(|(id, _)| chosen.contains(id))
        .map(|(id, snapshot)| Decision {
            id,
            snapshot,
            reasons: Vec::new(),
        })
        .collect();
    remove.sort_by_key(|d| (d.snapshot.time, d.id));
    let groups = if remove.is_empty() {
        Vec::new()
    } else {
        vec![Group {
            key: Default::default(),
            keep: Vec::new(),
            remove,
        }]
    };
    Ok((groups, named))
}

enum Resolved {
    Readable(Id),
    /// The file name (64 hex digits) of a damaged snapshot file.
    Damaged(String),
}

/// `latest` (narrowed by the filter), or an id or unique prefix among readable and damaged
/// snapshot files alike, so that a prefix is never taken for one file while it also matches
/// another.
fn resolve(
    repo: &Repository,
    spec: &str,
    f: &lifeboat_repo::SnapshotFilter,
    all: &[(Id, Snapshot)],
    damaged: &[(String, String)],
) -> Result<Resolved> {
    if spec == "latest" {
        return Ok(Resolved::Readable(repo.find_snapshot(spec, f)?.0));
    }
    let s = spec.to_ascii_lowercase();
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(fail(
            exit::ERROR,
            format!("{spec:?} is not a snapshot id (hex digits, or `latest`)"),
        ));
    }
    let mut found: Vec<Resolved> = all
        .iter()
        .filter(|(id, _)| id.to_hex().starts_with(&s))
        .map(|(id, _)| Resolved::Readable(*id))
        .collect();
    found.extend(
        damaged
            .iter()
            .filter_map(|(file, _)| file.strip_prefix("snapshots/"))
            .filter(|name| name.starts_with(&s))
            .map(|name| Resolved::Damaged(name.to_string())),
    );
    match found.len() {
        0 => Err(RepoError::NoSnapshot(spec.to_string()).into()),
        1 => Ok(found.remove(0)),
        _ => Err(RepoError::AmbiguousSnapshot(spec.to_string()).into()),
    }
}

fn delete(repo: &Repository, id: &Id) -> std::result::Result<(), String> {
    delete_name(repo, &id.to_hex())
}

fn delete_name(repo: &Repository, name: &str) -> std::result::Result<(), String> {
    match repo
        .storage()
        .delete(&Handle::new(FileKind::Snapshot, name.to_string()))
    {
        // Another forget got there first: the snapshot is gone, which is what was asked.
        Ok(()) | Err(StorageError::NotFound(_)) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

fn group_key_json(g: &Group) -> Value {
    let mut m = serde_json::Map::new();
    if let Some(h) = &g.key.host {
        m.insert("host".into(), json!(h));
    }
    if let Some(t) = &g.key.tags {
        m.insert("tags".into(), json!(t));
    }
    if let Some(p) = &g.key.paths {
        m.insert("paths".into(), json!(p));
    }
    Value::Object(m)
}

fn decision_json(d: &Decision) -> Value {
    let s = &d.snapshot;
    json!({
        "id": d.id.to_hex(),
        "short_id": d.id.short(),
        "time": s.time.to_string(),
        "hostname": s.hostname,
        "tags": s.tags,
        "paths": s.paths,
        "reasons": d.reasons.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
    })
}

fn print_text(a: &ForgetArgs, groups: &[Group], policy: Option<&str>, damaged_named: &[String]) {
    if let Some(p) = policy {
        println!("policy: {p}");
    }
    for grp in groups {
        if a.snapshots.is_empty() {
            println!(
                "{}: keep {}, remove {}",
                grp.key,
                grp.keep.len(),
                grp.remove.len()
            );
        }
        // One list, oldest first, so the kept ones read as the history that remains.
        let mut rows: Vec<(&Decision, bool)> = grp
            .keep
            .iter()
            .map(|d| (d, true))
            .chain(grp.remove.iter().map(|d| (d, false)))
            .collect();
        rows.sort_by_key(|(d, _)| (d.snapshot.time, d.id));
        for (d, keep) in rows {
            let s = &d.snapshot;
            let line = format!(
                "  {:<6} {:<9} {:<19} {:<16} {:<20} {}",
                if keep { "keep" } else { "remove" },
                d.id.short(),
                ui::local_time(&s.time),
                s.hostname,
                s.tags.join(","),
                d.reasons
                    .iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            println!("{}", line.trim_end());
        }
    }
    for name in damaged_named {
        println!(
            "  {:<6} {:<9} (damaged snapshot file)",
            "remove",
            name.get(..8).unwrap_or(name)
        );
    }
}
