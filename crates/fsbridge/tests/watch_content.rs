//! File content in events: the whole file, or only what was appended (`tail -F`), with
//! truncation and replacement noticed; text or bytes; cut at a limit.

mod support;

use std::fs;
use std::io::Write as _;
use std::path::Path;

use fsbridge::{Content, ContentMode, Encoding, Event, EventKind, Reset, TargetKind};
use support::{Backend, Watch};

fn content(event: &Event) -> &Content {
    event
        .content
        .as_ref()
        .unwrap_or_else(|| panic!("no content: {event:?}"))
}

fn text(event: &Event) -> String {
    String::from_utf8(content(event).data.clone().expect("content")).unwrap()
}

fn append(path: &Path, bytes: &[u8]) {
    fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

fn is_update(event: &Event) -> bool {
    matches!(event.kind, EventKind::FileUpdated { .. })
}

on_both_backends! {
    async fn appended_content_is_what_was_added_and_starts_over_after_truncation_or_rotation(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        fs::write(&log, "first\n").unwrap();
        let builder = backend
            .builder(&log)
            .with_kind(TargetKind::File)
            .with_content(ContentMode::Appended, Encoding::Text, 1024);
        let mut watch = Watch::start(&log, builder).await;

        append(&log, b"second\n");
        let appended = watch.until(is_update).await;
        fs::OpenOptions::new().write(true).truncate(true).open(&log).unwrap();
        append(&log, b"after copytruncate, longer than before\n");
        // The truncation and the write may land in one batch or two: either way the content
        // says that reading started over, and adds up to the new file.
        let truncated = watch.until(|event| is_update(event) && matches!(event.kind, EventKind::FileUpdated { size: 39, .. })).await;
        fs::rename(&log, dir.path().join("app.log.1")).unwrap();
        fs::write(dir.path().join("new"), "rotated\n").unwrap();
        fs::rename(dir.path().join("new"), &log).unwrap();
        let rotated = watch.until(is_update).await;

        let appended = appended.last().unwrap();
        assert_eq!((text(appended), content(appended).offset, content(appended).reset), ("second\n".into(), 6, None));
        let texts: String = truncated.iter().map(text).collect();
        assert_eq!(texts, "after copytruncate, longer than before\n");
        assert_eq!(content(&truncated[0]).offset, 0);
        assert!(truncated.iter().any(|event| content(event).reset == Some(Reset::Truncated)), "{truncated:#?}");
        let rotated = rotated.last().unwrap();
        assert_eq!((text(rotated), content(rotated).reset), ("rotated\n".into(), Some(Reset::Replaced)));
    }

    async fn full_content_comes_with_created_and_updated_files(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let builder = backend
            .builder(dir.path())
            .with_kind(TargetKind::Dir)
            .with_content(ContentMode::Full, Encoding::Text, 1024);
        let mut watch = Watch::start(dir.path(), builder).await;

        support::put(&dir.path().join("note"), "hello");
        let created = watch.until(|event| matches!(event.kind, EventKind::FileCreated { .. })).await;
        append(&dir.path().join("note"), b" world");
        let updated = watch.until(is_update).await;

        assert_eq!(text(created.last().unwrap()), "hello");
        assert_eq!(text(updated.last().unwrap()), "hello world");
        assert_eq!(content(updated.last().unwrap()).offset, 0);
    }
}

#[tokio::test]
async fn the_ready_of_a_file_target_carries_its_whole_content() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("motd");
    fs::write(&file, "welcome\n").unwrap();
    let mut monitor = fsbridge::Monitor::builder(&file)
        .with_content(ContentMode::Full, Encoding::Text, 1024)
        .build()
        .unwrap();

    let ready = support::next(&mut monitor).await.expect("ready");

    assert_eq!(ready.name(), "ready");
    assert_eq!(text(&ready), "welcome\n");
}

#[tokio::test]
async fn binary_content_is_base64_on_the_wire_and_text_refuses_invalid_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let text_builder = fsbridge::Monitor::builder(dir.path())
        .with_kind(TargetKind::Dir)
        .with_content(ContentMode::Full, Encoding::Text, 1024);
    let mut text_watch = Watch::start(dir.path(), text_builder).await;
    let binary_builder = fsbridge::Monitor::builder(dir.path())
        .with_kind(TargetKind::Dir)
        .with_content(ContentMode::Full, Encoding::Binary, 1024);
    let mut binary_watch = Watch::start(dir.path(), binary_builder).await;

    fs::write(dir.path().join("blob"), b"\x00\xffok").unwrap();
    let as_text = text_watch.settle_on_disk().await;
    let as_binary = binary_watch.settle_on_disk().await;

    let text_line: serde_json::Value = serde_json::to_value(as_text.last().unwrap()).unwrap();
    assert_eq!(text_line["content_error"], "not UTF-8 at byte 1");
    assert!(text_line.get("content").is_none());
    let binary_line: serde_json::Value = serde_json::to_value(as_binary.last().unwrap()).unwrap();
    assert_eq!(binary_line["encoding"], "base64");
    assert_eq!(binary_line["content"], "AP9vaw==");
}

#[tokio::test]
async fn content_is_cut_at_the_limit_without_splitting_a_character() {
    let dir = tempfile::tempdir().unwrap();
    let builder = fsbridge::Monitor::builder(dir.path())
        .with_kind(TargetKind::Dir)
        .with_content(ContentMode::Full, Encoding::Text, 4);
    let mut watch = Watch::start(dir.path(), builder).await;

    support::put(&dir.path().join("accents"), "abcé and more");
    let events = watch.settle_on_disk().await;

    let content = content(events.last().unwrap());
    assert!(content.cut);
    assert_eq!(content.data.as_deref().unwrap(), b"abc");
}

/// A log holding `start`, tailed as text (appended content, at most `max` bytes per event).
async fn tail_new_log(start: &str, max: u64) -> (tempfile::TempDir, std::path::PathBuf, Watch) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    fs::write(&log, start).unwrap();
    let builder = fsbridge::Monitor::builder(&log)
        .with_kind(TargetKind::File)
        .with_content(ContentMode::Appended, Encoding::Text, max);
    let watch = Watch::start(&log, builder).await;
    (dir, log, watch)
}

/// Content past a cut is not sent later, and the next append is read from the size the cut
/// event reported: no false truncation, no first bytes sent again.
#[tokio::test]
async fn appended_content_goes_on_after_a_cut() {
    let (_dir, log, mut watch) = tail_new_log("a\n", 8).await;

    append(&log, b"0123456789abcdef\n");
    let cut = watch.until(is_update).await;
    append(&log, b"tail\n");
    let next = watch.until(is_update).await;
    append(&log, b"more\n");
    let after = watch.until(is_update).await;

    let cut = content(cut.last().unwrap());
    assert_eq!(
        (cut.offset, cut.cut, cut.data.as_deref().unwrap()),
        (2, true, &b"01234567"[..])
    );
    for (event, offset, added) in [
        (next.last().unwrap(), 19, "tail\n"),
        (after.last().unwrap(), 24, "more\n"),
    ] {
        assert_eq!(
            (text(event), content(event).offset, content(event).reset),
            (added.into(), offset, None),
            "{event:?}"
        );
    }
}

/// Rotation by rename inside a watched directory: the rotated file's new name does not send
/// its lines again, and the new log's lines come as new.
#[tokio::test]
async fn a_log_rotated_inside_the_tree_is_not_sent_again_under_its_new_name() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("chat.log");
    let builder = fsbridge::Monitor::builder(dir.path())
        .with_kind(TargetKind::Dir)
        .with_content(ContentMode::Appended, Encoding::Text, 1024);
    let mut watch = Watch::start(dir.path(), builder).await;
    append(&log, b"one\n");
    watch.until(|event| event.path == log).await;

    fs::rename(&log, dir.path().join("chat.log.1")).unwrap();
    append(&log, b"two\n");
    let rotated = watch.settle_on_disk().await;

    let sent: Vec<(String, String)> = rotated
        .iter()
        .filter_map(|event| {
            let data = event.content.as_ref()?.data.clone().ok()?;
            let name = event.path.file_name()?.to_string_lossy().into_owned();
            Some((name, String::from_utf8(data).unwrap()))
        })
        .filter(|(_, text)| !text.is_empty())
        .collect();
    assert_eq!(
        sent,
        [("chat.log".to_owned(), "two\n".to_owned())],
        "{rotated:#?}"
    );
}

/// A character written in two parts is held back until it is whole, not an error twice.
#[tokio::test]
async fn a_character_split_between_two_appends_comes_whole_with_the_second() {
    let (_dir, log, mut watch) = tail_new_log("price: ", 1024).await;

    append(&log, b"5 \xe2\x82");
    let first = watch.until(is_update).await;
    append(&log, b"\xac\n");
    let second = watch.until(is_update).await;

    let (first, second) = (first.last().unwrap(), second.last().unwrap());
    assert_eq!(
        (text(first), content(first).offset),
        ("5 ".into(), 7),
        "{first:?}"
    );
    assert_eq!(
        (text(second), content(second).offset, content(second).reset),
        ("€\n".into(), 9, None),
        "{second:?}"
    );
}
