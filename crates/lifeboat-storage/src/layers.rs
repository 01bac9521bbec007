//! Wrappers that any backend can be put inside: retries, a limit on requests in flight, and
//! fault injection. They keep the backends simple: a backend reports an error once and says
//! whether a retry can help; the policy of what to do about it lives here, once.
//!
//! The usual stack is [`layered`]: retry above the limit (a request waiting out its backoff
//! does not hold a connection slot), faults beneath it (an injected fault looks to the retry
//! layer exactly like a network error, latency included).

use crate::{FileKind, Handle, Result, Storage, StorageError};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Retry
// ---------------------------------------------------------------------------------------------

/// How hard [`RetryStorage`] tries. The defaults ride out a minute-scale blip of a remote
/// service (8 attempts, waits of up to 0.25, 0.5, 1, 2, 4, 8, 15 s) without making a dead
/// one look alive for long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 0 counts as 1.
    pub attempts: u32,
    /// The upper bound of the first wait; it doubles per retry.
    pub base: Duration,
    /// No wait is longer than this.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 8,
            base: Duration::from_millis(250),
            max: Duration::from_secs(15),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0 for the first retry): uniformly random in
    /// `[0, min(max, base * 2^retry)]`. Full jitter, because many threads (or many machines
    /// backing up to one bucket) that failed together must not all come back together.
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        let cap = self.base.saturating_mul(factor).min(self.max);
        let cap_nanos = cap.as_nanos();
        // Scale a 64-bit random number onto [0, cap]: no modulo bias worth speaking of.
        let nanos = (u128::from(random_u64()) * (cap_nanos + 1)) >> 64;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// A 64-bit random number for jitter. Should the system generator fail, a clock-seeded
/// mix still spreads the waits, which is all jitter needs.
fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_ok() {
        return u64::from_le_bytes(b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    splitmix64(t)
}

/// Told about every retry before its wait: the error that caused it, the number of the
/// attempt about to be made (2 for the first retry, up to `policy.attempts`) and the wait.
/// Lets the CLI say "retrying ... in 1.2 s (attempt 3/8)" instead of going quiet.
pub type RetryHook = Box<dyn Fn(&StorageError, u32, Duration) + Send + Sync>;

type SharedHook = Arc<dyn Fn(&StorageError, u32, Duration) + Send + Sync>;

/// Retries operations that failed with an error a retry can help
/// ([`StorageError::is_retryable`]), with exponential backoff and full jitter. Errors that
/// a retry cannot change (NotFound, AlreadyExists, Auth, PermissionDenied, NoSpace,
/// NoSuchLocation, Truncated) come back at once: waiting minutes to report a wrong password
/// helps no one.
///
/// A retried request may have landed before its reply was lost, so the operations that are
/// not idempotent on their face are made so here: `create_new` recognises its own earlier
/// write, `delete` accepts that the object is already gone.
pub struct RetryStorage {
    inner: Arc<dyn Storage>,
    policy: RetryPolicy,
    retries: AtomicU64,
    /// Settable after the stack is built and shared ([`layered`] hands out an `Arc`).
    on_retry: RwLock<Option<SharedHook>>,
}

impl RetryStorage {
    pub fn new(inner: Arc<dyn Storage>, policy: RetryPolicy) -> Self {
        RetryStorage {
            inner,
            policy,
            retries: AtomicU64::new(0),
            on_retry: RwLock::new(None),
        }
    }

    /// Installs (or with `None` removes) the hook told about each retry.
    pub fn set_on_retry(&self, hook: Option<RetryHook>) {
        let hook: Option<SharedHook> = hook.map(Arc::from);
        *self.on_retry.write().unwrap_or_else(|e| e.into_inner()) = hook;
    }

    /// Builder form of [`RetryStorage::set_on_retry`].
    pub fn with_on_retry(
        self,
        hook: impl Fn(&StorageError, u32, Duration) + Send + Sync + 'static,
    ) -> Self {
        self.set_on_retry(Some(Box::new(hook)));
        self
    }

    /// Retries performed so far, over all operations and threads: a summary can tell a
    /// clean run from one that limped through a flaky network.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Runs `op` until it succeeds, fails for good, or the attempts are used up; then the
    /// last error comes back unchanged, so its message and retryable flag reach the caller.
    /// `op` is told whether an earlier attempt failed (always with a retryable error, since
    /// nothing else is retried): its request may have been carried out.
    fn run<T>(&self, mut op: impl FnMut(bool) -> Result<T>) -> Result<T> {
        let attempts = self.policy.attempts.max(1);
        let mut attempt = 1;
        loop {
            let err = match op(attempt > 1) {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if !err.is_retryable() || attempt >= attempts {
                return Err(err);
            }
            let wait = self.policy.delay(attempt - 1);
            attempt += 1;
            self.retries.fetch_add(1, Ordering::Relaxed);
            let hook = self
                .on_retry
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let Some(hook) = hook {
                hook(&err, attempt, wait);
            }
            std::thread::sleep(wait);
        }
    }
}

impl Storage for RetryStorage {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn create(&self) -> Result<()> {
        self.inner.create()
    }

    fn put(&self, h: &Handle, data: &[u8]) -> Result<()> {
        // Idempotent: the name is the content hash, a repeated put writes the same bytes.
        self.run(|_| self.inner.put(h, data))
    }

    fn create_new(&self, h: &Handle, data: &[u8]) -> Result<()> {
        self.run(|retried| match self.inner.create_new(h, data) {
            Err(StorageError::AlreadyExists(what)) if retried => {
                // An earlier attempt may have landed with its reply lost. If the object holds
                // our bytes it is our own write; what goes through `create_new` (leases, the
                // config) is sealed with a fresh nonce, so another writer's never matches.
                match self.inner.get(h) {
                    Ok(bytes) if bytes == data => Ok(()),
                    Err(e) if e.is_retryable() => Err(e),
                    _ => Err(StorageError::AlreadyExists(what)),
                }
            }
            r => r,
        })
    }

    fn get(&self, h: &Handle) -> Result<Vec<u8>> {
        self.run(|_| self.inner.get(h))
    }

    fn get_range(&self, h: &Handle, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.run(|_| {
            let bytes = self.inner.get_range(h, offset, len)?;
            if (bytes.len() as u64) < len {
                // An object shorter than asked for is reported as `Truncated` by the backend;
                // fewer bytes without an error is a connection cut somewhere on the way.
                return Err(StorageError::Remote {
                    what: h.to_string(),
                    message: format!(
                        "short read: got {} of {len} bytes at offset {offset} (connection cut?)",
                        bytes.len()
                    ),
                    retryable: true,
                });
            }
            Ok(bytes)
        })
    }

    fn size(&self, h: &Handle) -> Result<u64> {
        self.run(|_| self.inner.size(h))
    }

    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>> {
        self.run(|_| self.inner.list(kind))
    }

    fn delete(&self, h: &Handle) -> Result<()> {
        self.run(|retried| match self.inner.delete(h) {
            // The earlier attempt deleted it and its reply was lost: the object is gone,
            // which is what was asked for.
            Err(StorageError::NotFound(_)) if retried => Ok(()),
            r => r,
        })
    }

    fn parallelism(&self) -> usize {
        self.inner.parallelism()
    }

    fn remove_stale_temporaries(&self, age: Duration) -> Result<usize> {
        self.inner.remove_stale_temporaries(age)
    }
}

// ---------------------------------------------------------------------------------------------
// Limit
// ---------------------------------------------------------------------------------------------

/// At most N requests in flight at once, over all threads. Remote services throttle or drop
/// connections past a point, and a restore with many reader threads would otherwise open as
/// many connections as it has threads.
pub struct LimitStorage {
    inner: Arc<dyn Storage>,
    limit: usize,
    in_flight: Mutex<usize>,
    freed: Condvar,
}

/// A slot held for one request; handing it back on drop means a request that panics (or
/// returns early) never leaks its slot and starves the others.
struct Permit<'a> {
    owner: &'a LimitStorage,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut n = self
            .owner
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *n = n.saturating_sub(1);
        drop(n);
        self.owner.freed.notify_one();
    }
}

impl LimitStorage {
    /// `limit` 0 counts as 1: a limit that lets nothing through would hang every caller.
    pub fn new(inner: Arc<dyn Storage>, limit: usize) -> Self {
        LimitStorage {
            inner,
            limit: limit.max(1),
            in_flight: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    fn acquire(&self) -> Permit<'_> {
        let mut n = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= self.limit {
            n = self.freed.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
        Permit { owner: self }
    }
}

impl Storage for LimitStorage {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn create(&self) -> Result<()> {
        let _p = self.acquire();
        self.inner.create()
    }

    fn put(&self, h: &Handle, data: &[u8]) -> Result<()> {
        let _p = self.acquire();
        self.inner.put(h, data)
    }

    fn create_new(&self, h: &Handle, data: &[u8]) -> Result<()> {
        let _p = self.acquire();
        self.inner.create_new(h, data)
    }

    fn get(&self, h: &Handle) -> Result<Vec<u8>> {
        let _p = self.acquire();
        self.inner.get(h)
    }

    fn get_range(&self, h: &Handle, offset: u64, len: u64) -> Result<Vec<u8>> {
        let _p = self.acquire();
        self.inner.get_range(h, offset, len)
    }

    fn size(&self, h: &Handle) -> Result<u64> {
        let _p = self.acquire();
        self.inner.size(h)
    }

    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>> {
        let _p = self.acquire();
        self.inner.list(kind)
    }

    fn delete(&self, h: &Handle) -> Result<()> {
        let _p = self.acquire();
        self.inner.delete(h)
    }

    /// More threads than slots would only queue at the limit.
    fn parallelism(&self) -> usize {
        self.inner.parallelism().min(self.limit)
    }

    fn remove_stale_temporaries(&self, age: Duration) -> Result<usize> {
        let _p = self.acquire();
        self.inner.remove_stale_temporaries(age)
    }
}

// ---------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------

/// The environment variable [`FaultSpec::from_env`] reads. For tests and benchmarks only:
/// it makes a storage fail on purpose.
pub const FAULTS_ENV: &str = "LIFEBOAT_FAULTS";

/// What [`FaultStorage`] injects, written like `error=0.05,latency=20ms,truncate=0.02,
/// lost-reply=0.02,seed=7`. Exists so the retry paths, which a healthy local disk never
/// takes, are exercised by tests and measured by the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FaultSpec {
    /// Probability that an operation fails before reaching the storage.
    pub error: f64,
    /// Added to every operation, like a network round trip.
    pub latency: Duration,
    /// Probability that a read's body is cut: `get_range` returns a shorter prefix, `get`
    /// fails.
    pub truncate: f64,
    /// Probability that a write or delete is carried out and then reported as failed, the
    /// case that makes retried writes dangerous.
    pub lost_reply: f64,
    /// Makes the sequence of faults reproducible; without it each run differs.
    pub seed: Option<u64>,
}

const FAULT_KEYS: &str = "error, latency, truncate, lost-reply, seed";

impl FaultSpec {
    pub fn parse(spec: &str) -> std::result::Result<FaultSpec, String> {
        let mut out = FaultSpec::default();
        let mut seen: Vec<&str> = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(format!(
                    "fault spec: `{part}` is not key=value (keys: {FAULT_KEYS})"
                ));
            };
            let (key, value) = (key.trim(), value.trim());
            if seen.contains(&key) {
                return Err(format!("fault spec: `{key}` is given twice"));
            }
            match key {
                "error" => out.error = parse_probability(key, value)?,
                "truncate" => out.truncate = parse_probability(key, value)?,
                "lost-reply" => out.lost_reply = parse_probability(key, value)?,
                "latency" => out.latency = parse_duration(key, value)?,
                "seed" => {
                    out.seed = Some(value.parse().map_err(|_| {
                        format!("fault spec: seed must be a whole number, not `{value}`")
                    })?)
                }
                _ => {
                    return Err(format!(
                        "fault spec: unknown key `{key}` (keys: {FAULT_KEYS})"
                    ));
                }
            }
            seen.push(key);
        }
        Ok(out)
    }

    /// The spec in [`FAULTS_ENV`], if that is set and not empty. For tests and benchmarks
    /// only; a real backup has no business failing on purpose.
    pub fn from_env() -> Option<std::result::Result<FaultSpec, String>> {
        let v = std::env::var(FAULTS_ENV).ok()?;
        if v.trim().is_empty() {
            return None;
        }
        Some(FaultSpec::parse(&v).map_err(|e| format!("{FAULTS_ENV}: {e}")))
    }
}

/// Written back in the form [`FaultSpec::parse`] reads, so a benchmark can record what it
/// ran with.
impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error={},latency=", self.error)?;
        if self.latency.subsec_nanos().is_multiple_of(1_000_000) {
            write!(f, "{}ms", self.latency.as_millis())?;
        } else {
            write!(f, "{}s", self.latency.as_secs_f64())?;
        }
        write!(
            f,
            ",truncate={},lost-reply={}",
            self.truncate, self.lost_reply
        )?;
        if let Some(seed) = self.seed {
            write!(f, ",seed={seed}")?;
        }
        Ok(())
    }
}

fn parse_probability(key: &str, value: &str) -> std::result::Result<f64, String> {
    match value.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "fault spec: {key} must be a probability from 0 to 1, not `{value}`"
        )),
    }
}

fn parse_duration(key: &str, value: &str) -> std::result::Result<Duration, String> {
    let bad =
        || format!("fault spec: {key} must be a duration such as 20ms or 1.5s, not `{value}`");
    let (number, scale) = if let Some(n) = value.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1.0)
    } else if value == "0" {
        ("0", 1.0)
    } else {
        return Err(bad());
    };
    let n: f64 = number.trim().parse().map_err(|_| bad())?;
    if !n.is_finite() || n < 0.0 {
        return Err(bad());
    }
    Duration::try_from_secs_f64(n * scale).map_err(|_| bad())
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// How many faults of each sort a [`FaultStorage`] injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultCounts {
    pub errors: u64,
    pub truncated: u64,
    pub lost_replies: u64,
}

/// Makes a storage misbehave the way networks do, by [`FaultSpec`]. `list` and `size` get
/// errors and latency; reads also get cut bodies; writes and deletes also get lost replies.
/// `create` and `remove_stale_temporaries` pass through untouched.
pub struct FaultStorage {
    inner: Arc<dyn Storage>,
    spec: FaultSpec,
    /// A splitmix64 counter: lock-free, and one seed gives one sequence of draws.
    rng: AtomicU64,
    errors: AtomicU64,
    truncated: AtomicU64,
    lost_replies: AtomicU64,
}

impl FaultStorage {
    pub fn new(inner: Arc<dyn Storage>, spec: FaultSpec) -> Self {
        let seed = spec.seed.unwrap_or_else(random_u64);
        FaultStorage {
            inner,
            spec,
            rng: AtomicU64::new(seed),
            errors: AtomicU64::new(0),
            truncated: AtomicU64::new(0),
            lost_replies: AtomicU64::new(0),
        }
    }

    pub fn spec(&self) -> &FaultSpec {
        &self.spec
    }

    /// Faults injected so far, of all sorts.
    pub fn injected(&self) -> u64 {
        let c = self.counts();
        c.errors + c.truncated + c.lost_replies
    }

    pub fn counts(&self) -> FaultCounts {
        FaultCounts {
            errors: self.errors.load(Ordering::Relaxed),
            truncated: self.truncated.load(Ordering::Relaxed),
            lost_replies: self.lost_replies.load(Ordering::Relaxed),
        }
    }

    fn next_u64(&self) -> u64 {
        splitmix64(self.rng.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed))
    }

    /// True with probability `p`; uniform in [0, 1) from the top 53 bits, so `p = 1.0`
    /// always hits and `p = 0.0` never does.
    fn roll(&self, p: f64) -> bool {
        p > 0.0 && ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    fn fault(what: String, message: &str) -> StorageError {
        StorageError::Remote {
            what,
            message: format!("injected fault: {message}"),
            retryable: true,
        }
    }

    /// Latency, then maybe an error before the request "leaves".
    fn before(&self, what: impl FnOnce() -> String) -> Result<()> {
        if !self.spec.latency.is_zero() {
            std::thread::sleep(self.spec.latency);
        }
        if self.roll(self.spec.error) {
            self.errors.fetch_add(1, Ordering::Relaxed);
            return Err(Self::fault(what(), "connection reset"));
        }
        Ok(())
    }

    /// After a write or delete that was carried out: maybe lose its reply.
    fn after_write(&self, h: &Handle, r: Result<()>) -> Result<()> {
        if r.is_ok() && self.roll(self.spec.lost_reply) {
            self.lost_replies.fetch_add(1, Ordering::Relaxed);
            return Err(Self::fault(h.to_string(), "reply lost"));
        }
        r
    }
}

impl Storage for FaultStorage {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn create(&self) -> Result<()> {
        self.inner.create()
    }

    fn put(&self, h: &Handle, data: &[u8]) -> Result<()> {
        self.before(|| h.to_string())?;
        let r = self.inner.put(h, data);
        self.after_write(h, r)
    }

    fn create_new(&self, h: &Handle, data: &[u8]) -> Result<()> {
        self.before(|| h.to_string())?;
        let r = self.inner.create_new(h, data);
        self.after_write(h, r)
    }

    fn get(&self, h: &Handle) -> Result<Vec<u8>> {
        self.before(|| h.to_string())?;
        let bytes = self.inner.get(h)?;
        if self.roll(self.spec.truncate) {
            // A whole-object read has no length to check against, so a cut body has to
            // surface as an error, as an HTTP client's content-length check would make it.
            self.truncated.fetch_add(1, Ordering::Relaxed);
            return Err(Self::fault(h.to_string(), "body cut"));
        }
        Ok(bytes)
    }

    fn get_range(&self, h: &Handle, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.before(|| h.to_string())?;
        let mut bytes = self.inner.get_range(h, offset, len)?;
        if !bytes.is_empty() && self.roll(self.spec.truncate) {
            // Silently short, the nasty case: only the caller's length check catches it.
            let keep = (self.next_u64() % bytes.len() as u64) as usize;
            bytes.truncate(keep);
            self.truncated.fetch_add(1, Ordering::Relaxed);
        }
        Ok(bytes)
    }

    fn size(&self, h: &Handle) -> Result<u64> {
        self.before(|| h.to_string())?;
        self.inner.size(h)
    }

    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>> {
        self.before(|| format!("listing {}", kind.dir()))?;
        self.inner.list(kind)
    }

    fn delete(&self, h: &Handle) -> Result<()> {
        self.before(|| h.to_string())?;
        let r = self.inner.delete(h);
        self.after_write(h, r)
    }

    fn parallelism(&self) -> usize {
        self.inner.parallelism()
    }

    fn remove_stale_temporaries(&self, age: Duration) -> Result<usize> {
        self.inner.remove_stale_temporaries(age)
    }
}

/// The usual stack: retry, above a limit of `connections` requests in flight, above the
/// injected faults if any, above `inner`.
pub fn layered(
    inner: Arc<dyn Storage>,
    connections: usize,
    policy: RetryPolicy,
    faults: Option<FaultSpec>,
) -> Arc<RetryStorage> {
    let base: Arc<dyn Storage> = match faults {
        Some(spec) => Arc::new(FaultStorage::new(inner, spec)),
        None => inner,
    };
    let limited: Arc<dyn Storage> = Arc::new(LimitStorage::new(base, connections));
    Arc::new(RetryStorage::new(limited, policy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalStorage;
    use std::collections::HashMap;
    use std::sync::atomic::AtomicUsize;

    fn quick(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts,
            base: Duration::from_millis(1),
            max: Duration::from_millis(2),
        }
    }

    fn pack(i: usize) -> Handle {
        Handle::new(FileKind::Pack, format!("{i:02x}{}", "ab".repeat(31)))
    }

    fn payload(i: usize) -> Vec<u8> {
        (0..1000 + i * 37).map(|j| (j * 31 + i * 7) as u8).collect()
    }

    /// An in-memory storage with the contract's semantics.
    #[derive(Default)]
    struct Mem {
        objects: Mutex<HashMap<String, Vec<u8>>>,
    }

    impl Storage for Mem {
        fn location(&self) -> String {
            "memory".into()
        }
        fn create(&self) -> Result<()> {
            Ok(())
        }
        fn put(&self, h: &Handle, data: &[u8]) -> Result<()> {
            self.objects.lock().unwrap().insert(h.path(), data.to_vec());
            Ok(())
        }
        fn create_new(&self, h: &Handle, data: &[u8]) -> Result<()> {
            let mut m = self.objects.lock().unwrap();
            if m.contains_key(&h.path()) {
                return Err(StorageError::AlreadyExists(h.path()));
            }
            m.insert(h.path(), data.to_vec());
            Ok(())
        }
        fn get(&self, h: &Handle) -> Result<Vec<u8>> {
            self.objects
                .lock()
                .unwrap()
                .get(&h.path())
                .cloned()
                .ok_or_else(|| StorageError::NotFound(h.path()))
        }
        fn get_range(&self, h: &Handle, offset: u64, len: u64) -> Result<Vec<u8>> {
            let all = self.get(h)?;
            let (o, l) = (offset as usize, len as usize);
            if o + l > all.len() {
                return Err(StorageError::Truncated {
                    what: h.path(),
                    offset,
                    wanted: len,
                    len: all.len() as u64,
                });
            }
            Ok(all[o..o + l].to_vec())
        }
        fn size(&self, h: &Handle) -> Result<u64> {
            self.get(h).map(|b| b.len() as u64)
        }
        fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>> {
            let prefix = format!("{}/", kind.dir());
            let m = self.objects.lock().unwrap();
            let mut out: Vec<_> = m
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .map(|(k, v)| (k.rsplit('/').next().unwrap().to_string(), v.len() as u64))
                .collect();
            out.sort();
            Ok(out)
        }
        fn delete(&self, h: &Handle) -> Result<()> {
            self.objects
                .lock()
                .unwrap()
                .remove(&h.path())
                .map(|_| ())
                .ok_or_else(|| StorageError::NotFound(h.path()))
        }
        fn parallelism(&self) -> usize {
            16
        }
    }

    /// Fails every operation with a clone of one error, counting the calls.
    struct Failing {
        make: fn() -> StorageError,
        calls: AtomicUsize,
    }

    impl Failing {
        fn new(make: fn() -> StorageError) -> Self {
            Failing {
                make,
                calls: AtomicUsize::new(0),
            }
        }
        fn fail<T>(&self) -> Result<T> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Err((self.make)())
        }
    }

    impl Storage for Failing {
        fn location(&self) -> String {
            "failing".into()
        }
        fn create(&self) -> Result<()> {
            self.fail()
        }
        fn put(&self, _: &Handle, _: &[u8]) -> Result<()> {
            self.fail()
        }
        fn create_new(&self, _: &Handle, _: &[u8]) -> Result<()> {
            self.fail()
        }
        fn get(&self, _: &Handle) -> Result<Vec<u8>> {
            self.fail()
        }
        fn get_range(&self, _: &Handle, _: u64, _: u64) -> Result<Vec<u8>> {
            self.fail()
        }
        fn size(&self, _: &Handle) -> Result<u64> {
            self.fail()
        }
        fn list(&self, _: FileKind) -> Result<Vec<(String, u64)>> {
            self.fail()
        }
        fn delete(&self, _: &Handle) -> Result<()> {
            self.fail()
        }
    }

    /// The first `fail_first` write calls fail with a retryable error without touching the
    /// inner storage; ranged reads return `short` bytes fewer than asked `short_reads` times.
    struct Flaky {
        inner: Arc<dyn Storage>,
        fail_first: AtomicUsize,
        short_reads: AtomicUsize,
        calls: AtomicUsize,
    }

    impl Flaky {
        fn new(inner: Arc<dyn Storage>, fail_first: usize, short_reads: usize) -> Self {
            Flaky {
                inner,
                fail_first: AtomicUsize::new(fail_first),
                short_reads: AtomicUsize::new(short_reads),
                calls: AtomicUsize::new(0),
            }
        }
        fn take(counter: &AtomicUsize) -> bool {
            counter
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        }
        fn maybe_fail(&self, h: &Handle) -> Result<()> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if Self::take(&self.fail_first) {
                return Err(StorageError::Remote {
                    what: h.path(),
                    message: "connect timed out".into(),
                    retryable: true,
                });
            }
            Ok(())
        }
    }

    impl Storage for Flaky {
        fn location(&self) -> String {
            self.inner.location()
        }
        fn create(&self) -> Result<()> {
            self.inner.create()
        }
        fn put(&self, h: &Handle, data: &[u8]) -> Result<()> {
            self.maybe_fail(h)?;
            self.inner.put(h, data)
        }
        fn create_new(&self, h: &Handle, data: &[u8]) -> Result<()> {
            self.maybe_fail(h)?;
            self.inner.create_new(h, data)
        }
        fn get(&self, h: &Handle) -> Result<Vec<u8>> {
            self.inner.get(h)
        }
        fn get_range(&self, h: &Handle, offset: u64, len: u64) -> Result<Vec<u8>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let mut b = self.inner.get_range(h, offset, len)?;
            if Self::take(&self.short_reads) {
                b.truncate(b.len() / 2);
            }
            Ok(b)
        }
        fn size(&self, h: &Handle) -> Result<u64> {
            self.inner.size(h)
        }
        fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>> {
            self.inner.list(kind)
        }
        fn delete(&self, h: &Handle) -> Result<()> {
            self.maybe_fail(h)?;
            self.inner.delete(h)
        }
    }

    #[test]
    fn retry_gets_through_injected_faults_and_every_object_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let local = Arc::new(LocalStorage::new(dir.path()).without_sync());
        local.create().unwrap();
        let spec =
            FaultSpec::parse("error=0.3,truncate=0.2,lost-reply=0.2,latency=0ms,seed=7").unwrap();
        let faults = Arc::new(FaultStorage::new(local, spec));
        let limited = Arc::new(LimitStorage::new(faults.clone(), 4));
        let s = RetryStorage::new(limited, quick(30));
        for i in 0..40 {
            s.put(&pack(i), &payload(i)).unwrap();
        }
        let lease = Handle::new(FileKind::Lock, "lease");
        s.create_new(&lease, b"holder 1").unwrap();
        let listed = s.list(FileKind::Pack).unwrap();
        assert_eq!(listed.len(), 40);
        for i in 0..40 {
            let want = payload(i);
            assert_eq!(s.get(&pack(i)).unwrap(), want);
            assert_eq!(s.size(&pack(i)).unwrap(), want.len() as u64);
            let got = s.get_range(&pack(i), 100, 500).unwrap();
            assert_eq!(got, &want[100..600]);
        }
        for i in 0..40 {
            s.delete(&pack(i)).unwrap();
        }
        assert!(s.list(FileKind::Pack).unwrap().is_empty());
        let c = faults.counts();
        assert!(
            c.errors > 0 && c.truncated > 0 && c.lost_replies > 0,
            "{c:?}"
        );
        // Every fault, cut bodies and lost replies included, cost exactly one retry.
        assert_eq!(s.retries(), faults.injected());
    }

    #[test]
    fn same_seed_same_faults() {
        let run = || {
            let f = FaultStorage::new(
                Arc::new(Mem::default()),
                FaultSpec::parse("error=0.5,seed=42").unwrap(),
            );
            (0..64)
                .map(|i| f.put(&pack(i), b"x").is_ok())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn errors_a_retry_cannot_fix_are_not_retried() {
        let cases: [fn() -> StorageError; 7] = [
            || StorageError::NotFound("x".into()),
            || StorageError::AlreadyExists("x".into()),
            || StorageError::Auth("bad password".into()),
            || StorageError::PermissionDenied("x".into()),
            || StorageError::NoSpace("x".into()),
            || StorageError::NoSuchLocation("no bucket".into()),
            || StorageError::Remote {
                what: "x".into(),
                message: "400 bad request".into(),
                retryable: false,
            },
        ];
        let h = pack(1);
        for make in cases {
            let inner = Arc::new(Failing::new(make));
            let s = RetryStorage::new(inner.clone(), quick(5));
            assert!(s.put(&h, b"x").is_err());
            assert!(s.create_new(&h, b"x").is_err());
            assert!(s.get(&h).is_err());
            assert!(s.get_range(&h, 0, 1).is_err());
            assert!(s.size(&h).is_err());
            assert!(s.list(FileKind::Pack).is_err());
            assert!(s.delete(&h).is_err());
            assert_eq!(inner.calls.load(Ordering::SeqCst), 7, "{}", make());
            assert_eq!(s.retries(), 0);
        }
    }

    #[test]
    fn retryable_errors_use_all_attempts_and_the_last_error_survives() {
        let inner = Arc::new(Failing::new(|| StorageError::Remote {
            what: "data/ab/abc".into(),
            message: "503 slow down".into(),
            retryable: true,
        }));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let s = RetryStorage::new(inner.clone(), quick(4)).with_on_retry(move |e, n, wait| {
            assert!(e.is_retryable());
            assert!(wait <= Duration::from_millis(2));
            seen2.lock().unwrap().push(n);
        });
        let e = s.get(&pack(1)).unwrap_err();
        assert!(e.is_retryable());
        assert_eq!(e.to_string(), "data/ab/abc: 503 slow down");
        assert_eq!(inner.calls.load(Ordering::SeqCst), 4);
        assert_eq!(s.retries(), 3);
        assert_eq!(*seen.lock().unwrap(), vec![2, 3, 4]);
        s.set_on_retry(None);
        let _ = s.size(&pack(1));
        assert_eq!(seen.lock().unwrap().len(), 3);
        assert_eq!(s.retries(), 6);
    }

    #[test]
    fn create_new_recognises_its_own_write_after_a_lost_reply() {
        let mem = Arc::new(Mem::default());
        let faults = Arc::new(FaultStorage::new(
            mem.clone(),
            FaultSpec::parse("lost-reply=1.0,seed=1").unwrap(),
        ));
        let s = RetryStorage::new(faults.clone(), quick(3));
        let h = Handle::new(FileKind::Lock, "lease");
        s.create_new(&h, b"mine").unwrap();
        assert_eq!(mem.get(&h).unwrap(), b"mine");
        assert_eq!(faults.counts().lost_replies, 1);
        // Not retried, so nothing to recognise: the object exists, whoever wrote it.
        assert!(matches!(
            s.create_new(&h, b"theirs"),
            Err(StorageError::AlreadyExists(_))
        ));
        assert!(matches!(
            s.create_new(&h, b"mine"),
            Err(StorageError::AlreadyExists(_))
        ));
        assert_eq!(mem.get(&h).unwrap(), b"mine");
    }

    #[test]
    fn create_new_after_a_failed_attempt_does_not_claim_someone_elses_object() {
        let mem = Arc::new(Mem::default());
        let h = Handle::new(FileKind::Lock, "lease");
        mem.create_new(&h, b"theirs").unwrap();
        let flaky = Arc::new(Flaky::new(mem.clone(), 1, 0));
        let s = RetryStorage::new(flaky.clone(), quick(5));
        assert!(matches!(
            s.create_new(&h, b"mine"),
            Err(StorageError::AlreadyExists(_))
        ));
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 2);
        assert_eq!(mem.get(&h).unwrap(), b"theirs");
    }

    #[test]
    fn delete_whose_reply_was_lost_succeeds() {
        let mem = Arc::new(Mem::default());
        let h = pack(3);
        mem.put(&h, b"x").unwrap();
        let faults = Arc::new(FaultStorage::new(
            mem.clone(),
            FaultSpec::parse("lost-reply=1").unwrap(),
        ));
        let s = RetryStorage::new(faults, quick(3));
        s.delete(&h).unwrap();
        assert!(matches!(mem.get(&h), Err(StorageError::NotFound(_))));
        // Missing from the start is still NotFound.
        assert!(matches!(s.delete(&h), Err(StorageError::NotFound(_))));
    }

    #[test]
    fn short_ranged_reads_are_retried() {
        let mem = Arc::new(Mem::default());
        let h = pack(5);
        let data = payload(5);
        mem.put(&h, &data).unwrap();
        let flaky = Arc::new(Flaky::new(mem.clone(), 0, 2));
        let s = RetryStorage::new(flaky.clone(), quick(5));
        assert_eq!(s.get_range(&h, 10, 400).unwrap(), &data[10..410]);
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 3);
        assert_eq!(s.retries(), 2);

        // Always short: the final error is retryable and names the object.
        let faults = Arc::new(FaultStorage::new(
            mem,
            FaultSpec::parse("truncate=1,seed=3").unwrap(),
        ));
        let s = RetryStorage::new(faults.clone(), quick(3));
        let e = s.get_range(&h, 0, 100).unwrap_err();
        assert!(e.is_retryable());
        assert!(e.to_string().contains(&h.path()), "{e}");
        assert_eq!(faults.counts().truncated, 3);
        let e = s.get(&h).unwrap_err();
        assert!(e.is_retryable());
        assert!(e.to_string().contains("injected fault: body cut"), "{e}");
    }

    #[test]
    fn truncated_objects_are_not_retried() {
        let mem = Arc::new(Mem::default());
        let h = pack(6);
        mem.put(&h, b"short").unwrap();
        let flaky = Arc::new(Flaky::new(mem, 0, 0));
        let s = RetryStorage::new(flaky.clone(), quick(5));
        assert!(matches!(
            s.get_range(&h, 0, 100),
            Err(StorageError::Truncated { .. })
        ));
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 1);
    }

    /// Tracks the most operations it ever saw in flight at once.
    struct Gauge {
        now: AtomicUsize,
        max: AtomicUsize,
        panic_on_get: bool,
    }

    impl Gauge {
        fn new(panic_on_get: bool) -> Self {
            Gauge {
                now: AtomicUsize::new(0),
                max: AtomicUsize::new(0),
                panic_on_get,
            }
        }
        fn enter(&self) -> Result<()> {
            let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.max.fetch_max(n, Ordering::SeqCst);
            std::thread::sleep(Duration::from_micros(300));
            self.now.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        }
    }

    impl Storage for Gauge {
        fn location(&self) -> String {
            "gauge".into()
        }
        fn create(&self) -> Result<()> {
            self.enter()
        }
        fn put(&self, _: &Handle, _: &[u8]) -> Result<()> {
            self.enter()
        }
        fn create_new(&self, _: &Handle, _: &[u8]) -> Result<()> {
            self.enter()
        }
        fn get(&self, _: &Handle) -> Result<Vec<u8>> {
            assert!(!self.panic_on_get, "backend bug");
            self.enter().map(|_| Vec::new())
        }
        fn get_range(&self, _: &Handle, _: u64, _: u64) -> Result<Vec<u8>> {
            self.enter().map(|_| Vec::new())
        }
        fn size(&self, _: &Handle) -> Result<u64> {
            self.enter().map(|_| 0)
        }
        fn list(&self, _: FileKind) -> Result<Vec<(String, u64)>> {
            self.enter().map(|_| Vec::new())
        }
        fn delete(&self, _: &Handle) -> Result<()> {
            self.enter()
        }
        fn parallelism(&self) -> usize {
            32
        }
    }

    #[test]
    fn limit_is_never_exceeded() {
        let gauge = Arc::new(Gauge::new(false));
        let s = Arc::new(LimitStorage::new(gauge.clone(), 3));
        assert_eq!(s.parallelism(), 3);
        std::thread::scope(|sc| {
            for t in 0..8 {
                let s = s.clone();
                sc.spawn(move || {
                    for i in 0..25 {
                        let h = pack(t * 100 + i);
                        s.put(&h, b"x").unwrap();
                        s.get(&h).unwrap();
                        s.get_range(&h, 0, 0).unwrap();
                        s.size(&h).unwrap();
                        s.delete(&h).unwrap();
                    }
                });
            }
        });
        let max = gauge.max.load(Ordering::SeqCst);
        assert!((1..=3).contains(&max), "{max} in flight");
        assert_eq!(*s.in_flight.lock().unwrap(), 0);
        assert_eq!(
            LimitStorage::new(Arc::new(Mem::default()), 64).parallelism(),
            16
        );
        assert_eq!(LimitStorage::new(Arc::new(Mem::default()), 0).limit(), 1);
    }

    #[test]
    fn a_panicking_request_gives_its_slot_back() {
        let s = Arc::new(LimitStorage::new(Arc::new(Gauge::new(true)), 1));
        let s2 = s.clone();
        let joined = std::thread::spawn(move || s2.get(&pack(1))).join();
        assert!(joined.is_err());
        // With the slot leaked this would hang.
        s.put(&pack(1), b"x").unwrap();
        assert_eq!(*s.in_flight.lock().unwrap_or_else(|e| e.into_inner()), 0);
    }

    #[test]
    fn fault_spec_parses_and_prints() {
        let f = FaultSpec::parse(" error=0.05, latency=20ms,truncate=0.02,lost-reply=0.02,seed=7 ")
            .unwrap();
        assert_eq!(
            f,
            FaultSpec {
                error: 0.05,
                latency: Duration::from_millis(20),
                truncate: 0.02,
                lost_reply: 0.02,
                seed: Some(7),
            }
        );
        assert_eq!(FaultSpec::parse(&f.to_string()).unwrap(), f);
        assert_eq!(
            FaultSpec::parse("latency=1.5s").unwrap().latency,
            Duration::from_millis(1500)
        );
        assert_eq!(
            FaultSpec::parse("latency=0").unwrap().latency,
            Duration::ZERO
        );
        assert_eq!(FaultSpec::parse("").unwrap(), FaultSpec::default());
    }

    #[test]
    fn fault_spec_errors_say_what_is_wrong() {
        let err = |s: &str| FaultSpec::parse(s).unwrap_err();
        assert!(err("eror=0.1").contains("unknown key `eror`"));
        assert!(err("eror=0.1").contains("lost-reply"));
        assert!(err("error").contains("not key=value"));
        assert!(err("error=1.5").contains("probability from 0 to 1"));
        assert!(err("error=-0.1").contains("probability"));
        assert!(err("truncate=NaN").contains("probability"));
        assert!(err("lost-reply=lots").contains("probability"));
        assert!(err("latency=20").contains("duration"));
        assert!(err("latency=20min").contains("duration"));
        assert!(err("latency=-1s").contains("duration"));
        assert!(err("seed=x").contains("whole number"));
        assert!(err("error=0.1,error=0.2").contains("twice"));
    }

    #[test]
    fn backoff_stays_within_its_bounds() {
        let p = RetryPolicy::default();
        for retry in [0, 1, 2, 5, 6, 7, 31, 32, 1000] {
            let cap = p
                .base
                .saturating_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX))
                .min(p.max);
            for _ in 0..50 {
                assert!(p.delay(retry) <= cap);
            }
        }
        assert_eq!(p.attempts, 8);
        assert_eq!(p.base, Duration::from_millis(250));
        assert_eq!(p.max, Duration::from_secs(15));
        // Jitter: not the same wait every time.
        let waits: std::collections::HashSet<_> = (0..20).map(|_| p.delay(3)).collect();
        assert!(waits.len() > 1);
    }

    #[test]
    fn layered_stack_works_end_to_end() {
        let mem = Arc::new(Mem::default());
        let s = layered(
            mem.clone(),
            2,
            quick(30),
            Some(FaultSpec::parse("error=0.3,lost-reply=0.2,seed=9").unwrap()),
        );
        assert_eq!(s.parallelism(), 2);
        assert_eq!(s.location(), "memory");
        std::thread::scope(|sc| {
            for t in 0..4 {
                let s = s.clone();
                sc.spawn(move || {
                    for i in 0..10 {
                        s.put(&pack(t * 10 + i), &payload(i)).unwrap();
                    }
                });
            }
        });
        assert_eq!(s.list(FileKind::Pack).unwrap().len(), 40);
        assert!(s.retries() > 0);
        assert_eq!(
            layered(mem, 4, quick(1), None)
                .list(FileKind::Pack)
                .unwrap()
                .len(),
            40
        );
    }
}
