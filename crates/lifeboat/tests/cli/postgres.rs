//! The postgres component against a real PostgreSQL server (started by
//! `scripts/services/postgres`; scripts/test exports its variables): a database with rows, a
//! function, a view and an owning role; backup, destroy, restore, compare.

use crate::support::*;
use std::fs;
use std::process::Command;

struct Pg {
    host: String,
    port: String,
    user: String,
    passfile: String,
    bindir: String,
}

fn server() -> Option<Pg> {
    let v = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
    match (
        v("LIFEBOAT_POSTGRES_HOST"),
        v("LIFEBOAT_POSTGRES_PORT"),
        v("LIFEBOAT_POSTGRES_USER"),
        v("LIFEBOAT_POSTGRES_PASSFILE"),
        v("LIFEBOAT_POSTGRES_BINDIR"),
    ) {
        (Some(host), Some(port), Some(user), Some(passfile), Some(bindir)) => Some(Pg {
            host,
            port,
            user,
            passfile,
            bindir,
        }),
        _ => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!(
                    "LIFEBOAT_POSTGRES_* are not set: scripts/test starts PostgreSQL and exports them"
                );
            }
            eprintln!(
                "skipped: no PostgreSQL (run scripts/services/postgres start and eval its env)"
            );
            None
        }
    }
}

fn psql(pg: &Pg, db: &str, q: &str) -> String {
    let out = Command::new(format!("{}/psql", pg.bindir))
        .env("PGHOST", &pg.host)
        .env("PGPORT", &pg.port)
        .env("PGUSER", &pg.user)
        .env("PGPASSFILE", &pg.passfile)
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", q])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{q}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn issue6_postgres_backup_destroy_restore_compare() {
    let Some(pg) = server() else { return };
    let env = Env::new();
    let tag = format!("{:x}", std::process::id());
    let (db, role) = (format!("lbp_{tag}"), format!("lbr_{tag}"));
    psql(
        &pg,
        "postgres",
        &format!("CREATE ROLE {role} LOGIN PASSWORD 'p-{tag}'"),
    );
    psql(
        &pg,
        "postgres",
        &format!("CREATE DATABASE {db} OWNER {role}"),
    );
    psql(
        &pg,
        &db,
        &format!(
            "CREATE TABLE t (id int PRIMARY KEY, name text, n int); \
             INSERT INTO t SELECT i, 'row ' || i || ' é', i % 13 FROM generate_series(1, 3000) i; \
             CREATE VIEW v AS SELECT count(*) AS c FROM t; \
             CREATE FUNCTION bump() RETURNS void LANGUAGE sql AS 'UPDATE t SET n = n + 1'; \
             ALTER TABLE t OWNER TO {role}"
        ),
    );
    let fingerprint = |pg: &Pg| {
        psql(
            pg,
            &db,
            "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM t; SELECT c FROM v; \
             SELECT proname FROM pg_proc WHERE proname = 'bump'; \
             SELECT tableowner FROM pg_tables WHERE tablename = 't'",
        )
    };
    let before = fingerprint(&pg);

    let cfg = env.path("lifeboat.toml");
    fs::write(
        &cfg,
        format!(
            "[components.pg]\nkind = \"postgres\"\nhost = \"{}\"\nport = {}\nuser = \"{}\"\npassfile = \"{}\"\nbindir = \"{}\"\ndatabases = [\"{db}\"]\n",
            pg.host, pg.port, pg.user, pg.passfile, pg.bindir
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    env.ok(&["--config", cfg, "backup", "pg"]);
    let globals = env.ok(&["dump", "latest", "globals.sql"]);
    assert!(globals.contains(&role), "the role is in the globals");

    psql(&pg, "postgres", &format!("DROP DATABASE {db}"));
    psql(&pg, "postgres", &format!("DROP ROLE {role}"));
    let plan = env.ok(&["--config", cfg, "restore", "pg", "--plan"]);
    assert!(
        plan.contains("globals.sql") && plan.contains(&format!("{db}.dump")),
        "{plan}"
    );
    env.ok(&["--config", cfg, "restore", "pg", "--yes"]);
    assert_eq!(fingerprint(&pg), before);

    // A damaged copy in place is replaced by the single-database restore.
    psql(&pg, &db, "DELETE FROM t WHERE id > 100");
    env.ok(&[
        "--config",
        cfg,
        "restore",
        "pg",
        "--yes",
        "--no-safety",
        "--database",
        &db,
    ]);
    assert_eq!(fingerprint(&pg), before);

    psql(&pg, "postgres", &format!("DROP DATABASE {db}"));
    psql(&pg, "postgres", &format!("DROP ROLE {role}"));
}
