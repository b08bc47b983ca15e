"""Compare an image with a fresh listing of its bucket: keys missing, paths extra, changes.

The expected tree comes from ``tree.build_tree`` on the new listing, so odd keys (markers,
clashes, skipped names) are judged exactly as a build would judge them. The image is walked
once; each of its regular files and directories is looked up in a dict of expected paths and
removed from it, so what is left at the end is missing from the image.

What is compared: regular files (size, and mtime with nanoseconds) and directory markers
(mtime). Directories that no marker key made (implicit directories) carry the image's build
time with 0 ns, which is how a directory in the image is told to come from a marker; a marker
whose mtime is exactly the build time is therefore indistinguishable from an implicit
directory (and then also equal to it).
"""

import logging
import stat as statmod
from dataclasses import dataclass, field

import numpy as np

from . import reader
from .build import BucketSource, list_source
from .errors import CorruptImageError
from .s3client import ClientConfig
from .tree import TreeOptions, build_tree

log = logging.getLogger(__name__)

# kinds of expected paths
FILE, MARKER, IMPLICIT = 0, 1, 2

# build_tree gives marker directories dir_mode and the others implicit_dir_mode; two
# different permission sets let the expected tree say which directory had a marker
_MARKER_PERMS = 0o755
_IMPLICIT_PERMS = 0o700


@dataclass
class VerifyResult:
    """Differences between an image and its bucket.

    ``missing``: keys in the bucket that are not in the image (a marker key ends in '/').
    ``extra``: absolute image paths with no key (a directory from a marker ends in '/').
    ``changed``: ``(key, what, image_value, bucket_value)`` with ``what`` ``"size"`` (bytes)
    or ``"mtime"`` (nanoseconds since the epoch, UTC).
    ``checked``: keys of the listing that map to a path (files plus markers).
    """

    missing: list[bytes] = field(default_factory=list)
    extra: list[bytes] = field(default_factory=list)
    changed: list[tuple[bytes, str, int, int]] = field(default_factory=list)
    checked: int = 0
    reported: int = 0  # keys build_tree reported (skipped or changed by the key rules)

    @property
    def changed_keys(self) -> list[bytes]:
        """Keys with at least one changed field, sorted."""
        return sorted({key for key, *_ in self.changed})

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.changed)


def verify_image(image_path, source: BucketSource, config: ClientConfig, *,
                 keep_prefix: bool = False, list_version: int = 2, max_keys: int = 1000,
                 progress=None) -> VerifyResult:
    """List ``source`` again and compare it with the image at ``image_path``.

    :param keep_prefix: the image was built with ``--keep-prefix`` (paths hold the prefix).
    :param progress: called as ``progress(pages, keys)`` while listing.
    :raises CorruptImageError: the image is damaged (checked before listing the bucket).
    :raises S3Error: listing failed.
    """
    with reader.open(image_path) as image:
        columns, pages, _ = list_source(source, config, list_version=list_version,
                                        max_keys=max_keys, progress=progress)
        log.info("listed %d keys in %d pages from s3://%s/%s", len(columns), pages,
                 source.bucket, source.prefix)
        prefix = b"" if keep_prefix else source.prefix.encode()
        return compare(image, columns, prefix)


def compare(image: reader.Image, columns, prefix: bytes = b"") -> VerifyResult:
    """Compare an opened image with listed keys (``KeyColumns``) mapped under ``prefix``."""
    expected, result = expected_paths(columns, prefix)
    sb = image.superblock
    build_time_ns = sb.epoch * 1_000_000_000

    for rel, st in _walk_image(image):
        _compare_one(rel, st, expected.pop(rel, None), prefix, build_time_ns, result)

    for rel, (kind, _, _) in expected.items():
        if kind == FILE:
            result.missing.append(prefix + rel)
        elif kind == MARKER:
            result.missing.append(prefix + rel + b"/")

    result.missing.sort()
    result.extra.sort()
    result.changed.sort(key=lambda change: (change[0], change[1] != "size"))  # size first
    log.info("verify: %d keys checked, %d missing, %d extra, %d changed", result.checked,
             len(result.missing), len(result.extra), len(result.changed_keys))
    return result


def expected_paths(columns, prefix: bytes) -> tuple[dict, VerifyResult]:
    """``{relative path: (kind, size, mtime_ns)}`` of the tree a build would write."""
    tree = build_tree(columns, TreeOptions(prefix=prefix, dir_mode=_MARKER_PERMS,
                                           implicit_dir_mode=_IMPLICIT_PERMS, build_time=0))
    cols = tree.columns
    names = cols["names"].tobytes()
    child, parent = cols["d_child"], cols["d_parent"]
    name_off, name_len = cols["d_name_off"], cols["d_name_len"]
    dir_paths = _dir_paths(tree, names)

    paths = [dir_paths[p] + names[o:o + n] for p, o, n in
             zip(parent.tolist(), name_off.tolist(), name_len.tolist(), strict=True)]
    is_marker = cols["mode"][child] & 0o777 == _MARKER_PERMS
    kind = np.where(child >= tree.directories, FILE, np.where(is_marker, MARKER, IMPLICIT))
    # Python ints: seconds * 1e9 overflows int64 past the year 2262
    mtime_ns = [m * 1_000_000_000 + n for m, n in
                zip(cols["mtime"][child].tolist(), cols["nsec"][child].tolist(), strict=True)]

    expected = dict(zip(paths, zip(kind.tolist(), cols["size"][child].tolist(), mtime_ns,
                                   strict=True), strict=True))
    checked = int(np.count_nonzero(kind != IMPLICIT))
    return expected, VerifyResult(checked=checked, reported=len(tree.reports))


def _dir_paths(tree, names: bytes) -> list[bytes]:
    """Relative path of each directory inode with a trailing '/' (the root's is empty)."""
    cols = tree.columns
    ndirs = tree.directories
    is_dir = cols["d_child"] < ndirs
    parent_of = [0] * ndirs
    name_of = [b""] * ndirs
    for c, p, o, n in zip(cols["d_child"][is_dir].tolist(), cols["d_parent"][is_dir].tolist(),
                          cols["d_name_off"][is_dir].tolist(),
                          cols["d_name_len"][is_dir].tolist(), strict=True):
        parent_of[c], name_of[c] = p, names[o:o + n]

    paths: list[bytes | None] = [None] * ndirs
    paths[0] = b""
    for start in range(1, ndirs):
        # climb to the nearest directory whose path is known, then fill in on the way down
        chain, up = [], start
        while paths[up] is None:
            chain.append(up)
            up = parent_of[up]
        path = paths[up]
        for d in reversed(chain):
            path = path + name_of[d] + b"/"
            paths[d] = path
    return paths


def _walk_image(image: reader.Image):
    """``(relative path, Stat)`` of every inode below the root, parents before children."""
    root = image.superblock.root_nid
    visited = {root}
    stack = [(root, b"")]
    while stack:
        nid, dir_path = stack.pop()
        for entry in image.scandir_nid(nid):
            path = dir_path + b"/" + entry.name if dir_path else entry.name
            st = image.inode(entry.nid)
            if statmod.S_ISDIR(st.mode):
                if entry.nid in visited:
                    raise CorruptImageError(f"directory loop: '/{path.decode(errors='replace')}' "
                                            f"is nid {entry.nid}, already visited",
                                            nid=entry.nid)
                visited.add(entry.nid)
                stack.append((entry.nid, path))
            yield path, st


def _compare_one(rel: bytes, st: reader.Stat, want, prefix: bytes, build_time_ns: int,
                 result: VerifyResult) -> None:
    """Judge one image inode against what the bucket expects at its path (or None)."""
    is_dir = statmod.S_ISDIR(st.mode)
    image_mtime = st.mtime_ns
    from_marker = is_dir and image_mtime != build_time_ns
    shown = b"/" + rel + (b"/" if is_dir else b"")

    if want is None:
        # an implicit directory with no key is judged by its files, which are extra
        if not is_dir or from_marker:
            result.extra.append(shown)
        return

    kind, size, mtime_ns = want
    if is_dir != (kind != FILE):
        # a file became a directory or the other way round; an implicit directory is
        # judged by its files, as above
        if not is_dir or from_marker:
            result.extra.append(shown)
        if kind != IMPLICIT:
            result.missing.append(prefix + rel + (b"/" if kind == MARKER else b""))
        return

    if kind == FILE:
        if st.size != size:
            result.changed.append((prefix + rel, "size", st.size, size))
        if image_mtime != mtime_ns:
            result.changed.append((prefix + rel, "mtime", image_mtime, mtime_ns))
    elif kind == MARKER and image_mtime != mtime_ns:
        if from_marker:
            result.changed.append((prefix + rel + b"/", "mtime", image_mtime, mtime_ns))
        else:
            result.missing.append(prefix + rel + b"/")
    elif kind == IMPLICIT and from_marker:
        # the marker key that gave this directory its mtime is gone
        result.extra.append(shown)
