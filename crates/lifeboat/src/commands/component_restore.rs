//! `lifeboat restore COMPONENT --plan | --yes [--resume]`: a component's restore as an ordered
//! list of steps that can be printed first, then run with a journal, so that an interrupted
//! restore says which step it stopped at and `--resume` goes on from there.

use crate::cli::{BackupArgs, Global, OverwriteArg, RestoreArgs};
use crate::context;
use crate::exit::{self, fail};
use anyhow::{Context as _, Result};
use lifeboat_format::{Id, Snapshot};
use lifeboat_plan::{Component, Config, Kind};
use lifeboat_repo::{Progress, Repository};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One step of a component restore.
#[derive(Debug, Clone)]
enum Step {
    /// Back up what is there now, tagged `safety`, so the restore can be undone.
    Safety,
    /// Feed the dump to the component's restore command.
    RestoreStream { stream: String, command: String },
    /// Restore the component's paths into `target`.
    RestoreFiles { target: PathBuf },
    /// Refuse if the server's major.minor version differs from the recorded one.
    CheckVersion { recorded: String },
    /// Compare row counts and checksums of the restored tables with those recorded.
    VerifyChecksums { databases: Vec<String> },
    /// Run a service-control command (stop, start).
    Service { what: &'static str, command: String },
    /// Put a file of the snapshot in place (atomically: written beside, then renamed).
    PlaceFile { stream: String, path: PathBuf },
    /// Compare the key count of every database with the recorded one.
    VerifyKeys,
    /// Check that every recorded broker definition exists again.
    VerifyDefinitions,
    /// Check that every recorded cluster resource and constraint exists again.
    VerifyCib,
}

impl Step {
    fn describe(&self, name: &str, c: &Component, snap: &Id) -> String {
        match self {
            Step::Safety => format!(
                "safety backup of what {name} holds now ({}), tagged `safety`; restoring that snapshot undoes this restore",
                c.describe()
            ),
            Step::RestoreStream { stream, command } => format!(
                "feed {stream} of snapshot {} to `{command}` on its standard input",
                snap.short()
            ),
            Step::RestoreFiles { target } => format!(
                "restore {} from snapshot {} into {} (existing files are overwritten)",
                c.describe(),
                snap.short(),
                target.display()
            ),
            Step::CheckVersion { recorded } => format!(
                "check that the server runs the version recorded at backup time ({recorded}); --force goes on when it does not"
            ),
            Step::VerifyChecksums { databases } => format!(
                "compare row counts and checksums of {} with those recorded at backup time",
                databases.join(", ")
            ),
            Step::Service { what, command } => format!("{what} the service: `{command}`"),
            Step::PlaceFile { stream, path } => format!(
                "put {stream} of snapshot {} in place as {} (owner of its directory, mode 0640)",
                snap.short(),
                path.display()
            ),
            Step::VerifyKeys => {
                "compare the key count of every database with the one recorded at backup time"
                    .into()
            }
            Step::VerifyCib => "check that every recorded resource and constraint is in the cluster's configuration again".into(),
            Step::VerifyDefinitions => "check that every recorded user, vhost, permission, policy, parameter, queue, exchange and binding exists again".into(),
        }
    }
}

fn journal_path(repo: &Repository, name: &str) -> PathBuf {
    context::state_dir()
        .join("journal")
        .join(format!("{}-{name}.json", repo.config().id.short()))
}

/// The version recorded in a MariaDB snapshot's server.json.
fn recorded_version(repo: &Repository, snap: &Snapshot) -> Result<String> {
    let text = read_stream(repo, snap, lifeboat_sources::mariadb::SERVER_STREAM)?;
    let v: Value = serde_json::from_str(text.trim()).context("server.json is not JSON")?;
    Ok(v["version"].as_str().unwrap_or("").to_string())
}

/// A small stream of a snapshot, as text.
fn read_stream(repo: &Repository, snap: &Snapshot, name: &str) -> Result<String> {
    let node = lifeboat_repo::walk::lookup(repo, snap.tree, &Path::new("/").join(name))?;
    let mut text = String::new();
    use std::io::Read;
    super::browse::ContentReader::new(repo, &node)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {name}"))?;
    Ok(text)
}

pub fn pacemaker_of(c: &Component) -> lifeboat_sources::pacemaker::Pacemaker {
    match &c.kind {
        Kind::Pacemaker { env } => lifeboat_sources::pacemaker::Pacemaker {
            prefix: env
                .iter()
                .map(|(k, v)| format!("{k}={}", lifeboat_sources::mariadb::sh_quote(v)))
                .collect::<Vec<_>>()
                .join(" "),
        },
        _ => Default::default(),
    }
}

fn redis_of(c: &Component) -> lifeboat_sources::redis::Redis {
    match &c.kind {
        Kind::Redis {
            host,
            port,
            password_file,
            ..
        } => lifeboat_sources::redis::Redis {
            host: host.clone(),
            port: *port,
            password_file: password_file.clone(),
        },
        _ => Default::default(),
    }
}

/// The part of a version that must match: `10.11` of `10.11.19-MariaDB-0+deb12u1-log` for
/// MariaDB, `15` of `15.14 (Debian 15.14-0+deb12u1)` for PostgreSQL (10 and later).
fn major_version(c: &Component, v: &str) -> String {
    let parts = if matches!(c.kind, Kind::Postgres { .. }) {
        1
    } else {
        2
    };
    v.split(['.', '-', ' '])
        .take(parts)
        .collect::<Vec<_>>()
        .join(".")
}

fn postgres_of(c: &Component) -> lifeboat_sources::postgres::Postgres {
    match &c.kind {
        Kind::Postgres {
            host,
            port,
            user,
            passfile,
            bindir,
            ..
        } => lifeboat_sources::postgres::Postgres {
            host: host.clone(),
            port: *port,
            user: user.clone(),
            passfile: passfile.clone(),
            bindir: bindir.clone(),
        },
        _ => Default::default(),
    }
}

fn steps_of(
    name: &str,
    c: &Component,
    a: &RestoreArgs,
    repo: &Repository,
    snap: &Snapshot,
) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    if !a.no_safety {
        steps.push(Step::Safety);
    }
    match &c.kind {
        Kind::Command { restore, .. } => {
            let command = restore.clone().ok_or_else(|| {
                fail(
                    exit::ERROR,
                    format!(
                        "component {name} has no `restore` command in the configuration; `lifeboat dump` writes its dump to standard output"
                    ),
                )
            })?;
            steps.push(Step::RestoreStream {
                stream: c.stream_name(name).unwrap_or_default(),
                command,
            });
        }
        Kind::Files { .. } => steps.push(Step::RestoreFiles {
            target: a.target.clone().unwrap_or_else(|| PathBuf::from("/")),
        }),
        Kind::Mariadb { defaults_file, .. } => {
            use lifeboat_sources::mariadb::{GRANTS_STREAM, MariaDb};
            let m = MariaDb {
                defaults_file: defaults_file.clone(),
            };
            steps.insert(
                0,
                Step::CheckVersion {
                    recorded: recorded_version(repo, snap)?,
                },
            );
            let mut dbs: Vec<String> = snap
                .streams
                .iter()
                .filter_map(|s| s.name.strip_suffix(".sql"))
                .filter(|n| *n != GRANTS_STREAM.trim_end_matches(".sql"))
                .map(str::to_string)
                .collect();
            if let Some(only) = &a.database {
                if !dbs.contains(only) {
                    return Err(fail(
                        exit::ERROR,
                        format!(
                            "the snapshot holds no database {only} (it has: {})",
                            dbs.join(", ")
                        ),
                    ));
                }
                dbs = vec![only.clone()];
            }
            for db in &dbs {
                steps.push(Step::RestoreStream {
                    stream: format!("{db}.sql"),
                    command: m.restore_command(),
                });
            }
            if a.database.is_none() {
                steps.push(Step::RestoreStream {
                    stream: GRANTS_STREAM.into(),
                    command: m.restore_command(),
                });
            }
            steps.push(Step::VerifyChecksums { databases: dbs });
        }
        Kind::Galera { .. } => {
            return Err(fail(
                exit::ERROR,
                format!(
                    "restoring a whole Galera cluster (fence clients, stop every node, restore on one, bootstrap it, rejoin the others) is not implemented yet; to restore databases into the running cluster, point a mariadb component at one node and restore with it (the dumps of {name} are MariaDB dumps)"
                ),
            ));
        }
        Kind::Pacemaker { .. } => {
            let p = pacemaker_of(c);
            steps.push(Step::Service {
                what: "enter maintenance mode of",
                command: p.maintenance(true),
            });
            steps.push(Step::RestoreStream {
                stream: lifeboat_sources::pacemaker::CIB_STREAM.into(),
                command: p.replace_command(),
            });
            steps.push(Step::Service {
                what: "leave maintenance mode of",
                command: p.maintenance(false),
            });
            steps.push(Step::VerifyCib);
        }
        Kind::Rabbitmq { ctl, .. } => {
            let r = lifeboat_sources::rabbitmq::RabbitMq { ctl: ctl.clone() };
            steps.push(Step::RestoreStream {
                stream: lifeboat_sources::rabbitmq::DEFINITIONS_STREAM.into(),
                command: r.restore_command(),
            });
            steps.push(Step::VerifyDefinitions);
        }
        Kind::Redis {
            rdb_path,
            stop,
            start,
            ..
        } => {
            use lifeboat_sources::redis;
            let path = match rdb_path {
                Some(p) => p.clone(),
                None => {
                    let text = read_stream(repo, snap, redis::SERVER_STREAM)?;
                    redis::recorded_rdb_path(&text).ok_or_else(|| {
                        fail(
                            exit::ERROR,
                            "the snapshot does not record where the RDB file goes; set rdb_path in the configuration",
                        )
                    })?
                }
            };
            steps.push(Step::Service {
                what: "stop",
                command: stop.clone(),
            });
            steps.push(Step::PlaceFile {
                stream: redis::RDB_STREAM.into(),
                path,
            });
            steps.push(Step::Service {
                what: "start",
                command: start.clone(),
            });
            steps.push(Step::VerifyKeys);
        }
        Kind::Postgres { .. } => {
            let pg = postgres_of(c);
            steps.insert(
                0,
                Step::CheckVersion {
                    recorded: recorded_version(repo, snap)?,
                },
            );
            let mut dbs: Vec<String> = snap
                .streams
                .iter()
                .filter_map(|s| s.name.strip_suffix(".dump"))
                .map(str::to_string)
                .collect();
            if let Some(only) = &a.database {
                if !dbs.contains(only) {
                    return Err(fail(
                        exit::ERROR,
                        format!(
                            "the snapshot holds no database {only} (it has: {})",
                            dbs.join(", ")
                        ),
                    ));
                }
                dbs = vec![only.clone()];
            } else {
                // Roles first: the databases' objects name their owners.
                steps.push(Step::RestoreStream {
                    stream: lifeboat_sources::postgres::GLOBALS_STREAM.into(),
                    command: pg.restore_globals_command(),
                });
            }
            for db in &dbs {
                steps.push(Step::RestoreStream {
                    stream: format!("{db}.dump"),
                    command: pg.restore_archive_command(),
                });
            }
            steps.push(Step::VerifyChecksums { databases: dbs });
        }
    }
    Ok(steps)
}

pub fn run(g: &Global, cfg: &Config, a: RestoreArgs, progress: Arc<Progress>) -> Result<u8> {
    let name = a.snapshot.clone();
    let Some(c) = cfg.components.get(&name) else {
        return Err(fail(exit::ERROR, format!("no component {name:?}")));
    };
    let repo = context::open(g)?;
    let journal_file = journal_path(&repo, &name);
    let journal: Option<Value> = std::fs::read(&journal_file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());

    // Which snapshot: the journal's when resuming, else the one named, else the last good.
    let (snaps, _) = repo.snapshots()?;
    let snap_id: Id = match (&journal, a.resume, &a.from) {
        (Some(j), true, _) => j["snapshot"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| fail(exit::ERROR, "the restore journal is damaged; remove it"))?,
        (_, _, Some(spec)) => repo.find_snapshot(spec, &Default::default())?.0,
        _ => {
            let st = lifeboat_plan::component_status([name.clone()], &snaps);
            st.get(&name)
                .and_then(|s| s.last_good)
                .map(|(id, _)| id)
                .ok_or_else(|| {
                    fail(
                        exit::ERROR,
                        format!("component {name} has no good backup to restore"),
                    )
                })?
        }
    };
    let snap: Snapshot = repo.read_snapshot(&snap_id)?;
    if !snap
        .tags
        .iter()
        .any(|t| *t == format!("{}{name}", lifeboat_plan::COMPONENT_TAG))
    {
        return Err(fail(
            exit::ERROR,
            format!(
                "snapshot {} is not a backup of component {name}",
                snap_id.short()
            ),
        ));
    }
    let steps = steps_of(&name, c, &a, &repo, &snap)?;
    let done: usize = match (&journal, a.resume) {
        (Some(j), true) => j["done"].as_u64().unwrap_or(0) as usize,
        (Some(j), false) if !a.plan => {
            return Err(fail(
                exit::ERROR,
                format!(
                    "an earlier restore of {name} stopped after step {} of {} ({}); run `lifeboat restore {name} --yes --resume` to go on, or remove {} to start over",
                    j["done"].as_u64().unwrap_or(0),
                    j["steps"].as_u64().unwrap_or(0),
                    j["error"].as_str().unwrap_or("interrupted"),
                    journal_file.display()
                ),
            ));
        }
        _ => 0,
    };

    if a.plan || !a.yes {
        if !g.json {
            println!(
                "restore of component {name} ({}) from snapshot {} ({}):",
                c.kind.name(),
                snap_id.short(),
                crate::ui::local_time(&snap.time)
            );
            for (i, s) in steps.iter().enumerate() {
                println!("  {}. {}", i + 1, s.describe(&name, c, &snap_id));
            }
        } else {
            super::print_json(&json!({
                "message_type": "restore_plan", "component": name, "snapshot": snap_id.to_hex(),
                "steps": steps.iter().map(|s| s.describe(&name, c, &snap_id)).collect::<Vec<_>>(),
            }));
        }
        if a.plan {
            return Ok(exit::OK);
        }
        return Err(fail(
            exit::ERROR,
            "a component restore changes the running system: review the steps above, then run again with --yes",
        ));
    }

    let write_journal = |done: usize, error: Option<&str>, safety: Option<&str>| -> Result<()> {
        if let Some(d) = journal_file.parent() {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        let j = json!({
            "component": name, "snapshot": snap_id.to_hex(), "steps": steps.len(),
            "done": done, "error": error, "safety_snapshot": safety,
        });
        std::fs::write(&journal_file, j.to_string())
            .with_context(|| format!("writing the restore journal {}", journal_file.display()))
    };
    let mut safety: Option<String> = journal
        .as_ref()
        .and_then(|j| j["safety_snapshot"].as_str().map(str::to_string));
    for (i, step) in steps.iter().enumerate().skip(done) {
        if !g.quiet && !g.json {
            println!(
                "step {}/{}: {}",
                i + 1,
                steps.len(),
                step.describe(&name, c, &snap_id)
            );
        }
        write_journal(i, None, safety.as_deref())?;
        let r = run_step(
            g,
            &repo,
            (&name, c),
            (&snap_id, &snap),
            step,
            a.force,
            progress.clone(),
        );
        match r {
            Ok(Some(id)) => safety = Some(id.to_hex()),
            Ok(None) => {}
            Err(e) => {
                let msg = exit::message_of(&e);
                write_journal(i, Some(&msg), safety.as_deref())?;
                return Err(fail(
                    exit::code_of(&e).max(exit::ERROR),
                    format!(
                        "the restore of {name} stopped at step {} of {}: {msg}; fix the cause and run `lifeboat restore {name} --yes --resume`{}",
                        i + 1,
                        steps.len(),
                        safety
                            .as_ref()
                            .map(|s| format!(" (the safety backup is snapshot {})", &s[..8]))
                            .unwrap_or_default()
                    ),
                ));
            }
        }
    }
    let _ = std::fs::remove_file(&journal_file);
    if g.json {
        super::print_json(&json!({
            "message_type": "restore_done", "component": name, "snapshot": snap_id.to_hex(),
            "safety_snapshot": safety,
        }));
    } else if !g.quiet {
        println!(
            "component {name} restored from snapshot {}{}",
            snap_id.short(),
            safety
                .map(|s| format!("; the state before is in snapshot {}", &s[..8]))
                .unwrap_or_default()
        );
    }
    Ok(exit::OK)
}

fn run_step(
    g: &Global,
    repo: &Repository,
    (name, c): (&str, &Component),
    (snap_id, snap): (&Id, &Snapshot),
    step: &Step,
    force: bool,
    progress: Arc<Progress>,
) -> Result<Option<Id>> {
    match step {
        Step::Safety => {
            // Nothing to keep when none of a files component's paths exists (a rebuilt node).
            if let Kind::Files {
                paths,
                paths_if_present,
                ..
            } = &c.kind
                && !paths.iter().chain(paths_if_present).any(|p| p.exists())
            {
                return Ok(None);
            }
            let mut args = BackupArgs::parse_for_component();
            args.tags.push(lifeboat_plan::SAFETY_TAG.into());
            super::backup::component_backup(g, repo, &args, name, c, progress)
        }
        Step::RestoreStream { stream, command } => {
            let node = lifeboat_repo::walk::lookup(repo, snap.tree, &Path::new("/").join(stream))?;
            let mut child = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(command)
                .env_remove("LIFEBOAT_PASSWORD")
                .stdin(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .with_context(|| format!("starting `{command}`"))?;
            let mut stdin = child
                .stdin
                .take()
                .ok_or_else(|| fail(exit::ERROR, "no stdin pipe"))?;
            let copied = std::io::copy(
                &mut super::browse::ContentReader::new(repo, &node),
                &mut stdin,
            );
            drop(stdin);
            let out = child
                .wait_with_output()
                .context("waiting for the restore command")?;
            let tail = String::from_utf8_lossy(&out.stderr);
            let tail = tail.trim();
            let tail = &tail[tail.len().saturating_sub(2000)..];
            if !out.status.success() {
                return Err(fail(
                    exit::ERROR,
                    format!("`{command}` failed ({}): {tail}", out.status),
                ));
            }
            copied.with_context(|| format!("feeding {stream} to `{command}`"))?;
            Ok(None)
        }
        Step::CheckVersion { recorded } => {
            let now = match &c.kind {
                Kind::Mariadb { defaults_file, .. } => lifeboat_sources::mariadb::MariaDb {
                    defaults_file: defaults_file.clone(),
                }
                .version(),
                Kind::Postgres { .. } => postgres_of(c).version(),
                _ => return Ok(None),
            }
            .map_err(|e| fail(exit::ERROR, e))?;
            if major_version(c, &now) != major_version(c, recorded) && !force {
                return Err(fail(
                    exit::ERROR,
                    format!(
                        "the server runs {now}, the backup was taken from {recorded}; a dump restored into another major version may not load or behave the same; run again with --force to go on"
                    ),
                ));
            }
            Ok(None)
        }
        Step::VerifyChecksums { databases } if matches!(c.kind, Kind::Postgres { .. }) => {
            let pg = postgres_of(c);
            let recorded = lifeboat_sources::postgres::parse_checksums(&read_stream(
                repo,
                snap,
                lifeboat_sources::postgres::CHECKSUMS_STREAM,
            )?);
            let mut differ = Vec::new();
            let mut n = 0;
            for db in databases {
                let now = pg.checksums(db).map_err(|e| fail(exit::ERROR, e))?;
                for ((d, t), v) in recorded.iter().filter(|((d, _), _)| d == db) {
                    n += 1;
                    if now.get(t) != Some(v) {
                        let got = now.get(t).cloned().unwrap_or_default();
                        differ.push(format!("{d}.{t} (rows {} -> {})", v.0, got.0));
                    }
                }
            }
            if !differ.is_empty() {
                return Err(fail(
                    exit::ERROR,
                    format!(
                        "{} table(s) differ from what was recorded at backup time: {} (if the database was written to while the backup ran, the record is not exact)",
                        differ.len(),
                        differ.join("; ")
                    ),
                ));
            }
            if !g.quiet && !g.json {
                println!("  {n} tables match their recorded row counts and content hashes");
            }
            Ok(None)
        }
        Step::VerifyChecksums { databases } => {
            let Kind::Mariadb { defaults_file, .. } = &c.kind else {
                return Ok(None);
            };
            let m = lifeboat_sources::mariadb::MariaDb {
                defaults_file: defaults_file.clone(),
            };
            // No checksums.tsv when there was no table at backup time.
            let name = lifeboat_sources::mariadb::CHECKSUMS_STREAM;
            let recorded = if snap.streams.iter().any(|s| s.name == name) {
                lifeboat_sources::mariadb::parse_checksums(&read_stream(repo, snap, name)?)
            } else {
                Default::default()
            };
            let recorded: std::collections::BTreeMap<_, _> = recorded
                .into_iter()
                .filter(|(k, _)| databases.iter().any(|d| k.starts_with(&format!("{d}."))))
                .collect();
            let tables: Vec<(String, String)> = recorded
                .keys()
                .filter_map(|k| k.split_once('.'))
                .map(|(d, t)| (d.to_string(), t.to_string()))
                .collect();
            let now = m.checksums(&tables).map_err(|e| fail(exit::ERROR, e))?;
            let differ: Vec<String> = recorded
                .iter()
                .filter(|(k, v)| now.get(*k) != Some(*v))
                .map(|(k, v)| {
                    let n = now.get(k).cloned().unwrap_or_default();
                    format!("{k} (rows {} -> {}, checksum {} -> {})", v.0, n.0, v.1, n.1)
                })
                .collect();
            if !differ.is_empty() {
                return Err(fail(
                    exit::ERROR,
                    format!(
                        "{} table(s) differ from what was recorded at backup time: {} (if the database was written to while the backup ran, the record is not exact)",
                        differ.len(),
                        differ.join("; ")
                    ),
                ));
            }
            if !g.quiet && !g.json {
                println!(
                    "  {} tables match their recorded row counts and checksums",
                    recorded.len()
                );
            }
            Ok(None)
        }
        Step::Service { command, .. } => {
            let out = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(command)
                .env_remove("LIFEBOAT_PASSWORD")
                .stdin(std::process::Stdio::null())
                .output()
                .with_context(|| format!("running `{command}`"))?;
            if !out.status.success() {
                return Err(fail(
                    exit::ERROR,
                    format!(
                        "`{command}` failed ({}): {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                ));
            }
            Ok(None)
        }
        Step::PlaceFile { stream, path } => {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let node = lifeboat_repo::walk::lookup(repo, snap.tree, &Path::new("/").join(stream))?;
            let dir = path
                .parent()
                .ok_or_else(|| fail(exit::ERROR, format!("{} has no directory", path.display())))?;
            let meta = std::fs::metadata(dir)
                .with_context(|| format!("the directory of {}", path.display()))?;
            // Written beside the target and renamed over it: the service never sees half a
            // file, and a crash leaves the old file or the new one.
            let tmp = dir.join(format!(".lifeboat-restore-{}", std::process::id()));
            let mut f = std::fs::File::create(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            std::io::copy(&mut super::browse::ContentReader::new(repo, &node), &mut f)
                .with_context(|| format!("writing {}", tmp.display()))?;
            f.sync_all().context("syncing the restored file")?;
            drop(f);
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o640))?;
            std::os::unix::fs::chown(&tmp, Some(meta.uid()), Some(meta.gid()))
                .with_context(|| format!("giving {} to its directory's owner", tmp.display()))?;
            std::fs::rename(&tmp, path)
                .with_context(|| format!("moving the file into place as {}", path.display()))?;
            Ok(None)
        }
        Step::VerifyKeys => {
            let recorded = lifeboat_sources::redis::parse_keyspace(&read_stream(
                repo,
                snap,
                lifeboat_sources::redis::KEYSPACE_STREAM,
            )?);
            // Right after its start the server may still be loading the file.
            let r = redis_of(c);
            let mut now = Default::default();
            let mut last_err = String::new();
            for _ in 0..50 {
                match r.keyspace() {
                    Ok(k) => {
                        now = k;
                        last_err.clear();
                        break;
                    }
                    Err(e) => {
                        last_err = e;
                        std::thread::sleep(std::time::Duration::from_millis(200));
                    }
                }
            }
            if !last_err.is_empty() {
                return Err(fail(exit::ERROR, last_err));
            }
            if now != recorded {
                return Err(fail(
                    exit::ERROR,
                    format!(
                        "the key counts differ from those recorded at backup time: recorded {recorded:?}, now {now:?}"
                    ),
                ));
            }
            if !g.quiet && !g.json {
                println!(
                    "  key counts match: {}",
                    recorded
                        .iter()
                        .map(|(d, n)| format!("{d}={n}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
            }
            Ok(None)
        }
        Step::VerifyCib => {
            let p = pacemaker_of(c);
            let recorded = lifeboat_sources::pacemaker::Pacemaker::object_ids(&read_stream(
                repo,
                snap,
                lifeboat_sources::pacemaker::CIB_STREAM,
            )?);
            let out = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("{} cibadmin --query", p.prefix))
                .env_remove("LIFEBOAT_PASSWORD")
                .output()
                .context("running cibadmin --query")?;
            let now = lifeboat_sources::pacemaker::Pacemaker::object_ids(&String::from_utf8_lossy(
                &out.stdout,
            ));
            let missing: Vec<&String> = recorded.difference(&now).collect();
            if !out.status.success() || !missing.is_empty() {
                return Err(fail(
                    exit::ERROR,
                    format!(
                        "the cluster's configuration lacks {} recorded object(s): {}",
                        missing.len(),
                        missing
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            if !g.quiet && !g.json {
                println!("  {} resources and constraints are back", recorded.len());
            }
            Ok(None)
        }
        Step::VerifyDefinitions => {
            let Kind::Rabbitmq { ctl, .. } = &c.kind else {
                return Ok(None);
            };
            let r = lifeboat_sources::rabbitmq::RabbitMq { ctl: ctl.clone() };
            let recorded: Value = serde_json::from_str(&read_stream(
                repo,
                snap,
                lifeboat_sources::rabbitmq::DEFINITIONS_STREAM,
            )?)
            .context("the recorded definitions are not JSON")?;
            // The broker imports asynchronously: look again for a while before failing.
            let mut missing = Vec::new();
            for _ in 0..30 {
                let now: Value =
                    serde_json::from_str(&r.export().map_err(|e| fail(exit::ERROR, e))?)
                        .context("rabbitmqctl's export is not JSON")?;
                missing = missing_definitions(&recorded, &now);
                if missing.is_empty() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            if !missing.is_empty() {
                return Err(fail(
                    exit::ERROR,
                    format!(
                        "{} recorded definition(s) are missing after the import: {}",
                        missing.len(),
                        missing.join("; ")
                    ),
                ));
            }
            if !g.quiet && !g.json {
                println!("  every recorded definition exists again");
            }
            Ok(None)
        }
        Step::RestoreFiles { target } => {
            let a = RestoreArgs::for_snapshot(snap_id.to_hex(), target.clone());
            let code = super::restore::run_open(g, repo, a, progress)?;
            if code != exit::OK {
                return Err(fail(
                    code,
                    "some entries could not be restored (listed above)",
                ));
            }
            Ok(None)
        }
    }
}

impl RestoreArgs {
    fn for_snapshot(snapshot: String, target: PathBuf) -> Self {
        RestoreArgs {
            snapshot,
            target: Some(target),
            from: None,
            plan: false,
            yes: false,
            resume: false,
            no_safety: false,
            force: false,
            database: None,
            includes: vec![],
            excludes: vec![],
            verify: false,
            overwrite: OverwriteArg::Always,
            delete: false,
            sparse: true,
            filter: Default::default(),
        }
    }
}

impl BackupArgs {
    /// Backup arguments with every option at its default.
    fn parse_for_component() -> Self {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            a: BackupArgs,
        }
        Wrap::parse_from(["lifeboat"]).a
    }
}

/// Recorded broker definitions that the broker does not have now ("section: name"). Objects
/// are matched by their identity (a vhost by name, a binding by its ends and key...), not by
/// every field: the broker fills in defaults on import. Objects created since the backup are
/// not counted: an import adds, it does not remove.
fn missing_definitions(recorded: &Value, now: &Value) -> Vec<String> {
    let id_fields = |sec: &str| -> &'static [&'static str] {
        match sec {
            "users" => &["name"],
            "vhosts" => &["name"],
            "permissions" => &["user", "vhost"],
            "topic_permissions" => &["user", "vhost", "exchange"],
            "policies" => &["vhost", "name"],
            "parameters" => &["vhost", "component", "name"],
            "global_parameters" => &["name"],
            "queues" | "exchanges" => &["vhost", "name"],
            "bindings" => &[
                "vhost",
                "source",
                "destination",
                "destination_type",
                "routing_key",
            ],
            _ => &[],
        }
    };
    let key = |sec: &str, item: &Value| -> String {
        id_fields(sec)
            .iter()
            .map(|f| item[*f].to_string())
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut out = Vec::new();
    for sec in lifeboat_sources::rabbitmq::SECTIONS {
        let have: std::collections::HashSet<String> = now[sec]
            .as_array()
            .map(|a| a.iter().map(|i| key(sec, i)).collect())
            .unwrap_or_default();
        for item in recorded[sec].as_array().into_iter().flatten() {
            let k = key(sec, item);
            if !have.contains(&k) {
                out.push(format!("{sec}: {k}"));
            }
        }
    }
    out
}
