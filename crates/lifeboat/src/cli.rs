//! The command line, as clap definitions. The man page and shell completions are generated
//! from these (`lifeboat completions`, `lifeboat man`), so they cannot drift apart.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "lifeboat",
    version,
    about = "Backup and disaster recovery for cloud control planes",
    long_about = "Lifeboat keeps deduplicated, compressed, encrypted backups of files and of \
                  service dumps in a repository, restores them, and proves that they restore.\n\n\
                  The password comes from LIFEBOAT_PASSWORD, --password-file, --password-command, \
                  or a prompt on a terminal. With no --repo, a default local repository under \
                  $XDG_DATA_HOME/lifeboat/repo is used.",
    after_help = "Exit codes: 0 success; 1 error; 3 backup written but some files could not be read; \
                  10 no repository; 11 repository busy (another prune holds the lease); 12 wrong password; 130 interrupted."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Repository location: a path, file:///path, sftp://[user@]host[:port]/path,
    /// s3://[endpoint/]bucket[/prefix] or swift://container[/prefix]
    #[arg(short = 'r', long, env = "LIFEBOAT_REPOSITORY", global = true)]
    pub repo: Option<String>,
    /// Requests a remote repository keeps in flight (default: 4 for SFTP, 8 for S3 and Swift)
    #[arg(long, env = "LIFEBOAT_CONNECTIONS", global = true, value_name = "N")]
    pub connections: Option<usize>,
    /// Attempts per storage request before giving up on a network or server error (backoff
    /// with jitter between them, up to 15 s)
    #[arg(
        long,
        env = "LIFEBOAT_RETRIES",
        global = true,
        value_name = "N",
        default_value_t = 8
    )]
    pub retries: u32,
    /// ssh option for sftp:// repositories and for nodes, as for `ssh -o` (repeatable)
    #[arg(long = "ssh-option", global = true, value_name = "OPTION")]
    pub ssh_options: Vec<String>,
    /// ssh configuration file for sftp:// repositories and for nodes (`ssh -F`)
    #[arg(long, env = "LIFEBOAT_SSH_CONFIG", global = true, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// S3 endpoint URL, e.g. https://rgw.example.com:8080 (default: AWS_ENDPOINT_URL_S3,
    /// AWS_ENDPOINT_URL, or the one in the s3:// URL, or AWS)
    #[arg(long, env = "LIFEBOAT_S3_ENDPOINT", global = true, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// S3 region (default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1)
    #[arg(long, global = true, value_name = "REGION")]
    pub s3_region: Option<String>,
    /// S3 addressing: path (endpoint/bucket/key; the default with a custom endpoint) or
    /// virtual-host (bucket.endpoint/key; the default for AWS)
    #[arg(long, global = true, value_name = "STYLE", value_parser = ["path", "virtual-host"])]
    pub s3_addressing: Option<String>,
    /// Read the password from the first line of this file
    #[arg(
        long,
        env = "LIFEBOAT_PASSWORD_FILE",
        global = true,
        value_name = "FILE"
    )]
    pub password_file: Option<PathBuf>,
    /// Run this command (through /bin/sh) and use the first line it prints as the password
    #[arg(
        long,
        env = "LIFEBOAT_PASSWORD_COMMAND",
        global = true,
        value_name = "COMMAND"
    )]
    pub password_command: Option<String>,
    /// Where to keep the local cache (default: $XDG_CACHE_HOME/lifeboat)
    #[arg(long, env = "LIFEBOAT_CACHE_DIR", global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Use no local cache
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Print machine-readable JSON on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only errors; no progress bars
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// No progress bars
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// The configuration file: repository and components (default /etc/lifeboat/lifeboat.toml
    /// when it exists)
    #[arg(long, env = "LIFEBOAT_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The loaded configuration (not an option).
    #[arg(skip)]
    pub loaded: Option<std::sync::Arc<lifeboat_plan::Config>>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new repository
    Init(InitArgs),
    /// Manage the repository's keys: list them, add or remove a password, change one
    Key(KeyArgs),
    /// Back up files, standard input or command output into a new snapshot
    Backup(BackupArgs),
    /// List snapshots
    Snapshots(SnapshotsArgs),
    /// List the files of a snapshot
    Ls(LsArgs),
    /// Show what changed between two snapshots
    Diff(DiffArgs),
    /// Find files by name in snapshots
    Find(FindArgs),
    /// Write a file or stream of a snapshot to stdout (a directory as a tar stream)
    Dump(DumpArgs),
    /// Restore a snapshot into a directory
    Restore(RestoreArgs),
    /// Check the repository's integrity
    Check(CheckArgs),
    /// Forget snapshots by a retention policy (or by id); `prune` then frees their data
    #[command(
        long_about = "Forget snapshots: by a retention policy, or exactly the snapshots given \
                      by id.\n\n\
                      Snapshots are split into groups (--group-by, default host,paths) and the \
                      policy is applied to each group. --keep-hourly/daily/weekly/monthly/yearly N \
                      keep the newest snapshot of each of the N most recent hours, days, ISO \
                      weeks, months or years that have one; bucket boundaries are in the local \
                      time zone (TZ). When a count is not used up, the oldest snapshot is kept \
                      too. --keep-within keeps everything newer than DURATION before the newest \
                      snapshot of the group. A snapshot is kept when any rule keeps it.\n\n\
                      With no keep option and no snapshot ids nothing is forgotten: give a policy, \
                      --defaults, or --keep-none. Forgetting deletes only the snapshot files; \
                      run `lifeboat prune` to free the data."
    )]
    Forget(ForgetArgs),
    /// Free the space of data no snapshot needs, in two phases, beside running backups
    #[command(long_about = "Free the space of data that no snapshot needs.\n\n\
                      Prune works in two phases so that backups running at the same time never \
                      lose data and are never blocked: a pack that no snapshot needs is first \
                      marked; a later prune deletes it if it is still unneeded, was marked at least \
                      --keep-delete ago, and no backup that started before the mark is still \
                      running. Partly used packs are repacked when the unused space exceeds \
                      --max-unused. Only one prune runs at a time (a maintenance lease in locks/, \
                      renewed while it works, taken over only after it expires).\n\n\
                      Run it after `lifeboat forget`, e.g. nightly; --dry-run shows what would be \
                      deleted, marked and repacked and how much space comes back.")]
    Prune(PruneArgs),
    /// Repair a damaged repository: rebuild the index, rewrite snapshots that lost data
    Repair(RepairArgs),
    /// List the configured components with their last good backup
    Components,
    /// List the nodes of the inventory (configuration and Ansible inventory)
    #[command(
        long_about = "List the nodes of the inventory: the [nodes] and [groups] of the \
                      configuration and, with `inventory = \"ansible:PATH\"`, the hosts and \
                      groups of an Ansible inventory (read with ansible-inventory when it is \
                      installed, else with Lifeboat's own reader for INI, YAML and JSON \
                      inventories; LIFEBOAT_ANSIBLE_INVENTORY=builtin forces the latter).\n\n\
                      Shows each node's address, how it is reached (user, port, jump host), its \
                      groups and its components. Mistakes (unknown groups or components, two \
                      nodes that are one machine, cycles of groups) are errors."
    )]
    Nodes(NodesArgs),
    /// Show the built-in OpenStack profiles: the components each role gets
    #[command(
        long_about = "Show the built-in profiles (controller, compute, network, swift-storage, \
                      undercloud/director, seed): the components a node or group gets with \
                      `profiles = [\"NAME\"]`, printed as the configuration text they stand for, \
                      ready to copy and adjust. A [components.\"NAME\"] of the same name in the \
                      configuration replaces a profile's; `skip_components` drops one."
    )]
    Profiles(ProfilesArgs),
    /// Copy snapshots into another repository (one with other keys)
    #[command(
        long_about = "Copy snapshots into another repository, e.g. an off-site one.\n\n\
                      With no SNAPSHOT every snapshot is copied (narrowed by --host, --tag and \
                      --path). The target has its own keys and chunk size, so file contents are \
                      read from the source and cut again for the target, and only chunks the \
                      target lacks are stored. Each copied snapshot keeps its time, host, paths, \
                      tags and metadata and records which snapshot it copies; snapshots the \
                      target already holds are skipped, so an interrupted copy is simply run \
                      again.\n\n\
                      The target's password comes from --to-password-file, LIFEBOAT_TO_PASSWORD \
                      or a prompt on a terminal; create the target first with \
                      `lifeboat init -r TARGET`."
    )]
    Copy(CopyArgs),
    /// Print shell completions
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages into a directory
    Man {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Average chunk size, a power of two between 1KiB and 4MiB (fixed for the repository)
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    pub chunk_size: u64,
    /// Default zstd level for backups (0 = none, 1-22)
    #[arg(long, default_value_t = 3)]
    pub compression: i32,
    /// Target pack size
    #[arg(long, default_value = "16MiB", value_parser = parse_size)]
    pub pack_size: u64,
    /// Argon2id memory in KiB
    #[arg(long, default_value_t = lifeboat_format::KdfParams::DEFAULT.m_cost_kib, hide = true)]
    pub kdf_memory_kib: u32,
    /// Argon2id passes
    #[arg(long, default_value_t = lifeboat_format::KdfParams::DEFAULT.t_cost, hide = true)]
    pub kdf_passes: u32,
}

#[derive(Args, Debug)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub command: KeyCommand,
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// List the key files: id, Argon2id parameters, the one this password opened, damage
    List,
    /// Add a key: another password that opens the same repository
    Add(NewKeyArgs),
    /// Remove a key file (never the one this password opened, never the last one)
    Remove {
        /// Key id or a unique prefix of it (`lifeboat key list` shows them)
        id: String,
    },
    /// Change the password: add a key with the new password, then remove the one in use
    Passwd(NewKeyArgs),
    /// Rotate the data key: a new key encrypts everything written from now on, the keyring
    /// is wrapped by a new password, every other key file is removed, and prune re-encrypts
    /// the existing data (at once with --now)
    Rotate {
        #[command(flatten)]
        new: NewKeyArgs,
        /// Confirm that the other key files (other passwords) are removed
        #[arg(long)]
        yes: bool,
        /// Re-encrypt all existing data now (a prune that repacks everything sealed under an
        /// old key) instead of during later prunes
        #[arg(long)]
        now: bool,
    },
}

/// Where `key add` and `key passwd` get the new password, and how it is protected.
#[derive(Args, Debug)]
pub struct NewKeyArgs {
    /// Read the new password from the first line of this file (else LIFEBOAT_NEW_PASSWORD,
    /// else a prompt on a terminal)
    #[arg(long, value_name = "FILE")]
    pub new_password_file: Option<PathBuf>,
    /// Argon2id memory in KiB
    #[arg(long, default_value_t = lifeboat_format::KdfParams::DEFAULT.m_cost_kib, hide = true)]
    pub kdf_memory_kib: u32,
    /// Argon2id passes
    #[arg(long, default_value_t = lifeboat_format::KdfParams::DEFAULT.t_cost, hide = true)]
    pub kdf_passes: u32,
}

#[derive(Args, Debug, Clone)]
pub struct BackupArgs {
    /// Files and directories to back up; `-` reads standard input (with --stdin-filename)
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Tag the snapshot (repeatable)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Host name to record (default: this host's name)
    #[arg(long)]
    pub host: Option<String>,
    /// Leave out paths matching this glob (repeatable); without '/' it matches a name anywhere
    #[arg(short = 'e', long = "exclude", value_name = "PATTERN")]
    pub excludes: Vec<String>,
    /// Read exclude patterns from a file, one a line
    #[arg(long = "exclude-file", value_name = "FILE")]
    pub exclude_files: Vec<PathBuf>,
    /// Leave out directories that contain a file of this name (e.g. CACHEDIR.TAG)
    #[arg(long = "exclude-if-present", value_name = "NAME")]
    pub exclude_if_present: Vec<String>,
    /// Stay on the file system of each given path
    #[arg(short = 'x', long)]
    pub one_file_system: bool,
    /// Store standard input under this name (give `-` as the path)
    #[arg(long, value_name = "NAME")]
    pub stdin_filename: Option<String>,
    /// Store the standard output of COMMAND (run by /bin/sh) as file NAME (repeatable)
    #[arg(long = "from-command", value_name = "NAME=COMMAND")]
    pub from_commands: Vec<String>,
    /// zstd level for this backup (0 = none)
    #[arg(long)]
    pub compression: Option<i32>,
    /// Compare with this snapshot to skip unchanged files (default: the latest of this host
    /// and paths)
    #[arg(long, value_name = "SNAPSHOT")]
    pub parent: Option<String>,
    /// Read every file, ignoring the parent snapshot
    #[arg(long)]
    pub force: bool,
    /// Do everything but write to the repository
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Record this as the backup's time instead of now (to import older backups): RFC 3339
    /// (`2024-02-15T18:00:00Z`) or `YYYY-MM-DD HH:MM:SS` in the local time zone
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub time: Option<jiff::Timestamp>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct Filter {
    /// Only snapshots of this host (repeatable)
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Only snapshots with this tag (repeatable: all must match)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Only snapshots of this path (repeatable)
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<String>,
}

#[derive(Args, Debug)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    pub filter: Filter,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Snapshot id, unique prefix, or `latest`
    pub snapshot: String,
    /// Directory or file inside the snapshot (default: everything)
    pub path: Option<PathBuf>,
    /// With PATH: list everything below it, not only its entries
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Show mode, owner, size and time
    #[arg(short, long)]
    pub long: bool,
    #[command(flatten)]
    pub filter: Filter,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    pub first: String,
    pub second: String,
}

#[derive(Args, Debug)]
pub struct FindArgs {
    /// Glob matched against names (or full paths if it contains '/')
    pub pattern: String,
    /// Search only this snapshot (repeatable)
    #[arg(short, long = "snapshot", value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
    #[command(flatten)]
    pub filter: Filter,
}

#[derive(Args, Debug)]
pub struct DumpArgs {
    pub snapshot: String,
    /// File, stream or directory inside the snapshot
    pub path: PathBuf,
    #[command(flatten)]
    pub filter: Filter,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OverwriteArg {
    Always,
    IfChanged,
    Never,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Snapshot id, unique prefix, or `latest`; `SNAPSHOT:PATH` restores only PATH's contents.
    /// Or a component of the configuration file (see --plan, --yes)
    pub snapshot: String,
    /// Directory to restore into (created if missing); for a files component, default /
    #[arg(short, long)]
    pub target: Option<PathBuf>,
    /// Component restore: the snapshot to restore (default: the component's last good one)
    #[arg(long = "snapshot", value_name = "SNAPSHOT")]
    pub from: Option<String>,
    /// Component restore: print the ordered steps and change nothing
    #[arg(long, conflicts_with = "yes")]
    pub plan: bool,
    /// Component restore: run the steps (a journal records each one)
    #[arg(long)]
    pub yes: bool,
    /// Component restore: go on from the step an interrupted restore stopped at
    #[arg(long, requires = "yes")]
    pub resume: bool,
    /// Component restore: skip the safety dump of what is there now
    #[arg(long)]
    pub no_safety: bool,
    /// Component restore: go on although the server's version differs from the one recorded
    /// at backup time
    #[arg(long)]
    pub force: bool,
    /// Component restore of a database server: restore only this database (not the others,
    /// not users and grants)
    #[arg(long, value_name = "NAME")]
    pub database: Option<String>,
    /// Restore only paths matching this glob and what is below them (repeatable)
    #[arg(short, long = "include", value_name = "PATTERN")]
    pub includes: Vec<String>,
    /// Leave out paths matching this glob (repeatable)
    #[arg(short, long = "exclude", value_name = "PATTERN")]
    pub excludes: Vec<String>,
    /// Read every restored file back and compare it with the snapshot
    #[arg(long)]
    pub verify: bool,
    /// What to do with files that already exist in the target
    #[arg(long, value_enum, default_value = "always")]
    pub overwrite: OverwriteArg,
    /// Remove files in the target that are not in the snapshot
    #[arg(long)]
    pub delete: bool,
    /// Restore holes as holes (sparse files) instead of writing zeros
    #[arg(long)]
    pub sparse: bool,
    #[command(flatten)]
    pub filter: Filter,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Read and verify all data
    #[arg(long, conflicts_with = "read_data_subset")]
    pub read_data: bool,
    /// Read and verify part of the data: `10%` (the least recently verified tenth, so nightly
    /// runs cover everything over time) or `n/t` (a fixed slice)
    #[arg(long, value_name = "SUBSET")]
    pub read_data_subset: Option<String>,
    /// Read only packs not verified within DURATION (units s, m, h, d); alone, it reads every
    /// such pack
    #[arg(long, value_name = "DURATION", value_parser = parse_grace)]
    pub max_age: Option<std::time::Duration>,
}

#[derive(Args, Debug, Clone)]
pub struct PruneArgs {
    /// Grace period: a marked pack is deleted only once it has been marked this long
    /// (units s, m, h, d; e.g. 24h, 2d, 0 to delete at the next prune after marking)
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_grace)]
    pub keep_delete: std::time::Duration,
    /// Unused space tolerated in partly used packs before they are repacked, in percent of the
    /// used space (`100%` = never repack for space)
    #[arg(long, value_name = "PERCENT", default_value = "5%", value_parser = parse_percent)]
    pub max_unused: f64,
    /// Copy at most this much data when repacking (e.g. 10GiB)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_repack: Option<u64>,
    /// Show what would be deleted, marked and repacked; change nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// List every pack's fate, not only the totals
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Args, Debug)]
pub struct RepairArgs {
    #[command(subcommand)]
    pub command: RepairCommand,
}

#[derive(Subcommand, Debug)]
pub enum RepairCommand {
    /// Rebuild the index from the packs: segments that are readable and agree with the packs
    /// are kept, every other pack is indexed from its own trailer, then the old segments go
    Index {
        /// Index every pack from its trailer, ignoring the existing segments
        #[arg(long)]
        read_all_packs: bool,
        /// Say what would be rebuilt; change nothing
        #[arg(short = 'n', long)]
        dry_run: bool,
    },
    /// Save what can be read of damaged packs: every blob that still reads back whole is
    /// copied into new packs, and the old packs are marked for prune
    Packs {
        /// Packs to salvage, by id or unique prefix (default: those `check --read-data` found
        /// damaged)
        #[arg(value_name = "PACK")]
        packs: Vec<String>,
        /// Read and verify, say what would be saved and lost; write nothing
        #[arg(short = 'n', long)]
        dry_run: bool,
    },
    /// Rewrite snapshots that reference lost data: lost files are emptied and lost directories
    /// listed as empty, every loss is recorded in the new snapshot (shown INCOMPLETE) and it is
    /// tagged `repaired`; the original snapshot is then forgotten
    Snapshots {
        /// Snapshots to repair (default: all)
        #[arg(value_name = "SNAPSHOT")]
        snapshots: Vec<String>,
        /// Keep the original snapshots beside the repaired ones
        #[arg(long)]
        keep_original: bool,
        /// List what would be marked lost; change nothing
        #[arg(short = 'n', long)]
        dry_run: bool,
    },
}

/// A grace period: a number with a unit s, m, h or d (`0` alone is allowed).
pub fn parse_grace(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    if t == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let split = t
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{s:?} needs a unit: s, m, h or d (e.g. 24h)"))?;
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (try 24h)"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        u => return Err(format!("unknown unit {u:?} in {s:?} (use s, m, h or d)")),
    };
    n.checked_mul(mult)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long"))
}

/// A percentage 0..=100, with or without `%`.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{s:?} is not a percentage (try 5%)"))?;
    if !(0.0..=100.0).contains(&v) {
        return Err(format!("{s:?} is not between 0% and 100%"));
    }
    Ok(v)
}

/// The options that make a policy: snapshot ids and --keep-none conflict with them.
const KEEP_OPTIONS: [&str; 9] = [
    "keep_last",
    "keep_hourly",
    "keep_daily",
    "keep_weekly",
    "keep_monthly",
    "keep_yearly",
    "keep_within",
    "keep_tags",
    "defaults",
];

#[derive(Args, Debug)]
pub struct ForgetArgs {
    /// Forget exactly these snapshots (id, unique prefix, or `latest`); no policy applies
    #[arg(value_name = "SNAPSHOT", conflicts_with_all = KEEP_OPTIONS)]
    pub snapshots: Vec<String>,
    /// Keep the N newest snapshots
    #[arg(short = 'l', long, value_name = "N", value_parser = parse_count)]
    pub keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent hours that have one
    #[arg(short = 'H', long, value_name = "N", value_parser = parse_count)]
    pub keep_hourly: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent days that have one
    #[arg(short = 'd', long, value_name = "N", value_parser = parse_count)]
    pub keep_daily: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent ISO weeks that have one
    #[arg(short = 'w', long, value_name = "N", value_parser = parse_count)]
    pub keep_weekly: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent months that have one
    #[arg(short = 'm', long, value_name = "N", value_parser = parse_count)]
    pub keep_monthly: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent years that have one
    #[arg(short = 'y', long, value_name = "N", value_parser = parse_count)]
    pub keep_yearly: Option<u32>,
    /// Keep every snapshot newer than DURATION before the group's newest: numbers with units
    /// y, m (months), w, d, h, e.g. 36h, 7d, 2w, 1y2m
    #[arg(long, value_name = "DURATION", value_parser = parse_within)]
    pub keep_within: Option<lifeboat_repo::retention::Within>,
    /// Keep every snapshot with this tag (repeatable: any of them)
    #[arg(long = "keep-tag", value_name = "TAG")]
    pub keep_tags: Vec<String>,
    /// Add the operator default: --keep-daily 7 --keep-weekly 4 --keep-monthly 6
    #[arg(long)]
    pub defaults: bool,
    /// Forget every selected snapshot (no policy)
    #[arg(long, visible_alias = "all", conflicts_with_all = KEEP_OPTIONS, conflicts_with = "snapshots")]
    pub keep_none: bool,
    /// Decide separately for each group of snapshots with the same values of these fields:
    /// host, tags, paths (any subset, comma-separated; "" for one group)
    #[arg(short = 'g', long, value_name = "FIELDS", default_value = "host,paths", value_parser = parse_group_by)]
    pub group_by: lifeboat_repo::GroupBy,
    /// Show what would be kept and removed, and why; change nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Run `prune` afterwards (with --dry-run, a prune dry run)
    #[arg(long)]
    pub prune: bool,
    /// For --prune: the grace period before marked packs are deleted
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_grace, requires = "prune")]
    pub keep_delete: std::time::Duration,
    /// For --prune: unused space tolerated before repacking
    #[arg(long, value_name = "PERCENT", default_value = "5%", value_parser = parse_percent, requires = "prune")]
    pub max_unused: f64,
    /// For --prune: copy at most this much data when repacking
    #[arg(long, value_name = "SIZE", value_parser = parse_size, requires = "prune")]
    pub max_repack: Option<u64>,
    #[command(flatten)]
    pub filter: Filter,
}

/// A keep count: a number, or `unlimited` for every bucket there is.
pub fn parse_count(s: &str) -> Result<u32, String> {
    if s == "unlimited" {
        return Ok(lifeboat_repo::retention::UNLIMITED);
    }
    s.parse::<u32>()
        .ok()
        .filter(|n| *n != lifeboat_repo::retention::UNLIMITED)
        .ok_or_else(|| format!("{s:?} is not a count (a number, or `unlimited`)"))
}

fn parse_within(s: &str) -> Result<lifeboat_repo::retention::Within, String> {
    s.parse()
}

fn parse_group_by(s: &str) -> Result<lifeboat_repo::GroupBy, String> {
    s.parse()
}

/// A point in time: RFC 3339 with an offset, or a civil `YYYY-MM-DD HH:MM:SS` (or with `T`)
/// taken in the local time zone.
pub fn parse_time(s: &str) -> Result<jiff::Timestamp, String> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    let civil: jiff::civil::DateTime = s.parse().map_err(|_| {
        format!("{s:?} is not a time: use RFC 3339 (2024-02-15T18:00:00Z) or YYYY-MM-DD HH:MM:SS")
    })?;
    civil
        .to_zoned(jiff::tz::TimeZone::system())
        .map(|z| z.timestamp())
        .map_err(|e| format!("{s:?}: {e}"))
}

#[derive(Args, Debug)]
pub struct CopyArgs {
    /// Snapshots to copy: ids, unique prefixes or `latest` (default: all, narrowed by
    /// --host, --tag and --path)
    #[arg(value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
    /// The target repository: a path or URL as for --repo (it must exist: `lifeboat init -r TARGET`)
    #[arg(long, value_name = "REPO")]
    pub to: String,
    /// Read the target's password from the first line of this file (else
    /// LIFEBOAT_TO_PASSWORD, else a prompt on a terminal)
    #[arg(long, value_name = "FILE")]
    pub to_password_file: Option<PathBuf>,
    /// Show what would be copied and how much would be added; write nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub filter: Filter,
}

/// Parses sizes like `1MiB`, `512KiB`, `16M`, `4096`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (try 1MiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        u => return Err(format!("unknown size unit {u:?} (use KiB, MiB or GiB)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn times_and_counts() {
        assert_eq!(
            parse_time("2024-02-15T18:00:00Z").map(|t| t.as_second()),
            Ok(1_708_020_000)
        );
        assert!(parse_time("2024-02-15 18:00:00").is_ok());
        assert!(parse_time("yesterday").is_err());
        assert_eq!(parse_count("7"), Ok(7));
        assert_eq!(
            parse_count("unlimited"),
            Ok(lifeboat_repo::retention::UNLIMITED)
        );
        assert!(parse_count("-1").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert!(parse_size("lots").is_err());
    }
}

#[derive(Args, Debug, Clone)]
pub struct NodesArgs {
    /// Only the nodes of this group (through its child groups too)
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Connect to every node (over SSH, as backups will) and show its facts: host name, OS,
    /// kernel, network interfaces; a node that cannot be reached, whose host key changed or
    /// that refuses the login is reported, and the exit code is 1
    #[arg(long)]
    pub check: bool,
    /// Seconds to wait for each node with --check
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
}

#[derive(Args, Debug, Clone)]
pub struct ProfilesArgs {
    /// Only this profile (a name or an alias)
    pub name: Option<String>,
}
