//! Sources and restore targets for Lifeboat: the implementations of the traits in
//! [`lifeboat_repo::source`] that the archiver reads from and the restorer writes to.
//!
//! - [`files`]: local file trees with all of their metadata (owner, mode, nanosecond times,
//!   symlinks, hard links, xattrs of every namespace, POSIX ACLs, sparse files, FIFOs and
//!   device nodes), with excludes and one-file-system.
//! - [`stream`]: standard input and command output (database dumps) as named streams.
//!
//! The service modules (MariaDB, PostgreSQL, Redis, ...) will join them.

pub mod files;
pub mod galera;
pub mod mariadb;
pub mod pacemaker;
pub mod postgres;
pub mod rabbitmq;
pub mod redis;
pub mod stream;

pub use files::{ExcludeError, FsSource, FsSourceOptions, FsTarget, FsTargetOptions};
pub use stream::{CommandStream, StdinStream};
