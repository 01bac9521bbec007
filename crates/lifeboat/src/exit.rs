//! Exit codes (documented in docs/cli.md) and the mapping from errors to them.

use lifeboat_repo::{Progress, RepoError};
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub const OK: u8 = 0;
pub const ERROR: u8 = 1;
/// The backup was written, but some source files could not be read.
pub const INCOMPLETE: u8 = 3;
pub const NO_REPOSITORY: u8 = 10;
/// Another process holds the maintenance lease (a prune or repair is running); try later.
pub const LOCKED: u8 = 11;
pub const WRONG_PASSWORD: u8 = 12;
/// The repository's storage refused the credentials (ssh key, S3 keys, Keystone password,
/// Swift token) or the permission to an object.
pub const STORAGE_AUTH: u8 = 13;
/// The repository's storage could not be reached or kept failing after every retry (network,
/// server down, timeouts). Nothing half-written is referenced; run the command again later.
pub const STORAGE_UNAVAILABLE: u8 = 14;
/// The repository's storage is full.
pub const NO_SPACE: u8 = 15;
pub const INTERRUPTED: u8 = 130;

/// An error that carries its own exit code and message.
#[derive(Debug)]
pub struct Fail {
    pub code: u8,
    pub message: String,
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Fail {}

pub fn fail(code: u8, message: impl Into<String>) -> anyhow::Error {
    Fail {
        code,
        message: message.into(),
    }
    .into()
}

pub fn code_of(e: &anyhow::Error) -> u8 {
    if let Some(f) = e.downcast_ref::<Fail>() {
        return f.code;
    }
    let storage = e
        .downcast_ref::<lifeboat_storage::StorageError>()
        .or_else(|| {
            e.chain().find_map(|c| match c.downcast_ref::<RepoError>() {
                Some(RepoError::Storage(s)) => Some(s),
                _ => None,
            })
        });
    if let Some(s) = storage {
        use lifeboat_storage::StorageError as S;
        match s {
            S::Auth(_) | S::PermissionDenied(_) => return STORAGE_AUTH,
            S::NoSuchLocation(_) => return NO_REPOSITORY,
            S::NoSpace(_) => return NO_SPACE,
            S::Remote { .. } | S::Io { .. } if s.is_retryable() => return STORAGE_UNAVAILABLE,
            _ => {}
        }
    }
    match e.downcast_ref::<RepoError>() {
        Some(RepoError::NotARepository(_)) => NO_REPOSITORY,
        Some(RepoError::WrongPassword(_)) => WRONG_PASSWORD,
        Some(RepoError::Locked(_)) => LOCKED,
        Some(RepoError::Interrupted) => INTERRUPTED,
        _ => ERROR,
    }
}

pub fn message_of(e: &anyhow::Error) -> String {
    // anyhow's alternate form joins the context chain: "opening x: no repository at x".
    let m = format!("{e:#}");
    // The storage errors say what failed; the next step depends on the kind.
    match code_of(e) {
        STORAGE_UNAVAILABLE => format!(
            "{m}\nThe repository's storage did not answer after every retry; nothing half-written is referenced by a snapshot. Check the network and the server, then run the command again (--retries N tries longer)."
        ),
        STORAGE_AUTH if !m.contains("check") => {
            format!("{m}\nCheck the credentials and permissions for the repository's storage.")
        }
        NO_SPACE => format!(
            "{m}\nFree space on the repository's storage (or run `lifeboat forget --prune`), then run the command again; earlier snapshots are intact."
        ),
        _ => m,
    }
}

/// First SIGINT/SIGTERM: ask the running operation to stop (it returns `Interrupted`, exit
/// 130). If it has not stopped two seconds later (blocked on a pipe or a slow disk), exit
/// anyway: the write order guarantees that nothing a snapshot references is half-written, and
/// temporary files are invisible to readers. A second signal exits at once.
pub fn install_signal_handler(progress: Arc<Progress>) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    std::thread::spawn(move || {
        let mut seen = false;
        for _ in signals.forever() {
            if seen {
                std::process::exit(INTERRUPTED as i32);
            }
            seen = true;
            progress.cancel.store(true, Ordering::SeqCst);
            std::thread::spawn(|| {
                std::thread::sleep(std::time::Duration::from_secs(2));
                eprintln!("lifeboat: interrupted");
                std::process::exit(INTERRUPTED as i32);
            });
        }
    });
}
