//! Live counters that the command line (or the web dashboard) reads while a long operation
//! runs. Atomics only: the worker never waits for whoever displays them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Progress {
    pub files: AtomicU64,
    pub dirs: AtomicU64,
    /// Bytes read from the source (backup) or written to the target (restore).
    pub bytes: AtomicU64,
    /// Bytes accounted for without reading (unchanged files).
    pub bytes_skipped: AtomicU64,
    /// Expected total bytes, when known (restore, check; backup while its scanner runs).
    pub bytes_total: AtomicU64,
    /// Expected number of files, when known.
    pub files_total: AtomicU64,
    /// The totals are final (the scanner finished).
    pub totals_done: AtomicBool,
    pub errors: AtomicU64,
    pub current: Mutex<String>,
    /// Set by a signal handler; long loops check it and stop with `Interrupted`.
    pub cancel: AtomicBool,
}

impl Progress {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
    pub fn set_current(&self, s: impl Into<String>) {
        if let Ok(mut c) = self.current.lock() {
            *c = s.into();
        }
    }
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}
