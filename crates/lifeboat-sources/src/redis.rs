//! Redis: the RDB file, streamed as `redis-cli --rdb -` takes it (the server writes a fresh
//! snapshot, as for a replica), the server's record (version, dir, dbfilename) and the key
//! count of every database to check a restore.
//!
//! The password goes to redis-cli as `REDISCLI_AUTH`, read from a file by the shell that runs
//! the command; it is never on a command line.

use crate::mariadb::{DumpSpec, sh_quote};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub const RDB_STREAM: &str = "dump.rdb";
pub const SERVER_STREAM: &str = "server.txt";
pub const KEYSPACE_STREAM: &str = "keyspace.txt";

/// Accepts an RDB only if `redis-check-rdb` finds its magic, structure and checksum right
/// (it needs a file, so the copy goes to a temporary file that is removed at once).
pub const RDB_VALID: &str =
    "f=$(mktemp) && trap 'rm -f \"$f\"' EXIT && cat > \"$f\" && redis-check-rdb \"$f\" >/dev/null";

#[derive(Debug, Clone, Default)]
pub struct Redis {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub password_file: Option<PathBuf>,
}

impl Redis {
    /// `REDISCLI_AUTH="$(cat FILE)" redis-cli -h H -p P`.
    fn cli(&self) -> String {
        let mut s = String::new();
        if let Some(f) = &self.password_file {
            s.push_str(&format!(
                "REDISCLI_AUTH=\"$(cat {})\" ",
                sh_quote(&f.display().to_string())
            ));
        }
        s.push_str("redis-cli --no-auth-warning");
        if let Some(h) = &self.host {
            s.push_str(&format!(" -h {}", sh_quote(h)));
        }
        if let Some(p) = self.port {
            s.push_str(&format!(" -p {p}"));
        }
        s
    }

    /// Runs a redis-cli command line (through the shell, for the password file).
    pub fn run(&self, args: &str) -> Result<String, String> {
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{} {args}", self.cli()))
            .env_remove("LIFEBOAT_PASSWORD")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run redis-cli: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // redis-cli exits 0 on server errors; they start with ERR, NOAUTH, WRONGPASS...
        let first = text.lines().next().unwrap_or("");
        if !out.status.success()
            || ["ERR", "NOAUTH", "WRONGPASS", "Could not connect"]
                .iter()
                .any(|p| first.starts_with(p))
        {
            return Err(format!(
                "redis-cli {args} failed: {} {}",
                first,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(text)
    }

    /// Keys per database now: "db0" -> count.
    pub fn keyspace(&self) -> Result<BTreeMap<String, u64>, String> {
        Ok(parse_keyspace(&self.run("INFO keyspace")?))
    }

    /// What a backup takes.
    pub fn dump_specs(&self) -> Vec<DumpSpec> {
        let cli = self.cli();
        vec![
            DumpSpec {
                stream: SERVER_STREAM.into(),
                command: format!(
                    "{cli} INFO server | grep -E '^(redis_version|os|config_file):'; {cli} CONFIG GET dir; {cli} CONFIG GET dbfilename"
                ),
                validate: None,
            },
            DumpSpec {
                stream: KEYSPACE_STREAM.into(),
                command: format!("{cli} INFO keyspace"),
                validate: None,
            },
            DumpSpec {
                stream: RDB_STREAM.into(),
                command: format!("{cli} --rdb -"),
                validate: Some(RDB_VALID.into()),
            },
        ]
    }
}

/// `db0:keys=3,expires=0,avg_ttl=0` lines -> {"db0": 3}.
pub fn parse_keyspace(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (db, rest) = l.trim().split_once(':')?;
            if !db.starts_with("db") {
                return None;
            }
            let keys = rest
                .split(',')
                .find_map(|kv| kv.strip_prefix("keys="))?
                .parse()
                .ok()?;
            Some((db.to_string(), keys))
        })
        .collect()
}

/// The `dir` and `dbfilename` recorded in `server.txt` (CONFIG GET output: name, value).
pub fn recorded_rdb_path(server_txt: &str) -> Option<PathBuf> {
    let lines: Vec<&str> = server_txt.lines().map(str::trim).collect();
    let get = |k: &str| {
        lines
            .iter()
            .position(|l| *l == k)
            .and_then(|i| lines.get(i + 1))
            .map(|s| s.to_string())
    };
    Some(PathBuf::from(get("dir")?).join(get("dbfilename")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyspace_and_paths_parse() {
        let k = parse_keyspace(
            "# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=0\r\ndb2:keys=10,expires=0,avg_ttl=0\r\n",
        );
        assert_eq!(k["db0"], 3);
        assert_eq!(k["db2"], 10);
        let p =
            recorded_rdb_path("redis_version:7.0.15\ndir\n/var/lib/redis\ndbfilename\ndump.rdb\n");
        assert_eq!(p, Some(PathBuf::from("/var/lib/redis/dump.rdb")));
    }

    #[test]
    fn the_password_is_read_by_the_shell_not_passed() {
        let r = Redis {
            host: Some("127.0.0.1".into()),
            port: Some(16379),
            password_file: Some("/etc/redis/pw".into()),
        };
        let s = r.dump_specs();
        assert!(
            s[2].command
                .starts_with("REDISCLI_AUTH=\"$(cat '/etc/redis/pw')\" redis-cli")
        );
        assert!(s[2].command.ends_with("--rdb -"));
    }
}
