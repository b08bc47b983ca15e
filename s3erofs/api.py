"""The Python API: build an image from Python calls, a bucket or a local directory.

``ImageBuilder`` collects entries (directories, files, symlinks, devices, fifos, sockets,
hard links) and writes them as one EROFS image. Paths are ``/``-separated ``str`` or
``bytes``, absolute or relative to the root; missing parent directories are created
implicitly (mode 0755, owner 0:0, the build time) and take the metadata of a later
``add_directory`` of the same path.

Example::

    from s3erofs import ImageBuilder

    b = ImageBuilder(build_time=0)
    b.add_directory("etc", mode=0o755, mtime=1_700_000_000)
    b.add_file("etc/hostname", data=b"box\\n")
    b.add_file("var/big.img", size=10 << 30)  # 10 GiB of zeros, no data stored
    b.add_symlink("etc/localtime", "/usr/share/zoneinfo/UTC")
    b.write("out.erofs")
"""

from __future__ import annotations

import bisect
import logging
import os
import stat
import time
import uuid as uuidlib
from typing import TYPE_CHECKING

import numpy as np

from . import tree as _tree
from ._fast import keys as _keys
from ._fast import layout as _layout
from .errors import TreeError
from .write import ImageOptions, ImageStats, blkszbits_of, check_volume_name, write_image

if TYPE_CHECKING:  # build imports the S3 client (pycurl, lxml): only when it is used
    from .build import BuildSummary

log = logging.getLogger(__name__)

PathArg = str | bytes | os.PathLike

NAME_MAX = 255  # EROFS_NAME_LEN
SYMLINK_MAX = 4095  # Linux refuses symlink targets of PATH_MAX (4096) bytes or more
UINT32_MAX = 0xFFFFFFFF
NSEC_PER_SEC = 1_000_000_000
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
DEV_MAJOR_MAX = 0xFFF  # new_encode_dev: 12 bits of major
DEV_MINOR_MAX = 0xFFFFF  # and 20 bits of minor

_SLASH = ord("/")
_DIR, _REG, _LNK, _CHR, _BLK, _FIFO, _SOCK, _HARDLINK = range(8)
_IFMT = {_DIR: stat.S_IFDIR, _REG: stat.S_IFREG, _LNK: stat.S_IFLNK, _CHR: stat.S_IFCHR,
         _BLK: stat.S_IFBLK, _FIFO: stat.S_IFIFO, _SOCK: stat.S_IFSOCK}
_KIND_NAMES = {_DIR: "directory", _REG: "regular file", _LNK: "symlink",
               _CHR: "character device", _BLK: "block device", _FIFO: "fifo",
               _SOCK: "socket", _HARDLINK: "hard link"}


def encode_dev(major: int, minor: int) -> int:
    """The kernel's ``new_encode_dev``: the 32-bit device number EROFS stores."""
    return (minor & 0xFF) | (major << 8) | ((minor & ~0xFF) << 12)


def _show(path: bytes) -> str:
    return _tree.escape_key(path)


class _Entry:
    """One explicitly added path (or an implicit parent directory)."""

    __slots__ = ("index", "kind", "perm", "uid", "gid", "mtime", "nsec", "size",
                 "payload", "rdev", "link", "implicit")

    def __init__(self, index, kind, perm=0, uid=0, gid=0, mtime=None, nsec=0, size=0,
                 payload=None, rdev=0, link=None, implicit=False):
        self.index = index  # position in the key arena built by write()
        self.kind = kind
        self.perm = perm
        self.uid = uid
        self.gid = gid
        self.mtime = mtime  # None: the build time
        self.nsec = nsec
        self.size = size
        self.payload = payload  # bytes, or a source path, for DATA_BYTES
        self.rdev = rdev
        self.link = link  # hard link: the target's path
        self.implicit = implicit

    def set_meta(self, meta: tuple) -> None:
        self.perm, self.uid, self.gid, self.mtime, self.nsec = meta


class _Batch:
    """Meta-only regular files from ``add_columns``, already validated."""

    __slots__ = ("arena", "offsets", "size", "mtime", "nsec", "mode", "uid", "gid")

    def __init__(self, arena, offsets, size, mtime, nsec, mode, uid, gid):
        self.arena = arena
        self.offsets = offsets
        self.size = size
        self.mtime = mtime
        self.nsec = nsec
        self.mode = mode
        self.uid = uid
        self.gid = gid

    def __len__(self):
        return len(self.size)

    def path(self, i: int) -> bytes:
        return self.arena[self.offsets[i]:self.offsets[i + 1]].tobytes()


class ImageBuilder:
    """Collect entries, then :meth:`write` them as an EROFS image.

    Nothing touches the disk before :meth:`write` (except ``add_file(source=...)``, which
    checks that the source exists). An image can be written several times.

    :param block_size: 512 to 65536, a power of two. Linux mounts block sizes up to its
        page size (4096 on most machines).
    :param build_time: superblock time and mtime of implicit directories, in seconds;
        ``None`` means the time of :meth:`write`.
    :param uuid: filesystem UUID; ``None`` means random.
    :param volume_name: volume label, at most 15 bytes.
    :param root_mode: permission bits of the root directory.
    :param root_uid: owner of the root directory.
    :param root_gid: group of the root directory.
    :param root_mtime: mtime of the root in seconds; ``None`` means ``build_time``.
    :param root_mtime_nsec: nanoseconds of the root's mtime.
    :raises ImageError: a bad block size or volume label.
    """

    def __init__(self, block_size: int = 4096, build_time: int | None = None,
                 uuid: uuidlib.UUID | None = None, volume_name: str = "",
                 root_mode: int = 0o755, root_uid: int = 0, root_gid: int = 0,
                 root_mtime: int | None = None, root_mtime_nsec: int = 0):
        blkszbits_of(block_size)
        check_volume_name(volume_name)
        self.block_size = block_size
        self.build_time = build_time
        self.uuid = uuid
        self.volume_name = volume_name
        self._root = _Entry(-1, _DIR)
        self._root.set_meta(_meta(b"", root_mode, root_uid, root_gid, root_mtime,
                                  root_mtime_nsec))
        self._entries: dict[bytes, _Entry] = {}
        self._batches: list[_Batch] = []
        self._ncolumns = 0

    def __len__(self) -> int:
        """Paths added so far, implicit directories included (the root is not counted)."""
        return len(self._entries) + self._ncolumns

    # ---- adding entries ----

    def add_directory(self, path: PathArg, mode: int = 0o755, uid: int = 0, gid: int = 0,
                      mtime: int = 0, mtime_nsec: int = 0) -> None:
        """Add a directory; an implicit directory at ``path`` takes this metadata.

        :param path: where, e.g. ``"a/b"`` or ``b"/a/b/"`` (one trailing ``/`` allowed).
        :param mode: permission bits, 0 to 0o7777.
        :param mtime: seconds since the epoch (may be negative).
        :param mtime_nsec: nanoseconds, 0 to 999999999.
        :raises TreeError: the path exists already (other than as an implicit directory)
            or is not valid.
        """
        raw = self._path(path, trailing_slash=True)
        meta = _meta(raw, mode, uid, gid, mtime, mtime_nsec)
        existing = self._entries.get(raw)
        if existing is not None and existing.kind == _DIR and existing.implicit:
            existing.implicit = False
            existing.set_meta(meta)
            return
        self._new(raw, _DIR, meta)

    def add_file(self, path: PathArg, size: int | None = None, data: bytes | None = None,
                 source: PathArg | None = None, mode: int = 0o644, uid: int = 0, gid: int = 0,
                 mtime: int = 0, mtime_nsec: int = 0) -> None:
        """Add a regular file.

        With ``data`` the file holds those bytes; with ``source`` it holds the bytes of
        that local file, copied by :meth:`write` (which fails if its size changed); with
        neither it is meta-only: ``size`` bytes that read as zeros and take no space.

        :param size: the size in bytes; with ``data`` it must match. With ``source`` it
            saves a ``stat`` (:meth:`write` fails if the file's size then differs);
            without it the source is stat'ed now.
        :param data: the file's contents.
        :param source: a local file to copy the contents from.
        :raises TreeError: a bad or clashing path, or a size that does not match.
        :raises OSError: ``source`` cannot be stat'ed.
        """
        raw = self._path(path)
        meta = _meta(raw, mode, uid, gid, mtime, mtime_nsec)
        if data is not None and source is not None:
            raise TreeError(f"cannot add '{_show(raw)}': give data or source, not both", raw)

        payload = None
        if data is not None:
            payload = bytes(data)
            actual = len(payload)
        elif source is not None:
            # a str path: the writer takes bytes payloads as the data itself
            payload = os.fsdecode(os.fspath(source))
            actual = size if size is not None else self._source_size(raw, payload)
        else:
            actual = 0 if size is None else size
        if size is not None and size != actual:
            raise TreeError(f"cannot add '{_show(raw)}': size {size} does not match the "
                            f"{actual} bytes of its data", raw)
        if not 0 <= actual < 1 << 64:
            raise TreeError(f"cannot add '{_show(raw)}': size {actual} is not from 0 to "
                            "2**64 - 1", raw)

        entry = self._new(raw, _REG, meta)
        entry.size = actual
        entry.payload = payload

    def add_symlink(self, path: PathArg, target: str | bytes, mode: int = 0o777, uid: int = 0,
                    gid: int = 0, mtime: int = 0, mtime_nsec: int = 0) -> None:
        """Add a symbolic link to ``target`` (1 to 4095 bytes, no NUL; never resolved).

        :raises TreeError: a bad or clashing path, or a bad target.
        """
        raw = self._path(path)
        meta = _meta(raw, mode, uid, gid, mtime, mtime_nsec)
        link = os.fsencode(target)
        if not 0 < len(link) <= SYMLINK_MAX:
            raise TreeError(f"cannot add symlink '{_show(raw)}': its target is {len(link)} "
                            f"bytes; it must be 1 to {SYMLINK_MAX}", raw)
        if b"\0" in link:
            raise TreeError(f"cannot add symlink '{_show(raw)}': its target contains a NUL "
                            "byte", raw)
        entry = self._new(raw, _LNK, meta)
        entry.size = len(link)
        entry.payload = link

    def add_device(self, path: PathArg, kind: str, major: int, minor: int, mode: int = 0o644,
                   uid: int = 0, gid: int = 0, mtime: int = 0, mtime_nsec: int = 0) -> None:
        """Add a device node.

        :param kind: ``"char"`` or ``"block"``.
        :param major: 0 to 4095.
        :param minor: 0 to 1048575.
        :raises TreeError: a bad or clashing path, kind or device number.
        """
        raw = self._path(path)
        meta = _meta(raw, mode, uid, gid, mtime, mtime_nsec)
        kinds = {"char": _CHR, "block": _BLK}
        if kind not in kinds:
            raise TreeError(f"cannot add device '{_show(raw)}': kind {kind!r} is not 'char' "
                            "or 'block'", raw)
        if not (0 <= major <= DEV_MAJOR_MAX and 0 <= minor <= DEV_MINOR_MAX):
            raise TreeError(f"cannot add device '{_show(raw)}': {major}:{minor} does not fit "
                            f"(major 0 to {DEV_MAJOR_MAX}, minor 0 to {DEV_MINOR_MAX})", raw)
        entry = self._new(raw, kinds[kind], meta)
        entry.rdev = encode_dev(major, minor)

    def add_fifo(self, path: PathArg, mode: int = 0o644, uid: int = 0, gid: int = 0,
                 mtime: int = 0, mtime_nsec: int = 0) -> None:
        """Add a named pipe."""
        raw = self._path(path)
        self._new(raw, _FIFO, _meta(raw, mode, uid, gid, mtime, mtime_nsec))

    def add_socket(self, path: PathArg, mode: int = 0o644, uid: int = 0, gid: int = 0,
                   mtime: int = 0, mtime_nsec: int = 0) -> None:
        """Add a Unix socket node."""
        raw = self._path(path)
        self._new(raw, _SOCK, _meta(raw, mode, uid, gid, mtime, mtime_nsec))

    def add_hardlink(self, path: PathArg, existing_path: PathArg) -> None:
        """Add ``path`` as another name of the inode at ``existing_path``.

        The inode keeps its metadata; its link count is the number of its names.
        ``existing_path`` may also come from :meth:`add_columns`; such a target is
        looked up by :meth:`write`.

        :raises TreeError: ``existing_path`` is missing or a directory, or ``path`` is bad.
        """
        raw = self._path(path)
        target = self._path(existing_path)
        found = self._entries.get(target)
        if found is not None and found.kind == _HARDLINK:
            target = found.link
        elif found is not None and found.kind == _DIR:
            raise TreeError(f"cannot hard-link '{_show(raw)}' to '{_show(target)}': "
                            "it is a directory", raw)
        elif found is None and not self._batches:
            raise TreeError(f"cannot hard-link '{_show(raw)}' to '{_show(target)}': "
                            "no such path", raw)
        entry = self._new(raw, _HARDLINK)
        entry.link = target

    def add_columns(self, paths_arena, offsets, size, mtime, nsec=None, mode=None, uid=None,
                    gid=None) -> None:
        """Add many meta-only regular files at once, without a Python object per file.

        File ``i`` is ``paths_arena[offsets[i]:offsets[i + 1]]``: a full path relative to
        the root (no leading or trailing ``/``). Missing directories are created
        implicitly. Clashes with other entries are found by :meth:`write`.

        :param paths_arena: the paths' bytes (``bytes`` or a uint8 array).
        :param offsets: ``n + 1`` non-decreasing int64 offsets into ``paths_arena``.
        :param size: ``n`` sizes in bytes.
        :param mtime: ``n`` mtimes in seconds since the epoch.
        :param nsec: ``n`` nanoseconds (0 to 999999999), or None for zeros.
        :param mode: ``n`` permission bits (``S_IFREG`` may be included), or None for 0644.
        :param uid: ``n`` owners, or None for 0.
        :param gid: ``n`` groups, or None for 0.
        :raises TreeError: bad columns; the message names the first bad path.
        """
        arena, offsets = _arena_and_offsets(paths_arena, offsets)
        n = len(offsets) - 1
        batch = _Batch(arena, offsets, None, None, None, None, None, None)
        batch.size = _column(batch, "size", size, np.uint64, 0, (1 << 64) - 1)
        batch.mtime = _column(batch, "mtime", mtime, np.int64, INT64_MIN, INT64_MAX)
        batch.nsec = _column(batch, "nsec", nsec, np.uint32, 0, NSEC_PER_SEC - 1)
        batch.uid = _column(batch, "uid", uid, np.uint32, 0, UINT32_MAX)
        batch.gid = _column(batch, "gid", gid, np.uint32, 0, UINT32_MAX)
        batch.mode = _mode_column(batch, mode)

        # the keys' rules (no '//', '.', '..', NUL, long names) are checked by write()
        full = np.diff(offsets) > 0
        edge = np.zeros(n, bool)
        edge[full] = ((arena[offsets[:-1][full]] == _SLASH)
                      | (arena[offsets[1:][full] - 1] == _SLASH))
        bad = np.flatnonzero(~full | edge)
        if len(bad):
            raw = batch.path(int(bad[0]))
            raise TreeError(f"add_columns: path '{_show(raw)}' must be non-empty and relative, "
                            "without a leading or trailing '/'", raw)
        if n:
            self._batches.append(batch)
            self._ncolumns += n

    # ---- writing ----

    def write(self, target) -> ImageStats:
        """Write the image to ``target``: a path (replaced atomically on success) or a
        seekable binary file object (written from its current position).

        :raises TreeError: a clash involving :meth:`add_columns` paths, or a hard link
            whose target is missing or a directory.
        :raises ImageError: a format limit was exceeded, or the output failed.
        """
        opts = ImageOptions(block_size=self.block_size, build_time=self.build_time,
                            uuid=self.uuid, volume_name=self.volume_name).resolved()
        started = time.monotonic()
        tree = self.to_tree(opts.build_time)
        log.info("builder: %d files, %d directories in %.2f s", tree.files, tree.directories,
                 time.monotonic() - started)
        return write_image(tree, target, opts)

    def to_tree(self, build_time: int) -> _tree.Tree:
        """The entries as a :class:`tree.Tree` (inode and dentry columns) for the writer."""
        keys = _Keys(self, build_time)
        split = _keys.split_keys(keys.arena, keys.offsets, b"")
        if len(split["rep_key"]):
            keys.raise_report(int(split["rep_key"][0]), int(split["rep_reason"][0]))
        return _Assembly(self, keys, split, build_time).tree()

    # ---- helpers ----

    @staticmethod
    def _source_size(raw: bytes, source: str) -> int:
        st = os.stat(source)
        if not stat.S_ISREG(st.st_mode):
            raise TreeError(f"cannot add '{_show(raw)}': source {source!r} is not a regular "
                            "file", raw)
        return st.st_size

    def _path(self, path: PathArg, trailing_slash: bool = False) -> bytes:
        """``path`` as validated bytes relative to the root (never the root itself)."""
        raw = os.fsencode(path).lstrip(b"/")
        if trailing_slash and raw.endswith(b"/"):
            raw = raw[:-1]
        if not raw:
            raise TreeError(f"cannot add {os.fsdecode(os.fsencode(path))!r}: it names the "
                            "root, whose metadata comes from ImageBuilder(root_mode=...)", b"")
        for name in raw.split(b"/"):
            problem = _name_problem(name)
            if problem:
                raise TreeError(f"cannot add '{_show(raw)}': {problem}", raw)
        return raw

    def _new(self, raw: bytes, kind: int, meta: tuple | None = None) -> _Entry:
        """Register a new entry at ``raw`` after its parents (created implicitly if new)."""
        existing = self._entries.get(raw)
        if existing is not None:
            raise TreeError(f"cannot add '{_show(raw)}': the path exists already "
                            f"(a {_KIND_NAMES[existing.kind]})", raw)
        self._parent(raw, raw)
        entry = _Entry(len(self._entries), kind)
        if meta is not None:
            entry.set_meta(meta)
        self._entries[raw] = entry
        return entry

    def _parent(self, raw: bytes, added: bytes) -> None:
        parent = raw.rpartition(b"/")[0]
        if not parent:
            return
        found = self._entries.get(parent)
        if found is None:
            self._parent(parent, added)
            self._entries[parent] = _Entry(len(self._entries), _DIR, perm=0o755,
                                           implicit=True)
        elif found.kind != _DIR:
            raise TreeError(f"cannot add '{_show(added)}': '{_show(parent)}' is not a "
                            f"directory (a {_KIND_NAMES[found.kind]})", added)


def _meta(raw: bytes, mode, uid, gid, mtime, nsec) -> tuple:
    """Checked ``(mode, uid, gid, mtime, nsec)``; ``mtime`` None means the build time."""
    problem = None
    if not (isinstance(mode, int) and 0 <= mode <= 0o7777):
        shown = f"{mode:#o}" if isinstance(mode, int) else repr(mode)
        problem = f"mode {shown} is not permission bits (0 to 0o7777)"
    elif not (isinstance(uid, int) and 0 <= uid <= UINT32_MAX):
        problem = f"uid {uid!r} is not from 0 to {UINT32_MAX}"
    elif not (isinstance(gid, int) and 0 <= gid <= UINT32_MAX):
        problem = f"gid {gid!r} is not from 0 to {UINT32_MAX}"
    elif mtime is not None and not (isinstance(mtime, int) and INT64_MIN <= mtime <= INT64_MAX):
        problem = f"mtime {mtime!r} is not a 64-bit integer"
    elif not (isinstance(nsec, int) and 0 <= nsec < NSEC_PER_SEC):
        problem = f"mtime_nsec {nsec!r} is not from 0 to {NSEC_PER_SEC - 1}"
    if problem:
        where = f"'{_show(raw)}'" if raw else "the root"
        raise TreeError(f"cannot add {where}: {problem}", raw)
    return mode, uid, gid, mtime, nsec


def _name_problem(name: bytes) -> str | None:
    if not name:
        return "it has an empty component ('//' or a trailing '/')"
    if name in (b".", b".."):
        return "'.' and '..' components are not allowed"
    if len(name) > NAME_MAX:
        return f"a component is {len(name)} bytes long; EROFS names hold at most {NAME_MAX}"
    if b"\0" in name:
        return "it contains a NUL byte"
    return None


def _arena_and_offsets(paths_arena, offsets):
    if isinstance(paths_arena, np.ndarray):
        arena = np.ascontiguousarray(paths_arena, np.uint8)
    else:
        arena = np.frombuffer(bytes(paths_arena), np.uint8)
    offsets = np.ascontiguousarray(offsets, np.int64)
    if offsets.ndim != 1 or len(offsets) == 0:
        raise TreeError("add_columns: offsets must be a 1-d array of n + 1 positions")
    steps = np.diff(offsets)
    if offsets[0] < 0 or offsets[-1] > len(arena) or np.any(steps < 0):
        raise TreeError(f"add_columns: offsets must rise from 0 to at most {len(arena)} "
                        "(the arena's length)")
    base = int(offsets[0])
    return arena[base:int(offsets[-1])], offsets - base


def _column(batch: _Batch, name: str, values, dtype, low: int, high: int) -> np.ndarray:
    """``values`` as a length-n column of ``dtype``, each checked to be in [low, high]."""
    n = len(batch.offsets) - 1
    if values is None:
        return np.zeros(n, dtype)
    raw = np.asarray(values)
    if raw.shape != (n,):
        raise TreeError(f"add_columns: {name} has shape {raw.shape}, expected ({n},)")
    if raw.dtype.kind not in "iu":
        raise TreeError(f"add_columns: {name} must hold integers, not {raw.dtype}")
    # compare only where the dtype can exceed a bound, so the bound fits the dtype
    info = np.iinfo(raw.dtype)
    out = np.zeros(n, bool)
    if info.min < low:
        out |= raw < low
    if info.max > high:
        out |= raw > high
    bad = np.flatnonzero(out)
    if len(bad):
        i = int(bad[0])
        raise TreeError(f"add_columns: '{_show(batch.path(i))}' has {name} {int(raw[i])}, "
                        f"not from {low} to {high}", batch.path(i))
    return raw.astype(dtype)


def _mode_column(batch: _Batch, mode) -> np.ndarray:
    n = len(batch.offsets) - 1
    if mode is None:
        return np.full(n, stat.S_IFREG | 0o644, np.uint32)
    raw = _column(batch, "mode", mode, np.uint32, 0, UINT32_MAX)
    rest = raw & ~np.uint32(0o7777)
    bad = np.flatnonzero((rest != 0) & (rest != stat.S_IFREG))
    if len(bad):
        i = int(bad[0])
        raise TreeError(f"add_columns: '{_show(batch.path(i))}' has mode {int(raw[i]):#o}; "
                        "only permission bits (and S_IFREG) are allowed", batch.path(i))
    return (raw & np.uint32(0o7777)) | np.uint32(stat.S_IFREG)


class _Keys:
    """Every path as one key arena: explicit entries first (directories end in '/'),
    then the ``add_columns`` batches; plus per-key metadata columns."""

    def __init__(self, builder: ImageBuilder, build_time: int):
        entries = builder._entries
        self.builder = builder
        self.nexplicit = len(entries)
        self.explicit_paths = list(entries)
        explicit = [p + b"/" if e.kind == _DIR else p for p, e in entries.items()]
        lengths = [len(p) for p in explicit]
        batches = builder._batches

        self.arena = np.concatenate([np.frombuffer(b"".join(explicit), np.uint8)]
                                    + [b.arena for b in batches])
        counts = np.concatenate([np.asarray(lengths, np.int64)]
                                + [np.diff(b.offsets) for b in batches])
        self.offsets = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=self.offsets[1:])

        values = list(entries.values())
        self.mode = np.concatenate(
            [np.fromiter((_IFMT.get(e.kind, 0) | e.perm for e in values), np.uint32,
                         len(values))] + [b.mode for b in batches])
        self.uid = np.concatenate([_ints(values, "uid", np.uint32)] + [b.uid for b in batches])
        self.gid = np.concatenate([_ints(values, "gid", np.uint32)] + [b.gid for b in batches])
        self.mtime = np.concatenate(
            [np.fromiter((build_time if e.mtime is None else e.mtime for e in values),
                         np.int64, len(values))] + [b.mtime for b in batches])
        self.nsec = np.concatenate([_ints(values, "nsec", np.uint32)]
                                   + [b.nsec for b in batches])
        self.size = np.concatenate([_ints(values, "size", np.uint64)]
                                   + [b.size for b in batches])
        self.rdev = np.concatenate([_ints(values, "rdev", np.uint32)]
                                   + [np.zeros(len(b), np.uint32) for b in batches])
        self.data_kind = np.concatenate(
            [np.fromiter((_data_kind(e) for e in values), np.uint8, len(values))]
            + [np.full(len(b), _tree.DATA_HOLES, np.uint8) for b in batches])

    def path(self, key: int) -> bytes:
        if key < self.nexplicit:
            return self.explicit_paths[key]
        return self.arena[self.offsets[key]:self.offsets[key + 1]].tobytes()

    def raise_report(self, key: int, reason: int) -> None:
        """A split_keys reason code as the error the explicit methods would raise."""
        raw = self.path(key)
        for name in raw.split(b"/"):
            problem = _name_problem(name)
            if problem:
                raise TreeError(f"cannot add '{_show(raw)}': {problem}", raw)
        raise TreeError(f"cannot add '{_show(raw)}': rejected (reason {reason})", raw)


def _ints(values, attr, dtype) -> np.ndarray:
    return np.fromiter((getattr(e, attr) for e in values), dtype, len(values))


def _data_kind(entry: _Entry) -> int:
    if entry.kind in (_REG, _LNK):
        return _tree.DATA_HOLES if entry.payload is None else _tree.DATA_BYTES
    return _tree.DATA_NONE


class _Assembly:
    """split_keys output -> inode and dentry columns; hard links share their target's inode."""

    def __init__(self, builder: ImageBuilder, keys: _Keys, split: dict, build_time: int):
        self.builder = builder
        self.keys = keys
        self.split = split
        self.build_time = build_time
        self.ndirs = len(split["dir_parent"])

    def tree(self) -> _tree.Tree:
        split, keys, ndirs = self.split, self.keys, self.ndirs
        file_key = split["file_key"]
        self.d_parent = np.concatenate([split["dir_parent"][1:], split["file_parent"]])
        self.d_child = np.concatenate([np.arange(1, ndirs, dtype=np.int64),
                                       ndirs + np.arange(len(file_key), dtype=np.int64)])
        self.d_name_off = np.concatenate([split["dir_name_off"][1:], split["file_name_off"]])
        self.d_name_len = np.concatenate([split["dir_name_len"][1:], split["file_name_len"]])
        rank = np.concatenate([np.full(ndirs - 1, -1, np.int64), file_key])
        self.order = _layout.sort_dentries(self.d_parent, self.d_name_off, self.d_name_len,
                                           keys.arena, rank)
        dup = _layout.find_duplicates(self.order, self.d_parent, self.d_name_off,
                                      self.d_name_len, keys.arena)
        if dup.any():
            self._raise_clash(int(np.argmax(dup)))

        # inodes: directories, then every file key that is not a hard link
        is_link = np.zeros(len(file_key), bool)
        links = [(int(j), int(file_key[j])) for j in np.flatnonzero(file_key < keys.nexplicit)
                 if self._entry(int(file_key[j])).kind == _HARDLINK]
        for j, _ in links:
            is_link[j] = True
        file_inode = np.full(len(file_key), -1, np.int64)
        file_inode[~is_link] = ndirs + np.arange(int(np.count_nonzero(~is_link)))
        for j, k in links:
            file_inode[j] = self._link_inode(k, file_inode)
        self.d_child[ndirs - 1:] = file_inode

        columns = self._inode_columns(file_key[~is_link])
        order = self.order
        columns.update(d_parent=self.d_parent[order], d_child=self.d_child[order],
                       d_name_off=self.d_name_off[order], d_name_len=self.d_name_len[order],
                       names=keys.arena)
        counts = np.bincount(columns["d_child"], minlength=len(columns["mode"]))
        columns["nlink"] = np.maximum(counts, 1).astype(np.uint32)
        payload = self._payload(file_key, file_inode)
        nfiles = len(file_key) - len(links)
        return _tree.Tree(columns, payload=payload, files=nfiles, directories=ndirs)

    def _entry(self, key: int) -> _Entry:
        return self.builder._entries[self.keys.explicit_paths[key]]

    def _inode_columns(self, inode_keys: np.ndarray) -> dict:
        """Per-inode columns: directories from their marker key (or defaults), then files."""
        keys, b = self.keys, self.builder
        marker = self.split["dir_marker"]
        marked = marker >= 0
        src = np.concatenate([marker, inode_keys])
        has = np.concatenate([marked, np.ones(len(inode_keys), bool)])
        pick = src[has]

        def column(values, default, dtype):
            out = np.full(len(src), default, dtype)
            out[has] = values[pick]
            return out

        cols = {
            "mode": column(keys.mode, stat.S_IFDIR | 0o755, np.uint32),
            "uid": column(keys.uid, 0, np.uint32),
            "gid": column(keys.gid, 0, np.uint32),
            "rdev": column(keys.rdev, 0, np.uint32),
            "size": column(keys.size, 0, np.uint64),
            "mtime": column(keys.mtime, self.build_time, np.int64),
            "nsec": column(keys.nsec, 0, np.uint32),
            "data_kind": column(keys.data_kind, _tree.DATA_NONE, np.uint8),
        }
        root = b._root
        cols["mode"][0] = stat.S_IFDIR | root.perm
        cols["uid"][0], cols["gid"][0], cols["nsec"][0] = root.uid, root.gid, root.nsec
        cols["mtime"][0] = self.build_time if root.mtime is None else root.mtime
        return cols

    def _payload(self, file_key: np.ndarray, file_inode: np.ndarray) -> dict:
        payload = {}
        nexp = self.keys.nexplicit
        for j in np.flatnonzero(file_key < nexp):
            entry = self._entry(int(file_key[j]))
            if entry.payload is not None:
                payload[int(file_inode[j])] = entry.payload
        return payload

    def _link_inode(self, key: int, file_inode: np.ndarray) -> int:
        """The inode of a hard link's target (an explicit entry or an add_columns path)."""
        raw = self.keys.path(key)
        target = self._entry(key).link
        found = self.builder._entries.get(target)
        if found is not None:
            if found.kind == _DIR:
                raise TreeError(f"cannot hard-link '{_show(raw)}' to '{_show(target)}': "
                                "it is a directory", raw)
            position = self._file_position(found.index)
            return int(file_inode[position])
        child = self._lookup(target)
        if child is None:
            raise TreeError(f"cannot hard-link '{_show(raw)}' to '{_show(target)}': "
                            "no such path", raw)
        if child < self.ndirs:
            raise TreeError(f"cannot hard-link '{_show(raw)}' to '{_show(target)}': "
                            "it is a directory", raw)
        return int(file_inode[child - self.ndirs])

    def _file_position(self, key: int) -> int:
        if not hasattr(self, "_positions"):
            self._positions = np.full(len(self.keys.offsets) - 1, -1, np.int64)
            self._positions[self.split["file_key"]] = np.arange(len(self.split["file_key"]))
        return int(self._positions[key])

    def _lookup(self, path: bytes) -> int | None:
        """The (pre-link) child id of the dentry at ``path``, by binary search per level."""
        order = self.order
        if not hasattr(self, "_sorted_parents"):
            self._sorted_parents = self.d_parent[order]
        parents = self._sorted_parents
        arena = self.keys.arena
        node = 0
        for name in path.split(b"/"):
            lo = int(np.searchsorted(parents, node, "left"))
            hi = int(np.searchsorted(parents, node, "right"))

            def name_at(i):
                d = order[i]
                return arena[self.d_name_off[d]:self.d_name_off[d] + self.d_name_len[d]].tobytes()

            i = bisect.bisect_left(range(lo, hi), name, key=name_at) + lo
            if i >= hi or name_at(i) != name:
                return None
            # a file's id matches no d_parent, so a path through a file finds nothing
            node = int(self.d_child[order[i]])
        return node

    def _raise_clash(self, position: int) -> None:
        """Two dentries with one name: a duplicate path, or a path below a non-directory."""
        children = sorted(int(self.d_child[self.order[p]]) for p in (position - 1, position))
        file_keys = [int(self.split["file_key"][c - self.ndirs]) for c in children
                     if c >= self.ndirs]
        raw = self.keys.path(file_keys[-1])
        if children[0] < self.ndirs and self._implicit(children[0]):
            below = self._key_below(children[0])
            raise TreeError(f"cannot add '{_show(below)}': '{_show(raw)}' is not a directory "
                            f"(a {self._kind_of(file_keys[0])})", below)
        first = -1 if children[0] < self.ndirs else min(file_keys)
        raise TreeError(f"cannot add '{_show(raw)}': the path exists already "
                        f"(a {self._kind_of(first)})", raw)

    def _implicit(self, directory: int) -> bool:
        """True for a directory that exists only because paths below it were added."""
        marker = int(self.split["dir_marker"][directory])
        return marker < 0 or (marker < self.keys.nexplicit and self._entry(marker).implicit)

    def _kind_of(self, key: int) -> str:
        if key < 0:
            return _KIND_NAMES[_DIR]
        if key < self.keys.nexplicit:
            return _KIND_NAMES[self._entry(key).kind]
        return _KIND_NAMES[_REG]

    def _key_below(self, directory: int) -> bytes:
        """An added path that made the implicit ``directory`` exist."""
        split = self.split
        while True:
            files = np.flatnonzero(split["file_parent"] == directory)
            if len(files):
                return self.keys.path(int(split["file_key"][files[0]]))
            directory = int(np.flatnonzero(split["dir_parent"][1:] == directory)[0]) + 1
            if not self._implicit(directory):
                return self.keys.path(int(split["dir_marker"][directory]))[:-1]


# ---- one-call builds ----

def build_from_bucket(url: str, image, *, endpoint_url: str | None = None,
                      region: str | None = None, url_style: str = "auto",
                      anonymous: bool = False, access_key: str | None = None,
                      secret_key: str | None = None, session_token: str | None = None,
                      passwd_file: str | None = None, profile: str | None = None,
                      signature: int = 4, list_version: int = 2, max_keys: int = 1000,
                      max_attempts: int = 5, keep_prefix: bool = False, strict: bool = False,
                      report_path=None, uid: int = 0, gid: int = 0, block_size: int = 4096,
                      build_time: int | None = None, uuid: uuidlib.UUID | None = None,
                      volume_name: str = "") -> BuildSummary:
    """List ``s3://BUCKET[/PREFIX]`` and write a meta-only image of it to ``image``.

    Credentials, region and endpoint follow the command line's rules (explicit values,
    ``passwd_file``, ``AWS_*`` variables, then the profile files).

    :param url: ``s3://BUCKET[/PREFIX]``; the prefix's contents become the root unless
        ``keep_prefix``.
    :param image: a path (replaced atomically on success) or a seekable binary file.
    :param anonymous: send unsigned requests (public buckets).
    :param signature: 4 (default) or 2.
    :param strict: raise StrictKeyError (and write nothing) if any key is skipped or changed.
    :param report_path: write skipped or changed keys there as JSON lines.
    :param uid: owner of every inode.
    :param gid: group of every inode.
    :param build_time: superblock time and mtime of the root and of directories without a
        marker object; ``None`` is now.
    :returns: the :class:`BuildSummary` (counts, reports, timings, ``line()``).
    :raises S3Error: S3 answered with an error, or requests failed after retries.
    :raises CredentialsError: no usable credentials.
    """
    from . import build, credentials
    from .s3client import ClientConfig
    from .tree import TreeOptions

    creds = credentials.resolve_credentials(
        access_key=access_key, secret_key=secret_key, session_token=session_token,
        passwd_file=passwd_file, profile=profile, anonymous=anonymous)
    config = ClientConfig(
        endpoint_url=credentials.resolve_endpoint(endpoint_url, profile=profile),
        region=credentials.resolve_region(region, profile=profile), url_style=url_style,
        signature=None if creds is None else signature, credentials=creds,
        max_attempts=max_attempts)
    image_options = ImageOptions(block_size=block_size, build_time=build_time, uuid=uuid,
                                 volume_name=volume_name).resolved()
    tree_options = TreeOptions(uid=uid, gid=gid, build_time=image_options.build_time)
    return build.build_from_bucket(
        build.BucketSource.parse(url), image, config=config, tree_options=tree_options,
        image_options=image_options, list_version=list_version, max_keys=max_keys,
        keep_prefix=keep_prefix, strict=strict, report_path=report_path)


def build_from_directory(src: PathArg, image, *, meta_only: bool = False,
                         block_size: int = 4096, build_time: int | None = None,
                         uuid: uuidlib.UUID | None = None, volume_name: str = "",
                         uid: int | None = None, gid: int | None = None,
                         cross_mounts: bool = False) -> BuildSummary:
    """Copy a local directory tree into an image (see :mod:`s3erofs.localsrc`).

    :param src: the directory whose contents become the root (its own metadata is the
        root's).
    :param image: a path (replaced atomically on success) or a seekable binary file.
    :param meta_only: store sizes only; every regular file reads as zeros.
    :param uid: owner of every inode; ``None`` keeps each file's own.
    :param gid: group of every inode; ``None`` keeps each file's own.
    :param cross_mounts: also descend into file systems mounted below ``src``.
    :returns: the :class:`BuildSummary`.
    :raises SourceError: an entry of ``src`` cannot be read.
    """
    from . import localsrc

    options = ImageOptions(block_size=block_size, build_time=build_time, uuid=uuid,
                           volume_name=volume_name)
    return localsrc.build_from_directory(src, image, meta_only=meta_only,
                                         image_options=options, uid=uid, gid=gid,
                                         cross_mounts=cross_mounts)


def open(image):  # noqa: A001 - like tarfile.open
    """Open an image for reading (:func:`s3erofs.reader.open`): ``walk``, ``listdir``,
    ``stat``, ``readlink``, ``read``.

    :param image: a path or a binary file object.
    """
    from . import reader

    return reader.open(image)
