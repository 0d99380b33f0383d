//! A description of the machine and the binaries, printed above the figures.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::watcher::Tools;

/// Markdown list items describing where the figures come from.
///
/// `built` says whether this run built fsbridge from the workspace.
pub(crate) fn describe(tools: &Tools, scratch: &Path, built: bool) -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let memory = output("free", &["-h"])
        .lines()
        .find(|line| line.starts_with("Mem:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .unwrap_or("unknown")
        .to_string();
    let queue = fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .map_or_else(|_| "unknown".into(), |value| value.trim().to_string());
    let file_system = output("stat", &["-f", "-c", "%T", &scratch.to_string_lossy()]);
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let workspace = workspace.to_string_lossy();
    let commit = output("git", &["-C", &workspace, "rev-parse", "--short", "HEAD"]);
    let dirty = output(
        "git",
        &[
            "-C",
            &workspace,
            "status",
            "--porcelain",
            "crates/fsbridge",
            "crates/fsbridge-cli",
        ],
    );

    let mut text = String::new();
    let _ = writeln!(text, "- CPU: {cpu}, `nproc` = {}", output("nproc", &[]));
    let _ = writeln!(text, "- memory (`free -h`): {memory}");
    let _ = writeln!(text, "- kernel (`uname -r`): {}", output("uname", &["-r"]));
    let _ = writeln!(text, "- `fs.inotify.max_queued_events`: {queue}");
    let _ = writeln!(
        text,
        "- scratch file system: {file_system} (warm page cache)"
    );
    if built {
        let _ = writeln!(
            text,
            "- fsbridge: built by this run from the workspace at {commit}{}",
            if dirty.is_empty() {
                ""
            } else {
                " with uncommitted changes in crates/fsbridge*"
            }
        );
    } else {
        let _ = writeln!(
            text,
            "- fsbridge: `{}`, given with `--fsbridge` (the workspace is at {commit})",
            tools.fsbridge.display()
        );
    }
    let _ = writeln!(
        text,
        "- inotifywait: {}",
        output(&tools.inotifywait.to_string_lossy(), &["-h"])
            .lines()
            .next()
            .unwrap_or("unknown")
    );
    text
}

/// The trimmed stdout of a command, or an empty string when it fails.
fn output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .unwrap_or_default()
}
