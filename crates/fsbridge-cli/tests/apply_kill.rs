//! Rule 2 of #4: a writer killed with SIGKILL at a random moment never leaves a torn file, and
//! the temporary files it leaves are removed when the next writer starts.
//!
//! Rounds of a real `fsbridge apply` child each get a few overwrites of a 2 MiB file and are
//! killed after a random pause, until 200 overwrites were sent. After every kill the file must
//! be one whole version; the leftovers of a kill must be gone once the next child answered.

use std::fs;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const FSBRIDGE: &str = env!("CARGO_BIN_EXE_fsbridge");
const SIZE: usize = 2 * 1024 * 1024;
const OVERWRITES: usize = 200;

/// A small deterministic random sequence (xorshift), seeded per run and printed for replay.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

fn temporary_files(root: &Path) -> Vec<String> {
    fs::read_dir(root)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".fsbridge-tmp-"))
        .collect()
}

/// The file must be `SIZE` copies of one letter: one whole version, old or new.
fn assert_whole(path: &Path) {
    let contents = fs::read(path).unwrap();
    assert_eq!(contents.len(), SIZE, "torn file: wrong length");
    assert!(
        contents.iter().all(|&byte| byte == contents[0]),
        "torn file: mixed versions"
    );
}

fn spawn_apply(root: &Path) -> std::process::Child {
    Command::new(FSBRIDGE)
        .args(["apply", "--no-fsync", "--root"])
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn killed_writer_leaves_old_or_new_content_and_its_leftovers_are_swept_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let path = root.join("big.txt");
    fs::write(&path, vec![b'A'; SIZE]).unwrap();
    let lines: Vec<String> = (b'B'..=b'Z')
        .map(|letter| {
            let text = String::from_utf8(vec![letter; SIZE]).unwrap();
            format!("{{\"op\":\"overwrite\",\"path\":\"big.txt\",\"text\":\"{text}\"}}\n")
        })
        .collect();
    let seed = u64::from(std::process::id()) | 1;
    println!("seed {seed}");
    let mut random = Random(seed);

    let (mut sent, mut kills, mut leftovers_seen) = (0, 0, 0);
    while sent < OVERWRITES {
        let leftovers = temporary_files(root);
        leftovers_seen += leftovers.len();
        let mut child = spawn_apply(root);
        let batch = usize::try_from(1 + random.below(6))
            .unwrap()
            .min(OVERWRITES - sent);
        let mut stdin = child.stdin.take().unwrap();
        let input: Vec<String> = (0..batch)
            .map(|index| lines[(sent + index) % lines.len()].clone())
            .collect();
        // The child may die while we write: a broken pipe is expected then.
        let feeder = std::thread::spawn(move || {
            for line in input {
                if stdin.write_all(line.as_bytes()).is_err() {
                    break;
                }
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());

        // The first answer proves the new child started, so its sweep has run.
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        assert!(first.contains("\"ok\":true"), "{first}");
        let still_there: Vec<_> = leftovers
            .iter()
            .filter(|name| root.join(name).exists())
            .collect();
        assert!(
            still_there.is_empty(),
            "not swept at start: {still_there:?}"
        );

        // The pause only chooses the moment of the kill; nothing waits for it.
        std::thread::sleep(Duration::from_millis(random.below(25)));
        child.kill().unwrap();
        child.wait().unwrap();
        feeder.join().unwrap();
        kills += 1;
        sent += batch;

        assert_whole(&path);
    }

    let last = Command::new(FSBRIDGE)
        .args(["apply", "--root"])
        .arg(root)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    println!("{sent} overwrites in {kills} killed runs, {leftovers_seen} leftovers swept");
    assert_eq!(last.status.code(), Some(0));
    assert!(temporary_files(root).is_empty(), "not swept at start");
    assert_whole(&path);
}
