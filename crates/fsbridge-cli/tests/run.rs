//! `fsbridge run --config FILE` as a bot runs it: the real binary, real directories, events read
//! from its stdout and commands written to its stdin.

use std::fs;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(20);

struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(config: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fsbridge"))
            .arg("run")
            .arg("--config")
            .arg(config)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take();
        Self {
            child,
            stdin,
            lines,
        }
    }

    fn next(&self) -> Value {
        let line = self
            .lines
            .recv_timeout(DEADLINE)
            .expect("a line within the deadline");
        serde_json::from_str(&line).unwrap_or_else(|error| panic!("not JSON: {line:?}: {error}"))
    }

    /// Lines until one satisfies `done`.
    fn until(&self, done: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut taken = Vec::new();
        loop {
            let value = self.next();
            let finished = done(&value);
            taken.push(value);
            if finished {
                return taken;
            }
        }
    }

    fn send(&mut self, command: &Value) {
        self.send_line(&command.to_string());
    }

    fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Sends a command and returns its answer, skipping events that come first.
    fn ask(&mut self, command: &Value) -> Value {
        self.send(command);
        self.until(|line| line.get("ok").is_some()).pop().unwrap()
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_event(line: &Value, name: &str, path: &Path) -> bool {
    line["event"] == name && line["path"] == path.to_str().unwrap()
}

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let file = dir.join("fsbridge.toml");
    fs::write(&file, text).unwrap();
    file
}

#[test]
fn events_are_tagged_and_commands_routed_by_config_name() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("logs")).unwrap();
    fs::create_dir_all(dir.path().join("archive")).unwrap();
    let config = write_config(
        dir.path(),
        "[io.logs.input]\npath = \"logs\"\ncontent = \"appended\"\n\n[io.archive.output]\nroot = \"archive\"\nfsync = false\n",
    );
    let mut run = Running::start(&config, &[]);
    let ready = run.next();
    assert_eq!(ready["config"], "logs");
    assert_eq!(ready["event"], "ready");

    let log = dir.path().join("logs/app.log");
    fs::write(&log, "one\n").unwrap();
    let created = run.until(|line| line["path"] == log.to_str().unwrap());
    let created = created.last().unwrap();
    assert_eq!(created["config"], "logs");
    assert_eq!(created["content"], "one\n");

    let answer = run.ask(&json!({
        "config": "archive", "id": "m1", "op": "append",
        "path": "chat/2026-12-03.txt", "text": "hello\n",
    }));
    assert_eq!(answer["config"], "archive");
    assert_eq!(answer["id"], "m1");
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(
        fs::read_to_string(dir.path().join("archive/chat/2026-12-03.txt")).unwrap(),
        "hello\n"
    );

    // The input-only config has no output; an unknown config is named.
    let refused = run.ask(&json!({"config": "logs", "op": "create", "path": "x", "text": "x"}));
    assert_eq!(refused["ok"], false);
    assert_eq!(refused["error"]["kind"], "no_output", "{refused}");
    let unknown = run.ask(&json!({"config": "nope", "op": "create", "path": "x", "text": "x"}));
    assert_eq!(unknown["error"]["kind"], "invalid");
    assert_eq!(unknown["config"], "nope");
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"nope\"")
    );
    run.stop();
}

#[test]
fn control_commands_set_change_and_remove_inputs_and_outputs() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["one", "two", "out"] {
        fs::create_dir(dir.path().join(sub)).unwrap();
    }
    let config = write_config(dir.path(), "");
    let mut run = Running::start(&config, &[]);
    let one = dir.path().join("one");
    let two = dir.path().join("two");

    let answer = run.ask(&json!({"config": "bot", "op": "watch", "path": one, "kind": "dir"}));
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["path"], one.to_str().unwrap());
    run.until(|line| is_event(line, "ready", &one));
    fs::write(one.join("a"), "a").unwrap();
    run.until(|line| is_event(line, "file_created", &one.join("a")));

    // A new input replaces the old one: only the second directory is reported now.
    let answer = run.ask(&json!({"config": "bot", "op": "watch", "path": two}));
    assert_eq!(answer["ok"], true, "{answer}");
    run.until(|line| is_event(line, "ready", &two));
    fs::write(one.join("not-reported"), "x").unwrap();
    fs::write(two.join("b"), "b").unwrap();
    let line = run.next();
    assert!(is_event(&line, "file_created", &two.join("b")), "{line}");

    let answer = run.ask(&json!({"config": "bot", "op": "unwatch"}));
    assert_eq!(answer["ok"], true, "{answer}");

    // Output: set, used, removed.
    let answer = run.ask(&json!({"config": "bot", "op": "output", "root": dir.path().join("out")}));
    assert_eq!(answer["ok"], true, "{answer}");
    let written = run.ask(&json!({"config": "bot", "op": "create", "path": "n.txt", "text": "n"}));
    assert_eq!(written["ok"], true, "{written}");
    assert!(dir.path().join("out/n.txt").exists());
    let answer = run.ask(&json!({"config": "bot", "op": "output", "root": null}));
    assert_eq!(answer["ok"], true, "{answer}");
    let refused = run.ask(&json!({"config": "bot", "op": "create", "path": "m.txt", "text": "m"}));
    assert_eq!(refused["error"]["kind"], "no_output", "{refused}");

    // A bad control command is answered, and the run goes on.
    let bad = run.ask(&json!({"config": "bot", "op": "watch", "path": one, "kindd": "dir"}));
    assert_eq!(bad["ok"], false);
    assert!(
        bad["error"]["message"].as_str().unwrap().contains("kindd"),
        "{bad}"
    );
    let unknown = run.ask(&json!({"config": "bot", "op": "frobnicate"}));
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .contains("watch, unwatch or output"),
        "{unknown}"
    );
    let missing =
        run.ask(&json!({"config": "bot", "op": "watch", "path": dir.path().join("nowhere")}));
    assert_eq!(missing["ok"], false);
    assert!(
        missing["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{missing}"
    );
    // And the watch after the unwatch reports nothing of the second directory meanwhile.
    fs::write(two.join("while-unwatched"), "x").unwrap();
    let answer = run.ask(&json!({"config": "bot", "op": "watch", "path": one}));
    assert_eq!(answer["ok"], true);
    let line = run.next();
    assert!(is_event(&line, "ready", &one), "{line}");
    run.stop();
}

#[test]
fn a_wrong_config_file_is_refused_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[io.logs.input]\npath = \"/tmp\"\npaht = \"/x\"\n",
            ":3:1:",
            "paht",
        ),
        (
            "[io.logs.input]\nkind = \"dir\"\n",
            ":1:1:",
            "missing field `path`",
        ),
        (
            "[io.logs.input]\npath = \"/tmp\"\n[io.logs.input]\npath = \"/var\"\n",
            ":3:",
            "duplicate",
        ),
        (
            "[io.logs.input]\npath = \"/tmp\"\ncontent = \"some\"\n",
            ":3:1: io.logs.input.content:",
            "`some`",
        ),
        (
            "[io.logs.output]\nroot = \"fsbridge.toml\"\n",
            ":2:1: io.logs.output.root:",
            "is not a directory",
        ),
    ];
    for (text, at, what) in cases {
        let config = write_config(dir.path(), text);

        let output = Command::new(env!("CARGO_BIN_EXE_fsbridge"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .output()
            .unwrap();

        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{text}: {stderr}");
        assert!(
            stderr.contains(&format!("{}{at}", config.display())),
            "{text}: {stderr}"
        );
        assert!(stderr.contains(what), "{text}: {stderr}");
        assert!(output.stdout.is_empty());
    }
}

/// The test is the bot: every event it hears, it answers by appending a line to a log inside
/// the watched tree. Were fsbridge to report its own appends, each answer would cause another.
#[test]
fn a_bot_answering_every_event_into_its_watched_input_does_not_loop() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("in/answers")).unwrap();
    let config = write_config(
        dir.path(),
        "[io.bot.input]\npath = \"in\"\n[io.bot.output]\nroot = \"in/answers\"\nfsync = false\n",
    );
    let mut run = Running::start(&config, &[]);
    run.until(|line| line["event"] == "ready");
    let inbox = dir.path().join("in");

    let mut answered = 0;
    for name in ["first", "second", "third"] {
        fs::write(inbox.join(name), name).unwrap();
        // The next event heard is this file's, never one of the answers.
        let heard = run.until(|line| line.get("event").is_some());
        let event = heard.last().unwrap();
        assert_eq!(event["path"], inbox.join(name).to_str().unwrap(), "{event}");
        for _ in 0..3 {
            let line = format!("{} {}\n", event["event"], event["path"]);
            let answer =
                run.ask(&json!({"config": "bot", "op": "append", "path": "log.txt", "text": line}));
            assert_eq!(answer["ok"], true, "{answer}");
            answered += 1;
        }
    }
    let log = fs::read_to_string(inbox.join("answers/log.txt")).unwrap();
    assert_eq!(log.lines().count(), answered);
    run.stop();
}

#[test]
fn with_self_events_mark_the_bots_own_writes_are_reported_as_its_own() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("in")).unwrap();
    let config = write_config(
        dir.path(),
        "[io.bot.input]\npath = \"in\"\n[io.bot.output]\nroot = \"in\"\nfsync = false\n",
    );
    let mut run = Running::start(&config, &["--self-events", "mark"]);
    run.until(|line| line["event"] == "ready");
    let inbox = dir.path().join("in");

    let answer =
        run.ask(&json!({"config": "bot", "op": "create", "path": "ours.txt", "text": "x"}));
    assert_eq!(answer["ok"], true, "{answer}");
    let ours = run.until(|line| line["path"] == inbox.join("ours.txt").to_str().unwrap());
    assert_eq!(ours.last().unwrap()["origin"], "self", "{ours:?}");
    fs::write(inbox.join("theirs.txt"), "y").unwrap();
    let theirs = run.until(|line| line["path"] == inbox.join("theirs.txt").to_str().unwrap());
    assert!(theirs.last().unwrap().get("origin").is_none(), "{theirs:?}");
    run.stop();
}

#[test]
fn sigterm_ends_a_run_with_success_and_stdin_closing_does_not() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("in")).unwrap();
    let config = write_config(dir.path(), "[io.a.input]\npath = \"in\"\n");
    let mut run = Running::start(&config, &[]);
    run.until(|line| line["event"] == "ready");

    // No more commands: the input still reports.
    drop(run.stdin.take());
    fs::write(dir.path().join("in/after"), "x").unwrap();
    run.until(|line| line["event"] == "file_created");

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(run.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + DEADLINE;
    let code = loop {
        if let Some(status) = run.child.try_wait().unwrap() {
            break status.code();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "fsbridge did not exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    run.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn no_event_of_a_replaced_input_comes_after_the_answer_to_its_replacement() {
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one");
    let two = dir.path().join("two");
    fs::create_dir(&one).unwrap();
    fs::create_dir(&two).unwrap();
    let config = write_config(dir.path(), "");
    let mut run = Running::start(&config, &[]);
    let answer = run.ask(&json!({"config": "bot", "op": "watch", "path": one, "kind": "dir"}));
    assert_eq!(answer["ok"], true, "{answer}");
    run.until(|line| is_event(line, "ready", &one));

    // The old input is busy when it is replaced: its events are on their way.
    let writer = {
        let one = one.clone();
        std::thread::spawn(move || {
            for file in 0..3000 {
                fs::write(one.join(format!("f{file}")), "x").unwrap();
            }
        })
    };
    run.until(|line| {
        line["path"]
            .as_str()
            .is_some_and(|path| path.starts_with(one.to_str().unwrap()))
            && line["event"] == "file_created"
    });
    run.send(&json!({"config": "bot", "op": "watch", "path": two, "kind": "dir"}));
    run.until(|line| line.get("ok").is_some());
    writer.join().unwrap();
    fs::write(two.join("end"), "x").unwrap();
    let after = run.until(|line| is_event(line, "file_created", &two.join("end")));

    let stale: Vec<&Value> = after
        .iter()
        .filter(|line| {
            line["path"]
                .as_str()
                .is_some_and(|path| path.starts_with(one.to_str().unwrap()))
        })
        .collect();
    assert!(
        stale.is_empty(),
        "events of the replaced input after the answer: {stale:?}"
    );
    run.stop();
}

#[test]
fn a_command_line_naming_a_field_twice_an_empty_config_or_a_numeric_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("out")).unwrap();
    fs::create_dir(dir.path().join("elsewhere")).unwrap();
    let config = write_config(
        dir.path(),
        &format!("[io.bot.output]\nroot = {:?}\n", dir.path().join("out")),
    );
    let mut run = Running::start(&config, &[]);

    run.send_line(r#"{"config":"bot","op":"create","path":"a.txt","path":"../b.txt","text":"x"}"#);
    let doubled = run.until(|line| line.get("ok").is_some()).pop().unwrap();
    let root = dir.path().join("elsewhere");
    run.send_line(&format!(
        r#"{{"config":"bot","op":"output","root":{root:?},"config":"other"}}"#,
        root = root.to_str().unwrap()
    ));
    let doubled_config = run.until(|line| line.get("ok").is_some()).pop().unwrap();
    let empty = run.ask(&json!({"config": "", "op": "output", "root": root}));
    let numeric = run.ask(&json!({"config": "bot", "id": 7, "op": "unwatch"}));
    let typo = run.ask(&json!({"config": "bto", "op": "unwatch"}));
    assert_eq!(typo["ok"], false, "{typo}");
    let long = "x".repeat(100_000);
    let unknown = run.ask(&json!({"config": "bot", "op": long}));

    for refused in [&doubled, &doubled_config] {
        assert_eq!(refused["ok"], false, "{refused}");
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .contains("twice"),
            "{refused}"
        );
    }
    assert!(!dir.path().join("out/a.txt").exists() && !dir.path().join("b.txt").exists());
    assert_eq!(empty["ok"], false, "{empty}");
    assert!(
        empty["error"]["message"]
            .as_str()
            .unwrap()
            .contains("empty"),
        "{empty}"
    );
    assert_eq!(numeric["ok"], false, "{numeric}");
    assert!(
        numeric["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`id`"),
        "{numeric}"
    );
    let message = unknown["error"]["message"].as_str().unwrap();
    assert!(
        message.len() < 400,
        "the refusal echoes the whole op: {} bytes",
        message.len()
    );
    let wrong_type =
        run.ask(&json!({"config": "bot", "op": "output", "root": root, "fsync": "no"}));
    let message = wrong_type["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("`fsync`: "), "{wrong_type}");
    let nobody = run.ask(&json!({"config": "nobody", "op": "create", "path": "x", "text": "x"}));
    let message = nobody["error"]["message"].as_str().unwrap();
    assert!(message.contains("there are bot"), "{nobody}");
    // The output was never moved: a write still lands in the first root.
    let written = run.ask(&json!({"config": "bot", "op": "create", "path": "c.txt", "text": "c"}));
    assert_eq!(written["ok"], true, "{written}");
    assert!(dir.path().join("out/c.txt").exists());
    run.stop();
}
