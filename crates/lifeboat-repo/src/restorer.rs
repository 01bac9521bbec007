//! Restore: recreate a snapshot's tree (or part of it) in a [`RestoreTarget`].
//!
//! Order matters for metadata: directories are created first, then files are written in
//! parallel (each gets its metadata as soon as it is whole), then hard links and special
//! files, and last the directories' own metadata, deepest first, because writing into a
//! directory changes its mtime and a read-only mode would stop the writes.

use crate::error::{RepoError, Result};
use crate::progress::Progress;
use crate::repository::Repository;
use crate::source::{Overwrite, RestoreTarget, SourceError};
use crate::walk::root_node;
use globset::{Glob, GlobSet, GlobSetBuilder};
use lifeboat_format::{Content, Node, NodeKind};
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub target: PathBuf,
    /// Path inside the snapshot to restore (the whole snapshot when `/`); its contents land
    /// in the target.
    pub source_path: PathBuf,
    pub includes: Vec<String>,
    pub excludes: Vec<String>,
    pub overwrite: Overwrite,
    /// Remove files in the target that the snapshot does not have.
    pub delete: bool,
    /// Keep holes as holes (files restored sparse); otherwise holes are written as zeros.
    pub sparse: bool,
    /// Read every restored file back and check it against the snapshot.
    pub verify: bool,
    pub threads: usize,
    /// Files kept open at once while their blobs arrive; 0 for the default (256). More are
    /// closed and opened again as needed.
    pub open_files: usize,
}

#[derive(Debug, Default, Clone)]
pub struct RestoreSummary {
    pub files: u64,
    pub dirs: u64,
    pub other: u64,
    pub files_skipped: u64,
    pub bytes_written: u64,
    pub deleted: u64,
    pub verified: u64,
    pub errors: Vec<(String, String)>,
}

fn globs(patterns: &[String]) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        // A pattern without '/' matches a name at any depth, as in exclude files.
        let full = if p.contains('/') {
            p.clone()
        } else {
            format!("**/{p}")
        };
        b.add(Glob::new(&full).map_err(|e| RepoError::Invalid(format!("bad pattern {p:?}: {e}")))?);
    }
    b.build().map_err(|e| RepoError::Invalid(e.to_string()))
}

struct Plan {
    /// Directories to create, parents first, with whether they are restored in full.
    dirs: Vec<(PathBuf, Node, bool)>,
    files: Vec<(PathBuf, Node)>,
    specials: Vec<(PathBuf, Node)>,
    links: Vec<(PathBuf, PathBuf, Node)>,
    bytes: u64,
}

pub fn restore(
    repo: &Repository,
    root: lifeboat_format::Id,
    opts: &RestoreOptions,
    target: &dyn RestoreTarget,
    progress: &Progress,
) -> Result<RestoreSummary> {
    let includes = globs(&opts.includes)?;
    let excludes = globs(&opts.excludes)?;
    let start = crate::walk::lookup(repo, root, &opts.source_path)?;
    let mut plan = Plan {
        dirs: vec![],
        files: vec![],
        specials: vec![],
        links: vec![],
        bytes: 0,
    };
    let mut first_link: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut summary = RestoreSummary::default();

    // Paths as they were in the snapshot decide includes and excludes; target paths are where
    // they go.
    let mut add = |dest: PathBuf, n: &Node, plan: &mut Plan| match n.kind() {
        NodeKind::File => {
            if n.nlink > 1 {
                if let Some(first) = first_link.get(&(n.dev, n.inode)) {
                    plan.links.push((first.clone(), dest, n.clone()));
                    return;
                }
                first_link.insert((n.dev, n.inode), dest.clone());
            }
            plan.bytes += n.size;
            plan.files.push((dest, n.clone()));
        }
        NodeKind::Dir => plan.dirs.push((dest, n.clone(), true)),
        _ => plan.specials.push((dest, n.clone())),
    };

    if start.is_dir() {
        plan.dirs.push((
            opts.target.clone(),
            if opts.source_path == Path::new("/") {
                root_node(root)
            } else {
                start.clone()
            },
            true,
        ));
        collect(
            repo,
            &start,
            &opts.source_path,
            &opts.target,
            !opts.includes.is_empty(),
            &includes,
            &excludes,
            &mut plan,
            &mut add,
            &mut summary,
        )?;
    } else {
        let name = opts
            .source_path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        plan.dirs
            .push((opts.target.clone(), root_node(root), false));
        add(opts.target.join(name), &start, &mut plan);
    }
    Progress::add(&progress.bytes_total, plan.bytes);

    // Directories, parents first.
    for (path, _, _) in &plan.dirs {
        if let Some(e) = handle_existing(target, path, NodeKind::Dir, None, opts.overwrite).err() {
            summary
                .errors
                .push((path.display().to_string(), e.to_string()));
            continue;
        }
        if let Err(e) = target.create_dir(path) {
            summary
                .errors
                .push((path.display().to_string(), e.to_string()));
        }
    }
    summary.dirs = plan.dirs.iter().filter(|d| d.2).count() as u64;

    // File contents, in pack order (see pack_order).
    let results = crate::pack_order::write_files(repo, target, &plan.files, opts, progress);
    if progress.cancelled() {
        return Err(RepoError::Interrupted);
    }
    for (path, r) in results {
        match r {
            Ok(true) => summary.files += 1,
            Ok(false) => summary.files_skipped += 1,
            Err(e) => summary.errors.push((path.display().to_string(), e)),
        }
    }
    summary.bytes_written = Progress::get(&progress.bytes);
    if opts.verify {
        summary.verified = summary.files;
    }

    for (path, node) in &plan.specials {
        let r =
            handle_existing(target, path, node.kind(), Some(node), opts.overwrite).and_then(|go| {
                if go {
                    target.create_special(path, node)?;
                    target.set_metadata(path, node)?;
                }
                Ok(go)
            });
        match r {
            Ok(true) => summary.other += 1,
            Ok(false) => {}
            Err(e) => summary
                .errors
                .push((path.display().to_string(), e.to_string())),
        }
    }
    for (first, path, node) in &plan.links {
        let r = handle_existing(target, path, NodeKind::File, Some(node), Overwrite::Always)
            .and_then(|_| target.hard_link(first, path));
        match r {
            Ok(()) => summary.files += 1,
            Err(e) => summary
                .errors
                .push((path.display().to_string(), e.to_string())),
        }
    }

    if opts.delete {
        for (path, node, full) in &plan.dirs {
            if !full {
                continue;
            }
            if let Err(e) = delete_extra(repo, target, path, node, &excludes, &mut summary) {
                summary
                    .errors
                    .push((path.display().to_string(), e.to_string()));
            }
        }
    }

    // Directory metadata last, deepest first.
    for (path, node, full) in plan.dirs.iter().rev() {
        if !full {
            continue;
        }
        if let Err(e) = target.set_metadata(path, node) {
            summary
                .errors
                .push((path.display().to_string(), e.to_string()));
        }
    }
    Ok(summary)
}

#[allow(clippy::too_many_arguments)]
fn collect(
    repo: &Repository,
    dir: &Node,
    snap_dir: &Path,
    dest_dir: &Path,
    need_include: bool,
    includes: &GlobSet,
    excludes: &GlobSet,
    plan: &mut Plan,
    add: &mut dyn FnMut(PathBuf, &Node, &mut Plan),
    summary: &mut RestoreSummary,
) -> Result<()> {
    let Some(sub) = dir.subtree else {
        return Ok(());
    };
    let tree = match repo.load_tree(&sub) {
        Ok(t) => t,
        Err(e) => {
            summary
                .errors
                .push((snap_dir.display().to_string(), e.to_string()));
            return Ok(());
        }
    };
    for n in &tree.nodes {
        let name = OsStr::from_bytes(&n.name);
        let snap_path = snap_dir.join(name);
        let dest = dest_dir.join(name);
        if excludes.is_match(&snap_path) {
            continue;
        }
        let included = !need_include || includes.is_match(&snap_path);
        if included {
            add(dest.clone(), n, plan);
            if n.is_dir() {
                collect(
                    repo, n, &snap_path, &dest, false, includes, excludes, plan, add, summary,
                )?;
            }
        } else if n.is_dir() {
            // Not included itself, but something below may be: look, and create this
            // directory only if something below is restored.
            let before = (
                plan.files.len(),
                plan.dirs.len(),
                plan.specials.len(),
                plan.links.len(),
            );
            let idx = plan.dirs.len();
            plan.dirs.push((dest.clone(), n.clone(), false));
            collect(
                repo, n, &snap_path, &dest, true, includes, excludes, plan, add, summary,
            )?;
            if before
                == (
                    plan.files.len(),
                    plan.dirs.len() - 1,
                    plan.specials.len(),
                    plan.links.len(),
                )
            {
                plan.dirs.remove(idx);
            }
        }
    }
    Ok(())
}

/// Decides what to do with an existing entry: `Ok(true)` to (re)create, `Ok(false)` to
/// leave it. Removes it first where the new entry cannot simply replace it.
pub(crate) fn handle_existing(
    target: &dyn RestoreTarget,
    path: &Path,
    kind: NodeKind,
    node: Option<&Node>,
    ow: Overwrite,
) -> std::result::Result<bool, SourceError> {
    let Some(existing) = target.existing(path)? else {
        return Ok(true);
    };
    if kind == NodeKind::Dir {
        if existing.kind() == NodeKind::Dir {
            return Ok(true);
        }
        if ow == Overwrite::Never {
            return Err(SourceError::new(
                path,
                "restore directory over",
                std::io::Error::other("a non-directory is in the way (--overwrite never)"),
            ));
        }
        target.remove(path)?;
        return Ok(true);
    }
    match ow {
        Overwrite::Never => Ok(false),
        Overwrite::IfChanged
            if node.is_some_and(|n| {
                existing.kind() == n.kind() && existing.size == n.size && existing.mtime == n.mtime
            }) =>
        {
            Ok(false)
        }
        _ => {
            if existing.kind() != kind || kind != NodeKind::File {
                target.remove(path)?;
            }
            Ok(true)
        }
    }
}

pub(crate) fn verify_file(
    repo: &Repository,
    target: &dyn RestoreTarget,
    path: &Path,
    node: &Node,
) -> Result<()> {
    let mut r = target
        .read_back(path)
        .map_err(|e| RepoError::Invalid(e.to_string()))?;
    let mut buf = Vec::new();
    let bad = |what: String| {
        RepoError::Invalid(format!("verification of {} failed: {what}", path.display()))
    };
    for c in &node.content {
        let (len, id) = match c {
            Content::Chunk(id) => (
                repo.index()
                    .get(id)
                    .map(|l| l.raw_len as u64)
                    .ok_or_else(|| RepoError::MissingBlob(id.to_hex()))?,
                Some(id),
            ),
            Content::Hole(n) => (*n, None),
        };
        buf.resize(len as usize, 0);
        r.read_exact(&mut buf).map_err(|e| bad(e.to_string()))?;
        match id {
            Some(id) if repo.keys().blob_id(&buf) != *id => {
                return Err(bad("content differs".into()));
            }
            None if buf.iter().any(|&b| b != 0) => return Err(bad("a hole is not zero".into())),
            _ => {}
        }
    }
    if r.read(&mut [0u8; 1]).map_err(|e| bad(e.to_string()))? != 0 {
        return Err(bad("file is longer than in the snapshot".into()));
    }
    Ok(())
}

fn delete_extra(
    repo: &Repository,
    target: &dyn RestoreTarget,
    path: &Path,
    node: &Node,
    excludes: &GlobSet,
    summary: &mut RestoreSummary,
) -> Result<()> {
    let keep: HashSet<Vec<u8>> = match node.subtree {
        Some(sub) => repo
            .load_tree(&sub)?
            .nodes
            .into_iter()
            .map(|n| n.name)
            .collect(),
        None => HashSet::new(),
    };
    for name in target
        .list_dir(path)
        .map_err(|e| RepoError::Invalid(e.to_string()))?
    {
        let p = path.join(OsStr::from_bytes(&name));
        if keep.contains(&name) || excludes.is_match(&p) {
            continue;
        }
        target
            .remove(&p)
            .map_err(|e| RepoError::Invalid(e.to_string()))?;
        summary.deleted += 1;
    }
    Ok(())
}
