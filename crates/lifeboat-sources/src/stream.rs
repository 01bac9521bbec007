//! Named streams: standard input, or the standard output of a command run through `/bin/sh`.
//! This is how database dumps enter a snapshot, so a command's failure must surface: its exit
//! status is checked after its output ends, and the tail of its stderr goes into the message.

use lifeboat_repo::source::StreamSource;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// How much of a failing command's stderr is kept for the error message.
const STDERR_TAIL: usize = 4096;

/// Standard input as a stream.
pub struct StdinStream {
    name: String,
    stdin: io::Stdin,
}

impl StdinStream {
    pub fn new(name: impl Into<String>) -> Self {
        StdinStream {
            name: name.into(),
            stdin: io::stdin(),
        }
    }
}

impl StreamSource for StdinStream {
    fn name(&self) -> &str {
        &self.name
    }
    fn command(&self) -> Option<&str> {
        None
    }
    fn reader(&mut self) -> &mut dyn Read {
        &mut self.stdin
    }
    fn finish(self: Box<Self>, _aborted: bool) -> Result<(), String> {
        Ok(())
    }
}

/// A command's standard output as a stream.
/// The dump's output, also copied to a validation command's standard input when there is one.
struct Tee {
    inner: ChildStdout,
    copy: Option<std::process::ChildStdin>,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(c) = self.copy.as_mut() {
            use std::io::Write;
            // A validator that stops reading early (it has seen enough) is judged by its exit
            // status, not by the broken pipe.
            if n == 0 || c.write_all(&buf[..n]).is_err() {
                self.copy = None;
            }
        }
        Ok(n)
    }
}

/// A running validation command and the end of its stderr.
struct Validator {
    command: String,
    child: Child,
    tail: Arc<Mutex<VecDeque<u8>>>,
    thread: Option<JoinHandle<()>>,
}

pub struct CommandStream {
    name: String,
    command: String,
    child: Child,
    stdout: Tee,
    /// A command that reads the dump as it is taken and must exit 0 for the backup to commit.
    validator: Option<Validator>,
    stderr: Arc<Mutex<VecDeque<u8>>>,
    stderr_thread: Option<JoinHandle<()>>,
    /// Set when the timeout killed the command.
    timed_out: Arc<std::sync::atomic::AtomicBool>,
    done: Arc<std::sync::atomic::AtomicBool>,
    timeout: Option<std::time::Duration>,
}

impl CommandStream {
    /// Starts `command` with `sh -c`. Its stdin is closed (a dump that waits for a password
    /// prompt fails instead of hanging); the last few KiB of its stderr are kept for the
    /// error message.
    pub fn spawn(name: impl Into<String>, command: impl Into<String>) -> io::Result<Self> {
        let command = command.into();
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(&command)
            // The repository's password is ours, not the dump tool's.
            .env_remove("LIFEBOAT_PASSWORD")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that a timeout or an interrupt stops the whole
            // pipeline (`mysqldump | gzip`), not only the shell.
            .process_group(0)
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout pipe"))?;
        let err = child
            .stderr
            .take()
            .ok_or_else(|| io::Error::other("no stderr pipe"))?;
        let (tail, stderr_thread) = keep_tail(err);
        Ok(CommandStream {
            name: name.into(),
            command,
            child,
            stdout: Tee {
                inner: stdout,
                copy: None,
            },
            validator: None,
            stderr: tail,
            stderr_thread: Some(stderr_thread),
            timed_out: Arc::default(),
            done: Arc::default(),
            timeout: None,
        })
    }

    /// Runs `command` (through /bin/sh) on a copy of the dump while it is taken; the backup
    /// fails, and writes no snapshot, unless it exits 0.
    pub fn set_validator(&mut self, command: &str) -> io::Result<()> {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .env_remove("LIFEBOAT_PASSWORD")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()?;
        self.stdout.copy = child.stdin.take();
        let err = child
            .stderr
            .take()
            .ok_or_else(|| io::Error::other("no stderr pipe"))?;
        let (tail, thread) = keep_tail(err);
        self.validator = Some(Validator {
            command: command.to_string(),
            child,
            tail,
            thread: Some(thread),
        });
        Ok(())
    }

    /// Kills the command's process group if it has not finished within `limit`; the backup
    /// then fails with "timed out".
    pub fn set_timeout(&mut self, limit: std::time::Duration) {
        use std::sync::atomic::Ordering;
        self.timeout = Some(limit);
        let (done, timed_out) = (self.done.clone(), self.timed_out.clone());
        let pid = self.child.id();
        let deadline = std::time::Instant::now() + limit;
        std::thread::spawn(move || {
            while std::time::Instant::now() < deadline {
                if done.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            if !done.load(Ordering::SeqCst) {
                timed_out.store(true, Ordering::SeqCst);
                kill_group(pid);
            }
        });
    }
}

/// Reads a child's stderr to the end, keeping its last few KiB for error messages.
fn keep_tail(mut err: impl Read + Send + 'static) -> (Arc<Mutex<VecDeque<u8>>>, JoinHandle<()>) {
    let tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL)));
    let t2 = tail.clone();
    let thread = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut t) = t2.lock() {
                t.extend(&buf[..n]);
                let excess = t.len().saturating_sub(STDERR_TAIL);
                t.drain(..excess);
            }
        }
    });
    (tail, thread)
}

fn kill_group(pid: u32) {
    if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process_group(p, rustix::process::Signal::KILL);
    }
}

impl StreamSource for CommandStream {
    fn name(&self) -> &str {
        &self.name
    }
    fn command(&self) -> Option<&str> {
        Some(&self.command)
    }
    fn reader(&mut self) -> &mut dyn Read {
        &mut self.stdout
    }
    fn finish(mut self: Box<Self>, aborted: bool) -> Result<(), String> {
        if aborted {
            kill_group(self.child.id());
            let _ = self.child.kill();
        }
        // End of the dump: the validator sees end of input, then is judged.
        self.stdout.copy = None;
        let validated = match self.validator.take() {
            None => Ok(()),
            Some(Validator {
                command: cmd,
                mut child,
                tail,
                thread,
            }) => {
                if aborted {
                    kill_group(child.id());
                }
                let st = child.wait();
                if let Some(t) = thread {
                    let _ = t.join();
                }
                let tail = tail
                    .lock()
                    .map(|t| {
                        String::from_utf8_lossy(&t.iter().copied().collect::<Vec<u8>>())
                            .trim()
                            .to_string()
                    })
                    .unwrap_or_default();
                match st {
                    Ok(s) if s.success() => Ok(()),
                    Ok(s) => Err(format!(
                        "the validation command `{cmd}` rejected the dump ({s}){}",
                        if tail.is_empty() {
                            String::new()
                        } else {
                            format!(": {tail}")
                        }
                    )),
                    Err(e) => Err(format!("waiting for the validation command failed: {e}")),
                }
            }
        };
        let status = self
            .child
            .wait()
            .map_err(|e| format!("waiting for the command failed: {e}"));
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        let status = status?;
        if let Some(t) = self.stderr_thread.take() {
            let _ = t.join();
        }
        let tail = self
            .stderr
            .lock()
            .map(|t| t.iter().copied().collect::<Vec<u8>>())
            .unwrap_or_default();
        let tail = String::from_utf8_lossy(&tail).trim().to_string();
        let why = if self.timed_out.load(std::sync::atomic::Ordering::SeqCst) {
            format!(
                "command timed out after {}s and was killed",
                self.timeout.map(|t| t.as_secs()).unwrap_or(0)
            )
        } else if status.success() {
            return validated;
        } else if let Some(sig) = status.signal() {
            format!("command was killed by signal {sig}")
        } else {
            format!("command exited with status {}", status.code().unwrap_or(-1))
        };
        if tail.is_empty() {
            Err(why)
        } else {
            Err(format!("{why}; its stderr ended with:\n{tail}"))
        }
    }
}
