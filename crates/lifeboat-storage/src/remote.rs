//! Repository URLs and the pieces the remote backends share: one tokio runtime for their
//! network I/O (the repository calls storage from plain worker threads, which block on it),
//! and the parsing of `sftp://`, `s3://` and `swift://` locations.

use crate::{Result, StorageError};
#[cfg(feature = "remote")]
use std::sync::OnceLock;

#[cfg(feature = "remote")]
static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> = OnceLock::new();

#[cfg(feature = "remote")]
/// The runtime remote backends run their requests on. Callers block on it from their own
/// threads; it must never be entered from inside one of its own tasks.
pub(crate) fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    let rt = RUNTIME.get_or_init(|| {
        // Default features are off, so OpenDAL's HTTP transport is installed by hand.
        opendal::install_default();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("lifeboat-io")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    rt.as_ref().map_err(|e| StorageError::Remote {
        what: "network runtime".into(),
        message: format!("cannot start the I/O threads: {e}"),
        retryable: false,
    })
}

/// Where a repository lives, parsed from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoUrl {
    Local(std::path::PathBuf),
    /// `sftp://[user@]host[:port]/path`; `/~/path` is relative to the login directory.
    Sftp {
        user: Option<String>,
        host: String,
        port: Option<u16>,
        path: String,
    },
    /// `s3://[endpoint/]bucket[/prefix]`.
    S3 {
        endpoint: Option<String>,
        bucket: String,
        prefix: String,
    },
    /// `swift://container[/prefix]`.
    Swift {
        container: String,
        prefix: String,
    },
}

fn bad(url: &str, why: &str) -> StorageError {
    StorageError::NoSuchLocation(format!("repository URL {url:?}: {why}"))
}

/// Splits `rest` into its first segment and the others, dropping empty segments.
fn first_and_rest(rest: &str) -> (String, String) {
    let mut parts = rest.split('/').filter(|p| !p.is_empty());
    let first = parts.next().unwrap_or("").to_string();
    let rest: Vec<&str> = parts.collect();
    (first, rest.join("/"))
}

/// Whether a URL segment names a host (has a port, or is a dotted name or address) rather
/// than a bucket. Bucket names may hold dots too, so an endpoint given by option always wins.
fn looks_like_host(s: &str) -> bool {
    s.contains(':') || s == "localhost" || s.parse::<std::net::IpAddr>().is_ok()
}

impl RepoUrl {
    /// Parses a repository location: a path, `file://`, `sftp://`, `s3://` or `swift://`.
    /// `s3_endpoint_given` says an endpoint came by option or environment, so the URL's
    /// first segment is always the bucket.
    pub fn parse(url: &str, s3_endpoint_given: bool) -> Result<RepoUrl> {
        if let Some(rest) = url.strip_prefix("file://") {
            return Ok(RepoUrl::Local(rest.into()));
        }
        if let Some(rest) = url.strip_prefix("sftp://") {
            let (auth, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => {
                    return Err(bad(
                        url,
                        "it names no directory: sftp://[user@]host[:port]/path",
                    ));
                }
            };
            let (user, hostport) = match auth.rsplit_once('@') {
                Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
                Some((_, h)) => (None, h),
                None => (None, auth),
            };
            // [v6]:port, host:port, host
            let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
                match h.split_once(']') {
                    Some((h6, p)) => (h6.to_string(), p.strip_prefix(':')),
                    None => return Err(bad(url, "unclosed [ in the host")),
                }
            } else {
                match hostport.rsplit_once(':') {
                    Some((h, p)) => (h.to_string(), Some(p)),
                    None => (hostport.to_string(), None),
                }
            };
            if host.is_empty() {
                return Err(bad(url, "it names no host"));
            }
            let port = match port {
                None | Some("") => None,
                Some(p) => Some(
                    p.parse::<u16>()
                        .map_err(|_| bad(url, &format!("port {p:?} is not a number")))?,
                ),
            };
            let path = match path.strip_prefix("/~/") {
                Some(rel) => rel.trim_end_matches('/').to_string(),
                None => {
                    let p = path.trim_end_matches('/');
                    if p.is_empty() {
                        "/".to_string()
                    } else {
                        p.to_string()
                    }
                }
            };
            if path.is_empty() {
                return Err(bad(url, "it names no directory"));
            }
            return Ok(RepoUrl::Sftp {
                user,
                host,
                port,
                path,
            });
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (first, others) = first_and_rest(rest);
            let (endpoint, bucket, prefix) = if !s3_endpoint_given && looks_like_host(&first) {
                let (b, p) = first_and_rest(&others);
                (Some(first), b, p)
            } else {
                let (b, p) = (first, others);
                (None, b, p)
            };
            if bucket.is_empty() {
                return Err(bad(
                    url,
                    "it names no bucket: s3://[endpoint/]bucket[/prefix]",
                ));
            }
            return Ok(RepoUrl::S3 {
                endpoint,
                bucket,
                prefix,
            });
        }
        if let Some(rest) = url.strip_prefix("swift://") {
            let (container, prefix) = first_and_rest(rest);
            if container.is_empty() {
                return Err(bad(
                    url,
                    "it names no container: swift://container[/prefix]",
                ));
            }
            return Ok(RepoUrl::Swift { container, prefix });
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(bad(
                url,
                &format!(
                    "unknown scheme {scheme:?}: use a path, file://, sftp://, s3:// or swift://"
                ),
            ));
        }
        Ok(RepoUrl::Local(url.into()))
    }
}

#[cfg(feature = "remote")]
/// Percent-encodes one path for a URL, keeping `/` and the unreserved characters.
pub(crate) fn encode_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme() {
        assert_eq!(
            RepoUrl::parse("sftp://bob@10.0.0.1:2222/srv/backup/", false).unwrap(),
            RepoUrl::Sftp {
                user: Some("bob".into()),
                host: "10.0.0.1".into(),
                port: Some(2222),
                path: "/srv/backup".into()
            }
        );
        assert_eq!(
            RepoUrl::parse("sftp://backup-host/~/repo", false).unwrap(),
            RepoUrl::Sftp {
                user: None,
                host: "backup-host".into(),
                port: None,
                path: "repo".into()
            }
        );
        assert_eq!(
            RepoUrl::parse("sftp://[::1]:22/r", false).unwrap(),
            RepoUrl::Sftp {
                user: None,
                host: "::1".into(),
                port: Some(22),
                path: "/r".into()
            }
        );
        assert_eq!(
            RepoUrl::parse("s3://127.0.0.1:8080/bucket/a/b", false).unwrap(),
            RepoUrl::S3 {
                endpoint: Some("127.0.0.1:8080".into()),
                bucket: "bucket".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(
            RepoUrl::parse("s3://my.bucket/p", true).unwrap(),
            RepoUrl::S3 {
                endpoint: None,
                bucket: "my.bucket".into(),
                prefix: "p".into()
            }
        );
        assert_eq!(
            RepoUrl::parse("swift://backups/cloud1", false).unwrap(),
            RepoUrl::Swift {
                container: "backups".into(),
                prefix: "cloud1".into()
            }
        );
        assert_eq!(
            RepoUrl::parse("/var/backups", false).unwrap(),
            RepoUrl::Local("/var/backups".into())
        );
        for bad in [
            "sftp://host",
            "sftp://host:x/p",
            "s3://",
            "swift://",
            "ftp://h/p",
            "sftp:///p",
        ] {
            assert!(RepoUrl::parse(bad, false).is_err(), "{bad}");
        }
    }

    #[cfg(feature = "remote")]
    #[test]
    fn encodes_paths() {
        assert_eq!(encode_path("a b/c%d"), "a%20b/c%25d");
    }
}
