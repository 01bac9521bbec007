//! One function per subcommand. Each turns arguments into library calls and prints results;
//! none holds logic a web dashboard would need again.

pub mod backup;
pub mod browse;
mod check;
pub mod component_restore;
mod components;
mod copy;
mod forget;
mod key;
mod nodes;
mod profiles;
pub mod prune;
mod repair;
pub mod restore;

use crate::cli::{Cli, Command, Filter, Global, InitArgs};
use crate::context;
use crate::exit::{self, fail};
use anyhow::{Context as _, Result};
use clap::CommandFactory;
use lifeboat_format::KdfParams;
use lifeboat_repo::{InitOptions, Progress, Repository, SnapshotFilter};
use std::sync::Arc;

pub fn run(cli: Cli, progress: Arc<Progress>) -> Result<u8> {
    let g = crate::context::apply_config(cli.global)?;
    match cli.command {
        Command::Init(a) => init(&g, a),
        Command::Key(a) => key::run(&g, a),
        Command::Backup(a) => backup::run(&g, a, progress),
        Command::Snapshots(a) => browse::snapshots(&g, a),
        Command::Ls(a) => browse::ls(&g, a),
        Command::Diff(a) => browse::diff(&g, a),
        Command::Find(a) => browse::find(&g, a),
        Command::Dump(a) => browse::dump(&g, a),
        Command::Restore(a) => restore::run(&g, a, progress),
        Command::Check(a) => check::run(&g, a, progress),
        Command::Copy(a) => copy::run(&g, a, progress),
        Command::Forget(a) => forget::run(&g, a, progress),
        Command::Prune(a) => prune::run(&g, a, progress),
        Command::Repair(a) => repair::run(&g, a, progress),
        Command::Components => components::run(&g),
        Command::Nodes(a) => nodes::run(&g, &a),
        Command::Profiles(a) => profiles::run(&g, &a),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "lifeboat",
                &mut std::io::stdout(),
            );
            Ok(exit::OK)
        }
        Command::Man { dir } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(Cli::command(), &dir)
                .with_context(|| format!("writing man pages to {}", dir.display()))?;
            Ok(exit::OK)
        }
    }
}

pub fn filter(f: &Filter) -> SnapshotFilter {
    SnapshotFilter {
        hosts: f.hosts.clone(),
        tags: f.tags.clone(),
        paths: f.paths.clone(),
    }
}

pub fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string(v).unwrap_or_default());
}

fn init(g: &Global, a: InitArgs) -> Result<u8> {
    let loc = context::location(g)?;
    let storage = context::storage(g, &loc)?;
    let mut generated = None;
    let pw = match context::password(g, &loc, true)? {
        Some(p) => p,
        None if loc.is_default => {
            // The default repository gets a generated password so that the first backup
            // needs no set-up; it is written where later commands find it.
            let mut raw = [0u8; 24];
            lifeboat_crypto::random_bytes(&mut raw)
                .map_err(|e| fail(exit::ERROR, e.to_string()))?;
            let pw: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            let file = context::default_password_file();
            if let Some(d) = file.parent() {
                std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            }
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&file)
                .with_context(|| {
                    format!(
                        "writing the generated password to {} (remove it if it is left over)",
                        file.display()
                    )
                })?;
            f.write_all(format!("{pw}\n").as_bytes())?;
            generated = Some(file);
            zeroize::Zeroizing::new(pw.into_bytes())
        }
        None => return Err(context::no_password(&loc)),
    };
    let opts = InitOptions {
        chunk_avg: u32::try_from(a.chunk_size)
            .map_err(|_| fail(exit::ERROR, "chunk size too large"))?,
        compression: a.compression,
        pack_size: u32::try_from(a.pack_size)
            .map_err(|_| fail(exit::ERROR, "pack size too large"))?,
        kdf: KdfParams {
            m_cost_kib: a.kdf_memory_kib,
            t_cost: a.kdf_passes,
            p_cost: 1,
        },
    };
    if !(1 << 20..=1 << 30).contains(&opts.pack_size) {
        return Err(fail(
            exit::ERROR,
            "--pack-size must be between 1MiB and 1GiB",
        ));
    }
    let repo = match Repository::init(storage, &pw, &opts) {
        Ok(r) => r,
        Err(e) => {
            if let Some(f) = &generated {
                let _ = std::fs::remove_file(f);
            }
            return Err(e.into());
        }
    };
    let id = repo.config().id;
    if g.json {
        print_json(&serde_json::json!({
            "message_type": "init",
            "id": id.to_hex(),
            "repository": loc.display.clone(),
            "password_file": generated.as_ref().map(|f| f.display().to_string()),
        }));
    } else if !g.quiet {
        println!("created repository {} at {}", id.short(), loc.display);
        if let Some(f) = &generated {
            println!(
                "A password was generated and written to {} (mode 0600).",
                f.display()
            );
            println!(
                "Keep a copy of it somewhere else: without it this repository cannot be read."
            );
        }
    }
    Ok(exit::OK)
}
