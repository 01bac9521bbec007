//! Test fixtures: a repository in a temporary directory and helpers to run the binary.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const PASSWORD: &str = "correct horse battery staple";

/// `init` with a cheap key derivation and 1 MiB packs: quick to open, and many packs (many
/// requests, many files to damage) from a small tree.
pub const INIT_SMALL_PACKS: &[&str] = &[
    "init",
    "--kdf-memory-kib",
    "1024",
    "--kdf-passes",
    "1",
    "--pack-size",
    "1MiB",
];

pub struct Env {
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
}

impl Env {
    /// A fresh, initialised repository (cheap Argon2 parameters: tests open it hundreds of times).
    pub fn new() -> Env {
        let env = Env::empty();
        env.ok(&["init", "--kdf-memory-kib", "1024", "--kdf-passes", "1"]);
        env
    }

    /// A temporary directory with no repository yet.
    pub fn empty() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("repo");
        Env { dir, repo }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// The binary with this repository, the password in the environment, and private XDG
    /// directories so nothing of the host's leaks in.
    pub fn cmd(&self) -> Command {
        let mut c = self.cmd_without_repo();
        match sftp_backend() {
            // The whole suite again over SFTP: the server runs on this machine, so the URL
            // names the same folder and the tests that inspect or damage files still can.
            Some((base, config)) => {
                c.env("LIFEBOAT_SSH_CONFIG", config)
                    .arg("-r")
                    .arg(format!("{base}{}", self.repo.display()));
            }
            None => {
                c.arg("-r").arg(&self.repo);
            }
        }
        c
    }

    /// The binary with the password and private XDG directories, and no repository named.
    pub fn cmd_without_repo(&self) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("lifeboat"));
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("XDG_CACHE_HOME", self.dir.path().join("cache"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("LIFEBOAT_PASSWORD", PASSWORD);
        c
    }

    /// Runs and expects exit 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().expect("run");
        assert!(
            out.status.success(),
            "lifeboat {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and returns (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.cmd().args(args).output().expect("run");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs a command that must be refused: exit `code`, a message containing `says`, and not
    /// one byte of the repository changed.
    pub fn refused(&self, args: &[&str], code: i32, says: &str) {
        let before = self.repo_files();
        let (c, _, err) = self.run(args);
        assert_eq!(c, code, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(self.repo_files(), before, "{args:?} changed the repository");
    }

    /// Runs with --json and parses the last line of stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.ok(&a);
        let last = out.lines().last().unwrap_or("");
        serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    pub fn backup(&self, args: &[&str]) -> String {
        let mut a = vec!["backup"];
        a.extend_from_slice(args);
        let v = self.json(&a);
        v["snapshot_id"].as_str().expect("snapshot id").to_string()
    }

    pub fn snapshot_ids(&self) -> Vec<String> {
        let v = self.json(&["snapshots"]);
        v.as_array()
            .expect("array")
            .iter()
            .map(|s| s["id"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// Every file of the repository (relative path -> bytes), to show that a failed command
    /// changed nothing.
    pub fn repo_files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        files_under(&self.repo)
    }
}

pub fn files_under(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = fs::read(&p) {
                out.insert(p.strip_prefix(root).unwrap_or(&p).to_path_buf(), b);
            }
        }
    }
    out
}

/// With `LIFEBOAT_TEST_BACKEND=sftp`, every test's repository is reached over SFTP
/// (`sftp://root@HOST:PORT`, the server of scripts/remote/sftp) instead of as a path.
pub fn sftp_backend() -> Option<(String, String)> {
    if std::env::var("LIFEBOAT_TEST_BACKEND").ok().as_deref() != Some("sftp") {
        return None;
    }
    let var = |n: &str| {
        std::env::var(n).unwrap_or_else(|_| {
            panic!("LIFEBOAT_TEST_BACKEND=sftp needs {n}: eval \"$(scripts/remote/all env)\"")
        })
    };
    Some((
        format!(
            "sftp://root@{}:{}",
            var("LIFEBOAT_SFTP_HOST"),
            var("LIFEBOAT_SFTP_PORT")
        ),
        var("LIFEBOAT_SFTP_SSH_CONFIG"),
    ))
}

/// Deterministic pseudo-random bytes.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

/// A comparable description of one file system entry: everything a restore must reproduce.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: (i64, i64),
    pub rdev: u64,
    pub nlink: u64,
    pub target: Option<PathBuf>,
    pub xattrs: BTreeMap<String, Vec<u8>>,
    pub content: Option<Vec<u8>>,
}

pub fn describe(p: &Path) -> Entry {
    let m = fs::symlink_metadata(p).expect("lstat");
    let ft = m.file_type();
    let kind = if ft.is_dir() {
        "dir"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_char_device() {
        "chardev"
    } else if ft.is_block_device() {
        "blockdev"
    } else {
        "file"
    };
    let mut xattrs = BTreeMap::new();
    if !ft.is_symlink() {
        for name in xattr::list(p).into_iter().flatten() {
            let v = xattr::get(p, &name).ok().flatten().unwrap_or_default();
            xattrs.insert(name.to_string_lossy().into_owned(), v);
        }
    }
    Entry {
        kind: kind.into(),
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        size: if ft.is_dir() { 0 } else { m.size() },
        mtime: if ft.is_dir() {
            (0, 0)
        } else {
            (m.mtime(), m.mtime_nsec())
        },
        rdev: m.rdev(),
        nlink: if ft.is_dir() { 0 } else { m.nlink() },
        target: fs::read_link(p).ok(),
        xattrs,
        content: if ft.is_file() { fs::read(p).ok() } else { None },
    }
}

/// Compares two trees entry by entry (directory mtimes too, at the end).
pub fn assert_same_tree(a: &Path, b: &Path) {
    let list = |root: &Path| -> Vec<PathBuf> {
        let mut out = vec![];
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            let mut names: Vec<_> = fs::read_dir(root.join(&rel))
                .expect("read_dir")
                .flatten()
                .map(|e| e.file_name())
                .collect();
            names.sort();
            for n in names {
                let r = rel.join(&n);
                if fs::symlink_metadata(root.join(&r))
                    .map(|m| m.is_dir())
                    .unwrap_or(false)
                {
                    stack.push(r.clone());
                }
                out.push(r);
            }
        }
        out.sort();
        out
    };
    let (la, lb) = (list(a), list(b));
    assert_eq!(la, lb, "different entries");
    for r in &la {
        assert_eq!(
            describe(&a.join(r)),
            describe(&b.join(r)),
            "entry {} differs",
            r.display()
        );
        let (ma, mb) = (
            fs::symlink_metadata(a.join(r)).expect("lstat"),
            fs::symlink_metadata(b.join(r)).expect("lstat"),
        );
        if ma.is_dir() {
            assert_eq!(
                (ma.mtime(), ma.mtime_nsec()),
                (mb.mtime(), mb.mtime_nsec()),
                "dir mtime of {}",
                r.display()
            );
        }
    }
}

/// Where a backed-up absolute path lands under a restore target.
pub fn restored(target: &Path, original: &Path) -> PathBuf {
    target.join(original.strip_prefix("/").unwrap_or(original))
}

impl Env {
    /// Runs with another password in LIFEBOAT_PASSWORD; returns (exit code, stdout, stderr).
    pub fn run_as(&self, password: &str, args: &[&str]) -> (i32, String, String) {
        let out = self
            .cmd()
            .env("LIFEBOAT_PASSWORD", password)
            .args(args)
            .output()
            .expect("run");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}
