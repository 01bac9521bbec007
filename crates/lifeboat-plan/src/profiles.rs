//! Built-in profiles: what each OpenStack role needs backed up, as components.
//!
//! A node or group names profiles (`profiles = ["controller"]`) and gets their components,
//! named `<profile>.<part>`. Each profile is written here as the configuration text an
//! operator would write, so `lifeboat profiles` prints it ready to copy and adjust, and
//! docs/profiles.md shows the same text (a test keeps them equal). A component of the same
//! name in the configuration replaces the profile's; `skip_components` on the node or group
//! drops one.
//!
//! The lists follow the OpenStack Operations Guide (each service's `/etc/<service>` and
//! `/var/lib/<service>`), TripleO's undercloud backup (`/home/stack`, `/root`,
//! `/var/lib/config-data`, the database) and kolla-ansible (`/etc/kolla`). Folders are
//! `paths_if_present`: a node backs up those of the services it runs. Instance disks and
//! caches are excluded: they are rebuilt or restored by other means, and are the bulk.

use crate::Component;
use serde::Deserialize;
use std::collections::BTreeMap;

/// One built-in profile.
pub struct Profile {
    pub name: &'static str,
    /// Other names it answers to.
    pub aliases: &'static [&'static str],
    pub summary: &'static str,
    /// Its components as configuration text.
    pub toml: &'static str,
}

pub const PROFILES: &[Profile] = &[
    Profile {
        name: "controller",
        aliases: &[],
        summary: "An OpenStack controller: every API service's configuration and state, the database, Redis, RabbitMQ and the Pacemaker CIB",
        toml: r#"[components."controller.config"]
kind = "files"
paths_if_present = ["/etc/nova", "/etc/glance", "/etc/keystone", "/etc/neutron", "/etc/cinder",
  "/etc/heat", "/etc/placement", "/etc/ironic", "/etc/octavia", "/etc/barbican", "/etc/manila",
  "/etc/designate", "/etc/swift", "/etc/openstack-dashboard", "/etc/haproxy", "/etc/keepalived",
  "/etc/httpd", "/etc/apache2", "/etc/my.cnf", "/etc/my.cnf.d", "/etc/mysql", "/etc/rabbitmq",
  "/etc/redis", "/etc/corosync", "/etc/kolla", "/var/lib/config-data"]
exclude = ["*.pyc"]

[components."controller.state"]
kind = "files"
paths_if_present = ["/var/lib/nova", "/var/lib/glance", "/var/lib/keystone", "/var/lib/neutron",
  "/var/lib/cinder", "/var/lib/heat", "/var/lib/ironic", "/var/lib/octavia",
  "/var/lib/openstack-dashboard", "/var/lib/pacemaker/cib"]
exclude = ["/var/lib/nova/instances", "/var/lib/glance/image-cache", "/var/lib/ironic/master_images", "*.pyc"]

[components."controller.database"]
kind = "mariadb"
timeout = "4h"

[components."controller.redis"]
kind = "redis"

[components."controller.rabbitmq"]
kind = "rabbitmq"

[components."controller.pacemaker"]
kind = "pacemaker"
"#,
    },
    Profile {
        name: "compute",
        aliases: &[],
        summary: "A compute node: nova, neutron agent and libvirt configuration and state, without instance disks",
        toml: r#"[components."compute.config"]
kind = "files"
paths_if_present = ["/etc/nova", "/etc/neutron", "/etc/libvirt", "/etc/ceilometer",
  "/etc/openvswitch", "/etc/kolla", "/var/lib/config-data"]
exclude = ["*.pyc"]

[components."compute.state"]
kind = "files"
paths_if_present = ["/var/lib/nova", "/var/lib/neutron", "/var/lib/libvirt/qemu"]
exclude = ["/var/lib/nova/instances", "/var/lib/libvirt/qemu/*.monitor", "*.pyc"]
"#,
    },
    Profile {
        name: "network",
        aliases: &["networker"],
        summary: "A network node: neutron, Open vSwitch and OVN configuration and databases",
        toml: r#"[components."network.config"]
kind = "files"
paths_if_present = ["/etc/neutron", "/etc/openvswitch", "/etc/ovn", "/etc/kolla",
  "/var/lib/config-data"]
exclude = ["*.pyc"]

[components."network.state"]
kind = "files"
paths_if_present = ["/var/lib/neutron", "/var/lib/openvswitch", "/var/lib/ovn"]
exclude = ["*.pyc", "*.sock", "*.ctl"]
"#,
    },
    Profile {
        name: "swift-storage",
        aliases: &["object-storage"],
        summary: "A Swift storage node: rings and builder files, and the object data under /srv/node with its xattrs",
        toml: r#"[components."swift-storage.rings"]
kind = "files"
paths = ["/etc/swift"]

[components."swift-storage.objects"]
kind = "files"
paths_if_present = ["/srv/node"]
exclude = ["/srv/node/*/tmp", "/srv/node/*/async_pending"]
"#,
    },
    Profile {
        name: "undercloud",
        aliases: &["director"],
        summary: "A TripleO undercloud (director): /etc, the stack and root homes, generated configuration, ironic, glance and its database",
        toml: r#"[components."undercloud.config"]
kind = "files"
paths = ["/etc"]
paths_if_present = ["/var/lib/config-data", "/var/lib/tripleo-config"]
exclude = ["*.pyc"]

[components."undercloud.home"]
kind = "files"
paths_if_present = ["/home/stack", "/root"]
exclude = ["/home/stack/.cache", "/root/.cache"]

[components."undercloud.state"]
kind = "files"
paths_if_present = ["/var/lib/ironic", "/var/lib/glance", "/var/lib/heat", "/var/lib/mistral",
  "/var/lib/image-serve", "/srv/node"]
exclude = ["/var/lib/ironic/master_images", "/var/lib/glance/image-cache", "*.pyc"]

[components."undercloud.database"]
kind = "mariadb"
timeout = "4h"
"#,
    },
    Profile {
        name: "seed",
        aliases: &[],
        summary: "A kayobe or kolla deployment host: the deployment configuration, inventories, keys and homes",
        toml: r#"[components."seed.config"]
kind = "files"
paths_if_present = ["/etc/kolla", "/etc/kayobe", "/etc/openstack", "/etc/ansible",
  "/opt/kayobe/etc"]
exclude = ["*.pyc"]

[components."seed.home"]
kind = "files"
paths_if_present = ["/root", "/home"]
exclude = [".cache", "venvs", ".ansible/tmp"]
"#,
    },
];

/// The profile of that name (or alias).
pub fn find(name: &str) -> Option<&'static Profile> {
    PROFILES
        .iter()
        .find(|p| p.name == name || p.aliases.contains(&name))
}

/// The names of the built-in profiles, for messages.
pub fn names() -> String {
    PROFILES
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Profile {
    /// The profile's components, by name.
    pub fn components(&self) -> BTreeMap<String, Component> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct T {
            components: BTreeMap<String, Component>,
        }
        // The texts above are part of the program and tested; a failure here is a bug.
        match toml::from_str::<T>(self.toml) {
            Ok(t) => t.components,
            Err(e) => panic!("built-in profile {} does not parse: {e}", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_parses_and_names_its_components_after_itself() {
        for p in PROFILES {
            let c = p.components();
            assert!(!c.is_empty(), "{}", p.name);
            for name in c.keys() {
                assert!(name.starts_with(&format!("{}.", p.name)), "{name}");
                assert!(crate::is_valid_component_name(name), "{name}");
            }
            // And as a configuration of its own (every check of a real file applies).
            crate::Config::parse(p.toml, p.name).unwrap();
        }
        assert_eq!(find("director").map(|p| p.name), Some("undercloud"));
        assert!(find("nope").is_none());
    }

    #[test]
    fn instances_are_excluded_and_keystone_keys_included() {
        let c = find("controller").unwrap().components();
        let state = format!("{:?}", c["controller.state"].kind);
        assert!(state.contains("/var/lib/nova/instances"), "{state}");
        // /etc/keystone holds fernet-keys/ and credential-keys/.
        let config = format!("{:?}", c["controller.config"].kind);
        assert!(config.contains("\"/etc/keystone\""), "{config}");
    }

    #[test]
    fn docs_show_every_profile_as_it_is() {
        let doc = include_str!("../../../docs/profiles.md");
        for p in PROFILES {
            assert!(
                doc.contains(p.toml),
                "docs/profiles.md lacks the text of profile {} (copy it from `lifeboat profiles`)",
                p.name
            );
        }
    }
}
