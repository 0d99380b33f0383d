//! Recovery from lost hints: a real inotify queue overflow, and fsbridge's own bounded queue.

mod support;

use std::fs;
use std::time::Duration;

use fsbridge::{EventKind, Monitor, RescanReason, TargetKind};
use support::{Sysctl, Watch};

const MAX_QUEUED_EVENTS: &str = "/proc/sys/fs/inotify/max_queued_events";

#[tokio::test]
async fn real_kernel_queue_overflow_is_recovered_by_a_rescan() {
    let dir = tempfile::tempdir().unwrap();
    for sub in 0..10 {
        fs::create_dir(dir.path().join(format!("d{sub}"))).unwrap();
    }
    // The queue size is taken when the inotify instance is created: lower the limit only for
    // the start of the monitor, so that other tests running now are not affected.
    let lowered = match Sysctl::set(MAX_QUEUED_EVENTS, "16") {
        Ok(lowered) => lowered,
        Err(error) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must be able to lower {MAX_QUEUED_EVENTS}: {error}"
            );
            eprintln!(
                "SKIPPED: cannot lower {MAX_QUEUED_EVENTS} ({error}); run as root to test a real overflow"
            );
            return;
        }
    };
    let builder = Monitor::builder(dir.path())
        .with_kind(TargetKind::Dir)
        .with_settle(Duration::from_millis(50));
    let mut watch = Watch::start(dir.path(), builder).await;
    drop(lowered);

    for file in 0..3000 {
        fs::write(dir.path().join(format!("d{}/f{file}", file % 10)), "x").unwrap();
    }
    let events = watch.settle_on_disk().await;

    let rescans: Vec<_> = events
        .iter()
        .filter(|event| {
            matches!(
                event.kind,
                EventKind::Rescanned {
                    reason: RescanReason::Overflow
                }
            )
        })
        .collect();
    assert!(
        !rescans.is_empty(),
        "no overflow was reported; events: {}",
        events.len()
    );
    let created = events
        .iter()
        .filter(|event| matches!(event.kind, EventKind::FileCreated { .. }))
        .count();
    assert_eq!(created, 3000);
    // The rescan's own work must not overflow the queue again: once the tree is quiet, so is
    // the monitor.
    let quiet = tokio::time::timeout(
        Duration::from_secs(1),
        futures::StreamExt::next(&mut watch.monitor),
    )
    .await;
    assert!(
        quiet.is_err(),
        "events after the tree went quiet: {quiet:?}"
    );
}

#[tokio::test]
async fn full_hint_queue_turns_into_one_rescan_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let builder = Monitor::builder(dir.path())
        .with_kind(TargetKind::Dir)
        .with_settle(Duration::from_millis(200))
        .with_hint_capacity(8);
    let mut watch = Watch::start(dir.path(), builder).await;

    for file in 0..200 {
        fs::write(dir.path().join(format!("f{file}")), "x").unwrap();
    }
    let events = watch.settle_on_disk().await;

    assert!(
        events.iter().any(|event| matches!(
            event.kind,
            EventKind::Rescanned {
                reason: RescanReason::QueueFull
            }
        )),
        "no rescan reported"
    );
    let created = events
        .iter()
        .filter(|event| matches!(event.kind, EventKind::FileCreated { .. }))
        .count();
    assert_eq!(created, 200);
}

#[tokio::test]
async fn slow_consumer_keeps_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let builder = Monitor::builder(dir.path())
        .with_kind(TargetKind::Dir)
        .with_capacity(1)
        .with_settle(Duration::ZERO);
    let mut watch = Watch::start(dir.path(), builder).await;

    // Nobody reads while the tree changes: the monitor must wait, not drop.
    for file in 0..300 {
        fs::write(dir.path().join(format!("f{file}")), "x").unwrap();
    }
    let events = watch.settle_on_disk().await;

    let created = events
        .iter()
        .filter(|event| matches!(event.kind, EventKind::FileCreated { .. }))
        .count();
    assert_eq!(created, 300);
}
