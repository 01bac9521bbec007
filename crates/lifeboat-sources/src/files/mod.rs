//! Local files: [`FsSource`] reads a tree for a backup, [`FsTarget`] writes one back.
//!
//! Symlinks are never followed. POSIX ACLs travel as their `system.posix_acl_*` xattrs, byte
//! for byte, so no libacl is needed.

mod exclude;
mod source;
mod target;

pub use exclude::ExcludeError;
pub use source::{FsSource, FsSourceOptions};
pub use target::{FsTarget, FsTargetOptions};

use lifeboat_format::{Node, NodeKind, Timestamp};
use lifeboat_repo::source::SourceError;
use nix::unistd::{Gid, Group, Uid, User};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::hash::Hash;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

/// Looks `key` up in `map`, asking `look` on a miss. Lookups go through NSS (maybe LDAP) and a
/// tree has few distinct owners, so every answer is kept, "no such name" included.
fn cached<K: Hash + Eq, V: Clone>(
    map: &Mutex<HashMap<K, V>>,
    key: K,
    look: impl FnOnce(&K) -> V,
) -> V {
    // A panic elsewhere cannot leave a half-written entry: the map stays usable.
    let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(v) = map.get(&key) {
        return v.clone();
    }
    let v = look(&key);
    map.insert(key, v.clone());
    v
}

/// User and group names of ids, as recorded in nodes.
#[derive(Default)]
struct Names {
    users: Mutex<HashMap<u32, Vec<u8>>>,
    groups: Mutex<HashMap<u32, Vec<u8>>>,
}

impl Names {
    fn user(&self, uid: u32) -> Vec<u8> {
        cached(&self.users, uid, |&id| {
            match User::from_uid(Uid::from_raw(id)) {
                Ok(Some(u)) => u.name.into_bytes(),
                _ => Vec::new(),
            }
        })
    }

    fn group(&self, gid: u32) -> Vec<u8> {
        cached(&self.groups, gid, |&id| {
            match Group::from_gid(Gid::from_raw(id)) {
                Ok(Some(g)) => g.name.into_bytes(),
                _ => Vec::new(),
            }
        })
    }
}

fn kind_of(md: &Metadata) -> Option<NodeKind> {
    let t = md.file_type();
    Some(if t.is_file() {
        NodeKind::File
    } else if t.is_dir() {
        NodeKind::Dir
    } else if t.is_symlink() {
        NodeKind::Symlink
    } else if t.is_fifo() {
        NodeKind::Fifo
    } else if t.is_char_device() {
        NodeKind::CharDevice
    } else if t.is_block_device() {
        NodeKind::BlockDevice
    } else {
        return None;
    })
}

fn timestamp(secs: i64, nanos: i64) -> Timestamp {
    // The kernel never reports nanoseconds outside 0..1e9; the clamp keeps a broken FUSE file
    // system from producing a node that would not decode.
    Timestamp {
        secs,
        nanos: nanos.clamp(0, 999_999_999) as u32,
    }
}

/// The last component of `path` as bytes; empty for `/` and paths ending in `..`.
fn name_of(path: &Path) -> Vec<u8> {
    path.file_name()
        .map(|n| n.as_bytes().to_vec())
        .unwrap_or_default()
}

/// Builds the node of `path` from its lstat. `kind` is `None` for a socket, which callers
/// either skip (sources) or report as something to replace (targets). User and group names
/// are filled when `names` is given, xattrs when `with_xattrs` is set.
fn node_from_metadata(
    path: &Path,
    name: Vec<u8>,
    md: &Metadata,
    names: Option<&Names>,
    with_xattrs: bool,
) -> Result<Node, SourceError> {
    let kind = kind_of(md);
    let target = if kind == Some(NodeKind::Symlink) {
        let t = fs::read_link(path).map_err(|e| SourceError::new(path, "read link", e))?;
        t.into_os_string().into_vec()
    } else {
        Vec::new()
    };
    let size = match kind {
        Some(NodeKind::File) => md.size(),
        // st_size of a symlink is 0 on some file systems (procfs); the target is the truth.
        Some(NodeKind::Symlink) => target.len() as u64,
        _ => 0,
    };
    let rdev = match kind {
        Some(NodeKind::CharDevice | NodeKind::BlockDevice) => md.rdev(),
        _ => 0,
    };
    let xattrs = if with_xattrs && kind.is_some() {
        read_xattrs(path)?
    } else {
        Vec::new()
    };
    let (user, group) = match names {
        Some(n) => (n.user(md.uid()), n.group(md.gid())),
        None => (Vec::new(), Vec::new()),
    };
    Ok(Node {
        name,
        kind,
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        user,
        group,
        mtime: timestamp(md.mtime(), md.mtime_nsec()),
        atime: timestamp(md.atime(), md.atime_nsec()),
        ctime: timestamp(md.ctime(), md.ctime_nsec()),
        size,
        dev: md.dev(),
        inode: md.ino(),
        nlink: md.nlink(),
        rdev,
        target,
        xattrs,
        content: Vec::new(),
        subtree: None,
    })
}

/// True for "this file system has no xattrs", which means an empty set, not a failure.
fn unsupported(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::NOTSUP.raw_os_error())
}

/// Every xattr of `path` itself (a symlink's own, not its target's), sorted by name.
fn xattr_names(path: &Path) -> io::Result<Vec<OsString>> {
    match xattr::list(path) {
        Ok(names) => Ok(names.collect()),
        Err(e) if unsupported(&e) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Names and values, as in [`Node::xattrs`].
type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

fn read_xattrs(path: &Path) -> Result<Xattrs, SourceError> {
    let err = |e| SourceError::new(path, "read xattrs of", e);
    let mut out = Vec::new();
    for name in xattr_names(path).map_err(err)? {
        // `None`: removed since the listing, so not part of the file any more.
        if let Some(value) = xattr::get(path, &name).map_err(err)? {
            out.push((name.into_vec(), value));
        }
    }
    out.sort();
    Ok(out)
}
