//! `lifeboat profiles`: the built-in OpenStack profiles and the components they stand for.

use super::print_json;
use crate::cli::{Global, ProfilesArgs};
use crate::exit;
use anyhow::Result;
use lifeboat_plan::profiles::{self, PROFILES};
use serde_json::json;

pub fn run(g: &Global, a: &ProfilesArgs) -> Result<u8> {
    let chosen: Vec<&profiles::Profile> = match &a.name {
        None => PROFILES.iter().collect(),
        Some(n) => vec![profiles::find(n).ok_or_else(|| {
            exit::fail(
                exit::ERROR,
                format!(
                    "no built-in profile {n:?}; the profiles are {}",
                    profiles::names()
                ),
            )
        })?],
    };
    if g.json {
        let rows: Vec<_> = chosen
            .iter()
            .map(|p| {
                let comps: Vec<_> = p
                    .components()
                    .iter()
                    .map(|(name, c)| json!({"name": name, "kind": c.kind.name(), "what": c.describe()}))
                    .collect();
                json!({
                    "name": p.name,
                    "aliases": p.aliases,
                    "summary": p.summary,
                    "components": comps,
                    "config": p.toml,
                })
            })
            .collect();
        print_json(&json!(rows));
        return Ok(exit::OK);
    }
    for (i, p) in chosen.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let aliases = if p.aliases.is_empty() {
            String::new()
        } else {
            format!(" (also: {})", p.aliases.join(", "))
        };
        println!("# profile {}{aliases}: {}", p.name, p.summary);
        print!("{}", p.toml);
    }
    Ok(exit::OK)
}
