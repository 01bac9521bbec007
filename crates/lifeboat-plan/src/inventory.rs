//! The inventory: the nodes Lifeboat reaches over SSH, the groups they form, and the
//! components each runs.
//!
//! Nodes and groups come from the configuration (`[nodes.NAME]`, `[groups.NAME]`) and, with
//! `inventory = "ansible:PATH"`, from an Ansible inventory; a node or group named in both is
//! one, the configuration's settings winning. Every group a node or group names must exist,
//! every component must be configured, and two nodes must not be the same machine: a typo
//! or a copy-paste is an error here, not a node that is silently never backed up.

use crate::ansible::{self, AnsibleError};
use crate::is_valid_component_name;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A node as the configuration writes it; everything is optional (the name is the address).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Host name or IP address (default: the node's name).
    pub address: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    /// The private key file (`ssh -i`).
    pub identity: Option<PathBuf>,
    /// A jump host: the name of another node, or `[user@]host[:port]` (`ssh -J`).
    pub jump: Option<String>,
    /// Extra `ssh -o` options, `Name=value`.
    #[serde(default)]
    pub ssh_options: Vec<String>,
    /// `local`: this machine itself (no SSH); default `ssh`.
    pub connection: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub components: Vec<String>,
    /// Built-in profiles (docs/profiles.md) whose components it runs.
    #[serde(default)]
    pub profiles: Vec<String>,
    /// Components it does not run after all (from its profiles or its groups).
    #[serde(default)]
    pub skip_components: Vec<String>,
}

/// A group as the configuration writes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// Groups whose nodes belong to this one too.
    #[serde(default)]
    pub children: Vec<String>,
    /// Nodes in the group (besides those that name it in their own `groups`).
    #[serde(default)]
    pub nodes: Vec<String>,
    /// Components every node of the group runs.
    #[serde(default)]
    pub components: Vec<String>,
    /// Built-in profiles whose components every node of the group runs.
    #[serde(default)]
    pub profiles: Vec<String>,
    /// Components of its profiles that its nodes do not run.
    #[serde(default)]
    pub skip_components: Vec<String>,
}

/// Where a node's settings came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Config,
    Ansible,
    Both,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Config => "config",
            Origin::Ansible => "ansible",
            Origin::Both => "ansible+config",
        }
    }
}

/// A node with everything resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub address: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity: Option<PathBuf>,
    /// `ssh -J` argument, a node's name already turned into `[user@]address[:port]`.
    pub jump: Option<String>,
    /// More arguments for ssh, before the destination (from `ssh_options`, or Ansible's
    /// `ansible_ssh_common_args` and `ansible_ssh_extra_args`).
    pub ssh_args: Vec<String>,
    /// The machine Lifeboat runs on: reached without SSH.
    pub local: bool,
    /// Every group it is in, directly or through children.
    pub groups: BTreeSet<String>,
    /// Its own components and its groups'.
    pub components: BTreeSet<String>,
    pub origin: Origin,
}

impl Node {
    /// `[user@]address[:port]` as the operator would type it.
    pub fn destination(&self) -> String {
        let user = self
            .user
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let host = if self.address.contains(':') {
            format!("[{}]", self.address)
        } else {
            self.address.clone()
        };
        match self.port {
            Some(p) => format!("{user}{host}:{p}"),
            None => format!("{user}{}", self.address),
        }
    }

    /// The arguments for `ssh` that reach the node, up to and including the address (the
    /// remote command follows).
    pub fn ssh_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        if let Some(p) = self.port {
            a.extend(["-p".to_string(), p.to_string()]);
        }
        if let Some(u) = &self.user {
            a.extend(["-l".to_string(), u.clone()]);
        }
        if let Some(i) = &self.identity {
            a.extend(["-i".to_string(), i.display().to_string()]);
            a.extend(["-o".to_string(), "IdentitiesOnly=yes".to_string()]);
        }
        if let Some(j) = &self.jump {
            a.extend(["-J".to_string(), j.clone()]);
        }
        a.extend(self.ssh_args.iter().cloned());
        a.extend(["--".to_string(), self.address.clone()]);
        a
    }
}

/// A group with its members resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub children: BTreeSet<String>,
    /// Every node in it, through children too.
    pub nodes: BTreeSet<String>,
    pub components: BTreeSet<String>,
}

#[derive(Debug, Default, Clone)]
pub struct Inventory {
    pub nodes: BTreeMap<String, Node>,
    pub groups: BTreeMap<String, Group>,
    /// The Ansible inventory that was read, if any, and how (`ansible-inventory` or the
    /// built-in reader).
    pub ansible_source: Option<(PathBuf, &'static str)>,
}

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error(transparent)]
    Ansible(#[from] AnsibleError),
    #[error("inventory: {0}")]
    Invalid(String),
}

/// How the Ansible inventory is read: `ansible-inventory` from PATH when there is one, unless
/// `LIFEBOAT_ANSIBLE_INVENTORY` says `builtin` (or names another program).
pub fn ansible_program() -> Option<PathBuf> {
    match std::env::var("LIFEBOAT_ANSIBLE_INVENTORY") {
        Ok(v) if v == "builtin" => None,
        Ok(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("ansible-inventory"))
                .find(|p| p.is_file())
        }),
    }
}

/// The `inventory` setting: `ansible:PATH`, PATH relative to the configuration file.
pub fn ansible_path(setting: &str, config_dir: &Path) -> Result<PathBuf, InventoryError> {
    let p = setting.strip_prefix("ansible:").ok_or_else(|| {
        InventoryError::Invalid(format!(
            "inventory = {setting:?}: write \"ansible:PATH\" (an Ansible inventory file or directory)"
        ))
    })?;
    if p.is_empty() {
        return Err(InventoryError::Invalid(
            "inventory = \"ansible:\": the path is missing".into(),
        ));
    }
    Ok(config_dir.join(p))
}

/// Builds the inventory from the configuration's nodes and groups and, when given, an Ansible
/// inventory (already read). `components` are the configured component names.
pub fn build(
    nodes: &BTreeMap<String, NodeConfig>,
    groups: &BTreeMap<String, GroupConfig>,
    ansible: Option<(&ansible::Inventory, &Path, &'static str)>,
    components: &BTreeSet<String>,
) -> Result<Inventory, InventoryError> {
    let bad = |m: String| InventoryError::Invalid(m);
    // Start from Ansible's hosts and groups.
    let mut raw_nodes: BTreeMap<String, (NodeConfig, Origin)> = BTreeMap::new();
    let mut raw_groups: BTreeMap<String, GroupConfig> = BTreeMap::new();
    if let Some((inv, path, _)) = ansible {
        let shown = path.display().to_string();
        for h in inv.hosts(&shown)? {
            let cfg =
                node_from_ansible(&h).map_err(|m| bad(format!("{shown}: host {}: {m}", h.name)))?;
            raw_nodes.insert(h.name.clone(), (cfg, Origin::Ansible));
        }
        for (name, g) in &inv.groups {
            if name == "all" || name == "ungrouped" {
                continue;
            }
            raw_groups.insert(
                name.clone(),
                GroupConfig {
                    children: g.children.iter().cloned().collect(),
                    nodes: g.hosts.iter().cloned().collect(),
                    ..GroupConfig::default()
                },
            );
        }
    }
    // The configuration's own, merged over Ansible's.
    for (name, n) in nodes {
        match raw_nodes.get_mut(name) {
            Some((base, origin)) => {
                merge_node(base, n);
                *origin = Origin::Both;
            }
            None => {
                raw_nodes.insert(name.clone(), (n.clone(), Origin::Config));
            }
        }
    }
    for (name, g) in groups {
        let e = raw_groups.entry(name.clone()).or_default();
        e.children.extend(g.children.iter().cloned());
        e.nodes.extend(g.nodes.iter().cloned());
        e.components.extend(g.components.iter().cloned());
        e.skip_components.extend(g.skip_components.iter().cloned());
    }

    // Names and references.
    for name in raw_nodes.keys().chain(raw_groups.keys()) {
        if !is_valid_component_name(name) {
            return Err(bad(format!(
                "{name:?} is not a usable node or group name: use letters, digits, '-', '_', '.', '@'"
            )));
        }
    }
    if let Some(n) = raw_nodes.keys().find(|n| raw_groups.contains_key(*n)) {
        return Err(bad(format!(
            "{n:?} is both a node and a group; rename one of them"
        )));
    }
    let group_list = |except: &str| {
        let names: Vec<&str> = raw_groups
            .keys()
            .map(String::as_str)
            .filter(|g| *g != except)
            .collect();
        if names.is_empty() {
            "none is defined".to_string()
        } else {
            format!("defined: {}", names.join(", "))
        }
    };
    for (name, (n, _)) in &raw_nodes {
        for g in &n.groups {
            if !raw_groups.contains_key(g) {
                return Err(bad(format!(
                    "node {name}: group {g:?} is not defined ({}); add [groups.{g}] or fix the name",
                    group_list("")
                )));
            }
        }
        for c in n.components.iter().chain(&n.skip_components) {
            if !components.contains(c) {
                return Err(bad(format!(
                    "node {name}: component {c:?} is not configured; add [components.{c}] or fix the name"
                )));
            }
        }
    }
    for (name, g) in &raw_groups {
        for c in &g.children {
            if !raw_groups.contains_key(c) {
                return Err(bad(format!(
                    "group {name}: child group {c:?} is not defined ({})",
                    group_list(name)
                )));
            }
        }
        for n in &g.nodes {
            if !raw_nodes.contains_key(n) {
                return Err(bad(format!(
                    "group {name}: node {n:?} is not defined; add [nodes.{n}] or fix the name"
                )));
            }
        }
        for c in g.components.iter().chain(&g.skip_components) {
            if !components.contains(c) {
                return Err(bad(format!(
                    "group {name}: component {c:?} is not configured; add [components.{c}] or fix the name"
                )));
            }
        }
    }

    // Membership: a group's own nodes, those that name it, and its children's (no cycles).
    let mut direct: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, g) in &raw_groups {
        direct
            .entry(name)
            .or_default()
            .extend(g.nodes.iter().map(String::as_str));
    }
    for (name, (n, _)) in &raw_nodes {
        for g in &n.groups {
            direct.entry(g).or_default().insert(name);
        }
    }
    let mut groups_out = BTreeMap::new();
    for (name, g) in &raw_groups {
        let mut members = BTreeSet::new();
        let mut stack: Vec<(&str, Vec<&str>)> = vec![(name.as_str(), vec![name.as_str()])];
        let mut seen = BTreeSet::new();
        while let Some((cur, trail)) = stack.pop() {
            if let Some(m) = direct.get(cur) {
                members.extend(m.iter().map(|s| s.to_string()));
            }
            for c in raw_groups
                .get(cur)
                .map(|x| &x.children)
                .into_iter()
                .flatten()
            {
                if trail.contains(&c.as_str()) {
                    return Err(bad(format!(
                        "groups contain each other: {} -> {c}",
                        trail.join(" -> ")
                    )));
                }
                if seen.insert((cur, c.as_str())) {
                    let mut t = trail.clone();
                    t.push(c);
                    stack.push((c, t));
                }
            }
        }
        groups_out.insert(
            name.clone(),
            Group {
                name: name.clone(),
                children: g.children.iter().cloned().collect(),
                nodes: members,
                components: g.components.iter().cloned().collect(),
            },
        );
    }

    // Resolve each node.
    let mut out = BTreeMap::new();
    for (name, (n, origin)) in &raw_nodes {
        let address = n.address.clone().unwrap_or_else(|| name.clone());
        if address.contains("{{") || address.contains("{%") {
            return Err(bad(format!(
                "node {name}: its address {address:?} is a Jinja template, which Lifeboat does not evaluate; set `address` in [nodes.{name}]"
            )));
        }
        if address.is_empty() || address.starts_with('-') || address.contains(char::is_whitespace) {
            return Err(bad(format!(
                "node {name}: {address:?} is not a host name or address"
            )));
        }
        let local = match n.connection.as_deref() {
            None | Some("ssh") | Some("smart") | Some("paramiko") => false,
            Some("local") => true,
            Some(other) => {
                return Err(bad(format!(
                    "node {name}: connection {other:?} is not supported (ssh or local)"
                )));
            }
        };
        let groups: BTreeSet<String> = groups_out
            .values()
            .filter(|g| g.nodes.contains(name))
            .map(|g| g.name.clone())
            .collect();
        let mut comps: BTreeSet<String> = n.components.iter().cloned().collect();
        for g in &groups {
            comps.extend(groups_out[g].components.iter().cloned());
        }
        for c in &n.skip_components {
            comps.remove(c);
        }
        let mut ssh_args = Vec::new();
        for o in &n.ssh_options {
            if !o.contains('=') || o.starts_with('-') {
                return Err(bad(format!(
                    "node {name}: ssh option {o:?} is not Name=value (as `ssh -o` takes)"
                )));
            }
            ssh_args.extend(["-o".to_string(), o.clone()]);
        }
        out.insert(
            name.clone(),
            Node {
                name: name.clone(),
                address,
                user: n.user.clone(),
                port: n.port,
                identity: n.identity.clone(),
                jump: n.jump.clone(),
                ssh_args,
                local,
                groups,
                components: comps,
                origin: *origin,
            },
        );
    }
    // Jump hosts that name a node become that node's destination.
    let dests: BTreeMap<String, String> = out
        .iter()
        .map(|(k, v)| (k.clone(), v.destination()))
        .collect();
    for (name, node) in out.iter_mut() {
        if let Some(j) = &node.jump {
            if j == name {
                return Err(bad(format!("node {name}: it cannot be its own jump host")));
            }
            if let Some(d) = dests.get(j) {
                node.jump = Some(d.clone());
            } else if j.is_empty() || j.starts_with('-') || j.contains(char::is_whitespace) {
                return Err(bad(format!(
                    "node {name}: jump {j:?} is neither a node nor [user@]host[:port]"
                )));
            }
        }
    }
    // One machine, one node: the same address and port twice is a copy-paste slip, and would
    // back the machine up twice under two names.
    let mut seen: BTreeMap<(String, u16), &str> = BTreeMap::new();
    for (name, node) in &out {
        if node.local {
            continue;
        }
        let key = (node.address.to_ascii_lowercase(), node.port.unwrap_or(22));
        if let Some(other) = seen.insert(key.clone(), name) {
            return Err(bad(format!(
                "nodes {other} and {name} are the same machine ({}:{}): keep one of them, or give them different addresses",
                key.0, key.1
            )));
        }
    }
    Ok(Inventory {
        nodes: out,
        groups: groups_out,
        ansible_source: ansible.map(|(_, p, how)| (p.to_path_buf(), how)),
    })
}

/// A node's settings from its Ansible variables.
fn node_from_ansible(h: &ansible::Host) -> Result<NodeConfig, String> {
    let var = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| h.vars.get(*n))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let port = match var(&["ansible_port", "ansible_ssh_port"]) {
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| format!("ansible_port {p:?} is not a port number"))?,
        ),
        None => None,
    };
    let mut ssh_args = Vec::new();
    for key in ["ansible_ssh_common_args", "ansible_ssh_extra_args"] {
        if let Some(v) = var(&[key]) {
            let words = shlex::split(&v).ok_or_else(|| format!("{key}: unbalanced quotes"))?;
            ssh_args.extend(words);
        }
    }
    // Kept as `-o Name=value` pairs; anything else ssh takes is passed as it is.
    let mut options = Vec::new();
    let mut jump = None;
    let mut it = ssh_args.into_iter();
    let mut rest = Vec::new();
    while let Some(w) = it.next() {
        match w.as_str() {
            "-o" => match it.next() {
                Some(o) => options.push(o),
                None => return Err("ansible_ssh_common_args ends with -o".into()),
            },
            "-J" => jump = it.next(),
            _ if w.starts_with("-o") && w.len() > 2 => options.push(w[2..].to_string()),
            _ => rest.push(w),
        }
    }
    if !rest.is_empty() {
        return Err(format!(
            "ssh arguments {rest:?} in ansible_ssh_common_args/_extra_args are not supported; use -o Name=value or -J"
        ));
    }
    Ok(NodeConfig {
        address: var(&["ansible_host", "ansible_ssh_host"]),
        user: var(&["ansible_user", "ansible_ssh_user"]),
        port,
        identity: var(&["ansible_ssh_private_key_file", "ansible_private_key_file"])
            .map(PathBuf::from),
        jump,
        ssh_options: options,
        connection: var(&["ansible_connection"]),
        ..NodeConfig::default()
    })
}

/// The configuration's settings over Ansible's, one by one.
fn merge_node(base: &mut NodeConfig, over: &NodeConfig) {
    if over.address.is_some() {
        base.address = over.address.clone();
    }
    if over.user.is_some() {
        base.user = over.user.clone();
    }
    if over.port.is_some() {
        base.port = over.port;
    }
    if over.identity.is_some() {
        base.identity = over.identity.clone();
    }
    if over.jump.is_some() {
        base.jump = over.jump.clone();
    }
    if over.connection.is_some() {
        base.connection = over.connection.clone();
    }
    base.ssh_options.extend(over.ssh_options.iter().cloned());
    base.groups.extend(over.groups.iter().cloned());
    base.components.extend(over.components.iter().cloned());
    base.skip_components
        .extend(over.skip_components.iter().cloned());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comps(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn nodes(toml_text: &str) -> (BTreeMap<String, NodeConfig>, BTreeMap<String, GroupConfig>) {
        #[derive(Deserialize)]
        struct T {
            #[serde(default)]
            nodes: BTreeMap<String, NodeConfig>,
            #[serde(default)]
            groups: BTreeMap<String, GroupConfig>,
        }
        let t: T = toml::from_str(toml_text).unwrap();
        (t.nodes, t.groups)
    }

    #[test]
    fn config_nodes_groups_and_components() {
        let (n, g) = nodes(
            r#"
[nodes.director]
address = "127.0.0.1"
connection = "local"
[nodes.ctrl1]
address = "10.0.0.11"
user = "heat-admin"
jump = "bastion"
groups = ["controller"]
components = ["etc"]
[nodes.bastion]
address = "192.0.2.1"
port = 2200
user = "ops"
[groups.controller]
components = ["db"]
[groups.overcloud]
children = ["controller"]
nodes = ["director"]
"#,
        );
        let inv = build(&n, &g, None, &comps(&["etc", "db"])).unwrap();
        let c = &inv.nodes["ctrl1"];
        assert_eq!(c.jump.as_deref(), Some("ops@192.0.2.1:2200"));
        assert_eq!(c.components, comps(&["db", "etc"]));
        assert_eq!(c.groups, comps(&["controller", "overcloud"]));
        assert_eq!(inv.groups["overcloud"].nodes, comps(&["ctrl1", "director"]));
        assert!(inv.nodes["director"].local);
        assert_eq!(
            c.ssh_args(),
            [
                "-l",
                "heat-admin",
                "-J",
                "ops@192.0.2.1:2200",
                "--",
                "10.0.0.11"
            ]
        );
    }

    #[test]
    fn mistakes_are_errors_that_name_the_fix() {
        let cases = [
            (
                "[nodes.a]\ngroups = [\"controler\"]\n[groups.controller]\n",
                "group \"controler\" is not defined (defined: controller)",
            ),
            (
                "[nodes.a]\ncomponents = [\"nova\"]\n",
                "component \"nova\" is not configured",
            ),
            (
                "[groups.g]\nchildren = [\"h\"]\n",
                "child group \"h\" is not defined",
            ),
            ("[groups.g]\nnodes = [\"x\"]\n", "node \"x\" is not defined"),
            (
                "[groups.a]\nchildren = [\"b\"]\n[groups.b]\nchildren = [\"a\"]\n",
                "contain each other",
            ),
            (
                "[nodes.a]\naddress = \"10.0.0.1\"\n[nodes.b]\naddress = \"10.0.0.1\"\nport = 22\n",
                "nodes a and b are the same machine (10.0.0.1:22)",
            ),
            ("[nodes.a]\nconnection = \"winrm\"\n", "not supported"),
            ("[nodes.a]\nssh_options = [\"-v\"]\n", "not Name=value"),
            ("[nodes.a]\njump = \"a\"\n", "its own jump host"),
            ("[nodes.a]\n[groups.a]\n", "both a node and a group"),
            ("[nodes.a]\naddress = \"{{ ip }}\"\n", "Jinja template"),
        ];
        for (text, want) in cases {
            let (n, g) = nodes(text);
            let e = build(&n, &g, None, &comps(&[])).unwrap_err().to_string();
            assert!(e.contains(want), "{text}\n-> {e}\nwanted {want:?}");
        }
    }

    #[test]
    fn ansible_hosts_become_nodes_and_config_overrides_them() {
        let inv = ansible::parse_ini(
            "[Controller]\nctrl-[0:1] ansible_user=tripleo-admin\n[Controller:vars]\nansible_ssh_common_args='-o StrictHostKeyChecking=yes -J stack@director'\n[undercloud]\nuc ansible_connection=local\n",
            "inv.ini",
        )
        .unwrap();
        let (n, g) = nodes(
            "[nodes.ctrl-1]\naddress = \"127.0.0.3\"\ncomponents = [\"etc\"]\n[groups.Controller]\ncomponents = [\"db\"]\n",
        );
        let out = build(
            &n,
            &g,
            Some((&inv, Path::new("inv.ini"), "builtin")),
            &comps(&["etc", "db"]),
        )
        .unwrap();
        let c0 = &out.nodes["ctrl-0"];
        assert_eq!(c0.address, "ctrl-0");
        assert_eq!(c0.user.as_deref(), Some("tripleo-admin"));
        assert_eq!(c0.jump.as_deref(), Some("stack@director"));
        assert_eq!(c0.ssh_args, ["-o", "StrictHostKeyChecking=yes"]);
        assert_eq!(c0.origin, Origin::Ansible);
        let c1 = &out.nodes["ctrl-1"];
        assert_eq!(c1.address, "127.0.0.3");
        assert_eq!(c1.components, comps(&["db", "etc"]));
        assert_eq!(c1.origin, Origin::Both);
        assert!(out.nodes["uc"].local);
    }
}
