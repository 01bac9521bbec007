//! Pacemaker: the cluster information base (CIB), queried with `cibadmin --query` and put back
//! with `cibadmin --replace` while the cluster is in maintenance mode (so no resource is
//! started, stopped or moved because of the change).

use crate::mariadb::DumpSpec;

pub const CIB_STREAM: &str = "cib.xml";

#[derive(Debug, Clone, Default)]
pub struct Pacemaker {
    /// Shell variable assignments put in front of every command (e.g. `CIB_file=...`).
    pub prefix: String,
}

impl Pacemaker {
    fn cmd(&self, c: &str) -> String {
        if self.prefix.is_empty() {
            c.to_string()
        } else {
            format!("{} {c}", self.prefix)
        }
    }

    pub fn dump_specs(&self) -> Vec<DumpSpec> {
        vec![DumpSpec {
            stream: CIB_STREAM.into(),
            command: self.cmd("cibadmin --query"),
            validate: Some("grep -q '</cib>'".into()),
        }]
    }

    pub fn maintenance(&self, on: bool) -> String {
        self.cmd(&format!(
            "crm_attribute --type crm_config --name maintenance-mode --update {on}"
        ))
    }

    /// Reads a saved CIB on stdin and replaces the cluster's with it. Pacemaker refuses a CIB
    /// older than the current one, so the saved one gets the current `epoch` + 1 first.
    pub fn replace_command(&self) -> String {
        let query = self.cmd("cibadmin --query");
        let replace = self.cmd("cibadmin --replace --xml-pipe");
        format!(
            r#"set -e; cur=$({query} | sed -n 's/^<cib[^>]* epoch="\([0-9]*\)".*/\1/p' | head -n 1); next=$((cur + 1)); sed "1,/<cib /s/\(<cib[^>]* epoch=\"\)[0-9]*\"/\1$next\"/" | {replace}"#
        )
    }

    /// The ids of the primitive resources, constraints and the like in a CIB: what a restore
    /// must bring back.
    pub fn object_ids(cib: &str) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        for tag in [
            "<primitive ",
            "<clone ",
            "<group ",
            "<rsc_location ",
            "<rsc_colocation ",
            "<rsc_order ",
        ] {
            for part in cib.split(tag).skip(1) {
                if let Some(rest) = part.split("id=\"").nth(1)
                    && let Some(id) = rest.split('"').next()
                {
                    out.insert(format!("{}{id}", tag.trim_start_matches('<')));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_resources_and_constraints() {
        let cib = r#"<cib epoch="3"><configuration><resources><primitive id="vip" class="ocf"/><clone id="haproxy-clone"><primitive id="haproxy"/></clone></resources><constraints><rsc_order id="o1" first="vip"/></constraints></configuration></cib>"#;
        let ids = Pacemaker::object_ids(cib);
        assert!(ids.contains("primitive vip") && ids.contains("primitive haproxy"));
        assert!(ids.contains("clone haproxy-clone") && ids.contains("rsc_order o1"));
    }
}
