//! Reading a local tree for a backup.

use super::exclude::{ExcludeError, Excludes};
use super::{Names, name_of, node_from_metadata};
use lifeboat_repo::source::{FileReader, FileSource, SourceEntry, SourceError};
use rustix::fs::{Mode, OFlags, SeekFrom};
use rustix::io::Errno;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::FileExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// What [`FsSource`] leaves out.
#[derive(Debug, Clone, Default)]
pub struct FsSourceOptions {
    /// Glob patterns of entries to leave out. Without `/` a pattern matches a name at any
    /// depth; with a leading `/` the absolute path; with `/` elsewhere a path suffix at any
    /// depth (`a/b` is `**/a/b`). A trailing `/` limits a pattern to directories. `*` and `?`
    /// never match `/`; `**` does. An excluded directory takes its whole subtree with it.
    pub excludes: Vec<String>,
    /// Files of more such patterns, one a line; blank lines and `#` comments are ignored.
    pub exclude_files: Vec<PathBuf>,
    /// A directory holding an entry of one of these names is left out entirely.
    pub exclude_if_present: Vec<String>,
    /// Do not descend into directories on another device than the top-level path they were
    /// reached from; such a mount point is kept, as an empty directory.
    pub one_file_system: bool,
}

/// Local files, read without following symlinks.
pub struct FsSource {
    excludes: Excludes,
    markers: Vec<OsString>,
    one_file_system: bool,
    /// The top-level paths stat'd so far and their devices, for `one_file_system`.
    roots: Mutex<Vec<(PathBuf, u64)>>,
    names: Names,
    /// Sockets met: never stored (they cannot be restored), but the operator is told.
    sockets: Mutex<Vec<PathBuf>>,
}

impl FsSource {
    /// The sockets met so far, which were left out.
    pub fn skipped_sockets(&self) -> Vec<PathBuf> {
        self.sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Compiles the patterns and reads the exclude files; fails on a bad pattern or an
    /// unreadable file rather than backing up what the operator meant to leave out.
    pub fn new(options: FsSourceOptions) -> Result<Self, ExcludeError> {
        Ok(FsSource {
            excludes: Excludes::new(&options.excludes, &options.exclude_files)?,
            markers: options
                .exclude_if_present
                .into_iter()
                .map(OsString::from)
                .collect(),
            one_file_system: options.one_file_system,
            roots: Mutex::new(Vec::new()),
            names: Names::default(),
            sockets: Mutex::new(Vec::new()),
        })
    }

    /// Whether `path` or one of its parents is excluded by a pattern; a path named on the
    /// command line inside an excluded directory is as excluded as if it had been walked to.
    fn excluded_with_parents(&self, path: &Path, is_dir: bool) -> io::Result<bool> {
        // Absolute, so that the parents of a relative path are looked at too.
        let abs = std::path::absolute(path)?;
        Ok(abs
            .ancestors()
            .enumerate()
            .any(|(i, p)| self.excludes.matches(p, is_dir || i > 0)))
    }

    fn has_marker(&self, dir: &Path) -> bool {
        self.markers
            .iter()
            .any(|m| fs::symlink_metadata(dir.join(m)).is_ok())
    }

    /// The entry of `path`, or `None` when it is a socket or a directory with a marker.
    fn entry(
        &self,
        path: PathBuf,
        name: Vec<u8>,
        md: &fs::Metadata,
    ) -> Result<Option<SourceEntry>, SourceError> {
        let node = node_from_metadata(&path, name, md, Some(&self.names), true)?;
        if node.kind.is_none() {
            self.sockets
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(path);
            return Ok(None);
        }
        if node.is_dir() && self.has_marker(&path) {
            return Ok(None);
        }
        Ok(Some(SourceEntry { path, node }))
    }

    /// True when `dir` is a mount point below a top-level path on another device.
    fn crosses_device(&self, dir: &SourceEntry) -> bool {
        let roots = self.roots.lock().unwrap_or_else(PoisonError::into_inner);
        roots
            .iter()
            .filter(|(root, _)| dir.path.starts_with(root))
            .max_by_key(|(root, _)| root.as_os_str().len())
            .is_some_and(|&(_, dev)| dev != dir.node.dev)
    }
}

impl FileSource for FsSource {
    fn stat(&self, path: &Path) -> Result<Option<SourceEntry>, SourceError> {
        let md = fs::symlink_metadata(path).map_err(|e| SourceError::new(path, "stat", e))?;
        if self
            .excluded_with_parents(path, md.is_dir())
            .map_err(|e| SourceError::new(path, "stat", e))?
        {
            return Ok(None);
        }
        let entry = self.entry(path.to_path_buf(), name_of(path), &md)?;
        if let (true, Some(e)) = (self.one_file_system, &entry) {
            let mut roots = self.roots.lock().unwrap_or_else(PoisonError::into_inner);
            roots.retain(|(root, _)| root != path);
            roots.push((path.to_path_buf(), e.node.dev));
        }
        Ok(entry)
    }

    fn read_dir(
        &self,
        dir: &SourceEntry,
    ) -> Result<Vec<Result<SourceEntry, SourceError>>, SourceError> {
        let path = &dir.path;
        if self.one_file_system && self.crosses_device(dir) {
            return Ok(Vec::new());
        }
        let list_err = |e| SourceError::new(path, "list", e);
        let mut children = Vec::new();
        for entry in fs::read_dir(path).map_err(list_err)? {
            let entry = entry.map_err(list_err)?;
            // d_type, so no extra syscall on the common file systems.
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            children.push((entry.file_name().into_vec(), is_dir));
        }
        if children
            .iter()
            .any(|(n, _)| self.markers.iter().any(|m| m.as_bytes() == n.as_slice()))
        {
            return Ok(Vec::new());
        }
        children.sort_unstable();
        // Only anchored patterns need the absolute path, and it may cost a getcwd.
        let abs_dir = if self.excludes.has_path_patterns() {
            std::path::absolute(path).map_err(list_err)?
        } else {
            PathBuf::new()
        };
        let mut out = Vec::with_capacity(children.len());
        for (name, is_dir) in children {
            let name_os = OsString::from_vec(name);
            if self.excludes.matches(&abs_dir.join(&name_os), is_dir) {
                continue;
            }
            let child = path.join(&name_os);
            let entry = match fs::symlink_metadata(&child) {
                Ok(md) => self.entry(child, name_os.into_vec(), &md),
                Err(e) => Err(SourceError::new(child, "stat", e)),
            };
            match entry {
                Ok(Some(e)) => out.push(Ok(e)),
                Ok(None) => {}
                Err(e) => out.push(Err(e)),
            }
        }
        Ok(out)
    }

    fn open(&self, entry: &SourceEntry) -> Result<Box<dyn FileReader>, SourceError> {
        let path = &entry.path;
        let err = |e: io::Error| SourceError::new(path, "open", e);
        // NONBLOCK: if the file was swapped for a FIFO since it was listed, opening it must
        // not hang the backup; reads from regular files ignore the flag.
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        // NOATIME keeps a backup from touching atimes, but only the owner (or root) may ask.
        let fd = match rustix::fs::open(path, flags | OFlags::NOATIME, Mode::empty()) {
            Err(Errno::PERM) => rustix::fs::open(path, flags, Mode::empty()),
            r => r,
        }
        .map_err(|e| err(e.into()))?;
        let file = File::from(fd);
        let md = file.metadata().map_err(err)?;
        if !md.is_file() {
            return Err(err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file any more",
            )));
        }
        Ok(Box::new(FsReader {
            file,
            path: path.clone(),
            size: md.len(),
            allocated: md.blocks() * 512,
        }))
    }
}

struct FsReader {
    file: File,
    path: PathBuf,
    /// Regions are listed up to the size at open time; data appended later is not backed up.
    size: u64,
    /// Bytes of storage the file uses (`st_blocks` * 512).
    allocated: u64,
}

impl FileReader for FsReader {
    fn data_regions(&mut self) -> Result<Vec<(u64, u64)>, SourceError> {
        let err = |e: Errno| SourceError::new(&self.path, "find holes in", e.into());
        // A file whose blocks cover its size has no holes: spare the two lseeks per file,
        // which add up over a tree of small files.
        if self.allocated >= self.size {
            return Ok(if self.size == 0 {
                vec![]
            } else {
                vec![(0, self.size)]
            });
        }
        let mut regions = Vec::new();
        let mut pos = 0;
        while pos < self.size {
            let start = match rustix::fs::seek(&self.file, SeekFrom::Data(pos)) {
                Ok(s) => s,
                // No data after `pos`: the rest is a hole.
                Err(Errno::NXIO) => break,
                // The file system cannot tell holes: read it all.
                Err(Errno::INVAL | Errno::NOTSUP) => return Ok(vec![(0, self.size)]),
                Err(e) => return Err(err(e)),
            };
            if start >= self.size {
                break;
            }
            let end = match rustix::fs::seek(&self.file, SeekFrom::Hole(start)) {
                Ok(h) => h.min(self.size),
                // Truncated meanwhile; the reads will come up short and the archiver notices.
                Err(Errno::NXIO) => self.size,
                Err(e) => return Err(err(e)),
            };
            if end <= start {
                break;
            }
            regions.push((start, end - start));
            pos = end;
        }
        Ok(regions)
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, SourceError> {
        loop {
            match self.file.read_at(buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r.map_err(|e| SourceError::new(&self.path, "read", e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_format::NodeKind;
    use std::io::Write;

    fn regions(path: &Path) -> Vec<(u64, u64)> {
        let src = FsSource::new(FsSourceOptions::default()).unwrap();
        let entry = src.stat(path).unwrap().unwrap();
        src.open(&entry).unwrap().data_regions().unwrap()
    }

    #[test]
    fn dense_empty_and_all_hole_files() {
        let dir = tempfile::tempdir().unwrap();
        let dense = dir.path().join("dense");
        fs::write(&dense, vec![7u8; 10_000]).unwrap();
        assert_eq!(regions(&dense), vec![(0, 10_000)]);
        let empty = dir.path().join("empty");
        fs::write(&empty, b"").unwrap();
        assert_eq!(regions(&empty), vec![]);
        let holes = dir.path().join("holes");
        File::create(&holes).unwrap().set_len(1 << 20).unwrap();
        assert_eq!(regions(&holes), vec![]);
    }

    #[test]
    fn read_at_reads_at_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        File::create(&p).unwrap().write_all(b"0123456789").unwrap();
        let src = FsSource::new(FsSourceOptions::default()).unwrap();
        let e = src.stat(&p).unwrap().unwrap();
        let mut r = src.open(&e).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(r.read_at(3, &mut buf).unwrap(), 4);
        assert_eq!(&buf, b"3456");
        assert_eq!(r.read_at(10, &mut buf).unwrap(), 0);
    }

    #[test]
    fn open_refuses_what_is_no_longer_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, b"x").unwrap();
        let src = FsSource::new(FsSourceOptions::default()).unwrap();
        let e = src.stat(&p).unwrap().unwrap();
        fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &p).unwrap();
        assert_eq!(src.open(&e).err().unwrap().op, "open");
        fs::remove_file(&p).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &p,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        // Would hang without O_NONBLOCK.
        let err = src.open(&e).err().unwrap();
        assert_eq!(err.source.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn excluded_parents_exclude_named_paths() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("skipme/inner");
        fs::create_dir_all(&sub).unwrap();
        let opts = |ex: &str| FsSourceOptions {
            excludes: vec![ex.into()],
            ..Default::default()
        };
        assert!(
            FsSource::new(opts("skipme"))
                .unwrap()
                .stat(&sub)
                .unwrap()
                .is_none()
        );
        let anchored = format!("{}/skip*", dir.path().display());
        assert!(
            FsSource::new(opts(&anchored))
                .unwrap()
                .stat(&sub)
                .unwrap()
                .is_none()
        );
        let e = FsSource::new(opts("other"))
            .unwrap()
            .stat(&sub)
            .unwrap()
            .unwrap();
        assert_eq!(e.node.name, b"inner");
        assert_eq!(e.node.kind, Some(NodeKind::Dir));
    }

    #[test]
    fn root_has_an_empty_name() {
        let src = FsSource::new(FsSourceOptions::default()).unwrap();
        let e = src.stat(Path::new("/")).unwrap().unwrap();
        assert!(e.node.name.is_empty());
        assert!(e.node.is_dir());
    }
}
