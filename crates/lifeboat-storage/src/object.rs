//! Repositories in object storage, S3 and OpenStack Swift, through OpenDAL. Every object is
//! written with one whole-object request (a PUT is atomic and durable when it returns), so
//! a retry after a failure simply writes the same bytes again; no multipart writer is left
//! half-open (see ../shared/CRATES.md on OpenDAL's retried streaming writers).
//!
//! Create-if-absent, the lease primitive:
//! - S3: `If-None-Match: *`. Stores that do not implement it (Swift's s3api answers 501)
//!   get a write-then-verify protocol: refuse when the object exists, write, wait, read back;
//!   of two racing writers only the last one reads back its own bytes.
//! - Swift: a PUT with `If-None-Match: *` (OpenDAL does not offer it for Swift, so it is sent
//!   directly). Swift's object servers check it without a lock, so racing PUTs can all pass;
//!   the same wait-and-read-back then picks the one winner (the newest timestamp).

use crate::remote::{encode_path, runtime};
use crate::swift_auth::{Secret, SwiftCredentials, SwiftToken, authenticate};
use crate::{FileKind, Handle, Result, Storage, StorageError};
use opendal::{ErrorKind, Operator};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

/// S3 settings beside the URL.
#[derive(Debug, Clone, Default)]
pub struct S3Target {
    /// `https://host[:port]` (a bare host gets https).
    pub endpoint: Option<String>,
    pub bucket: String,
    pub prefix: String,
    pub region: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`); the default for a custom endpoint.
    pub path_style: Option<bool>,
    /// Keys given explicitly; without them the usual AWS variables and files are read.
    pub access_key: Option<String>,
    pub secret_key: Option<Secret>,
}

#[derive(Debug, Clone, Default)]
pub struct SwiftTarget {
    pub container: String,
    pub prefix: String,
}

enum Service {
    S3 {
        target: S3Target,
        /// 0 unknown, 1 the store honours If-None-Match, 2 it does not.
        conditional: AtomicU8,
    },
    Swift {
        target: SwiftTarget,
        creds: SwiftCredentials,
        token: Mutex<Option<SwiftToken>>,
        http: reqwest::Client,
    },
}

pub struct ObjectStorage {
    service: Service,
    /// Rebuilt when a Swift token is renewed.
    op: Mutex<Option<Operator>>,
    location: String,
    connections: usize,
}

/// How long the write-then-verify protocol waits before reading back: longer than a PUT
/// of a small object takes, so a racing writer's PUT has landed by then.
const SETTLE: Duration = Duration::from_secs(3);

/// OpenDAL renders an S3 error body as `S3Error { code: "X", message: "Y", .. }`; the
/// operator needs "X: Y".
fn s3_code_message(msg: &str) -> Option<(String, String)> {
    let field = |name: &str| {
        let i = msg.find(&format!("{name}: \""))? + name.len() + 3;
        let rest = &msg[i..];
        Some(rest[..rest.find('"')?].to_string())
    };
    Some((field("code")?, field("message").unwrap_or_default()))
}

fn map_err(what: &str, e: &opendal::Error) -> StorageError {
    let what = what.to_string();
    let mut msg = e.message().lines().next().unwrap_or("").trim().to_string();
    let status = status_of(e);
    if let Some((code, text)) = s3_code_message(&msg) {
        if matches!(
            code.as_str(),
            "SignatureDoesNotMatch" | "InvalidAccessKeyId" | "InvalidToken" | "ExpiredToken"
        ) {
            return StorageError::Auth(format!(
                "S3 refused the credentials ({code}: {text}); check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the profile in ~/.aws)"
            ));
        }
        msg = format!("{code}: {text}");
    }
    match e.kind() {
        ErrorKind::NotFound => StorageError::NotFound(what),
        ErrorKind::AlreadyExists | ErrorKind::ConditionNotMatch => {
            StorageError::AlreadyExists(what)
        }
        ErrorKind::PermissionDenied if status == Some(401) => StorageError::Auth(format!(
            "the service refused the credentials for {what}: {msg}"
        )),
        ErrorKind::PermissionDenied => StorageError::PermissionDenied(format!("{what} ({msg})")),
        _ if msg.contains("NoSuchBucket") => StorageError::NoSuchLocation(format!(
            "{what}: the bucket does not exist; create it first (for example `aws s3 mb`) or check the URL and --s3-endpoint"
        )),
        ErrorKind::ConfigInvalid => StorageError::NoSuchLocation(format!("{what}: {msg}")),
        // Swift answers 413 when a container or account quota is used up (s3api turns that
        // into EntityTooLarge or QuotaExceeded); 507 is a full disk behind the proxy. Packs
        // are far below any object size limit, so "too large" means "no room".
        _ if msg.contains("QuotaExceeded")
            || msg.contains("EntityTooLarge")
            || status == Some(413)
            || status == Some(507) =>
        {
            StorageError::NoSpace(format!(
                "{what} (the server refused it: a quota on the bucket, container or account is used up, or its disks are full; {msg})"
            ))
        }
        k => StorageError::Remote {
            what,
            message: match status {
                Some(s) => format!("{k} (HTTP {s}): {msg}"),
                None => format!("{k}: {msg}"),
            },
            // OpenDAL marks 5xx, 429 and connection failures temporary.
            retryable: e.is_temporary() || k == ErrorKind::RateLimited,
        },
    }
}

/// The HTTP status OpenDAL recorded in the error's context, if any.
fn status_of(e: &opendal::Error) -> Option<u16> {
    let s = format!("{e:?}");
    let i = s.find("status: ")?;
    s[i + 8..].chars().take(3).collect::<String>().parse().ok()
}

fn http_err(what: &str, e: reqwest::Error) -> StorageError {
    StorageError::Remote {
        what: what.to_string(),
        message: format!("request failed: {}", e.without_url()),
        retryable: true,
    }
}

impl ObjectStorage {
    pub fn s3(target: S3Target, connections: usize) -> Result<Self> {
        let location = format!("s3://{}/{}", target.bucket, target.prefix);
        let location = match &target.endpoint {
            Some(e) => format!("{} at {e}", location.trim_end_matches('/')),
            None => location,
        };
        let s = ObjectStorage {
            service: Service::S3 {
                target,
                conditional: AtomicU8::new(0),
            },
            op: Mutex::new(None),
            location: location.trim_end_matches('/').to_string(),
            connections: connections.max(1),
        };
        s.operator()?;
        Ok(s)
    }

    pub fn swift(target: SwiftTarget, creds: SwiftCredentials, connections: usize) -> Result<Self> {
        let location = format!("swift://{}/{}", target.container, target.prefix);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| StorageError::Remote {
                what: location.clone(),
                message: format!("cannot set up HTTP: {e}"),
                retryable: false,
            })?;
        Ok(ObjectStorage {
            service: Service::Swift {
                target,
                creds,
                token: Mutex::new(None),
                http,
            },
            op: Mutex::new(None),
            location: location.trim_end_matches('/').to_string(),
            connections: connections.max(1),
        })
    }

    fn root(&self) -> String {
        let prefix = match &self.service {
            Service::S3 { target, .. } => &target.prefix,
            Service::Swift { target, .. } => &target.prefix,
        };
        if prefix.is_empty() {
            "/".to_string()
        } else {
            format!("/{}/", prefix.trim_matches('/'))
        }
    }

    /// A valid Swift token: the cached one unless it is about to expire or was refused.
    fn swift_token(&self, force: bool) -> Result<SwiftToken> {
        let Service::Swift {
            creds, token, http, ..
        } = &self.service
        else {
            return Err(StorageError::Remote {
                what: self.location.clone(),
                message: "not a Swift repository".into(),
                retryable: false,
            });
        };
        let mut g = token.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = g.as_ref()
            && !force
            && !t.needs_renewal(jiff::Timestamp::now())
        {
            return Ok(t.clone());
        }
        let t = runtime()?.block_on(authenticate(http, creds))?;
        *g = Some(t.clone());
        // The operator carries the old token: make the next call build a new one.
        *self.op.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(t)
    }

    fn operator(&self) -> Result<Operator> {
        if let Service::Swift { token, .. } = &self.service {
            let stale = token
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .is_none_or(|t| t.needs_renewal(jiff::Timestamp::now()));
            if stale {
                self.swift_token(true)?;
            }
        }
        // Lock order: the Swift token, then the operator, as `swift_token` takes them (it
        // renews the token and drops the operator built with the old one). The other order
        // deadlocked a backup whose upload threads met a revoked token together.
        let token_guard = match &self.service {
            Service::Swift { token, .. } => Some(token.lock().unwrap_or_else(|e| e.into_inner())),
            Service::S3 { .. } => None,
        };
        let mut g = self.op.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(op) = g.as_ref() {
            return Ok(op.clone());
        }
        let root = self.root();
        let built = match &self.service {
            Service::S3 { target, .. } => {
                let mut b = opendal::services::S3::default()
                    .bucket(&target.bucket)
                    .root(&root);
                let endpoint = target.endpoint.as_ref().map(|e| {
                    if e.contains("://") {
                        e.clone()
                    } else {
                        format!("https://{e}")
                    }
                });
                if let Some(e) = &endpoint {
                    b = b.endpoint(e);
                }
                b = b.region(target.region.as_deref().unwrap_or("us-east-1"));
                if let (Some(a), Some(k)) = (&target.access_key, &target.secret_key) {
                    b = b.access_key_id(a).secret_access_key(k.expose());
                }
                if target.path_style == Some(false)
                    || (target.path_style.is_none() && endpoint.is_none())
                {
                    b = b.enable_virtual_host_style();
                }
                Operator::new(b)
            }
            Service::Swift { target, .. } => {
                let t = token_guard
                    .as_ref()
                    .and_then(|t| (**t).clone())
                    .ok_or_else(|| StorageError::Auth("no Swift token".into()))?;
                let b = opendal::services::Swift::default()
                    .endpoint(&t.storage_url)
                    .container(&target.container)
                    .root(&root)
                    .token(t.token.expose());
                Operator::new(b)
            }
        };
        let op = built
            .map_err(|e| {
                StorageError::NoSuchLocation(format!("{}: {}", self.location, e.message()))
            })?
            // A stalled connection becomes a retryable error instead of a hung backup. The
            // I/O timeout bounds each read or write of a body; packs are tens of MiB.
            .layer(
                opendal::layers::TimeoutLayer::new()
                    .with_timeout(Duration::from_secs(120))
                    .with_io_timeout(Duration::from_secs(60)),
            );
        *g = Some(op.clone());
        Ok(op)
    }

    /// Runs one request; a Swift token refused with 401 (expired early, revoked) is renewed
    /// once and the request repeated.
    fn call<T, F, Fut>(&self, what: &str, f: F) -> Result<T>
    where
        F: Fn(Operator) -> Fut,
        Fut: std::future::Future<Output = opendal::Result<T>>,
    {
        let rt = runtime()?;
        let mut renewed = 0;
        loop {
            let op = self.operator()?;
            let err = match rt.block_on(f(op)) {
                Ok(v) => return Ok(v),
                Err(e) => map_err(what, &e),
            };
            if !matches!(self.service, Service::Swift { .. })
                || !matches!(err, StorageError::Auth(_))
                || renewed == 2
            {
                return Err(err);
            }
            // A token refused with 401 has expired or was revoked: get a new one. Keystone
            // records a revocation with one-second precision, so a token issued in the same
            // second as a revocation (a password reset) is refused too; the second renewal
            // waits that second out.
            if renewed > 0 {
                std::thread::sleep(Duration::from_millis(1100));
            }
            renewed += 1;
            self.swift_token(true)?;
        }
    }

    fn s3_create_new(&self, h: &Handle, data: &[u8], conditional: &AtomicU8) -> Result<()> {
        let path = h.path();
        if conditional.load(Ordering::Relaxed) != 2 {
            let body = data.to_vec();
            let res = self.call(&path, |op| {
                let body = body.clone();
                let path = path.clone();
                async move {
                    op.write_with(&path, body)
                        .if_not_exists(true)
                        .await
                        .map(|_| ())
                }
            });
            match res {
                Err(StorageError::Remote { message, .. })
                    if message.contains("HTTP 501") || message.contains("NotImplemented") =>
                {
                    conditional.store(2, Ordering::Relaxed);
                }
                r => {
                    if r.is_ok() {
                        conditional.store(1, Ordering::Relaxed);
                    }
                    return r;
                }
            }
        }
        // Write, wait, read back: see the module comment.
        match self.size(h) {
            Ok(_) => return Err(StorageError::AlreadyExists(path)),
            Err(StorageError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        self.put(h, data)?;
        std::thread::sleep(SETTLE);
        if self.get(h)? == data {
            Ok(())
        } else {
            Err(StorageError::AlreadyExists(path))
        }
    }

    fn swift_url(&self, t: &SwiftToken, target: &SwiftTarget, path: Option<&str>) -> String {
        let mut url = format!(
            "{}/{}",
            t.storage_url.trim_end_matches('/'),
            encode_path(&target.container)
        );
        if let Some(p) = path {
            let prefix = target.prefix.trim_matches('/');
            let full = if prefix.is_empty() {
                p.to_string()
            } else {
                format!("{prefix}/{p}")
            };
            url.push('/');
            url.push_str(&encode_path(&full));
        }
        url
    }

    fn swift_create_new(&self, h: &Handle, data: &[u8]) -> Result<()> {
        let Service::Swift { target, http, .. } = &self.service else {
            return Err(StorageError::NotFound(h.path()));
        };
        let path = h.path();
        for attempt in 0..3 {
            if attempt == 2 {
                std::thread::sleep(Duration::from_millis(1100)); // see `call`
            }
            let t = self.swift_token(attempt > 0)?;
            let url = self.swift_url(&t, target, Some(&path));
            let req = http
                .put(url)
                .header("X-Auth-Token", t.token.expose())
                .header("If-None-Match", "*")
                .body(data.to_vec());
            let resp = runtime()?
                .block_on(req.send())
                .map_err(|e| http_err(&path, e))?;
            match resp.status().as_u16() {
                200..=299 => {
                    // Swift checks If-None-Match without a lock: PUTs that race all pass the
                    // check, and the one with the newest timestamp wins. Only the writer that
                    // reads back its own bytes once the others have landed holds the name.
                    std::thread::sleep(SETTLE);
                    return if self.get(h)? == data {
                        Ok(())
                    } else {
                        Err(StorageError::AlreadyExists(path))
                    };
                }
                412 => return Err(StorageError::AlreadyExists(path)),
                401 if attempt < 2 => continue,
                401 | 403 => {
                    return Err(StorageError::Auth(format!(
                        "Swift refused the token for {path} (HTTP {})",
                        resp.status().as_u16()
                    )));
                }
                404 => {
                    return Err(StorageError::NoSuchLocation(format!(
                        "container {:?} does not exist",
                        target.container
                    )));
                }
                s => {
                    return Err(StorageError::Remote {
                        what: path,
                        message: format!("Swift answered HTTP {s}"),
                        retryable: s >= 500 || s == 429 || s == 408,
                    });
                }
            }
        }
        Err(StorageError::Auth(format!(
            "Swift kept refusing the token for {path}"
        )))
    }

    /// Fails with NoSuchLocation when the bucket or container does not exist.
    fn probe_place(&self) -> Result<()> {
        match &self.service {
            Service::S3 { target, .. } => {
                let res = self.call("bucket", |op| async move {
                    op.list_with("/").limit(1).await.map(|_| ())
                });
                match res {
                    Err(StorageError::NotFound(_)) | Err(StorageError::NoSuchLocation(_)) => {
                        Err(StorageError::NoSuchLocation(format!(
                            "the S3 bucket {:?} does not exist: create it first (for example `aws s3 mb s3://{}`) or check the URL and --s3-endpoint",
                            target.bucket, target.bucket
                        )))
                    }
                    _ => Ok(()),
                }
            }
            Service::Swift { target, http, .. } => {
                let t = self.swift_token(false)?;
                let url = self.swift_url(&t, target, None);
                let resp = runtime()?
                    .block_on(
                        http.head(url)
                            .header("X-Auth-Token", t.token.expose())
                            .send(),
                    )
                    .map_err(|e| http_err("container", e))?;
                if resp.status().as_u16() == 404 {
                    return Err(StorageError::NoSuchLocation(format!(
                        "the Swift container {:?} does not exist (`lifeboat init` creates it)",
                        target.container
                    )));
                }
                Ok(())
            }
        }
    }

    /// Makes the Swift container if it is missing (at `init`).
    fn swift_ensure_container(&self) -> Result<()> {
        let Service::Swift { target, http, .. } = &self.service else {
            return Ok(());
        };
        let t = self.swift_token(false)?;
        let url = self.swift_url(&t, target, None);
        let what = format!("container {}", target.container);
        let resp = runtime()?
            .block_on(
                http.put(url)
                    .header("X-Auth-Token", t.token.expose())
                    .send(),
            )
            .map_err(|e| http_err(&what, e))?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            401 | 403 => Err(StorageError::Auth(format!(
                "Swift refused to create {what} (HTTP {})",
                resp.status().as_u16()
            ))),
            s => Err(StorageError::Remote {
                what,
                message: format!("creating it: Swift answered HTTP {s}"),
                retryable: s >= 500,
            }),
        }
    }
}

impl Storage for ObjectStorage {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn parallelism(&self) -> usize {
        self.connections
    }

    fn create(&self) -> Result<()> {
        self.swift_ensure_container()?;
        match self.size(&Handle::config()) {
            Ok(_) => Err(StorageError::AlreadyExists(self.location.clone())),
            Err(StorageError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn put(&self, h: &Handle, data: &[u8]) -> Result<()> {
        let path = h.path();
        // One buffer for every attempt: Buffer clones share the bytes.
        let body = opendal::Buffer::from(data.to_vec());
        let res = self.call(&path, |op| {
            let (body, path) = (body.clone(), path.clone());
            async move { op.write(&path, body).await.map(|_| ()) }
        });
        match res {
            // Swift answers 202 when a write of the same name with the same timestamp got
            // there first (two writers of one content-named object). The object is there
            // with the same bytes, which is all a put promises; the size makes sure.
            Err(StorageError::Remote { message, .. })
                if message.contains("HTTP 202") && self.size(h)? == data.len() as u64 =>
            {
                Ok(())
            }
            r => r,
        }
    }

    fn create_new(&self, h: &Handle, data: &[u8]) -> Result<()> {
        match &self.service {
            Service::S3 { conditional, .. } => self.s3_create_new(h, data, conditional),
            Service::Swift { .. } => self.swift_create_new(h, data),
        }
    }

    fn get(&self, h: &Handle) -> Result<Vec<u8>> {
        let path = h.path();
        self.call(&path, |op| {
            let path = path.clone();
            async move { op.read(&path).await.map(|b| b.to_vec()) }
        })
    }

    fn get_range(&self, h: &Handle, offset: u64, len: u64) -> Result<Vec<u8>> {
        let path = h.path();
        let data = self.call(&path, |op| {
            let path = path.clone();
            async move {
                op.read_with(&path)
                    .range(offset..offset + len)
                    .await
                    .map(|b| b.to_vec())
            }
        });
        let data = match data {
            // Past the end (416, or OpenDAL's "reader got too little data"): read as short,
            // which the size check below tells apart from a body cut in transit.
            Err(StorageError::Remote { .. }) => Vec::new(),
            r => r?,
        };
        if (data.len() as u64) < len {
            let size = self.size(h)?;
            if size < offset + len {
                return Err(StorageError::Truncated {
                    what: path,
                    offset,
                    wanted: len,
                    len: size,
                });
            }
            return Err(StorageError::Remote {
                what: path,
                message: format!("got {} of {len} bytes: the connection was cut", data.len()),
                retryable: true,
            });
        }
        Ok(data)
    }

    fn size(&self, h: &Handle) -> Result<u64> {
        let path = h.path();
        let res = self.call(&path, |op| {
            let path = path.clone();
            async move { op.stat(&path).await.map(|m| m.content_length()) }
        });
        if let (Err(StorageError::NotFound(_)), FileKind::Config) = (&res, h.kind) {
            // No config: is the bucket or container itself missing? That needs a different
            // fix (create it) than an empty place (`lifeboat init`).
            self.probe_place()?;
        }
        res
    }

    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>> {
        let dir = match kind {
            FileKind::Config => String::new(),
            k => format!("{}/", k.dir()),
        };
        let entries = self.call(&dir, |op| {
            let dir = dir.clone();
            async move { op.list_with(&dir).recursive(true).await }
        })?;
        let mut out = Vec::new();
        for e in entries {
            if e.metadata().is_dir() {
                continue;
            }
            let name = e.name().to_string();
            if name.is_empty() || name.starts_with('.') {
                continue;
            }
            if kind == FileKind::Config && e.path().contains('/') {
                continue;
            }
            out.push((name, e.metadata().content_length()));
        }
        out.sort();
        Ok(out)
    }

    fn delete(&self, h: &Handle) -> Result<()> {
        // Object stores answer a delete of a missing object with success; the contract
        // says NotFound, which prune and repair rely on to notice a concurrent delete.
        self.size(h)?;
        let path = h.path();
        self.call(&path, |op| {
            let path = path.clone();
            async move { op.delete(&path).await }
        })
    }
}
