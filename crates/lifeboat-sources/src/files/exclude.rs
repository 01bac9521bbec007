//! Exclude patterns: globs with gitignore-like anchoring.

use globset::{Candidate, GlobBuilder, GlobSet, GlobSetBuilder};
use std::io;
use std::path::{Path, PathBuf};

/// Why the exclude options of an [`FsSource`](super::FsSource) cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ExcludeError {
    #[error("bad exclude pattern {pattern:?}: {reason}")]
    Pattern { pattern: String, reason: String },
    #[error("cannot read exclude file {}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Globs split by what they are matched against, and whether they apply to directories only.
struct Builders {
    names: GlobSetBuilder,
    names_dirs: GlobSetBuilder,
    paths: GlobSetBuilder,
    paths_dirs: GlobSetBuilder,
}

pub(crate) struct Excludes {
    names: GlobSet,
    names_dirs: GlobSet,
    paths: GlobSet,
    paths_dirs: GlobSet,
}

impl Excludes {
    /// Compiles `patterns` and the patterns in `files` (one a line; blank lines and lines
    /// starting with `#` are ignored).
    pub(crate) fn new(patterns: &[String], files: &[PathBuf]) -> Result<Self, ExcludeError> {
        let mut b = Builders {
            names: GlobSetBuilder::new(),
            names_dirs: GlobSetBuilder::new(),
            paths: GlobSetBuilder::new(),
            paths_dirs: GlobSetBuilder::new(),
        };
        for p in patterns {
            add(&mut b, p)?;
        }
        for path in files {
            let text = std::fs::read_to_string(path).map_err(|source| ExcludeError::File {
                path: path.clone(),
                source,
            })?;
            for line in text.lines().map(str::trim) {
                if !line.starts_with('#') {
                    add(&mut b, line)?;
                }
            }
        }
        let build = |set: GlobSetBuilder| {
            set.build().map_err(|e| ExcludeError::Pattern {
                pattern: "(all patterns together)".into(),
                reason: e.to_string(),
            })
        };
        Ok(Excludes {
            names: build(b.names)?,
            names_dirs: build(b.names_dirs)?,
            paths: build(b.paths)?,
            paths_dirs: build(b.paths_dirs)?,
        })
    }

    /// True when some pattern looks at whole paths, which must then be absolute.
    pub(crate) fn has_path_patterns(&self) -> bool {
        !(self.paths.is_empty() && self.paths_dirs.is_empty())
    }

    /// Whether `path` (absolute when [`has_path_patterns`](Self::has_path_patterns)) is excluded.
    pub(crate) fn matches(&self, path: &Path, is_dir: bool) -> bool {
        if let Some(name) = path.file_name() {
            let c = Candidate::new(name);
            if self.names.is_match_candidate(&c)
                || (is_dir && self.names_dirs.is_match_candidate(&c))
            {
                return true;
            }
        }
        if self.has_path_patterns() {
            let c = Candidate::new(path);
            return self.paths.is_match_candidate(&c)
                || (is_dir && self.paths_dirs.is_match_candidate(&c));
        }
        false
    }
}

/// Adds one pattern. Without `/` it matches a name at any depth; with a leading `/` the whole
/// absolute path; with `/` elsewhere a path suffix at any depth (there is no `.gitignore`
/// directory to anchor it to). A trailing `/` limits it to directories.
fn add(b: &mut Builders, pattern: &str) -> Result<(), ExcludeError> {
    let bad = |reason: String| ExcludeError::Pattern {
        pattern: pattern.to_string(),
        reason,
    };
    if pattern.is_empty() {
        return Ok(());
    }
    // gitignore would re-include here; silently excluding instead would surprise.
    if pattern.starts_with('!') {
        return Err(bad(
            "negation ('!') is not supported; write '\\!' for a literal '!'".into(),
        ));
    }
    let (glob, dirs_only) = match pattern.strip_suffix('/') {
        Some(p) if !p.is_empty() => (p, true),
        _ => (pattern, false),
    };
    let (glob, whole_path) = if glob.starts_with('/') || glob.starts_with("**/") {
        (glob.to_string(), true)
    } else if glob.contains('/') {
        (format!("**/{glob}"), true)
    } else {
        (glob.to_string(), false)
    };
    let glob = GlobBuilder::new(&glob)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| bad(e.kind().to_string()))?;
    let set = match (whole_path, dirs_only) {
        (false, false) => &mut b.names,
        (false, true) => &mut b.names_dirs,
        (true, false) => &mut b.paths,
        (true, true) => &mut b.paths_dirs,
    };
    set.add(glob);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    fn ex(patterns: &[&str]) -> Excludes {
        let p: Vec<String> = patterns.iter().map(|s| s.to_string()).collect();
        Excludes::new(&p, &[]).unwrap()
    }

    #[test]
    fn names_match_at_any_depth_and_stop_at_slash() {
        let e = ex(&["*.tmp", "cache"]);
        assert!(e.matches(Path::new("/a/b/x.tmp"), false));
        assert!(e.matches(Path::new("/x.tmp"), false));
        assert!(e.matches(Path::new("/a/cache"), true));
        assert!(!e.matches(Path::new("/a/cache.d"), true));
        assert!(!e.matches(Path::new("/a.tmp/b"), false));
        assert!(!e.has_path_patterns());
    }

    #[test]
    fn slashes_anchor_or_match_suffixes() {
        let e = ex(&["/home/*/.cache", "build/out", "/var/**/*.log"]);
        assert!(e.has_path_patterns());
        assert!(e.matches(Path::new("/home/u/.cache"), true));
        assert!(!e.matches(Path::new("/home/u/v/.cache"), true));
        assert!(!e.matches(Path::new("/x/home/u/.cache"), true));
        assert!(e.matches(Path::new("/src/build/out"), true));
        assert!(e.matches(Path::new("/build/out"), true));
        assert!(!e.matches(Path::new("/src/build/outer"), true));
        assert!(e.matches(Path::new("/var/a/b/c.log"), false));
    }

    #[test]
    fn trailing_slash_means_directories_only() {
        let e = ex(&["logs/", "/srv/tmp/"]);
        assert!(e.matches(Path::new("/a/logs"), true));
        assert!(!e.matches(Path::new("/a/logs"), false));
        assert!(e.matches(Path::new("/srv/tmp"), true));
        assert!(!e.matches(Path::new("/srv/tmp"), false));
    }

    #[test]
    fn non_utf8_names() {
        let e = ex(&["caf?"]);
        assert!(e.matches(Path::new(OsStr::from_bytes(b"/d/caf\xe9")), false));
    }

    #[test]
    fn bad_patterns_are_refused_clearly() {
        for p in ["a[", "!keep", "{a,b"] {
            let err = Excludes::new(&[p.to_string()], &[]).err().unwrap();
            assert!(
                matches!(&err, ExcludeError::Pattern { pattern, .. } if pattern == p),
                "{err}"
            );
            assert!(err.to_string().contains(p), "{err}");
        }
        assert!(Excludes::new(&["\\!literal".into()], &[]).is_ok());
    }

    #[test]
    fn exclude_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ex");
        std::fs::write(&f, "# comment\n\n  *.o  \r\n/abs/path\n").unwrap();
        let e = Excludes::new(&[], std::slice::from_ref(&f)).unwrap();
        assert!(e.matches(Path::new("/x/y.o"), false));
        assert!(e.matches(Path::new("/abs/path"), false));
        assert!(!e.matches(Path::new("/x/# comment"), false));
        let missing = dir.path().join("missing");
        let err = Excludes::new(&[], std::slice::from_ref(&missing))
            .err()
            .unwrap();
        assert!(matches!(&err, ExcludeError::File { path, .. } if *path == missing));
    }
}
