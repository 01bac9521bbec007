//! On-disk types of a Lifeboat repository and their byte encodings.
//!
//! This crate does no I/O and no cryptography: it turns plaintext structures (pack trailers,
//! index segments, trees, snapshots, key-file and config bodies) into bytes and back, and it
//! holds every magic number and version constant. `docs/format.md` describes the same bytes;
//! the golden tests here pin them so that a change to the format is always a deliberate one.
//!
//! Every decoder takes untrusted input (a repository can be damaged or hostile) and returns a
//! [`FormatError`] rather than panicking; the fuzz targets in `fuzz/` hold it to that.

mod codec;
mod config;
mod id;
mod index;
mod keyfile;
mod maintenance;
mod snapshot;
mod tree;

pub use codec::{Reader, Writer};
pub use config::{REPO_VERSION, RepoConfig};
pub use id::{Id, ParseIdError};
pub use index::MAX_BLOB_LEN;
pub use index::{
    BLOB_ENTRY_LEN, BlobEntry, BlobType, Compression, IndexPack, IndexSegment, decode_blob_entries,
    encode_blob_entries,
};
pub use keyfile::{KEYFILE_WRAPPED_LEN, KdfParams, KeyFile, Keyring, MAX_GENERATIONS};
pub use maintenance::{
    BadBlob, HEALTH_VERSION, Health, LEASE_VERSION, Lease, LeaseKind, MARKS_VERSION, Mark,
    MarkReason, Marks,
};
pub use snapshot::{
    CopiedFrom, SNAPSHOT_VERSION, SkippedEntry, Snapshot, SnapshotStream, SnapshotSummary,
};
pub use tree::{Content, Node, NodeKind, Timestamp, Tree};
pub use tree::{escape_bytes, is_valid_name};

/// Every stored file starts with one of these 8-byte magics; the last two bytes are the
/// version of that file's layout, so a reader can refuse a newer layout by name.
pub mod magic {
    /// `config`: the repository id in clear, then the sealed [`RepoConfig`](crate::RepoConfig).
    pub const CONFIG: &[u8; 8] = b"LBCONF01";
    /// `keys/<id>`: a password-wrapped master key.
    pub const KEY: &[u8; 8] = b"LBKEYF01";
    /// `keys/<id>` after a key rotation: a password-wrapped keyring.
    pub const KEY_V2: &[u8; 8] = b"LBKEYF02";
    /// `data/<xx>/<id>`: a pack of sealed blobs and its sealed trailer.
    pub const PACK: &[u8; 8] = b"LBPACK01";
    /// `index/<id>`: a sealed index segment.
    pub const INDEX: &[u8; 8] = b"LBINDX01";
    /// `snapshots/<id>`: a sealed snapshot.
    pub const SNAPSHOT: &[u8; 8] = b"LBSNAP01";
    /// `marks/<id>`: the sealed prune marks (packs waiting to be deleted).
    pub const MARKS: &[u8; 8] = b"LBMARK01";
    /// `locks/<name>`: a sealed lease (a running prune or backup).
    pub const LEASE: &[u8; 8] = b"LBLEAS01";
    /// `health/<id>`: what `check --read-data*` verified, and the blobs it found damaged.
    pub const HEALTH: &[u8; 8] = b"LBHLTH01";
}

/// Length of every magic.
pub const MAGIC_LEN: usize = 8;

/// Errors of decoding untrusted bytes. None of them is retryable: the bytes will not change.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("unexpected end of data while reading {0}")]
    Truncated(&'static str),
    #[error("invalid value for {field}: {detail}")]
    Invalid { field: &'static str, detail: String },
    #[error("wrong magic: expected {expected:?}, found {found:?}")]
    Magic { expected: String, found: String },
    #[error("unsupported version {found} of {what} (this program reads up to {supported})")]
    Version {
        what: &'static str,
        found: u64,
        supported: u64,
    },
    #[error("{0} trailing bytes after the end of the structure")]
    Trailing(usize),
    #[error("malformed JSON: {0}")]
    Json(String),
}

impl FormatError {
    pub(crate) fn invalid(field: &'static str, detail: impl Into<String>) -> Self {
        FormatError::Invalid {
            field,
            detail: detail.into(),
        }
    }
}

/// Checks that `data` starts with `expected`, returning the rest.
pub fn strip_magic<'a>(data: &'a [u8], expected: &[u8; 8]) -> Result<&'a [u8], FormatError> {
    match data.get(..MAGIC_LEN) {
        Some(m) if m == expected => Ok(&data[MAGIC_LEN..]),
        Some(m) => Err(FormatError::Magic {
            expected: String::from_utf8_lossy(expected).into_owned(),
            found: String::from_utf8_lossy(m).into_owned(),
        }),
        None => Err(FormatError::Truncated("magic")),
    }
}
