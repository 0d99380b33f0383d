//! Rule 5 of #4: a full disk is `no_space`, and loses nothing.
//!
//! The test mounts a 1 MiB tmpfs, which needs root. In CI (`CI=true`) not being able to mount
//! is a failure; elsewhere the test says loudly that it skipped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use fsbridge::{WriteCommand, WriteErrorKind, WriteOutcome, Writer};

/// A small tmpfs, unmounted when dropped, also when the test fails.
struct SmallDisk {
    mount_point: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it); `None` when that is not
    /// possible here (not root, no mount permission).
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mount_point = dir.path().join("disk");
        fs::create_dir(&mount_point).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(&mount_point)
            .output();
        match status {
            Ok(output) if output.status.success() => Some(Self {
                mount_point,
                _dir: dir,
            }),
            other => {
                let why = match other {
                    Ok(output) => String::from_utf8_lossy(&output.stderr).into_owned(),
                    Err(error) => error.to_string(),
                };
                assert_ne!(
                    std::env::var("CI").as_deref(),
                    Ok("true"),
                    "CI must run the writer tests as root: cannot mount a tmpfs: {why}"
                );
                eprintln!("SKIPPED: this test needs root to mount a tmpfs: {why}");
                None
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg("--lazy")
            .arg(&self.mount_point)
            .status();
        if !matches!(unmounted, Ok(status) if status.success()) {
            eprintln!(
                "cannot unmount {}: {unmounted:?}",
                self.mount_point.display()
            );
        }
    }
}

fn kind(outcome: &WriteOutcome) -> Option<WriteErrorKind> {
    outcome.error().map(fsbridge::WriteError::kind)
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn full_disk_is_no_space_and_every_file_keeps_its_old_content() {
    let Some(disk) = SmallDisk::mount("1m") else {
        return;
    };
    let root = &disk.mount_point;
    let writer = Writer::new(root);
    let old = vec![b'o'; 600 * 1024];
    fs::write(root.join("kept.bin"), &old).unwrap();

    let overwritten =
        writer.blocking_apply(WriteCommand::overwrite("kept.bin", vec![b'n'; 700 * 1024]));
    let appended = writer.blocking_apply(WriteCommand::append("kept.bin", vec![b'a'; 700 * 1024]));
    let created =
        writer.blocking_apply(WriteCommand::create("new.bin", vec![b'c'; 2 * 1024 * 1024]));
    let appended_new = writer.blocking_apply(WriteCommand::append(
        "new-log.bin",
        vec![b'c'; 2 * 1024 * 1024],
    ));

    for outcome in [&overwritten, &appended, &created, &appended_new] {
        assert_eq!(kind(outcome), Some(WriteErrorKind::NoSpace), "{outcome:?}");
        assert!(outcome.message().unwrap().contains(".bin"));
    }
    assert!(
        fs::read(root.join("kept.bin")).unwrap() == old,
        "the old content was damaged"
    );
    assert_eq!(
        names(root),
        ["kept.bin"],
        "a failed write left something behind"
    );
}
