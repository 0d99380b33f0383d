//! `fsbridge watch` as a user runs it: the real binary, real directories, real signals.

use std::fs;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(20);

/// A running `fsbridge watch` with its stdout read line by line on a thread.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fsbridge"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = read_lines(child.stdout.take().unwrap());
        Self { child, lines }
    }

    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(DEADLINE)
            .expect("a line within the deadline")
    }

    fn next_json(&self) -> serde_json::Value {
        let line = self.next_line();
        serde_json::from_str(&line).unwrap_or_else(|error| panic!("not JSON: {line:?}: {error}"))
    }

    /// Lines until one satisfies `done`, as JSON.
    fn until(&self, done: impl Fn(&serde_json::Value) -> bool) -> Vec<serde_json::Value> {
        let mut taken = Vec::new();
        loop {
            let value = self.next_json();
            let finished = done(&value);
            taken.push(value);
            if finished {
                return taken;
            }
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit; returns the code and everything printed on stderr.
    fn finish(mut self) -> (Option<i32>, String) {
        let deadline = std::time::Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "fsbridge did not exit"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (status.code(), stderr)
    }
}

fn read_lines(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    receiver
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn missing_target_without_kind_exits_2_and_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("not/here");

    let output = Command::new(env!("CARGO_BIN_EXE_fsbridge"))
        .args(["watch", arg(&missing)])
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains(arg(&missing)), "{stderr}");
    assert!(stderr.contains("--dir or --file"), "{stderr}");
}

#[test]
fn bad_duration_is_a_usage_error_naming_the_value() {
    let dir = tempfile::tempdir().unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_fsbridge"))
        .args(["watch", arg(dir.path()), "--settle", "10parsecs"])
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("10parsecs"));
}

#[test]
fn json_lines_start_with_ready_and_sigterm_ends_with_0() {
    let dir = tempfile::tempdir().unwrap();
    let running = Running::start(&["watch", "--json", arg(dir.path())]);

    let ready = running.next_json();
    fs::create_dir(dir.path().join("sub")).unwrap();
    // Written elsewhere and renamed in, so that it cannot be seen half written.
    let staged = tempfile::NamedTempFile::new_in(std::env::temp_dir()).unwrap();
    fs::write(staged.path(), "hello").unwrap();
    staged.persist(dir.path().join("sub/a.txt")).unwrap();
    let events = running.until(|value| value["event"] == "file_created");
    running.signal("TERM");
    let (code, stderr) = running.finish();

    assert_eq!(ready["event"], "ready");
    assert_eq!(ready["path"], arg(dir.path()));
    assert_eq!(ready["kind"], "dir");
    assert_eq!(ready["present"], true);
    assert!(ready["time"].as_f64().unwrap() > 1.7e9);
    assert_eq!(events[0]["event"], "dir_created");
    assert_eq!(events[1]["path"], arg(&dir.path().join("sub/a.txt")));
    assert_eq!(events[1]["size"], 5);
    assert_eq!(code, Some(0));
    assert_eq!(stderr, "");
}

#[test]
fn ctrl_c_ends_with_130() {
    let dir = tempfile::tempdir().unwrap();
    let running = Running::start(&["watch", "--json", arg(dir.path())]);

    running.next_json();
    running.signal("INT");
    let (code, stderr) = running.finish();

    assert_eq!(code, Some(130));
    assert_eq!(stderr, "");
}

#[test]
fn initial_reports_what_is_there_after_ready() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("d")).unwrap();
    fs::write(dir.path().join("d/f"), "abc").unwrap();
    let running = Running::start(&["watch", "--json", "--initial", arg(dir.path())]);

    let lines: Vec<serde_json::Value> = (0..3).map(|_| running.next_json()).collect();
    running.signal("TERM");
    running.finish();

    let names: Vec<&str> = lines
        .iter()
        .map(|line| line["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ready", "dir_created", "file_created"]);
    assert_eq!(lines[2]["size"], 3);
}

#[test]
fn raw_passes_backend_events_through() {
    let dir = tempfile::tempdir().unwrap();
    let running = Running::start(&["watch", "--json", "--raw", arg(dir.path())]);

    running.next_json();
    fs::write(dir.path().join("r"), "x").unwrap();
    let raw = running.until(|value| value["event"] == "raw" && value["kind"] == "create.file");
    running.signal("TERM");
    running.finish();

    let last = raw.last().unwrap();
    assert_eq!(last["paths"][0], arg(&dir.path().join("r")));
}

#[test]
fn closed_stdout_ends_quietly_with_0_without_waiting_for_an_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fsbridge"))
        .args(["watch", "--json", arg(dir.path())])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut ready = String::new();
    stdout.read_line(&mut ready).unwrap();

    // No event follows: the watch must notice the closed pipe by itself, as under `| head -1`.
    drop(stdout);
    let running = Running {
        child,
        lines: mpsc::channel().1,
    };
    let (code, stderr) = running.finish();

    assert!(ready.contains("\"ready\""));
    assert_eq!(code, Some(0));
    assert_eq!(stderr, "");
}

#[test]
fn human_output_escapes_control_characters_in_names() {
    let dir = tempfile::tempdir().unwrap();
    let running = Running::start(&["watch", arg(dir.path())]);

    let ready = running.next_line();
    fs::write(dir.path().join("evil\nname"), "x").unwrap();
    let line = running.next_line();
    running.signal("TERM");
    running.finish();

    assert!(ready.contains("ready"), "{ready}");
    assert!(line.contains("file_created"), "{line}");
    assert!(line.contains("evil\\nname"), "{line}");
}

#[test]
fn file_target_that_does_not_exist_yet_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("later/app.log");
    let running = Running::start(&["watch", "--json", "--file", arg(&target)]);

    let ready = running.next_json();
    fs::create_dir(dir.path().join("later")).unwrap();
    fs::write(&target, "line\n").unwrap();
    let appeared = running.until(|value| value["event"] == "target_appeared");
    running.signal("TERM");
    running.finish();

    assert_eq!(ready["present"], false);
    assert_eq!(ready["kind"], "file");
    assert_eq!(appeared.last().unwrap()["kind"], "file");
}

#[test]
fn target_of_the_other_kind_is_waited_for_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    fs::write(&file, "x").unwrap();
    let running = Running::start(&["watch", "--json", "--dir", arg(&file)]);

    let ready = running.next_json();
    fs::remove_file(&file).unwrap();
    fs::create_dir(&file).unwrap();
    let appeared = running.until(|value| value["event"] == "target_appeared");
    running.signal("TERM");
    let (_, stderr) = running.finish();

    assert_eq!(ready["present"], false);
    assert_eq!(appeared.last().unwrap()["kind"], "dir");
    assert!(
        stderr.contains("is a file; waiting for a directory"),
        "{stderr}"
    );
}

#[test]
fn ready_of_a_file_target_carries_its_size_and_initial_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.log");
    fs::write(&file, "12345").unwrap();
    let running = Running::start(&["watch", "--json", "--initial", arg(&file)]);

    let ready = running.next_json();
    fs::write(dir.path().join("app.log"), "123456").unwrap();
    let next = running.next_json();
    running.signal("TERM");
    running.finish();

    assert_eq!(ready["kind"], "file");
    assert_eq!(ready["size"], 5);
    assert_eq!(next["event"], "file_updated", "{next}");
}

#[test]
fn fatal_error_is_printed_once_without_colour() {
    let dir = tempfile::tempdir().unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_fsbridge"))
        .args(["watch", arg(&dir.path().join("missing"))])
        .output()
        .unwrap();

    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("fsbridge: "), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
}

#[test]
fn poll_interval_of_zero_is_refused() {
    let dir = tempfile::tempdir().unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_fsbridge"))
        .args(["watch", arg(dir.path()), "--poll", "0"])
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("too short to poll"));
}

#[test]
fn appended_content_of_a_log_as_a_bot_would_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    fs::write(&log, "old line\n").unwrap();
    let running = Running::start(&[
        "watch",
        "--json",
        "--content",
        "appended",
        "--max-content",
        "64K",
        arg(&log),
    ]);

    running.next_json();
    fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(b"new line\n")
        .unwrap();
    let updated = running.until(|value| value["event"] == "file_updated");
    running.signal("TERM");
    running.finish();

    let last = updated.last().unwrap();
    assert_eq!(last["content_mode"], "appended");
    assert_eq!(last["encoding"], "text");
    assert_eq!(last["offset"], 9);
    assert_eq!(last["content"], "new line\n");
}

#[test]
fn bad_ignore_pattern_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_fsbridge"))
        .args(["watch", arg(dir.path()), "--ignore", "a["])
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid ignore pattern \"a[\""), "{stderr}");
}

#[test]
fn gitignore_leaves_out_what_the_trees_gitignore_ignores() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(".gitignore"), "*.tmp\n").unwrap();
    let running = Running::start(&["watch", "--json", "--gitignore", arg(dir.path())]);
    running.next_json();

    fs::write(dir.path().join("scratch.tmp"), "x").unwrap();
    fs::create_dir(dir.path().join(".git")).unwrap();
    fs::write(dir.path().join("kept.txt"), "x").unwrap();
    let first = running.next_json();
    running.signal("TERM");
    running.finish();

    assert_eq!(first["event"], "file_created");
    assert_eq!(first["path"], arg(&dir.path().join("kept.txt")));
}

#[test]
fn attributes_reports_chmod_with_mode_and_owner() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    let sub = dir.path().join("sub");
    fs::write(&file, "hello").unwrap();
    fs::create_dir(&sub).unwrap();
    let running = Running::start(&["watch", "--json", "--attributes", arg(dir.path())]);

    running.next_json();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    let file_line = running.next_json();
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o750)).unwrap();
    let dir_line = running.next_json();
    running.signal("TERM");
    let (code, stderr) = running.finish();

    let owner = fs::metadata(&file).unwrap();
    assert_eq!(file_line["event"], "file_updated");
    assert_eq!(file_line["path"], arg(&file));
    assert_eq!(file_line["size"], 5);
    assert_eq!(file_line["change"], "attributes");
    assert_eq!(file_line["mode"], 0o600);
    assert_eq!(file_line["uid"], owner.uid());
    assert_eq!(file_line["gid"], owner.gid());
    assert_eq!(dir_line["event"], "dir_updated");
    assert_eq!(dir_line["path"], arg(&sub));
    assert_eq!(dir_line["change"], "attributes");
    assert_eq!(dir_line["mode"], 0o750);
    assert_eq!(code, Some(0));
    assert_eq!(stderr, "");
}
