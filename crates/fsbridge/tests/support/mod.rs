//! Helpers shared by the behaviour tests: a watch with deadlines, and a replay model of the tree.
//!
//! [`Tree`] applies events strictly: an event that does not fit the tree as the earlier events
//! described it (a creation over an existing entry, a deletion of a directory that still has
//! children, a move from nowhere) fails the test. [`Watch::settle_on`] is the faithful-log check:
//! it feeds events into the model until the model equals the tree on disk.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fsbridge::{Event, EventKind, Monitor, MonitorBuilder, TargetKind};
use futures::StreamExt as _;

/// How long a test waits for something that should happen at once, on a loaded machine.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Which backend a behaviour test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Native,
    Poll,
}

impl Backend {
    /// A builder for `path` on this backend (polling every 50 ms).
    pub fn builder(self, path: &Path) -> MonitorBuilder {
        let builder = Monitor::builder(path);
        match self {
            Self::Native => builder,
            Self::Poll => builder.with_poll(Duration::from_millis(50)),
        }
    }
}

/// Runs each `async fn name(backend: Backend)` as two tests, `name::native` and `name::poll`:
/// both backends must produce the same events.
#[macro_export]
macro_rules! on_both_backends {
    ($(async fn $name:ident($backend:ident: Backend) $body:block)*) => {
        $(
            mod $name {
                use super::*;

                async fn case($backend: Backend) $body

                #[tokio::test]
                async fn native() {
                    case(Backend::Native).await;
                }

                #[tokio::test]
                async fn poll() {
                    case(Backend::Poll).await;
                }
            }
        )*
    };
}

/// Sets a sysctl for as long as it lives, and puts the old value back when dropped, also when
/// the test fails.
pub struct Sysctl {
    path: &'static str,
    old: String,
}

impl Sysctl {
    pub fn set(path: &'static str, value: &str) -> Result<Self, std::io::Error> {
        let old = fs::read_to_string(path)?;
        fs::write(path, value)?;
        Ok(Self { path, old })
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        if let Err(error) = fs::write(self.path, self.old.trim()) {
            eprintln!("could not restore {}: {error}", self.path);
        }
    }
}

/// One entry of the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Dir,
    File { size: u64 },
}

/// The tree as the events describe it: absolute path → node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    pub nodes: BTreeMap<PathBuf, Node>,
}

impl Tree {
    /// The tree on disk at `root` (including `root` itself), symbolic links not followed.
    pub fn snapshot(root: &Path) -> Self {
        let mut tree = Self::default();
        let Ok(metadata) = std::fs::symlink_metadata(root) else {
            return tree;
        };
        if !metadata.is_dir() {
            tree.nodes.insert(
                root.to_path_buf(),
                Node::File {
                    size: metadata.len(),
                },
            );
            return tree;
        }
        tree.nodes.insert(root.to_path_buf(), Node::Dir);
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            let Ok(reader) = std::fs::read_dir(&dir) else {
                continue;
            };
            for child in reader.flatten() {
                let Ok(metadata) = child.metadata() else {
                    continue;
                };
                let path = child.path();
                if metadata.is_dir() {
                    tree.nodes.insert(path.clone(), Node::Dir);
                    pending.push(path);
                } else {
                    tree.nodes.insert(
                        path,
                        Node::File {
                            size: metadata.len(),
                        },
                    );
                }
            }
        }
        tree
    }

    fn children_of<'a>(&'a self, path: &'a Path) -> impl Iterator<Item = &'a PathBuf> + 'a {
        // Paths order by component, so a subtree directly follows its root.
        self.nodes
            .range::<Path, _>((std::ops::Bound::Excluded(path), std::ops::Bound::Unbounded))
            .map(|(key, _)| key)
            .take_while(move |key| key.starts_with(path))
    }

    /// The first differences between this tree (the events' view) and `disk`, for messages.
    pub fn differences(&self, disk: &Self) -> String {
        let mut lines = Vec::new();
        for (path, node) in &self.nodes {
            if disk.nodes.get(path) != Some(node) {
                lines.push(format!(
                    "events say {} is {node:?}, disk has {:?}",
                    path.display(),
                    disk.nodes.get(path)
                ));
            }
        }
        for (path, node) in &disk.nodes {
            if !self.nodes.contains_key(path) {
                lines.push(format!(
                    "disk has {} as {node:?}, events never said so",
                    path.display()
                ));
            }
        }
        let total = lines.len();
        lines.truncate(20);
        format!("{total} differences:\n{}", lines.join("\n"))
    }

    fn require_parent(&self, path: &Path, event: &Event) {
        let parent = path.parent().expect("event paths have parents");
        assert_eq!(
            self.nodes.get(parent),
            Some(&Node::Dir),
            "parent of {} missing for {event:?}\n{self:#?}",
            path.display()
        );
    }

    /// Applies one event; panics when it does not fit the tree.
    #[expect(clippy::too_many_lines, reason = "one short arm per event kind")]
    pub fn apply(&mut self, root: &Path, event: &Event) {
        let path = event.path.clone();
        match &event.kind {
            EventKind::Ready { .. } | EventKind::Rescanned { .. } | EventKind::Raw { .. } => {}
            EventKind::TargetAppeared { kind, size } => {
                assert!(
                    !self.nodes.contains_key(&path),
                    "target appeared twice: {event:?}"
                );
                let node = match kind {
                    TargetKind::Dir => Node::Dir,
                    TargetKind::File => Node::File {
                        size: size.expect("file targets have a size"),
                    },
                };
                self.nodes.insert(path, node);
            }
            EventKind::TargetVanished { .. } => {
                assert!(
                    self.nodes.contains_key(&path),
                    "vanished target was not there: {event:?}"
                );
                assert_eq!(
                    self.children_of(&path).count(),
                    0,
                    "target vanished before its contents: {event:?}"
                );
                self.nodes.remove(&path);
            }
            EventKind::FileCreated { size, .. } => {
                assert!(
                    !self.nodes.contains_key(&path),
                    "created over an existing entry: {event:?}"
                );
                if path != root {
                    self.require_parent(&path, event);
                }
                self.nodes.insert(path, Node::File { size: *size });
            }
            EventKind::FileUpdated { size, .. } => {
                let node = self
                    .nodes
                    .get_mut(&path)
                    .unwrap_or_else(|| panic!("update of a missing file: {event:?}"));
                assert!(
                    matches!(node, Node::File { .. }),
                    "update of a directory: {event:?}"
                );
                *node = Node::File { size: *size };
            }
            // Attributes are not modelled: an update of them changes nothing structural.
            EventKind::DirUpdated { .. } => {
                assert_eq!(
                    self.nodes.get(&path),
                    Some(&Node::Dir),
                    "update of a missing directory: {event:?}"
                );
            }
            EventKind::DirCreated => {
                assert!(
                    !self.nodes.contains_key(&path),
                    "created over an existing entry: {event:?}"
                );
                self.require_parent(&path, event);
                self.nodes.insert(path, Node::Dir);
            }
            EventKind::FileDeleted | EventKind::DirDeleted => {
                let node = self
                    .nodes
                    .get(&path)
                    .unwrap_or_else(|| panic!("deletion of a missing entry: {event:?}"));
                assert_eq!(
                    matches!(node, Node::Dir),
                    matches!(event.kind, EventKind::DirDeleted),
                    "wrong kind: {event:?}"
                );
                assert_eq!(
                    self.children_of(&path).count(),
                    0,
                    "directory deleted before its children: {event:?}\n{self:#?}"
                );
                self.nodes.remove(&path);
            }
            EventKind::FileMoved { from, size, .. } => {
                assert!(
                    matches!(self.nodes.get(from), Some(Node::File { .. })),
                    "move of a missing file: {event:?}"
                );
                assert!(
                    !self.nodes.contains_key(&path),
                    "move onto an existing entry: {event:?}"
                );
                self.require_parent(&path, event);
                self.nodes.remove(from);
                self.nodes.insert(path, Node::File { size: *size });
            }
            EventKind::DirMoved { from } => {
                assert_eq!(
                    self.nodes.get(from),
                    Some(&Node::Dir),
                    "move of a missing directory: {event:?}"
                );
                assert!(
                    !self.nodes.contains_key(&path),
                    "move onto an existing entry: {event:?}"
                );
                assert!(
                    !path.starts_with(from),
                    "directory moved into itself: {event:?}"
                );
                self.require_parent(&path, event);
                let moved: Vec<PathBuf> = self.children_of(from).cloned().collect();
                self.nodes.remove(from);
                self.nodes.insert(path.clone(), Node::Dir);
                for old in moved {
                    let node = self.nodes.remove(&old).expect("listed above");
                    let new = path.join(old.strip_prefix(from).expect("below from"));
                    self.nodes.insert(new, node);
                }
            }
            other => panic!("event kind the model does not know: {other:?}"),
        }
    }
}

/// A monitor under test, with every event it emitted so far.
pub struct Watch {
    pub monitor: Monitor,
    pub root: PathBuf,
    pub events: Vec<Event>,
    pub model: Tree,
}

impl Watch {
    /// Starts `builder` and waits for `ready`; the model starts as the tree on disk.
    pub async fn start(root: &Path, builder: MonitorBuilder) -> Self {
        // `FSBRIDGE_TEST_LOG=fsbridge=trace` shows what the monitor decided, for debugging.
        if let Ok(filter) = std::env::var("FSBRIDGE_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
        let mut monitor = builder.build().expect("monitor starts");
        let ready = next(&mut monitor).await.expect("ready arrives");
        assert_eq!(ready.name(), "ready", "first event: {ready:?}");
        Self {
            monitor,
            root: root.to_path_buf(),
            events: vec![ready],
            model: Tree::snapshot(root),
        }
    }

    /// Starts a directory monitor on `root`.
    pub async fn dir(root: &Path) -> Self {
        Self::start(root, Monitor::builder(root).with_kind(TargetKind::Dir)).await
    }

    /// Starts a directory monitor on `root` on `backend`.
    pub async fn dir_on(backend: Backend, root: &Path) -> Self {
        Self::start(root, backend.builder(root).with_kind(TargetKind::Dir)).await
    }

    /// Takes the next event and applies it to the model.
    pub async fn next(&mut self) -> Event {
        let event = next(&mut self.monitor)
            .await
            .unwrap_or_else(|| panic!("no event within {DEADLINE:?}; so far: {:#?}", self.events));
        self.model.apply(&self.root, &event);
        self.events.push(event.clone());
        event
    }

    /// Takes events until one satisfies `done`; returns the events taken.
    pub async fn until(&mut self, mut done: impl FnMut(&Event) -> bool) -> Vec<Event> {
        let mut taken = Vec::new();
        loop {
            let event = self.next().await;
            let finished = done(&event);
            taken.push(event);
            if finished {
                return taken;
            }
        }
    }

    /// Takes events until the model equals the tree on disk at the monitor's root: the
    /// faithful-log check. Returns the events taken.
    pub async fn settle_on_disk(&mut self) -> Vec<Event> {
        let start = self.events.len();
        let mut deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            // The snapshot is the expensive part: take one only once events pause.
            match tokio::time::timeout(Duration::from_millis(150), self.monitor.next()).await {
                Ok(Some(event)) => {
                    self.record(event.expect("no watch error"));
                    deadline = tokio::time::Instant::now() + DEADLINE;
                }
                Ok(None) => panic!("monitor stopped"),
                Err(_) => {
                    let disk = Tree::snapshot(&self.root);
                    if disk == self.model {
                        return self.events[start..].to_vec();
                    }
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "model never matched the disk: {}\nlast events: {:#?}",
                        self.model.differences(&disk),
                        &self.events[self.events.len().saturating_sub(20).max(start)..]
                    );
                }
            }
        }
    }

    fn record(&mut self, event: Event) {
        self.model.apply(&self.root, &event);
        self.events.push(event);
    }
}

/// The next event within [`DEADLINE`], or `None`.
pub async fn next(monitor: &mut Monitor) -> Option<Event> {
    match tokio::time::timeout(DEADLINE, monitor.next()).await {
        Ok(Some(event)) => Some(event.expect("no watch error")),
        Ok(None) | Err(_) => None,
    }
}

/// Creates the file `path` with `contents` in one step (written elsewhere, then renamed in), so
/// that no watcher can see it half written: for tests that expect exactly one creation.
pub fn put(path: &Path, contents: &str) {
    let staged = tempfile::NamedTempFile::new_in(std::env::temp_dir()).expect("temporary file");
    fs::write(staged.path(), contents).expect("write staged file");
    staged.persist(path).expect("rename staged file into place");
}

/// The names of `events` in order, with paths relative to `root`, for readable assertions.
pub fn summary(root: &Path, events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|event| {
            let relative = |path: &Path| {
                path.strip_prefix(root)
                    .unwrap_or(path)
                    .display()
                    .to_string()
            };
            match &event.kind {
                EventKind::FileMoved { from, .. } | EventKind::DirMoved { from } => {
                    format!(
                        "{} {} -> {}",
                        event.name(),
                        relative(from),
                        relative(&event.path)
                    )
                }
                _ => format!("{} {}", event.name(), relative(&event.path)),
            }
        })
        .collect()
}
