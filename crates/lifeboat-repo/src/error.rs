//! The repository's errors, each saying whether a retry can help.

use lifeboat_crypto::CryptoError;
use lifeboat_format::FormatError;
use lifeboat_storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// Nothing at the location looks like a repository.
    #[error("no repository at {0}: run `lifeboat init` to create one, or check --repo")]
    NotARepository(String),
    #[error("a repository already exists at {0}; refusing to initialise it again")]
    AlreadyExists(String),
    #[error("wrong password: no key in the repository at {0} opens with it")]
    WrongPassword(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Stored bytes failed authentication or decoding.
    #[error(
        "{what} is damaged: {detail} (run `lifeboat check --read-data` to see what it affects)"
    )]
    Corrupt { what: String, detail: String },
    #[error("blob {0} is not in the index (the repository is missing data; run `lifeboat check`)")]
    MissingBlob(String),
    #[error("no snapshot matches {0:?}")]
    NoSnapshot(String),
    #[error("{0:?} matches several snapshots; give more digits of the id")]
    AmbiguousSnapshot(String),
    #[error("path {0} is not in the snapshot")]
    NoSuchPath(String),
    #[error("{0}")]
    Invalid(String),
    /// A stream's producer (a dump command) failed; no snapshot was written.
    #[error("{0}")]
    StreamFailed(String),
    #[error("interrupted")]
    Interrupted,
    #[error("{0}")]
    Crypto(String),
    #[error("no key file matches {0:?} (`lifeboat key list` shows them)")]
    NoSuchKey(String),
    #[error("{0:?} matches several key files; give more digits of the id")]
    AmbiguousKey(String),
    /// Removing this key file would leave the repository with none: nobody could open it.
    #[error(
        "key {0} is the repository's only key: removing it would make the repository unreadable; add another key first (`lifeboat key add`)"
    )]
    LastKey(String),
    /// The key file this session opened with: the only one known to work.
    #[error(
        "key {0} is the one this password opened; to remove it, open the repository with another key's password, or use `lifeboat key passwd` to replace it"
    )]
    CurrentKey(String),
    /// `key passwd` added the new key, but the old one is still there (it still opens the
    /// repository with the old password).
    #[error(
        "the new key {new} was added and works, but the old key {old} could not be removed: {source}; the old password still opens the repository until `lifeboat key remove {old}` succeeds"
    )]
    OldKeyKept {
        new: String,
        old: String,
        #[source]
        source: Box<RepoError>,
    },
    /// Another process holds the maintenance lease (a prune, a repair).
    #[error(
        "the repository is busy: {0}; try again after it finishes or its lease expires (prune and repair wait for nobody; backups are never blocked)"
    )]
    Locked(String),
    /// This process's maintenance lease was taken over or could not be renewed in time; it
    /// stopped before deleting anything more.
    #[error(
        "stopped: {0}; nothing more was deleted, and the repository is consistent; run the command again"
    )]
    LeaseLost(String),
    /// A prune deleted data this backup reused while it ran (its lease could not protect it,
    /// e.g. the process was suspended for longer than the prune grace period).
    #[error("{0}; no snapshot was written; run the backup again (it stores the data anew)")]
    ConcurrentPrune(String),
    /// Maintenance refuses to act on what it cannot fully see (damaged snapshots, missing
    /// data, a clock that went backwards).
    #[error("{0}")]
    Refused(String),
}

/// Errors of maintenance (leases, prune). Kept apart from [`RepoError`]'s other variants only
/// in the docs: they are ordinary variants.
impl RepoError {
    /// Another process holds the maintenance lease: retrying after it expires can help.
    pub fn is_locked(&self) -> bool {
        matches!(self, RepoError::Locked(_))
    }
}

impl RepoError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, RepoError::Storage(e) if e.is_retryable())
    }

    pub(crate) fn corrupt(what: impl Into<String>, detail: impl ToString) -> Self {
        RepoError::Corrupt {
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    pub(crate) fn from_crypto(what: impl Into<String>, e: CryptoError) -> Self {
        match e {
            CryptoError::Corrupt(_) | CryptoError::Truncated(_) => RepoError::corrupt(what, e),
            other => RepoError::Crypto(other.to_string()),
        }
    }

    pub(crate) fn from_format(what: impl Into<String>, e: FormatError) -> Self {
        RepoError::corrupt(what, e)
    }
}

pub type Result<T> = std::result::Result<T, RepoError>;
