//! `lifeboat backup`.

use crate::cli::{BackupArgs, Global};
use crate::exit::{self, fail};
use crate::ui::{self, Bar};
use crate::{commands::print_json, context};
use anyhow::{Context as _, Result};
use lifeboat_format::NodeKind;
use lifeboat_repo::source::{FileSource, SourceEntry, StreamSource};
use lifeboat_repo::{BackupOptions, Progress, SnapshotFilter, normalize_path};
use lifeboat_sources::{CommandStream, FsSource, FsSourceOptions, StdinStream};
use std::path::PathBuf;
use std::sync::Arc;

pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

fn username() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

/// What a component run adds to one backup: the run id shared by the components of one
/// invocation, the component's name, and its dump's time limit.
#[derive(Default, Clone)]
struct RunContext {
    run_id: Option<String>,
    component: Option<String>,
    timeout: Option<std::time::Duration>,
    /// Per stream name: a command that reads the dump as it is taken and must accept it.
    validate: Vec<(String, String)>,
}

pub fn run(g: &Global, a: BackupArgs, progress: Arc<Progress>) -> Result<u8> {
    // Arguments that name configured components make this a component backup.
    if let Some(cfg) = &g.loaded {
        let named: Vec<String> = a
            .paths
            .iter()
            .filter_map(|p| p.to_str())
            .filter(|p| cfg.components.contains_key(*p))
            .map(str::to_string)
            .collect();
        if !named.is_empty() {
            if named.len() != a.paths.len() {
                return Err(fail(
                    exit::ERROR,
                    "give either component names or paths, not both (a path that has a component's name can be written ./NAME)",
                ));
            }
            return components(g, &a, cfg, &named, progress);
        }
    }
    let repo = context::open(g)?;
    single(g, &repo, a, RunContext::default(), progress).map(|(code, _)| code)
}

/// `lifeboat backup COMPONENT...`: one snapshot per component, one run id across them. A
/// component that fails (its dump fails, times out or is killed) writes no snapshot; the
/// others still run, and the exit code is 1.
fn components(
    g: &Global,
    a: &BackupArgs,
    cfg: &lifeboat_plan::Config,
    names: &[String],
    progress: Arc<Progress>,
) -> Result<u8> {
    let mut repo = context::open(g)?;
    let mut raw = [0u8; 8];
    lifeboat_crypto::random_bytes(&mut raw).map_err(|e| fail(exit::ERROR, e.to_string()))?;
    let run_id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let mut failed = Vec::new();
    let mut worst = exit::OK;
    for name in names {
        let Some(c) = cfg.components.get(name) else {
            continue;
        };
        if !g.quiet && !g.json {
            println!("== component {name} ({})", c.kind.name());
        }
        let run = backup_one(g, &repo, a, (name, c), &run_id, false, progress.clone());
        match run {
            Ok((code, _)) => worst = worst.max(code),
            Err(e) => {
                let msg = exit::message_of(&e);
                if g.json {
                    print_json(&serde_json::json!({
                        "message_type": "component_failed", "component": name, "run_id": run_id, "error": msg,
                    }));
                } else {
                    eprintln!("lifeboat: component {name}: {msg}");
                }
                if exit::code_of(&e) == exit::INTERRUPTED {
                    return Err(e);
                }
                failed.push(name.clone());
            }
        }
        // The next component deduplicates against what this one stored.
        repo.load_index()?;
    }
    if !failed.is_empty() {
        return Err(fail(
            exit::ERROR,
            format!(
                "{} of {} components failed and have no new snapshot: {} (run {run_id}); `lifeboat components` shows their last good backup",
                failed.len(),
                names.len(),
                failed.join(", ")
            ),
        ));
    }
    Ok(worst)
}

/// Backs up one component as a safety dump before a restore (what exists of it now; a
/// configured database that is missing is skipped); returns the snapshot id.
pub fn component_backup(
    g: &Global,
    repo: &lifeboat_repo::Repository,
    a: &BackupArgs,
    name: &str,
    c: &lifeboat_plan::Component,
    progress: Arc<Progress>,
) -> Result<Option<lifeboat_format::Id>> {
    let mut raw = [0u8; 8];
    lifeboat_crypto::random_bytes(&mut raw).map_err(|e| fail(exit::ERROR, e.to_string()))?;
    let run_id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    backup_one(g, repo, a, (name, c), &run_id, true, progress).map(|(_, id)| id)
}

/// Backs up one component. A Galera component is dumped from the node `choose` picks, which
/// is desynced for the dump and resynced after whatever happens.
fn backup_one(
    g: &Global,
    repo: &lifeboat_repo::Repository,
    a: &BackupArgs,
    (name, c): (&str, &lifeboat_plan::Component),
    run_id: &str,
    safety: bool,
    progress: Arc<Progress>,
) -> Result<(u8, Option<lifeboat_format::Id>)> {
    let lifeboat_plan::Kind::Galera {
        nodes,
        avoid,
        databases,
        exclude,
        timeout,
    } = &c.kind
    else {
        let (b, validators) = component_args(a, name, c, safety)?;
        return single(
            g,
            repo,
            b,
            component_context(run_id, name, c, validators),
            progress,
        );
    };
    use lifeboat_sources::galera;
    let nodes: Vec<galera::GaleraNode> = nodes
        .iter()
        .map(|n| galera::GaleraNode {
            name: n.name.clone(),
            db: lifeboat_sources::mariadb::MariaDb {
                defaults_file: Some(n.defaults_file.clone()),
            },
        })
        .collect();
    let (i, before) =
        galera::choose(&nodes, avoid).map_err(|e| fail(exit::ERROR, format!("Galera: {e}")))?;
    let node = &nodes[i];
    if !g.quiet && !g.json {
        println!(
            "dumping from node {} ({}, last committed {})",
            node.name, before[i].state, before[i].last_committed
        );
    }
    let mut desync = galera::Desync::on(node)
        .map_err(|e| fail(exit::ERROR, format!("desyncing node {}: {e}", node.name)))?;
    // The dump is a MariaDB dump of the chosen node, plus the cluster's recorded state.
    let as_mariadb = lifeboat_plan::Component {
        kind: lifeboat_plan::Kind::Mariadb {
            defaults_file: Some(node.db.defaults_file.clone().unwrap_or_default()),
            databases: databases.clone(),
            exclude: exclude.clone(),
            timeout: timeout.clone(),
        },
        tags: c.tags.clone(),
    };
    let result = component_args(a, name, &as_mariadb, safety).and_then(|(mut b, validators)| {
        for t in &mut b.tags {
            if *t == format!("{}mariadb", lifeboat_plan::KIND_TAG) {
                *t = format!("{}galera", lifeboat_plan::KIND_TAG);
            }
        }
        let record = format!(
            "{{\"dumped_from\":{:?},\"state_uuid\":{:?},\"seqno\":{},\"nodes\":[{}]}}\n",
            node.name,
            before[i].state_uuid,
            before[i].last_committed,
            before
                .iter()
                .map(galera::NodeStatus::to_json)
                .collect::<Vec<_>>()
                .join(",")
        );
        b.from_commands.push(format!(
            "galera.json=printf '%s' {}",
            lifeboat_sources::mariadb::sh_quote(&record)
        ));
        single(
            g,
            repo,
            b,
            component_context(run_id, name, &as_mariadb, validators),
            progress,
        )
    });
    let released = desync.release();
    let after = galera::status(node);
    match (result, released) {
        (Ok(r), Ok(())) => {
            if !after.synced() && !g.quiet {
                eprintln!(
                    "warning: node {} is {} / {} after the backup",
                    node.name, after.state, after.cluster_status
                );
            }
            Ok(r)
        }
        (Ok((_, id)), Err(e)) => Err(fail(
            exit::ERROR,
            format!(
                "the snapshot {} was written, but wsrep_desync could not be set back on node {}: {e}; run `SET GLOBAL wsrep_desync = OFF` there",
                id.map(|i| i.short()).unwrap_or_default(),
                node.name
            ),
        )),
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(r)) => Err(fail(
            exit::ERROR,
            format!(
                "{}; and wsrep_desync could not be set back on node {}: {r}; run `SET GLOBAL wsrep_desync = OFF` there",
                exit::message_of(&e),
                node.name
            ),
        )),
    }
}

fn component_context(
    run_id: &str,
    name: &str,
    c: &lifeboat_plan::Component,
    validate: Vec<(String, String)>,
) -> RunContext {
    let mut validate = validate;
    if let lifeboat_plan::Kind::Command {
        validate: Some(v), ..
    } = &c.kind
    {
        validate.push((c.stream_name(name).unwrap_or_default(), v.clone()));
    }
    RunContext {
        run_id: Some(run_id.to_string()),
        component: Some(name.to_string()),
        timeout: c.timeout(),
        validate,
    }
}

/// A service's dumps as streams of the backup (`NAME=COMMAND`), with their validators.
fn add_dumps(
    b: &mut BackupArgs,
    validators: &mut Vec<(String, String)>,
    specs: Vec<lifeboat_sources::mariadb::DumpSpec>,
) {
    for spec in specs {
        if let Some(v) = spec.validate {
            validators.push((spec.stream.clone(), v));
        }
        b.from_commands
            .push(format!("{}={}", spec.stream, spec.command));
    }
}

/// The backup arguments of a component: its paths or its dumps, its excludes and tags, and
/// the validators of its dumps. Service kinds ask the service what to dump (its databases).
fn component_args(
    a: &BackupArgs,
    name: &str,
    c: &lifeboat_plan::Component,
    safety: bool,
) -> Result<(BackupArgs, Vec<(String, String)>)> {
    let mut validators = Vec::new();
    let mut b = a.clone();
    b.tags.extend(c.snapshot_tags(name));
    match &c.kind {
        lifeboat_plan::Kind::Files {
            paths,
            paths_if_present,
            exclude,
            exclude_if_present,
            one_file_system,
        } => {
            b.paths = paths.clone();
            b.paths.extend(
                paths_if_present
                    .iter()
                    .filter(|p| std::fs::symlink_metadata(p).is_ok())
                    .cloned(),
            );
            if b.paths.is_empty() {
                return Err(fail(
                    exit::ERROR,
                    format!(
                        "component {name}: none of its paths exists here ({}); nothing to back up",
                        paths_if_present
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                ));
            }
            b.excludes.extend(exclude.iter().cloned());
            b.exclude_if_present
                .extend(exclude_if_present.iter().cloned());
            b.one_file_system |= *one_file_system;
        }
        lifeboat_plan::Kind::Command { backup, .. } => {
            b.paths = Vec::new();
            let stream = c
                .stream_name(name)
                .unwrap_or_else(|| format!("{name}.dump"));
            b.from_commands = vec![format!("{stream}={backup}")];
        }
        lifeboat_plan::Kind::Mariadb {
            defaults_file,
            databases,
            exclude,
            ..
        } => {
            let m = lifeboat_sources::mariadb::MariaDb {
                defaults_file: defaults_file.clone(),
            };
            let dbs = m
                .databases(databases, exclude, safety)
                .map_err(|e| fail(exit::ERROR, format!("listing the databases: {e}")))?;
            let tables = m
                .tables(&dbs)
                .map_err(|e| fail(exit::ERROR, format!("listing the tables: {e}")))?;
            b.paths = Vec::new();
            b.from_commands = Vec::new();
            add_dumps(&mut b, &mut validators, m.dump_specs(&dbs, &tables));
        }
        lifeboat_plan::Kind::Postgres {
            host,
            port,
            user,
            passfile,
            bindir,
            databases,
            exclude,
            ..
        } => {
            use lifeboat_sources::postgres;
            let pg = postgres::Postgres {
                host: host.clone(),
                port: *port,
                user: user.clone(),
                passfile: passfile.clone(),
                bindir: bindir.clone(),
            };
            let dbs = pg
                .databases(databases, exclude, safety)
                .map_err(|e| fail(exit::ERROR, format!("listing the databases: {e}")))?;
            // Checksums first: taken just before the dumps, they are what a restore is
            // compared with.
            let mut sums = String::new();
            for db in &dbs {
                let s = pg
                    .checksums(db)
                    .map_err(|e| fail(exit::ERROR, format!("checksums of {db}: {e}")))?;
                sums.push_str(&postgres::format_checksums(db, &s));
            }
            b.paths = Vec::new();
            b.from_commands = Vec::new();
            let mut specs = pg.dump_specs(&dbs);
            specs.push(postgres::checksums_spec(&sums));
            add_dumps(&mut b, &mut validators, specs);
        }
        lifeboat_plan::Kind::Redis {
            host,
            port,
            password_file,
            ..
        } => {
            let r = lifeboat_sources::redis::Redis {
                host: host.clone(),
                port: *port,
                password_file: password_file.clone(),
            };
            // Fail early and clearly when the server is down or refuses the password.
            r.run("PING").map_err(|e| {
                fail(
                    exit::ERROR,
                    format!("the Redis server does not answer: {e}"),
                )
            })?;
            b.paths = Vec::new();
            b.from_commands = Vec::new();
            add_dumps(&mut b, &mut validators, r.dump_specs());
        }
        lifeboat_plan::Kind::Galera { .. } => {
            // backup_one turns a Galera component into a dump of the node it chooses.
            return Err(fail(
                exit::ERROR,
                format!("component {name}: a Galera component is dumped from a chosen node"),
            ));
        }
        lifeboat_plan::Kind::Pacemaker { .. } => {
            b.paths = Vec::new();
            b.from_commands = Vec::new();
            add_dumps(
                &mut b,
                &mut validators,
                super::component_restore::pacemaker_of(c).dump_specs(),
            );
        }
        lifeboat_plan::Kind::Rabbitmq { ctl, .. } => {
            let r = lifeboat_sources::rabbitmq::RabbitMq { ctl: ctl.clone() };
            b.paths = Vec::new();
            b.from_commands = Vec::new();
            add_dumps(&mut b, &mut validators, r.dump_specs());
        }
    }
    Ok((b, validators))
}

fn single(
    g: &Global,
    repo: &lifeboat_repo::Repository,
    a: BackupArgs,
    ctx: RunContext,
    progress: Arc<Progress>,
) -> Result<(u8, Option<lifeboat_format::Id>)> {
    let started = std::time::Instant::now();
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut use_stdin = false;
    for p in &a.paths {
        if p.as_os_str() == "-" {
            use_stdin = true;
            continue;
        }
        // A path that is not there is an operator error, found before anything is written.
        std::fs::symlink_metadata(p)
            .map_err(|e| fail(exit::ERROR, format!("cannot back up {}: {e}", p.display())))?;
        paths.push(normalize_path(p).with_context(|| format!("resolving {}", p.display()))?);
    }
    paths.sort();
    paths.dedup();
    if use_stdin && a.stdin_filename.is_none() {
        return Err(fail(
            exit::ERROR,
            "`-` reads standard input and needs --stdin-filename NAME",
        ));
    }
    if a.stdin_filename.is_some() && !use_stdin {
        return Err(fail(
            exit::ERROR,
            "--stdin-filename needs `-` among the paths",
        ));
    }
    let mut commands = Vec::new();
    for fc in &a.from_commands {
        let (name, cmd) = fc
            .split_once('=')
            .filter(|(n, c)| !n.is_empty() && !c.trim().is_empty())
            .ok_or_else(|| {
                fail(
                    exit::ERROR,
                    format!("--from-command {fc:?}: expected NAME=COMMAND"),
                )
            })?;
        commands.push((name.to_string(), cmd.to_string()));
    }
    if paths.is_empty() && !use_stdin && commands.is_empty() {
        return Err(fail(
            exit::ERROR,
            "nothing to back up: give paths, `-` with --stdin-filename, or --from-command",
        ));
    }

    let host = a.host.clone().unwrap_or_else(hostname);
    let path_strings: Vec<String> = paths
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let parent = if a.force || paths.is_empty() {
        None
    } else if let Some(spec) = &a.parent {
        Some(repo.find_snapshot(spec, &SnapshotFilter::default())?)
    } else {
        let f = SnapshotFilter {
            hosts: vec![host.clone()],
            tags: vec![],
            paths: vec![],
        };
        let (all, _) = repo.snapshots()?;
        all.into_iter()
            .rev()
            .find(|(_, s)| f.matches(s) && s.paths == path_strings)
    };

    let source = FsSource::new(FsSourceOptions {
        excludes: a.excludes.clone(),
        exclude_files: a.exclude_files.clone(),
        exclude_if_present: a.exclude_if_present.clone(),
        one_file_system: a.one_file_system,
    })
    .map_err(|e| fail(exit::ERROR, e.to_string()))?;

    let mut streams: Vec<Box<dyn StreamSource>> = Vec::new();
    if let Some(name) = &a.stdin_filename {
        streams.push(Box::new(StdinStream::new(name.clone())));
    }
    for (name, cmd) in commands {
        let mut s = CommandStream::spawn(name.clone(), cmd).map_err(|e| {
            fail(
                exit::ERROR,
                format!("starting the command for {name:?}: {e}"),
            )
        })?;
        if let Some(t) = ctx.timeout {
            s.set_timeout(t);
        }
        if let Some((_, v)) = ctx.validate.iter().find(|(n, _)| *n == name) {
            s.set_validator(v).map_err(|e| {
                fail(
                    exit::ERROR,
                    format!("starting the validation command for {name:?}: {e}"),
                )
            })?;
        }
        streams.push(Box::new(s));
    }

    let opts = BackupOptions {
        paths,
        tags: a.tags.clone(),
        hostname: host,
        username: username(),
        parent: parent.clone(),
        compression: a.compression,
        dry_run: a.dry_run,
        run_id: ctx.run_id.clone(),
        time: a.time,
    };
    let source = Arc::new(source);
    let bar = Bar::start(g, progress.clone(), ui::Kind::Backup);
    let scan_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scanner = bar.is_shown().then(|| {
        let (src, p, stop, roots) = (
            source.clone(),
            progress.clone(),
            scan_stop.clone(),
            opts.paths.clone(),
        );
        std::thread::spawn(move || scan(&*src, &roots, &p, &stop))
    });
    let result = lifeboat_repo::backup(repo, &*source, streams, &opts, &progress);
    scan_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(t) = scanner {
        let _ = t.join();
    }
    bar.finish();
    let res = result?;
    let s = &res.snapshot;
    let sockets = source.skipped_sockets();
    if !sockets.is_empty() && !g.quiet && !g.json {
        eprintln!(
            "note: {} socket(s) not stored (a socket is recreated by its server, not restored):",
            sockets.len()
        );
        for p in sockets.iter().take(10) {
            eprintln!("  {}", p.display());
        }
    }
    let sum = &s.summary;
    let secs = started.elapsed().as_secs_f64();
    if g.json {
        print_json(&serde_json::json!({
            "message_type": "summary",
            "component": ctx.component,
            "run_id": ctx.run_id,
            "snapshot_id": res.id.map(|i| i.to_hex()),
            "dry_run": a.dry_run,
            "parent": parent.map(|p| p.0.to_hex()),
            "files": sum.files,
            "dirs": sum.dirs,
            "other": sum.other,
            "files_unchanged": sum.files_unchanged,
            "bytes_read": sum.bytes_read,
            "bytes_total": sum.bytes_total,
            "blobs_added": sum.blobs_added,
            "bytes_added": sum.bytes_added,
            "bytes_stored": sum.bytes_stored,
            "duration_seconds": secs,
            "complete": s.is_complete(),
            "skipped": s.skipped.iter().map(|k| serde_json::json!({"path": k.path, "error": k.error})).collect::<Vec<_>>(),
        }));
    } else {
        for k in &s.skipped {
            eprintln!("warning: could not back up {}: {}", k.path, k.error);
        }
        if !g.quiet {
            if let Some((pid, _)) = &parent {
                println!(
                    "parent snapshot {} (unchanged files were not read)",
                    pid.short()
                );
            }
            println!(
                "{} files ({} unchanged), {} dirs, {} other; {} read, {} new, {} stored in {:.1}s",
                sum.files,
                sum.files_unchanged,
                sum.dirs,
                sum.other,
                ui::size(sum.bytes_read),
                ui::size(sum.bytes_added),
                ui::size(sum.bytes_stored),
                secs
            );
            match res.id {
                Some(id) if s.is_complete() => println!("snapshot {} saved", id.short()),
                Some(id) => println!(
                    "snapshot {} saved, INCOMPLETE: {} entries could not be read (listed above)",
                    id.short(),
                    s.skipped.len()
                ),
                None => println!("dry run: nothing was written"),
            }
        }
    }
    Ok((
        if s.is_complete() {
            exit::OK
        } else {
            exit::INCOMPLETE
        },
        res.id,
    ))
}

/// Walks the paths once with stat only, so the progress bar can show a percentage and an ETA.
/// Runs only while a bar is drawn; its counts are for display and never for the snapshot.
fn scan(
    source: &dyn FileSource,
    roots: &[PathBuf],
    p: &Progress,
    stop: &std::sync::atomic::AtomicBool,
) {
    use std::sync::atomic::Ordering;
    let mut stack: Vec<SourceEntry> = roots
        .iter()
        .filter_map(|r| source.stat(r).ok().flatten())
        .collect();
    while let Some(e) = stack.pop() {
        if stop.load(Ordering::Relaxed) || p.cancelled() {
            return;
        }
        match e.node.kind() {
            NodeKind::Dir => stack.extend(source.read_dir(&e).into_iter().flatten().flatten()),
            NodeKind::File => {
                Progress::add(&p.bytes_total, e.node.size);
                Progress::add(&p.files_total, 1);
            }
            _ => {}
        }
    }
    p.totals_done.store(true, Ordering::Relaxed);
}
