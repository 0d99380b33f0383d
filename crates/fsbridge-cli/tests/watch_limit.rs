//! The inotify watch limit reached: one warning naming the sysctl, and the directories past the
//! limit polled, so the whole tree stays covered. Runs alone (see `.config/nextest.toml`): it
//! lowers a limit of the whole machine, and puts it back even when it fails.

use std::fs;
use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MAX_USER_WATCHES: &str = "/proc/sys/fs/inotify/max_user_watches";

/// Sets a sysctl while it lives; puts the old value back when dropped.
struct Sysctl {
    path: &'static str,
    old: String,
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        if let Err(error) = fs::write(self.path, self.old.trim()) {
            eprintln!("could not restore {}: {error}", self.path);
        }
    }
}

/// The inotify watches held by every process now, from `/proc/*/fdinfo`.
fn watches_in_use() -> usize {
    let mut count = 0;
    for process in fs::read_dir("/proc").into_iter().flatten().flatten() {
        for descriptor in fs::read_dir(process.path().join("fdinfo"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(info) = fs::read_to_string(descriptor.path()) {
                count += info
                    .lines()
                    .filter(|line| line.starts_with("inotify wd:"))
                    .count();
            }
        }
    }
    count
}

#[test]
fn directories_past_the_watch_limit_are_polled_after_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    for sub in 0..40 {
        fs::create_dir(dir.path().join(format!("d{sub}"))).unwrap();
    }
    let old = fs::read_to_string(MAX_USER_WATCHES).unwrap();
    let limit = watches_in_use() + 10;
    if let Err(error) = fs::write(MAX_USER_WATCHES, limit.to_string()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to lower {MAX_USER_WATCHES}: {error}"
        );
        eprintln!(
            "SKIPPED: cannot lower {MAX_USER_WATCHES} ({error}); run as root to test the watch limit"
        );
        return;
    }
    let lowered = Sysctl {
        path: MAX_USER_WATCHES,
        old,
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_fsbridge"))
        .args(["watch", "--json", dir.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines.next().unwrap().unwrap();

    for sub in 0..40 {
        fs::write(dir.path().join(format!("d{sub}/f")), "x").unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut created = 0;
    while created < 40 && Instant::now() < deadline {
        let line = lines.next().unwrap().unwrap();
        if line.contains("\"file_created\"") {
            created += 1;
        }
    }
    drop(lowered);
    child.kill().unwrap();
    child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();

    assert!(ready.contains("\"ready\""), "{ready}");
    assert_eq!(created, 40, "every directory is covered, watched or polled");
    assert_eq!(
        stderr.matches("max_user_watches").count(),
        1,
        "one warning: {stderr}"
    );
}
