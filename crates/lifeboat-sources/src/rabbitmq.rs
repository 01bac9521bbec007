//! RabbitMQ: the broker's definitions (users, vhosts, permissions, policies, parameters,
//! queues, exchanges, bindings) exported and imported with `rabbitmqctl`. Messages are not
//! part of a control plane's state to restore: queues come back empty.

use crate::mariadb::DumpSpec;

pub const DEFINITIONS_STREAM: &str = "definitions.json";

/// The sections of a definitions export that a restore must bring back.
pub const SECTIONS: [&str; 10] = [
    "users",
    "vhosts",
    "permissions",
    "topic_permissions",
    "policies",
    "parameters",
    "global_parameters",
    "queues",
    "exchanges",
    "bindings",
];

#[derive(Debug, Clone)]
pub struct RabbitMq {
    /// The rabbitmqctl command line to use, e.g. `rabbitmqctl -n rabbit@ctrl1`.
    pub ctl: String,
}

impl RabbitMq {
    pub fn dump_specs(&self) -> Vec<DumpSpec> {
        vec![DumpSpec {
            stream: DEFINITIONS_STREAM.into(),
            command: format!("{} export_definitions -", self.ctl),
            validate: Some("grep -q '\"rabbit_version\"'".into()),
        }]
    }

    /// Reads definitions on stdin (the import is asynchronous in the broker).
    pub fn restore_command(&self) -> String {
        format!("{} import_definitions", self.ctl)
    }

    /// The definitions now, as JSON text.
    pub fn export(&self) -> Result<String, String> {
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{} export_definitions -", self.ctl))
            .env_remove("LIFEBOAT_PASSWORD")
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("cannot run rabbitmqctl: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "rabbitmqctl export_definitions failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}
