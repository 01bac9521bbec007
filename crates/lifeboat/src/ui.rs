//! Terminal output: progress bars (only on a terminal, never with --quiet, --no-progress or
//! --json), human sizes and times.

use crate::cli::Global;
use indicatif::{ProgressBar, ProgressStyle};
use lifeboat_repo::Progress;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub fn size(n: u64) -> String {
    bytesize::ByteSize(n).display().iec().to_string()
}

pub fn local_time(t: &jiff::Timestamp) -> String {
    t.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// A progress display fed from the operation's counters by a ticker thread.
pub struct Bar {
    bar: Option<ProgressBar>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Clone, Copy)]
pub enum Kind {
    /// Bytes read, files, rate; no total known.
    Backup,
    /// Bytes against a known total, with ETA.
    Total,
}

impl Bar {
    pub fn start(g: &Global, progress: Arc<Progress>, kind: Kind) -> Bar {
        let show = !g.quiet && !g.no_progress && !g.json && std::io::stderr().is_terminal();
        if !show {
            return Bar {
                bar: None,
                stop: Arc::new(AtomicBool::new(false)),
                thread: None,
            };
        }
        let bar = match kind {
            Kind::Backup => {
                let b = ProgressBar::new_spinner();
                b.set_style(
                    ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                b
            }
            Kind::Total => {
                let b = ProgressBar::new(0);
                b.set_style(
                    ProgressStyle::with_template(
                        "[{elapsed_precise}] {bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                b
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (b2, s2) = (bar.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            while !s2.load(Ordering::Relaxed) {
                let bytes = Progress::get(&progress.bytes);
                let skipped = Progress::get(&progress.bytes_skipped);
                let files = Progress::get(&progress.files);
                let errors = Progress::get(&progress.errors);
                match kind {
                    Kind::Backup => {
                        let secs = started.elapsed().as_secs_f64().max(0.001);
                        let rate = bytes as f64 / secs;
                        let mut msg = format!(
                            "{files} files, {} read ({}/s), {} unchanged",
                            size(bytes),
                            size(rate as u64),
                            size(skipped)
                        );
                        let total = Progress::get(&progress.bytes_total);
                        if total > 0 {
                            let done = (bytes + skipped).min(total);
                            let pct = done as f64 * 100.0 / total as f64;
                            msg += &format!(" | {pct:.0}% of {}", size(total));
                            if progress.totals_done.load(Ordering::Relaxed) && rate > 0.0 {
                                let eta = ((total - done) as f64 / rate) as u64;
                                msg += &format!(
                                    ", ETA {}:{:02}:{:02}",
                                    eta / 3600,
                                    eta / 60 % 60,
                                    eta % 60
                                );
                            }
                        }
                        if errors > 0 {
                            msg += &format!(", {errors} errors");
                        }
                        b2.set_message(msg);
                    }
                    Kind::Total => {
                        b2.set_length(Progress::get(&progress.bytes_total));
                        b2.set_position(bytes + skipped);
                        b2.set_message(format!("{files} files"));
                    }
                }
                b2.tick();
                std::thread::sleep(Duration::from_millis(120));
            }
        });
        Bar {
            bar: Some(bar),
            stop,
            thread: Some(thread),
        }
    }

    /// Whether a bar is drawn (work done only for the display can be skipped otherwise).
    pub fn is_shown(&self) -> bool {
        self.bar.is_some()
    }

    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
