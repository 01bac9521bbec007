//! Snapshots: the only commit point of a backup. The plaintext is JSON (small, read by people
//! when debugging, and easy to extend); unknown fields are kept out by `deny_unknown_fields`
//! only where a misread would be dangerous, which here is nowhere, so newer fields are ignored
//! by older readers.

use crate::{FormatError, Id};
use serde::{Deserialize, Serialize};

/// The snapshot layout version this program writes and the highest it reads.
pub const SNAPSHOT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    /// When the backup started.
    pub time: jiff::Timestamp,
    /// When the snapshot was written.
    pub time_end: jiff::Timestamp,
    pub hostname: String,
    pub username: String,
    /// The paths given on the command line, made absolute (lossy UTF-8, for display; the
    /// tree holds the exact bytes).
    pub paths: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The root tree. Paths are stored from `/` down, streams sit in the root next to them.
    pub tree: Id,
    /// The snapshot whose trees told which files were unchanged, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Id>,
    /// Named streams (standard input, command output) stored as files in the root tree.
    #[serde(default)]
    pub streams: Vec<SnapshotStream>,
    /// Entries that could not be read: the snapshot is incomplete when this is not empty.
    #[serde(default)]
    pub skipped: Vec<SkippedEntry>,
    #[serde(default)]
    pub summary: SnapshotSummary,
    /// Ties together the snapshots of one run (several components, several nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Set by `lifeboat copy`: the snapshot this one is a copy of. Omitted otherwise, so
    /// snapshots that are not copies are written exactly as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copied_from: Option<CopiedFrom>,
    pub program_version: String,
}

/// Where a copied snapshot came from: the snapshot as its first backup wrote it. A copy of a
/// copy names the same original, so copies made along different paths (A to B to C, and A to
/// C) are recognised as one snapshot and not copied twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CopiedFrom {
    /// The id of the repository the original snapshot is in (its config's id, §4.2).
    pub repository: Id,
    /// The original snapshot's id (its file name in that repository).
    pub snapshot: Id,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotStream {
    /// Its name in the root tree.
    pub name: String,
    /// The command whose standard output it is; absent for standard input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedEntry {
    pub path: String,
    pub error: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSummary {
    pub files: u64,
    pub dirs: u64,
    pub other: u64,
    pub files_unchanged: u64,
    pub bytes_read: u64,
    /// Logical size of everything in the snapshot.
    pub bytes_total: u64,
    pub blobs_added: u64,
    /// Plaintext bytes of the blobs this backup added.
    pub bytes_added: u64,
    /// Bytes those blobs took in packs (compressed, sealed).
    pub bytes_stored: u64,
}

impl Snapshot {
    pub fn is_complete(&self) -> bool {
        self.skipped.is_empty()
    }

    /// The original of this snapshot, stored under `id` in the repository `repository`:
    /// what it was copied from, or itself if it is no copy.
    pub fn origin(&self, repository: Id, id: Id) -> CopiedFrom {
        self.copied_from.unwrap_or(CopiedFrom {
            repository,
            snapshot: id,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain structs with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(data: &[u8]) -> Result<Self, FormatError> {
        let s: Snapshot =
            serde_json::from_slice(data).map_err(|e| FormatError::Json(e.to_string()))?;
        if s.version > SNAPSHOT_VERSION {
            return Err(FormatError::Version {
                what: "snapshot",
                found: s.version as u64,
                supported: SNAPSHOT_VERSION as u64,
            });
        }
        Ok(s)
    }
}
