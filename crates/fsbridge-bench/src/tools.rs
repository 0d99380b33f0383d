//! Finding the watcher binaries: building fsbridge and notify-raw with cargo, installing
//! `inotifywait` when it is missing.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::args::Args;
use crate::watcher::Tools;

/// Finds or builds every binary the run needs.
///
/// # Errors
///
/// When cargo fails, or `inotifywait` is missing and cannot be installed.
pub(crate) fn prepare(args: &Args) -> anyhow::Result<Tools> {
    let mut bins = Vec::new();
    if args.fsbridge.is_none() {
        bins.push("fsbridge");
    }
    if args.notify_raw.is_none() {
        bins.push("notify-raw");
    }
    if !bins.is_empty() {
        build(&bins)?;
    }
    let built = env::current_exe()
        .context("cannot find this executable")?
        .parent()
        .context("this executable has no directory")?
        .to_path_buf();
    let fsbridge = args
        .fsbridge
        .clone()
        .unwrap_or_else(|| built.join("fsbridge"));
    let notify_raw = args
        .notify_raw
        .clone()
        .unwrap_or_else(|| built.join("notify-raw"));
    for binary in [&fsbridge, &notify_raw] {
        if !binary.is_file() {
            bail!("{} does not exist", binary.display());
        }
    }

    Ok(Tools {
        fsbridge,
        notify_raw,
        inotifywait: inotifywait()?,
    })
}

/// Builds `bins` of the workspace this crate lives in, release profile, like `cargo run` does.
fn build(bins: &[&str]) -> anyhow::Result<()> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut command = Command::new(cargo);
    command.current_dir(&workspace).args(["build", "--release"]);
    for bin in bins {
        command.args(["--bin", bin]);
    }
    eprintln!("building {} (release)", bins.join(", "));
    let status = command.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build of {} failed ({status})", bins.join(", "));
    }
    Ok(())
}

/// The path of `inotifywait`, installing Debian's inotify-tools first when it is missing.
fn inotifywait() -> anyhow::Result<PathBuf> {
    if let Some(found) = on_path("inotifywait") {
        return Ok(found);
    }
    eprintln!("inotifywait is missing: installing inotify-tools with apt-get");
    let status = Command::new("sh")
        .args([
            "-c",
            "apt-get update -qq && apt-get install -y -qq inotify-tools",
        ])
        .status()
        .context("cannot run apt-get")?;
    if !status.success() {
        bail!("cannot install inotify-tools ({status}); install it and run again");
    }
    on_path("inotifywait").context("inotify-tools is installed but inotifywait is not on PATH")
}

/// The first `name` on `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
