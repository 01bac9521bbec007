//! `lifeboat nodes`: the inventory as Lifeboat resolved it.

use super::print_json;
use crate::cli::{Global, NodesArgs};
use crate::context;
use crate::exit;
use anyhow::Result;
use serde_json::json;

pub fn run(g: &Global, a: &NodesArgs) -> Result<u8> {
    let cfg = context::config(g)?;
    let inv = cfg
        .inventory()
        .map_err(|e| exit::fail(exit::ERROR, format!("{e}\nFix the inventory (see docs/config.md, \"Nodes and groups\") and run `lifeboat nodes` again.")))?;
    let nodes: Vec<&lifeboat_plan::inventory::Node> = match &a.group {
        None => inv.nodes.values().collect(),
        Some(name) => {
            let Some(grp) = inv.groups.get(name) else {
                let known: Vec<&str> = inv.groups.keys().map(String::as_str).collect();
                return Err(exit::fail(
                    exit::ERROR,
                    format!(
                        "no group {name:?} in the inventory ({})",
                        if known.is_empty() {
                            "it has no groups".to_string()
                        } else {
                            format!("groups: {}", known.join(", "))
                        }
                    ),
                ));
            };
            grp.nodes.iter().filter_map(|n| inv.nodes.get(n)).collect()
        }
    };
    if g.json {
        let rows: Vec<_> = nodes
            .iter()
            .map(|n| {
                json!({
                    "name": n.name,
                    "address": n.address,
                    "user": n.user,
                    "port": n.port,
                    "identity": n.identity.as_ref().map(|p| p.display().to_string()),
                    "jump": n.jump,
                    "ssh_args": n.ssh_args,
                    "local": n.local,
                    "groups": n.groups,
                    "components": n.components,
                    "origin": n.origin.as_str(),
                })
            })
            .collect();
        print_json(&json!(rows));
        return Ok(exit::OK);
    }
    if let Some((path, how)) = &inv.ansible_source {
        println!("Ansible inventory {} (read by {how})", path.display());
    }
    if nodes.is_empty() {
        println!(
            "No nodes: add [nodes.NAME] to the configuration or inventory = \"ansible:PATH\"."
        );
        return Ok(exit::OK);
    }
    println!(
        "{:<24} {:<30} {:<28} Components",
        "Node", "Reached as", "Groups"
    );
    println!("{}", "-".repeat(100));
    for n in nodes {
        let mut how = if n.local {
            "local".to_string()
        } else {
            n.destination()
        };
        if let Some(j) = &n.jump {
            how.push_str(&format!(" via {j}"));
        }
        let mut groups = n.groups.iter().cloned().collect::<Vec<_>>().join(",");
        if groups.chars().count() > 28 {
            // The full list is in --json.
            groups = groups.chars().take(25).collect::<String>() + "...";
        }
        let comps = n.components.iter().cloned().collect::<Vec<_>>().join(",");
        println!("{:<24} {how:<30} {groups:<28} {comps}", n.name);
    }
    Ok(exit::OK)
}
