//! The Lifeboat repository: packs, index, snapshots, and the archiver and restorer that move
//! trees of files and named streams in and out of it.
//!
//! The core is synchronous and parallel inside (threads). It knows nothing of SSH, HTTP or the
//! command line; where data comes from and goes to is behind the [`source`] traits, which
//! `lifeboat-sources` implements for the local file system.
//!
//! Write order is what makes a crash harmless: packs first, then the index segment that
//! lists them, then the snapshot that references them. A crash at any point leaves only
//! unreferenced files, never a snapshot pointing at missing data.

pub mod archiver;
pub mod check;
pub mod copy;
mod error;
mod health;
pub mod index;
mod keys;
pub mod lease;
mod marks;
mod pack_order;
pub mod progress;
pub mod prune;
pub mod repack;
pub mod repair;
mod repository;
pub mod restorer;
pub mod retention;
pub mod saver;
pub mod source;
pub mod walk;

pub use archiver::{BackupOptions, BackupResult, backup, normalize_path};
pub use check::{CheckOptions, CheckReport, ReadData, check, check_with};
pub use error::{RepoError, Result};
pub use health::HealthState;
pub use keys::KeyInfo;
pub use lease::{BackupLease, LeaseHolder, LeaseTiming, MaintenanceLease};
pub use marks::MarksState;
pub use progress::Progress;
pub use repository::{
    IndexReport, InitOptions, PACK_HEADER_LEN, Repository, SnapshotFilter, pack_handle,
};
pub use restorer::{RestoreOptions, RestoreSummary, restore};
pub use retention::{GroupBy, KeepPolicy};
