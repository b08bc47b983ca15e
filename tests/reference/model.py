"""A plain-Python reference model of SEMANTICS.md: listed keys in, expected tree and reports out.

It is written from SEMANTICS.md alone, with dicts and ``bytes.split``, and shares no code with
``s3erofs.tree`` or ``s3erofs._fast.keys``: the hypothesis test compares the two, so a rule
both got wrong the same way is the only thing it cannot catch. Each rule is marked
"Semantics decision:" with its number in SEMANTICS.md.

Shapes::

    listing  [(key bytes, size, mtime seconds, nsec)] in the order the server listed them
    tree     {path bytes: (type, mode, size, mtime, nsec, nlink)}
             path is relative to the root (b"" is the root, b"a/b" a nested entry),
             type "dir" or "file", mode the permission bits, size None for directories
             (a directory's size is its dirent bytes, a layout detail, not bucket truth)
    reports  Counter({(key bytes, reason): number of listings reported})
"""

from collections import Counter
from dataclasses import dataclass, field

NAME_MAX = 255  # EROFS_NAME_LEN: the longest name a dirent can hold
DIR_MODE = 0o755
FILE_MODE = 0o644


@dataclass
class Expected:
    """What an image of a listing must hold."""

    tree: dict
    reports: Counter = field(default_factory=Counter)


def invalid_reason(path: bytes) -> str | None:
    """Why a path below the root cannot be a name chain, or None when it can.

    Semantics decision (rules 4-7): a key with several faults gets one reason, that of its
    first bad component from the left; within one component the order is empty, '.'/'..',
    longer than 255 bytes, NUL byte.
    """
    for component in path.split(b"/"):
        if component == b"":
            return "empty-component"
        if component in (b".", b".."):
            return "dot-component"
        if len(component) > NAME_MAX:
            return "name-too-long"
        if b"\0" in component:
            return "nul-byte"
    return None


def ancestors(path: bytes) -> list[bytes]:
    """Proper ancestor directories of ``path`` below the root: b"a/b/c" -> [b"a", b"a/b"]."""
    parts = path.split(b"/")
    return [b"/".join(parts[:depth]) for depth in range(1, len(parts))]


def classify(listing, prefix: bytes):
    """Split the listing into reports, markers and files (paths below the root).

    Returns (reports, markers {path: [listing index...]}, files {path: [listing index...]}),
    the index lists in listing order.
    """
    reports = Counter()
    markers: dict[bytes, list[int]] = {}
    files: dict[bytes, list[int]] = {}
    for index, (key, _size, _mtime, _nsec) in enumerate(listing):
        # Semantics decision (rule 10): a key the server should not have sent is skipped
        if not key.startswith(prefix):
            reports[key, "outside-prefix"] += 1
            continue
        rest = key[len(prefix):]

        # Semantics decision (rule 3): the prefix's own marker ("photos/" when building
        # s3://b/photos/) is the root; it is silently ignored and changes nothing
        if rest == b"":
            continue

        # Semantics decision (rule 1): a trailing '/' makes a directory marker
        is_marker = rest.endswith(b"/")
        path = rest[:-1] if is_marker else rest

        # Semantics decision (rule 3): no other key sets the root's metadata ("/" here)
        if path == b"":
            reports[key, "root-marker"] += 1
            continue

        # Semantics decision (rules 4-7): a bad key creates nothing, not even its parents
        reason = invalid_reason(path)
        if reason:
            reports[key, reason] += 1
            continue
        (markers if is_marker else files).setdefault(path, []).append(index)
    return reports, markers, files


def expected(listing, prefix: bytes = b"", build_time: int = 0) -> Expected:
    """The tree and reports an image built from ``listing`` under ``prefix`` must have.

    :param listing: ``[(key, size, mtime, nsec)]`` in listing order (duplicates allowed).
    :param prefix: the prefix stripped from keys (b"" keeps full keys).
    :param build_time: the build time: mtime of the root and of implicit directories.
    """
    reports, markers, files = classify(listing, prefix)

    # Semantics decision (rule 2): the root and directories without a marker are 0755
    # with the build time (nsec 0); a marker gives its directory its own mtime
    dirs = {b"": (build_time, 0)}
    for path in list(markers) + list(files):
        for parent in ancestors(path):
            dirs.setdefault(parent, (build_time, 0))
    for path, indexes in markers.items():
        # Semantics decision (rule 9): of a key listed twice, the last listing wins
        *earlier, last = indexes
        for index in earlier:
            reports[listing[index][0], "duplicate-key"] += 1
        key, size, mtime, nsec = listing[last]
        dirs[path] = (mtime, nsec)
        # Semantics decision (rule 1): a marker's data is not kept, but said so
        if size > 0:
            reports[key, "marker-has-data"] += 1

    entries = {}
    for path, indexes in files.items():
        # Semantics decision (rule 8): a directory (from a marker or from deeper keys)
        # beats every listing of an object with the same name
        if path in dirs:
            for index in indexes:
                reports[listing[index][0], "shadowed-by-directory"] += 1
            continue
        *earlier, last = indexes
        for index in earlier:
            reports[listing[index][0], "duplicate-key"] += 1
        _key, size, mtime, nsec = listing[last]
        entries[path] = ("file", FILE_MODE, size, mtime, nsec, 1)

    # Semantics decision (rule 2): a directory's nlink is 2 + its subdirectories
    subdirs = Counter(path.rpartition(b"/")[0] for path in dirs if path)
    for path, (mtime, nsec) in dirs.items():
        entries[path] = ("dir", DIR_MODE, None, mtime, nsec, 2 + subdirs[path])
    return Expected(entries, reports)
