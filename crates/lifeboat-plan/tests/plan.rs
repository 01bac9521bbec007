//! The configuration and the inventory as a user of the crate sees them: Ansible inventories
//! shaped like those of TripleO (YAML, role and service groups), kolla-ansible (INI with
//! ranges, `group_vars/` and `host_vars/`) and OpenStack-Ansible (its inventory JSON), read by
//! Lifeboat's own reader and, when Ansible is installed, by `ansible-inventory` — both must
//! give the same nodes. With `CI=true` Ansible must be there (scripts/test installs it).

use lifeboat_plan::Config;
use lifeboat_plan::inventory::{Inventory, Node, Origin};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/inventories")
}

/// A configuration in a temporary folder that imports `inventory` (copied beside it, with
/// its vars folders) and adds `extra`.
fn config_with(inventory: &str, extra: &str) -> (tempfile::TempDir, Config) {
    let d = tempfile::tempdir().unwrap();
    let src = fixtures().join(inventory);
    let copy = |from: &Path, to: &Path| {
        let st = std::process::Command::new("cp")
            .arg("-r")
            .arg(from)
            .arg(to)
            .status()
            .unwrap();
        assert!(st.success());
    };
    let parent = Path::new(inventory)
        .parent()
        .filter(|p| !p.as_os_str().is_empty());
    let rel = match parent {
        // A file inside a folder: copy the whole folder (group_vars/ and host_vars/ too).
        Some(dir) => {
            copy(&fixtures().join(dir), d.path());
            Path::new(dir.file_name().unwrap()).join(src.file_name().unwrap())
        }
        None => {
            copy(&src, d.path());
            PathBuf::from(src.file_name().unwrap())
        }
    };
    let text = format!(
        "inventory = \"ansible:{}\"\n[components.etc]\nkind = \"files\"\npaths = [\"/etc\"]\n[components.db]\nkind = \"mariadb\"\n{extra}",
        rel.display()
    );
    let path = d.path().join("lifeboat.toml");
    std::fs::write(&path, text).unwrap();
    let cfg = Config::load(&path).unwrap();
    (d, cfg)
}

/// The inventory read with the built-in reader or with `program`.
fn read(cfg: &Config, program: Option<&Path>) -> Inventory {
    cfg.inventory_using(program)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn ansible_inventory() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("ansible-inventory"))
            .find(|p| p.is_file())
    });
    if found.is_none() && std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "ansible-inventory is not installed (apt-get install ansible-core; scripts/test does)"
        );
    }
    found
}

fn node<'a>(inv: &'a Inventory, name: &str) -> &'a Node {
    inv.nodes
        .get(name)
        .unwrap_or_else(|| panic!("no node {name}; nodes: {:?}", inv.nodes.keys()))
}

fn set(items: &[&str]) -> std::collections::BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Lifeboat's reader and Ansible's agree on every node (when Ansible is installed).
fn same_as_ansible(cfg: &Config, builtin: &Inventory) {
    let Some(program) = ansible_inventory() else {
        eprintln!("ansible-inventory not installed: only the built-in reader was tested");
        return;
    };
    let theirs = read(cfg, Some(&program));
    assert_eq!(
        builtin.nodes.keys().collect::<Vec<_>>(),
        theirs.nodes.keys().collect::<Vec<_>>()
    );
    for (name, ours) in &builtin.nodes {
        assert_eq!(
            ours, &theirs.nodes[name],
            "node {name}: built-in vs ansible-inventory"
        );
    }
    assert_eq!(builtin.groups, theirs.groups);
}

#[test]
fn issue7_tripleo_inventory() {
    let (_d, cfg) = config_with(
        "tripleo.yaml",
        "[groups.Controller]\ncomponents = [\"db\"]\n[nodes.overcloud-controller-0]\ncomponents = [\"etc\"]\n",
    );
    let inv = read(&cfg, None);
    assert_eq!(inv.nodes.len(), 6, "{:?}", inv.nodes.keys());
    let c0 = node(&inv, "overcloud-controller-0");
    assert_eq!(c0.address, "192.168.24.15");
    assert_eq!(c0.user.as_deref(), Some("tripleo-admin"));
    assert_eq!(c0.components, set(&["db", "etc"]));
    assert_eq!(c0.origin, Origin::Both);
    for g in [
        "Controller",
        "overcloud",
        "allovercloud",
        "mysql",
        "pacemaker",
        "redis",
    ] {
        assert!(c0.groups.contains(g), "{g} in {:?}", c0.groups);
    }
    let uc = node(&inv, "undercloud");
    assert!(uc.local);
    assert!(uc.groups.contains("ironic_conductor"));
    let cmp = node(&inv, "overcloud-novacompute-1");
    assert_eq!(cmp.address, "192.168.24.8");
    assert!(cmp.components.is_empty());
    assert_eq!(
        inv.groups["overcloud"].nodes,
        set(&[
            "overcloud-controller-0",
            "overcloud-controller-1",
            "overcloud-controller-2",
            "overcloud-novacompute-0",
            "overcloud-novacompute-1"
        ])
    );
    same_as_ansible(&cfg, &inv);
}

#[test]
fn issue7_kolla_multinode_inventory() {
    let (_d, cfg) = config_with("kolla/multinode", "");
    let inv = read(&cfg, None);
    assert_eq!(inv.nodes.len(), 9, "{:?}", inv.nodes.keys());
    let c1 = node(&inv, "control01");
    assert_eq!(c1.address, "10.0.1.11", "from host_vars/control01.yml");
    assert_eq!(
        node(&inv, "control02").address,
        "10.0.1.12",
        "host_vars/control02"
    );
    assert_eq!(node(&inv, "control03").address, "control03");
    assert_eq!(c1.user.as_deref(), Some("kolla"));
    assert_eq!(c1.jump.as_deref(), None, "ProxyJump stays an -o option");
    assert_eq!(
        c1.ssh_args,
        [
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ProxyJump=kolla@bastion.example.net"
        ]
    );
    assert!(c1.groups.contains("monitoring") && c1.groups.contains("mariadb"));
    let c3 = node(&inv, "compute03");
    assert_eq!((c3.address.as_str(), c3.port), ("10.0.1.33", Some(2222)));
    let st = node(&inv, "storage01");
    assert_eq!(
        st.identity.as_deref(),
        Some(Path::new("/etc/kolla/storage_key"))
    );
    assert!(node(&inv, "localhost").local);
    assert_eq!(
        inv.groups["nova-compute"].nodes,
        set(&["compute01", "compute02", "compute03"])
    );
    same_as_ansible(&cfg, &inv);
}

#[test]
fn issue7_openstack_ansible_inventory_json() {
    let (_d, cfg) = config_with("osa-inventory.json", "");
    let inv = read(&cfg, None);
    assert_eq!(inv.nodes.len(), 9);
    let g = &inv.groups["galera_all"];
    assert_eq!(g.nodes.len(), 3);
    let rabbit = node(&inv, "infra1_rabbit_mq_container-1c2d3e55");
    assert_eq!(rabbit.port, Some(22));
    assert_eq!(rabbit.user.as_deref(), Some("root"));
    assert!(rabbit.groups.contains("rabbitmq_all"));
    // Ansible reads that JSON only as a dynamic inventory's output: through a script that
    // prints it, both readers must agree.
    let script = _d.path().join("osa-inventory.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --host ]; then echo '{{}}'; else cat {}; fi\n",
            _d.path().join("osa-inventory.json").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (_d2, cfg2) = config_with("osa-inventory.json", "");
    let mut cfg2 = cfg2;
    cfg2.inventory = Some(format!("ansible:{}", script.display()));
    let via_script = read(&cfg2, None);
    assert_eq!(via_script.nodes, inv.nodes);
    same_as_ansible(&cfg2, &via_script);
}

#[test]
fn issue7_inventory_mistakes_are_errors() {
    // A node of the configuration in a group the Ansible inventory does not have.
    let (_d, cfg) = config_with("tripleo.yaml", "[nodes.extra]\ngroups = [\"Controler\"]\n");
    let e = read_err(&cfg);
    assert!(e.contains("group \"Controler\" is not defined"), "{e}");
    // Two inventory names for one machine.
    let (_d, cfg) = config_with(
        "tripleo.yaml",
        "[nodes.ctrl0-again]\naddress = \"192.168.24.15\"\n",
    );
    let e = read_err(&cfg);
    assert!(e.contains("same machine (192.168.24.15:22)"), "{e}");
    // A missing inventory names the path.
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("lifeboat.toml");
    std::fs::write(&p, "inventory = \"ansible:nowhere.ini\"\n").unwrap();
    let cfg = Config::load(&p).unwrap();
    let e = read_err(&cfg);
    assert!(e.contains("nowhere.ini"), "{e}");
    // Without an Ansible inventory, mistakes are found when the configuration is read.
    let e = Config::parse("[nodes.a]\ngroups = [\"g\"]\n", "x.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("group \"g\" is not defined"), "{e}");
}

fn read_err(cfg: &Config) -> String {
    cfg.inventory_using(None).unwrap_err().to_string()
}
