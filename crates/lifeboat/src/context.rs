//! Finding the repository and its password.

use crate::cli::Global;
use crate::exit::{self, fail};
use anyhow::{Context as _, Result};
use lifeboat_repo::Repository;
use lifeboat_storage::layers::{FaultSpec, RetryPolicy, layered};
use lifeboat_storage::swift_auth::SwiftCredentials;
use lifeboat_storage::{
    LocalStorage, ObjectStorage, RepoUrl, S3Target, SftpStorage, SftpTarget, Storage, SwiftTarget,
};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use zeroize::Zeroizing;

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

fn xdg(var: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => home().join(fallback),
    }
}

/// The default local repository.
pub fn default_repo() -> PathBuf {
    xdg("XDG_DATA_HOME", ".local/share").join("lifeboat/repo")
}

/// Where state that must survive a crash lives (restore journals).
pub fn state_dir() -> PathBuf {
    xdg("XDG_STATE_HOME", ".local/state").join("lifeboat")
}

/// Where `init` on the default repository puts a generated password.
pub fn default_password_file() -> PathBuf {
    xdg("XDG_CONFIG_HOME", ".config").join("lifeboat/password")
}

/// Loads the configuration (the one named, else the default file if it exists) and fills in
/// what the command line left open: the repository and the password source. The command
/// line and the environment win over the file.
pub fn apply_config(mut g: Global) -> Result<Global> {
    let (path, must_exist) = match &g.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(lifeboat_plan::DEFAULT_CONFIG), false),
    };
    if !must_exist && !path.exists() {
        return Ok(g);
    }
    let cfg = lifeboat_plan::Config::load(&path).map_err(|e| fail(exit::ERROR, e.to_string()))?;
    if g.repo.is_none() {
        g.repo = cfg.repository.location.clone();
    }
    if g.password_file.is_none() && g.password_command.is_none() {
        g.password_file = cfg.repository.password_file.clone();
        g.password_command = cfg.repository.password_command.clone();
    }
    g.loaded = Some(Arc::new(cfg));
    Ok(g)
}

/// The loaded configuration, or an error saying how to give one.
pub fn config(g: &Global) -> Result<Arc<lifeboat_plan::Config>> {
    g.loaded.clone().ok_or_else(|| {
        fail(
            exit::ERROR,
            format!(
                "no configuration: components are defined in {} (or the file given by --config / LIFEBOAT_CONFIG); see docs/config.md",
                lifeboat_plan::DEFAULT_CONFIG
            ),
        )
    })
}

pub struct Location {
    pub url: RepoUrl,
    /// How messages name the repository: its path or URL.
    pub display: String,
    pub is_default: bool,
}

/// The ssh arguments every connection gets, to a repository or to a node: `--ssh-config`
/// as `-F`, each `--ssh-option` as `-o`.
pub fn ssh_global_args(g: &Global) -> Vec<String> {
    let mut a = Vec::new();
    if let Some(f) = &g.ssh_config {
        a.extend(["-F".to_string(), f.display().to_string()]);
    }
    for o in &g.ssh_options {
        a.extend(["-o".to_string(), o.clone()]);
    }
    a
}

/// The ssh client to run (LIFEBOAT_SSH_PROGRAM, default `ssh` from PATH).
pub fn ssh_program() -> Option<String> {
    env_nonempty("LIFEBOAT_SSH_PROGRAM")
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The S3 endpoint given outside the URL, if any.
fn s3_endpoint(g: &Global) -> Option<String> {
    g.s3_endpoint
        .clone()
        .or_else(|| env_nonempty("AWS_ENDPOINT_URL_S3"))
        .or_else(|| env_nonempty("AWS_ENDPOINT_URL"))
}

pub fn location(g: &Global) -> Result<Location> {
    match &g.repo {
        None => {
            let path = default_repo();
            Ok(Location {
                display: path.display().to_string(),
                url: RepoUrl::Local(path),
                is_default: true,
            })
        }
        Some(r) => {
            let url = RepoUrl::parse(r, s3_endpoint(g).is_some())
                .map_err(|e| fail(exit::ERROR, e.to_string()))?;
            let display = match &url {
                RepoUrl::Local(p) => p.display().to_string(),
                _ => r.clone(),
            };
            Ok(Location {
                url,
                display,
                is_default: false,
            })
        }
    }
}

/// The repository's storage, with retries (backoff and jitter, retryable errors only) and
/// the connection limit for remote backends, and the fault injection of `LIFEBOAT_FAULTS`
/// (tests and benchmarks).
pub fn storage(g: &Global, loc: &Location) -> Result<Arc<dyn Storage>> {
    let faults = match FaultSpec::from_env() {
        None => None,
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => return Err(fail(exit::ERROR, e)),
    };
    let (inner, connections): (Arc<dyn Storage>, usize) = match &loc.url {
        RepoUrl::Local(p) => {
            if faults.is_none() {
                return Ok(Arc::new(LocalStorage::new(p)));
            }
            (Arc::new(LocalStorage::new(p)), 2)
        }
        RepoUrl::Sftp {
            user,
            host,
            port,
            path,
        } => {
            let n = g.connections.unwrap_or(4).max(1);
            let t = SftpTarget {
                host: host.clone(),
                port: *port,
                user: user.clone(),
                path: path.clone(),
                ssh_args: ssh_global_args(g),
                ssh_program: ssh_program(),
            };
            (Arc::new(SftpStorage::new(t, n)), n)
        }
        RepoUrl::S3 {
            endpoint,
            bucket,
            prefix,
        } => {
            let n = g.connections.unwrap_or(8).max(1);
            let t = S3Target {
                endpoint: s3_endpoint(g).or_else(|| endpoint.clone()),
                bucket: bucket.clone(),
                prefix: prefix.clone(),
                region: g
                    .s3_region
                    .clone()
                    .or_else(|| env_nonempty("AWS_REGION"))
                    .or_else(|| env_nonempty("AWS_DEFAULT_REGION")),
                path_style: g.s3_addressing.as_deref().map(|s| s == "path"),
                access_key: None,
                secret_key: None,
            };
            (Arc::new(ObjectStorage::s3(t, n)?), n)
        }
        RepoUrl::Swift { container, prefix } => {
            let n = g.connections.unwrap_or(8).max(1);
            let creds = SwiftCredentials::from_env()?;
            let t = SwiftTarget {
                container: container.clone(),
                prefix: prefix.clone(),
            };
            (Arc::new(ObjectStorage::swift(t, creds, n)?), n)
        }
    };
    let policy = RetryPolicy {
        attempts: g.retries.max(1),
        ..RetryPolicy::default()
    };
    let layered = layered(inner, connections, policy, faults);
    if !g.quiet {
        layered.set_on_retry(Some(Box::new(|e, attempt, wait| {
            eprintln!(
                "lifeboat: {e}; retrying in {:.1} s (attempt {attempt})",
                wait.as_secs_f64()
            );
        })));
    }
    Ok(layered)
}

fn first_line(bytes: &[u8]) -> Zeroizing<Vec<u8>> {
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let mut line = bytes[..end].to_vec();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Zeroizing::new(line)
}

/// The password, from (in order) LIFEBOAT_PASSWORD, --password-file, --password-command,
/// the generated file of the default repository, or a prompt on a terminal. The value
/// never goes into argv, logs or messages.
pub fn password(g: &Global, loc: &Location, confirm: bool) -> Result<Option<Zeroizing<Vec<u8>>>> {
    if let Some(p) = std::env::var_os("LIFEBOAT_PASSWORD") {
        use std::os::unix::ffi::OsStrExt;
        return Ok(Some(Zeroizing::new(p.as_bytes().to_vec())));
    }
    if let Some(f) = &g.password_file {
        let b = Zeroizing::new(
            std::fs::read(f)
                .with_context(|| format!("reading the password file {}", f.display()))?,
        );
        return Ok(Some(first_line(&b)));
    }
    if let Some(c) = &g.password_command {
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(c)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("running the password command")?;
        let stdout = Zeroizing::new(out.stdout);
        if !out.status.success() {
            return Err(fail(
                exit::ERROR,
                format!("the password command failed ({})", out.status),
            ));
        }
        return Ok(Some(first_line(&stdout)));
    }
    if loc.is_default {
        let f = default_password_file();
        if let Ok(b) = std::fs::read(&f) {
            return Ok(Some(first_line(&Zeroizing::new(b))));
        }
    }
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        let p = Zeroizing::new(
            rpassword::prompt_password("Repository password: ").context("reading the password")?,
        );
        if confirm {
            let again = Zeroizing::new(
                rpassword::prompt_password("Repeat the password: ")
                    .context("reading the password")?,
            );
            if *p != *again {
                return Err(fail(exit::ERROR, "the passwords do not match"));
            }
        }
        return Ok(Some(Zeroizing::new(p.as_bytes().to_vec())));
    }
    Ok(None)
}

pub fn no_password(loc: &Location) -> anyhow::Error {
    fail(
        exit::ERROR,
        format!(
            "no password for the repository at {}: set LIFEBOAT_PASSWORD, --password-file or --password-command, or run on a terminal",
            loc.display
        ),
    )
}

/// Opens the repository and loads its index.
pub fn open(g: &Global) -> Result<Repository> {
    open_with(g, true)
}

/// Opens the repository reading every file from its storage, never from the local cache:
/// for `check` and `repair`, which must judge the repository's own bytes (a good cached
/// copy would hide a damaged original).
pub fn open_uncached(g: &Global) -> Result<Repository> {
    open_with(g, false)
}

fn open_with(g: &Global, cache: bool) -> Result<Repository> {
    let loc = location(g)?;
    let storage = storage(g, &loc)?;
    // A missing repository is reported before asking for a password that cannot help.
    // A storage that cannot be reached, or a bucket that does not exist, is reported the
    // same way.
    match storage.size(&lifeboat_storage::Handle::config()) {
        Err(lifeboat_storage::StorageError::NotFound(_)) => {
            return Err(lifeboat_repo::RepoError::NotARepository(storage.location()).into());
        }
        Err(e) => return Err(e.into()),
        Ok(_) => {}
    }
    let pw = password(g, &loc, false)?.ok_or_else(|| no_password(&loc))?;
    let mut repo = Repository::open(storage, &pw)?;
    // A local repository is its own cache: copying its index to the same kind of disk would
    // only cost space. Remote backends turn the cache on.
    if cache && !g.no_cache && !is_local(&loc) {
        repo.set_cache(Some(
            g.cache_dir
                .clone()
                .unwrap_or_else(|| xdg("XDG_CACHE_HOME", ".cache").join("lifeboat")),
        ));
    }
    let report = repo.load_index()?;
    for (file, e) in report.damaged {
        eprintln!("warning: index segment {file} could not be read and was skipped: {e}");
    }
    Ok(repo)
}

fn is_local(loc: &Location) -> bool {
    matches!(loc.url, RepoUrl::Local(_))
}
