//! Writing a tree back to local files.

use super::{cached, name_of, node_from_metadata, xattr_names};
use lifeboat_format::{Node, NodeKind, Timestamp};
use lifeboat_repo::source::{FileWriter, RestoreTarget, SourceError};
use nix::unistd::{Group, User};
use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, Permissions};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, RwLock};

/// How [`FsTarget`] restores ownership.
#[derive(Debug, Clone)]
pub struct FsTargetOptions {
    /// Restore the numeric uid and gid even where the recorded user or group name exists here
    /// with another id.
    pub numeric_owner: bool,
    /// Restore owners at all. Defaults to true when running as root. When false, or when chown
    /// is refused to a non-root user, files keep the restoring user as owner, silently.
    pub restore_owner: bool,
}

impl Default for FsTargetOptions {
    fn default() -> Self {
        FsTargetOptions {
            numeric_owner: false,
            restore_owner: rustix::process::geteuid().is_root(),
        }
    }
}

/// A local directory tree to restore into. The last component of a path is never followed
/// as a symlink (the parents are the caller's to check).
pub struct FsTarget {
    options: FsTargetOptions,
    is_root: bool,
    uids: Mutex<HashMap<Vec<u8>, Option<u32>>>,
    gids: Mutex<HashMap<Vec<u8>, Option<u32>>>,
}

impl FsTarget {
    pub fn new(options: FsTargetOptions) -> Self {
        FsTarget {
            options,
            is_root: rustix::process::geteuid().is_root(),
            uids: Mutex::default(),
            gids: Mutex::default(),
        }
    }

    /// The uid and gid `node` should get here: those of its user and group names where these
    /// exist on this system (ids differ between machines, names are what people mean).
    fn owner(&self, node: &Node) -> (u32, u32) {
        if self.options.numeric_owner {
            return (node.uid, node.gid);
        }
        let by_name = |map, name: &[u8], look: fn(&str) -> Option<u32>| {
            if name.is_empty() {
                return None;
            }
            cached(map, name.to_vec(), |n| {
                std::str::from_utf8(n).ok().and_then(look)
            })
        };
        let uid = by_name(&self.uids, &node.user, |n| {
            Some(User::from_name(n).ok()??.uid.as_raw())
        });
        let gid = by_name(&self.gids, &node.group, |n| {
            Some(Group::from_name(n).ok()??.gid.as_raw())
        });
        (uid.unwrap_or(node.uid), gid.unwrap_or(node.gid))
    }

    /// Changes the owner; `false` when it was skipped because a non-root user may not.
    fn chown(&self, path: &Path, uid: u32, gid: u32) -> Result<bool, SourceError> {
        match std::os::unix::fs::lchown(path, Some(uid), Some(gid)) {
            Ok(()) => Ok(true),
            Err(e) if !self.is_root && e.raw_os_error() == Some(Errno::PERM.raw_os_error()) => {
                Ok(false)
            }
            Err(e) => Err(SourceError::new(path, "chown", e)),
        }
    }
}

/// Keeps the first error while later steps still run, so one refused step does not cost the
/// others.
fn keep_first(first: &mut Option<SourceError>, r: Result<(), SourceError>) {
    if let Err(e) = r {
        first.get_or_insert(e);
    }
}

/// Makes the xattrs of `path` exactly `wanted`.
fn set_xattrs(
    path: &Path,
    wanted: &[(Vec<u8>, Vec<u8>)],
    symlink: bool,
) -> Result<(), SourceError> {
    let err = |e| SourceError::new(path, "set xattrs of", e);
    // Linux refuses user.* xattrs on symlinks, so they cannot have been restored anyway.
    let tolerated = |e: &io::Error| symlink && e.raw_os_error() == Some(Errno::PERM.raw_os_error());
    let mut first = None;
    for name in xattr_names(path).map_err(err)? {
        let n = name.as_bytes();
        // The label SELinux gave the new file is policy, not data: removing it would lock
        // the file away. One recorded in the node is set below like any other.
        if n == b"security.selinux" || wanted.iter().any(|(w, _)| w == n) {
            continue;
        }
        match xattr::remove(path, &name) {
            Err(e) if e.raw_os_error() != Some(Errno::NODATA.raw_os_error()) && !tolerated(&e) => {
                keep_first(&mut first, Err(err(e)))
            }
            _ => {}
        }
    }
    for (name, value) in wanted {
        match xattr::set(path, OsStr::from_bytes(name), value) {
            Err(e) if !tolerated(&e) => keep_first(&mut first, Err(err(e))),
            _ => {}
        }
    }
    first.map_or(Ok(()), Err)
}

fn timespec(t: Timestamp) -> Timespec {
    Timespec {
        tv_sec: t.secs,
        tv_nsec: t.nanos.into(),
    }
}

impl RestoreTarget for FsTarget {
    /// What is at `path`, without user and group names or xattrs. A socket (or anything else
    /// Lifeboat does not store) comes back with `kind: None`, to be replaced.
    fn existing(&self, path: &Path) -> Result<Option<Node>, SourceError> {
        match fs::symlink_metadata(path) {
            Ok(md) => node_from_metadata(path, name_of(path), &md, None, false).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SourceError::new(path, "stat", e)),
        }
    }

    fn remove(&self, path: &Path) -> Result<(), SourceError> {
        let md = fs::symlink_metadata(path).map_err(|e| SourceError::new(path, "remove", e))?;
        let r = if md.is_dir() {
            fs::remove_dir_all(path)
        } else {
            fs::remove_file(path)
        };
        r.map_err(|e| SourceError::new(path, "remove", e))
    }

    fn create_dir(&self, path: &Path) -> Result<(), SourceError> {
        fs::create_dir_all(path).map_err(|e| SourceError::new(path, "create directory", e))
    }

    /// The file gets its full length at once, so what is never written stays a hole. With
    /// `sparse` unset the restorer writes the zeros of holes itself.
    fn create_file(
        &self,
        path: &Path,
        node: &Node,
        _sparse: bool,
    ) -> Result<Box<dyn FileWriter>, SourceError> {
        // 0600 until set_metadata: nobody else reads the file while it is incomplete.
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::from_raw_mode(0o600))
            .map_err(|e| SourceError::new(path, "create", e.into()))?;
        let file = File::from(fd);
        file.set_len(node.size)
            .map_err(|e| SourceError::new(path, "set length of", e))?;
        Ok(Box::new(FsWriter {
            file: RwLock::new(Some(file)),
            path: path.to_path_buf(),
        }))
    }

    /// Without O_CREAT or O_TRUNC: the file must be the one `create_file` made (O_NOFOLLOW
    /// still refuses a symlink put in its place meanwhile).
    fn reopen_file(&self, path: &Path, _node: &Node) -> Result<Box<dyn FileWriter>, SourceError> {
        let flags = OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::empty())
            .map_err(|e| SourceError::new(path, "open again", e.into()))?;
        Ok(Box::new(FsWriter {
            file: RwLock::new(Some(File::from(fd))),
            path: path.to_path_buf(),
        }))
    }

    fn create_special(&self, path: &Path, node: &Node) -> Result<(), SourceError> {
        let err = |e: io::Error| SourceError::new(path, "create", e);
        let (file_type, dev) = match node.kind() {
            NodeKind::Symlink => {
                return std::os::unix::fs::symlink(OsStr::from_bytes(&node.target), path)
                    .map_err(err);
            }
            NodeKind::Fifo => (FileType::Fifo, 0),
            NodeKind::CharDevice => (FileType::CharacterDevice, node.rdev),
            NodeKind::BlockDevice => (FileType::BlockDevice, node.rdev),
            k @ (NodeKind::File | NodeKind::Dir) => {
                let msg = format!("a {} is not a special file", k.as_str());
                return Err(err(io::Error::new(io::ErrorKind::InvalidInput, msg)));
            }
        };
        rustix::fs::mknodat(CWD, path, file_type, Mode::from_raw_mode(0o600), dev)
            .map_err(|e| err(e.into()))
    }

    fn hard_link(&self, existing: &Path, path: &Path) -> Result<(), SourceError> {
        // linkat without AT_SYMLINK_FOLLOW: a hard-linked symlink stays a symlink.
        fs::hard_link(existing, path).map_err(|e| SourceError::new(path, "link", e))
    }

    /// Owner, then xattrs (chown drops `security.capability`), then mode (chown drops setuid
    /// bits; setting an ACL rewrites the group bits), then times (every step before bumps
    /// ctime only, but keep them last anyway). Every step is tried; the first error is
    /// returned.
    fn set_metadata(&self, path: &Path, node: &Node) -> Result<(), SourceError> {
        let symlink = node.kind() == NodeKind::Symlink;
        let mut first = None;
        let (uid, gid) = self.owner(node);
        if self.options.restore_owner {
            keep_first(&mut first, self.chown(path, uid, gid).map(drop));
        }
        keep_first(&mut first, set_xattrs(path, &node.xattrs, symlink));
        if !symlink {
            let mut mode = node.mode;
            // A setuid or setgid file left with the wrong owner would grant someone else's
            // rights (a setuid-1234 program turned setuid-root): drop those bits then.
            if mode & 0o6000 != 0 && !node.is_dir() {
                match fs::symlink_metadata(path) {
                    Ok(md) => {
                        if md.uid() != uid {
                            mode &= !0o4000;
                        }
                        if md.gid() != gid {
                            mode &= !0o2000;
                        }
                    }
                    Err(_) => mode &= !0o6000,
                }
            }
            let r = fs::set_permissions(path, Permissions::from_mode(mode));
            keep_first(
                &mut first,
                r.map_err(|e| SourceError::new(path, "chmod", e)),
            );
        }
        let times = Timestamps {
            last_access: timespec(node.atime),
            last_modification: timespec(node.mtime),
        };
        let r = rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW);
        keep_first(
            &mut first,
            r.map_err(|e| SourceError::new(path, "set times of", e.into())),
        );
        first.map_or(Ok(()), Err)
    }

    /// Like the default, but a symlink put in the file's place is not followed.
    fn read_back(&self, path: &Path) -> Result<Box<dyn io::Read + Send>, SourceError> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::empty())
            .map_err(|e| SourceError::new(path, "open for verification", e.into()))?;
        Ok(Box::new(io::BufReader::with_capacity(
            1 << 20,
            File::from(fd),
        )))
    }

    fn list_dir(&self, path: &Path) -> Result<Vec<Vec<u8>>, SourceError> {
        let err = |e| SourceError::new(path, "list", e);
        let mut names = Vec::new();
        for entry in fs::read_dir(path).map_err(err)? {
            names.push(entry.map_err(err)?.file_name().into_vec());
        }
        names.sort_unstable();
        Ok(names)
    }
}

struct FsWriter {
    /// `None` after `finish`: closing early frees the descriptor while the restore goes on.
    file: RwLock<Option<File>>,
    path: PathBuf,
}

impl FileWriter for FsWriter {
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), SourceError> {
        // A read lock: pwrite needs no ordering, so writers of one file run in parallel.
        let file = self.file.read().unwrap_or_else(PoisonError::into_inner);
        let Some(file) = file.as_ref() else {
            return Err(SourceError::new(
                &self.path,
                "write",
                io::Error::other("file already finished"),
            ));
        };
        file.write_all_at(data, offset)
            .map_err(|e| SourceError::new(&self.path, "write", e))
    }

    /// Closes without fsync: a restore is verified by reading it back, not by durability of
    /// each file, and fsync per file would make restoring many small files crawl.
    fn finish(&self) -> Result<(), SourceError> {
        self.file
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(numeric_owner: bool, restore_owner: bool) -> FsTarget {
        FsTarget::new(FsTargetOptions {
            numeric_owner,
            restore_owner,
        })
    }

    fn file_node(mode: u32, uid: u32, user: &[u8]) -> Node {
        Node {
            kind: Some(NodeKind::File),
            mode,
            uid,
            gid: uid,
            user: user.to_vec(),
            ..Node::default()
        }
    }

    #[test]
    fn names_win_over_ids_unless_numeric() {
        let node = file_node(0o644, 4242, b"root");
        assert_eq!(target(false, true).owner(&node), (0, 4242));
        assert_eq!(target(true, true).owner(&node), (4242, 4242));
        let unknown = file_node(0o644, 4242, b"no-such-user-here");
        assert_eq!(target(false, true).owner(&unknown), (4242, 4242));
        let not_utf8 = file_node(0o644, 4242, b"\xff");
        assert_eq!(target(false, true).owner(&not_utf8), (4242, 4242));
    }

    #[test]
    fn setuid_is_dropped_when_the_owner_is_not_restored() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let t = target(false, false);
        t.create_file(&p, &Node::default(), true)
            .unwrap()
            .finish()
            .unwrap();
        t.set_metadata(&p, &file_node(0o6755, 1234, b"")).unwrap();
        let md = fs::metadata(&p).unwrap();
        assert_eq!(
            (md.mode() & 0o7777, md.uid()),
            (0o755, rustix::process::geteuid().as_raw())
        );
        // Kept when the owner matches.
        let me = rustix::process::geteuid().as_raw();
        t.set_metadata(
            &p,
            &Node {
                gid: rustix::process::getegid().as_raw(),
                ..file_node(0o6755, me, b"")
            },
        )
        .unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o6755);
    }

    #[test]
    fn writes_land_at_offsets_and_finish_closes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let node = Node {
            size: 10,
            ..file_node(0o600, 0, b"")
        };
        let w = target(true, false).create_file(&p, &node, true).unwrap();
        w.write_at(6, b"6789").unwrap();
        w.write_at(0, b"01").unwrap();
        w.finish().unwrap();
        assert!(w.write_at(0, b"x").is_err());
        assert_eq!(
            fs::read(&p).unwrap(),
            [&b"01"[..], &[0; 4], b"6789"].concat()
        );
    }

    #[test]
    fn existing_remove_and_list() {
        let dir = tempfile::tempdir().unwrap();
        let t = target(true, false);
        let d = dir.path().join("d");
        assert!(t.existing(&d).unwrap().is_none());
        t.create_dir(&d.join("e/f")).unwrap();
        fs::write(d.join(OsStr::from_bytes(b"caf\xe9")), b"").unwrap();
        assert_eq!(
            t.list_dir(&d).unwrap(),
            vec![b"caf\xe9".to_vec(), b"e".to_vec()]
        );
        let node = t.existing(&d).unwrap().unwrap();
        assert_eq!(
            (node.kind, node.name.as_slice()),
            (Some(NodeKind::Dir), &b"d"[..])
        );
        let sock = dir.path().join("sock");
        drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
        assert_eq!(t.existing(&sock).unwrap().unwrap().kind, None);
        t.remove(&d).unwrap();
        t.remove(&sock).unwrap();
        assert!(t.list_dir(dir.path()).unwrap().is_empty());
        assert!(t.remove(&d).unwrap_err().is_not_found());
    }

    #[test]
    fn xattrs_are_made_exact() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, b"").unwrap();
        xattr::set(&p, "user.stale", b"old").unwrap();
        xattr::set(&p, "user.keep", b"old").unwrap();
        let node = Node {
            xattrs: vec![(b"user.keep".to_vec(), b"new".to_vec())],
            ..file_node(0o644, 0, b"")
        };
        target(true, false).set_metadata(&p, &node).unwrap();
        assert_eq!(super::super::read_xattrs(&p).unwrap(), node.xattrs);
    }

    #[test]
    fn special_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let err = target(true, false)
            .create_special(&dir.path().join("x"), &file_node(0o644, 0, b""))
            .unwrap_err();
        assert_eq!(err.source.kind(), io::ErrorKind::InvalidInput);
    }
}
