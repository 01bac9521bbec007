//! Leases: time-limited claims on a repository, kept in `locks/` and renewed while their
//! holder works.
//!
//! - The **maintenance lease** is exclusive: one prune (or repair) at a time. It is the object
//!   `locks/maintenance-<seq>`, created with `create_new` so that of two processes only one
//!   gets a given sequence number. An expired lease is taken over by creating the next
//!   number, never by overwriting, so two processes can never both believe they won the same
//!   object. The holder checks before every destructive step that its lease is still the
//!   newest, still carries its token, and was renewed in time by its own monotonic clock; a
//!   holder that was suspended past its expiry therefore stops before deleting anything.
//! - **Backup leases** (`locks/backup-<token>`) are shared and block nobody: a backup announces
//!   itself so that prune does not delete packs the backup may still reuse (see `prune`).
//!
//! Lease bodies are sealed like snapshots, so only key holders can read or forge them.

use crate::{RepoError, Repository, Result};
use lifeboat_crypto::Keys;
use lifeboat_format::{Lease, LeaseKind, magic};
use lifeboat_storage::{FileKind, Handle, Storage, StorageError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const MAINTENANCE_PREFIX: &str = "maintenance-";
const BACKUP_PREFIX: &str = "backup-";

/// How long a lease lives without renewal, how often it is renewed, and the clock skew
/// tolerated between hosts.
#[derive(Debug, Clone, Copy)]
pub struct LeaseTiming {
    pub ttl: Duration,
    pub renew_every: Duration,
    pub margin: Duration,
}

impl LeaseTiming {
    /// Ten minutes, renewed every two. `LIFEBOAT_LEASE_TTL` (seconds) shortens it for tests
    /// of takeover and expiry; the renewal period and the skew margin scale with it.
    pub fn from_env() -> Self {
        let ttl = std::env::var("LIFEBOAT_LEASE_TTL")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|s| *s >= 1)
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(600));
        LeaseTiming {
            ttl,
            renew_every: ttl / 5,
            margin: (ttl / 5).min(Duration::from_secs(120)),
        }
    }
}

/// Who holds a lease, for messages.
#[derive(Debug, Clone)]
pub struct LeaseHolder {
    pub hostname: String,
    pub username: String,
    pub command: String,
}

/// A lease file as listed: its name and its contents, or why they could not be read.
#[derive(Debug, Clone)]
pub struct LeaseEntry {
    pub name: String,
    pub lease: std::result::Result<Lease, String>,
}

impl LeaseEntry {
    pub fn kind(&self) -> Option<LeaseKind> {
        if self.name.starts_with(MAINTENANCE_PREFIX) {
            Some(LeaseKind::Maintenance)
        } else if self.name.starts_with(BACKUP_PREFIX) {
            Some(LeaseKind::Backup)
        } else {
            None
        }
    }
    fn seq(&self) -> Option<u64> {
        self.name.strip_prefix(MAINTENANCE_PREFIX)?.parse().ok()
    }
}

fn random_token() -> Result<String> {
    let mut b = [0u8; 16];
    lifeboat_crypto::random_bytes(&mut b).map_err(|e| RepoError::Crypto(e.to_string()))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn ts_plus(t: jiff::Timestamp, d: Duration) -> jiff::Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(t)
}

impl Repository {
    /// Every lease file in `locks/`, readable or not.
    pub fn leases(&self) -> Result<Vec<LeaseEntry>> {
        let mut out = Vec::new();
        for (name, _) in self.storage().list(FileKind::Lock)? {
            let h = Handle::new(FileKind::Lock, name.clone());
            let lease = match self.storage().get(&h) {
                Ok(b) => self
                    .keys()
                    .open_file(magic::LEASE, &b, "lease")
                    .map_err(|e| e.to_string())
                    .and_then(|p| Lease::decode(&p).map_err(|e| e.to_string())),
                Err(StorageError::NotFound(_)) => continue, // released meanwhile
                Err(e) => return Err(e.into()),
            };
            out.push(LeaseEntry { name, lease });
        }
        Ok(out)
    }

    fn seal_lease(&self, l: &Lease) -> Result<Vec<u8>> {
        seal(self.keys(), l)
    }
}

/// State shared between a lease's owner and its renewal thread.
struct Shared {
    storage: Arc<dyn Storage>,
    handle: Handle,
    lease: Mutex<Lease>,
    /// Set when the lease is known to be gone or superseded.
    lost: AtomicBool,
    lost_why: Mutex<String>,
    /// By the monotonic clock: the lease is ours until then (expiry minus the skew margin).
    valid_until: Mutex<Instant>,
    stop: AtomicBool,
    /// Set when a renewal came after the lease had already expired.
    lapsed: AtomicBool,
    timing: LeaseTiming,
}

impl Shared {
    fn mark_lost(&self, why: String) {
        if let Ok(mut w) = self.lost_why.lock()
            && w.is_empty()
        {
            *w = why;
        }
        self.lost.store(true, Ordering::SeqCst);
    }
}

fn seal(keys: &Keys, l: &Lease) -> Result<Vec<u8>> {
    keys.seal_file(magic::LEASE, &l.encode())
        .map_err(|e| RepoError::Crypto(e.to_string()))
}

fn spawn_renewal(shared: Arc<Shared>, keys: Arc<Keys>, exclusive: bool) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut next = Instant::now() + shared.timing.renew_every;
        while !shared.stop.load(Ordering::SeqCst) {
            if Instant::now() < next {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            let began = Instant::now();
            next = began + shared.timing.renew_every;
            if exclusive && let Err(why) = still_ours(&shared) {
                shared.mark_lost(why);
                return;
            }
            let now = jiff::Timestamp::now();
            let body = {
                let Ok(mut l) = shared.lease.lock() else {
                    return;
                };
                l.renewed = now;
                l.expires = ts_plus(now, shared.timing.ttl);
                seal(&keys, &l)
            };
            let Ok(body) = body else { continue };
            if shared.storage.put(&shared.handle, &body).is_ok() {
                if let Ok(mut v) = shared.valid_until.lock() {
                    if began >= *v {
                        shared.lapsed.store(true, Ordering::SeqCst);
                    }
                    *v = began + shared.timing.ttl - shared.timing.margin;
                }
                // Re-check after writing: a takeover between the check and the write must
                // not leave two holders; the higher sequence number wins.
                if exclusive && let Err(why) = still_ours(&shared) {
                    shared.mark_lost(why);
                    return;
                }
            }
        }
    })
}

/// The shared state of a lease just written at `began`, and its renewal thread.
fn start(
    repo: &Repository,
    handle: Handle,
    lease: Lease,
    timing: LeaseTiming,
    began: Instant,
    exclusive: bool,
) -> (Arc<Shared>, Option<JoinHandle<()>>) {
    let shared = Arc::new(Shared {
        storage: repo.storage().clone(),
        handle,
        lease: Mutex::new(lease),
        lost: AtomicBool::new(false),
        lost_why: Mutex::new(String::new()),
        valid_until: Mutex::new(began + timing.ttl - timing.margin),
        stop: AtomicBool::new(false),
        lapsed: AtomicBool::new(false),
        timing,
    });
    let thread = Some(spawn_renewal(
        shared.clone(),
        repo.keys().clone(),
        exclusive,
    ));
    (shared, thread)
}

/// Whether the maintenance lease object is still this holder's and no newer one exists.
fn still_ours(shared: &Shared) -> std::result::Result<(), String> {
    let names = shared
        .storage
        .list(FileKind::Lock)
        .map_err(|e| format!("cannot list locks/: {e}"))?;
    let mine = shared.handle.name.clone();
    let my_seq: u64 = mine
        .strip_prefix(MAINTENANCE_PREFIX)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut present = false;
    for (n, _) in names {
        if n == mine {
            present = true;
        } else if let Some(s) = n
            .strip_prefix(MAINTENANCE_PREFIX)
            .and_then(|s| s.parse::<u64>().ok())
            && s > my_seq
        {
            return Err(format!(
                "the maintenance lease was taken over by locks/{n} (this process's lease had expired)"
            ));
        }
    }
    if !present {
        return Err(format!(
            "the maintenance lease locks/{mine} was removed by another process"
        ));
    }
    Ok(())
}

/// The exclusive maintenance lease, released (deleted) on drop.
pub struct MaintenanceLease {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl MaintenanceLease {
    /// Takes the lease, or says who holds it. An expired lease is taken over.
    pub fn acquire(repo: &Repository, holder: &LeaseHolder) -> Result<Self> {
        Self::acquire_with(repo, holder, LeaseTiming::from_env())
    }

    pub fn acquire_with(
        repo: &Repository,
        holder: &LeaseHolder,
        timing: LeaseTiming,
    ) -> Result<Self> {
        let now = jiff::Timestamp::now();
        let mut maint: Vec<(u64, LeaseEntry)> = repo
            .leases()?
            .into_iter()
            .filter_map(|e| e.seq().map(|s| (s, e)))
            .collect();
        maint.sort_by_key(|(s, _)| *s);
        let seq = match maint.last() {
            None => 1,
            Some((s, e)) => {
                if let Ok(l) = &e.lease
                    && ts_plus(l.expires, timing.margin) > now
                {
                    return Err(RepoError::Locked(format!(
                        "locks/{} is held: {}",
                        e.name,
                        l.describe()
                    )));
                }
                // Expired, or unreadable (a lease sealed under another key cannot be renewed
                // by anyone who can use this repository): take over with the next number.
                s + 1
            }
        };
        let token = random_token()?;
        let lease = Lease {
            version: lifeboat_format::LEASE_VERSION,
            kind: LeaseKind::Maintenance,
            token,
            hostname: holder.hostname.clone(),
            username: holder.username.clone(),
            pid: std::process::id(),
            command: holder.command.clone(),
            started: now,
            renewed: now,
            expires: ts_plus(now, timing.ttl),
        };
        let handle = Handle::new(FileKind::Lock, format!("{MAINTENANCE_PREFIX}{seq:020}"));
        let began = Instant::now();
        match repo
            .storage()
            .create_new(&handle, &repo.seal_lease(&lease)?)
        {
            Ok(()) => {}
            Err(StorageError::AlreadyExists(_)) => {
                return Err(RepoError::Locked(format!(
                    "another process took {} a moment ago",
                    handle
                )));
            }
            Err(e) => return Err(e.into()),
        }
        // The superseded leases: their holders see the newer number and stop.
        for (_, e) in &maint {
            let _ = repo
                .storage()
                .delete(&Handle::new(FileKind::Lock, e.name.clone()));
        }
        let (shared, thread) = start(repo, handle, lease, timing, began, true);
        Ok(MaintenanceLease { shared, thread })
    }

    /// Cheap check (no I/O): the lease was not lost and was renewed in time by the monotonic
    /// clock. Call before each destructive step.
    pub fn check(&self) -> Result<()> {
        if self.shared.lost.load(Ordering::SeqCst) {
            let why = self
                .shared
                .lost_why
                .lock()
                .map(|w| w.clone())
                .unwrap_or_default();
            return Err(RepoError::LeaseLost(why));
        }
        let until = self
            .shared
            .valid_until
            .lock()
            .map(|v| *v)
            .unwrap_or_else(|_| Instant::now());
        if Instant::now() >= until {
            return Err(RepoError::LeaseLost(format!(
                "the maintenance lease {} was not renewed within {}s (the process was suspended or the storage was unreachable); another process may have taken over",
                self.shared.handle,
                self.shared.timing.ttl.as_secs()
            )));
        }
        Ok(())
    }

    /// Full check with I/O: [`MaintenanceLease::check`], and the lease object is still the
    /// newest maintenance lease. Call before starting to delete.
    pub fn verify(&self) -> Result<()> {
        self.check()?;
        if let Err(why) = still_ours(&self.shared) {
            self.shared.mark_lost(why);
            return self.check();
        }
        self.check()
    }

    pub fn name(&self) -> String {
        self.shared.handle.name.clone()
    }
}

impl Drop for MaintenanceLease {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // A lost lease is someone else's now; only release what is still ours.
        if !self.shared.lost.load(Ordering::SeqCst) && still_ours(&self.shared).is_ok() {
            let _ = self.shared.storage.delete(&self.shared.handle);
        }
    }
}

/// A running backup's lease, released (deleted) on drop.
pub struct BackupLease {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl BackupLease {
    pub fn acquire(repo: &Repository, holder: &LeaseHolder) -> Result<Self> {
        let timing = LeaseTiming::from_env();
        let now = jiff::Timestamp::now();
        let token = random_token()?;
        let lease = Lease {
            version: lifeboat_format::LEASE_VERSION,
            kind: LeaseKind::Backup,
            token: token.clone(),
            hostname: holder.hostname.clone(),
            username: holder.username.clone(),
            pid: std::process::id(),
            command: holder.command.clone(),
            started: now,
            renewed: now,
            expires: ts_plus(now, timing.ttl),
        };
        let handle = Handle::new(FileKind::Lock, format!("{BACKUP_PREFIX}{token}"));
        let began = Instant::now();
        repo.storage().put(&handle, &repo.seal_lease(&lease)?)?;
        let (shared, thread) = start(repo, handle, lease, timing, began, false);
        Ok(BackupLease { shared, thread })
    }

    /// Whether the lease went unrenewed for longer than its lifetime at some point, so that
    /// a prune may have considered this backup dead.
    pub fn lapsed(&self) -> bool {
        self.shared.lapsed.load(Ordering::SeqCst)
            || self
                .shared
                .valid_until
                .lock()
                .map(|v| Instant::now() >= *v)
                .unwrap_or(true)
    }
}

impl Drop for BackupLease {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = self.shared.storage.delete(&self.shared.handle);
    }
}
