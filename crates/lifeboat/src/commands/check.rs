//! `lifeboat check`.

use super::print_json;
use crate::cli::{CheckArgs, Global};
use crate::context;
use crate::exit::{self, fail};
use crate::ui::{self, Bar};
use anyhow::Result;
use lifeboat_repo::{CheckOptions, Progress, ReadData};
use std::sync::Arc;

fn parse_subset(s: &str) -> Result<ReadData> {
    let bad = || {
        fail(
            exit::ERROR,
            format!("--read-data-subset {s:?}: use a percentage like 10% or a slice like 2/7"),
        )
    };
    if let Some(p) = s.strip_suffix('%') {
        let v: f64 = p.trim().parse().map_err(|_| bad())?;
        if !(0.0..=100.0).contains(&v) || v == 0.0 {
            return Err(bad());
        }
        return Ok(ReadData::Percent(v));
    }
    let (n, t) = s.split_once('/').ok_or_else(bad)?;
    let (n, t): (u32, u32) = (
        n.trim().parse().map_err(|_| bad())?,
        t.trim().parse().map_err(|_| bad())?,
    );
    if t == 0 || n == 0 || n > t {
        return Err(bad());
    }
    Ok(ReadData::Slice(n, t))
}

pub fn run(g: &Global, a: CheckArgs, progress: Arc<Progress>) -> Result<u8> {
    let started = std::time::Instant::now();
    let read = match (&a.read_data_subset, a.read_data) {
        (Some(s), _) => parse_subset(s)?,
        (None, true) => ReadData::All,
        (None, false) if a.max_age.is_some() => ReadData::All,
        (None, false) => ReadData::None,
    };
    let opts = CheckOptions {
        max_age: a.max_age.map(|d| d.as_secs() as i64),
    };
    let mut repo = context::open_uncached(g)?;
    let bar = Bar::start(g, progress.clone(), ui::Kind::Total);
    let result = lifeboat_repo::check_with(&mut repo, read, opts, &progress);
    bar.finish();
    let r = result?;
    let secs = started.elapsed().as_secs_f64();
    if g.json {
        print_json(&serde_json::json!({
            "message_type": "summary",
            "ok": r.errors.is_empty(),
            "errors": r.errors, "warnings": r.warnings,
            "snapshots": r.snapshots, "trees": r.trees, "packs": r.packs,
            "packs_read": r.packs_read, "blobs_read": r.blobs_read, "bytes_read": r.bytes_read,
            "packs_never_verified": r.packs_never_verified,
            "oldest_verification": r.oldest_verification.and_then(|t| jiff::Timestamp::from_second(t).ok()).map(|t| t.to_string()),
            "bad_blobs": r.bad_blobs,
            "affected": r.affected.iter().map(|(s, p)| serde_json::json!({"snapshot": s, "path": p})).collect::<Vec<_>>(),
            "duration_seconds": secs,
        }));
    } else {
        for w in &r.warnings {
            eprintln!("warning: {w}");
        }
        for e in &r.errors {
            eprintln!("error: {e}");
        }
        if !r.affected.is_empty() {
            eprintln!("files that cannot be restored whole:");
            for (s, p) in &r.affected {
                eprintln!("  snapshot {s}: {p}");
            }
        }
        if !g.quiet {
            println!(
                "{} snapshots, {} trees, {} packs checked{} in {:.1}s: {}",
                r.snapshots,
                r.trees,
                r.packs,
                if r.packs_read > 0 {
                    format!(
                        ", {} packs ({}) read and verified",
                        r.packs_read,
                        ui::size(r.bytes_read)
                    )
                } else {
                    String::new()
                },
                secs,
                if r.errors.is_empty() {
                    "no errors".to_string()
                } else {
                    format!("{} ERRORS", r.errors.len())
                }
            );
            if r.packs_read > 0 || r.oldest_verification.is_some() {
                println!(
                    "data verification: {} of {} packs never read by a check{}",
                    r.packs_never_verified,
                    r.packs,
                    r.oldest_verification
                        .and_then(|t| jiff::Timestamp::from_second(t).ok())
                        .map(|t| format!("; the oldest verification was {}", ui::local_time(&t)))
                        .unwrap_or_default()
                );
            }
        }
    }
    if r.errors.is_empty() {
        Ok(exit::OK)
    } else {
        if !g.json {
            eprintln!(
                "lifeboat: the repository has errors; restores of the files listed above will fail. Damaged data is recorded: the next backup stores again what it still finds at the source; `lifeboat repair packs` saves what can be read of damaged packs, and `lifeboat repair snapshots` records what is lost for good. `lifeboat check --read-data` reads everything."
            );
        }
        Ok(exit::ERROR)
    }
}
