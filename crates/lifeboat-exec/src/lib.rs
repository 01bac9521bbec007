//! Running commands on a node through the system OpenSSH client.
//!
//! The operator's `ssh` is used as it is (keys, agent, `~/.ssh/config`, `known_hosts`,
//! ProxyJump), with three things added: `BatchMode=yes` (a backup has nobody to type a
//! password or accept a key), `StrictHostKeyChecking=yes` unless the operator's options say
//! otherwise (a node whose key changed is refused, never trusted silently), and connection
//! multiplexing (one TCP connection and one login per node for all the commands of a run:
//! `ControlMaster=auto`, a control socket in a private folder, kept 60 s).
//!
//! ssh reports everything with exit code 255 and a line on stderr; [`classify`] turns those
//! lines into typed errors that say whether trying again can help and what the operator does
//! next (for a changed host key: the fingerprint the node now shows).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(
        "node {node}: cannot connect: {message}; check that it is up and that sshd listens there"
    )]
    Unreachable { node: String, message: String },
    #[error(
        "node {node}: its host key has CHANGED and the connection was refused (it now shows {fingerprint}). If the node was reinstalled, remove its old key (ssh-keygen -R {host}) and check the new fingerprint on the node's console; otherwise someone may be in the middle"
    )]
    HostKeyChanged {
        node: String,
        host: String,
        fingerprint: String,
    },
    #[error(
        "node {node}: its host key is not known ({fingerprint}); check it on the node (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and add it to known_hosts"
    )]
    HostKeyUnknown { node: String, fingerprint: String },
    #[error("node {node}: the login was refused: {message}; check the user and key for the node")]
    Auth { node: String, message: String },
    #[error("node {node}: the connection was lost: {message}")]
    Lost { node: String, message: String },
    #[error("node {node}: `{command}` exited with {status}: {stderr}")]
    Failed {
        node: String,
        command: String,
        status: String,
        stderr: String,
    },
    #[error("node {node}: no answer within {secs} s")]
    Timeout { node: String, secs: u64 },
    #[error("cannot run the ssh client ({0}); install openssh-client or set LIFEBOAT_SSH_PROGRAM")]
    Spawn(std::io::Error),
}

impl ExecError {
    /// Whether trying again later can help (the node or the network may come back).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ExecError::Unreachable { .. } | ExecError::Lost { .. } | ExecError::Timeout { .. }
        )
    }
}

/// How to reach one node.
#[derive(Debug, Clone)]
pub struct SshNode {
    /// The node's name, for messages.
    pub name: String,
    /// The host part as ssh gets it (for `ssh-keygen -R` in messages).
    pub host: String,
    /// Arguments that reach the node, ending with `-- ADDRESS` (see
    /// `lifeboat_plan::inventory::Node::ssh_args`).
    pub args: Vec<String>,
    /// Arguments before them: `-F FILE`, `-o ...` from the command line.
    pub global_args: Vec<String>,
    pub program: PathBuf,
    /// This machine itself: commands run through `sh -c`, without SSH.
    pub local: bool,
    /// Share one connection among the commands of a run (off: a fresh login each time, as
    /// when checking a host key that may have changed).
    pub multiplex: bool,
}

/// What a command printed.
#[derive(Debug, Clone)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// The private folder of the control sockets: `$XDG_RUNTIME_DIR/lifeboat-ssh`, else
/// `/tmp/lifeboat-ssh-UID`, mode 0700 (a socket there is a logged-in session).
pub fn control_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let uid = rustix_uid();
    let dir = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("lifeboat-ssh"),
        _ => PathBuf::from(format!("/tmp/lifeboat-ssh-{uid}")),
    };
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let md = std::fs::symlink_metadata(&dir)?;
    if !md.is_dir() || md.uid() != uid || md.permissions().mode() & 0o077 != 0 {
        return Err(std::io::Error::other(format!(
            "{} is not a private folder of this user (mode 0700); remove it",
            dir.display()
        )));
    }
    Ok(dir)
}

fn rustix_uid() -> u32 {
    // The owner of /proc/self is this process's effective user.
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
}

impl SshNode {
    /// The full ssh command line for `command` (without running it).
    pub fn command_line(&self, command: &str, control: Option<&Path>) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "ConnectTimeout=20".into(),
            "-o".into(),
            "ServerAliveInterval=15".into(),
            "-o".into(),
            "ServerAliveCountMax=4".into(),
        ];
        // The operator's own choice (in -o options) wins; ssh takes the first value given.
        let chosen = |key: &str| {
            self.global_args.iter().chain(self.args.iter()).any(|x| {
                x.to_ascii_lowercase()
                    .starts_with(&key.to_ascii_lowercase())
            })
        };
        if !chosen("StrictHostKeyChecking=") {
            a.extend(["-o".into(), "StrictHostKeyChecking=yes".into()]);
        }
        if let Some(dir) = control {
            a.extend([
                "-o".into(),
                "ControlMaster=auto".into(),
                "-o".into(),
                format!("ControlPath={}/%C", dir.display()),
                "-o".into(),
                "ControlPersist=60".into(),
            ]);
        }
        a.extend(self.global_args.iter().cloned());
        a.extend(self.args.iter().cloned());
        a.push(command.to_string());
        a
    }

    /// Runs `command` (a shell command line on the node) and returns what it printed; a
    /// non-zero exit is [`ExecError::Failed`] with its stderr.
    pub fn run(&self, command: &str, timeout: Duration) -> Result<Output, ExecError> {
        let mut cmd = if self.local {
            let mut c = Command::new("/bin/sh");
            c.arg("-c").arg(command);
            c
        } else {
            let control = if self.multiplex {
                control_dir().ok()
            } else {
                None
            };
            let mut c = Command::new(&self.program);
            c.args(self.command_line(command, control.as_deref()));
            c
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(ExecError::Spawn)?;
        // Both pipes are read on threads, so a chatty command cannot block on a full pipe
        // while this thread waits for it.
        let mut out = child.stdout.take();
        let mut err = child.stderr.take();
        let t_out = std::thread::spawn(move || {
            let mut b = Vec::new();
            if let Some(o) = out.as_mut() {
                let _ = o.read_to_end(&mut b);
            }
            b
        });
        let t_err = std::thread::spawn(move || {
            let mut b = Vec::new();
            if let Some(e) = err.as_mut() {
                let _ = e.read_to_end(&mut b);
            }
            b
        });
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if start.elapsed() >= timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(ExecError::Timeout {
                        node: self.name.clone(),
                        secs: timeout.as_secs(),
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(ExecError::Spawn(e)),
            }
        };
        let stdout = t_out.join().unwrap_or_default();
        let stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
        if status.success() {
            return Ok(Output { stdout, stderr });
        }
        if !self.local && status.code() == Some(255) {
            return Err(classify(&self.name, &self.host, &stderr));
        }
        Err(ExecError::Failed {
            node: self.name.clone(),
            command: command.chars().take(80).collect(),
            status: status.to_string(),
            stderr: last_lines(&stderr, 5),
        })
    }
}

/// The last `n` non-empty lines of `s`, joined.
fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("; ")
}

/// What an ssh failure (exit 255) means, from its stderr.
pub fn classify(node: &str, host: &str, stderr: &str) -> ExecError {
    let fingerprint = || {
        stderr
            .split_whitespace()
            .find(|w| w.starts_with("SHA256:") || w.starts_with("MD5:"))
            .map(|w| w.trim_end_matches('.').to_string())
            .unwrap_or_else(|| "an unknown fingerprint".into())
    };
    let said = last_lines(stderr, 3);
    let node = node.to_string();
    if stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        return ExecError::HostKeyChanged {
            node,
            host: host.to_string(),
            fingerprint: fingerprint(),
        };
    }
    if stderr.contains("No ED25519 host key is known")
        || stderr.contains("host key is known for")
        || stderr.contains("Host key verification failed")
    {
        return ExecError::HostKeyUnknown {
            node,
            fingerprint: fingerprint(),
        };
    }
    if stderr.contains("Permission denied") || stderr.contains("Too many authentication failures") {
        return ExecError::Auth {
            node,
            message: said,
        };
    }
    let unreachable = [
        "Connection refused",
        "No route to host",
        "Connection timed out",
        "timed out during banner exchange",
        "Could not resolve hostname",
        "Network is unreachable",
        "Name or service not known",
        // The TCP connection opened and closed before SSH began: the server's MaxStartups,
        // a firewall, or (through ProxyJump) the jump host that could not go on.
        "kex_exchange_identification",
        "Connection closed by UNKNOWN",
    ];
    if unreachable.iter().any(|m| stderr.contains(m)) {
        return ExecError::Unreachable {
            node,
            message: said,
        };
    }
    ExecError::Lost {
        node,
        message: if said.is_empty() {
            "ssh exited with 255 and said nothing".into()
        } else {
            said
        },
    }
}

/// Facts about a node, recorded with its backups: what it is, and what to rebuild it from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub hostname: String,
    pub os: String,
    pub kernel: String,
    pub arch: String,
    /// Network interfaces and their MAC addresses (the loopback left out).
    pub interfaces: Vec<(String, String)>,
}

/// A POSIX shell script that prints the facts as `key=value` lines: nothing but `uname`,
/// `/etc/os-release` and `/sys/class/net`, which every Linux node has.
pub const FACTS_SCRIPT: &str = r#"echo "hostname=$(uname -n)"
echo "kernel=$(uname -r)"
echo "arch=$(uname -m)"
if [ -r /etc/os-release ]; then . /etc/os-release; echo "os=${PRETTY_NAME:-$NAME $VERSION}"; fi
for i in /sys/class/net/*; do
  [ -r "$i/address" ] || continue
  n="${i##*/}"; [ "$n" = lo ] && continue
  echo "if=$n $(cat "$i/address")"
done"#;

impl Facts {
    pub fn parse(out: &str) -> Facts {
        let mut f = Facts::default();
        for line in out.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k {
                "hostname" => f.hostname = v.to_string(),
                "kernel" => f.kernel = v.to_string(),
                "arch" => f.arch = v.to_string(),
                "os" => f.os = v.to_string(),
                "if" => {
                    if let Some((n, mac)) = v.split_once(' ') {
                        f.interfaces.push((n.to_string(), mac.to_string()));
                    }
                }
                _ => {}
            }
        }
        f
    }
}

/// Connects to the node and reads its facts.
pub fn facts(node: &SshNode, timeout: Duration) -> Result<Facts, ExecError> {
    let out = node.run(FACTS_SCRIPT, timeout)?;
    let f = Facts::parse(&String::from_utf8_lossy(&out.stdout));
    if f.hostname.is_empty() {
        return Err(ExecError::Failed {
            node: node.name.clone(),
            command: "uname -n".into(),
            status: "no output".into(),
            stderr: last_lines(&out.stderr, 3),
        });
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_failures_are_told_apart() {
        let changed = "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\nIT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\nThe fingerprint for the ED25519 key sent by the remote host is\nSHA256:Qm8x1yJcJ3vR0bJ5H0y2m0c3t3bq9b7hQ1Ew1k2Yx4A.\nHost key verification failed.\n";
        match classify("n2", "10.0.0.2", changed) {
            ExecError::HostKeyChanged { fingerprint, .. } => {
                assert_eq!(
                    fingerprint,
                    "SHA256:Qm8x1yJcJ3vR0bJ5H0y2m0c3t3bq9b7hQ1Ew1k2Yx4A"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(
                "n",
                "h",
                "ssh: connect to host 127.0.0.19 port 22: Connection refused\n"
            ),
            ExecError::Unreachable { .. }
        ));
        assert!(matches!(
            classify("n", "h", "root@127.0.0.1: Permission denied (publickey).\n"),
            ExecError::Auth { .. }
        ));
        assert!(matches!(
            classify(
                "n",
                "h",
                "No ED25519 host key is known for 127.0.0.11 and you have requested strict checking.\nHost key verification failed.\n"
            ),
            ExecError::HostKeyUnknown { .. }
        ));
        let lost = classify(
            "n",
            "h",
            "Connection to 127.0.0.11 closed by remote host.\n",
        );
        assert!(matches!(lost, ExecError::Lost { .. }) && lost.is_retryable());
    }

    #[test]
    fn facts_are_parsed_and_options_of_the_operator_win() {
        let f = Facts::parse(
            "hostname=ctrl1\nkernel=6.1.0\narch=x86_64\nos=Debian GNU/Linux 12 (bookworm)\nif=eth0 52:54:00:12:34:56\nnoise\n",
        );
        assert_eq!(f.hostname, "ctrl1");
        assert_eq!(f.interfaces, [("eth0".into(), "52:54:00:12:34:56".into())]);
        let n = SshNode {
            name: "a".into(),
            host: "h".into(),
            args: vec!["--".into(), "h".into()],
            global_args: vec!["-o".into(), "StrictHostKeyChecking=accept-new".into()],
            program: "ssh".into(),
            local: false,
            multiplex: true,
        };
        let line = n.command_line("true", None);
        assert!(
            !line.contains(&"StrictHostKeyChecking=yes".to_string()),
            "{line:?}"
        );
        assert_eq!(line.last().map(String::as_str), Some("true"));
    }

    #[test]
    fn local_nodes_run_through_sh() {
        let n = SshNode {
            name: "here".into(),
            host: "localhost".into(),
            args: vec![],
            global_args: vec![],
            program: "ssh".into(),
            local: true,
            multiplex: false,
        };
        let f = facts(&n, Duration::from_secs(10)).unwrap();
        assert!(!f.hostname.is_empty());
        let e = n
            .run("echo oops >&2; exit 3", Duration::from_secs(10))
            .unwrap_err();
        assert!(e.to_string().contains("oops") && !e.is_retryable(), "{e}");
        let t = n.run("sleep 5", Duration::from_millis(200)).unwrap_err();
        assert!(matches!(t, ExecError::Timeout { .. }));
    }
}
