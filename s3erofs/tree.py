"""Key -> tree: S3 keys become directories and files under the rules of SEMANTICS.md.

Every key is either in the tree exactly or reported (one WARNING and one ``Report``)
with the reason it is not. The work per key happens in ``_fast.keys`` and
``_fast.layout.sort_dentries``; this module assembles columns and reports.
"""

import logging
import stat
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ._fast import keys as _keys
from ._fast import layout as _layout
from .columns import KeyColumns
from .erofs_fs import EROFS_NAME_LEN

log = logging.getLogger(__name__)

DATA_NONE = _layout.DATA_NONE
DATA_HOLES = _layout.DATA_HOLES
DATA_BYTES = _layout.DATA_BYTES

# reason -> (action, explanation); the explanation may use {size} and {length}
REASONS = {
    "empty-component": ("skipped", "has an empty path component ('//', or a leading '/')"),
    "dot-component": ("skipped", "has a '.' or '..' path component"),
    "name-too-long": ("skipped", f"has a component longer than {EROFS_NAME_LEN} bytes"),
    "nul-byte": ("skipped", "contains a NUL byte, which no file name can hold"),
    "root-marker": ("skipped",
                    "names the root directory; the root's metadata never comes from a key"),
    "outside-prefix": ("skipped", "is outside the listed prefix"),
    "marker-has-data": ("kept-as-directory", "is a directory marker with {size} bytes of data; "
                        "the bytes are ignored"),
    "duplicate-key": ("skipped", "was listed more than once; the last listing is kept"),
    "shadowed-by-directory": ("skipped", "is an object shadowed by the directory of the same name "
                              "(a prefix or a marker ending in '/'); the directory is kept"),
}

_CODE_TO_REASON = {
    _keys.R_EMPTY_COMPONENT: "empty-component",
    _keys.R_DOT_COMPONENT: "dot-component",
    _keys.R_NAME_TOO_LONG: "name-too-long",
    _keys.R_NUL_BYTE: "nul-byte",
    _keys.R_ROOT_MARKER: "root-marker",
    _keys.R_OUTSIDE_PREFIX: "outside-prefix",
    _keys.R_DUPLICATE_MARKER: "duplicate-key",
}


def escape_key(key: bytes) -> str:
    """A key for messages: UTF-8 where valid, every non-printable character escaped.

    A backslash is doubled, so ``a\\x01`` (four characters) and ``a`` + byte 1 differ.
    """
    text = key.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


@dataclass(frozen=True)
class Report:
    """One key that is not in the image exactly as listed."""

    key: bytes
    reason: str
    action: str
    detail: str

    def message(self) -> str:
        return f"key '{escape_key(self.key)}' {self.detail} ({self.action})"

    def as_json(self) -> dict:
        return {"key": escape_key(self.key), "reason": self.reason, "action": self.action}


@dataclass
class TreeOptions:
    """How keys become inodes.

    :param prefix: bytes stripped from every key (``b""`` keeps full paths).
    :param build_time: mtime of the root and of directories without a marker;
        ``None`` takes the image's build time (``build.build_from_columns``).
    """

    prefix: bytes = b""
    uid: int = 0
    gid: int = 0
    build_time: int | None = None
    file_mode: int = 0o644
    dir_mode: int = 0o755
    implicit_dir_mode: int | None = None  # root and unmarked directories; None: dir_mode
    all_mtime: int | None = None  # mkfs.erofs's -T: every inode gets this mtime, nsec 0
    # mkfs.erofs: an unmarked directory takes its parent's mode and mtime
    implicit_from_parent: bool = False


@dataclass
class Tree:
    """Inode and dentry columns, ready for ``write.write_image``.

    Inode 0 is the root. ``payload`` maps inode -> bytes or a path for inodes whose
    data is real (``DATA_BYTES``); meta-only trees leave it empty.
    """

    columns: dict
    reports: list = field(default_factory=list)
    payload: dict = field(default_factory=dict)
    files: int = 0
    directories: int = 0

    def reason_counts(self) -> Counter:
        return Counter(r.reason for r in self.reports)


def build_tree(cols: KeyColumns, options: TreeOptions) -> Tree:
    """Map listed keys to a tree; see SEMANTICS.md for every rule."""
    split = _keys.split_keys(cols.arena, cols.offsets, bytes(options.prefix))
    reports = [_report(cols, int(k), _CODE_TO_REASON[int(r)])
               for k, r in zip(split["rep_key"], split["rep_reason"], strict=True)]
    if split["prefix_markers"]:
        log.debug("%d key(s) equal to the prefix itself: the root's own marker, not a file",
                  split["prefix_markers"])

    ndirs = len(split["dir_parent"])
    file_key = split["file_key"]
    marker = split["dir_marker"]

    # Semantics decision: a directory beats an object of the same name, and of two
    # listings of one key the later wins; sort puts the winner first in each name group.
    # Columns are popped and rebound one at a time so that a million keys never hold two
    # copies of everything at once.
    d_parent = np.concatenate([split["dir_parent"][1:], split.pop("file_parent")])
    d_child = np.concatenate([np.arange(1, ndirs, dtype=np.int64),
                              ndirs + np.arange(len(file_key), dtype=np.int64)])
    d_name_off = np.concatenate([split.pop("dir_name_off")[1:], split.pop("file_name_off")])
    d_name_len = np.concatenate([split.pop("dir_name_len")[1:], split.pop("file_name_len")])
    rank = np.concatenate([np.full(ndirs - 1, -(1 << 62), np.int64), -file_key])
    order = _layout.sort_dentries(d_parent, d_name_off, d_name_len, cols.arena, rank)
    del rank
    dup = _layout.find_duplicates(order, d_parent, d_name_off, d_name_len, cols.arena)
    reports += _clash_reports(cols, order, dup, d_child, ndirs, file_key)
    kept = order[~dup] if dup.any() else order
    del order, dup
    d_parent = d_parent[kept]
    d_child = d_child[kept]
    d_name_off = d_name_off[kept]
    d_name_len = d_name_len[kept]
    del kept

    markers = marker[marker >= 0]
    for k in markers[cols.size[markers] > 0]:
        reports.append(_report(cols, int(k), "marker-has-data"))
    reports.sort(key=lambda r: r.key)
    for r in reports:
        log.warning("%s", r.message())

    columns = _inode_columns(cols, options, ndirs, marker, file_key, split["dir_parent"])
    columns.update(d_parent=d_parent, d_child=d_child, d_name_off=d_name_off,
                   d_name_len=d_name_len, names=cols.arena)
    nfiles = int(np.count_nonzero(d_child >= ndirs))
    log.info("tree: %d files, %d directories, %d keys reported", nfiles, ndirs, len(reports))
    return Tree(columns, reports, files=nfiles, directories=ndirs)


def _inherit_from_parent(dir_parent, marked, mode, dir_mtime, dir_nsec) -> None:
    """Unmarked directories copy their parent's mode and mtime; parents come first."""
    for d in np.flatnonzero(~marked[1:]) + 1:
        parent = dir_parent[d]
        mode[d] = mode[parent]
        dir_mtime[d] = dir_mtime[parent]
        dir_nsec[d] = dir_nsec[parent]


def _inode_columns(cols, options, ndirs, marker, file_key, dir_parent) -> dict:
    """Per-inode columns: directories 0..ndirs-1, then one inode per file key."""
    n = ndirs + len(file_key)
    marked = marker >= 0
    build_time = options.build_time if options.build_time is not None else 0
    dir_mtime = np.full(ndirs, build_time, np.int64)
    dir_mtime[marked] = cols.mtime[marker[marked]]
    dir_nsec = np.zeros(ndirs, np.uint32)
    dir_nsec[marked] = cols.nsec[marker[marked]]
    mode = np.full(n, stat.S_IFREG | options.file_mode, np.uint32)
    implicit_mode = options.dir_mode if options.implicit_dir_mode is None \
        else options.implicit_dir_mode
    mode[:ndirs] = np.where(marked, stat.S_IFDIR | options.dir_mode,
                            stat.S_IFDIR | implicit_mode)
    size = np.zeros(n, np.uint64)
    size[ndirs:] = cols.size[file_key]
    data_kind = np.full(n, DATA_HOLES, np.uint8)
    data_kind[:ndirs] = DATA_NONE
    if options.implicit_from_parent:
        _inherit_from_parent(dir_parent, marked, mode, dir_mtime, dir_nsec)
    mtime = np.concatenate([dir_mtime, cols.mtime[file_key]])
    nsec = np.concatenate([dir_nsec, cols.nsec[file_key]]).astype(np.uint32)
    if options.all_mtime is not None:
        mtime[:] = options.all_mtime
        nsec[:] = 0
    return {
        "mode": mode,
        # one value for every inode: read-only views that take no memory per inode
        "uid": np.broadcast_to(np.uint32(options.uid), (n,)),
        "gid": np.broadcast_to(np.uint32(options.gid), (n,)),
        "nlink": np.broadcast_to(np.uint32(1), (n,)),
        "rdev": np.broadcast_to(np.uint32(0), (n,)),
        "size": size,
        "mtime": mtime,
        "nsec": nsec,
        "data_kind": data_kind,
    }


def _clash_reports(cols, order, dup, d_child, ndirs, file_key) -> list:
    """Reports for entries that lost a name clash to the first entry of their group."""
    positions = np.flatnonzero(dup)
    if not len(positions):
        return []
    heads = np.maximum.accumulate(np.where(dup, 0, np.arange(len(order))))
    reports = []
    for pos in positions:
        loser = d_child[order[pos]]
        winner = d_child[order[heads[pos]]]
        reason = "shadowed-by-directory" if winner < ndirs else "duplicate-key"
        reports.append(_report(cols, int(file_key[loser - ndirs]), reason))
    return reports


def _report(cols: KeyColumns, index: int, reason: str) -> Report:
    action, detail = REASONS[reason]
    detail = detail.format(size=int(cols.size[index]))
    return Report(cols.key(index), reason, action, detail)
