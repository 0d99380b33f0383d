//! Which entries are left out of the tree: `--ignore` globs.
//!
//! An ignored entry is not walked, not watched and not reported, and neither is anything below
//! it, so an ignored `node_modules` or `target` costs nothing. A pattern with a `/` matches the
//! path relative to the target; one without matches the entry's name at any depth, as in
//! `.gitignore`.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::error::WatchError;
use crate::index;

/// A compiled set of ignore patterns.
#[derive(Debug, Clone)]
pub(crate) struct Ignore {
    /// Patterns matched against the whole relative path.
    paths: GlobSet,
    /// Patterns matched against the entry's name.
    names: GlobSet,
}

impl Ignore {
    /// Compiles `patterns`; `None` when there are none.
    pub(crate) fn new(patterns: &[String]) -> Result<Option<Self>, WatchError> {
        if patterns.is_empty() {
            return Ok(None);
        }
        let mut paths = GlobSetBuilder::new();
        let mut names = GlobSetBuilder::new();
        for pattern in patterns {
            let glob = Glob::new(pattern.trim_start_matches('/')).map_err(|error| {
                WatchError::Pattern {
                    pattern: pattern.clone(),
                    message: error.kind().to_string(),
                }
            })?;
            if pattern.contains('/') {
                paths.add(glob);
            } else {
                names.add(glob);
            }
        }
        let build = |builder: GlobSetBuilder| {
            builder.build().map_err(|error| WatchError::Pattern {
                pattern: patterns.join(" "),
                message: error.to_string(),
            })
        };
        Ok(Some(Self {
            paths: build(paths)?,
            names: build(names)?,
        }))
    }

    /// Whether the entry at `rel` (relative to the target) is left out.
    pub(crate) fn ignores(&self, rel: &[u8]) -> bool {
        self.names
            .is_match(Path::new(OsStr::from_bytes(index::name(rel))))
            || self.paths.is_match(Path::new(OsStr::from_bytes(rel)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_at_any_depth_and_paths_from_the_target() {
        let ignore = Ignore::new(&["node_modules".into(), "*.log".into(), "build/*.o".into()])
            .unwrap()
            .unwrap();

        assert!(ignore.ignores(b"node_modules"));
        assert!(ignore.ignores(b"a/b/node_modules"));
        assert!(ignore.ignores(b"deep/x.log"));
        assert!(ignore.ignores(b"build/main.o"));
        assert!(!ignore.ignores(b"src/build/main.o"));
        assert!(!ignore.ignores(b"src/main.rs"));
    }

    #[test]
    fn a_bad_pattern_is_refused_by_name() {
        let error = Ignore::new(&["a[".into()]).unwrap_err();

        assert!(error.to_string().contains("a["), "{error}");
    }
}
