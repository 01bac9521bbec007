//! `lifeboat key list|add|remove|passwd`: the repository's key files, one per password.

use super::print_json;
use crate::cli::{Global, KeyArgs, KeyCommand, NewKeyArgs};
use crate::context;
use crate::exit::{self, fail};
use crate::ui;
use anyhow::{Context as _, Result};
use lifeboat_format::KdfParams;
use lifeboat_repo::{KeyInfo, Repository};
use serde_json::{Value, json};
use std::io::IsTerminal;
use zeroize::Zeroizing;

pub fn run(g: &Global, a: KeyArgs) -> Result<u8> {
    match a.command {
        KeyCommand::List => list(g),
        KeyCommand::Add(n) => add(g, n),
        KeyCommand::Remove { id } => remove(g, &id),
        KeyCommand::Passwd(n) => passwd(g, n),
        KeyCommand::Rotate { new, yes, now } => rotate(g, new, yes, now),
    }
}

fn rotate(g: &Global, n: NewKeyArgs, yes: bool, now: bool) -> Result<u8> {
    let mut repo = open(g)?;
    let others: Vec<String> = repo
        .storage()
        .list(lifeboat_storage::FileKind::Key)?
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k != repo.current_key())
        .collect();
    if !others.is_empty() && !yes {
        return Err(fail(
            exit::ERROR,
            format!(
                "rotation removes the {} other key file(s) (their passwords stop opening the repository; add them again afterwards with `lifeboat key add`); run again with --yes to go on",
                others.len()
            ),
        ));
    }
    let pw = new_password(&n)?;
    let lease =
        lifeboat_repo::MaintenanceLease::acquire(&repo, &super::prune::holder("key rotate"))?;
    let r = repo.rotate_key(&lease, &pw, kdf(&n))?;
    drop(lease);
    if g.json {
        print_json(&json!({
            "message_type": "key_rotated",
            "id": r.key.to_hex(),
            "generation": format!("{:016x}", r.generation),
            "removed": r.removed,
        }));
    } else if !g.quiet {
        println!(
            "rotated the data key: new key file {} (the new password); {} other key file(s) removed",
            r.key.short(),
            r.removed.len()
        );
    }
    if now {
        // A prune that repacks everything sealed under an old key, whatever its size.
        let args = crate::cli::PruneArgs {
            keep_delete: std::time::Duration::from_secs(24 * 3600),
            max_unused: 5.0,
            max_repack: None,
            dry_run: false,
            verbose: false,
        };
        repo.load_index()?;
        let code = super::prune::prune_open(g, &mut repo, &args, Default::default())?;
        if !g.quiet && !g.json {
            println!(
                "existing data is re-encrypted; the packs under the old key are marked and a prune deletes them after the grace period (`lifeboat prune --keep-delete 0` now, if no backup is running)"
            );
        }
        return Ok(code);
    } else if !g.quiet && !g.json {
        println!(
            "new data is encrypted with the new key; `lifeboat prune` re-encrypts existing data (or run `lifeboat key rotate --now` next time)"
        );
    }
    Ok(exit::OK)
}

/// Opens the repository with the current password, without loading the index: key files
/// are all these commands touch, and the index of a large repository takes a while to read.
fn open(g: &Global) -> Result<Repository> {
    let loc = context::location(g)?;
    let storage = context::storage(g, &loc)?;
    // A missing repository is reported before asking for a password that cannot help.
    if let Err(lifeboat_storage::StorageError::NotFound(_)) =
        storage.size(&lifeboat_storage::Handle::config())
    {
        return Err(lifeboat_repo::RepoError::NotARepository(storage.location()).into());
    }
    let pw = context::password(g, &loc, false)?.ok_or_else(|| context::no_password(&loc))?;
    Ok(Repository::open(storage, &pw)?)
}

fn key_json(k: &KeyInfo) -> Value {
    json!({
        "id": k.name,
        "short_id": k.name.chars().take(8).collect::<String>(),
        "current": k.current,
        "kdf": k.kdf.map(|p| json!({
            "algorithm": "argon2id",
            "memory_kib": p.m_cost_kib,
            "passes": p.t_cost,
            "lanes": p.p_cost,
        })),
        "damaged": k.damaged,
    })
}

fn list(g: &Global) -> Result<u8> {
    let repo = open(g)?;
    let keys = repo.key_files()?;
    if g.json {
        print_json(&Value::Array(keys.iter().map(key_json).collect()));
        return Ok(exit::OK);
    }
    println!(
        "  {:<9} {:>10} {:>6} {:>5}  Status",
        "ID", "Memory", "Passes", "Lanes"
    );
    println!("{}", "-".repeat(50));
    for k in &keys {
        let (mem, passes, lanes) = match k.kdf {
            Some(p) => (
                ui::size(u64::from(p.m_cost_kib) * 1024),
                p.t_cost.to_string(),
                p.p_cost.to_string(),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let status = match (&k.damaged, k.current) {
            (Some(why), _) => format!("DAMAGED: {why}"),
            (None, true) => "opened with this password".to_string(),
            (None, false) => String::new(),
        };
        // A name that is not an id (not written by Lifeboat) is shown whole: it is the only
        // way to find the file.
        let shown = match k.id() {
            Some(id) => id.short(),
            None => k.name.clone(),
        };
        println!(
            "{} {:<9} {:>10} {:>6} {:>5}  {}",
            if k.current { '*' } else { ' ' },
            shown,
            mem,
            passes,
            lanes,
            status
        );
    }
    let damaged = keys.iter().filter(|k| k.damaged.is_some()).count();
    if damaged > 0 {
        println!("{} keys, {damaged} damaged", keys.len());
    } else {
        println!("{} keys", keys.len());
    }
    Ok(exit::OK)
}

fn kdf(n: &NewKeyArgs) -> KdfParams {
    KdfParams {
        m_cost_kib: n.kdf_memory_kib,
        t_cost: n.kdf_passes,
        p_cost: KdfParams::DEFAULT.p_cost,
    }
}

fn add(g: &Global, n: NewKeyArgs) -> Result<u8> {
    // The current password first: a wrong one fails (exit 12) before a new one is asked for.
    let repo = open(g)?;
    let pw = new_password(&n)?;
    let id = repo.add_key(&pw, kdf(&n))?;
    if g.json {
        print_json(&json!({"message_type": "key_added", "id": id.to_hex()}));
    } else if !g.quiet {
        println!("added key {}", id.short());
    }
    Ok(exit::OK)
}

fn remove(g: &Global, spec: &str) -> Result<u8> {
    let repo = open(g)?;
    let id = repo.find_key(spec)?;
    // Under the maintenance lease: two sessions opened with different keys could otherwise
    // each remove the other's key at the same moment and leave none.
    let _lease =
        lifeboat_repo::MaintenanceLease::acquire(&repo, &super::prune::holder("key remove"))?;
    repo.remove_key(&id)?;
    if g.json {
        print_json(&json!({"message_type": "key_removed", "id": id.to_hex()}));
    } else if !g.quiet {
        println!("removed key {}", id.short());
    }
    Ok(exit::OK)
}

fn passwd(g: &Global, n: NewKeyArgs) -> Result<u8> {
    let mut repo = open(g)?;
    let old = repo.current_key().to_string();
    let pw = new_password(&n)?;
    let lease =
        lifeboat_repo::MaintenanceLease::acquire(&repo, &super::prune::holder("key passwd"))?;
    let id = repo.change_password(&pw, kdf(&n))?;
    drop(lease);
    if g.json {
        print_json(&json!({
            "message_type": "key_changed",
            "id": id.to_hex(),
            "removed": old,
        }));
    } else if !g.quiet {
        println!(
            "password changed: key {} replaces key {}",
            id.short(),
            old.chars().take(8).collect::<String>()
        );
    }
    Ok(exit::OK)
}

/// The new password of `key add`/`key passwd`, from (in order) --new-password-file,
/// LIFEBOAT_NEW_PASSWORD, or a prompt on a terminal asked twice. Like the current password,
/// it never goes into argv or messages.
fn new_password(n: &NewKeyArgs) -> Result<Zeroizing<Vec<u8>>> {
    let pw = if let Some(f) = &n.new_password_file {
        let b = Zeroizing::new(
            std::fs::read(f)
                .with_context(|| format!("reading the new password file {}", f.display()))?,
        );
        first_line(&b)
    } else if let Some(p) = std::env::var_os("LIFEBOAT_NEW_PASSWORD") {
        use std::os::unix::ffi::OsStrExt;
        Zeroizing::new(p.as_bytes().to_vec())
    } else if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        let p = Zeroizing::new(
            rpassword::prompt_password("New password: ").context("reading the new password")?,
        );
        let again = Zeroizing::new(
            rpassword::prompt_password("Repeat the new password: ")
                .context("reading the new password")?,
        );
        if *p != *again {
            return Err(fail(exit::ERROR, "the new passwords do not match"));
        }
        Zeroizing::new(p.as_bytes().to_vec())
    } else {
        return Err(fail(
            exit::ERROR,
            "no new password: give --new-password-file FILE, set LIFEBOAT_NEW_PASSWORD, or run on a terminal",
        ));
    };
    // An empty file or variable is far more likely a mistake than a chosen password.
    if pw.is_empty() {
        return Err(fail(exit::ERROR, "the new password is empty; refusing it"));
    }
    Ok(pw)
}

/// The first line of a password file, without its line ending (as for --password-file).
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
