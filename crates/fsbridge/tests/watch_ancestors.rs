//! What happens above the target: ancestors renamed, moved back, and symbolic links among them
//! switched to another directory.

mod support;

use std::fs;
use std::os::unix::fs::symlink;

use fsbridge::TargetKind;
use support::{Backend, Watch, summary};

on_both_backends! {
    async fn renamed_grandparent_makes_the_target_vanish_and_a_new_one_appear(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("gp/p/t");
        fs::create_dir_all(&target).unwrap();
        let mut watch =
            Watch::start(&target, backend.builder(&target).with_kind(TargetKind::Dir)).await;

        fs::rename(dir.path().join("gp"), dir.path().join("gp.old")).unwrap();
        let gone = watch.settle_on_disk().await;
        fs::create_dir_all(&target).unwrap();
        fs::write(target.join("new"), "x").unwrap();
        let back = watch.settle_on_disk().await;

        assert_eq!(summary(&target, &gone), ["target_vanished "]);
        assert_eq!(summary(&target, &back)[0], "target_appeared ");
        assert!(watch.model.nodes.contains_key(&target.join("new")));
    }

    async fn ancestor_moved_away_and_back_keeps_the_target_watched(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("gp/p/t");
        fs::create_dir_all(&target).unwrap();
        let mut watch =
            Watch::start(&target, backend.builder(&target).with_kind(TargetKind::Dir)).await;

        fs::rename(dir.path().join("gp"), dir.path().join("gp.old")).unwrap();
        fs::rename(dir.path().join("gp.old"), dir.path().join("gp")).unwrap();
        watch.settle_on_disk().await;
        support::put(&target.join("after"), "x");
        let events = watch.settle_on_disk().await;

        assert_eq!(summary(&target, &events), ["file_created after"]);
    }

    async fn symbolic_link_ancestor_switched_to_another_directory(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        for side in ["a", "b"] {
            fs::create_dir_all(dir.path().join(side).join("t")).unwrap();
            fs::write(dir.path().join(side).join("t").join(side), side).unwrap();
        }
        symlink("a", dir.path().join("link")).unwrap();
        let target = dir.path().join("link/t");
        let mut watch =
            Watch::start(&target, backend.builder(&target).with_kind(TargetKind::Dir)).await;

        symlink("b", dir.path().join("link.new")).unwrap();
        fs::rename(dir.path().join("link.new"), dir.path().join("link")).unwrap();
        let events = watch.settle_on_disk().await;

        assert_eq!(
            summary(&target, &events),
            ["file_deleted a", "target_vanished ", "target_appeared ", "file_created b"]
        );
    }
}
