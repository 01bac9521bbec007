//! What the archiver reads from and the restorer writes to. The repository sees only these
//! traits; `lifeboat-sources` implements them for local files (and later for remote nodes).

use lifeboat_format::Node;
use std::io;
use std::path::{Path, PathBuf};

/// A failure on one source or target entry. The archiver records it and goes on (the snapshot
/// is then incomplete, exit code 3); the restorer reports it and goes on.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
pub struct SourceError {
    pub path: PathBuf,
    /// What was being done, e.g. "read", "open", "list xattrs of".
    pub op: &'static str,
    #[source]
    pub source: io::Error,
}

impl SourceError {
    pub fn new(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Self {
        SourceError {
            path: path.into(),
            op,
            source,
        }
    }
    /// True when the entry vanished between listing and reading (not worth a warning).
    pub fn is_not_found(&self) -> bool {
        self.source.kind() == io::ErrorKind::NotFound
    }
}

/// An entry found while walking a source.
#[derive(Debug, Clone)]
pub struct SourceEntry {
    /// Where to find it again (for `open` and `read_dir`).
    pub path: PathBuf,
    /// Its metadata: everything but `content` and `subtree`, which the archiver fills.
    pub node: Node,
}

/// A tree of files to back up.
pub trait FileSource: Send + Sync {
    /// The metadata of a path named on the command line. `Ok(None)` when it is excluded or
    /// is a kind that is never stored (a socket).
    fn stat(&self, path: &Path) -> Result<Option<SourceEntry>, SourceError>;

    /// The children of a directory, sorted by name bytes, with excluded entries and sockets
    /// left out. A child whose metadata cannot be read is returned as an error in its place,
    /// so one bad entry does not hide its siblings.
    fn read_dir(
        &self,
        dir: &SourceEntry,
    ) -> Result<Vec<Result<SourceEntry, SourceError>>, SourceError>;

    /// Opens a regular file for reading.
    fn open(&self, entry: &SourceEntry) -> Result<Box<dyn FileReader>, SourceError>;
}

/// An open regular file.
pub trait FileReader: Send {
    /// The byte ranges `(offset, len)` that hold data, in order; everything else up to the
    /// file's size is a hole. A file with no holes returns one range covering it.
    fn data_regions(&mut self) -> Result<Vec<(u64, u64)>, SourceError>;
    /// Reads at `offset` into `buf`, returning how many bytes were read (0 at end of file).
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, SourceError>;
}

/// What to do with a path that already exists in the restore target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Replace it.
    Always,
    /// Replace it unless size and mtime already match the snapshot.
    IfChanged,
    /// Leave it as it is.
    Never,
}

/// Where restored files go. Paths are full paths inside the target.
pub trait RestoreTarget: Send + Sync {
    /// The metadata of what is at `path` now, or `None` when nothing is.
    fn existing(&self, path: &Path) -> Result<Option<Node>, SourceError>;
    /// Removes what is at `path` (recursively for a directory).
    fn remove(&self, path: &Path) -> Result<(), SourceError>;
    /// Creates a directory (parents included) if it is not there yet.
    fn create_dir(&self, path: &Path) -> Result<(), SourceError>;
    /// Creates (or truncates) a regular file of `node.size` bytes, sparse where `sparse` is
    /// set: holes are then never written.
    fn create_file(
        &self,
        path: &Path,
        node: &Node,
        sparse: bool,
    ) -> Result<Box<dyn FileWriter>, SourceError>;
    /// Opens a file that `create_file` made earlier again, to write more of it. The restorer
    /// closes files between writes when too many are open at once (a file's blobs can be
    /// spread over packs that are read far apart); earlier writers of the file are dropped
    /// without `finish`, and only the last one is finished.
    fn reopen_file(&self, path: &Path, node: &Node) -> Result<Box<dyn FileWriter>, SourceError>;
    /// Creates a symlink, FIFO or device node.
    fn create_special(&self, path: &Path, node: &Node) -> Result<(), SourceError>;
    /// Makes `path` another name of the already restored `existing`.
    fn hard_link(&self, existing: &Path, path: &Path) -> Result<(), SourceError>;
    /// Applies owner, mode, xattrs (ACLs included) and times, in an order that keeps each of
    /// them (times last; setuid bits after chown). Directories get this after their contents.
    fn set_metadata(&self, path: &Path, node: &Node) -> Result<(), SourceError>;
    /// Lists the names in a directory of the target (for `--delete`).
    fn list_dir(&self, path: &Path) -> Result<Vec<Vec<u8>>, SourceError>;
    /// Opens a restored file again to verify it (`restore --verify`).
    fn read_back(&self, path: &Path) -> Result<Box<dyn std::io::Read + Send>, SourceError> {
        std::fs::File::open(path)
            .map(|f| {
                Box::new(std::io::BufReader::with_capacity(1 << 20, f))
                    as Box<dyn std::io::Read + Send>
            })
            .map_err(|e| SourceError::new(path, "open for verification", e))
    }
}

/// A regular file being restored; blobs may arrive in any order.
pub trait FileWriter: Send + Sync {
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), SourceError>;
    /// Flushes and closes; called once after the last write.
    fn finish(&self) -> Result<(), SourceError>;
}

/// A named stream stored as one file of a snapshot: standard input, or a command's standard
/// output (a database dump). The archiver reads it to the end, then asks the producer whether
/// it succeeded: a dump that failed half-way must never become a good-looking snapshot.
pub trait StreamSource: Send {
    /// Its file name in the snapshot's root.
    fn name(&self) -> &str;
    /// The command producing it, recorded in the snapshot; `None` for standard input.
    fn command(&self) -> Option<&str>;
    fn reader(&mut self) -> &mut dyn std::io::Read;
    /// Called after the end of the stream (or after the archiver gave up on it): waits for
    /// the producer and says why it failed, e.g. an exit status and the tail of its stderr.
    fn finish(self: Box<Self>, aborted: bool) -> Result<(), String>;
}
