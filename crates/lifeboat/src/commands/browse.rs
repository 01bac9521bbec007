//! Reading a repository without changing it: `snapshots`, `ls`, `diff`, `find`, `dump`.

use super::{filter, print_json};
use crate::cli::{DiffArgs, DumpArgs, FindArgs, Global, LsArgs, SnapshotsArgs};
use crate::context;
use crate::exit::{self, fail};
use crate::ui;
use anyhow::{Context as _, Result};
use globset::Glob;
use lifeboat_format::{Content, Id, Node, NodeKind, Snapshot, escape_bytes};
use lifeboat_repo::walk::{Change, Walk, diff_trees, lookup, walk_tree};
use lifeboat_repo::{RepoError, Repository};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

fn snapshot_json(id: &Id, s: &Snapshot) -> Value {
    json!({
        "id": id.to_hex(),
        "short_id": id.short(),
        "time": s.time.to_string(),
        "time_end": s.time_end.to_string(),
        "hostname": s.hostname,
        "username": s.username,
        "paths": s.paths,
        "tags": s.tags,
        "tree": s.tree.to_hex(),
        "parent": s.parent.map(|p| p.to_hex()),
        "streams": s.streams.iter().map(|st| json!({"name": st.name, "command": st.command, "size": st.size})).collect::<Vec<_>>(),
        "complete": s.is_complete(),
        "skipped": s.skipped.iter().map(|k| json!({"path": k.path, "error": k.error})).collect::<Vec<_>>(),
        "summary": {
            "files": s.summary.files, "dirs": s.summary.dirs, "other": s.summary.other,
            "bytes_total": s.summary.bytes_total, "bytes_added": s.summary.bytes_added,
            "bytes_stored": s.summary.bytes_stored, "files_unchanged": s.summary.files_unchanged,
        },
        "program_version": s.program_version,
        "run_id": s.run_id,
        "copied_from": s.copied_from.map(|c| json!({"repository": c.repository.to_hex(), "snapshot": c.snapshot.to_hex()})),
    })
}

pub fn snapshots(g: &Global, a: SnapshotsArgs) -> Result<u8> {
    let repo = context::open(g)?;
    let f = filter(&a.filter);
    let (all, bad) = repo.snapshots()?;
    for (file, e) in &bad {
        eprintln!("warning: {file} could not be read: {e}");
    }
    let list: Vec<_> = all.into_iter().filter(|(_, s)| f.matches(s)).collect();
    if g.json {
        print_json(&Value::Array(
            list.iter().map(|(id, s)| snapshot_json(id, s)).collect(),
        ));
        return Ok(exit::OK);
    }
    println!(
        "{:<9} {:<19} {:<16} {:<20} {:>10}  Paths",
        "ID", "Time", "Host", "Tags", "Size"
    );
    println!("{}", "-".repeat(96));
    for (id, s) in &list {
        let mut what: Vec<String> = s.paths.clone();
        what.extend(s.streams.iter().map(|st| format!("<{}>", st.name)));
        println!(
            "{:<9} {:<19} {:<16} {:<20} {:>10}  {}{}",
            id.short(),
            ui::local_time(&s.time),
            s.hostname,
            s.tags.join(","),
            ui::size(s.summary.bytes_total),
            what.join(" "),
            if s.is_complete() {
                String::new()
            } else {
                format!("  [INCOMPLETE: {} skipped]", s.skipped.len())
            }
        );
    }
    println!("{} snapshots", list.len());
    Ok(exit::OK)
}

fn mode_string(n: &Node) -> String {
    let t = match n.kind() {
        NodeKind::Dir => 'd',
        NodeKind::Symlink => 'l',
        NodeKind::Fifo => 'p',
        NodeKind::CharDevice => 'c',
        NodeKind::BlockDevice => 'b',
        NodeKind::File => '-',
    };
    let m = n.mode;
    let mut s = String::from(t);
    for (shift, special, sc) in [(6, 0o4000, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')] {
        let bits = (m >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        let x = bits & 1 != 0;
        s.push(match (m & special != 0, x) {
            (true, true) => sc,
            (true, false) => sc.to_ascii_uppercase(),
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

fn ts(t: &lifeboat_format::Timestamp) -> String {
    jiff::Timestamp::new(t.secs, t.nanos as i32)
        .map(|x| x.to_string())
        .unwrap_or_default()
}

fn node_json(path: &Path, n: &Node) -> Value {
    json!({
        "path": escape_bytes(path.as_os_str().as_encoded_bytes()),
        "name": escape_bytes(&n.name),
        "type": n.kind().as_str(),
        "mode": n.mode,
        "permissions": mode_string(n),
        "uid": n.uid, "gid": n.gid,
        "user": escape_bytes(&n.user), "group": escape_bytes(&n.group),
        "size": n.size,
        "mtime": ts(&n.mtime), "atime": ts(&n.atime), "ctime": ts(&n.ctime),
        "inode": n.inode, "links": n.nlink,
        "link_target": (n.kind() == NodeKind::Symlink).then(|| escape_bytes(&n.target)),
        "xattrs": n.xattrs.iter().map(|(k, _)| escape_bytes(k)).collect::<Vec<_>>(),
    })
}

fn print_node(g: &Global, long: bool, path: &Path, n: &Node) {
    if g.json {
        print_json(&node_json(path, n));
        return;
    }
    let p = escape_bytes(path.as_os_str().as_encoded_bytes());
    if long {
        let owner = if n.user.is_empty() {
            n.uid.to_string()
        } else {
            escape_bytes(&n.user)
        };
        let group = if n.group.is_empty() {
            n.gid.to_string()
        } else {
            escape_bytes(&n.group)
        };
        let time = jiff::Timestamp::new(n.mtime.secs, n.mtime.nanos as i32)
            .map(|t| ui::local_time(&t))
            .unwrap_or_default();
        let target = if n.kind() == NodeKind::Symlink {
            format!(" -> {}", escape_bytes(&n.target))
        } else {
            String::new()
        };
        println!(
            "{} {:>8} {:>8} {:>12} {} {}{}",
            mode_string(n),
            owner,
            group,
            n.size,
            time,
            p,
            target
        );
    } else {
        println!("{p}");
    }
}

fn in_snapshot(p: &Path) -> PathBuf {
    Path::new("/").join(p)
}

pub fn ls(g: &Global, a: LsArgs) -> Result<u8> {
    let repo = context::open(g)?;
    let (id, snap) = repo.find_snapshot(&a.snapshot, &filter(&a.filter))?;
    let base = a
        .path
        .as_deref()
        .map(in_snapshot)
        .unwrap_or_else(|| PathBuf::from("/"));
    let node = lookup(&repo, snap.tree, &base)?;
    if !g.json && !g.quiet {
        eprintln!(
            "snapshot {} of {} at {}:",
            id.short(),
            snap.paths.join(" "),
            ui::local_time(&snap.time)
        );
    }
    let recursive = a.path.is_none() || a.recursive;
    if base != Path::new("/") {
        print_node(g, a.long, &base, &node);
    }
    if let (true, Some(sub)) = (node.is_dir(), node.subtree) {
        walk_tree(
            &repo,
            sub,
            &base,
            &mut |p, n| {
                print_node(g, a.long, p, n);
                Ok(if recursive {
                    Walk::Continue
                } else {
                    Walk::SkipChildren
                })
            },
            &mut |p, e| {
                eprintln!("error: cannot list {}: {e}", p.display());
                Ok(())
            },
        )?;
    }
    Ok(exit::OK)
}

pub fn diff(g: &Global, a: DiffArgs) -> Result<u8> {
    let repo = context::open(g)?;
    let f = lifeboat_repo::SnapshotFilter::default();
    let (ida, sa) = repo.find_snapshot(&a.first, &f)?;
    let (idb, sb) = repo.find_snapshot(&a.second, &f)?;
    let mut changes = Vec::new();
    diff_trees(&repo, sa.tree, sb.tree, Path::new("/"), &mut changes)?;
    let count = |pred: fn(&Change) -> bool| changes.iter().filter(|c| pred(c)).count();
    let (added, removed) = (
        count(|c| matches!(c, Change::Added(_))),
        count(|c| matches!(c, Change::Removed(_))),
    );
    let (modified, meta) = (
        count(|c| matches!(c, Change::Modified(_))),
        count(|c| matches!(c, Change::Metadata(_))),
    );
    if g.json {
        print_json(&json!({
            "first": ida.to_hex(), "second": idb.to_hex(),
            "changes": changes.iter().map(|c| json!({"change": c.symbol(), "path": escape_bytes(c.path().as_os_str().as_encoded_bytes())})).collect::<Vec<_>>(),
            "added": added, "removed": removed, "modified": modified, "metadata_changed": meta,
        }));
    } else {
        for c in &changes {
            println!(
                "{}    {}",
                c.symbol(),
                escape_bytes(c.path().as_os_str().as_encoded_bytes())
            );
        }
        if !g.quiet {
            println!(
                "\n{} -> {}: {added} added, {removed} removed, {modified} modified, {meta} metadata only",
                ida.short(),
                idb.short()
            );
        }
    }
    Ok(exit::OK)
}

pub fn find(g: &Global, a: FindArgs) -> Result<u8> {
    let repo = context::open(g)?;
    let by_path = a.pattern.contains('/');
    let glob = Glob::new(&a.pattern)
        .map_err(|e| fail(exit::ERROR, format!("bad pattern {:?}: {e}", a.pattern)))?
        .compile_matcher();
    let snaps: Vec<(Id, Snapshot)> = if a.snapshots.is_empty() {
        let f = filter(&a.filter);
        repo.snapshots()?
            .0
            .into_iter()
            .filter(|(_, s)| f.matches(s))
            .collect()
    } else {
        a.snapshots
            .iter()
            .map(|s| repo.find_snapshot(s, &filter(&a.filter)))
            .collect::<Result<_, RepoError>>()?
    };
    let mut found = Vec::new();
    for (id, s) in &snaps {
        walk_tree(
            &repo,
            s.tree,
            Path::new("/"),
            &mut |p, n| {
                let hit = if by_path {
                    glob.is_match(p)
                } else {
                    glob.is_match(std::ffi::OsStr::from_bytes(&n.name))
                };
                if hit {
                    found.push((*id, s.time, p.to_path_buf(), n.clone()));
                }
                Ok(Walk::Continue)
            },
            &mut |p, e| {
                eprintln!(
                    "error: snapshot {}: cannot read {}: {e}",
                    id.short(),
                    p.display()
                );
                Ok(())
            },
        )?;
    }
    if g.json {
        print_json(&Value::Array(
            found
                .iter()
                .map(|(id, _, p, n)| {
                    let mut v = node_json(p, n);
                    v["snapshot"] = json!(id.to_hex());
                    v
                })
                .collect(),
        ));
    } else {
        for (id, t, p, n) in &found {
            println!(
                "{} {} {:>12} {}",
                id.short(),
                ui::local_time(t),
                n.size,
                escape_bytes(p.as_os_str().as_encoded_bytes())
            );
        }
        if !g.quiet {
            println!("{} matches in {} snapshots", found.len(), snaps.len());
        }
    }
    Ok(exit::OK)
}

use std::os::unix::ffi::OsStrExt;

/// A file's content as a reader: blobs fetched one at a time, holes as zeros.
pub struct ContentReader<'a> {
    repo: &'a Repository,
    content: std::slice::Iter<'a, Content>,
    buf: Vec<u8>,
    pos: usize,
    hole: u64,
}

impl<'a> ContentReader<'a> {
    pub fn new(repo: &'a Repository, n: &'a Node) -> Self {
        ContentReader {
            repo,
            content: n.content.iter(),
            buf: Vec::new(),
            pos: 0,
            hole: 0,
        }
    }
}

impl Read for ContentReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.hole > 0 {
                let n = (out.len() as u64).min(self.hole) as usize;
                out[..n].fill(0);
                self.hole -= n as u64;
                return Ok(n);
            }
            if self.pos < self.buf.len() {
                let n = out.len().min(self.buf.len() - self.pos);
                out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            match self.content.next() {
                None => return Ok(0),
                Some(Content::Hole(h)) => self.hole = *h,
                Some(Content::Chunk(id)) => {
                    self.buf = self.repo.read_blob(id).map_err(std::io::Error::other)?;
                    self.pos = 0;
                }
            }
        }
    }
}

pub fn dump(g: &Global, a: DumpArgs) -> Result<u8> {
    let repo = context::open(g)?;
    let (_, snap) = repo.find_snapshot(&a.snapshot, &filter(&a.filter))?;
    let path = in_snapshot(&a.path);
    let node = lookup(&repo, snap.tree, &path)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    match node.kind() {
        NodeKind::File => {
            std::io::copy(&mut ContentReader::new(&repo, &node), &mut out)
                .context("writing to stdout")?;
        }
        NodeKind::Dir => dump_tar(&repo, &node, &path, &mut out)?,
        k => {
            return Err(fail(
                exit::ERROR,
                format!(
                    "{} is a {}; dump writes files, streams and directories",
                    path.display(),
                    k.as_str()
                ),
            ));
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(exit::OK)
}

/// Writes a directory as a POSIX (pax) tar stream with owners, modes, times, symlinks, hard
/// links, device nodes and xattrs (as `SCHILY.xattr.*` records, which GNU tar reads with
/// `--xattrs`).
fn dump_tar(repo: &Repository, dir: &Node, base: &Path, out: &mut dyn Write) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let Some(sub) = dir.subtree else {
        return Ok(());
    };
    let mut err = None;
    walk_tree(
        repo,
        sub,
        Path::new(""),
        &mut |rel, n| {
            if let Err(e) = tar_entry(repo, &mut tar, &mut links, rel, n) {
                err = Some(e);
                return Err(RepoError::Invalid(format!(
                    "writing {} to the tar stream failed",
                    rel.display()
                )));
            }
            Ok(Walk::Continue)
        },
        &mut |p, e| {
            Err(RepoError::Invalid(format!(
                "{}: {e}",
                base.join(p).display()
            )))
        },
    )
    .map_err(|e| err.take().unwrap_or_else(|| e.into()))?;
    tar.finish().context("finishing the tar stream")?;
    Ok(())
}

fn tar_entry(
    repo: &Repository,
    tar: &mut tar::Builder<&mut dyn Write>,
    links: &mut HashMap<(u64, u64), PathBuf>,
    rel: &Path,
    n: &Node,
) -> Result<()> {
    let xattrs: Vec<(String, &[u8])> = n
        .xattrs
        .iter()
        .map(|(k, v)| {
            (
                format!("SCHILY.xattr.{}", String::from_utf8_lossy(k)),
                v.as_slice(),
            )
        })
        .collect();
    if !xattrs.is_empty() {
        tar.append_pax_extensions(xattrs.iter().map(|(k, v)| (k.as_str(), *v)))?;
    }
    let mut h = tar::Header::new_gnu();
    h.set_mode(n.mode);
    h.set_uid(n.uid as u64);
    h.set_gid(n.gid as u64);
    let _ = h.set_username(&String::from_utf8_lossy(&n.user));
    let _ = h.set_groupname(&String::from_utf8_lossy(&n.group));
    h.set_mtime(n.mtime.secs.max(0) as u64);
    let mut size = 0;
    match n.kind() {
        NodeKind::Dir => h.set_entry_type(tar::EntryType::Directory),
        NodeKind::Symlink => h.set_entry_type(tar::EntryType::Symlink),
        NodeKind::Fifo => h.set_entry_type(tar::EntryType::Fifo),
        NodeKind::CharDevice | NodeKind::BlockDevice => {
            h.set_entry_type(if n.kind() == NodeKind::CharDevice {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            });
            h.set_device_major(rustix::fs::major(n.rdev))?;
            h.set_device_minor(rustix::fs::minor(n.rdev))?;
        }
        NodeKind::File => {
            if n.nlink > 1 {
                if let Some(first) = links.get(&(n.dev, n.inode)) {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    tar.append_link(&mut h, rel, first)?;
                    return Ok(());
                }
                links.insert((n.dev, n.inode), rel.to_path_buf());
            }
            h.set_entry_type(tar::EntryType::Regular);
            size = n.size;
        }
    }
    h.set_size(size);
    match n.kind() {
        NodeKind::Symlink => {
            tar.append_link(&mut h, rel, std::ffi::OsStr::from_bytes(&n.target))?
        }
        NodeKind::File => tar.append_data(&mut h, rel, ContentReader::new(repo, n))?,
        _ => tar.append_data(&mut h, rel, std::io::empty())?,
    }
    Ok(())
}
