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
    if a.check {
        return check(g, a, &nodes);
    }
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

/// How Lifeboat reaches a node: the inventory's settings, after `--ssh-config` and
/// `--ssh-option`.
pub fn ssh_node(g: &Global, n: &lifeboat_plan::inventory::Node) -> lifeboat_exec::SshNode {
    lifeboat_exec::SshNode {
        name: n.name.clone(),
        host: n.address.clone(),
        args: n.ssh_args(),
        global_args: context::ssh_global_args(g),
        program: context::ssh_program()
            .unwrap_or_else(|| "ssh".into())
            .into(),
        local: n.local,
        multiplex: true,
    }
}

/// `nodes --check`: every node at once (8 at a time), each one's facts or its error.
fn check(g: &Global, a: &NodesArgs, nodes: &[&lifeboat_plan::inventory::Node]) -> Result<u8> {
    let timeout = std::time::Duration::from_secs(a.timeout.max(1));
    let mut results: Vec<Result<lifeboat_exec::Facts, lifeboat_exec::ExecError>> = Vec::new();
    for batch in nodes.chunks(8) {
        let got: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = batch
                .iter()
                .map(|n| {
                    let sn = ssh_node(g, n);
                    s.spawn(move || lifeboat_exec::facts(&sn, timeout))
                })
                .collect();
            hs.into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(lifeboat_exec::ExecError::Spawn(std::io::Error::other(
                            "the check thread panicked",
                        )))
                    })
                })
                .collect()
        });
        results.extend(got);
    }
    let failed = results.iter().filter(|r| r.is_err()).count();
    if g.json {
        let rows: Vec<_> = nodes
            .iter()
            .zip(&results)
            .map(|(n, r)| match r {
                Ok(f) => json!({
                    "name": n.name,
                    "ok": true,
                    "facts": {
                        "hostname": f.hostname,
                        "os": f.os,
                        "kernel": f.kernel,
                        "arch": f.arch,
                        "interfaces": f.interfaces.iter().map(|(i, m)| json!({"name": i, "mac": m})).collect::<Vec<_>>(),
                    },
                }),
                Err(e) => json!({
                    "name": n.name,
                    "ok": false,
                    "error": e.to_string(),
                    "retryable": e.is_retryable(),
                }),
            })
            .collect();
        print_json(&json!(rows));
    } else {
        println!(
            "{:<24} {:<6} {:<20} {:<32} Kernel",
            "Node", "Status", "Hostname", "OS"
        );
        println!("{}", "-".repeat(100));
        for (n, r) in nodes.iter().zip(&results) {
            match r {
                Ok(f) => println!(
                    "{:<24} {:<6} {:<20} {:<32} {}",
                    n.name, "ok", f.hostname, f.os, f.kernel
                ),
                Err(_) => println!("{:<24} FAILED", n.name),
            }
        }
        for r in results.iter().filter_map(|r| r.as_ref().err()) {
            eprintln!("lifeboat: {r}");
        }
    }
    if failed > 0 {
        eprintln!(
            "lifeboat: {failed} of {} nodes failed the check; the others are fine",
            nodes.len()
        );
        return Ok(exit::ERROR);
    }
    Ok(exit::OK)
}
