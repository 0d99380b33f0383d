//! `fsbridge apply` and `fsbridge write` as a user runs them: stdout, stderr and exit code.
//!
//! The permission tests (rule 4 of #4) run the binary as the throw-away user 65534 through
//! `setpriv`, which needs root. In CI (`CI=true`) not being able to is a failure; elsewhere the
//! tests say loudly that they skipped.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const FSBRIDGE: &str = env!("CARGO_BIN_EXE_fsbridge");

/// Runs the binary (through `prefix`, such as `setpriv …`) with `input` on stdin.
fn run_with(prefix: &[&str], args: &[&str], input: &str) -> Output {
    let mut command = match prefix.split_first() {
        Some((program, rest)) => {
            let mut command = Command::new(program);
            command.args(rest).arg(FSBRIDGE);
            command
        }
        None => Command::new(FSBRIDGE),
    };
    let mut child = command
        .args(args)
        .env_remove("FSBRIDGE_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn run(args: &[&str], input: &str) -> Output {
    run_with(&[], args, input)
}

fn results(output: &Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const AS_NOBODY: [&str; 4] = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
];

/// Whether the binary can be run as user 65534 here; fails in CI when it cannot.
fn can_run_as_nobody() -> bool {
    let probe = Command::new(AS_NOBODY[0])
        .args(&AS_NOBODY[1..])
        .arg("true")
        .output();
    let why = match probe {
        Ok(output) if output.status.success() => return true,
        Ok(output) => String::from_utf8_lossy(&output.stderr).into_owned(),
        Err(error) => error.to_string(),
    };
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "CI must run these tests as root with setpriv (util-linux): {why}"
    );
    eprintln!("SKIPPED: cannot run as user 65534 via setpriv: {why}");
    false
}

/// A root that user 65534 can reach: a tempdir is private to its creator.
fn shared_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn results_come_one_per_command_in_order_and_exit_is_zero_when_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let input = [
        r#"{"id":"1","op":"create","path":"notes/a.txt","text":"hello\n"}"#,
        r#"{"id":"2","op":"append","path":"notes/a.txt","text":"more\n"}"#,
        r#"{"id":"3","op":"overwrite","path":"img/p.bin","data":"AAEC"}"#,
        "",
        r#"{"id":"4","op":"mkdir","path":"archive/2026/12"}"#,
        r#"{"id":"5","op":"delete","path":"img/p.bin"}"#,
        r#"{"id":"1","op":"create","path":"notes/a.txt","text":"hello\n"}"#,
    ]
    .join("\n");

    let output = run(&["apply", "--root", root, "--no-fsync"], &input);

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
    let results = results(&output);
    let ids: Vec<_> = results.iter().map(|result| result["id"].clone()).collect();
    assert_eq!(ids, ["1", "2", "3", "4", "5", "1"]);
    assert_eq!(
        results[0],
        serde_json::json!({"id":"1","ok":true,"op":"create","path":"notes/a.txt","size":6,"atomic":true})
    );
    assert_eq!(results[1]["size"], 11);
    assert_eq!(results[5]["duplicate"], true);
    assert_eq!(
        fs::read_to_string(dir.path().join("notes/a.txt")).unwrap(),
        "hello\nmore\n"
    );
    assert!(dir.path().join("archive/2026/12").is_dir());
}

#[test]
fn failed_and_unreadable_commands_are_results_and_make_the_exit_code_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let input = [
        r#"{"id":"9","op":"create","path":"../x","text":"x"}"#,
        "not json",
        r#"{"op":"create","path":"ok.txt","text":"fine"}"#,
        r#"{"id":"b","op":"explode","path":"a"}"#,
    ]
    .join("\n");

    let output = run(&["apply", "--root", root], &input);

    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stderr(&output), "");
    let results = results(&output);
    assert_eq!(results.len(), 4);
    assert_eq!(results[0]["error"]["kind"], "escape");
    assert!(
        results[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("../x")
    );
    assert_eq!(results[1]["error"]["kind"], "invalid");
    assert_eq!(results[1]["line"], 2);
    assert_eq!(results[2]["ok"], true);
    assert_eq!(results[3]["id"], "b");
    assert_eq!(results[3]["error"]["kind"], "invalid");
    assert!(!dir.path().parent().unwrap().join("x").exists());
}

#[test]
fn line_longer_than_the_limit_is_too_large_and_the_next_line_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let long = format!(
        r#"{{"op":"create","path":"big.txt","text":"{}"}}"#,
        "x".repeat(100 * 1024)
    );
    let input = format!(
        "{long}\n{}\n",
        r#"{"op":"create","path":"small.txt","text":"x"}"#
    );

    let output = run(&["apply", "--root", root, "--max-bytes", "1K"], &input);

    assert_eq!(output.status.code(), Some(1));
    let results = results(&output);
    assert_eq!(results[0]["error"]["kind"], "too_large");
    assert_eq!(results[0]["line"], 1);
    assert_eq!(results[1]["ok"], true);
    assert!(!dir.path().join("big.txt").exists());
}

#[test]
fn missing_root_fails_every_command_naming_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("absent");
    let root = root.to_str().unwrap();

    let output = run(&["apply", "--root", root], r#"{"op":"mkdir","path":"a"}"#);

    assert_eq!(output.status.code(), Some(1));
    let results = results(&output);
    assert_eq!(results[0]["error"]["kind"], "not_found");
    assert!(
        results[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains(root)
    );
    assert!(!Path::new(root).exists(), "the root must never be created");
}

#[test]
fn write_applies_one_command_from_text_a_file_or_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let data = dir.path().join("data.bin");
    fs::write(&data, [0_u8, 1, 2]).unwrap();

    let text = run(
        &["write", "--root", root, "create", "a.txt", "--text", "hi"],
        "",
    );
    let file = run(
        &[
            "write",
            "--root",
            root,
            "overwrite",
            "b.bin",
            "--data-file",
            data.to_str().unwrap(),
        ],
        "",
    );
    let stdin = run(&["write", "--root", root, "append", "a.txt"], " there");

    for output in [&text, &file, &stdin] {
        assert_eq!(output.status.code(), Some(0), "{}", stderr(output));
        assert_eq!(results(output)[0]["ok"], true);
    }
    assert_eq!(
        fs::read_to_string(dir.path().join("a.txt")).unwrap(),
        "hi there"
    );
    assert_eq!(fs::read(dir.path().join("b.bin")).unwrap(), [0, 1, 2]);
}

#[test]
fn failed_write_says_why_on_stderr_and_exits_with_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();

    let output = run(&["write", "--root", root, "delete", "missing.txt"], "");

    assert_eq!(output.status.code(), Some(1));
    assert_eq!(results(&output)[0]["error"]["kind"], "not_found");
    assert_eq!(
        stderr(&output),
        "fsbridge: cannot delete missing.txt: it does not exist\n"
    );
}

#[test]
fn write_with_content_for_delete_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();

    let output = run(
        &["write", "--root", root, "delete", "a.txt", "--text", "x"],
        "",
    );

    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    assert!(
        stderr(&output).contains("takes no content"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn read_only_file_is_refused_for_a_user_who_may_not_write_it() {
    if !can_run_as_nobody() {
        return;
    }
    let dir = shared_root();
    let path = dir.path().join("frozen.txt");
    fs::write(&path, "old").unwrap();
    std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534)).unwrap();
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
    let root = dir.path().to_str().unwrap();

    let output = run_with(
        &AS_NOBODY,
        &["apply", "--root", root],
        &[
            r#"{"op":"overwrite","path":"frozen.txt","text":"new"}"#,
            r#"{"op":"append","path":"frozen.txt","text":"new"}"#,
        ]
        .join("\n"),
    );

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    for result in results(&output) {
        assert_eq!(result["error"]["kind"], "permission", "{result}");
        assert!(
            result["error"]["message"]
                .as_str()
                .unwrap()
                .contains("frozen.txt")
        );
    }
    assert_eq!(fs::read_to_string(&path).unwrap(), "old");
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o444
    );
}

#[test]
fn directory_without_room_for_a_temporary_file_gets_an_in_place_overwrite() {
    if !can_run_as_nobody() {
        return;
    }
    // The directory belongs to root (0755): user 65534 may not add a file there, but may
    // write the file it owns.
    let dir = shared_root();
    let path = dir.path().join("own.txt");
    fs::write(&path, "old content").unwrap();
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    let root = dir.path().to_str().unwrap();

    let output = run_with(
        &AS_NOBODY,
        &[
            "write",
            "--root",
            root,
            "overwrite",
            "own.txt",
            "--text",
            "new",
        ],
        "",
    );

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let result = &results(&output)[0];
    assert_eq!(result["atomic"], false, "{result}");
    assert_eq!(result["size"], 3);
    assert_eq!(fs::read_to_string(&path).unwrap(), "new");
    let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn a_field_given_twice_makes_the_line_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let input = [
        r#"{"id":"1","op":"create","path":"safe.txt","path":"other.txt","text":"x"}"#,
        r#"{"id":"2","op":"delete","op":"create","path":"b","text":"z"}"#,
    ]
    .join("\n");

    let output = run(&["apply", "--root", root, "--no-fsync"], &input);

    let results = results(&output);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(results[0]["error"]["kind"], "invalid");
    assert!(
        results[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`path` twice")
    );
    assert!(
        results[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`op` twice")
    );
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing was written"
    );
}

#[test]
fn an_id_reused_for_another_command_is_refused_not_called_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    fs::write(dir.path().join("x.txt"), "keep").unwrap();
    let input = [
        r#"{"id":"k","op":"create","path":"k.txt","text":"1"}"#,
        r#"{"id":"k","op":"delete","path":"x.txt"}"#,
        r#"{"id":"k","op":"create","path":"k.txt","text":"1"}"#,
    ]
    .join("\n");

    let output = run(&["apply", "--root", root, "--no-fsync"], &input);

    let results = results(&output);
    assert_eq!(results[1]["ok"], false);
    assert_eq!(results[1]["error"]["kind"], "invalid");
    assert_eq!(results[2]["duplicate"], true);
    assert_eq!(
        fs::read_to_string(dir.path().join("x.txt")).unwrap(),
        "keep"
    );
}

#[test]
fn absolute_path_inside_a_root_given_with_dot_dot_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("x")).unwrap();
    fs::create_dir_all(dir.path().join("r")).unwrap();
    let root = dir.path().join("x/../r");
    let inside = dir.path().join("r/a.txt");
    let input = format!(
        r#"{{"op":"create","path":"{}","text":"x"}}"#,
        inside.display()
    );

    let output = run(
        &["apply", "--root", root.to_str().unwrap(), "--no-fsync"],
        &input,
    );

    assert_eq!(
        results(&output)[0]["ok"],
        true,
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(inside.exists());
}
