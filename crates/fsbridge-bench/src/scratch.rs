//! The scratch directory the scenarios build their trees in, removed when the run ends.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// A private directory under a local temporary directory; removed, with everything in it, on
/// drop.
#[derive(Debug)]
pub(crate) struct Scratch {
    base: PathBuf,
}

impl Scratch {
    /// Creates `fsbridge-bench-PID` under `parent`.
    ///
    /// # Errors
    ///
    /// When the directory cannot be created.
    pub(crate) fn create(parent: &Path) -> anyhow::Result<Self> {
        let base = parent.join(format!("fsbridge-bench-{}", std::process::id()));
        fs::create_dir_all(&base).with_context(|| format!("cannot create {}", base.display()))?;
        // Watchers print canonical paths; expected paths must be spelled the same way.
        let base = base
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", base.display()))?;
        Ok(Self { base })
    }

    /// The scratch directory itself.
    pub(crate) fn path(&self) -> &Path {
        &self.base
    }

    /// An empty directory `name` in the scratch directory, emptied first if it exists.
    ///
    /// # Errors
    ///
    /// When it cannot be removed or created.
    pub(crate) fn fresh(&self, name: &str) -> anyhow::Result<PathBuf> {
        let dir = self.base.join(name);
        remove(&dir)?;
        fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

/// Removes `dir` and everything in it; a missing `dir` is fine.
///
/// # Errors
///
/// When something in it cannot be removed.
pub(crate) fn remove(dir: &Path) -> anyhow::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(error).with_context(|| format!("cannot remove {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// `path` as the UTF-8 text watchers print for it (scratch paths are ASCII).
pub(crate) fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
