//! Changes of permission bits and owner (#6): no event by default; with `with_attributes`, a
//! `file_updated` that says so or a `dir_updated`, carrying the new mode and owner.

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;

use fsbridge::{Attributes, ContentMode, Encoding, EventKind, TargetKind, UpdateKind};
use support::{Backend, Watch, put, summary};

/// The user and group a `chown` test hands entries to: `nobody` on most systems.
const NOBODY: u32 = 65_534;

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The attributes of `path` as they are now, with the permission bits `mode`.
fn attributes_of(path: &Path, mode: u32) -> Attributes {
    let metadata = fs::symlink_metadata(path).unwrap();
    Attributes {
        mode,
        uid: metadata.uid(),
        gid: metadata.gid(),
    }
}

/// The `file_updated` of an attribute change of a regular file of `size` bytes.
fn file_attributes_updated(size: u64, attributes: Attributes) -> EventKind {
    EventKind::FileUpdated {
        size,
        file_type: fsbridge::FileType::Regular,
        change: UpdateKind::Attributes,
        attributes: Some(attributes),
    }
}

/// A directory monitor on `root` that reports attributes.
async fn watch_attributes(backend: Backend, root: &Path) -> Watch {
    Watch::start(
        root,
        backend
            .builder(root)
            .with_kind(TargetKind::Dir)
            .with_attributes(true),
    )
    .await
}

on_both_backends! {
async fn chmod_of_a_file_is_an_update_with_the_new_mode(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    fs::write(&file, "hello").unwrap();
    chmod(&file, 0o644);
    let mut watch = watch_attributes(backend, dir.path()).await;

    chmod(&file, 0o600);
    let event = watch.next().await;

    assert_eq!(event.path, file);
    assert_eq!(event.kind, file_attributes_updated(5, attributes_of(&file, 0o600)));
}

async fn chmod_of_a_directory_is_dir_updated(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    fs::create_dir(&sub).unwrap();
    chmod(&sub, 0o755);
    let mut watch = watch_attributes(backend, dir.path()).await;

    chmod(&sub, 0o1750);
    let event = watch.next().await;

    assert_eq!(event.path, sub);
    assert_eq!(
        event.kind,
        EventKind::DirUpdated {
            attributes: attributes_of(&sub, 0o1750)
        }
    );
}

async fn chmod_of_the_target_directory_is_dir_updated(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o700);
    let mut watch = watch_attributes(backend, dir.path()).await;

    chmod(dir.path(), 0o750);
    let event = watch.next().await;

    assert_eq!(event.path, dir.path());
    assert_eq!(
        event.kind,
        EventKind::DirUpdated {
            attributes: attributes_of(dir.path(), 0o750)
        }
    );
}

async fn chmod_of_a_file_target_is_an_update(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    fs::write(&file, "abc").unwrap();
    chmod(&file, 0o644);
    let builder = backend
        .builder(&file)
        .with_kind(TargetKind::File)
        .with_attributes(true);
    let mut watch = Watch::start(&file, builder).await;

    chmod(&file, 0o640);
    let event = watch.next().await;

    assert_eq!(event.path, file);
    assert_eq!(event.kind, file_attributes_updated(3, attributes_of(&file, 0o640)));
}

async fn attribute_changes_are_no_events_by_default(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    let sub = dir.path().join("sub");
    fs::write(&file, "x").unwrap();
    fs::create_dir(&sub).unwrap();
    let mut watch = Watch::dir_on(backend, dir.path()).await;

    chmod(&file, 0o600);
    chmod(&sub, 0o700);
    chmod(dir.path(), 0o711);
    // Whatever these would cause comes before the next visible change.
    put(&dir.path().join("later"), "y");
    let event = watch.next().await;

    assert_eq!(summary(dir.path(), &[event]), ["file_created later"]);
}

async fn chown_reports_the_new_owner(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    let sub = dir.path().join("sub");
    fs::write(&file, "owned").unwrap();
    fs::create_dir(&sub).unwrap();
    chmod(&file, 0o644);
    chmod(&sub, 0o755);
    let mut watch = watch_attributes(backend, dir.path()).await;

    match std::os::unix::fs::chown(&file, Some(NOBODY), Some(NOBODY)) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {
            assert!(std::env::var_os("CI").is_none(), "CI must run as root to test chown");
            eprintln!("SKIPPED: chown needs root: {error}");
            return;
        }
        Err(error) => panic!("chown: {error}"),
    }
    let file_event = watch.next().await;
    std::os::unix::fs::lchown(&sub, Some(NOBODY), None).unwrap();
    let dir_event = watch.next().await;

    let nobody = |mode, gid| Attributes { mode, uid: NOBODY, gid };
    assert_eq!(file_event.path, file);
    assert_eq!(file_event.kind, file_attributes_updated(5, nobody(0o644, NOBODY)));
    assert_eq!(dir_event.path, sub);
    let gid = fs::metadata(&sub).unwrap().gid();
    assert_eq!(dir_event.kind, EventKind::DirUpdated { attributes: nobody(0o755, gid) });
}

async fn content_change_is_a_plain_update_carrying_the_attributes(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    let staged = outside.path().join("staged");
    fs::write(&file, "a").unwrap();
    chmod(&file, 0o644);
    let mut watch = watch_attributes(backend, dir.path()).await;

    // An atomic save with other permissions: the new attributes ride on the content update.
    fs::write(&staged, "new content").unwrap();
    chmod(&staged, 0o600);
    fs::rename(&staged, &file).unwrap();
    let event = watch.next().await;

    assert_eq!(event.path, file);
    assert_eq!(
        event.kind,
        EventKind::FileUpdated {
            size: 11,
            file_type: fsbridge::FileType::Regular,
            change: UpdateKind::Content,
            attributes: Some(attributes_of(&file, 0o600)),
        }
    );
}

async fn entries_moved_and_chmodded_are_moved_then_updated(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("d")).unwrap();
    fs::write(dir.path().join("d/inner"), "i").unwrap();
    fs::write(dir.path().join("f"), "ff").unwrap();
    for path in ["d", "d/inner", "f"] {
        chmod(&dir.path().join(path), 0o755);
    }
    let mut watch = watch_attributes(backend, dir.path()).await;

    // In one batch or in several, the events are the same.
    fs::rename(dir.path().join("f"), dir.path().join("g")).unwrap();
    chmod(&dir.path().join("g"), 0o700);
    fs::rename(dir.path().join("d"), dir.path().join("e")).unwrap();
    chmod(&dir.path().join("e"), 0o700);
    chmod(&dir.path().join("e/inner"), 0o700);
    let mut events = Vec::new();
    while events.len() < 5 {
        events.push(watch.next().await);
    }

    let mut names = summary(dir.path(), &events);
    names.sort();
    assert_eq!(
        names,
        [
            "dir_moved d -> e",
            "dir_updated e",
            "file_moved f -> g",
            "file_updated e/inner",
            "file_updated g",
        ]
    );
    let order = summary(dir.path(), &events);
    let position = |name: &str| order.iter().position(|other| other == name);
    assert!(position("file_moved f -> g") < position("file_updated g"), "{order:#?}");
    assert!(position("dir_moved d -> e") < position("dir_updated e"), "{order:#?}");
    assert!(position("dir_moved d -> e") < position("file_updated e/inner"), "{order:#?}");
}

async fn chmod_of_a_hard_linked_file_updates_every_name(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("a");
    fs::write(&first, "linked").unwrap();
    chmod(&first, 0o644);
    fs::hard_link(&first, dir.path().join("b")).unwrap();
    let mut watch = watch_attributes(backend, dir.path()).await;

    chmod(&first, 0o444);
    let events = [watch.next().await, watch.next().await];

    let mut names = summary(dir.path(), &events);
    names.sort();
    assert_eq!(names, ["file_updated a", "file_updated b"]);
    for event in &events {
        assert_eq!(event.kind, file_attributes_updated(6, attributes_of(&first, 0o444)));
    }
}
}

#[tokio::test]
async fn attribute_update_carries_no_content() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    fs::write(&file, "some text").unwrap();
    let builder = Backend::Native
        .builder(dir.path())
        .with_kind(TargetKind::Dir)
        .with_attributes(true)
        .with_content(ContentMode::Full, Encoding::Text, 1024);
    let mut watch = Watch::start(dir.path(), builder).await;

    chmod(&file, 0o600);
    let event = watch.next().await;

    assert_eq!(event.name(), "file_updated");
    assert!(matches!(
        event.kind,
        EventKind::FileUpdated {
            change: UpdateKind::Attributes,
            ..
        }
    ));
    assert_eq!(event.content, None);
}
