//! PostgreSQL logical backups: `pg_dump -Fc` per database, `pg_dumpall --globals-only` for
//! roles and tablespaces, the server's version, and row counts and content hashes of every
//! table to verify a restore.
//!
//! Connection settings go to the tools as `PG*` environment variables set in front of each
//! command (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSFILE`); the password itself is only in the
//! passfile, never on a command line.

use crate::mariadb::{DumpSpec, sh_quote};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub const SERVER_STREAM: &str = "server.json";
pub const GLOBALS_STREAM: &str = "globals.sql";
pub const CHECKSUMS_STREAM: &str = "checksums.tsv";

/// Accepts a custom-format archive only if `pg_restore` can read its table of contents to the
/// end (a truncated dump fails).
pub const ARCHIVE_COMPLETE: &str = "pg_restore --list >/dev/null";
const GLOBALS_COMPLETE: &str = "grep -q 'PostgreSQL database cluster dump complete'";

#[derive(Debug, Clone, Default)]
pub struct Postgres {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub passfile: Option<PathBuf>,
    /// Where pg_dump, pg_restore, psql of the server's version are (default: PATH).
    pub bindir: Option<PathBuf>,
}

impl Postgres {
    fn env(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if let Some(h) = &self.host {
            v.push(("PGHOST", h.clone()));
        }
        if let Some(p) = self.port {
            v.push(("PGPORT", p.to_string()));
        }
        if let Some(u) = &self.user {
            v.push(("PGUSER", u.clone()));
        }
        if let Some(f) = &self.passfile {
            v.push(("PGPASSFILE", f.display().to_string()));
        }
        v
    }

    fn tool(&self, name: &str) -> String {
        match &self.bindir {
            Some(d) => d.join(name).display().to_string(),
            None => name.to_string(),
        }
    }

    /// `PGHOST='..' ... /path/tool`: a shell command prefix.
    fn shell(&self, tool: &str) -> String {
        let mut s = String::new();
        for (k, v) in self.env() {
            s.push_str(&format!("{k}={} ", sh_quote(&v)));
        }
        s.push_str(&sh_quote(&self.tool(tool)));
        s
    }

    /// Runs SQL with psql in `db`; returns unaligned, tuples-only output.
    pub fn query(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.tool("psql"))
            .envs(self.env())
            .env_remove("LIFEBOAT_PASSWORD")
            .args([
                "-X",
                "-A",
                "-t",
                "-F",
                "\t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                db,
                "-c",
                sql,
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run psql: {e} (is postgresql-client installed?)"))?;
        if !out.status.success() {
            return Err(format!(
                "psql failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The databases to dump: `include` (every non-template database if empty) minus
    /// `exclude`; a configured one that is missing is an error unless `skip_missing`.
    pub fn databases(
        &self,
        include: &[String],
        exclude: &[String],
        skip_missing: bool,
    ) -> Result<Vec<String>, String> {
        let all: Vec<String> = self
            .query(
                "postgres",
                "SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY 1",
            )?
            .lines()
            .map(str::to_string)
            .collect();
        if !skip_missing && let Some(m) = include.iter().find(|d| !all.contains(d)) {
            return Err(format!("database {m} does not exist on the server"));
        }
        Ok(all
            .into_iter()
            .filter(|d| include.is_empty() && d != "postgres" || include.contains(d))
            .filter(|d| !exclude.contains(d))
            .collect())
    }

    pub fn version(&self) -> Result<String, String> {
        Ok(self
            .query("postgres", "SHOW server_version")?
            .trim()
            .to_string())
    }

    /// Row counts and content hashes (rows hashed in a fixed order, so equal contents give
    /// equal hashes) of every table of `db`: "schema.table" -> (rows, md5).
    pub fn checksums(&self, db: &str) -> Result<BTreeMap<String, (String, String)>, String> {
        let tables = self.query(
            db,
            "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables \
             WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
        )?;
        let mut out = BTreeMap::new();
        for t in tables.lines().filter(|l| !l.is_empty()) {
            let row = self.query(
                db,
                &format!(
                    "SELECT count(*), coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM {t} x"
                ),
            )?;
            let (n, h) = row.trim().split_once('\t').unwrap_or((row.trim(), ""));
            out.insert(t.to_string(), (n.to_string(), h.to_string()));
        }
        Ok(out)
    }

    /// Everything a backup of `dbs` takes: the server record, the globals, one archive per
    /// database, and the checksums (as a command, computed while the backup runs).
    pub fn dump_specs(&self, dbs: &[String]) -> Vec<DumpSpec> {
        let psql = self.shell("psql");
        let info = "SELECT json_build_object('version', current_setting('server_version'), \
                    'server_encoding', current_setting('server_encoding'), 'lc_collate', \
                    current_setting('lc_collate'))";
        let mut v = vec![
            DumpSpec {
                stream: SERVER_STREAM.into(),
                command: format!("{psql} -X -A -t -d postgres -c {}", sh_quote(info)),
                validate: None,
            },
            DumpSpec {
                stream: GLOBALS_STREAM.into(),
                command: format!("{} --globals-only", self.shell("pg_dumpall")),
                validate: Some(GLOBALS_COMPLETE.into()),
            },
        ];
        for db in dbs {
            v.push(DumpSpec {
                stream: format!("{db}.dump"),
                command: format!("{} -Fc {}", self.shell("pg_dump"), sh_quote(db)),
                validate: Some(ARCHIVE_COMPLETE.into()),
            });
        }
        v
    }

    /// The command that restores one archive (read on stdin), recreating its database.
    pub fn restore_archive_command(&self) -> String {
        format!(
            "{} --clean --if-exists --create --exit-on-error --dbname=postgres",
            self.shell("pg_restore")
        )
    }

    /// The command that loads the globals (roles that exist already make harmless errors,
    /// so errors do not stop it).
    pub fn restore_globals_command(&self) -> String {
        format!("{} -X -q -d postgres -f -", self.shell("psql"))
    }
}

/// The checksums, computed before the dumps, as a stream of the snapshot.
pub fn checksums_spec(text: &str) -> DumpSpec {
    // A header line keeps the stream non-empty when there is no table (an empty stream
    // fails a backup, as an empty dump must).
    let text = format!("# database\ttable\trows\tmd5\n{text}");
    DumpSpec {
        stream: CHECKSUMS_STREAM.into(),
        command: format!("printf '%s' {}", sh_quote(&text)),
        validate: None,
    }
}

/// `schema.table<TAB>rows<TAB>md5` lines, per database, as written into `checksums.tsv`.
pub fn format_checksums(db: &str, sums: &BTreeMap<String, (String, String)>) -> String {
    sums.iter()
        .map(|(t, (n, h))| format!("{db}\t{t}\t{n}\t{h}\n"))
        .collect()
}

/// Parses `checksums.tsv`: (db, "schema.table") -> (rows, md5).
pub fn parse_checksums(text: &str) -> BTreeMap<(String, String), (String, String)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            match f.as_slice() {
                [db, t, n, h] => Some((
                    (db.to_string(), t.to_string()),
                    (n.to_string(), h.to_string()),
                )),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_settings_are_environment_not_arguments() {
        let p = Postgres {
            host: Some("127.0.0.1".into()),
            port: Some(15432),
            user: Some("lifeboat".into()),
            passfile: Some("/etc/lifeboat/pgpass".into()),
            bindir: None,
        };
        let specs = p.dump_specs(&["keystone".into()]);
        let names: Vec<&str> = specs.iter().map(|s| s.stream.as_str()).collect();
        assert_eq!(names, ["server.json", "globals.sql", "keystone.dump"]);
        assert!(
            specs[2]
                .command
                .starts_with("PGHOST='127.0.0.1' PGPORT='15432'")
        );
        assert!(
            specs[2]
                .command
                .contains("PGPASSFILE='/etc/lifeboat/pgpass'")
        );
        assert_eq!(specs[2].validate.as_deref(), Some(ARCHIVE_COMPLETE));
    }

    #[test]
    fn checksums_round_trip() {
        let mut m = BTreeMap::new();
        m.insert("public.t".to_string(), ("3".to_string(), "abc".to_string()));
        let parsed = parse_checksums(&format_checksums("db", &m));
        assert_eq!(
            parsed[&("db".to_string(), "public.t".to_string())],
            ("3".to_string(), "abc".to_string())
        );
    }
}
