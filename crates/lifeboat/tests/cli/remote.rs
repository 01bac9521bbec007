//! Repositories on the real remote servers of `scripts/remote/all` (SFTP, S3 and Swift with
//! Keystone): the whole life of a repository on each, and the faults of issue 5 — wrong
//! credentials, unknown buckets, a dead server, a connection cut mid-backup, 5% of requests
//! failing. Without the servers' variables the tests return early, except with `CI=true`,
//! where they fail.

use crate::support::{Env, INIT_SMALL_PACKS, PASSWORD, bytes, describe};
use std::fs;
use std::path::Path;
use std::process::Command;

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The servers' variables, or None (a failure with CI=true).
fn servers() -> Option<()> {
    if var("LIFEBOAT_SFTP_HOST").is_some() && var("OS_AUTH_URL").is_some() {
        static BUCKET: std::sync::Once = std::sync::Once::new();
        BUCKET.call_once(make_bucket);
        return Some(());
    }
    if var("CI").as_deref() == Some("true") {
        panic!(
            "remote tests need the servers: scripts/remote/all start; eval \"$(scripts/remote/all env)\""
        );
    }
    None
}

/// The S3 bucket the tests use is the tempauth account's Swift container of that name
/// (s3api maps one onto the other); made here with curl, since S3 cannot be asked to.
fn make_bucket() {
    swift_container("PUT", "lifeboat-conformance", &[]);
}

/// A tempauth token for the test account.
fn tempauth_token() -> String {
    let v = |n: &str| var(n).unwrap_or_else(|| panic!("{n} is not set"));
    let out = Command::new("curl")
        .args(["-sS", "-f", "-D", "-", "-o", "/dev/null"])
        .arg("-H")
        .arg(format!("X-Auth-User: {}", v("LIFEBOAT_SWIFT_USER")))
        .arg("-H")
        .arg(format!("X-Auth-Key: {}", v("LIFEBOAT_SWIFT_KEY")))
        .arg(v("LIFEBOAT_SWIFT_AUTH_URL"))
        .output()
        .expect("curl");
    let headers = String::from_utf8_lossy(&out.stdout);
    headers
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("x-auth-token"))
                .map(|(_, v)| v.trim().to_string())
        })
        .expect("a tempauth token")
}

/// Creates (PUT) or changes (POST) a container of the tempauth account, with headers.
fn swift_container(method: &str, name: &str, headers: &[(&str, &str)]) {
    let url = var("LIFEBOAT_SWIFT_STORAGE_URL").expect("LIFEBOAT_SWIFT_STORAGE_URL is not set");
    let mut c = Command::new("curl");
    c.args(["-sS", "-f", "-X", method, "-o", "/dev/null", "-H"])
        .arg(format!("X-Auth-Token: {}", tempauth_token()));
    for (k, v) in headers {
        c.arg("-H").arg(format!("{k}: {v}"));
    }
    let st = c.arg(format!("{url}/{name}")).status().expect("curl");
    assert!(st.success(), "{method} of container {name} failed");
}

/// The S3 credentials, region and endpoint of the test servers.
fn s3_env() -> Vec<(String, String)> {
    [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
    ]
    .iter()
    .map(|n| (n.to_string(), var(n).unwrap_or_default()))
    .collect()
}

/// Swift v1 (tempauth) credentials of the test account, at `auth_url`.
fn tempauth_env(auth_url: String) -> Vec<(String, String)> {
    vec![
        ("ST_AUTH".into(), auth_url),
        (
            "ST_USER".into(),
            var("LIFEBOAT_SWIFT_USER").unwrap_or_default(),
        ),
        (
            "ST_KEY".into(),
            var("LIFEBOAT_SWIFT_KEY").unwrap_or_default(),
        ),
    ]
}

fn unique(tag: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{tag}-{t:x}-{}", std::process::id())
}

/// A remote repository URL and the environment that reaches it.
struct Remote {
    name: &'static str,
    url: String,
    env: Vec<(String, String)>,
}

fn remotes(env: &Env) -> Vec<Remote> {
    let v = |n: &str| var(n).unwrap_or_default();
    let sftp_dir = env.path("sftp-repo");
    vec![
        Remote {
            name: "sftp",
            url: format!(
                "sftp://root@{}:{}{}",
                v("LIFEBOAT_SFTP_HOST"),
                v("LIFEBOAT_SFTP_PORT"),
                sftp_dir.display()
            ),
            env: vec![("LIFEBOAT_SSH_CONFIG".into(), v("LIFEBOAT_SFTP_SSH_CONFIG"))],
        },
        Remote {
            name: "s3",
            url: format!("s3://lifeboat-conformance/{}", unique("cli")),
            env: s3_env(),
        },
        Remote {
            name: "swift",
            url: format!("swift://lifeboat-cli/{}", unique("cli")),
            env: std::env::vars()
                .filter(|(k, _)| k.starts_with("OS_"))
                .collect(),
        },
    ]
}

impl Remote {
    fn cmd(&self, env: &Env) -> Command {
        let mut c = env.cmd_without_repo();
        c.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .arg("-r")
            .arg(&self.url);
        c
    }

    fn run(&self, env: &Env, args: &[&str]) -> (i32, String, String) {
        output(self.cmd(env).args(args))
    }

    fn ok(&self, env: &Env, args: &[&str]) -> String {
        let (code, out, err) = self.run(env, args);
        assert_eq!(code, 0, "{} {args:?}:\n{out}\n{err}", self.name);
        out
    }

    fn json(&self, env: &Env, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.ok(env, &a);
        serde_json::from_str(out.lines().last().unwrap_or("")).expect("json")
    }
}

/// Runs a command: (exit code, stdout, stderr).
fn output(c: &mut Command) -> (i32, String, String) {
    let out = c.output().expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn make_tree(root: &Path, seed: u64) {
    fs::create_dir_all(root.join("etc/nova")).unwrap();
    fs::create_dir_all(root.join("var/lib")).unwrap();
    fs::write(
        root.join("etc/nova/nova.conf"),
        b"[DEFAULT]\ndebug = false\n",
    )
    .unwrap();
    fs::write(root.join("var/lib/big.bin"), bytes(9 << 20, seed)).unwrap();
    for i in 0..50 {
        fs::write(
            root.join(format!("var/lib/small-{i}")),
            bytes(3000 + i, seed + i as u64),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink("nova/nova.conf", root.join("etc/link")).unwrap();
}

fn same_tree(a: &Path, b: &Path) {
    let mut stack = vec![std::path::PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let (pa, pb) = (a.join(&rel), b.join(&rel));
        assert_eq!(describe(&pa), describe(&pb), "{}", rel.display());
        if pa.is_dir() && !pa.is_symlink() {
            for e in fs::read_dir(&pa).unwrap() {
                stack.push(rel.join(e.unwrap().file_name()));
            }
        }
    }
}

#[test]
fn issue5_every_backend_keeps_a_repository_through_its_life() {
    if servers().is_none() {
        return;
    }
    let env = Env::new();
    let src = env.path("src");
    make_tree(&src, 1);
    let s = src.to_str().unwrap();
    for r in remotes(&env) {
        r.ok(
            &env,
            &["init", "--kdf-memory-kib", "1024", "--kdf-passes", "1"],
        );
        let (code, _, err) = r.run(&env, &["init"]);
        assert_eq!(code, 1, "{}: a second init is refused: {err}", r.name);
        let first = r.json(&env, &["backup", s]);
        assert_eq!(first["complete"], true);
        fs::write(src.join("etc/nova/nova.conf"), b"[DEFAULT]\ndebug = true\n").unwrap();
        let second = r.json(&env, &["backup", s]);
        assert!(
            second["bytes_added"].as_u64().unwrap() < 100_000,
            "{}: an almost unchanged tree adds almost nothing: {second}",
            r.name
        );
        let snaps = r.json(&env, &["snapshots"]);
        assert_eq!(snaps.as_array().unwrap().len(), 2, "{}", r.name);
        let target = env.path(&format!("restore-{}", r.name));
        r.ok(
            &env,
            &["restore", "latest", "--target", target.to_str().unwrap()],
        );
        same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));
        r.ok(&env, &["check", "--read-data"]);
        r.ok(
            &env,
            &[
                "forget",
                "--keep-last",
                "1",
                "--prune",
                "--keep-delete",
                "0",
            ],
        );
        assert_eq!(r.json(&env, &["snapshots"]).as_array().unwrap().len(), 1);
        r.ok(&env, &["check", "--read-data"]);
        // Keys and copy work the same on remote storage.
        let pwf = env.path("second-password");
        fs::write(&pwf, "another password\n").unwrap();
        r.ok(
            &env,
            &["key", "add", "--new-password-file", pwf.to_str().unwrap()],
        );
        let (code, out, err) = output(r.cmd(&env).env_remove("LIFEBOAT_PASSWORD").args([
            "--password-file",
            pwf.to_str().unwrap(),
            "snapshots",
        ]));
        assert_eq!(code, 0, "{}: the added key opens it: {out}{err}", r.name);
        // A local snapshot copied to the remote repository restores from there.
        let local = env.backup(&[s]);
        let out = env
            .cmd()
            .envs(r.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("LIFEBOAT_TO_PASSWORD", PASSWORD)
            .args(["copy", &local[..12], "--to", &r.url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: copy: {}",
            r.name,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(r.json(&env, &["snapshots"]).as_array().unwrap().len(), 2);
        r.ok(&env, &["check", "--read-data"]);
        fs::write(
            src.join("etc/nova/nova.conf"),
            b"[DEFAULT]\ndebug = false\n",
        )
        .unwrap();
    }
}

#[test]
fn issue5_wrong_credentials_exit_13_without_the_secret() {
    if servers().is_none() {
        return;
    }
    let env = Env::new();
    let rs = remotes(&env);
    // S3: a wrong secret key.
    let s3 = &rs[1];
    let (code, _, err) = output(
        s3.cmd(&env)
            .env("AWS_SECRET_ACCESS_KEY", "not-the-secret-key-xyzzy")
            .arg("snapshots"),
    );
    assert_eq!(code, 13, "s3 with a wrong secret: {err}");
    assert!(!err.contains("xyzzy"), "{err}");
    // Swift through Keystone: a wrong password.
    let sw = &rs[2];
    let out = sw
        .cmd(&env)
        .env("OS_PASSWORD", "wrong-password-plugh")
        .arg("snapshots")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(13),
        "swift with a wrong password: {err}"
    );
    assert!(err.contains("Keystone"), "{err}");
    assert!(!err.contains("plugh"), "{err}");
    // SFTP: a key the server does not know.
    let key = env.path("id_other");
    assert!(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .unwrap()
            .success()
    );
    let sftp = &rs[0];
    let out = env
        .cmd_without_repo()
        .args(["-r", &sftp.url, "--retries", "1"])
        .args(["--ssh-option", "IdentitiesOnly=yes", "--ssh-option"])
        .arg(format!("IdentityFile={}", key.display()))
        .arg("--ssh-option")
        .arg(format!(
            "UserKnownHostsFile={}",
            var("LIFEBOAT_SFTP_KNOWN_HOSTS").unwrap()
        ))
        .arg("snapshots")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(13), "sftp with a wrong key: {err}");
    assert!(
        err.contains("Permission denied"),
        "ssh's own reason is shown: {err}"
    );
}

#[test]
fn issue5_unknown_places_and_dead_servers_have_their_own_exit_codes() {
    if servers().is_none() {
        return;
    }
    let env = Env::new();
    let rs = remotes(&env);
    // An unknown bucket: 10, naming the bucket.
    let out = env
        .cmd_without_repo()
        .envs(rs[1].env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(["-r", "s3://lifeboat-no-such-bucket/x", "snapshots"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(10), "{err}");
    assert!(err.contains("bucket"), "{err}");
    // An empty place in a Swift container: no repository there, 10.
    let (code, _, err) = rs[2].run(&env, &["snapshots"]);
    assert_eq!(code, 10, "{err}");
    // A server that does not answer: retried, then 14 with the reason.
    let out = env
        .cmd_without_repo()
        .args([
            "-r",
            "sftp://root@127.0.0.2:1/tmp/x",
            "--retries",
            "2",
            "snapshots",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(14), "{err}");
    assert!(err.contains("Connection refused"), "{err}");
    assert!(err.contains("retrying"), "the retry is told: {err}");
    let out = rs[1]
        .cmd(&env)
        .args([
            "--s3-endpoint",
            "http://127.0.0.1:1",
            "--retries",
            "2",
            "snapshots",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(14), "{err}");
}

#[test]
fn issue5_faults_and_cut_connections_are_retried_and_lose_nothing() {
    if servers().is_none() {
        return;
    }
    let env = Env::new();
    let src = env.path("src");
    make_tree(&src, 7);
    let s = src.to_str().unwrap();
    for r in remotes(&env) {
        // Small packs: many requests, so the faults hit often.
        r.ok(&env, INIT_SMALL_PACKS);
        // 5% of requests fail, 2% of replies are lost after the write landed, 2% of reads
        // are cut short: the backup completes and restores bit for bit.
        let out = r
            .cmd(&env)
            .env(
                "LIFEBOAT_FAULTS",
                "error=0.05,lost-reply=0.02,truncate=0.02,seed=11",
            )
            .args(["--json", "backup", s])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{}: {err}", r.name);
        let target = env.path(&format!("faulty-{}", r.name));
        let out = r
            .cmd(&env)
            .env("LIFEBOAT_FAULTS", "error=0.05,truncate=0.05,seed=12")
            .args(["restore", "latest", "--target", target.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            r.name,
            String::from_utf8_lossy(&out.stderr)
        );
        same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));
        r.ok(&env, &["check", "--read-data"]);
    }

    // An SFTP connection killed mid-backup (the ssh process dies, as when the server or
    // the network goes away): the backup reconnects and completes.
    let sftp = &remotes(&env)[0];
    let wrapper = env.path("ssh-dies-once");
    let marker = env.path("ssh-died");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ ! -e {m} ]; then touch {m}; exec timeout -s KILL 0.4 ssh \"$@\"; fi\nexec ssh \"$@\"\n",
            m = marker.display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&wrapper)
        .status()
        .unwrap();
    fs::write(src.join("var/lib/more.bin"), bytes(40 << 20, 99)).unwrap();
    let out = sftp
        .cmd(&env)
        .env("LIFEBOAT_SSH_PROGRAM", &wrapper)
        .args(["--json", "backup", s])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(marker.exists(), "the wrapper ran");
    assert!(out.status.success(), "{err}");
    assert!(err.contains("retrying"), "the cut was noticed: {err}");
    let target = env.path("after-cut");
    sftp.ok(
        &env,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    );
    same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));
    sftp.ok(&env, &["check", "--read-data"]);
}

/// A Keystone token that stops working in the middle of a backup (here: revoked by a
/// password reset; an expiry looks the same to Swift, a 401) is renewed and the backup
/// completes. The Keystone proxy of scripts/remote validates every token with Keystone
/// (`token_cache_time = -1`), so the revocation takes effect at once.
#[test]
fn issue5_a_token_revoked_mid_backup_is_renewed() {
    if servers().is_none() {
        return;
    }
    let env = Env::new();
    let src = env.path("src");
    make_tree(&src, 21);
    fs::write(src.join("var/lib/more.bin"), bytes(24 << 20, 22)).unwrap();
    let r = remotes(&env).remove(2);
    r.ok(&env, INIT_SMALL_PACKS);
    let openstack = |args: &[&str]| {
        let out = Command::new("openstack")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "OS_CLIENT_CONFIG_FILE",
                var("OS_CLIENT_CONFIG_FILE").unwrap(),
            )
            .env("OS_CLOUD", args[0])
            .args(&args[1..])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openstack {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // A token of the same user, to show that the revocation took effect.
    let witness = openstack(&[
        &var("LIFEBOAT_KEYSTONE_CLOUD").unwrap(),
        "token",
        "issue",
        "-f",
        "value",
        "-c",
        "id",
    ]);
    // Latency on every request makes the backup last a few seconds.
    let child = r
        .cmd(&env)
        .env("LIFEBOAT_FAULTS", "latency=250ms")
        .args(["--json", "backup", src.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    openstack(&[
        "lifeboat-admin",
        "user",
        "set",
        "--password",
        &var("OS_PASSWORD").unwrap(),
        &var("OS_USERNAME").unwrap(),
    ]);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let storage_url = format!(
        "{}/lifeboat-cli",
        String::from_utf8_lossy(
            &Command::new("sh")
                .arg("-c")
                .arg("echo $LIFEBOAT_KEYSTONE_SWIFT_URL_PREFIX$(openstack --os-cloud $LIFEBOAT_KEYSTONE_CLOUD project show lifeboat -f value -c id)")
                .output()
                .unwrap()
                .stdout
        )
        .trim()
    );
    let code = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-I", "-H"])
        .arg(format!("X-Auth-Token: {witness}"))
        .arg(&storage_url)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&code.stdout),
        "401",
        "the user's tokens were revoked during the backup"
    );
    let target = env.path("after-revoke");
    r.ok(
        &env,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    );
    same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));
}

/// Issue 5, a full server: a container quota, the way a Swift operator caps a project's space
/// (the proxy refuses uploads beyond it with 413; through s3api the same container is a
/// bucket). The backup that does not fit fails with exit 15 and a message that says so, leaves
/// no snapshot, and the earlier snapshot still restores; with room again the next backup and
/// `check` go through.
#[test]
fn issue5_a_full_container_fails_with_exit_15_and_keeps_earlier_snapshots() {
    if servers().is_none() {
        return;
    }
    let v = |n: &str| var(n).unwrap_or_default();
    let env = Env::new();
    let small = env.path("small");
    fs::create_dir_all(small.join("etc")).unwrap();
    fs::write(small.join("etc/keystone.conf"), bytes(20_000, 5)).unwrap();
    let big = env.path("big");
    fs::create_dir_all(&big).unwrap();
    fs::write(big.join("image.raw"), bytes(6 << 20, 6)).unwrap();

    for api in ["swift", "s3"] {
        let container = unique(&format!("lb-quota-{api}"));
        swift_container(
            "PUT",
            &container,
            &[("X-Container-Meta-Quota-Bytes", "1500000")],
        );
        let r = match api {
            "swift" => Remote {
                name: "swift (tempauth)",
                url: format!("swift://{container}/repo"),
                env: tempauth_env(v("LIFEBOAT_SWIFT_AUTH_URL")),
            },
            _ => Remote {
                name: "s3",
                url: format!("s3://{container}/repo"),
                env: s3_env(),
            },
        };
        r.ok(&env, &["init"]);
        r.ok(&env, &["backup", small.to_str().unwrap()]);

        let (code, out, err) = r.run(&env, &["backup", big.to_str().unwrap()]);
        assert_eq!(code, 15, "{api}: a backup beyond the quota:\n{out}\n{err}");
        assert!(
            err.contains("quota") && err.contains("Free space"),
            "{api}: the message names the cause and the next step:\n{err}"
        );
        assert!(!err.contains(&v("LIFEBOAT_SWIFT_KEY")), "{api}: {err}");
        let snaps = r.json(&env, &["snapshots"]);
        assert_eq!(
            snaps.as_array().map(Vec::len),
            Some(1),
            "{api}: the failed backup left a snapshot: {snaps}"
        );
        let target = env.path(&format!("restored-{api}"));
        r.ok(
            &env,
            &["restore", "latest", "--target", target.to_str().unwrap()],
        );
        same_tree(&small, &target.join(small.strip_prefix("/").unwrap()));

        swift_container(
            "POST",
            &container,
            &[("X-Container-Meta-Quota-Bytes", "100000000")],
        );
        r.ok(&env, &["backup", big.to_str().unwrap()]);
        r.ok(&env, &["check", "--read-data"]);
        assert_eq!(
            r.json(&env, &["snapshots"]).as_array().map(Vec::len),
            Some(2)
        );
    }
}

/// Issue 5, a server that dies mid-upload and comes back: the spare Swift proxy of
/// scripts/remote/swift is killed with SIGKILL (requests in flight are cut, new ones refused)
/// while a backup uploads through it, and started again two seconds later. The backup retries
/// through the outage and completes; what it stored restores bit for bit and `check
/// --read-data` finds nothing wrong.
#[test]
fn issue5_a_swift_proxy_killed_mid_backup_and_restarted_loses_nothing() {
    if servers().is_none() {
        return;
    }
    let v = |n: &str| var(n).unwrap_or_default();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/remote/swift");
    let spare = |what: &str| {
        let out = Command::new(&script)
            .args(["spare-proxy", what])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "spare-proxy {what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    spare("start");
    let env = Env::new();
    let src = env.path("src");
    make_tree(&src, 31);
    fs::write(src.join("var/lib/volume.img"), bytes(24 << 20, 32)).unwrap();
    let container = unique("lb-proxy-dies");
    swift_container("PUT", &container, &[]);
    let r = Remote {
        name: "swift (spare proxy)",
        url: format!("swift://{container}/repo"),
        env: tempauth_env(format!("{}/auth/v1.0", v("LIFEBOAT_SWIFT_SPARE_URL"))),
    };
    r.ok(&env, INIT_SMALL_PACKS);
    // 200 ms per request, two at a time: the backup's ~30 packs take several seconds, so
    // the kill lands in the middle.
    let mut backup = r
        .cmd(&env)
        .env("LIFEBOAT_FAULTS", "latency=200ms")
        .args(["--retries", "12", "--connections", "2"])
        .args(["backup", src.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until some packs are up (listing through the first proxy), then kill.
    let token = tempauth_token();
    let listing = || {
        let out = Command::new("curl")
            .args(["-sS", "-f", "-H"])
            .arg(format!("X-Auth-Token: {token}"))
            .arg(format!(
                "{}/{container}?prefix=repo/data/",
                v("LIFEBOAT_SWIFT_STORAGE_URL")
            ))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    let t = std::time::Instant::now();
    while listing() < 4 {
        assert!(t.elapsed().as_secs() < 60, "no packs were uploaded");
        assert!(
            backup.try_wait().unwrap().is_none(),
            "the backup ended early"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    spare("kill");
    assert!(
        backup.try_wait().unwrap().is_none(),
        "the backup finished before the proxy died: make it longer"
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    spare("start");
    let out = backup.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("retrying"), "the outage was noticed: {err}");
    let target = env.path("restored");
    r.ok(
        &env,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    );
    same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));
    r.ok(&env, &["check", "--read-data"]);
}
