//! The target's own life cycle: not there yet, deleted, moved away, replaced by the other kind,
//! recreated; and a file target through log rotation and `cp` over it.

mod support;

use std::fs;
use std::io::Write as _;

use fsbridge::{EventKind, TargetKind};
use support::{Backend, Watch, summary};

fn is_name(name: &'static str) -> impl FnMut(&fsbridge::Event) -> bool {
    move |event| event.name() == name
}

on_both_backends! {
async fn target_with_missing_ancestors_is_reported_when_it_appears(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("a/b/c");
    let mut watch = Watch::start(
        &target,
        backend.builder(&target).with_kind(TargetKind::Dir),
    )
    .await;
    assert_eq!(
        watch.events[0].kind,
        EventKind::Ready {
            kind: TargetKind::Dir,
            present: false,
            size: None,
        }
    );

    fs::create_dir_all(target.join("inner")).unwrap();
    fs::write(target.join("inner/f"), "x").unwrap();
    let events = watch.settle_on_disk().await;

    let names = summary(&target, &events);
    assert_eq!(names[..3], ["target_appeared ", "dir_created inner", "file_created inner/f"]);
    // An update when the walk caught `f` between its creation and its write.
    assert!(names[3..].iter().all(|name| name == "file_updated inner/f"), "{names:#?}");
}

async fn ancestors_created_one_by_one_are_followed_down_to_the_target(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("a/b/c");
    let mut watch = Watch::start(
        &target,
        backend.builder(&target).with_kind(TargetKind::Dir),
    )
    .await;

    fs::create_dir(dir.path().join("a")).unwrap();
    fs::create_dir(dir.path().join("a/b")).unwrap();
    // Nothing may be reported for ancestors; wait until the monitor watches `a/b`, which the
    // appearance of the target then proves.
    fs::create_dir(&target).unwrap();
    let appeared = watch.until(is_name("target_appeared")).await;
    fs::write(target.join("f"), "x").unwrap();
    let events = watch.settle_on_disk().await;

    assert_eq!(summary(&target, &appeared), ["target_appeared "]);
    // The walk after the appearance may catch `f` between its creation and its write: then an
    // update follows the creation.
    let names = summary(&target, &events);
    assert_eq!(names[0], "file_created f", "{names:#?}");
    assert!(names[1..].iter().all(|name| name == "file_updated f"), "{names:#?}");
}

async fn deleted_moved_replaced_and_recreated_directory_target_cycles(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("f"), "1").unwrap();
    let mut watch = Watch::start(
        &target,
        backend.builder(&target).with_kind(TargetKind::Dir),
    )
    .await;

    for round in 0..3 {
        // Deleted with contents, through an ancestor.
        fs::remove_dir_all(&target).unwrap();
        let deleted = watch.until(is_name("target_vanished")).await;
        assert_eq!(
            summary(&target, &deleted),
            ["file_deleted f", "target_vanished "],
            "round {round}"
        );

        fs::create_dir(&target).unwrap();
        fs::write(target.join("f"), "2").unwrap();
        watch.settle_on_disk().await;
        assert!(
            watch.model.nodes.contains_key(&target.join("f")),
            "round {round}"
        );

        // Moved away: the contents' deletions, then vanished.
        fs::rename(&target, dir.path().join(format!("away{round}"))).unwrap();
        let moved = watch.until(is_name("target_vanished")).await;
        assert_eq!(
            summary(&target, &moved),
            ["file_deleted f", "target_vanished "],
            "round {round}"
        );

        // Replaced by the other kind: a file is not the directory target.
        fs::write(&target, "not a dir").unwrap();
        fs::remove_file(&target).unwrap();
        fs::create_dir(&target).unwrap();
        fs::write(target.join("f"), "3").unwrap();
        watch.settle_on_disk().await;
        fs::remove_dir_all(&target).unwrap();
        fs::write(&target, "a file now").unwrap();
        let replaced = watch.until(is_name("target_vanished")).await;
        assert_eq!(
            summary(&target, &replaced),
            ["file_deleted f", "target_vanished "],
            "round {round}"
        );
        fs::remove_file(&target).unwrap();
        fs::create_dir(&target).unwrap();
        fs::write(target.join("f"), "1").unwrap();
        watch.settle_on_disk().await;
    }
}

async fn deleting_an_ancestor_of_the_target_reports_its_contents_then_vanished(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("p/q/target");
    fs::create_dir_all(target.join("sub")).unwrap();
    fs::write(target.join("sub/f"), "1").unwrap();
    let mut watch = Watch::start(
        &target,
        backend.builder(&target).with_kind(TargetKind::Dir),
    )
    .await;

    fs::remove_dir_all(dir.path().join("p")).unwrap();
    let events = watch.until(is_name("target_vanished")).await;
    fs::create_dir_all(&target).unwrap();
    let back = watch.until(is_name("target_appeared")).await;

    assert_eq!(
        summary(&target, &events),
        ["file_deleted sub/f", "dir_deleted sub", "target_vanished "]
    );
    assert_eq!(summary(&target, &back), ["target_appeared "]);
}

async fn directory_moved_in_as_the_target_reports_its_contents(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    let staging = dir.path().join("staging");
    fs::create_dir_all(staging.join("x")).unwrap();
    fs::write(staging.join("x/f"), "1").unwrap();
    let mut watch = Watch::start(
        &target,
        backend.builder(&target).with_kind(TargetKind::Dir),
    )
    .await;

    fs::rename(&staging, &target).unwrap();
    let events = watch.settle_on_disk().await;

    assert_eq!(
        summary(&target, &events),
        ["target_appeared ", "dir_created x", "file_created x/f"]
    );
}

async fn file_target_reports_only_itself(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("app.log");
    let mut watch = Watch::start(
        &target,
        backend.builder(&target).with_kind(TargetKind::File),
    )
    .await;

    fs::write(dir.path().join("sibling"), "noise").unwrap();
    // Written whole under another name, so that the target never appears half written.
    fs::write(dir.path().join("app.log.tmp"), "one\n").unwrap();
    fs::rename(dir.path().join("app.log.tmp"), &target).unwrap();
    let appeared = watch.until(is_name("target_appeared")).await;
    fs::OpenOptions::new()
        .append(true)
        .open(&target)
        .unwrap()
        .write_all(b"two\n")
        .unwrap();
    let updated = watch.until(is_name("file_updated")).await;
    fs::remove_file(&target).unwrap();
    let vanished = watch.until(is_name("target_vanished")).await;

    assert_eq!(appeared.len(), 1, "{appeared:#?}");
    assert_eq!(
        appeared[0].kind,
        EventKind::TargetAppeared {
            kind: TargetKind::File,
            size: Some(4)
        }
    );
    assert_eq!(updated.len(), 1, "{updated:#?}");
    assert_eq!(
        updated[0].kind,
        EventKind::FileUpdated {
            size: 8,
            file_type: fsbridge::FileType::Regular,
            change: fsbridge::UpdateKind::Content,
            attributes: None,
        }
    );
    assert_eq!(vanished.len(), 1, "{vanished:#?}");
}

async fn file_target_survives_log_rotation_and_cp_over_it(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("app.log");
    fs::write(&target, "old\n").unwrap();
    let mut watch = Watch::start(
        &target,
        backend.builder(&target).with_kind(TargetKind::File),
    )
    .await;

    fs::rename(&target, dir.path().join("app.log.1")).unwrap();
    fs::write(&target, "").unwrap();
    watch.settle_on_disk().await;
    let mut log = fs::OpenOptions::new().append(true).open(&target).unwrap();
    log.write_all(b"after rotation\n").unwrap();
    let after_rotation = watch
        .until(|event| matches!(event.kind, EventKind::FileUpdated { size: 15, .. }))
        .await;
    fs::write(dir.path().join("copy"), "copied over it\n!").unwrap();
    let status = std::process::Command::new("cp")
        .arg(dir.path().join("copy"))
        .arg(&target)
        .status()
        .unwrap();
    assert!(status.success());
    let after_cp = watch
        .until(|event| matches!(event.kind, EventKind::FileUpdated { size: 16, .. }))
        .await;
    log.write_all(b"more").unwrap();
    let after_append = watch
        .until(|event| matches!(event.kind, EventKind::FileUpdated { size: 20, .. }))
        .await;

    for events in [&after_rotation, &after_cp, &after_append] {
        assert!(
            events.iter().all(|event| event.path == target),
            "{events:#?}"
        );
        assert!(
            events
                .iter()
                .all(|event| !matches!(event.kind, EventKind::FileCreated { .. })),
            "{events:#?}"
        );
    }
}
}
