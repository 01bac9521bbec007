//! Repositories on an SFTP server, through the system OpenSSH client: `ssh host -s sftp`, the
//! way `sftp(1)` and restic do it, so `~/.ssh/config`, agents, ProxyJump and known_hosts work
//! as the operator expects.
//!
//! Not OpenDAL's `sftp` service: its writer writes straight into the final name (a reader or
//! a crash sees half a pack), never fsyncs, and it offers no way to pass ssh options such as
//! `-F`. Here the SFTP protocol client (openssh-sftp-client, the crate OpenDAL uses) runs
//! over our own `ssh` child, and every write is: temporary name, `fsync@openssh.com`, then
//! `posix-rename@openssh.com` (replace) or `hardlink@openssh.com` (create-if-absent, which
//! fails when the name exists: the lease primitive).

use crate::remote::runtime;
use crate::{FileKind, Handle, Result, Storage, StorageError};
use bytes::BytesMut;
use futures_core::Stream;
use openssh_sftp_client::error::SftpErrorKind;
use openssh_sftp_client::file::File;
use openssh_sftp_client::{Error as SftpError, Sftp, SftpOptions};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeek};

const TMP_PREFIX: &str = ".tmp-";

/// Where and how to reach the server.
#[derive(Debug, Clone, Default)]
pub struct SftpTarget {
    pub host: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    /// The repository's directory on the server: absolute, or relative to the login directory.
    pub path: String,
    /// Extra arguments for `ssh` before the host, e.g. `-F FILE` or `-o Option=value`.
    pub ssh_args: Vec<String>,
    /// The ssh program (default `ssh`).
    pub ssh_program: Option<String>,
}

struct Conn {
    sftp: Sftp,
    /// What ssh said on stderr (its last few KiB): the reason for a failed login or a lost
    /// connection, shown to the operator instead of a bare "broken pipe".
    stderr: Arc<Mutex<String>>,
    /// The ssh child; dropping the connection kills it.
    _child: tokio::process::Child,
}

pub struct SftpStorage {
    target: SftpTarget,
    root: PathBuf,
    conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
    connections: usize,
}

/// What a failed SFTP call means for the caller.
fn map_err(what: &str, e: &SftpError, stderr: &str) -> StorageError {
    let what = what.to_string();
    match e {
        SftpError::SftpError(kind, msg) => match kind {
            SftpErrorKind::NoSuchFile => StorageError::NotFound(what),
            SftpErrorKind::PermDenied => StorageError::PermissionDenied(what),
            _ => StorageError::Remote {
                what,
                message: format!("the SFTP server refused: {kind:?} {msg}"),
                retryable: false,
            },
        },
        // Everything else is the connection or the server process going away: worth a new
        // connection and another try.
        other => StorageError::Remote {
            what,
            message: {
                let said = stderr.trim();
                if said.is_empty() {
                    format!("SFTP connection lost: {other}")
                } else {
                    format!("SFTP connection lost: {other}; ssh said: {said}")
                }
            },
            retryable: true,
        },
    }
}

fn is_connection_error(e: &SftpError) -> bool {
    !matches!(e, SftpError::SftpError(..))
}

fn random_suffix() -> String {
    let mut rnd = [0u8; 8];
    // A failing OS random source is vanishingly rare; the pid and time still make the name
    // unique enough for a temporary file that is created with O_EXCL anyway.
    if getrandom::fill(&mut rnd).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        rnd = (t ^ u64::from(std::process::id())).to_le_bytes();
    }
    format!("{:016x}", u64::from_le_bytes(rnd))
}

impl SftpStorage {
    pub fn new(target: SftpTarget, connections: usize) -> Self {
        let root = PathBuf::from(&target.path);
        SftpStorage {
            target,
            root,
            conn: tokio::sync::Mutex::new(None),
            connections: connections.max(1),
        }
    }

    fn path(&self, h: &Handle) -> PathBuf {
        self.root.join(h.path())
    }

    fn dir_path(&self, kind: FileKind) -> PathBuf {
        self.root.join(kind.dir())
    }

    fn describe_host(&self) -> String {
        let t = &self.target;
        let user = t
            .user
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let port = t.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("{user}{}{port}", t.host)
    }

    /// Starts `ssh ... -s sftp` and speaks SFTP over its pipes.
    async fn connect(&self) -> Result<Conn> {
        let t = &self.target;
        let mut cmd = tokio::process::Command::new(t.ssh_program.as_deref().unwrap_or("ssh"));
        // BatchMode: a backup job has nobody to type a password or accept a host key; ssh
        // fails with a message instead of hanging. The keepalives notice a dead server.
        cmd.args(["-o", "BatchMode=yes", "-o", "ServerAliveInterval=15"])
            .args(["-o", "ServerAliveCountMax=4", "-o", "ConnectTimeout=20"])
            .args(&t.ssh_args);
        if let Some(p) = t.port {
            cmd.arg("-p").arg(p.to_string());
        }
        if let Some(u) = &t.user {
            cmd.arg("-l").arg(u);
        }
        cmd.arg("-s")
            .arg("--")
            .arg(&t.host)
            .arg("sftp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| StorageError::Remote {
            what: self.location(),
            message: format!(
                "cannot run the ssh client ({e}); install openssh-client or put ssh on PATH"
            ),
            retryable: false,
        })?;
        let (Some(stdin), Some(stdout), Some(mut err)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(StorageError::Remote {
                what: self.location(),
                message: "ssh started without its pipes".into(),
                retryable: true,
            });
        };
        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let stderr = stderr.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = err.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let mut s = stderr.lock().unwrap_or_else(|e| e.into_inner());
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                    if s.len() > 4096 {
                        let cut = s.len() - 4096;
                        let cut = (cut..s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(0);
                        s.drain(..cut);
                    }
                }
            });
        }
        match Sftp::new(stdin, stdout, SftpOptions::new()).await {
            Ok(sftp) => Ok(Conn {
                sftp,
                stderr,
                _child: child,
            }),
            Err(e) => {
                // Let ssh finish writing why it gave up.
                let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                let said = stderr
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .trim()
                    .to_string();
                Err(login_error(&self.describe_host(), &said, &e))
            }
        }
    }

    async fn conn(&self) -> Result<Arc<Conn>> {
        let mut g = self.conn.lock().await;
        if let Some(c) = g.as_ref() {
            return Ok(c.clone());
        }
        let c = Arc::new(self.connect().await?);
        *g = Some(c.clone());
        Ok(c)
    }

    /// Maps an error, and forgets a connection that broke so the next call (a retry) makes
    /// a new one.
    async fn fail(&self, c: &Arc<Conn>, what: &str, e: SftpError) -> StorageError {
        let said = c.stderr.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if is_connection_error(&e) {
            let mut g = self.conn.lock().await;
            if g.as_ref().is_some_and(|cur| Arc::ptr_eq(cur, c)) {
                *g = None;
            }
        }
        map_err(what, &e, &said)
    }

    fn block<T>(&self, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        runtime()?.block_on(f)
    }

    /// Opens `path` for writing, exclusive; makes the folder (a pack sub-folder, marks/,
    /// health/) when it is missing.
    async fn open_new(&self, c: &Arc<Conn>, what: &str, path: &Path) -> Result<File> {
        match c
            .sftp
            .options()
            .write(true)
            .create_new(true)
            .open(path)
            .await
        {
            Ok(f) => return Ok(f),
            Err(SftpError::SftpError(SftpErrorKind::NoSuchFile, _)) => {}
            Err(e) => return Err(self.fail(c, what, e).await),
        }
        let dir = path.parent().unwrap_or(&self.root);
        let mut fs = c.sftp.fs();
        if let Err(e) = fs.create_dir(dir).await {
            // Another writer may have made it first.
            if fs.metadata(dir).await.is_err() {
                return Err(self.fail(c, what, e).await);
            }
        }
        match c
            .sftp
            .options()
            .write(true)
            .create_new(true)
            .open(path)
            .await
        {
            Ok(f) => Ok(f),
            Err(e) => Err(self.fail(c, what, e).await),
        }
    }

    /// Writes `data` to a new temporary file beside `target`, fsynced: once it is renamed
    /// or linked into place, the object is durable.
    async fn write_tmp(
        &self,
        c: &Arc<Conn>,
        h: &Handle,
        target: &Path,
        data: &[u8],
    ) -> Result<PathBuf> {
        let dir = target.parent().unwrap_or(&self.root);
        let tmp = dir.join(format!("{TMP_PREFIX}{}-{}", h.name, random_suffix()));
        let what = h.path();
        let mut file = self.open_new(c, &what, &tmp).await?;
        let piece = PIECE;
        let res = async {
            write_pipelined(&file, data, piece).await?;
            if c.sftp.support_fsync() {
                file.sync_all().await?;
            }
            file.close().await
        }
        .await;
        if let Err(e) = res {
            let err = self.no_space_or(c, &what, e).await;
            let _ = c.sftp.fs().remove_file(&tmp).await;
            return Err(err);
        }
        Ok(tmp)
    }

    /// SFTP v3 reports a full disk as a generic failure; the server's free space says which.
    async fn no_space_or(&self, c: &Arc<Conn>, what: &str, e: SftpError) -> StorageError {
        if matches!(e, SftpError::SftpError(SftpErrorKind::Failure, _))
            && let Ok(v) = c.sftp.fs().statvfs(&self.root).await
            && v.bavail.saturating_mul(v.frsize.max(1)) < 1 << 20
        {
            return StorageError::NoSpace(what.to_string());
        }
        self.fail(c, what, e).await
    }

    async fn list_dir(&self, c: &Arc<Conn>, dir: &Path) -> Result<Vec<(String, u64, bool)>> {
        match read_dir(c.clone(), dir.to_path_buf()).await {
            Ok(v) => Ok(v),
            Err(e) => Err(self.fail(c, &dir.display().to_string(), e).await),
        }
    }
}

/// Requests one transfer keeps in flight. SFTP moves at most ~255 KiB per request and
/// answers each; waiting for an answer before sending the next piece would cost a round trip
/// per piece.
const PIPELINE: usize = 16;
/// Bytes per request: under OpenSSH's 256 KiB limit (the client splits further if a server
/// allows less).
const PIECE: usize = 240 << 10;

/// Writes `data` from offset 0 as concurrent write requests on clones of one handle.
async fn write_pipelined(
    file: &File,
    data: &[u8],
    piece: usize,
) -> std::result::Result<(), SftpError> {
    let data = bytes::Bytes::copy_from_slice(data);
    let piece = piece.max(4096);
    let mut set = tokio::task::JoinSet::new();
    let mut off = 0usize;
    let mut first_err = None;
    loop {
        while first_err.is_none() && off < data.len() && set.len() < PIPELINE {
            let n = piece.min(data.len() - off);
            let (mut f, chunk, at) = (file.clone(), data.slice(off..off + n), off as u64);
            set.spawn(async move {
                std::pin::Pin::new(&mut f).start_seek(std::io::SeekFrom::Start(at))?;
                f.write_all(&chunk).await
            });
            off += n;
        }
        match set.join_next().await {
            None => break,
            Some(Ok(Ok(()))) => {}
            Some(Ok(Err(e))) => {
                first_err.get_or_insert(e);
            }
            Some(Err(e)) => {
                first_err.get_or_insert(SftpError::from(e));
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Reads `len` bytes at `offset` as concurrent read requests; `None` when the file ends
/// first.
async fn read_pipelined(
    file: &File,
    offset: u64,
    len: u64,
    piece: usize,
) -> std::result::Result<Option<Vec<u8>>, SftpError> {
    let piece = piece.max(4096) as u64;
    let mut out = vec![0u8; len as usize];
    let mut set = tokio::task::JoinSet::new();
    let mut next = 0u64;
    let mut short = false;
    let mut first_err = None;
    loop {
        while first_err.is_none() && next < len && set.len() < PIPELINE {
            let n = piece.min(len - next);
            let (mut f, at) = (file.clone(), next);
            set.spawn(async move {
                std::pin::Pin::new(&mut f).start_seek(std::io::SeekFrom::Start(offset + at))?;
                let r = f
                    .read_all(n as usize, BytesMut::with_capacity(n as usize))
                    .await;
                Ok::<_, SftpError>((at, r))
            });
            next += n;
        }
        match set.join_next().await {
            None => break,
            Some(Ok(Ok((at, Ok(b))))) => {
                out[at as usize..at as usize + b.len()].copy_from_slice(&b);
            }
            Some(Ok(Ok((_, Err(SftpError::IOError(e))))))
                if e.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                short = true;
            }
            Some(Ok(Ok((_, Err(e))))) | Some(Ok(Err(e))) => {
                first_err.get_or_insert(e);
            }
            Some(Err(e)) => {
                first_err.get_or_insert(SftpError::from(e));
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None if short => Ok(None),
        None => Ok(Some(out)),
    }
}

/// Names, sizes and is-a-folder of a remote folder's entries.
async fn read_dir(
    c: Arc<Conn>,
    dir: PathBuf,
) -> std::result::Result<Vec<(String, u64, bool)>, SftpError> {
    let rd = c.sftp.fs().open_dir(&dir).await?;
    let mut rd = Box::pin(rd.read_dir());
    let mut out = Vec::new();
    while let Some(entry) = std::future::poll_fn(|cx| rd.as_mut().poll_next(cx)).await {
        let entry = entry?;
        let Some(name) = entry.filename().to_str().map(str::to_string) else {
            continue;
        };
        if name == "." || name == ".." {
            continue;
        }
        let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
        out.push((name, entry.metadata().len().unwrap_or(0), is_dir));
    }
    Ok(out)
}

fn login_error(host: &str, said: &str, e: &SftpError) -> StorageError {
    let lower = said.to_ascii_lowercase();
    let detail = if said.is_empty() {
        e.to_string()
    } else {
        said.to_string()
    };
    if lower.contains("permission denied") || lower.contains("too many authentication failures") {
        StorageError::Auth(format!(
            "ssh login to {host} refused: {detail}. Check the key (IdentityFile), the agent and the user"
        ))
    } else if lower.contains("host key verification failed")
        || lower.contains("remote host identification has changed")
    {
        StorageError::Auth(format!(
            "ssh could not verify the host key of {host}: {detail}. Add the server to known_hosts (ssh-keyscan, or log in once with ssh)"
        ))
    } else if lower.contains("could not resolve hostname") {
        StorageError::NoSuchLocation(format!("ssh to {host}: {detail}"))
    } else if lower.contains("subsystem request failed") {
        StorageError::Remote {
            what: host.to_string(),
            message: format!("the server at {host} offers no SFTP subsystem: {detail}"),
            retryable: false,
        }
    } else {
        StorageError::Remote {
            what: host.to_string(),
            message: format!("ssh to {host} failed: {detail}"),
            retryable: true,
        }
    }
}

impl Storage for SftpStorage {
    fn location(&self) -> String {
        format!("sftp://{}{}", self.describe_host(), self.target.path)
    }

    fn parallelism(&self) -> usize {
        self.connections
    }

    fn create(&self) -> Result<()> {
        self.block(async {
            let c = self.conn().await?;
            let mut fs = c.sftp.fs();
            let cfg = self.path(&Handle::config());
            if fs.metadata(&cfg).await.is_ok() {
                return Err(StorageError::AlreadyExists(self.location()));
            }
            // mkdir -p of the root: each missing component in turn.
            let mut cur = PathBuf::new();
            for comp in self.root.components() {
                cur.push(comp);
                if cur.as_os_str().is_empty() || cur == Path::new("/") {
                    continue;
                }
                if fs.metadata(&cur).await.is_err()
                    && let Err(e) = fs.create_dir(&cur).await
                    && fs.metadata(&cur).await.is_err()
                {
                    return Err(self.fail(&c, &cur.display().to_string(), e).await);
                }
            }
            for kind in FileKind::FOLDERS {
                let d = self.dir_path(kind);
                if let Err(e) = fs.create_dir(&d).await
                    && fs.metadata(&d).await.is_err()
                {
                    return Err(self.fail(&c, &d.display().to_string(), e).await);
                }
            }
            Ok(())
        })
    }

    fn put(&self, h: &Handle, data: &[u8]) -> Result<()> {
        self.block(async {
            let c = self.conn().await?;
            let target = self.path(h);
            let tmp = self.write_tmp(&c, h, &target, data).await?;
            let mut fs = c.sftp.fs();
            let res = if c.sftp.support_posix_rename() {
                fs.rename(&tmp, &target).await
            } else {
                // Plain SFTP rename refuses to replace; the existing object holds the same
                // bytes (names are content hashes), so removing it first loses nothing.
                match fs.rename(&tmp, &target).await {
                    Err(SftpError::SftpError(SftpErrorKind::Failure, _))
                        if fs.metadata(&target).await.is_ok() =>
                    {
                        let _ = fs.remove_file(&target).await;
                        fs.rename(&tmp, &target).await
                    }
                    r => r,
                }
            };
            if let Err(e) = res {
                let _ = fs.remove_file(&tmp).await;
                return Err(self.fail(&c, &h.path(), e).await);
            }
            Ok(())
        })
    }

    fn create_new(&self, h: &Handle, data: &[u8]) -> Result<()> {
        self.block(async {
            let c = self.conn().await?;
            let target = self.path(h);
            if !c.sftp.support_hardlink() {
                // Without hard links, O_EXCL on the final name is the only atomic test; the
                // object is then briefly visible while being written (readers of leases
                // treat an unreadable lease as held).
                let mut f = self
                    .open_new(&c, &h.path(), &target)
                    .await
                    .map_err(|e| match e {
                        StorageError::Remote { .. } => StorageError::AlreadyExists(h.path()),
                        e => e,
                    })?;
                let res = async {
                    f.write_all(data).await?;
                    if c.sftp.support_fsync() {
                        f.sync_all().await?;
                    }
                    f.close().await
                }
                .await;
                if let Err(e) = res {
                    return Err(self.fail(&c, &h.path(), e).await);
                }
                return Ok(());
            }
            let tmp = self.write_tmp(&c, h, &target, data).await?;
            let mut fs = c.sftp.fs();
            let res = fs.hard_link(&tmp, &target).await;
            let _ = fs.remove_file(&tmp).await;
            match res {
                Ok(()) => Ok(()),
                // SFTP v3 has no "exists" status: a failed link onto a name that exists is
                // the answer create-if-absent is asking for.
                Err(SftpError::SftpError(SftpErrorKind::Failure, _))
                    if fs.metadata(&target).await.is_ok() =>
                {
                    Err(StorageError::AlreadyExists(h.path()))
                }
                Err(e) => Err(self.fail(&c, &h.path(), e).await),
            }
        })
    }

    fn get(&self, h: &Handle) -> Result<Vec<u8>> {
        self.block(async {
            let c = self.conn().await?;
            match c.sftp.fs().read(self.path(h)).await {
                Ok(b) => Ok(b.to_vec()),
                Err(e) => Err(self.fail(&c, &h.path(), e).await),
            }
        })
    }

    fn get_range(&self, h: &Handle, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.block(async {
            let c = self.conn().await?;
            let what = h.path();
            let mut f = match c.sftp.open(self.path(h)).await {
                Ok(f) => f,
                Err(e) => return Err(self.fail(&c, &what, e).await),
            };
            let piece = PIECE;
            match read_pipelined(&f, offset, len, piece).await {
                Ok(Some(data)) => {
                    let _ = f.close().await;
                    Ok(data)
                }
                Ok(None) => {
                    let size = f.metadata().await.ok().and_then(|m| m.len()).unwrap_or(0);
                    Err(StorageError::Truncated {
                        what,
                        offset,
                        wanted: len,
                        len: size,
                    })
                }
                Err(e) => Err(self.fail(&c, &what, e).await),
            }
        })
    }

    fn size(&self, h: &Handle) -> Result<u64> {
        self.block(async {
            let c = self.conn().await?;
            match c.sftp.fs().metadata(self.path(h)).await {
                Ok(m) => Ok(m.len().unwrap_or(0)),
                Err(e) => Err(self.fail(&c, &h.path(), e).await),
            }
        })
    }

    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>> {
        self.block(async {
            let c = self.conn().await?;
            let base = self.dir_path(kind);
            let mut dirs = vec![base.clone()];
            if kind == FileKind::Pack {
                dirs = self
                    .list_dir(&c, &base)
                    .await?
                    .into_iter()
                    .filter(|(_, _, d)| *d)
                    .map(|(n, _, _)| base.join(n))
                    .collect();
            }
            // The pack sub-folders are listed side by side: 256 round trips in series would
            // make a listing as slow as the link's latency times 256.
            let mut set = tokio::task::JoinSet::new();
            for d in dirs {
                set.spawn(read_dir(c.clone(), d));
            }
            let mut out = Vec::new();
            while let Some(r) = set.join_next().await {
                let entries = match r {
                    Ok(Ok(v)) => v,
                    Ok(Err(SftpError::SftpError(SftpErrorKind::NoSuchFile, _)))
                        if matches!(kind, FileKind::Marks | FileKind::Health | FileKind::Pack) =>
                    {
                        continue; // made on first use; a pack folder removed meanwhile
                    }
                    Ok(Err(e)) => return Err(self.fail(&c, &base.display().to_string(), e).await),
                    Err(e) => {
                        return Err(StorageError::Remote {
                            what: base.display().to_string(),
                            message: format!("listing task failed: {e}"),
                            retryable: true,
                        });
                    }
                };
                out.extend(
                    entries
                        .into_iter()
                        .filter(|(n, _, d)| !d && !n.starts_with('.'))
                        .map(|(n, s, _)| (n, s)),
                );
            }
            out.sort();
            Ok(out)
        })
    }

    fn delete(&self, h: &Handle) -> Result<()> {
        self.block(async {
            let c = self.conn().await?;
            match c.sftp.fs().remove_file(self.path(h)).await {
                Ok(()) => Ok(()),
                Err(e) => Err(self.fail(&c, &h.path(), e).await),
            }
        })
    }

    fn remove_stale_temporaries(&self, age: Duration) -> Result<usize> {
        self.block(async {
            let c = self.conn().await?;
            let mut removed = 0;
            let mut dirs = vec![self.root.clone()];
            while let Some(d) = dirs.pop() {
                let entries = match self.list_dir(&c, &d).await {
                    Ok(e) => e,
                    Err(StorageError::NotFound(_)) => continue,
                    Err(e) => return Err(e),
                };
                for (name, _, is_dir) in entries {
                    let p = d.join(&name);
                    if is_dir {
                        dirs.push(p);
                        continue;
                    }
                    if !name.starts_with(TMP_PREFIX) {
                        continue;
                    }
                    let old = match c.sftp.fs().metadata(&p).await {
                        Ok(m) => m
                            .modified()
                            .and_then(|t| t.as_system_time().elapsed().ok())
                            .is_some_and(|el| el >= age),
                        Err(_) => false,
                    };
                    if old && c.sftp.fs().remove_file(&p).await.is_ok() {
                        removed += 1;
                    }
                }
            }
            Ok(removed)
        })
    }
}
