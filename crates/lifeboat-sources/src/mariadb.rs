//! MariaDB (and MySQL) logical backups: what to dump and how, what to record beside the dumps,
//! and how to check a restore against it.
//!
//! A backup of a server is several streams in one snapshot: `server.json` (version and the
//! variables a restore must match), `grants.sql` (users and grants, `mariadb-dump
//! --system=users`), one `<database>.sql` per database (`--single-transaction --routines
//! --events --triggers`, so one database can be restored alone) and `checksums.tsv` (row
//! count and `CHECKSUM TABLE` of every table, to verify a restore). Credentials come from an
//! option file (`--defaults-extra-file`), never from argv.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Schemas that belong to the server, not to a service.
pub const SYSTEM_SCHEMAS: [&str; 4] = ["information_schema", "performance_schema", "sys", "mysql"];

/// Stream names of a server backup.
pub const SERVER_STREAM: &str = "server.json";
pub const GRANTS_STREAM: &str = "grants.sql";
pub const CHECKSUMS_STREAM: &str = "checksums.tsv";

/// A dump (or record) to take: its stream name, the shell command that writes it, and a
/// validation command that must accept it.
#[derive(Debug, Clone)]
pub struct DumpSpec {
    pub stream: String,
    pub command: String,
    pub validate: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct MariaDb {
    /// Option file with the client's credentials (`[client]` user, password, host/socket).
    pub defaults_file: Option<PathBuf>,
}

/// `'text'` for /bin/sh.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `` `name` `` for SQL.
pub fn sql_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// `'text'` for SQL.
fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// A validator that accepts a dump only if it ends as a complete `mariadb-dump` does.
pub const DUMP_COMPLETED: &str = "tail -n 1 | grep -q '^-- Dump completed'";

/// The last line of a complete grants dump, and its validator.
const GRANTS_DONE: &str = "-- Grants completed";
pub const GRANTS_COMPLETED: &str = "tail -n 1 | grep -q '^-- Grants completed'";

impl MariaDb {
    fn args(&self) -> Vec<String> {
        // --defaults-extra-file must come first on the command line.
        self.defaults_file
            .iter()
            .map(|f| format!("--defaults-extra-file={}", f.display()))
            .collect()
    }

    fn shell(&self, tool: &str) -> String {
        let mut s = tool.to_string();
        for a in self.args() {
            s.push(' ');
            s.push_str(&sh_quote(&a));
        }
        s
    }

    /// The client command a dump is restored with (it reads SQL on stdin).
    pub fn restore_command(&self) -> String {
        self.shell("mariadb")
    }

    /// Runs one or more SQL statements; returns the tab-separated rows.
    pub fn query(&self, sql: &str) -> Result<String, String> {
        let out = Command::new("mariadb")
            .args(self.args())
            .args(["-N", "-B", "-e", sql])
            .env_remove("LIFEBOAT_PASSWORD")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                format!("cannot run the mariadb client: {e} (is mariadb-client installed?)")
            })?;
        if !out.status.success() {
            return Err(format!(
                "mariadb failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The databases to dump: `include` (all but the system schemas if empty) minus `exclude`.
    /// A configured database that does not exist is an error, unless `skip_missing` (a safety
    /// dump before a restore, taken when it is missing is exactly what is expected).
    pub fn databases(
        &self,
        include: &[String],
        exclude: &[String],
        skip_missing: bool,
    ) -> Result<Vec<String>, String> {
        let all: Vec<String> = self
            .query("SHOW DATABASES")?
            .lines()
            .map(str::to_string)
            .collect();
        if !skip_missing && let Some(missing) = include.iter().find(|d| !all.contains(d)) {
            return Err(format!("database {missing} does not exist on the server"));
        }
        Ok(all
            .into_iter()
            .filter(|d| {
                if include.is_empty() {
                    !SYSTEM_SCHEMAS.contains(&d.as_str())
                } else {
                    include.contains(d)
                }
            })
            .filter(|d| !exclude.contains(d))
            .collect())
    }

    /// The server's version, e.g. `10.11.19-MariaDB-0+deb12u1-log`.
    pub fn version(&self) -> Result<String, String> {
        Ok(self.query("SELECT VERSION()")?.trim().to_string())
    }

    /// The base tables of `dbs`, as (database, table).
    pub fn tables(&self, dbs: &[String]) -> Result<Vec<(String, String)>, String> {
        if dbs.is_empty() {
            return Ok(Vec::new());
        }
        let list = dbs
            .iter()
            .map(|d| sql_string(d))
            .collect::<Vec<_>>()
            .join(",");
        let rows = self.query(&format!(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA IN ({list}) ORDER BY 1, 2"
        ))?;
        Ok(rows
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(d, t)| (d.to_string(), t.to_string()))
            .collect())
    }

    /// SQL whose output is `db<TAB>table<TAB>rows<TAB>checksum` for every table.
    pub fn checksum_sql(tables: &[(String, String)]) -> Option<String> {
        if tables.is_empty() {
            return None;
        }
        let counts = tables
            .iter()
            .map(|(d, t)| {
                format!(
                    "SELECT {}, {}, COUNT(*) FROM {}.{}",
                    sql_string(d),
                    sql_string(t),
                    sql_ident(d),
                    sql_ident(t)
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let sums = tables
            .iter()
            .map(|(d, t)| format!("{}.{}", sql_ident(d), sql_ident(t)))
            .collect::<Vec<_>>()
            .join(", ");
        Some(format!("{counts}; CHECKSUM TABLE {sums} EXTENDED"))
    }

    /// Row counts and checksums as the server reports them now: (db.table) -> (rows, checksum).
    pub fn checksums(
        &self,
        tables: &[(String, String)],
    ) -> Result<std::collections::BTreeMap<String, (String, String)>, String> {
        match Self::checksum_sql(tables) {
            None => Ok(Default::default()),
            Some(sql) => Ok(parse_checksums(&self.query(&sql)?)),
        }
    }

    /// A shell script that writes `CREATE ROLE IF NOT EXISTS` and the grants of every role,
    /// then `CREATE USER IF NOT EXISTS` and `GRANT` statements for every account but the
    /// server's own (`root`, `mariadb.sys`, `mysql`): those are the
    /// installation's, and re-granting root's PROXY privilege needs root itself. `mariadb-dump
    /// --system=users` dumps them all, so its output cannot be loaded by an admin account.
    fn grants_script(&self) -> String {
        let client = self.shell("mariadb");
        let list = "SELECT CONCAT(QUOTE(User), '@', QUOTE(Host)) FROM mysql.user                     WHERE User NOT IN ('root', 'mariadb.sys', 'mysql', '') AND is_role = 'N'                     ORDER BY User, Host";
        let roles = "SELECT QUOTE(User) FROM mysql.user WHERE is_role = 'Y' ORDER BY User";
        format!(
            r#"set -e; roles=$({client} -N -B -e {roles}); printf '%s
' "$roles" | while IFS= read -r r; do [ -n "$r" ] || continue; echo "CREATE ROLE IF NOT EXISTS $r;"; done; printf '%s
' "$roles" | while IFS= read -r r; do [ -n "$r" ] || continue; out=$({client} -N -B -e "SHOW GRANTS FOR $r"); printf '%s
' "$out" | sed -e 's/$/;/'; done; users=$({client} -N -B -e {list}); printf '%s\n' "$users" | while IFS= read -r u; do [ -n "$u" ] || continue; out=$({client} -N -B -e "SHOW CREATE USER $u; SHOW GRANTS FOR $u"); printf '%s\n' "$out" | sed -e 's/^CREATE USER /CREATE USER IF NOT EXISTS /' -e 's/$/;/'; done; echo '{GRANTS_DONE}'"#,
            list = sh_quote(list),
            roles = sh_quote(roles)
        )
    }

    /// Everything a backup of `dbs` takes, in the order it is taken.
    pub fn dump_specs(&self, dbs: &[String], tables: &[(String, String)]) -> Vec<DumpSpec> {
        let client = self.shell("mariadb");
        let dump = self.shell("mariadb-dump");
        let info = "SELECT JSON_OBJECT('version', VERSION(), 'version_comment', @@version_comment, \
                    'character_set_server', @@character_set_server, 'collation_server', \
                    @@collation_server, 'lower_case_table_names', @@lower_case_table_names, \
                    'sql_mode', @@sql_mode)";
        let mut v = vec![
            DumpSpec {
                stream: SERVER_STREAM.into(),
                command: format!("{client} -N -B -e {}", sh_quote(info)),
                validate: None,
            },
            DumpSpec {
                stream: GRANTS_STREAM.into(),
                command: self.grants_script(),
                validate: Some(GRANTS_COMPLETED.into()),
            },
        ];
        for db in dbs {
            v.push(DumpSpec {
                stream: format!("{db}.sql"),
                command: format!(
                    "{dump} --single-transaction --routines --events --triggers --databases {}",
                    sh_quote(db)
                ),
                validate: Some(DUMP_COMPLETED.into()),
            });
        }
        if let Some(sql) = Self::checksum_sql(tables) {
            v.push(DumpSpec {
                stream: CHECKSUMS_STREAM.into(),
                command: format!("{client} -N -B -e {}", sh_quote(&sql)),
                validate: None,
            });
        }
        v
    }
}

/// Parses what [`MariaDb::checksum_sql`] prints: count rows (`db table rows`) then
/// `CHECKSUM TABLE` rows (`db.table checksum`).
pub fn parse_checksums(text: &str) -> std::collections::BTreeMap<String, (String, String)> {
    let mut out: std::collections::BTreeMap<String, (String, String)> = Default::default();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            [d, t, rows] => {
                out.entry(format!("{d}.{t}")).or_default().0 = rows.to_string();
            }
            [name, sum] => {
                out.entry(name.to_string()).or_default().1 = sum.to_string();
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
        assert_eq!(sql_ident("we`ird"), "`we``ird`");
        assert_eq!(sql_string("it's"), "'it''s'");
    }

    #[test]
    fn specs_keep_credentials_out_of_argv_and_validate_dumps() {
        let m = MariaDb {
            defaults_file: Some("/etc/lifeboat/my.cnf".into()),
        };
        let specs = m.dump_specs(&["nova".into()], &[("nova".into(), "instances".into())]);
        let names: Vec<&str> = specs.iter().map(|s| s.stream.as_str()).collect();
        assert_eq!(
            names,
            ["server.json", "grants.sql", "nova.sql", "checksums.tsv"]
        );
        for s in &specs {
            assert!(
                s.command
                    .contains("--defaults-extra-file=/etc/lifeboat/my.cnf")
            );
            assert!(!s.command.contains("password"));
        }
        assert!(specs[2].command.contains("--single-transaction"));
        assert_eq!(specs[2].validate.as_deref(), Some(DUMP_COMPLETED));
    }

    #[test]
    fn checksum_output_parses() {
        let t = "nova\tinstances\t3\nnova.instances\t12345\n";
        let m = parse_checksums(t);
        assert_eq!(m["nova.instances"], ("3".to_string(), "12345".to_string()));
    }
}
