//! The Lifeboat repository: packs, index, snapshots, and the archiver and restorer that move
//! trees of files and named streams in and out of it.
//!
//! The core is synchronous and parallel inside (threads). It knows nothing of SSH, HTTP or the
//! command line; where data comes from and goes to is behind the [`source`] traits, which
//! `lifeboat-sources` implements for the local file system.

pub mod source;
