//! Trees that break naive watchers: symbolic link loops, names no terminal should print, very
//! long paths, a hundred thousand entries at once, case-only renames, kinds swapped in place,
//! truncation and time going backwards.

mod support;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use fsbridge::{EventKind, FileType, Monitor, TargetKind};
use support::{Backend, Watch, summary};

on_both_backends! {
    async fn write_outside_after_one_name_was_removed_is_still_reported(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("a")).unwrap();
        fs::create_dir_all(dir.path().join("b")).unwrap();
        fs::write(outside.path().join("f"), "one\n").unwrap();
        fs::hard_link(outside.path().join("f"), dir.path().join("a/f")).unwrap();
        fs::hard_link(outside.path().join("f"), dir.path().join("b/f")).unwrap();
        let mut watch = Watch::dir_on(backend, dir.path()).await;

        fs::remove_file(dir.path().join("b/f")).unwrap();
        watch.settle_on_disk().await;
        let mut file = fs::OpenOptions::new().append(true).open(outside.path().join("f")).unwrap();
        std::io::Write::write_all(&mut file, b"two\n").unwrap();
        let events = watch.settle_on_disk().await;

        assert_eq!(summary(dir.path(), &events), ["file_updated a/f"]);
    }

    async fn file_target_that_gains_a_name_elsewhere_reports_writes_through_it(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        fs::write(&target, "1\n").unwrap();
        let mut watch =
            Watch::start(&target, backend.builder(&target).with_kind(TargetKind::File)).await;

        fs::hard_link(&target, outside.path().join("other")).unwrap();
        let mut file = fs::OpenOptions::new().append(true).open(outside.path().join("other")).unwrap();
        std::io::Write::write_all(&mut file, b"22\n").unwrap();
        let events = watch.settle_on_disk().await;

        assert!(events.iter().any(|event| event.path == target), "{events:#?}");
        assert_eq!(watch.model.nodes.get(&target), Some(&support::Node::File { size: 5 }));
    }

    async fn write_through_one_hard_link_updates_every_name(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(outside.path().join("elsewhere"), "base\n").unwrap();
        let mut watch = Watch::dir_on(backend, dir.path()).await;

        fs::hard_link(outside.path().join("elsewhere"), dir.path().join("f")).unwrap();
        fs::hard_link(dir.path().join("f"), dir.path().join("sub/g")).unwrap();
        watch.settle_on_disk().await;
        let mut file = fs::OpenOptions::new().append(true).open(dir.path().join("f")).unwrap();
        std::io::Write::write_all(&mut file, b"inside\n").unwrap();
        let through_inside = watch.settle_on_disk().await;
        let mut file = fs::OpenOptions::new().append(true).open(outside.path().join("elsewhere")).unwrap();
        std::io::Write::write_all(&mut file, b"outside\n").unwrap();
        let through_outside = watch.settle_on_disk().await;

        let mut names = summary(dir.path(), &through_inside);
        names.sort();
        assert_eq!(names, ["file_updated f", "file_updated sub/g"]);
        let mut names = summary(dir.path(), &through_outside);
        names.sort();
        assert_eq!(names, ["file_updated f", "file_updated sub/g"]);
    }

    async fn symlink_loops_and_links_to_root_are_reported_not_followed(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("a")).unwrap();
        let mut watch = Watch::dir_on(backend, dir.path()).await;

        symlink("loop", dir.path().join("loop")).unwrap();
        symlink("/", dir.path().join("root")).unwrap();
        symlink("../a", dir.path().join("a/self")).unwrap();
        symlink("..", dir.path().join("a/up")).unwrap();
        let events = watch.settle_on_disk().await;

        assert_eq!(events.len(), 4, "{:#?}", summary(dir.path(), &events));
        for event in &events {
            assert!(
                matches!(event.kind, EventKind::FileCreated { file_type: FileType::Symlink, .. }),
                "{event:?}"
            );
        }
    }

    async fn awkward_names_are_reported_exactly(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let mut watch = Watch::dir_on(backend, dir.path()).await;
        let names: [&[u8]; 6] = [
            b"new\nline",
            b"tab\there",
            b"quote\"s'",
            b"back\\slash",
            b"latin1-caf\xe9",
            b"\xff\xfe not utf-8",
        ];

        for name in names {
            fs::write(dir.path().join(OsStr::from_bytes(name)), name).unwrap();
        }
        let events = watch.settle_on_disk().await;

        for name in names {
            let wanted = dir.path().join(OsStr::from_bytes(name));
            let event = events.iter().find(|event| event.path == wanted).unwrap_or_else(|| {
                panic!("{} not reported: {:#?}", wanted.display(), summary(dir.path(), &events))
            });
            let json: serde_json::Value = serde_json::to_value(event).unwrap();
            let exact = match json.get("path_bytes") {
                Some(encoded) => base64::engine::general_purpose::STANDARD
                    .decode(encoded.as_str().unwrap())
                    .unwrap(),
                None => json["path"].as_str().unwrap().as_bytes().to_vec(),
            };
            assert_eq!(exact, wanted.as_os_str().as_bytes(), "{json}");
        }
    }

    async fn path_of_four_thousand_bytes_is_reported(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let mut watch = Watch::dir_on(backend, dir.path()).await;
        let mut deep = dir.path().to_path_buf();
        while deep.as_os_str().len() < 3_700 {
            deep.push("d".repeat(200));
        }
        let name = "f".repeat(4_000 - deep.as_os_str().len() - 1);
        let file = deep.join(name);
        assert_eq!(file.as_os_str().len(), 4_000);

        fs::create_dir_all(&deep).unwrap();
        fs::write(&file, "deep").unwrap();
        let events = watch.settle_on_disk().await;

        assert!(events.iter().any(|event| event.path == file), "{:#?}", summary(dir.path(), &events));
    }

    async fn case_only_rename_is_a_move(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.txt"), "x").unwrap();
        let mut watch = Watch::dir_on(backend, dir.path()).await;

        fs::rename(dir.path().join("a.txt"), dir.path().join("A.txt")).unwrap();
        let events = watch.settle_on_disk().await;

        assert_eq!(summary(dir.path(), &events), ["file_moved a.txt -> A.txt"]);
    }

    async fn file_replaced_by_directory_and_back(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("thing");
        fs::write(&path, "file").unwrap();
        let mut watch = Watch::dir_on(backend, dir.path()).await;

        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        support::put(&path.join("inside"), "x");
        let to_dir = watch.settle_on_disk().await;
        fs::remove_dir_all(&path).unwrap();
        support::put(&path, "file again");
        let to_file = watch.settle_on_disk().await;

        assert_eq!(
            summary(dir.path(), &to_dir),
            ["file_deleted thing", "dir_created thing", "file_created thing/inside"]
        );
        assert_eq!(
            summary(dir.path(), &to_file),
            ["file_deleted thing/inside", "dir_deleted thing", "file_created thing"]
        );
    }

    async fn truncation_and_mtime_going_backwards_are_updates(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        fs::write(&path, "some content").unwrap();
        let mut watch = Watch::dir_on(backend, dir.path()).await;

        fs::OpenOptions::new().write(true).truncate(true).open(&path).unwrap();
        let truncated = watch.settle_on_disk().await;
        let past = SystemTime::now() - Duration::from_hours(24 * 365);
        fs::File::options().write(true).open(&path).unwrap().set_modified(past).unwrap();
        // The model leaves mtimes out, so the disk matches it before the event: wait for it.
        let backwards = watch.until(|event| event.path == path).await;

        assert_eq!(
            truncated.iter().map(|event| event.kind.clone()).collect::<Vec<_>>(),
            [EventKind::FileUpdated {
                size: 0,
                file_type: FileType::Regular,
                change: fsbridge::UpdateKind::Content,
                attributes: None,
            }]
        );
        assert_eq!(summary(dir.path(), &backwards), ["file_updated file"]);
    }
}

#[tokio::test]
async fn hundred_thousand_entries_at_once_are_all_reported() {
    let dir = tempfile::tempdir().unwrap();
    for sub in 0..10 {
        fs::create_dir(dir.path().join(format!("d{sub}"))).unwrap();
    }
    let builder = Monitor::builder(dir.path()).with_kind(TargetKind::Dir);
    let mut watch = Watch::start(dir.path(), builder).await;
    let paths: Vec<PathBuf> = (0..100_000)
        .map(|file| dir.path().join(format!("d{}/f{file}", file % 10)))
        .collect();

    for path in &paths {
        fs::write(path, "").unwrap();
    }
    let created = watch.settle_on_disk().await;
    for sub in 0..10 {
        fs::remove_dir_all(dir.path().join(format!("d{sub}"))).unwrap();
    }
    let deleted = watch.settle_on_disk().await;

    let count = |events: &[fsbridge::Event], name: &str| {
        events.iter().filter(|event| event.name() == name).count()
    };
    assert_eq!(count(&created, "file_created"), 100_000);
    assert_eq!(count(&deleted, "file_deleted"), 100_000);
    assert_eq!(count(&deleted, "dir_deleted"), 10);
}
