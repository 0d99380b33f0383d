#!/usr/bin/env python3
"""Replays an `fsbridge watch --json` capture and compares the result with a tree on disk.

Usage: replay.py CAPTURE.ndjson

The capture (from `fsbridge watch --json`, not `--raw`) must start with `ready`. Below the target
the model starts empty: right when the target was empty at start, or when the watch ran with
`--initial` (then everything present is reported as created after `ready`).
Every event is applied strictly: a creation over an existing entry, a deletion of a directory
that still has children, or a move from nowhere is reported as an error. At the end, the model
is compared with the tree on disk now. Exit code 0 when everything fits.
"""
import base64
import json
import os
import sys


def path_of(event, key):
    exact = event.get(key + "_bytes")
    if exact is not None:
        return os.fsdecode(base64.b64decode(exact))
    return event[key]


def snapshot(root):
    tree = {}
    if not os.path.lexists(root):
        return tree
    if not os.path.isdir(root) or os.path.islink(root):
        tree[root] = ("file", os.lstat(root).st_size)
        return tree
    tree[root] = ("dir", None)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if os.path.isdir(full) and not os.path.islink(full):
                tree[full] = ("dir", None)
            else:
                tree[full] = ("file", st.st_size)
    return tree


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    capture = sys.argv[1]
    errors = []
    counts = {}
    model = {}
    root = None
    with open(capture, "rb") as lines:
        for number, line in enumerate(lines, 1):
            try:
                event = json.loads(line)
                name = event["event"]
            except (ValueError, KeyError):
                print(f"line {number} is not an event of fsbridge watch --json", file=sys.stderr)
                return 2
            if name == "raw":
                print("a --raw capture cannot be replayed", file=sys.stderr)
                return 2
            counts[name] = counts.get(name, 0) + 1
            path = path_of(event, "path")
            below = lambda p: [k for k in model if k.startswith(p + "/")]
            if name == "ready":
                root = path
                if event["present"]:
                    model[root] = ("dir", None) if event["kind"] == "dir" else ("file", event.get("size"))
            elif name == "target_appeared":
                model[path] = ("dir", None) if event["kind"] == "dir" else ("file", event.get("size"))
            elif name == "target_vanished":
                if below(path):
                    errors.append(f"line {number}: target vanished before its contents")
                model.pop(path, None)
            elif name in ("file_created", "dir_created"):
                if path in model:
                    errors.append(f"line {number}: {name} over an existing entry {path}")
                if os.path.dirname(path) not in model:
                    errors.append(f"line {number}: {name} without its parent: {path}")
                model[path] = ("dir", None) if name == "dir_created" else ("file", event["size"])
            elif name == "file_updated":
                if model.get(path, ("", None))[0] != "file":
                    errors.append(f"line {number}: update of a missing file {path}")
                model[path] = ("file", event["size"])
            elif name == "dir_updated":
                if model.get(path, ("", None))[0] != "dir":
                    errors.append(f"line {number}: update of a missing directory {path}")
            elif name in ("file_deleted", "dir_deleted"):
                if path not in model:
                    errors.append(f"line {number}: {name} of a missing entry {path}")
                if below(path):
                    errors.append(f"line {number}: {name} before its children: {path}")
                model.pop(path, None)
            elif name in ("file_moved", "dir_moved"):
                source = path_of(event, "from")
                if source not in model:
                    errors.append(f"line {number}: {name} from a missing entry {source}")
                if path in model:
                    errors.append(f"line {number}: {name} onto an existing entry {path}")
                moved = below(source)
                model[path] = model.pop(source, ("dir", None))
                if name == "file_moved":
                    model[path] = ("file", event["size"])
                for old in moved:
                    model[path + old[len(source):]] = model.pop(old)
    disk = snapshot(root)
    for key in sorted(set(model) | set(disk)):
        if model.get(key) != disk.get(key):
            errors.append(f"differs at {key}: events say {model.get(key)}, disk has {disk.get(key)}")
    print(json.dumps(counts, sort_keys=True))
    for error in errors[:50]:
        print(error)
    print(f"{len(errors)} errors; model has {len(model)} entries, disk has {len(disk)}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
