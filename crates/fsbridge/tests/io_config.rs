//! Io configs: an input and an output changed while running behind one stream, and a program
//! that writes into the tree it watches not hearing its own writes.

mod support;

use std::fs;
use std::path::Path;

use fsbridge::{
    Event, EventKind, IoConfig, IoEvents, MonitorBuilder, Origin, SelfEvents, SelfWrites,
    TargetKind, UpdateKind, WriteCommand, Writer,
};
use futures::StreamExt as _;
use support::{DEADLINE, put};

async fn next(events: &mut IoEvents) -> Event {
    tokio::time::timeout(DEADLINE, events.next())
        .await
        .unwrap_or_else(|_| panic!("no event within {DEADLINE:?}"))
        .expect("the stream goes on")
        .expect("no watch error")
}

fn dir(path: &Path) -> MonitorBuilder {
    MonitorBuilder::new(path).with_kind(TargetKind::Dir)
}

fn writer(root: &Path) -> Writer {
    Writer::new(root).with_fsync(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_with_no_output_refuses_commands_by_kind() {
    let (config, _events) = IoConfig::new();

    let outcome = config.apply(WriteCommand::create("a.txt", "x")).await;

    let error = outcome.error().expect("refused");
    assert_eq!(error.kind().as_str(), "no_output");
    assert!(error.to_string().contains("no output"), "{error}");
    assert!(!config.has_input());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_stays_the_same_across_input_changes() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let (config, mut events) = IoConfig::new();

    config.set_input(dir(first.path())).unwrap();
    let ready = next(&mut events).await;
    assert_eq!(ready.name(), "ready");
    assert_eq!(ready.path, first.path());
    put(&first.path().join("a.txt"), "a");
    assert_eq!(next(&mut events).await.path, first.path().join("a.txt"));

    config.set_input(dir(second.path())).unwrap();
    let ready = next(&mut events).await;
    assert_eq!(ready.name(), "ready");
    assert_eq!(ready.path, second.path());
    // The first directory is no longer watched: the next event is the second one's.
    put(&first.path().join("ignored.txt"), "x");
    put(&second.path().join("b.txt"), "b");
    assert_eq!(next(&mut events).await.path, second.path().join("b.txt"));

    assert!(config.remove_input());
    assert!(!config.has_input());
    put(&second.path().join("unwatched.txt"), "x");
    config.set_input(dir(first.path())).unwrap();
    let ready = next(&mut events).await;
    assert_eq!(
        (ready.name(), ready.path.as_path()),
        ("ready", first.path())
    );
    put(&first.path().join("c.txt"), "c");
    assert_eq!(next(&mut events).await.path, first.path().join("c.txt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_new_input_keeps_the_old_one() {
    let root = tempfile::tempdir().unwrap();
    let (config, mut events) = IoConfig::new();
    config.set_input(dir(root.path())).unwrap();
    assert_eq!(next(&mut events).await.name(), "ready");

    let error = config
        .set_input(MonitorBuilder::new(root.path().join("missing")))
        .unwrap_err();

    assert!(error.to_string().contains("missing"), "{error}");
    put(&root.path().join("still.txt"), "x");
    assert_eq!(next(&mut events).await.path, root.path().join("still.txt"));
}

/// Each event the bot hears makes it append a line to a log inside the watched tree: without
/// recognising its own writes, every append would be heard and answered by another, forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feedback_loop_through_the_watched_output_stops() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("out")).unwrap();
    let (config, mut events) = IoConfig::new();
    config.set_input(dir(root.path())).unwrap();
    config.set_output(writer(&root.path().join("out")));
    assert_eq!(next(&mut events).await.name(), "ready");

    let mut answered = Vec::new();
    put(&root.path().join("first.txt"), "1");
    // The bot answers every event; after the first external file, the next event must be the
    // second external file, whatever the appends did meanwhile.
    for external in ["first.txt", "second.txt", "third.txt"] {
        let event = next(&mut events).await;
        assert_eq!(
            event.path,
            root.path().join(external),
            "after {answered:?}: {event:?}"
        );
        for round in 0..5 {
            let line = format!("{} {} {round}\n", event.name(), event.path.display());
            let outcome = config
                .apply(WriteCommand::append("log/answers.txt", line))
                .await;
            assert!(outcome.is_ok(), "{outcome:?}");
        }
        answered.push(external);
        if let Some(following) = ["second.txt", "third.txt"].get(answered.len() - 1) {
            put(&root.path().join(following), "x");
        }
    }
    let log = fs::read_to_string(root.path().join("out/log/answers.txt")).unwrap();
    assert_eq!(log.lines().count(), 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_writes_are_marked_with_mark_and_others_are_not() {
    let root = tempfile::tempdir().unwrap();
    let record = SelfWrites::new();
    let (config, mut events) = IoConfig::with_self_writes(&record, SelfEvents::Mark);
    config.set_input(dir(root.path())).unwrap();
    config.set_output(writer(root.path()));
    assert_eq!(next(&mut events).await.name(), "ready");

    for command in [
        WriteCommand::mkdir("a/b"),
        WriteCommand::create("a/b/f.txt", "one\n"),
        WriteCommand::append("a/b/f.txt", "two\n"),
        WriteCommand::overwrite("a/b/f.txt", "three\n"),
        WriteCommand::delete("a/b/f.txt"),
    ] {
        let outcome = config.apply(command).await;
        assert!(outcome.is_ok(), "{outcome:?}");
    }
    // Then another program's change, which must not be marked.
    put(&root.path().join("a/theirs.txt"), "x");

    let mut seen = Vec::new();
    loop {
        let event = next(&mut events).await;
        let done = event.path == root.path().join("a/theirs.txt");
        seen.push(event);
        if done {
            break;
        }
    }
    let (theirs, ours) = seen.split_last().unwrap();
    assert_eq!(theirs.origin, None, "{theirs:?}");
    assert!(!ours.is_empty());
    for event in ours {
        assert_eq!(event.origin, Some(Origin::SelfWrite), "{event:?}");
    }
    // Every entry our commands made is accounted for: the directories and the file's end.
    let names: Vec<_> = ours
        .iter()
        .map(|event| event.path.strip_prefix(root.path()).unwrap().to_owned())
        .collect();
    assert!(names.contains(&"a".into()), "{names:?}");
    assert!(names.contains(&"a/b".into()), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_elses_change_to_our_file_is_reported() {
    let root = tempfile::tempdir().unwrap();
    let (config, mut events) = IoConfig::new();
    config.set_input(dir(root.path())).unwrap();
    config.set_output(writer(root.path()));
    assert_eq!(next(&mut events).await.name(), "ready");
    let outcome = config
        .apply(WriteCommand::create("ours.txt", "ours\n"))
        .await;
    assert!(outcome.is_ok(), "{outcome:?}");

    // Appended to, then renamed and deleted by another program: all of it is heard.
    let path = root.path().join("ours.txt");
    let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut file, b"theirs\n").unwrap();
    drop(file);
    // An update of the file we created; or, when both fell in one settle window, the creation
    // of a file that was never reported as ours, seen whole.
    let event = next(&mut events).await;
    assert!(
        matches!(
            event.kind,
            EventKind::FileUpdated { size: 12, .. } | EventKind::FileCreated { size: 12, .. }
        ),
        "{event:?}"
    );
    assert_eq!(event.origin, None);
    fs::rename(&path, root.path().join("moved.txt")).unwrap();
    assert_eq!(next(&mut events).await.name(), "file_moved");
    fs::remove_file(root.path().join("moved.txt")).unwrap();
    assert_eq!(next(&mut events).await.name(), "file_deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_elses_chmod_of_our_file_is_reported() {
    use std::os::unix::fs::PermissionsExt as _;
    let root = tempfile::tempdir().unwrap();
    let record = SelfWrites::new();
    let (config, mut events) = IoConfig::with_self_writes(&record, SelfEvents::Mark);
    config
        .set_input(dir(root.path()).with_attributes(true))
        .unwrap();
    config.set_output(writer(root.path()));
    assert_eq!(next(&mut events).await.name(), "ready");
    let outcome = config
        .apply(WriteCommand::create("ours.txt", "ours\n"))
        .await;
    assert!(outcome.is_ok(), "{outcome:?}");
    let path = root.path().join("ours.txt");
    loop {
        let event = next(&mut events).await;
        if event.path == path {
            assert_eq!(event.origin, Some(Origin::SelfWrite), "{event:?}");
            break;
        }
    }

    // Its size and modification time are still those the writer left: only the mode differs.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let event = next(&mut events).await;

    assert_eq!(event.path, path);
    assert!(
        matches!(
            event.kind,
            EventKind::FileUpdated {
                change: UpdateKind::Attributes,
                ..
            }
        ),
        "{event:?}"
    );
    assert_eq!(event.origin, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_sharing_a_record_recognise_each_others_writes() {
    let watched = tempfile::tempdir().unwrap();
    let record = SelfWrites::new();
    let (input, mut events) = IoConfig::with_self_writes(&record, SelfEvents::Drop);
    let (output, _unused) = IoConfig::with_self_writes(&record, SelfEvents::Drop);
    input.set_input(dir(watched.path())).unwrap();
    output.set_output(writer(&watched.path().join("archive")));
    assert_eq!(next(&mut events).await.name(), "ready");
    fs::create_dir(watched.path().join("archive")).unwrap();
    assert_eq!(next(&mut events).await.name(), "dir_created");

    for n in 0..20 {
        let outcome = output
            .apply(WriteCommand::create(format!("m{n}.txt"), "message"))
            .await;
        assert!(outcome.is_ok(), "{outcome:?}");
    }
    put(&watched.path().join("external.txt"), "x");

    // The writes came first; the first event heard is the other program's.
    let event = next(&mut events).await;
    assert_eq!(event.path, watched.path().join("external.txt"), "{event:?}");
}

/// Another program's write right before ours, in the same settle window, is reported: the
/// change did not come from our commands alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_mixed_with_ours_in_one_window_is_reported() {
    let root = tempfile::tempdir().unwrap();
    let (config, mut events) = IoConfig::new();
    // A long window, so that both writes surely fall in it.
    config
        .set_input(dir(root.path()).with_settle(std::time::Duration::from_millis(300)))
        .unwrap();
    config.set_output(writer(root.path()));
    assert_eq!(next(&mut events).await.name(), "ready");
    let path = root.path().join("shared.log");

    // Created by someone else, then appended to by us.
    fs::write(&path, "theirs\n").unwrap();
    let outcome = config
        .apply(WriteCommand::append("shared.log", "ours\n"))
        .await;
    assert!(outcome.is_ok(), "{outcome:?}");
    let event = next(&mut events).await;
    assert!(
        matches!(event.kind, EventKind::FileCreated { size: 12, .. }),
        "{event:?}"
    );

    // Appended to by someone else, then by us, then by us again.
    let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut file, b"theirs again\n").unwrap();
    drop(file);
    for line in ["ours 2\n", "ours 3\n"] {
        let outcome = config.apply(WriteCommand::append("shared.log", line)).await;
        assert!(outcome.is_ok(), "{outcome:?}");
    }
    let event = next(&mut events).await;
    assert!(
        matches!(event.kind, EventKind::FileUpdated { size: 39, .. }),
        "{event:?}"
    );
    assert_eq!(event.origin, None);
}

/// Our file appearing under another name, by another program's hand, is that program's news.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_file_linked_or_moved_back_by_someone_else_is_reported() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let (config, mut events) = IoConfig::new();
    config.set_input(dir(root.path())).unwrap();
    config.set_output(writer(root.path()));
    assert_eq!(next(&mut events).await.name(), "ready");
    let outcome = config.apply(WriteCommand::create("ours.txt", "x")).await;
    assert!(outcome.is_ok(), "{outcome:?}");

    fs::hard_link(root.path().join("ours.txt"), root.path().join("link.txt")).unwrap();
    let event = next(&mut events).await;
    assert_eq!(
        (event.name(), event.path.clone()),
        ("file_created", root.path().join("link.txt"))
    );

    fs::rename(
        root.path().join("ours.txt"),
        outside.path().join("away.txt"),
    )
    .unwrap();
    assert_eq!(next(&mut events).await.name(), "file_deleted");
    fs::rename(
        outside.path().join("away.txt"),
        root.path().join("back.txt"),
    )
    .unwrap();
    let event = next(&mut events).await;
    assert_eq!(
        (event.name(), event.path.clone()),
        ("file_created", root.path().join("back.txt"))
    );
}

/// Several of our commands on one file within one settle window are still all ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_commands_in_quick_succession_stay_ours() {
    let root = tempfile::tempdir().unwrap();
    let (config, mut events) = IoConfig::new();
    config.set_input(dir(root.path())).unwrap();
    config.set_output(writer(root.path()));
    assert_eq!(next(&mut events).await.name(), "ready");

    for round in 0..20 {
        for command in [
            WriteCommand::create("f", format!("{round}")),
            WriteCommand::overwrite("f", format!("x{round}")),
            WriteCommand::append("f", "more"),
            WriteCommand::overwrite("f", "y"),
            WriteCommand::delete("f"),
            WriteCommand::mkdir(format!("d{round}/e")),
            WriteCommand::create(format!("d{round}/e/g/h.txt"), "h"),
        ] {
            let outcome = config.apply(command).await;
            assert!(outcome.is_ok(), "{outcome:?}");
        }
    }
    put(&root.path().join("theirs.txt"), "t");

    let event = next(&mut events).await;
    assert_eq!(event.path, root.path().join("theirs.txt"), "{event:?}");
}

/// Runs a case once with own events dropped and once with them marked.
macro_rules! on_self_events {
    (async fn $name:ident($handling:ident: SelfEvents) $body:block) => {
        mod $name {
            use super::*;

            async fn case($handling: SelfEvents) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dropped() {
                case(SelfEvents::Drop).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn marked() {
                case(SelfEvents::Mark).await;
            }
        }
    };
}

/// The size a file event reports.
fn size_of(event: &Event) -> Option<u64> {
    match event.kind {
        EventKind::FileCreated { size, .. }
        | EventKind::FileUpdated { size, .. }
        | EventKind::FileMoved { size, .. } => Some(size),
        _ => None,
    }
}

/// Content large enough that a monitor looks at the temporary file while it is written.
fn big(round: usize) -> String {
    format!("{round}").repeat(24 * 1024 * 1024)
}

/// The events up to and including the first one about `path`.
async fn until_path(events: &mut IoEvents, path: &Path) -> Vec<Event> {
    let mut taken = Vec::new();
    loop {
        let event = next(events).await;
        let done = event.path == path;
        taken.push(event);
        if done {
            return taken;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_temporary_file_seen_while_it_is_written_stays_ours() {
    let root = tempfile::tempdir().unwrap();
    let (config, mut events) = IoConfig::new();
    config
        .set_input(dir(root.path()).with_settle(std::time::Duration::from_millis(5)))
        .unwrap();
    config.set_output(writer(root.path()));
    assert_eq!(next(&mut events).await.name(), "ready");

    for round in 0..3 {
        let outcome = config
            .apply(WriteCommand::create(format!("big{round}"), big(round)))
            .await;
        assert!(outcome.is_ok(), "{outcome:?}");
    }
    put(&root.path().join("theirs.txt"), "t");

    let seen = until_path(&mut events, &root.path().join("theirs.txt")).await;
    assert_eq!(seen.len(), 1, "{seen:#?}");
}

on_self_events! {
    async fn someone_appending_to_our_new_file_at_once_is_reported(handling: SelfEvents) {
        let root = tempfile::tempdir().unwrap();
        let (config, mut events) = IoConfig::with_self_writes(&SelfWrites::new(), handling);
        config
            .set_input(dir(root.path()).with_settle(std::time::Duration::from_millis(5)))
            .unwrap();
        config.set_output(writer(root.path()));
        assert_eq!(next(&mut events).await.name(), "ready");
        let path = root.path().join("f");
        let size = big(1).len() as u64 + 7;

        let outcome = config.apply(WriteCommand::create("f", big(1))).await;
        assert!(outcome.is_ok(), "{outcome:?}");
        let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut file, b"theirs\n").unwrap();

        // The last event about `f` says its size with the append, and is not ours.
        let mut last = None;
        while last.as_ref().is_none_or(|event: &Event| size_of(event) != Some(size)) {
            last = Some(until_path(&mut events, &path).await.pop().unwrap());
        }
        let last = last.unwrap();
        assert_eq!(last.origin, None, "{last:?}");
        if handling == SelfEvents::Drop {
            assert_eq!(last.name(), "file_created", "{last:?}");
        }
    }
}

/// A config whose output is its input, watched with attributes reported; past its `ready`.
async fn writing_into_watched_with_attributes() -> (tempfile::TempDir, IoConfig, IoEvents) {
    let root = tempfile::tempdir().unwrap();
    let (config, mut events) = IoConfig::new();
    config
        .set_input(dir(root.path()).with_attributes(true))
        .unwrap();
    config.set_output(writer(root.path()));
    assert_eq!(next(&mut events).await.name(), "ready");
    (root, config, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_elses_chmod_between_our_writes_is_reported() {
    use std::os::unix::fs::PermissionsExt as _;
    let (root, config, mut events) = writing_into_watched_with_attributes().await;
    let path = root.path().join("f");

    let outcome = config.apply(WriteCommand::create("f", "ours\n")).await;
    assert!(outcome.is_ok(), "{outcome:?}");
    put(&root.path().join("sync"), "s");
    until_path(&mut events, &root.path().join("sync")).await;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let outcome = config.apply(WriteCommand::append("f", "more\n")).await;
    assert!(outcome.is_ok(), "{outcome:?}");

    let event = until_path(&mut events, &path).await.pop().unwrap();
    let EventKind::FileUpdated { attributes, .. } = &event.kind else {
        panic!("not an update: {event:?}");
    };
    assert_eq!(
        attributes.map(|attributes| attributes.mode & 0o777),
        Some(0o600),
        "{event:?}"
    );
    assert_eq!(event.origin, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_elses_chmod_next_to_our_atomic_writes_is_reported() {
    use std::os::unix::fs::PermissionsExt as _;
    let (root, config, mut events) = writing_into_watched_with_attributes().await;
    let chmod = |name: &str, mode| {
        fs::set_permissions(root.path().join(name), fs::Permissions::from_mode(mode)).unwrap();
    };
    let mut syncs = 0;
    let mut settle = async |events: &mut IoEvents| {
        syncs += 1;
        let sync = root.path().join(format!("sync{syncs}"));
        put(&sync, "s");
        until_path(events, &sync).await
    };
    let apply = async |command| {
        let outcome = config.apply(command).await;
        assert!(outcome.is_ok(), "{outcome:?}");
    };

    // Right after our creation. (Events of one batch come in no set order: each wait is for
    // the file itself, which times out if its event is taken for ours.)
    apply(WriteCommand::create("created", "1\n")).await;
    chmod("created", 0o640);
    let created = until_path(&mut events, &root.path().join("created")).await;
    let created = created.last().unwrap();
    assert_eq!(
        (created.name(), created.origin),
        ("file_created", None),
        "{created:?}"
    );
    // Right after our overwrite, and right before one (which keeps the mode it finds).
    for (name, mode, chmod_first) in [("overwritten", 0o640, false), ("kept", 0o600, true)] {
        apply(WriteCommand::create(name, "1\n")).await;
        settle(&mut events).await;
        if chmod_first {
            chmod(name, mode);
        }
        apply(WriteCommand::overwrite(name, "22\n")).await;
        if !chmod_first {
            chmod(name, mode);
        }
        let last = until_path(&mut events, &root.path().join(name))
            .await
            .pop()
            .unwrap();
        let EventKind::FileUpdated { attributes, .. } = &last.kind else {
            panic!("not an update: {last:?}");
        };
        assert_eq!(
            attributes.map(|attributes| attributes.mode & 0o777),
            Some(mode),
            "{last:?}"
        );
        assert_eq!(last.origin, None, "{last:?}");
    }
}
