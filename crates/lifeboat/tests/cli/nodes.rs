//! `lifeboat nodes` (issue 7): the inventory from the configuration and an Ansible inventory,
//! as text and JSON, one group's nodes, and mistakes that stop with a message naming the fix.

use crate::support::Env;
use std::fs;

fn write(env: &Env, name: &str, body: &str) -> String {
    let p = env.path(name);
    fs::write(&p, body).unwrap();
    p.display().to_string()
}

#[test]
fn issue7_nodes_lists_config_and_ansible_inventory() {
    let env = Env::new();
    write(
        &env,
        "hosts.ini",
        "[controller]\nctrl[1:3] ansible_user=heat-admin\n[controller:vars]\nansible_port=2222\n[compute]\ncmp1 ansible_host=10.0.0.21\n[overcloud:children]\ncontroller\ncompute\n",
    );
    let cfg = write(
        &env,
        "lifeboat.toml",
        r#"inventory = "ansible:hosts.ini"

[components.etc]
kind = "files"
paths = ["/etc"]

[nodes.director]
address = "127.0.0.1"
connection = "local"
groups = ["overcloud"]

[nodes.ctrl2]
address = "127.0.0.12"
components = ["etc"]

[groups.controller]
components = ["etc"]
"#,
    );
    for reader in ["builtin", "auto"] {
        let run = |args: &[&str]| {
            let mut c = env.cmd_without_repo();
            if reader == "builtin" {
                c.env("LIFEBOAT_ANSIBLE_INVENTORY", "builtin");
            }
            let out = c.arg("--config").arg(&cfg).args(args).output().unwrap();
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        let (code, out, err) = run(&["--json", "nodes"]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        let rows = v.as_array().unwrap();
        let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            ["cmp1", "ctrl1", "ctrl2", "ctrl3", "director"],
            "{reader}"
        );
        let ctrl2 = &rows[2];
        assert_eq!(ctrl2["address"], "127.0.0.12");
        assert_eq!(ctrl2["user"], "heat-admin");
        assert_eq!(ctrl2["port"], 2222);
        assert_eq!(ctrl2["origin"], "ansible+config");
        assert_eq!(ctrl2["components"], serde_json::json!(["etc"]));
        assert_eq!(
            ctrl2["groups"],
            serde_json::json!(["controller", "overcloud"])
        );
        assert_eq!(rows[4]["local"], true);

        let (code, out, err) = run(&["nodes", "--group", "compute"]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("cmp1") && out.contains("10.0.0.21"), "{out}");
        assert!(!out.contains("ctrl1"), "{out}");
        let (code, _, err) = run(&["nodes", "--group", "computes"]);
        assert_eq!(code, 1);
        assert!(
            err.contains("no group \"computes\"") && err.contains("compute"),
            "{err}"
        );
    }
}

#[test]
fn issue7_inventory_mistakes_stop_with_the_fix() {
    let env = Env::new();
    for (body, want) in [
        (
            "[nodes.a]\naddress = \"10.0.0.1\"\ngroups = [\"ctrl\"]\n",
            "group \"ctrl\" is not defined",
        ),
        (
            "[nodes.a]\naddress = \"10.0.0.1\"\n[nodes.b]\naddress = \"10.0.0.1\"\n",
            "same machine",
        ),
        (
            "[nodes.a]\ncomponents = [\"nova\"]\n",
            "component \"nova\" is not configured",
        ),
        ("[nodes.a]\nadress = \"x\"\n", "unknown field `adress`"),
        ("inventory = \"hosts.ini\"\n", "ansible:PATH"),
        ("inventory = \"ansible:missing.ini\"\n", "missing.ini"),
    ] {
        let cfg = write(&env, "bad.toml", body);
        let out = env
            .cmd_without_repo()
            .env("LIFEBOAT_ANSIBLE_INVENTORY", "builtin")
            .args(["--config", &cfg, "nodes"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{body}: {err}");
        assert!(err.contains(want), "{body}: wanted {want:?} in {err}");
    }
}

/// `nodes --check` against the three real nodes of scripts/remote/nodes and one address where
/// nothing listens: each real node answers with its own host name, the dead one is reported
/// with the cause, the others' results are kept, and the exit code is 1.
#[test]
fn issue7_nodes_check_reaches_every_node_and_reports_the_dead_one() {
    let v = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    let Some(config) = v("LIFEBOAT_NODES_SSH_CONFIG") else {
        assert_ne!(
            v("CI").as_deref(),
            Some("true"),
            "the node tests need scripts/remote/nodes start"
        );
        return;
    };
    let env = Env::new();
    let mut body = String::new();
    for (i, addr) in v("LIFEBOAT_NODE_ADDRS")
        .unwrap()
        .split_whitespace()
        .enumerate()
    {
        body.push_str(&format!(
            "[nodes.ctrl{}]\naddress = \"{addr}\"\nuser = \"root\"\n",
            i + 1
        ));
    }
    body.push_str("[nodes.ghost]\naddress = \"127.0.0.19\"\nuser = \"root\"\n");
    let cfg = write(&env, "nodes.toml", &body);
    let out = env
        .cmd_without_repo()
        .args([
            "--config",
            &cfg,
            "--ssh-config",
            &config,
            "--json",
            "nodes",
            "--check",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for (i, r) in rows[..3].iter().enumerate() {
        assert_eq!(r["name"], format!("ctrl{}", i + 1));
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["facts"]["hostname"], format!("node{}", i + 1));
    }
    assert_eq!(rows[3]["name"], "ghost");
    assert_eq!(rows[3]["ok"], false);
    assert!(
        rows[3]["error"]
            .as_str()
            .unwrap()
            .contains("node ghost: cannot connect"),
        "{}",
        rows[3]
    );
    assert!(err.contains("1 of 4 nodes failed"), "{err}");
}

/// Built-in profiles (issue 7): nodes and groups name them and get their components, less
/// what they skip; `profiles` prints them; an unknown profile is an error naming the known.
#[test]
fn issue7_profiles_give_nodes_their_components() {
    let env = Env::new();
    let cfg = write(
        &env,
        "profiles.toml",
        r#"[nodes.director]
connection = "local"
profiles = ["director"]
skip_components = ["undercloud.home"]

[nodes.c1]
address = "127.0.0.21"
groups = ["Controller"]
skip_components = ["controller.redis"]

[groups.Controller]
profiles = ["controller"]
skip_components = ["controller.pacemaker"]

[components."controller.state"]
kind = "files"
paths = ["/var/lib/nova"]
"#,
    );
    let v = env.json(&["--config", &cfg, "nodes"]);
    let rows = v.as_array().unwrap();
    let comps = |i: usize| -> Vec<String> {
        rows[i]["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        comps(0),
        [
            "controller.config",
            "controller.database",
            "controller.rabbitmq",
            "controller.state"
        ],
        "c1: the group's profile, less the group's and its own skips"
    );
    assert_eq!(
        comps(1),
        [
            "undercloud.config",
            "undercloud.database",
            "undercloud.state"
        ]
    );
    // Every profile, and one by its alias.
    let all = env.json(&["profiles"]);
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "controller",
            "compute",
            "network",
            "swift-storage",
            "undercloud",
            "seed"
        ]
    );
    let out = env.ok(&["profiles", "director"]);
    assert!(out.contains("[components.\"undercloud.home\"]"), "{out}");
    let (code, _, err) = env.run(&["profiles", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("controller, compute"), "{err}");
    let bad = write(
        &env,
        "bad-profile.toml",
        "[nodes.x]\nprofiles = [\"controler\"]\n",
    );
    let (code, _, err) = env.run(&["--config", &bad, "nodes"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("profile \"controler\" is not a built-in profile"),
        "{err}"
    );
}

/// `paths_if_present` (what profiles use): the paths that exist are backed up, the others
/// skipped; none at all is an error, and no snapshot.
#[test]
fn issue7_paths_if_present_back_up_what_exists() {
    let env = Env::new();
    let here = env.path("etc-nova");
    fs::create_dir_all(&here).unwrap();
    fs::write(here.join("nova.conf"), "[DEFAULT]\n").unwrap();
    let gone = env.path("etc-glance");
    let cfg = write(
        &env,
        "present.toml",
        &format!(
            "[components.some]\nkind = \"files\"\npaths_if_present = [\"{}\", \"{}\"]\n[components.none]\nkind = \"files\"\npaths_if_present = [\"{}\"]\n",
            here.display(),
            gone.display(),
            gone.display()
        ),
    );
    env.ok(&["--config", &cfg, "backup", "some"]);
    let ls = env.ok(&["ls", "latest"]);
    assert!(ls.contains("nova.conf"), "{ls}");
    let (code, _, err) = env.run(&["--config", &cfg, "backup", "none"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("none of its paths exists here"), "{err}");
    assert_eq!(env.snapshot_ids().len(), 1);
}

/// `lifeboat completions bash | head -c 10`: the reader goes away; lifeboat ends quietly with
/// 141 (as a shell reports SIGPIPE), without a panic report.
#[test]
fn a_closed_stdout_ends_quietly_with_141() {
    use std::io::Read;
    let env = Env::new();
    let mut child = env
        .cmd_without_repo()
        .args(["completions", "bash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 10];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
