"""Build an image from a local directory tree, with its data or sizes only.

Every entry below the source directory is copied as what ``lstat`` shows: directories,
regular files (their bytes, copied by the writer), symlinks (never followed), hard links
(one inode per ``(st_dev, st_ino)``, its link count the number of its names in the tree),
character and block devices, fifos and sockets, with mode, owner, group and mtime to the
nanosecond. Names are bytes, so names that are not UTF-8 are kept as they are.

Limits, by design:

- A regular file that is one hole (``lseek(SEEK_DATA)`` finds no data) is stored
  meta-only, i.e. it takes no space and reads as zeros. Partly sparse files are stored
  with their holes written out as zeros.
- Mount points below the source are not crossed (as ``tar --one-file-system``): the
  mount point stays as an empty directory with the metadata ``lstat`` shows for it, and a
  WARNING names it. ``cross_mounts=True`` descends into them.
- Extended attributes, ACLs and file capabilities are not copied.
- An existing image file inside the source is left out (WARNING).
"""

import errno
import logging
import os
import stat
import time
from collections import Counter

from .api import ImageBuilder
from .build import BuildSummary
from .errors import S3erofsError, SourceError
from .tree import escape_key
from .write import ImageOptions

log = logging.getLogger(__name__)


def build_from_directory(src, image, *, meta_only: bool = False, image_options: ImageOptions,
                         uid: int | None = None, gid: int | None = None,
                         cross_mounts: bool = False) -> BuildSummary:
    """Copy the tree at ``src`` into an EROFS image at ``image``.

    :param src: the directory whose contents become the root; the root takes its mode,
        owner and mtime. ``src`` itself may be a symlink to a directory.
    :param image: a path (replaced atomically on success) or a seekable binary file.
    :param meta_only: store regular files as sizes only (reads return zeros).
    :param image_options: block size, build time, UUID and label.
    :param uid: owner of every inode; ``None`` keeps each entry's own.
    :param gid: group of every inode; ``None`` keeps each entry's own.
    :param cross_mounts: descend into file systems mounted below ``src``.
    :raises SourceError: ``src`` is not a directory, or an entry cannot be read.
    """
    opts = image_options.resolved()
    summary = BuildSummary()
    root = os.fsencode(src)
    try:
        root_st = os.stat(root)
    except OSError as exc:
        raise SourceError(f"cannot read source directory {_show(root)}: {exc.strerror}") \
            from None
    if not stat.S_ISDIR(root_st.st_mode):
        raise SourceError(f"source {_show(root)} is not a directory")

    started = time.monotonic()
    walker = _Walker(root, root_st, opts, meta_only, uid, gid, cross_mounts, image)
    walker.walk()
    summary.timings["walk"] = time.monotonic() - started
    counts = walker.counts
    summary.keys = sum(counts.values())
    summary.directories = counts["directory"] + 1  # the root too, as for a bucket
    summary.files = summary.keys - counts["directory"]
    log.info("walk: %s in %.2f s", ", ".join(f"{n} {kind}" for kind, n in
                                             sorted(counts.items())) or "empty directory",
             summary.timings["walk"])

    started = time.monotonic()
    try:
        summary.image = walker.builder.write(image)
    except OSError as exc:
        if exc.filename is None or isinstance(exc, S3erofsError):
            raise
        raise SourceError(f"cannot read {_show(os.fsencode(exc.filename))}: "
                          f"{exc.strerror}") from None
    summary.timings["write"] = time.monotonic() - started
    summary.image_bytes = summary.image.bytes
    return summary


def _show(path: bytes) -> str:
    return f"'{escape_key(path)}'"


class _Walker:
    """Depth-first walk with os.scandir on bytes paths, feeding an ImageBuilder."""

    def __init__(self, root: bytes, root_st, opts, meta_only, uid, gid, cross_mounts, image):
        self.root = root
        self.root_dev = root_st.st_dev
        self.meta_only = meta_only
        self.uid = uid
        self.gid = gid
        self.cross_mounts = cross_mounts
        self.counts = Counter()
        self.seen = {}  # (st_dev, st_ino) -> first path, for hard links
        self.skip = self._image_identity(image)
        sec, nsec = divmod(root_st.st_mtime_ns, 1_000_000_000)
        self.builder = ImageBuilder(
            block_size=opts.block_size, build_time=opts.build_time, uuid=opts.uuid,
            volume_name=opts.volume_name, root_mode=stat.S_IMODE(root_st.st_mode),
            root_uid=root_st.st_uid if uid is None else uid,
            root_gid=root_st.st_gid if gid is None else gid,
            root_mtime=sec, root_mtime_nsec=nsec)

    @staticmethod
    def _image_identity(image):
        """(st_dev, st_ino) of an existing image file, so a rebuild does not copy it."""
        if not isinstance(image, (str, bytes, os.PathLike)):
            return None
        try:
            st = os.stat(image)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def walk(self) -> None:
        stack = [b""]
        while stack:
            rel = stack.pop()
            for name, st in self._scan(rel):
                child = rel + b"/" + name if rel else name
                if self._add(child, st):
                    stack.append(child)

    def _scan(self, rel: bytes) -> list:
        """``(name, lstat)`` of each entry of the directory ``rel``, sorted by name."""
        path = os.path.join(self.root, rel) if rel else self.root
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
                return [(e.name, e.stat(follow_symlinks=False)) for e in entries]
        except OSError as exc:
            where = os.fsencode(exc.filename) if exc.filename else path
            raise SourceError(f"cannot read {_show(where)}: {exc.strerror}") from None

    def _add(self, rel: bytes, st) -> bool:
        """Add one entry; True for a directory the walk should enter."""
        mode = st.st_mode
        path = os.path.join(self.root, rel)
        sec, nsec = divmod(st.st_mtime_ns, 1_000_000_000)
        meta = {"mode": stat.S_IMODE(mode), "mtime": sec, "mtime_nsec": nsec,
                "uid": st.st_uid if self.uid is None else self.uid,
                "gid": st.st_gid if self.gid is None else self.gid}
        b = self.builder

        if stat.S_ISDIR(mode):
            b.add_directory(rel, **meta)
            self.counts["directory"] += 1
            if st.st_dev != self.root_dev and not self.cross_mounts:
                log.warning("%s is a mount point; its contents are not copied", _show(path))
                return False
            return True

        identity = (st.st_dev, st.st_ino)
        if identity == self.skip:
            log.warning("%s is the image being written; it is left out", _show(path))
            return False
        if st.st_nlink > 1:
            first = self.seen.get(identity)
            if first is not None:
                b.add_hardlink(rel, first)
                self.counts["hard link"] += 1
                return False
            self.seen[identity] = rel

        if stat.S_ISREG(mode):
            if self.meta_only or self._fully_sparse(path, st):
                b.add_file(rel, size=st.st_size, **meta)
            else:
                b.add_file(rel, source=path, size=st.st_size, **meta)
            self.counts["file"] += 1
        elif stat.S_ISLNK(mode):
            b.add_symlink(rel, self._readlink(path), **meta)
            self.counts["symlink"] += 1
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            kind = "char" if stat.S_ISCHR(mode) else "block"
            b.add_device(rel, kind, os.major(st.st_rdev), os.minor(st.st_rdev), **meta)
            self.counts["device"] += 1
        elif stat.S_ISFIFO(mode):
            b.add_fifo(rel, **meta)
            self.counts["fifo"] += 1
        elif stat.S_ISSOCK(mode):
            b.add_socket(rel, **meta)
            self.counts["socket"] += 1
        else:
            log.warning("%s has file type %#o, which EROFS cannot hold; skipped", _show(path),
                        stat.S_IFMT(mode))
        return False

    @staticmethod
    def _readlink(path: bytes) -> bytes:
        try:
            return os.readlink(path)
        except OSError as exc:
            raise SourceError(f"cannot read symlink {_show(path)}: {exc.strerror}") from None

    @staticmethod
    def _fully_sparse(path: bytes, st) -> bool:
        """True when the file is one hole: no data at or after offset 0."""
        if st.st_size == 0 or st.st_blocks * 512 >= st.st_size:
            return False
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            raise SourceError(f"cannot read {_show(path)}: {exc.strerror}") from None
        try:
            os.lseek(fd, 0, os.SEEK_DATA)
            return False
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                return True
            if exc.errno == errno.EINVAL:  # no SEEK_DATA here: all of it counts as data
                return False
            raise SourceError(f"cannot read {_show(path)}: {exc.strerror}") from None
        finally:
            os.close(fd)
