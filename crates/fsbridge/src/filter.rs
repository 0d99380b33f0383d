//! Which entries are left out of the tree: `--ignore` globs and `--gitignore`.
//!
//! An ignored entry is not walked, not watched and not reported, and neither is anything below
//! it, so an ignored `node_modules` or `target` costs nothing. A glob with a `/` matches the
//! path relative to the target; one without matches the entry's name at any depth, as in
//! `.gitignore`.
//!
//! With `--gitignore`, the `.gitignore` files inside the tree count too, read as git reads
//! them (git's other exclude files, and `.gitignore` files above the target, do not): each
//! applies to its directory and below, a deeper file's patterns win over a shallower one's, the
//! last matching pattern in a file wins, `!` re-includes, and a pattern ending in `/` matches
//! only directories. `.git` itself is left out, as git leaves it out. Each directory's
//! `.gitignore` is read the first time an entry in it is looked at, and read again when it
//! changes ([`Ignore::forget_gitignore`]); the matching itself is the `ignore` crate's.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::error::WatchError;
use crate::index;

/// The name of the files `--gitignore` reads.
pub(crate) const GITIGNORE: &[u8] = b".gitignore";

/// What is left out of the tree.
#[derive(Debug)]
pub(crate) struct Ignore {
    globs: Option<Globs>,
    git: Option<GitIgnores>,
}

/// A compiled set of glob patterns.
#[derive(Debug, Clone)]
struct Globs {
    /// Patterns matched against the whole relative path.
    paths: GlobSet,
    /// Patterns matched against the entry's name.
    names: GlobSet,
}

/// The `.gitignore` files of a tree, read as they are needed.
#[derive(Debug)]
struct GitIgnores {
    target: PathBuf,
    /// Each directory looked at so far (relative path): its `.gitignore`, if it has one.
    read: RefCell<HashMap<Vec<u8>, Option<Arc<Gitignore>>>>,
}

impl Ignore {
    /// Compiles `patterns`, and reads `.gitignore` files below `target` when `gitignore` is
    /// set; `None` when nothing is ever ignored.
    pub(crate) fn new(
        target: &Path,
        patterns: &[String],
        gitignore: bool,
    ) -> Result<Option<Self>, WatchError> {
        let globs = Globs::new(patterns)?;
        let git = gitignore.then(|| GitIgnores {
            target: target.to_path_buf(),
            read: RefCell::default(),
        });
        if globs.is_none() && git.is_none() {
            return Ok(None);
        }
        Ok(Some(Self { globs, git }))
    }

    /// Whether the entry at `rel` (relative to the target) is left out; `is_dir` says whether
    /// it is a directory, and is asked only when a pattern needs it.
    pub(crate) fn ignores(&self, rel: &[u8], is_dir: &dyn Fn() -> bool) -> bool {
        self.globs.as_ref().is_some_and(|globs| globs.ignores(rel))
            || self
                .git
                .as_ref()
                .is_some_and(|git| git.ignores(rel, is_dir))
    }

    /// Whether `.gitignore` files are read.
    pub(crate) fn reads_gitignore(&self) -> bool {
        self.git.is_some()
    }

    /// Forgets what the `.gitignore` of the directory `dir` said, so that it is read again.
    pub(crate) fn forget_gitignore(&self, dir: &[u8]) {
        if let Some(git) = &self.git {
            git.read.borrow_mut().remove(dir);
        }
    }

    /// Forgets what the `.gitignore` files of `dir` and every directory below it said: they
    /// were removed or moved away, and another directory may take their place.
    pub(crate) fn forget_gitignores_below(&self, dir: &[u8]) {
        if let Some(git) = &self.git {
            git.read
                .borrow_mut()
                .retain(|read, _| !(read == dir || index::is_below(read, dir)));
        }
    }
}

impl Globs {
    fn new(patterns: &[String]) -> Result<Option<Self>, WatchError> {
        if patterns.is_empty() {
            return Ok(None);
        }
        let mut paths = GlobSetBuilder::new();
        let mut names = GlobSetBuilder::new();
        for pattern in patterns {
            // As in a shell or a `.gitignore`: `*` and `?` stay within one name, `**` crosses.
            let glob = GlobBuilder::new(pattern.trim_start_matches('/'))
                .literal_separator(true)
                .build()
                .map_err(|error| WatchError::Pattern {
                    pattern: pattern.clone(),
                    message: error.kind().to_string(),
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

    fn ignores(&self, rel: &[u8]) -> bool {
        self.names
            .is_match(Path::new(OsStr::from_bytes(index::name(rel))))
            || self.paths.is_match(Path::new(OsStr::from_bytes(rel)))
    }
}

impl GitIgnores {
    fn ignores(&self, rel: &[u8], is_dir: &dyn Fn() -> bool) -> bool {
        if index::name(rel) == b".git" {
            return true;
        }
        let abs = crate::scan::absolute(&self.target, rel);
        let mut is_dir_known = None;
        let mut dir = index::parent(rel);
        // The deepest `.gitignore` with an opinion decides.
        while let Some(current) = dir {
            if let Some(gitignore) = self.of(current) {
                let is_dir = *is_dir_known.get_or_insert_with(is_dir);
                match gitignore.matched(&abs, is_dir) {
                    Match::Ignore(_) => return true,
                    Match::Whitelist(_) => return false,
                    Match::None => {}
                }
            }
            dir = index::parent(current);
        }
        false
    }

    /// The `.gitignore` of the directory `dir`, read now if it was not yet.
    fn of(&self, dir: &[u8]) -> Option<Arc<Gitignore>> {
        if let Some(known) = self.read.borrow().get(dir) {
            return known.clone();
        }
        let dir_abs = crate::scan::absolute(&self.target, dir);
        let file = dir_abs.join(OsStr::from_bytes(GITIGNORE));
        let gitignore = file.is_file().then(|| {
            let mut builder = GitignoreBuilder::new(&dir_abs);
            if let Some(error) = builder.add(&file) {
                tracing::warn!(path = %file.display(), %error, "part of a .gitignore was not understood");
            }
            match builder.build() {
                Ok(gitignore) => Arc::new(gitignore),
                Err(error) => {
                    tracing::warn!(path = %file.display(), %error, "cannot use .gitignore");
                    Arc::new(Gitignore::empty())
                }
            }
        });
        self.read
            .borrow_mut()
            .insert(dir.to_vec(), gitignore.clone());
        gitignore
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_at_any_depth_and_paths_from_the_target() {
        let ignore = Ignore::new(
            Path::new("/nowhere"),
            &[
                "node_modules".into(),
                "*.log".into(),
                "build/*.o".into(),
                "gen/**/*.rs".into(),
            ],
            false,
        )
        .unwrap()
        .unwrap();
        let ignores = |rel: &[u8]| ignore.ignores(rel, &|| false);

        assert!(ignores(b"node_modules"));
        assert!(ignores(b"a/b/node_modules"));
        assert!(ignores(b"deep/x.log"));
        assert!(ignores(b"build/main.o"));
        assert!(!ignores(b"src/build/main.o"));
        assert!(!ignores(b"build/sub/main.o"), "`*` crossed a `/`");
        assert!(ignores(b"gen/a/b/x.rs"));
        assert!(!ignores(b"src/main.rs"));
    }

    #[test]
    fn a_bad_pattern_is_refused_by_name() {
        let error = Ignore::new(Path::new("/"), &["a[".into()], false).unwrap_err();

        assert!(error.to_string().contains("a["), "{error}");
    }

    #[test]
    fn gitignore_files_apply_below_their_directory_deepest_first() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("sub/deeper")).unwrap();
        std::fs::write(root.path().join(".gitignore"), "*.log\ntarget/\n").unwrap();
        std::fs::write(root.path().join("sub/.gitignore"), "!keep.log\n").unwrap();
        let ignore = Ignore::new(root.path(), &[], true).unwrap().unwrap();
        let file = |rel: &[u8]| ignore.ignores(rel, &|| false);
        let dir = |rel: &[u8]| ignore.ignores(rel, &|| true);

        assert!(file(b"a.log"));
        assert!(file(b"sub/deeper/b.log"));
        assert!(!file(b"sub/keep.log"), "re-included below");
        assert!(file(b"keep.log"), "not re-included above");
        assert!(dir(b"sub/target"));
        assert!(!file(b"target"), "a file named like an ignored directory");
        assert!(dir(b".git"));
        assert!(!file(b"src/main.rs"));
    }

    #[test]
    fn a_changed_gitignore_is_read_again_once_forgotten() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join(".gitignore"), "*.tmp\n").unwrap();
        let ignore = Ignore::new(root.path(), &[], true).unwrap().unwrap();
        assert!(ignore.ignores(b"x.tmp", &|| false));

        std::fs::write(root.path().join(".gitignore"), "*.bak\n").unwrap();
        assert!(ignore.ignores(b"x.tmp", &|| false), "still the old rules");
        ignore.forget_gitignore(b"");

        assert!(!ignore.ignores(b"x.tmp", &|| false));
        assert!(ignore.ignores(b"x.bak", &|| false));
    }
}
