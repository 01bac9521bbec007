//! The mariadb component against a real MariaDB server (started by `scripts/services/mariadb`;
//! scripts/test exports its variables): databases with rows, a routine, a trigger and a user;
//! backup, destroy, restore, and compare with checksums taken before.

use crate::support::*;
use std::fs;
use std::process::Command;

/// The option file of the test server, or None when it is not running (then the test is
/// skipped, except in CI where it must run).
fn server() -> Option<String> {
    match std::env::var("LIFEBOAT_MARIADB_CNF") {
        Ok(f) if !f.is_empty() => Some(f),
        _ => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!(
                    "LIFEBOAT_MARIADB_CNF is not set: scripts/test starts MariaDB and exports it"
                );
            }
            eprintln!("skipped: no MariaDB (run scripts/services/mariadb start and eval its env)");
            None
        }
    }
}

fn sql(cnf: &str, q: &str) -> String {
    let out = Command::new("mariadb")
        .arg(format!("--defaults-extra-file={cnf}"))
        .args(["-N", "-B", "-e", q])
        .output()
        .expect("mariadb client");
    assert!(
        out.status.success(),
        "{q}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What must come back: table contents, the routine, the trigger, the user's grants.
fn fingerprint(cnf: &str, a: &str, b: &str, user: &str) -> String {
    sql(
        cnf,
        &format!(
            "CHECKSUM TABLE `{a}`.t, `{b}`.u EXTENDED; SELECT COUNT(*) FROM `{a}`.t; \
             SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '{a}'; \
             SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '{a}'; \
             SHOW GRANTS FOR '{user}'@'localhost'"
        ),
    )
}

#[test]
fn issue6_mariadb_backup_destroy_restore_compare() {
    let Some(cnf) = server() else { return };
    let env = Env::new();
    // Names unique to this run: the server is shared by the tests of one CI run.
    let tag = format!("{:x}", std::process::id());
    let (a, b, user) = (
        format!("lb_a_{tag}"),
        format!("lb_b_{tag}"),
        format!("lbu_{tag}"),
    );
    let mut setup = format!(
        "CREATE DATABASE `{a}`; CREATE DATABASE `{b}`; \
         CREATE TABLE `{a}`.t (id INT PRIMARY KEY, name VARCHAR(40), n INT); \
         CREATE TABLE `{a}`.audit (id INT); \
         CREATE TABLE `{b}`.u (k VARCHAR(20) PRIMARY KEY, v TEXT); \
         CREATE TRIGGER `{a}`.t_ins AFTER INSERT ON `{a}`.t FOR EACH ROW INSERT INTO `{a}`.audit VALUES (NEW.id); \
         CREATE PROCEDURE `{a}`.bump() UPDATE `{a}`.t SET n = n + 1; \
         CREATE USER '{user}'@'localhost' IDENTIFIED BY 'x-{tag}'; \
         GRANT SELECT, INSERT ON `{a}`.* TO '{user}'@'localhost'; "
    );
    for i in 0..2000 {
        setup.push_str(&format!(
            "INSERT INTO `{a}`.t VALUES ({i}, 'row {i} é', {});",
            i * 7 % 13
        ));
    }
    setup.push_str(&format!(
        "INSERT INTO `{b}`.u VALUES ('k1', 'v1'), ('k2', REPEAT('x', 5000));"
    ));
    sql(&cnf, &setup);
    let before = fingerprint(&cnf, &a, &b, &user);

    let cfg = env.path("lifeboat.toml");
    fs::write(
        &cfg,
        format!(
            "[components.db]\nkind = \"mariadb\"\ndefaults_file = \"{cnf}\"\ndatabases = [\"{a}\", \"{b}\"]\n"
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    let out = env.ok(&["--config", cfg, "--json", "backup", "db"]);
    assert!(out.contains("\"snapshot_id\""), "{out}");
    let snaps = env.json(&["snapshots"]);
    let streams: Vec<String> = snaps[0]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    for want in ["server.json", "grants.sql", "checksums.tsv"] {
        assert!(streams.contains(&want.to_string()), "{streams:?}");
    }
    assert!(streams.contains(&format!("{a}.sql")) && streams.contains(&format!("{b}.sql")));
    // The password in the option file never reaches a command line or the snapshot.
    let grants = env.ok(&["dump", "latest", "grants.sql"]);
    assert!(grants.contains(&user), "{grants}");

    // Destroy: drop a database, change the other, drop the user.
    sql(
        &cnf,
        &format!("DROP DATABASE `{a}`; DELETE FROM `{b}`.u; DROP USER '{user}'@'localhost';"),
    );
    let plan = env.ok(&["--config", cfg, "restore", "db", "--plan"]);
    assert!(
        plan.contains("check that the server runs the version"),
        "{plan}"
    );
    env.ok(&["--config", cfg, "restore", "db", "--yes"]);
    assert_eq!(fingerprint(&cnf, &a, &b, &user), before);

    // One database alone, leaving the other as it is now.
    sql(
        &cnf,
        &format!("UPDATE `{b}`.u SET v = 'changed'; INSERT INTO `{a}`.t VALUES (99999, 'new', 1);"),
    );
    env.ok(&[
        "--config",
        cfg,
        "restore",
        "db",
        "--yes",
        "--no-safety",
        "--database",
        &b,
    ]);
    let now = sql(
        &cnf,
        &format!("SELECT COUNT(*) FROM `{a}`.t; SELECT v FROM `{b}`.u WHERE k = 'k1'"),
    );
    assert_eq!(now, "2001\nv1\n", "only {b} was restored");
    // A safety dump was taken before the first restore: it holds the destroyed state.
    let safety = env.json(&["snapshots", "--tag", "safety"]);
    assert_eq!(safety.as_array().unwrap().len(), 1);

    sql(
        &cnf,
        &format!("DROP DATABASE `{a}`; DROP DATABASE `{b}`; DROP USER '{user}'@'localhost';"),
    );
}

#[test]
fn issue6_mariadb_wrong_credentials_fail_without_a_snapshot() {
    let Some(_) = server() else { return };
    let env = Env::new();
    let bad = env.path("bad.cnf");
    fs::write(
        &bad,
        "[client]\nuser=lifeboat\npassword=wrong\nhost=127.0.0.1\nport=13306\n",
    )
    .unwrap();
    let cfg = env.path("lifeboat.toml");
    fs::write(
        &cfg,
        format!(
            "[components.db]\nkind = \"mariadb\"\ndefaults_file = \"{}\"\n",
            bad.display()
        ),
    )
    .unwrap();
    let (code, _, err) = env.run(&["--config", cfg.to_str().unwrap(), "backup", "db"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Access denied"), "{err}");
    assert!(
        !err.contains("wrong"),
        "the password is not in the message: {err}"
    );
    assert!(env.snapshot_ids().is_empty());
}

/// Every process's command line, sampled until `child` exits.
fn watch_cmdlines(child: &mut std::process::Child) -> Vec<String> {
    let mut seen = Vec::new();
    while child.try_wait().unwrap().is_none() {
        for e in fs::read_dir("/proc").unwrap().flatten() {
            if let Ok(c) = fs::read(e.path().join("cmdline")) {
                let c = String::from_utf8_lossy(&c).replace('\0', " ");
                if !c.is_empty() && !seen.contains(&c) {
                    seen.push(c);
                }
            }
        }
    }
    seen
}

#[test]
fn issue6_database_passwords_never_appear_in_any_command_line() {
    let Some(cnf) = server() else { return };
    let password = fs::read_to_string(&cnf)
        .unwrap()
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("password")
                .map(|r| r.trim_start_matches([' ', '=']).trim().to_string())
        })
        .expect("a password in the option file");
    assert!(password.len() >= 8);
    let env = Env::new();
    let db = format!("lb_argv_{:x}", std::process::id());
    let mut setup = format!("CREATE DATABASE `{db}`; CREATE TABLE `{db}`.t (i INT, s TEXT);");
    for i in 0..200 {
        setup.push_str(&format!(
            "INSERT INTO `{db}`.t VALUES ({i}, REPEAT('x', 2000));"
        ));
    }
    sql(&cnf, &setup);
    let cfg = env.path("lifeboat.toml");
    fs::write(
        &cfg,
        format!("[components.db]\nkind = \"mariadb\"\ndefaults_file = \"{cnf}\"\ndatabases = [\"{db}\"]\n"),
    )
    .unwrap();
    let mut child = env
        .cmd()
        .args(["--config", cfg.to_str().unwrap(), "backup", "db"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let seen = watch_cmdlines(&mut child);
    assert!(child.wait().unwrap().success());
    assert!(
        seen.iter().any(|c| c.contains("mariadb-dump")),
        "the sampling saw the dump run: {seen:?}"
    );
    for c in &seen {
        assert!(
            !c.contains(&password),
            "the password is on a command line: {c}"
        );
    }
    sql(&cnf, &format!("DROP DATABASE `{db}`"));
}
