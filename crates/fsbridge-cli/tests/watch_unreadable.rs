//! A subdirectory the watcher may not read: a warning, the rest of the tree keeps working, and
//! its contents are reported once it becomes readable. The watcher runs as a throw-away user
//! (`setpriv`), since root reads everything.

use std::fs;
use std::io::{BufRead as _, BufReader, Read as _};
use std::os::unix::fs::{PermissionsExt as _, chown};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const NOBODY: u32 = 65_534;

#[test]
fn unreadable_directory_is_reported_once_readable_and_the_rest_keeps_working() {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.starts_with(b"0\n"));
    if !is_root || Command::new("setpriv").arg("--help").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run as root with setpriv"
        );
        eprintln!("SKIPPED: needs root and setpriv to run the watcher as another user");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let root = dir.path().join("root");
    for sub in ["", "open", "closed"] {
        fs::create_dir_all(root.join(sub)).unwrap();
        chown(root.join(sub), Some(NOBODY), Some(NOBODY)).unwrap();
    }
    fs::write(root.join("closed/inside"), "hidden").unwrap();
    fs::set_permissions(root.join("closed"), fs::Permissions::from_mode(0o000)).unwrap();
    let mut child = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_fsbridge"),
        ])
        .args(["watch", "--json", root.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (sender, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    let wait_for = |needle: &str| loop {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no line with {needle}"));
        if line.contains(needle) {
            return line;
        }
    };

    let ready = wait_for("\"ready\"");
    fs::write(root.join("open/new"), "x").unwrap();
    let open_file = wait_for("open/new");
    fs::set_permissions(root.join("closed"), fs::Permissions::from_mode(0o755)).unwrap();
    let revealed = wait_for("closed/inside");
    child.kill().unwrap();
    child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();

    assert!(ready.contains("\"present\":true"), "{ready}");
    assert!(open_file.contains("\"file_created\""), "{open_file}");
    assert!(revealed.contains("\"file_created\""), "{revealed}");
    assert!(
        stderr.contains("closed"),
        "a warning names the unreadable directory: {stderr}"
    );
}
