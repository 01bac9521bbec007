//! Lifeboat's configuration and what it turns into: the repository to use and the named
//! components (a service's data and how to back it up), and the facts a listing needs (the
//! last good backup of each component).
//!
//! The configuration is a TOML file (`--config`, `LIFEBOAT_CONFIG`, default
//! `/etc/lifeboat/lifeboat.toml`). Credentials never live in it: it names files (password
//! files, option files) or the environment holds them. Unknown keys are errors, so a typo
//! never silently turns a setting off.

pub mod ansible;
pub mod inventory;
pub mod profiles;

use lifeboat_format::{Id, Snapshot};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the configuration is read from when none is named.
pub const DEFAULT_CONFIG: &str = "/etc/lifeboat/lifeboat.toml";

/// Tag prefixes that tie a snapshot to its component.
pub const COMPONENT_TAG: &str = "component:";
pub const KIND_TAG: &str = "kind:";
/// The tag of the backup a component restore takes of what it is about to replace. Such a
/// snapshot is never the component's "last good backup" (it holds what was being replaced).
pub const SAFETY_TAG: &str = "safety";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The message of the TOML parser names the line and column.
    #[error("configuration {path}: {message}")]
    Invalid { path: String, message: String },
}

impl ConfigError {
    /// Whether trying again could help (it cannot: the file must be fixed).
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub repository: RepositoryConfig,
    /// Named components, in name order.
    #[serde(default)]
    pub components: BTreeMap<String, Component>,
    /// An Ansible inventory to import nodes and groups from: `ansible:PATH` (relative to the
    /// configuration file).
    pub inventory: Option<String>,
    /// Nodes reached over SSH (or this machine, `connection = "local"`).
    #[serde(default)]
    pub nodes: BTreeMap<String, inventory::NodeConfig>,
    #[serde(default)]
    pub groups: BTreeMap<String, inventory::GroupConfig>,
    /// The folder of the file this came from (for relative paths).
    #[serde(skip)]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryConfig {
    /// A path or URL, as `--repo` takes.
    pub location: Option<String>,
    /// A file whose first line is the repository password.
    pub password_file: Option<PathBuf>,
    /// A command (through /bin/sh) whose first output line is the password.
    pub password_command: Option<String>,
}

/// One component: what to back up, and how.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "RawComponent")]
pub struct Component {
    pub kind: Kind,
    /// Extra tags on the component's snapshots.
    pub tags: Vec<String>,
}

/// What the file holds for a component: the kind's settings and the common ones side by side
/// in one table. (serde's `flatten` would lose `deny_unknown_fields`, so each kind repeats
/// the common fields.)
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum RawComponent {
    Files {
        #[serde(default)]
        paths: Vec<PathBuf>,
        #[serde(default)]
        paths_if_present: Vec<PathBuf>,
        #[serde(default)]
        exclude: Vec<String>,
        #[serde(default)]
        exclude_if_present: Vec<String>,
        #[serde(default)]
        one_file_system: bool,
        #[serde(default)]
        tags: Vec<String>,
    },
    Command {
        backup: String,
        restore: Option<String>,
        validate: Option<String>,
        stream: Option<String>,
        timeout: Option<String>,
        #[serde(default)]
        tags: Vec<String>,
    },
    Mariadb {
        defaults_file: Option<PathBuf>,
        #[serde(default)]
        databases: Vec<String>,
        #[serde(default)]
        exclude: Vec<String>,
        timeout: Option<String>,
        #[serde(default)]
        tags: Vec<String>,
    },
    Postgres {
        host: Option<String>,
        port: Option<u16>,
        user: Option<String>,
        passfile: Option<PathBuf>,
        bindir: Option<PathBuf>,
        #[serde(default)]
        databases: Vec<String>,
        #[serde(default)]
        exclude: Vec<String>,
        timeout: Option<String>,
        #[serde(default)]
        tags: Vec<String>,
    },
    Redis {
        host: Option<String>,
        port: Option<u16>,
        password_file: Option<PathBuf>,
        rdb_path: Option<PathBuf>,
        stop: Option<String>,
        start: Option<String>,
        timeout: Option<String>,
        #[serde(default)]
        tags: Vec<String>,
    },
    Rabbitmq {
        ctl: Option<String>,
        timeout: Option<String>,
        #[serde(default)]
        tags: Vec<String>,
    },
    Pacemaker {
        #[serde(default)]
        env: BTreeMap<String, String>,
        #[serde(default)]
        tags: Vec<String>,
    },
    Galera {
        nodes: Vec<GaleraNodeConfig>,
        #[serde(default)]
        avoid: Vec<String>,
        #[serde(default)]
        databases: Vec<String>,
        #[serde(default)]
        exclude: Vec<String>,
        timeout: Option<String>,
        #[serde(default)]
        tags: Vec<String>,
    },
}

/// One node of a Galera cluster: its name and the option file to reach it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GaleraNodeConfig {
    pub name: String,
    pub defaults_file: PathBuf,
}

impl From<RawComponent> for Component {
    fn from(r: RawComponent) -> Self {
        match r {
            RawComponent::Files {
                paths,
                paths_if_present,
                exclude,
                exclude_if_present,
                one_file_system,
                tags,
            } => Component {
                kind: Kind::Files {
                    paths,
                    paths_if_present,
                    exclude,
                    exclude_if_present,
                    one_file_system,
                },
                tags,
            },
            RawComponent::Command {
                backup,
                restore,
                validate,
                stream,
                timeout,
                tags,
            } => Component {
                kind: Kind::Command {
                    backup,
                    restore,
                    validate,
                    stream,
                    timeout,
                },
                tags,
            },
            RawComponent::Mariadb {
                defaults_file,
                databases,
                exclude,
                timeout,
                tags,
            } => Component {
                kind: Kind::Mariadb {
                    defaults_file,
                    databases,
                    exclude,
                    timeout,
                },
                tags,
            },
            RawComponent::Postgres {
                host,
                port,
                user,
                passfile,
                bindir,
                databases,
                exclude,
                timeout,
                tags,
            } => Component {
                kind: Kind::Postgres {
                    host,
                    port,
                    user,
                    passfile,
                    bindir,
                    databases,
                    exclude,
                    timeout,
                },
                tags,
            },
            RawComponent::Redis {
                host,
                port,
                password_file,
                rdb_path,
                stop,
                start,
                timeout,
                tags,
            } => Component {
                kind: Kind::Redis {
                    host,
                    port,
                    password_file,
                    rdb_path,
                    stop: stop.unwrap_or_else(|| "systemctl stop redis-server".into()),
                    start: start.unwrap_or_else(|| "systemctl start redis-server".into()),
                    timeout,
                },
                tags,
            },
            RawComponent::Galera {
                nodes,
                avoid,
                databases,
                exclude,
                timeout,
                tags,
            } => Component {
                kind: Kind::Galera {
                    nodes,
                    avoid,
                    databases,
                    exclude,
                    timeout,
                },
                tags,
            },
            RawComponent::Pacemaker { env, tags } => Component {
                kind: Kind::Pacemaker { env },
                tags,
            },
            RawComponent::Rabbitmq { ctl, timeout, tags } => Component {
                kind: Kind::Rabbitmq {
                    ctl: ctl.unwrap_or_else(|| "rabbitmqctl".into()),
                    timeout,
                },
                tags,
            },
        }
    }
}

/// The kinds this version knows. Each has its own settings.
#[derive(Debug, Clone)]
pub enum Kind {
    /// Paths with excludes, as `lifeboat backup PATH...` does.
    Files {
        /// Paths that must exist (a missing one fails the backup).
        paths: Vec<PathBuf>,
        /// Paths backed up where they exist and skipped where not (a profile names every
        /// service's folders; a node runs some of them).
        paths_if_present: Vec<PathBuf>,
        exclude: Vec<String>,
        exclude_if_present: Vec<String>,
        one_file_system: bool,
    },
    /// Any other service: a command whose standard output is the dump, a restore command
    /// that reads it on standard input, and an optional validation command that reads it
    /// back on standard input after the backup.
    Command {
        backup: String,
        restore: Option<String>,
        validate: Option<String>,
        /// The dump's name in the snapshot (default `<component>.dump`).
        stream: Option<String>,
        /// Stop the dump (and fail the backup) after this long, e.g. "2h", "90m".
        timeout: Option<String>,
    },
    /// A MariaDB/MySQL server: one logical dump per database, users and grants apart, the
    /// server's version and variables, and row counts and checksums to verify a restore.
    Mariadb {
        /// Option file with the client credentials (`--defaults-extra-file`).
        defaults_file: Option<PathBuf>,
        /// Databases to back up (default: all but the system schemas).
        databases: Vec<String>,
        exclude: Vec<String>,
        /// Time limit of each dump.
        timeout: Option<String>,
    },
    /// A PostgreSQL server: `pg_dump -Fc` per database, `pg_dumpall --globals-only`, the
    /// server's version, and row counts and content hashes to verify a restore. Connection
    /// settings become PG* environment variables; the password is only in the passfile.
    Postgres {
        host: Option<String>,
        port: Option<u16>,
        user: Option<String>,
        passfile: Option<PathBuf>,
        bindir: Option<PathBuf>,
        databases: Vec<String>,
        exclude: Vec<String>,
        timeout: Option<String>,
    },
    /// A Redis server: its RDB snapshot (`redis-cli --rdb -`), checked with redis-check-rdb,
    /// and the key count of every database. Restore stops the server (`stop`), places the
    /// file (`rdb_path`, default the recorded dir/dbfilename), starts it (`start`) and checks
    /// the key counts.
    Redis {
        host: Option<String>,
        port: Option<u16>,
        /// A file holding the password (given to redis-cli as REDISCLI_AUTH).
        password_file: Option<PathBuf>,
        rdb_path: Option<PathBuf>,
        /// Default `systemctl stop redis-server`.
        stop: String,
        /// Default `systemctl start redis-server`.
        start: String,
        timeout: Option<String>,
    },
    /// A RabbitMQ broker's definitions (users, vhosts, permissions, policies, queues,
    /// exchanges, bindings), exported and imported with rabbitmqctl.
    Rabbitmq {
        /// The rabbitmqctl command line (default `rabbitmqctl`).
        ctl: String,
        timeout: Option<String>,
    },
    /// A MariaDB Galera cluster: dumped (as `mariadb`) from a Synced node that is not taking
    /// writes (not in `avoid`), desynced for the dump, with the cluster's state recorded.
    Galera {
        nodes: Vec<GaleraNodeConfig>,
        /// Nodes to dump from only when no other is Synced (those taking writes).
        avoid: Vec<String>,
        databases: Vec<String>,
        exclude: Vec<String>,
        timeout: Option<String>,
    },
    /// A Pacemaker cluster's CIB, put back in maintenance mode.
    Pacemaker {
        /// Environment for the pacemaker tools (e.g. `CIB_file` to work on a file).
        env: BTreeMap<String, String>,
    },
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Files { .. } => "files",
            Kind::Command { .. } => "command",
            Kind::Mariadb { .. } => "mariadb",
            Kind::Postgres { .. } => "postgres",
            Kind::Redis { .. } => "redis",
            Kind::Rabbitmq { .. } => "rabbitmq",
            Kind::Pacemaker { .. } => "pacemaker",
            Kind::Galera { .. } => "galera",
        }
    }
}

impl Component {
    /// One line saying what the component holds, for listings.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Files {
                paths,
                paths_if_present,
                ..
            } => paths
                .iter()
                .map(|p| p.display().to_string())
                .chain(paths_if_present.iter().map(|p| format!("{}?", p.display())))
                .collect::<Vec<_>>()
                .join(" "),
            Kind::Command { backup, .. } => format!("$ {backup}"),
            Kind::Mariadb { databases, .. } if databases.is_empty() => {
                "MariaDB: all databases, users and grants".into()
            }
            Kind::Mariadb { databases, .. } => {
                format!("MariaDB: {}, users and grants", databases.join(" "))
            }
            Kind::Postgres { databases, .. } if databases.is_empty() => {
                "PostgreSQL: all databases and globals".into()
            }
            Kind::Postgres { databases, .. } => {
                format!("PostgreSQL: {} and globals", databases.join(" "))
            }
            Kind::Rabbitmq { .. } => "RabbitMQ definitions".into(),
            Kind::Pacemaker { .. } => "Pacemaker CIB".into(),
            Kind::Galera { nodes, .. } => format!(
                "Galera cluster: {}",
                nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Kind::Redis { host, port, .. } => format!(
                "Redis at {}:{}",
                host.as_deref().unwrap_or("127.0.0.1"),
                port.unwrap_or(6379)
            ),
        }
    }

    /// The dump's name in the snapshot, for command components.
    pub fn stream_name(&self, name: &str) -> Option<String> {
        match &self.kind {
            Kind::Command { stream, .. } => {
                Some(stream.clone().unwrap_or_else(|| format!("{name}.dump")))
            }
            _ => None,
        }
    }

    /// The timeout of a command component's dump.
    pub fn timeout(&self) -> Option<Duration> {
        match &self.kind {
            Kind::Command {
                timeout: Some(t), ..
            }
            | Kind::Mariadb {
                timeout: Some(t), ..
            }
            | Kind::Postgres {
                timeout: Some(t), ..
            }
            | Kind::Redis {
                timeout: Some(t), ..
            }
            | Kind::Rabbitmq {
                timeout: Some(t), ..
            }
            | Kind::Galera {
                timeout: Some(t), ..
            } => parse_duration(t).ok(),
            _ => None,
        }
    }

    /// The tags every snapshot of this component carries.
    pub fn snapshot_tags(&self, name: &str) -> Vec<String> {
        let mut t = vec![
            format!("{COMPONENT_TAG}{name}"),
            format!("{KIND_TAG}{}", self.kind.name()),
        ];
        t.extend(self.tags.iter().cloned());
        t
    }
}

/// `90s`, `30m`, `2h`, `1d`: a number and one unit.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{s:?} needs a unit: s, m, h or d"))?;
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("{s:?} is not a duration"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        u => return Err(format!("unknown unit {u:?} in {s:?} (use s, m, h or d)")),
    };
    n.checked_mul(mult)
        .filter(|v| *v > 0)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is not a positive duration"))
}

/// Whether a name can name a component: it must also be usable in a tag and must not look
/// like a path, so `lifeboat backup NAME` is never ambiguous with a relative path.
pub fn is_valid_component_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 128
        && !n.starts_with('-')
        && !n.starts_with('.')
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
}

impl Config {
    /// Parses a configuration; `path` is for messages.
    pub fn parse(text: &str, path: &str) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_string(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        cfg.apply_profiles()
            .map_err(|message| ConfigError::Invalid {
                path: path.to_string(),
                message,
            })?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Turns the `profiles` of nodes and groups into components: the profile's definitions
    /// join `[components]` (where the file has none of that name) and its names join the
    /// node's or group's `components`, less its `skip_components`.
    fn apply_profiles(&mut self) -> Result<(), String> {
        let mut wanted: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
        for (name, n) in &self.nodes {
            wanted.push((
                format!("node {name}"),
                n.profiles.clone(),
                n.skip_components.clone(),
            ));
        }
        for (name, g) in &self.groups {
            wanted.push((
                format!("group {name}"),
                g.profiles.clone(),
                g.skip_components.clone(),
            ));
        }
        let mut added: Vec<Vec<String>> = Vec::new();
        for (who, profs, skip) in &wanted {
            let mut names = Vec::new();
            for p in profs {
                let prof = profiles::find(p).ok_or_else(|| {
                    format!(
                        "{who}: profile {p:?} is not a built-in profile ({}; see `lifeboat profiles`)",
                        profiles::names()
                    )
                })?;
                for (cname, comp) in prof.components() {
                    self.components.entry(cname.clone()).or_insert(comp);
                    if !skip.contains(&cname) {
                        names.push(cname);
                    }
                }
            }
            added.push(names);
        }
        let mut it = added.into_iter();
        for n in self.nodes.values_mut() {
            n.components.extend(it.next().unwrap_or_default());
        }
        for g in self.groups.values_mut() {
            g.components.extend(it.next().unwrap_or_default());
        }
        Ok(())
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut cfg = Config::parse(&text, &path.display().to_string())?;
        cfg.dir = path.parent().map(Path::to_path_buf);
        Ok(cfg)
    }

    /// The nodes and groups: the configuration's, and the Ansible inventory's when
    /// `inventory` names one (read with `ansible-inventory` when it is installed, see
    /// [`inventory::ansible_program`]).
    pub fn inventory(&self) -> Result<inventory::Inventory, inventory::InventoryError> {
        self.inventory_using(inventory::ansible_program().as_deref())
    }

    /// The same, reading the Ansible inventory with `program` (`ansible-inventory`), or with
    /// Lifeboat's own reader when it is `None`.
    pub fn inventory_using(
        &self,
        program: Option<&Path>,
    ) -> Result<inventory::Inventory, inventory::InventoryError> {
        let names: std::collections::BTreeSet<String> = self.components.keys().cloned().collect();
        let Some(setting) = &self.inventory else {
            return inventory::build(&self.nodes, &self.groups, None, &names);
        };
        let dir = self.dir.clone().unwrap_or_else(|| PathBuf::from("."));
        let path = inventory::ansible_path(setting, &dir)?;
        let how = if program.is_some() {
            "ansible-inventory"
        } else {
            "builtin"
        };
        let inv = ansible::load(&path, program)?;
        inventory::build(&self.nodes, &self.groups, Some((&inv, &path, how)), &names)
    }

    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let bad = |message: String| ConfigError::Invalid {
            path: path.to_string(),
            message,
        };
        // Without an Ansible inventory every reference can be checked now; with one, when the
        // inventory is read.
        if self.inventory.is_none() {
            let names = self.components.keys().cloned().collect();
            inventory::build(&self.nodes, &self.groups, None, &names)
                .map_err(|e| bad(e.to_string()))?;
        }
        if self.repository.password_file.is_some() && self.repository.password_command.is_some() {
            return Err(bad(
                "[repository] has both password_file and password_command; keep one".into(),
            ));
        }
        for (name, c) in &self.components {
            if !is_valid_component_name(name) {
                return Err(bad(format!(
                    "component name {name:?}: use letters, digits, '-', '_', '.', '@' (not starting with '-' or '.')"
                )));
            }
            match &c.kind {
                Kind::Files {
                    paths,
                    paths_if_present,
                    ..
                } => {
                    if paths.is_empty() && paths_if_present.is_empty() {
                        return Err(bad(format!(
                            "component {name}: `paths` (and `paths_if_present`) is empty"
                        )));
                    }
                    if let Some(p) = paths
                        .iter()
                        .chain(paths_if_present)
                        .find(|p| !p.is_absolute())
                    {
                        return Err(bad(format!(
                            "component {name}: path {} is not absolute",
                            p.display()
                        )));
                    }
                }
                Kind::Command {
                    backup,
                    stream,
                    timeout,
                    ..
                } => {
                    if backup.trim().is_empty() {
                        return Err(bad(format!("component {name}: `backup` is empty")));
                    }
                    if let Some(s) = stream
                        && (s.is_empty() || s.contains('/') || s.contains('\0'))
                    {
                        return Err(bad(format!(
                            "component {name}: stream name {s:?} must be a plain file name"
                        )));
                    }
                    if let Some(t) = timeout {
                        parse_duration(t)
                            .map_err(|e| bad(format!("component {name}: timeout: {e}")))?;
                    }
                }
                Kind::Mariadb { timeout, .. }
                | Kind::Postgres { timeout, .. }
                | Kind::Redis { timeout, .. }
                | Kind::Rabbitmq { timeout, .. } => {
                    if let Some(t) = timeout {
                        parse_duration(t)
                            .map_err(|e| bad(format!("component {name}: timeout: {e}")))?;
                    }
                }
                Kind::Galera { nodes, timeout, .. } => {
                    if nodes.is_empty() {
                        return Err(bad(format!("component {name}: `nodes` is empty")));
                    }
                    if let Some(t) = timeout {
                        parse_duration(t)
                            .map_err(|e| bad(format!("component {name}: timeout: {e}")))?;
                    }
                }
                Kind::Pacemaker { env } => {
                    if let Some(k) = env.keys().find(|k| {
                        k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    }) {
                        return Err(bad(format!(
                            "component {name}: {k:?} is not an environment variable name"
                        )));
                    }
                }
            }
            if let Some(t) = c
                .tags
                .iter()
                .find(|t| t.starts_with(COMPONENT_TAG) || t.starts_with(KIND_TAG))
            {
                return Err(bad(format!(
                    "component {name}: tag {t:?} is reserved (Lifeboat adds component: and kind: tags itself)"
                )));
            }
        }
        Ok(())
    }
}

/// A component's backups as the repository holds them.
#[derive(Debug, Clone, Default)]
pub struct ComponentStatus {
    /// The newest complete snapshot of the component.
    pub last_good: Option<(Id, jiff::Timestamp)>,
    /// The newest snapshot of the component, complete or not.
    pub last: Option<(Id, jiff::Timestamp, bool)>,
    pub snapshots: usize,
}

/// Each component's status, from the repository's snapshots.
pub fn component_status(
    names: impl IntoIterator<Item = String>,
    snapshots: &[(Id, Snapshot)],
) -> BTreeMap<String, ComponentStatus> {
    let mut out: BTreeMap<String, ComponentStatus> =
        names.into_iter().map(|n| (n, Default::default())).collect();
    for (id, s) in snapshots {
        let Some(name) = s.tags.iter().find_map(|t| t.strip_prefix(COMPONENT_TAG)) else {
            continue;
        };
        let Some(st) = out.get_mut(name) else {
            continue;
        };
        if s.tags.iter().any(|t| t == SAFETY_TAG) {
            continue;
        }
        st.snapshots += 1;
        if st.last.is_none_or(|(_, t, _)| s.time > t) {
            st.last = Some((*id, s.time, s.is_complete()));
        }
        if s.is_complete() && st.last_good.is_none_or(|(_, t)| s.time > t) {
            st.last_good = Some((*id, s.time));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[repository]
location = "/var/backups/lifeboat"
password_file = "/etc/lifeboat/password"

[components.keystone-config]
kind = "files"
paths = ["/etc/keystone", "/var/lib/keystone/fernet-keys"]
exclude = ["*.pyc"]

[components.ovn-nb]
kind = "command"
backup = "ovsdb-client backup unix:/run/ovn/ovnnb_db.sock"
restore = "ovsdb-client restore unix:/run/ovn/ovnnb_db.sock"
stream = "ovnnb.db"
timeout = "30m"
tags = ["ovn"]
"#;

    #[test]
    fn parses_components_of_each_kind() {
        let c = Config::parse(SAMPLE, "t.toml").unwrap();
        assert_eq!(
            c.repository.location.as_deref(),
            Some("/var/backups/lifeboat")
        );
        assert_eq!(c.components.len(), 2);
        let k = &c.components["keystone-config"];
        assert_eq!(k.kind.name(), "files");
        assert!(k.describe().contains("/etc/keystone"));
        let o = &c.components["ovn-nb"];
        assert_eq!(o.stream_name("ovn-nb").as_deref(), Some("ovnnb.db"));
        assert_eq!(o.timeout(), Some(Duration::from_secs(1800)));
        assert_eq!(
            o.snapshot_tags("ovn-nb"),
            vec!["component:ovn-nb", "kind:command", "ovn"]
        );
    }

    #[test]
    fn refuses_what_would_be_silently_wrong() {
        let err = |t: &str| Config::parse(t, "t.toml").unwrap_err().to_string();
        // A typo in a key.
        let e = err("[components.a]\nkind = \"files\"\npath = [\"/etc\"]\n");
        assert!(e.contains("path"), "{e}");
        // A kind this version does not know.
        let e = err("[components.a]\nkind = \"mongodb\"\nbackup = \"x\"\n");
        assert!(e.contains("mongodb"), "{e}");
        assert!(err("[components.a]\nkind = \"files\"\npaths = [\"etc\"]\n").contains("absolute"));
        assert!(err("[components.a]\nkind = \"files\"\npaths = []\n").contains("empty"));
        assert!(
            err("[components.\"../x\"]\nkind = \"files\"\npaths = [\"/e\"]\n").contains("name")
        );
        assert!(
            err("[components.a]\nkind = \"command\"\nbackup = \"x\"\ntimeout = \"soon\"\n")
                .contains("timeout")
        );
        assert!(
            err("[components.a]\nkind = \"command\"\nbackup = \"x\"\ntags = [\"component:b\"]\n")
                .contains("reserved")
        );
        assert!(
            err("[repository]\npassword_file = \"/a\"\npassword_command = \"b\"\n")
                .contains("keep one")
        );
        // The parser's message names the line.
        let e = err("[components.a]\nkind = \"files\"\npaths = [\"/etc\"\n");
        assert!(e.contains("line"), "{e}");
    }

    #[test]
    fn last_good_backup_ignores_incomplete_snapshots() {
        let snap = |secs: i64, tags: &[&str], complete: bool| {
            let mut s: Snapshot = serde_json_like(secs);
            s.tags = tags.iter().map(|t| t.to_string()).collect();
            if !complete {
                s.skipped.push(lifeboat_format::SkippedEntry {
                    path: "/x".into(),
                    error: "gone".into(),
                });
            }
            s
        };
        let snaps = vec![
            (Id([1; 32]), snap(100, &["component:db"], true)),
            (Id([2; 32]), snap(200, &["component:db"], false)),
            (Id([3; 32]), snap(300, &["component:other"], true)),
            (Id([4; 32]), snap(400, &["component:db", "safety"], true)),
        ];
        let st = component_status(["db".to_string(), "etc".to_string()], &snaps);
        assert_eq!(st["db"].snapshots, 2);
        assert_eq!(st["db"].last_good.map(|(i, _)| i), Some(Id([1; 32])));
        assert_eq!(
            st["db"].last.map(|(i, _, c)| (i, c)),
            Some((Id([2; 32]), false))
        );
        assert!(st["etc"].last_good.is_none());
        assert!(!st.contains_key("other"), "not a configured component");
    }

    fn serde_json_like(secs: i64) -> Snapshot {
        let t = jiff::Timestamp::from_second(secs).unwrap();
        Snapshot {
            version: 1,
            time: t,
            time_end: t,
            hostname: "h".into(),
            username: "u".into(),
            paths: vec![],
            tags: vec![],
            tree: Id([0; 32]),
            parent: None,
            streams: vec![],
            skipped: vec![],
            summary: Default::default(),
            run_id: None,
            program_version: "t".into(),
            copied_from: None,
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5w").is_err());
    }
}
