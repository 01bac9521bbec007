//! Galera clusters (MariaDB with wsrep): choose the node to dump from, take it out of flow
//! control for the dump (`wsrep_desync`), and record the cluster's state.
//!
//! The dump itself is a MariaDB dump of the chosen node ([`crate::mariadb`]). What Galera
//! adds: the backup refuses a cluster that is not Primary (lost quorum) or has no Synced node;
//! it prefers a Synced node that is not taking writes; the node is desynced for the dump and
//! always resynced after ([`Desync`] does it on drop, so errors and interrupts too); and
//! `galera.json` records the cluster's state UUID and the node's last committed seqno.

use crate::mariadb::MariaDb;

/// One node of the cluster as the configuration names it.
#[derive(Debug, Clone)]
pub struct GaleraNode {
    pub name: String,
    pub db: MariaDb,
}

/// What a node says of itself and of the cluster.
#[derive(Debug, Clone, Default)]
pub struct NodeStatus {
    pub name: String,
    /// None when the node cannot be reached (with why).
    pub error: Option<String>,
    pub state: String,
    pub cluster_status: String,
    pub cluster_size: u32,
    pub state_uuid: String,
    pub last_committed: u64,
    pub desync: bool,
}

impl NodeStatus {
    pub fn synced(&self) -> bool {
        self.error.is_none() && self.state == "Synced" && self.cluster_status == "Primary"
    }

    pub fn to_json(&self) -> String {
        format!(
            "{{\"node\":{:?},\"reachable\":{},\"state\":{:?},\"cluster_status\":{:?},\"cluster_size\":{},\"state_uuid\":{:?},\"last_committed\":{}}}",
            self.name,
            self.error.is_none(),
            self.state,
            self.cluster_status,
            self.cluster_size,
            self.state_uuid,
            self.last_committed
        )
    }
}

pub fn status(node: &GaleraNode) -> NodeStatus {
    let mut st = NodeStatus {
        name: node.name.clone(),
        ..Default::default()
    };
    let rows = match node.db.query(
        "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_state_comment', \
         'wsrep_cluster_status', 'wsrep_cluster_size', 'wsrep_cluster_state_uuid', \
         'wsrep_last_committed'); SHOW GLOBAL VARIABLES LIKE 'wsrep_desync'",
    ) {
        Ok(r) => r,
        Err(e) => {
            st.error = Some(e);
            return st;
        }
    };
    for line in rows.lines() {
        let Some((k, v)) = line.split_once('\t') else {
            continue;
        };
        match k {
            "wsrep_local_state_comment" => st.state = v.to_string(),
            "wsrep_cluster_status" => st.cluster_status = v.to_string(),
            "wsrep_cluster_size" => st.cluster_size = v.parse().unwrap_or(0),
            "wsrep_cluster_state_uuid" => st.state_uuid = v.to_string(),
            "wsrep_last_committed" => st.last_committed = v.parse().unwrap_or(0),
            "wsrep_desync" => st.desync = v == "ON",
            _ => {}
        }
    }
    st
}

/// Chooses the node to dump from: a Synced node of a Primary cluster, preferring those not in
/// `avoid` (the ones taking writes). Refuses with the reason when there is none.
pub fn choose(nodes: &[GaleraNode], avoid: &[String]) -> Result<(usize, Vec<NodeStatus>), String> {
    let st: Vec<NodeStatus> = nodes.iter().map(status).collect();
    if let Some(n) = st
        .iter()
        .find(|s| s.error.is_none() && s.cluster_status != "Primary")
    {
        return Err(format!(
            "node {} reports the cluster as {} (not Primary: quorum is lost); a backup now would not be consistent with the cluster; bring the cluster back first",
            n.name, n.cluster_status
        ));
    }
    let pick = st
        .iter()
        .position(|s| s.synced() && !avoid.contains(&s.name))
        .or_else(|| st.iter().position(|s| s.synced()));
    match pick {
        Some(i) => Ok((i, st)),
        None => Err(format!(
            "no node is Synced: {}",
            st.iter()
                .map(|s| match &s.error {
                    Some(e) => format!("{}: unreachable ({e})", s.name),
                    None => format!("{}: {}", s.name, s.state),
                })
                .collect::<Vec<_>>()
                .join("; ")
        )),
    }
}

/// A node taken out of flow control for the dump; resynced when dropped (also after an error
/// or an interrupt), so the cluster never waits on it after the backup.
pub struct Desync {
    node: GaleraNode,
    pub released: Option<Result<(), String>>,
}

impl Desync {
    pub fn on(node: &GaleraNode) -> Result<Self, String> {
        node.db.query("SET GLOBAL wsrep_desync = ON")?;
        Ok(Desync {
            node: node.clone(),
            released: None,
        })
    }

    /// Resyncs now and says whether it worked (drop does the same, silently).
    pub fn release(&mut self) -> Result<(), String> {
        if let Some(r) = &self.released {
            return r.clone();
        }
        let r = self
            .node
            .db
            .query("SET GLOBAL wsrep_desync = OFF")
            .map(|_| ());
        self.released = Some(r.clone());
        r
    }
}

impl Drop for Desync {
    fn drop(&mut self) {
        let _ = self.release();
    }
}
