//! Navigating a snapshot's trees: look a path up, walk everything below a node, compare two
//! trees. `ls`, `find`, `diff`, `dump` and `restore` are built on these.

use crate::error::{RepoError, Result};
use crate::repository::Repository;
use lifeboat_format::{Id, Node, NodeKind, Tree};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// A directory node standing for a snapshot's root.
pub fn root_node(tree: Id) -> Node {
    Node {
        name: b"/".to_vec(),
        kind: Some(NodeKind::Dir),
        mode: 0o755,
        subtree: Some(tree),
        ..Node::default()
    }
}

/// The node at `path` (absolute, inside the snapshot), or `NoSuchPath`.
pub fn lookup(repo: &Repository, root: Id, path: &Path) -> Result<Node> {
    let mut node = root_node(root);
    for c in path.components() {
        let Component::Normal(name) = c else { continue };
        let sub = node
            .subtree
            .filter(|_| node.is_dir())
            .ok_or_else(|| RepoError::NoSuchPath(path.display().to_string()))?;
        let tree = repo.load_tree(&sub)?;
        node = tree
            .find(name.as_bytes())
            .cloned()
            .ok_or_else(|| RepoError::NoSuchPath(path.display().to_string()))?;
    }
    Ok(node)
}

/// What a walk callback wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    Continue,
    /// Do not descend into this directory.
    SkipChildren,
}

/// Calls `f` for every node below the directory `tree` (pre-order, sorted by name), with its
/// full path. Trees that cannot be loaded are passed to `on_error` and skipped.
pub fn walk_tree(
    repo: &Repository,
    tree: Id,
    prefix: &Path,
    f: &mut dyn FnMut(&Path, &Node) -> Result<Walk>,
    on_error: &mut dyn FnMut(&Path, RepoError) -> Result<()>,
) -> Result<()> {
    let t: Tree = match repo.load_tree(&tree) {
        Ok(t) => t,
        Err(e) => return on_error(prefix, e),
    };
    for n in &t.nodes {
        let path = prefix.join(OsStr::from_bytes(&n.name));
        if f(&path, n)? == Walk::Continue
            && let (true, Some(sub)) = (n.is_dir(), n.subtree)
        {
            walk_tree(repo, sub, &path, f, on_error)?;
        }
    }
    Ok(())
}

/// One difference between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added(PathBuf),
    Removed(PathBuf),
    /// Content differs.
    Modified(PathBuf),
    /// Same content, other metadata (mode, owner, times, xattrs, type).
    Metadata(PathBuf),
}

impl Change {
    pub fn path(&self) -> &Path {
        match self {
            Change::Added(p) | Change::Removed(p) | Change::Modified(p) | Change::Metadata(p) => p,
        }
    }
    pub fn symbol(&self) -> &'static str {
        match self {
            Change::Added(_) => "+",
            Change::Removed(_) => "-",
            Change::Modified(_) => "M",
            Change::Metadata(_) => "U",
        }
    }
}

/// The changes from tree `a` to tree `b`. Subtrees with the same id are skipped unread.
pub fn diff_trees(
    repo: &Repository,
    a: Id,
    b: Id,
    prefix: &Path,
    out: &mut Vec<Change>,
) -> Result<()> {
    if a == b {
        return Ok(());
    }
    let ta = repo.load_tree(&a)?;
    let tb = repo.load_tree(&b)?;
    let (mut i, mut j) = (0, 0);
    let all_below =
        |repo: &Repository, n: &Node, p: &Path, add: bool, out: &mut Vec<Change>| -> Result<()> {
            out.push(if add {
                Change::Added(p.to_path_buf())
            } else {
                Change::Removed(p.to_path_buf())
            });
            if let (true, Some(sub)) = (n.is_dir(), n.subtree) {
                walk_tree(
                    repo,
                    sub,
                    p,
                    &mut |q, _| {
                        out.push(if add {
                            Change::Added(q.to_path_buf())
                        } else {
                            Change::Removed(q.to_path_buf())
                        });
                        Ok(Walk::Continue)
                    },
                    &mut |_, e| Err(e),
                )?;
            }
            Ok(())
        };
    while i < ta.nodes.len() || j < tb.nodes.len() {
        let na = ta.nodes.get(i);
        let nb = tb.nodes.get(j);
        match (na, nb) {
            (Some(x), Some(y)) if x.name == y.name => {
                let p = prefix.join(OsStr::from_bytes(&x.name));
                if x.kind != y.kind {
                    all_below(repo, x, &p, false, out)?;
                    all_below(repo, y, &p, true, out)?;
                } else {
                    if x.content != y.content || x.target != y.target || x.rdev != y.rdev {
                        out.push(Change::Modified(p.clone()));
                    } else if x.mode != y.mode
                        || x.uid != y.uid
                        || x.gid != y.gid
                        || x.mtime != y.mtime
                        || x.xattrs != y.xattrs
                    {
                        out.push(Change::Metadata(p.clone()));
                    }
                    if let (Some(sa), Some(sb)) = (x.subtree, y.subtree) {
                        diff_trees(repo, sa, sb, &p, out)?;
                    }
                }
                i += 1;
                j += 1;
            }
            (Some(x), y) if y.is_none_or(|y| x.name < y.name) => {
                all_below(
                    repo,
                    x,
                    &prefix.join(OsStr::from_bytes(&x.name)),
                    false,
                    out,
                )?;
                i += 1;
            }
            (_, Some(y)) => {
                all_below(repo, y, &prefix.join(OsStr::from_bytes(&y.name)), true, out)?;
                j += 1;
            }
            _ => break,
        }
    }
    Ok(())
}
