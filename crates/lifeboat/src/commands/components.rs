//! `lifeboat components`: the configured components and their last good backup.

use super::print_json;
use crate::cli::Global;
use crate::context;
use crate::exit;
use crate::ui;
use anyhow::Result;
use serde_json::json;

pub fn run(g: &Global) -> Result<u8> {
    let cfg = context::config(g)?;
    let repo = context::open(g)?;
    let (snaps, _) = repo.snapshots()?;
    let status = lifeboat_plan::component_status(cfg.components.keys().cloned(), &snaps);
    if g.json {
        let rows: Vec<_> = cfg
            .components
            .iter()
            .map(|(name, c)| {
                let st = status.get(name).cloned().unwrap_or_default();
                json!({
                    "name": name,
                    "kind": c.kind.name(),
                    "what": c.describe(),
                    "snapshots": st.snapshots,
                    "last_good": st.last_good.map(|(id, t)| json!({"snapshot": id.to_hex(), "time": t.to_string()})),
                    "last": st.last.map(|(id, t, complete)| json!({"snapshot": id.to_hex(), "time": t.to_string(), "complete": complete})),
                })
            })
            .collect();
        print_json(&json!(rows));
        return Ok(exit::OK);
    }
    println!(
        "{:<24} {:<8} {:<21} {:<9} What",
        "Component", "Kind", "Last good backup", "Snapshot"
    );
    println!("{}", "-".repeat(96));
    for (name, c) in &cfg.components {
        let st = status.get(name).cloned().unwrap_or_default();
        let (when, id) = match st.last_good {
            Some((id, t)) => (ui::local_time(&t), id.short()),
            None => ("never".to_string(), String::new()),
        };
        let mut what = c.describe();
        if what.chars().count() > 60 {
            what = what.chars().take(57).collect::<String>() + "...";
        }
        println!("{name:<24} {:<8} {when:<21} {id:<9} {what}", c.kind.name());
        if let Some((_, _, false)) = st.last {
            println!("{:<24} (the newest backup is INCOMPLETE)", "");
        }
    }
    Ok(exit::OK)
}
