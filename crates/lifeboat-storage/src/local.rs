//! The native local backend. Not OpenDAL's `fs` service: that one hops through tokio's thread
//! pool for every call and does not fsync the parent directory after a rename, which loses
//! the rename on power failure. Here a write is temp file, fsync, rename, fsync directory.

use crate::{FileKind, Handle, Result, Storage, StorageError};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub struct LocalStorage {
    root: PathBuf,
    /// Open pack files for ranged reads: a restore reads one blob at a time, and opening the
    /// pack for each one cost an open and a close per blob. Packs are immutable, so a cached
    /// handle always reads the right bytes (even after a prune unlinked the file).
    open_packs: Mutex<HashMap<PathBuf, Arc<File>>>,
    /// fsync is what makes a backup survive power loss; tests of other things may skip it.
    sync: bool,
}

/// Temporary files start with this, and listings skip them: a crash mid-write leaves a file
/// no reader ever sees (the next `prune` removes stale ones).
const TMP_PREFIX: &str = ".tmp-";

impl LocalStorage {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStorage {
            root: root.into(),
            sync: true,
            open_packs: Mutex::new(HashMap::new()),
        }
    }

    /// Turns fsync off (never for real repositories: only for throwaway test ones).
    pub fn without_sync(mut self) -> Self {
        self.sync = false;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, h: &Handle) -> PathBuf {
        self.root.join(h.path())
    }

    fn err(&self, h: &Handle, e: std::io::Error) -> StorageError {
        StorageError::from_io(&h.path(), e)
    }

    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        if self.sync {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    fn write_tmp(&self, h: &Handle, data: &[u8]) -> std::io::Result<(PathBuf, PathBuf)> {
        let target = self.path(h);
        let dir = target
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.root.clone());
        if matches!(h.kind, FileKind::Pack | FileKind::Marks | FileKind::Health) {
            // Pack sub-folders are made on first use rather than all 256 at init; `marks/`
            // and `health/` too, because repositories made before them lack them.
            match fs::create_dir(&dir) {
                // A new sub-folder's entry in data/ must be durable before a pack in it is
                // reported written, or a power loss could drop a pack the index lists.
                Ok(()) => self.sync_dir(dir.parent().unwrap_or(&self.root))?,
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        let mut rnd = [0u8; 8];
        getrandom::fill(&mut rnd).map_err(|e| std::io::Error::other(e.to_string()))?;
        let tmp = dir.join(format!(
            "{TMP_PREFIX}{}-{:016x}",
            h.name,
            u64::from_le_bytes(rnd)
        ));
        let res = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(data)?;
            if self.sync {
                f.sync_all()?;
            }
            Ok(())
        })();
        if let Err(e) = res {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok((tmp, target))
    }
}

/// How many pack handles to keep open; a restore touches packs roughly in order.
const OPEN_PACKS: usize = 64;

impl LocalStorage {
    fn open_for_range(&self, h: &Handle) -> Result<Arc<File>> {
        let path = self.path(h);
        if h.kind != FileKind::Pack {
            return Ok(Arc::new(File::open(&path).map_err(|e| self.err(h, e))?));
        }
        if let Some(f) = self
            .open_packs
            .lock()
            .ok()
            .and_then(|m| m.get(&path).cloned())
        {
            return Ok(f);
        }
        let f = Arc::new(File::open(&path).map_err(|e| self.err(h, e))?);
        if let Ok(mut m) = self.open_packs.lock() {
            if m.len() >= OPEN_PACKS {
                m.clear();
            }
            m.insert(path, f.clone());
        }
        Ok(f)
    }
}

impl Storage for LocalStorage {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn create(&self) -> Result<()> {
        let cfg = self.path(&Handle::config());
        if cfg.exists() {
            return Err(StorageError::AlreadyExists(format!(
                "a repository at {}",
                self.root.display()
            )));
        }
        for kind in FileKind::FOLDERS {
            let d = self.root.join(kind.dir());
            fs::create_dir_all(&d)
                .map_err(|e| StorageError::from_io(&d.display().to_string(), e))?;
        }
        Ok(())
    }

    fn put(&self, h: &Handle, data: &[u8]) -> Result<()> {
        let (tmp, target) = self.write_tmp(h, data).map_err(|e| self.err(h, e))?;
        let done = fs::rename(&tmp, &target).and_then(|_| match target.parent() {
            Some(d) => self.sync_dir(d),
            None => Ok(()),
        });
        if let Err(e) = done {
            let _ = fs::remove_file(&tmp);
            return Err(self.err(h, e));
        }
        Ok(())
    }

    fn create_new(&self, h: &Handle, data: &[u8]) -> Result<()> {
        let (tmp, target) = self.write_tmp(h, data).map_err(|e| self.err(h, e))?;
        // link() fails if the target exists, which rename() would silently replace.
        let res = fs::hard_link(&tmp, &target);
        let _ = fs::remove_file(&tmp);
        res.map_err(|e| self.err(h, e))?;
        if let Some(d) = target.parent() {
            self.sync_dir(d).map_err(|e| self.err(h, e))?;
        }
        Ok(())
    }

    fn get(&self, h: &Handle) -> Result<Vec<u8>> {
        let mut f = File::open(self.path(h)).map_err(|e| self.err(h, e))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).map_err(|e| self.err(h, e))?;
        Ok(buf)
    }

    fn get_range(&self, h: &Handle, offset: u64, len: u64) -> Result<Vec<u8>> {
        let f = self.open_for_range(h)?;
        // Read into spare capacity: zero-filling a buffer that pread overwrites anyway cost a
        // tenth of a restore's time.
        let mut buf: Vec<u8> = Vec::with_capacity(len as usize);
        while buf.len() < len as usize {
            let before = buf.len();
            let at = offset + before as u64;
            // `spare_capacity` appends what pread read; a larger capacity than asked for can
            // only read bytes that are then cut off below.
            match rustix::io::pread(&*f, rustix::buffer::spare_capacity(&mut buf), at) {
                Ok(0) => {
                    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
                    return Err(StorageError::Truncated {
                        what: h.path(),
                        offset,
                        wanted: len,
                        len: size,
                    });
                }
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(self.err(h, e.into())),
            }
            debug_assert!(buf.len() > before);
        }
        buf.truncate(len as usize);
        Ok(buf)
    }

    fn size(&self, h: &Handle) -> Result<u64> {
        let mut f = File::open(self.path(h)).map_err(|e| self.err(h, e))?;
        f.seek(SeekFrom::End(0)).map_err(|e| self.err(h, e))
    }

    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>> {
        let base = self.root.join(kind.dir());
        let mut out = Vec::new();
        let mut dirs = vec![base.clone()];
        if matches!(kind, FileKind::Marks | FileKind::Health) && !base.exists() {
            return Ok(out); // made on first use
        }
        if kind == FileKind::Pack {
            dirs.clear();
            let rd = fs::read_dir(&base)
                .map_err(|e| StorageError::from_io(&base.display().to_string(), e))?;
            for e in rd {
                let e = e.map_err(|e| StorageError::from_io(&base.display().to_string(), e))?;
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    dirs.push(e.path());
                }
            }
        }
        for d in dirs {
            let rd =
                fs::read_dir(&d).map_err(|e| StorageError::from_io(&d.display().to_string(), e))?;
            for e in rd {
                let e = e.map_err(|e| StorageError::from_io(&d.display().to_string(), e))?;
                let Some(name) = e.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                if name.starts_with('.') {
                    continue;
                }
                match e.metadata() {
                    Ok(m) if m.is_file() => out.push((name, m.len())),
                    Ok(_) => {}
                    // Deleted between listing and stat: it is gone, which is what a list says.
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(StorageError::from_io(&e.to_string(), e)),
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn remove_stale_temporaries(&self, age: std::time::Duration) -> Result<usize> {
        // A temporary file is only ever written by a live process within seconds to
        // minutes; one older than `age` belongs to a process that died.
        let mut removed = 0;
        let mut dirs = vec![self.root.clone()];
        while let Some(d) = dirs.pop() {
            let rd = match fs::read_dir(&d) {
                Ok(rd) => rd,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(StorageError::from_io(&d.display().to_string(), e)),
            };
            for e in rd.flatten() {
                let Ok(m) = e.metadata() else { continue };
                let name = e.file_name();
                if m.is_dir() {
                    dirs.push(e.path());
                } else if name.to_string_lossy().starts_with(TMP_PREFIX)
                    && m.modified()
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|el| el >= age)
                {
                    match fs::remove_file(e.path()) {
                        Ok(()) => removed += 1,
                        Err(err) if err.kind() == ErrorKind::NotFound => {}
                        Err(err) => {
                            return Err(StorageError::from_io(
                                &e.path().display().to_string(),
                                err,
                            ));
                        }
                    }
                }
            }
        }
        Ok(removed)
    }

    fn delete(&self, h: &Handle) -> Result<()> {
        let path = self.path(h);
        if let Ok(mut m) = self.open_packs.lock() {
            m.remove(&path);
        }
        fs::remove_file(path).map_err(|e| self.err(h, e))
    }
}
