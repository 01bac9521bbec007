//! Ansible inventories: the hosts, groups and variables of a static INI or YAML inventory, or
//! of `ansible-inventory --list` output (which covers every other kind, dynamic ones
//! included, and is what OpenStack-Ansible keeps in `openstack_inventory.json`).
//!
//! When Ansible is installed, [`load`] asks `ansible-inventory` itself; otherwise the readers
//! here handle executable inventory scripts (run with `--list`) and the static formats: sections and `:children`/`:vars` in INI, `hosts`/`vars`/
//! `children` in YAML, host ranges such as `ctrl[1:3]` or `web[01:10:2]` or `db-[a:c]`,
//! `host:port`, and `group_vars/` and `host_vars/` beside the inventory. Variables are
//! resolved the way Ansible orders them: `all`, then groups from the shallowest to the
//! deepest (by name within a depth), then the host's own. Values stay text, as written: only
//! the connection variables (`ansible_host`, `_port`, `_user`, ...) are used, and Jinja
//! templates are not evaluated.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Variables: name to value, as text.
pub type Vars = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum AnsibleError {
    #[error("cannot read the Ansible inventory {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("Ansible inventory {path}, line {line}: {message}")]
    Syntax {
        path: String,
        line: usize,
        message: String,
    },
    #[error("Ansible inventory {path}: {message}")]
    Invalid { path: String, message: String },
    #[error("`ansible-inventory -i {path} --list` failed: {message}")]
    Program { path: String, message: String },
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Group {
    /// Hosts listed in the group itself (not its children's).
    pub hosts: BTreeSet<String>,
    pub children: BTreeSet<String>,
    pub vars: Vars,
}

/// An inventory as written: groups (with `all`), and each host's own variables.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Inventory {
    pub groups: BTreeMap<String, Group>,
    pub host_vars: BTreeMap<String, Vars>,
}

/// One host with everything resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    /// Every group it is in, directly or through children, without `all` and `ungrouped`.
    pub groups: BTreeSet<String>,
    pub vars: Vars,
}

/// Reads the inventory at `path` (a file, or a directory of inventory files): through
/// `program` (`ansible-inventory`) when it is given, else with the readers here.
pub fn load(path: &Path, program: Option<&Path>) -> Result<Inventory, AnsibleError> {
    // A saved `--list` output (OpenStack-Ansible's openstack_inventory.json) is what a
    // dynamic inventory prints, which Ansible itself only reads through a script.
    let saved_list = path.is_file() && path.extension().is_some_and(|e| e == "json");
    match program {
        Some(p) if !saved_list => run_program(p, path),
        _ => read_static(path),
    }
}

/// An executable inventory file is a dynamic inventory script: run with `--list`, as
/// Ansible's script plugin does.
fn is_script(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn run_script(path: &Path) -> Result<Inventory, AnsibleError> {
    let shown = path.display().to_string();
    let out = std::process::Command::new(path)
        .arg("--list")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| AnsibleError::Program {
            path: shown.clone(),
            message: format!("cannot run the inventory script: {e}"),
        })?;
    if !out.status.success() {
        return Err(AnsibleError::Program {
            path: shown,
            message: format!(
                "the inventory script failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    parse_list_json(&String::from_utf8_lossy(&out.stdout), &shown)
}

/// `ansible-inventory -i PATH --list`, read as [`parse_list_json`].
fn run_program(program: &Path, path: &Path) -> Result<Inventory, AnsibleError> {
    let shown = path.display().to_string();
    let out = std::process::Command::new(program)
        .arg("-i")
        .arg(path)
        .arg("--list")
        // Ansible warns (and goes on with an empty inventory) when it cannot parse a
        // source; for a backup that must be an error.
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
        .env("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "true")
        .env("ANSIBLE_NOCOLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| AnsibleError::Program {
            path: shown.clone(),
            message: format!("cannot run {}: {e}", program.display()),
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(AnsibleError::Program {
            path: shown,
            message: format!("{}: {}", out.status, err.trim()),
        });
    }
    parse_list_json(&String::from_utf8_lossy(&out.stdout), &shown)
}

/// A static inventory: one file, or every file of a directory (as Ansible takes a directory),
/// with `group_vars/` and `host_vars/` beside it.
fn read_static(path: &Path) -> Result<Inventory, AnsibleError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|source| AnsibleError::Read {
            path: p.display().to_string(),
            source,
        })
    };
    let mut inv = Inventory::default();
    let (files, base) = if path.is_dir() {
        (files_in(path)?, path.to_path_buf())
    } else {
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        (vec![path.to_path_buf()], base)
    };
    for f in &files {
        if is_script(f) {
            merge(&mut inv, run_script(f)?);
            continue;
        }
        let text = read(f)?;
        let shown = f.display().to_string();
        let part = parse_any(&text, &shown, f)?;
        merge(&mut inv, part);
    }
    read_vars_dirs(&mut inv, &base)?;
    inv.groups.entry("all".into()).or_default();
    Ok(inv)
}

/// The files of a folder that Ansible reads, in name order.
fn files_in(dir: &Path) -> Result<Vec<PathBuf>, AnsibleError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| AnsibleError::Read {
            path: dir.display().to_string(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && !ignored_file(p))
        .collect();
    files.sort();
    Ok(files)
}

/// Files Ansible skips in an inventory directory.
fn ignored_file(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with('.')
        || name.ends_with('~')
        || [
            ".orig", ".ini~", ".cfg", ".retry", ".pyc", ".pyo", ".md", ".txt",
        ]
        .iter()
        .any(|s| name.ends_with(s))
}

/// By content: JSON (`ansible-inventory --list` output), YAML (a mapping of groups), INI.
fn parse_any(text: &str, shown: &str, file: &Path) -> Result<Inventory, AnsibleError> {
    let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .unwrap_or("");
    if ext == "json" || first.starts_with('{') {
        parse_list_json(text, shown)
    } else if matches!(ext, "yml" | "yaml") || first == "---" || looks_like_yaml(first) {
        parse_yaml(text, shown)
    } else {
        parse_ini(text, shown)
    }
}

/// A first line such as `all:` or `Controller:` (a mapping key); INI has `[group]` or hosts.
fn looks_like_yaml(first: &str) -> bool {
    first.ends_with(':') && !first.contains(' ') && !first.starts_with('[')
}

fn merge(into: &mut Inventory, from: Inventory) {
    for (name, g) in from.groups {
        let e = into.groups.entry(name).or_default();
        e.hosts.extend(g.hosts);
        e.children.extend(g.children);
        e.vars.extend(g.vars);
    }
    for (h, vars) in from.host_vars {
        into.host_vars.entry(h).or_default().extend(vars);
    }
}

/// `group_vars/NAME{,.yml,.yaml,.json}` or `group_vars/NAME/*`, and the same for hosts.
fn read_vars_dirs(inv: &mut Inventory, base: &Path) -> Result<(), AnsibleError> {
    let groups: Vec<String> = inv.groups.keys().cloned().chain(["all".into()]).collect();
    for g in groups {
        if let Some(vars) = read_vars_for(&base.join("group_vars"), &g)? {
            inv.groups.entry(g).or_default().vars.extend(vars);
        }
    }
    let hosts: Vec<String> = inv.host_vars.keys().cloned().collect();
    for h in hosts {
        if let Some(vars) = read_vars_for(&base.join("host_vars"), &h)? {
            inv.host_vars.entry(h).or_default().extend(vars);
        }
    }
    Ok(())
}

fn read_vars_for(dir: &Path, name: &str) -> Result<Option<Vars>, AnsibleError> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut files = Vec::new();
    for cand in [
        name.to_string(),
        format!("{name}.yml"),
        format!("{name}.yaml"),
        format!("{name}.json"),
    ] {
        let p = dir.join(&cand);
        if p.is_file() {
            files.push(p);
        } else if p.is_dir() && cand == name {
            files.extend(files_in(&p)?);
        }
    }
    if files.is_empty() {
        return Ok(None);
    }
    let mut vars = Vars::new();
    for f in files {
        let shown = f.display().to_string();
        let text = std::fs::read_to_string(&f).map_err(|source| AnsibleError::Read {
            path: shown.clone(),
            source,
        })?;
        let v: Option<serde_json::Value> =
            serde_saphyr::from_str(&text).map_err(|e| AnsibleError::Invalid {
                path: shown.clone(),
                message: format!("not YAML: {e}"),
            })?;
        match v {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Object(m)) => {
                vars.extend(m.into_iter().map(|(k, v)| (k, text_of(&v))));
            }
            Some(_) => {
                return Err(AnsibleError::Invalid {
                    path: shown,
                    message: "a variables file must hold a mapping".into(),
                });
            }
        }
    }
    Ok(Some(vars))
}

/// A variable's value as text: strings as they are, everything else as JSON.
fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Expands a host pattern with ranges: `ctrl[1:3]` is ctrl1..ctrl3, `web[01:10:2]` keeps the
/// zero padding and steps by 2, `db-[a:c]` runs over letters; several ranges multiply.
pub fn expand_hosts(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('[') else {
        return Ok(vec![pattern.to_string()]);
    };
    let close = pattern[open..]
        .find(']')
        .map(|i| open + i)
        .ok_or_else(|| format!("{pattern:?}: '[' without ']'"))?;
    let (head, spec, tail) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    let parts: Vec<&str> = spec.split(':').collect();
    let (start, end, step) = match parts.as_slice() {
        [a, b] => (*a, *b, 1usize),
        [a, b, s] => (
            *a,
            *b,
            s.parse::<usize>()
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| format!("{pattern:?}: the step {s:?} is not a positive number"))?,
        ),
        _ => {
            return Err(format!(
                "{pattern:?}: a range is [start:end] or [start:end:step]"
            ));
        }
    };
    let mut items = Vec::new();
    if let (Ok(a), Ok(b)) = (start.parse::<u64>(), end.parse::<u64>()) {
        if a > b {
            return Err(format!("{pattern:?}: the range runs backwards"));
        }
        if (b - a) / step as u64 >= 100_000 {
            return Err(format!("{pattern:?}: more than 100,000 hosts"));
        }
        // Padding as Ansible does it: to the width of the start when it has a leading zero.
        let width = if start.len() > 1 && start.starts_with('0') {
            start.len()
        } else {
            0
        };
        let mut i = a;
        while i <= b {
            items.push(format!("{i:0width$}"));
            i += step as u64;
        }
    } else if start.len() == 1
        && end.len() == 1
        && start.chars().all(|c| c.is_ascii_alphabetic())
        && end.chars().all(|c| c.is_ascii_alphabetic())
    {
        let (a, b) = (start.as_bytes()[0], end.as_bytes()[0]);
        if a > b {
            return Err(format!("{pattern:?}: the range runs backwards"));
        }
        items.extend((a..=b).step_by(step).map(|c| (c as char).to_string()));
    } else {
        return Err(format!(
            "{pattern:?}: a range needs two numbers or two letters"
        ));
    }
    let rest = expand_hosts(tail)?;
    // Several ranges multiply: the limit is on the product.
    if items.len().saturating_mul(rest.len()) > 100_000 {
        return Err(format!("{pattern:?}: more than 100,000 hosts"));
    }
    Ok(items
        .iter()
        .flat_map(|i| rest.iter().map(move |r| format!("{head}{i}{r}")))
        .collect())
}

/// `host:port` (port a number) is the host with `ansible_port`; IPv6 addresses stay whole.
fn split_port(h: &str) -> (String, Option<String>) {
    if h.matches(':').count() == 1
        && let Some((host, port)) = h.rsplit_once(':')
        && !port.is_empty()
        && port.chars().all(|c| c.is_ascii_digit())
    {
        return (host.to_string(), Some(port.to_string()));
    }
    (h.to_string(), None)
}

/// `key=value key2="quoted value"` after a host name; words without '=' are an error.
fn parse_assignments(s: &str) -> Result<Vars, String> {
    let words = shlex::split(s).ok_or_else(|| "unbalanced quotes".to_string())?;
    let mut vars = Vars::new();
    for w in words {
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| format!("{w:?} is not key=value"))?;
        if k.is_empty() {
            return Err(format!("{w:?} has no variable name"));
        }
        vars.insert(k.to_string(), v.to_string());
    }
    Ok(vars)
}

/// A static INI inventory.
pub fn parse_ini(text: &str, path: &str) -> Result<Inventory, AnsibleError> {
    enum Section {
        Hosts(String),
        Children(String),
        Vars(String),
    }
    let syntax = |line: usize, message: String| AnsibleError::Syntax {
        path: path.to_string(),
        line,
        message,
    };
    let mut inv = Inventory::default();
    inv.groups.entry("all".into()).or_default();
    let mut section = Section::Hosts("ungrouped".into());
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            let inner = line
                .strip_prefix('[')
                .and_then(|l| l.split_once(']'))
                .map(|(inner, rest)| (inner.trim(), rest.trim()))
                .filter(|(_, rest)| {
                    rest.is_empty() || rest.starts_with('#') || rest.starts_with(';')
                })
                .map(|(inner, _)| inner)
                .ok_or_else(|| syntax(n, format!("{line:?} is not a [section] header")))?;
            let (name, kind) = match inner.rsplit_once(':') {
                Some((g, "children")) => (g, 1),
                Some((g, "vars")) => (g, 2),
                Some((_, other)) => {
                    return Err(syntax(
                        n,
                        format!("unknown section kind :{other} (use :children or :vars)"),
                    ));
                }
                None => (inner, 0),
            };
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(syntax(n, format!("{name:?} is not a group name")));
            }
            inv.groups.entry(name.to_string()).or_default();
            section = match kind {
                1 => Section::Children(name.to_string()),
                2 => Section::Vars(name.to_string()),
                _ => Section::Hosts(name.to_string()),
            };
            continue;
        }
        match &section {
            Section::Hosts(g) => {
                let (pattern, rest) = match line.split_once(char::is_whitespace) {
                    Some((p, r)) => (p, r.trim()),
                    None => (line, ""),
                };
                let vars = parse_assignments(rest).map_err(|m| syntax(n, m))?;
                for h in expand_hosts(pattern).map_err(|m| syntax(n, m))? {
                    let (host, port) = split_port(&h);
                    let hv = inv.host_vars.entry(host.clone()).or_default();
                    if let Some(p) = port {
                        hv.insert("ansible_port".into(), p);
                    }
                    hv.extend(vars.clone());
                    inv.groups.entry(g.clone()).or_default().hosts.insert(host);
                }
            }
            Section::Children(g) => {
                if line.contains(char::is_whitespace) {
                    return Err(syntax(n, format!("{line:?}: one child group per line")));
                }
                inv.groups.entry(line.to_string()).or_default();
                inv.groups
                    .entry(g.clone())
                    .or_default()
                    .children
                    .insert(line.to_string());
            }
            Section::Vars(g) => {
                let (k, v) = line
                    .split_once('=')
                    .ok_or_else(|| syntax(n, format!("{line:?} is not key=value")))?;
                let v = v.trim();
                let v = shlex::split(v)
                    .filter(|w| w.len() == 1)
                    .map(|mut w| w.remove(0))
                    .unwrap_or_else(|| v.to_string());
                inv.groups
                    .entry(g.clone())
                    .or_default()
                    .vars
                    .insert(k.trim().to_string(), v);
            }
        }
    }
    Ok(inv)
}

/// A YAML inventory: a mapping of group names to `hosts`, `vars` and `children`.
pub fn parse_yaml(text: &str, path: &str) -> Result<Inventory, AnsibleError> {
    let invalid = |message: String| AnsibleError::Invalid {
        path: path.to_string(),
        message,
    };
    let doc: Option<serde_json::Value> =
        serde_saphyr::from_str(text).map_err(|e| invalid(format!("not YAML: {e}")))?;
    let mut inv = Inventory::default();
    inv.groups.entry("all".into()).or_default();
    let Some(doc) = doc.filter(|d| !d.is_null()) else {
        return Ok(inv);
    };
    let top = doc
        .as_object()
        .ok_or_else(|| invalid("the top level must be a mapping of groups".into()))?;
    for (name, g) in top {
        yaml_group(&mut inv, name, g, path)?;
    }
    Ok(inv)
}

fn yaml_group(
    inv: &mut Inventory,
    name: &str,
    g: &serde_json::Value,
    path: &str,
) -> Result<(), AnsibleError> {
    let invalid = |message: String| AnsibleError::Invalid {
        path: path.to_string(),
        message,
    };
    inv.groups.entry(name.to_string()).or_default();
    if g.is_null() {
        return Ok(());
    }
    let g = g
        .as_object()
        .ok_or_else(|| invalid(format!("group {name}: must be a mapping")))?;
    for (key, v) in g {
        match key.as_str() {
            "hosts" if v.is_null() => {}
            "hosts" => {
                let hosts = v.as_object().ok_or_else(|| {
                    invalid(format!(
                        "group {name}: `hosts` must be a mapping of host names"
                    ))
                })?;
                for (pattern, hv) in hosts {
                    let vars = match hv {
                        serde_json::Value::Null => Vars::new(),
                        serde_json::Value::Object(m) => {
                            m.iter().map(|(k, v)| (k.clone(), text_of(v))).collect()
                        }
                        _ => {
                            return Err(invalid(format!(
                                "group {name}, host {pattern}: its variables must be a mapping"
                            )));
                        }
                    };
                    let expanded =
                        expand_hosts(pattern).map_err(|m| invalid(format!("group {name}: {m}")))?;
                    for h in expanded {
                        inv.host_vars
                            .entry(h.clone())
                            .or_default()
                            .extend(vars.clone());
                        inv.groups
                            .entry(name.to_string())
                            .or_default()
                            .hosts
                            .insert(h);
                    }
                }
            }
            "vars" if v.is_null() => {}
            "vars" => {
                let m = v
                    .as_object()
                    .ok_or_else(|| invalid(format!("group {name}: `vars` must be a mapping")))?;
                let e = inv.groups.entry(name.to_string()).or_default();
                e.vars
                    .extend(m.iter().map(|(k, v)| (k.clone(), text_of(v))));
            }
            "children" if v.is_null() => {}
            "children" => {
                let m = v.as_object().ok_or_else(|| {
                    invalid(format!(
                        "group {name}: `children` must be a mapping of groups"
                    ))
                })?;
                for (child, cg) in m {
                    inv.groups
                        .entry(name.to_string())
                        .or_default()
                        .children
                        .insert(child.clone());
                    yaml_group(inv, child, cg, path)?;
                }
            }
            other => {
                return Err(invalid(format!(
                    "group {name}: unknown key {other:?} (a group has hosts, vars and children)"
                )));
            }
        }
    }
    Ok(())
}

/// The JSON of `ansible-inventory --list` (and of dynamic inventory scripts):
/// `{"_meta": {"hostvars": {...}}, "GROUP": {"hosts": [...], "children": [...], "vars": {...}}}`.
pub fn parse_list_json(text: &str, path: &str) -> Result<Inventory, AnsibleError> {
    let invalid = |message: String| AnsibleError::Invalid {
        path: path.to_string(),
        message,
    };
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let top = doc
        .as_object()
        .ok_or_else(|| invalid("the top level must be an object of groups".into()))?;
    let mut inv = Inventory::default();
    inv.groups.entry("all".into()).or_default();
    for (name, g) in top {
        if name == "_meta" {
            let hv = g.get("hostvars").and_then(|h| h.as_object());
            for (h, vars) in hv.into_iter().flatten() {
                let vars: Vars = vars
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), text_of(v))).collect())
                    .unwrap_or_default();
                inv.host_vars.entry(h.clone()).or_default().extend(vars);
            }
            continue;
        }
        let e = inv.groups.entry(name.clone()).or_default();
        // A dynamic inventory may give a group as a bare list of hosts.
        if let Some(list) = g.as_array() {
            e.hosts
                .extend(list.iter().filter_map(|h| h.as_str().map(String::from)));
            continue;
        }
        let strings = |key: &str| -> Vec<String> {
            g.get(key)
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|h| h.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        e.hosts.extend(strings("hosts"));
        e.children.extend(strings("children"));
        if let Some(m) = g.get("vars").and_then(|v| v.as_object()) {
            e.vars
                .extend(m.iter().map(|(k, v)| (k.clone(), text_of(v))));
        }
    }
    let children: Vec<String> = inv
        .groups
        .values()
        .flat_map(|g| g.children.iter().cloned())
        .collect();
    for c in children {
        inv.groups.entry(c).or_default();
    }
    for h in inv
        .groups
        .values()
        .flat_map(|g| g.hosts.iter())
        .cloned()
        .collect::<Vec<_>>()
    {
        inv.host_vars.entry(h).or_default();
    }
    Ok(inv)
}

impl Inventory {
    /// Every host with its groups and resolved variables. Fails on a cycle of children.
    pub fn hosts(&self, path: &str) -> Result<Vec<Host>, AnsibleError> {
        let depth = self.depths(path)?;
        // Each host's groups, directly or through children.
        let mut member: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for name in self.groups.keys() {
            for h in self.members(name) {
                member.entry(h).or_default().insert(name.as_str());
            }
        }
        let mut hosts = Vec::new();
        let names: BTreeSet<&str> = self
            .host_vars
            .keys()
            .map(String::as_str)
            .chain(member.keys().copied())
            .collect();
        for h in names {
            let groups = member.get(h).cloned().unwrap_or_default();
            let mut order: Vec<&str> = groups.iter().copied().filter(|g| *g != "all").collect();
            order.sort_by_key(|g| (depth.get(*g).copied().unwrap_or(1), g.to_string()));
            let mut vars = self
                .groups
                .get("all")
                .map(|g| g.vars.clone())
                .unwrap_or_default();
            for g in order {
                if let Some(grp) = self.groups.get(g) {
                    vars.extend(grp.vars.clone());
                }
            }
            if let Some(hv) = self.host_vars.get(h) {
                vars.extend(hv.clone());
            }
            hosts.push(Host {
                name: h.to_string(),
                groups: groups
                    .into_iter()
                    .filter(|g| *g != "all" && *g != "ungrouped")
                    .map(String::from)
                    .collect(),
                vars,
            });
        }
        Ok(hosts)
    }

    /// Hosts of a group, its children's included.
    pub fn members(&self, group: &str) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        let mut seen = BTreeSet::new();
        let mut stack = vec![group];
        while let Some(g) = stack.pop() {
            if !seen.insert(g) {
                continue;
            }
            if let Some(grp) = self.groups.get(g) {
                out.extend(grp.hosts.iter().map(String::as_str));
                stack.extend(grp.children.iter().map(String::as_str));
            }
        }
        if group == "all" {
            out.extend(self.host_vars.keys().map(String::as_str));
        }
        out
    }

    /// Groups that contain each other (through any number of children) are an error: Ansible
    /// refuses them too.
    fn check_cycles(&self, path: &str) -> Result<(), AnsibleError> {
        // 0 unvisited, 1 on the current path, 2 done.
        let mut state: BTreeMap<&str, u8> = BTreeMap::new();
        for start in self.groups.keys() {
            if state.get(start.as_str()).copied().unwrap_or(0) != 0 {
                continue;
            }
            // Iterative DFS: (group, index of the next child to visit).
            let mut stack: Vec<(&str, usize)> = vec![(start.as_str(), 0)];
            state.insert(start, 1);
            while let Some((g, i)) = stack.last().copied() {
                let children: Vec<&str> = self
                    .groups
                    .get(g)
                    .map(|x| x.children.iter().map(String::as_str).collect())
                    .unwrap_or_default();
                if let Some(c) = children.get(i).copied() {
                    if let Some(top) = stack.last_mut() {
                        top.1 += 1;
                    }
                    match state.get(c).copied().unwrap_or(0) {
                        0 => {
                            state.insert(c, 1);
                            stack.push((c, 0));
                        }
                        1 => {
                            let from = stack.iter().position(|(x, _)| *x == c).unwrap_or(0);
                            let trail: Vec<&str> = stack[from..].iter().map(|(x, _)| *x).collect();
                            return Err(AnsibleError::Invalid {
                                path: path.to_string(),
                                message: format!(
                                    "groups contain each other: {} -> {c}",
                                    trail.join(" -> ")
                                ),
                            });
                        }
                        _ => {}
                    }
                } else {
                    state.insert(g, 2);
                    stack.pop();
                }
            }
        }
        Ok(())
    }

    /// Each group's depth below `all` (the longest way down), or the cycle that prevents it.
    fn depths(&self, path: &str) -> Result<BTreeMap<String, usize>, AnsibleError> {
        self.check_cycles(path)?;
        // Longest path from `all` in a graph without cycles: groups in topological order
        // (Kahn), each child one deeper than its deepest parent. Linear in groups and edges,
        // whatever the shape (a walk of every path would be exponential in a lattice).
        let mut parents: BTreeMap<&str, usize> =
            self.groups.keys().map(|g| (g.as_str(), 0)).collect();
        for g in self.groups.values() {
            for c in &g.children {
                *parents.entry(c.as_str()).or_default() += 1;
            }
        }
        let mut depth: BTreeMap<String, usize> = BTreeMap::new();
        let mut ready: Vec<&str> = parents
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(g, _)| *g)
            .collect();
        for g in &ready {
            // `all` is depth 0; a group under nothing hangs under `all`.
            depth.insert(g.to_string(), usize::from(*g != "all"));
        }
        while let Some(g) = ready.pop() {
            let d = depth.get(g).copied().unwrap_or(1);
            for c in self
                .groups
                .get(g)
                .map(|x| &x.children)
                .into_iter()
                .flatten()
            {
                let e = depth.entry(c.clone()).or_insert(0);
                *e = (*e).max(d + 1);
                if let Some(n) = parents.get_mut(c.as_str()) {
                    *n -= 1;
                    if *n == 0 {
                        ready.push(c);
                    }
                }
            }
        }
        Ok(depth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_expand_like_ansible() {
        assert_eq!(
            expand_hosts("ctrl[1:3]").unwrap(),
            ["ctrl1", "ctrl2", "ctrl3"]
        );
        assert_eq!(
            expand_hosts("web[08:12:2].lan").unwrap(),
            ["web08.lan", "web10.lan", "web12.lan"]
        );
        assert_eq!(expand_hosts("db-[a:c]").unwrap(), ["db-a", "db-b", "db-c"]);
        assert_eq!(
            expand_hosts("r[1:2]n[a:b]").unwrap(),
            ["r1na", "r1nb", "r2na", "r2nb"]
        );
        assert_eq!(expand_hosts("plain").unwrap(), ["plain"]);
        for bad in [
            "x[1:",
            "x[3:1]",
            "x[1:2:0]",
            "x[1]",
            "x[a:10]",
            "x[0:99999999999]",
            "x[1:1000]y[1:1000]",
        ] {
            assert!(expand_hosts(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ini_sections_children_vars_and_ports() {
        let text = r#"
# comment
lonely ansible_host=10.0.0.9
[controller]
ctrl[1:2] ansible_user=heat-admin
ctrl3:2222 ansible_host="10.0.0.13" note='two words'
[compute]
cmp1 ansible_host=10.0.0.21
[overcloud:children]
controller
compute
[overcloud:vars]
ansible_user = tripleo-admin
ansible_ssh_common_args = "-o ProxyJump=stack@director"
[all:vars]
ansible_port=22
"#;
        let inv = parse_ini(text, "t.ini").unwrap();
        let hosts = inv.hosts("t.ini").unwrap();
        let h = |n: &str| hosts.iter().find(|h| h.name == n).unwrap();
        assert_eq!(
            h("ctrl1").vars["ansible_user"],
            "heat-admin",
            "host var wins"
        );
        assert_eq!(h("ctrl3").vars["ansible_user"], "tripleo-admin");
        assert_eq!(
            h("ctrl3").vars["ansible_port"],
            "2222",
            "host:port beats all:vars"
        );
        assert_eq!(h("ctrl3").vars["note"], "two words");
        assert_eq!(h("cmp1").vars["ansible_port"], "22");
        assert_eq!(
            h("cmp1").vars["ansible_ssh_common_args"],
            "-o ProxyJump=stack@director"
        );
        assert_eq!(
            h("ctrl2").groups.iter().collect::<Vec<_>>(),
            ["controller", "overcloud"]
        );
        assert!(h("lonely").groups.is_empty());
        assert_eq!(hosts.len(), 5);
    }

    #[test]
    fn deeper_groups_override_shallower_ones() {
        let text = "[a]\nh1\n[b]\nh1\n[a:children]\nb\n[a:vars]\nx=from-a\n[b:vars]\nx=from-b\n";
        let inv = parse_ini(text, "t").unwrap();
        let hosts = inv.hosts("t").unwrap();
        assert_eq!(hosts[0].vars["x"], "from-b");
    }

    #[test]
    fn ini_errors_name_the_line() {
        for (text, line) in [
            ("[ok]\nh1 novalue\n", 2),
            ("[bad\n", 1),
            ("[g:weird]\n", 1),
            ("[g]\nh[1:\n", 2),
            ("[g:children]\ntwo words\n", 2),
        ] {
            match parse_ini(text, "t.ini") {
                Err(AnsibleError::Syntax { line: l, .. }) => assert_eq!(l, line, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_lattice_of_groups_resolves_quickly_and_deepest_wins() {
        // 40 layers of two groups, each a child of both groups above: 2^40 paths from the top.
        let mut text = String::from("[l0a]\nh\n");
        for i in 0..40 {
            for p in ["a", "b"] {
                text.push_str(&format!("[l{i}{p}:children]\nl{}a\nl{}b\n", i + 1, i + 1));
            }
        }
        text.push_str("[l40a]\nh\n[l40a:vars]\nx=deep\n[l0a:vars]\nx=shallow\n");
        // A walk of every path would not finish; the topological order takes microseconds.
        let inv = parse_ini(&text, "t").unwrap();
        let hosts = inv.hosts("t").unwrap();
        assert_eq!(hosts[0].vars["x"], "deep");
    }

    #[test]
    fn a_cycle_of_children_is_refused() {
        let inv = parse_ini("[a:children]\nb\n[b:children]\na\n[a]\nh\n", "t").unwrap();
        let e = inv.hosts("t").unwrap_err().to_string();
        assert!(e.contains("contain each other"), "{e}");
    }

    #[test]
    fn yaml_groups_hosts_vars_children() {
        let text = r#"
all:
  vars:
    ansible_user: root
  children:
    Undercloud:
      hosts:
        undercloud: {ansible_connection: local, ansible_host: localhost}
    Controller:
      hosts:
        overcloud-controller-[0:2]:
          ansible_port: 22
      vars:
        ansible_user: tripleo-admin
    overcloud:
      children:
        Controller: {}
"#;
        let inv = parse_yaml(text, "t.yaml").unwrap();
        let hosts = inv.hosts("t.yaml").unwrap();
        assert_eq!(hosts.len(), 4);
        let c1 = hosts
            .iter()
            .find(|h| h.name == "overcloud-controller-1")
            .unwrap();
        assert_eq!(c1.vars["ansible_user"], "tripleo-admin");
        assert_eq!(c1.vars["ansible_port"], "22");
        assert!(c1.groups.contains("overcloud"));
        let uc = hosts.iter().find(|h| h.name == "undercloud").unwrap();
        assert_eq!(uc.vars["ansible_connection"], "local");
        assert_eq!(uc.vars["ansible_user"], "root");
        assert!(parse_yaml("all:\n  hostz: {}\n", "t").is_err());
    }

    #[test]
    fn list_json_as_ansible_inventory_prints_it() {
        let text = r#"{"_meta": {"hostvars": {"c1": {"ansible_host": "10.1.0.1", "ansible_port": 2022}}},
            "all": {"children": ["ungrouped", "galera_all"]},
            "galera_all": {"children": ["galera"]},
            "galera": {"hosts": ["c1"]}}"#;
        let inv = parse_list_json(text, "t.json").unwrap();
        let hosts = inv.hosts("t.json").unwrap();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].vars["ansible_port"], "2022");
        assert_eq!(
            hosts[0].groups.iter().collect::<Vec<_>>(),
            ["galera", "galera_all"]
        );
    }
}
