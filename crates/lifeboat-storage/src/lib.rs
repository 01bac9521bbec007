//! Where a repository's files live. The repository sees only the [`Storage`] trait: named,
//! immutable objects in a few kinds of folders. This crate holds the native local backend;
//! remote backends (SFTP, S3, Swift) come behind the same trait.
//!
//! The contract every backend keeps (and the conformance suite in `tests/` checks):
//! - `put` is atomic: a reader sees the whole object or nothing, even after a crash; when
//!   `put` returns, the object is durable.
//! - `create_new` fails with [`StorageError::AlreadyExists`] if the name exists (leases).
//! - `list` never shows an object that is still being written.
//! - Errors say whether a retry can help ([`StorageError::is_retryable`]).

pub mod layers;
mod local;
#[cfg(feature = "remote")]
mod object;
pub mod remote;
#[cfg(feature = "remote")]
mod sftp;
#[cfg(feature = "remote")]
pub mod swift_auth;

pub use local::LocalStorage;
#[cfg(feature = "remote")]
pub use object::{ObjectStorage, S3Target, SwiftTarget};
pub use remote::RepoUrl;
#[cfg(feature = "remote")]
pub use sftp::{SftpStorage, SftpTarget};

use std::fmt;

/// The folders of a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    Config,
    Key,
    Pack,
    Index,
    Snapshot,
    Lock,
    /// Prune marks: packs waiting out their grace period before deletion.
    Marks,
    /// What `check` verified and found damaged.
    Health,
}

impl FileKind {
    /// The kinds that live in their own folder, which `create` makes.
    pub const FOLDERS: [FileKind; 7] = [
        FileKind::Key,
        FileKind::Pack,
        FileKind::Index,
        FileKind::Snapshot,
        FileKind::Lock,
        FileKind::Marks,
        FileKind::Health,
    ];

    pub fn dir(&self) -> &'static str {
        match self {
            FileKind::Config => "",
            FileKind::Key => "keys",
            FileKind::Pack => "data",
            FileKind::Index => "index",
            FileKind::Snapshot => "snapshots",
            FileKind::Lock => "locks",
            FileKind::Marks => "marks",
            FileKind::Health => "health",
        }
    }
}

/// One object: its kind and name. Packs are spread over 256 sub-folders by the first two hex
/// digits of their name, so no folder grows past what file systems and listings handle well.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Handle {
    pub kind: FileKind,
    pub name: String,
}

impl Handle {
    pub fn new(kind: FileKind, name: impl Into<String>) -> Self {
        Handle {
            kind,
            name: name.into(),
        }
    }
    pub fn config() -> Self {
        Handle::new(FileKind::Config, "config")
    }
    /// The object's path relative to the repository root.
    pub fn path(&self) -> String {
        match self.kind {
            FileKind::Config => "config".to_string(),
            FileKind::Pack => {
                let prefix = self.name.get(..2).unwrap_or("00");
                format!("data/{prefix}/{}", self.name)
            }
            k => format!("{}/{}", k.dir(), self.name),
        }
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("no space left on the repository's storage while writing {0}")]
    NoSpace(String),
    #[error("permission denied on {0}")]
    PermissionDenied(String),
    /// Reading past the end: the object is shorter than the index says (truncated).
    #[error("{what} is truncated: wanted {wanted} bytes at offset {offset}, it has {len}")]
    Truncated {
        what: String,
        offset: u64,
        wanted: u64,
        len: u64,
    },
    /// The remote service refused the credentials (wrong password, expired application
    /// credential, bad key, unknown user). Retrying cannot help.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The repository's place on a remote service does not exist (unknown bucket or
    /// container, missing directory on the SFTP server).
    #[error("{0}")]
    NoSuchLocation(String),
    /// A remote service answered with an error or the connection failed.
    #[error("{what}: {message}")]
    Remote {
        what: String,
        message: String,
        retryable: bool,
    },
    #[error("I/O error on {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
        retryable: bool,
    },
}

impl StorageError {
    /// Whether trying the same operation again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StorageError::Io {
                retryable: true,
                ..
            } | StorageError::Remote {
                retryable: true,
                ..
            }
        )
    }

    pub(crate) fn from_io(what: &str, e: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let what = what.to_string();
        match e.kind() {
            K::NotFound => StorageError::NotFound(what),
            K::AlreadyExists => StorageError::AlreadyExists(what),
            K::PermissionDenied => StorageError::PermissionDenied(what),
            K::StorageFull | K::QuotaExceeded => StorageError::NoSpace(what),
            K::Interrupted | K::TimedOut | K::WouldBlock => StorageError::Io {
                what,
                source: e,
                retryable: true,
            },
            _ => StorageError::Io {
                what,
                source: e,
                retryable: false,
            },
        }
    }
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// A repository's storage. Synchronous: the repository calls it from worker threads.
pub trait Storage: Send + Sync {
    /// A short description for messages, e.g. the path or URL.
    fn location(&self) -> String;
    /// Creates the folder layout of a new repository; fails if a `config` already exists.
    fn create(&self) -> Result<()>;
    /// Writes an object atomically and durably. An existing object of the same name may be
    /// replaced; that loses nothing, because names are content hashes and it held the same
    /// bytes. Use `create_new` where an existing object must win.
    fn put(&self, h: &Handle, data: &[u8]) -> Result<()>;
    /// Writes an object only if no object of that name exists.
    fn create_new(&self, h: &Handle, data: &[u8]) -> Result<()>;
    fn get(&self, h: &Handle) -> Result<Vec<u8>>;
    /// Reads `len` bytes at `offset`; fails with `Truncated` when the object is shorter.
    fn get_range(&self, h: &Handle, offset: u64, len: u64) -> Result<Vec<u8>>;
    /// Size of an object, or `NotFound`.
    fn size(&self, h: &Handle) -> Result<u64>;
    /// Names and sizes of the objects of one kind.
    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>>;
    fn delete(&self, h: &Handle) -> Result<()>;
    /// How many requests this backend serves well at once: packs a backup uploads side by
    /// side, reads a restore keeps in flight. Local disks gain nothing past one writer.
    fn parallelism(&self) -> usize {
        1
    }
    /// Removes leftovers of writes that were killed half-way (invisible temporary objects)
    /// older than `age`; returns how many went. Backends without such leftovers do nothing.
    fn remove_stale_temporaries(&self, age: std::time::Duration) -> Result<usize> {
        let _ = age;
        Ok(0)
    }
}
