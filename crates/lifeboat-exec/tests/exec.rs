//! Commands on the real nodes of scripts/remote/nodes (three sshd on 127.0.0.11-13, each in
//! its own mount and UTS namespace): facts come from the right node, a changed host key is
//! refused with the fingerprint the node now shows, an address where nothing listens is
//! "unreachable". Without the nodes' variables the tests return early, except with `CI=true`.

use lifeboat_exec::{ExecError, SshNode, facts};
use std::path::PathBuf;
use std::time::Duration;

fn var(n: &str) -> Option<String> {
    std::env::var(n).ok().filter(|v| !v.is_empty())
}

fn nodes_dir() -> Option<PathBuf> {
    match var("LIFEBOAT_NODES_DIR") {
        Some(d) => Some(PathBuf::from(d)),
        None if var("CI").as_deref() == Some("true") => {
            panic!(
                "the node tests need scripts/remote/nodes start; eval \"$(scripts/remote/nodes env)\""
            )
        }
        None => None,
    }
}

fn node(name: &str, addr: &str, config: &str, multiplex: bool) -> SshNode {
    SshNode {
        name: name.into(),
        host: addr.into(),
        args: vec!["-l".into(), "root".into(), "--".into(), addr.into()],
        global_args: vec!["-F".into(), config.into()],
        program: "ssh".into(),
        local: false,
        multiplex,
    }
}

#[test]
fn issue7_each_node_answers_with_its_own_facts_and_files() {
    let Some(dir) = nodes_dir() else { return };
    let config = dir.join("ssh_config").display().to_string();
    let addrs = var("LIFEBOAT_NODE_ADDRS").unwrap();
    for (i, addr) in addrs.split_whitespace().enumerate() {
        let n = node(&format!("n{i}"), addr, &config, true);
        let f = facts(&n, Duration::from_secs(30)).unwrap();
        assert_eq!(f.hostname, format!("node{}", i + 1));
        assert!(!f.kernel.is_empty() && !f.arch.is_empty());
        let out = n
            .run("cat /etc/nova/nova.conf", Duration::from_secs(30))
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&format!("host = node{}", i + 1)), "{text}");
        // A second command reuses the connection (and gives the same answer).
        let again = facts(&n, Duration::from_secs(30)).unwrap();
        assert_eq!(again, f);
    }
}

#[test]
fn issue7_a_changed_host_key_is_refused_with_its_fingerprint() {
    let Some(dir) = nodes_dir() else { return };
    let addrs: Vec<String> = var("LIFEBOAT_NODE_ADDRS")
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect();
    // known_hosts that pins node 2's address to node 1's key: as if node 2 had been
    // replaced by another machine.
    let t = tempfile::tempdir().unwrap();
    let key1 = std::fs::read_to_string(dir.join("node1/ssh_host_ed25519_key.pub")).unwrap();
    let key1: Vec<&str> = key1.split_whitespace().take(2).collect();
    let kh = t.path().join("known_hosts");
    std::fs::write(&kh, format!("{} {}\n", addrs[1], key1.join(" "))).unwrap();
    let mut n = node("node2", &addrs[1], "/dev/null", false);
    n.global_args = vec![
        "-F".into(),
        "/dev/null".into(),
        "-o".into(),
        format!("UserKnownHostsFile={}", kh.display()),
        "-o".into(),
        "IdentitiesOnly=yes".into(),
        "-i".into(),
        dir.join("id_ed25519").display().to_string(),
    ];
    let e = n.run("true", Duration::from_secs(30)).unwrap_err();
    let fp = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(dir.join("node2/ssh_host_ed25519_key.pub"))
        .output()
        .unwrap();
    let fp = String::from_utf8_lossy(&fp.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    match &e {
        ExecError::HostKeyChanged { fingerprint, .. } => assert_eq!(fingerprint, &fp),
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("ssh-keygen -R"), "{e}");
    assert!(!e.is_retryable());
}

#[test]
fn issue7_an_address_without_sshd_is_unreachable() {
    if nodes_dir().is_none() {
        return;
    }
    let n = node("ghost", "127.0.0.19", "/dev/null", false);
    let e = n.run("true", Duration::from_secs(30)).unwrap_err();
    assert!(matches!(e, ExecError::Unreachable { .. }), "{e:?}");
    assert!(e.is_retryable());
    assert!(e.to_string().contains("node ghost"), "{e}");
}

/// The sshd serving a command dies in the middle of it (killed with SIGKILL, as when the node
/// crashes or its sshd is restarted): the error is "connection lost", which a retry can help.
#[test]
fn issue7_sshd_dying_mid_command_is_a_lost_connection() {
    let Some(dir) = nodes_dir() else { return };
    let config = dir.join("ssh_config").display().to_string();
    let addr = var("LIFEBOAT_NODE_ADDRS")
        .unwrap()
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string();
    let n = node("node3", &addr, &config, false);
    // The command's parent is the session's sshd: it kills it, then would go on writing.
    let e = n
        .run(
            "echo started; sleep 0.5; kill -9 $PPID; sleep 5; echo never",
            Duration::from_secs(30),
        )
        .unwrap_err();
    assert!(matches!(e, ExecError::Lost { .. }), "{e:?}");
    assert!(e.is_retryable());
    // The node itself is fine for the next command.
    assert_eq!(
        facts(&n, Duration::from_secs(30)).unwrap().hostname,
        "node3"
    );
}
