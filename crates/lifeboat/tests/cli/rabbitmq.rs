//! The rabbitmq component against a real RabbitMQ node (started by
//! `scripts/services/rabbitmq`; scripts/test exports RABBITMQ_CONF_ENV_FILE): definitions
//! exported, the vhost and user deleted, imported again and checked.

use crate::support::*;
use std::fs;
use std::process::Command;

fn server() -> bool {
    match std::env::var("RABBITMQ_CONF_ENV_FILE") {
        Ok(f) if !f.is_empty() => true,
        _ => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!(
                    "RABBITMQ_CONF_ENV_FILE is not set: scripts/test starts RabbitMQ and exports it"
                );
            }
            eprintln!(
                "skipped: no RabbitMQ (run scripts/services/rabbitmq start and eval its env)"
            );
            false
        }
    }
}

fn ctl(args: &[&str]) -> String {
    let out = Command::new("rabbitmqctl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn issue6_rabbitmq_definitions_come_back() {
    if !server() {
        return;
    }
    let env = Env::new();
    let tag = format!("{:x}", std::process::id());
    let (vhost, user) = (format!("lb_{tag}"), format!("lbu_{tag}"));
    ctl(&["add_vhost", &vhost]);
    ctl(&["add_user", &user, &format!("pw-{tag}")]);
    ctl(&["set_permissions", "-p", &vhost, &user, ".*", ".*", ".*"]);
    ctl(&[
        "set_policy",
        "-p",
        &vhost,
        "ha-all",
        "^ha\\.",
        "{\"max-length\":1000}",
    ]);
    let cfg = env.path("lifeboat.toml");
    // The test's lifeboat runs with a cleared environment: the node's settings go into the
    // command line prefix, as an operator with a non-default node would write it.
    let envfile = std::env::var("RABBITMQ_CONF_ENV_FILE").unwrap();
    fs::write(
        &cfg,
        format!(
            "[components.mq]\nkind = \"rabbitmq\"\nctl = \"RABBITMQ_CONF_ENV_FILE={envfile} rabbitmqctl\"\n"
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    env.ok(&["--config", cfg, "backup", "mq"]);
    let defs = env.ok(&["dump", "latest", "definitions.json"]);
    assert!(defs.contains(&vhost) && defs.contains(&user), "{defs}");

    ctl(&["delete_vhost", &vhost]);
    ctl(&["delete_user", &user]);
    assert!(!ctl(&["list_vhosts"]).contains(&vhost));
    env.ok(&["--config", cfg, "restore", "mq", "--yes"]);
    assert!(ctl(&["list_vhosts"]).contains(&vhost));
    assert!(ctl(&["list_users"]).contains(&user));
    assert!(ctl(&["list_policies", "-p", &vhost]).contains("ha-all"));
    assert!(ctl(&["list_permissions", "-p", &vhost]).contains(&user));

    ctl(&["delete_vhost", &vhost]);
    ctl(&["delete_user", &user]);
}
