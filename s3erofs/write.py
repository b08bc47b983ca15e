"""Write a laid-out tree as an EROFS image: superblock, checksum, data, atomic rename."""

import logging
import os
import tempfile
import time
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path

import crc32c
import numpy as np

from . import erofs_fs as fs
from ._fast import layout as _layout
from .errors import ImageError
from .tree import DATA_BYTES, Tree

log = logging.getLogger(__name__)

_COPY_CHUNK = 1 << 20


@dataclass
class ImageOptions:
    """Image-wide settings.

    :param block_size: 512 to 65536, a power of two.
    :param build_time: superblock time (``epoch``) in seconds; ``None`` means now.
    :param uuid: filesystem UUID; ``None`` means random.
    :param volume_name: label of at most 15 bytes.
    """

    block_size: int = 4096
    build_time: int | None = None
    uuid: uuidlib.UUID | None = None
    volume_name: str = ""

    def resolved(self) -> "ImageOptions":
        """A copy with the time and UUID fixed, so one build uses one value of each."""
        return ImageOptions(
            block_size=self.block_size,
            build_time=int(time.time()) if self.build_time is None else int(self.build_time),
            uuid=self.uuid if self.uuid is not None else uuidlib.uuid4(),
            volume_name=self.volume_name,
        )


@dataclass
class ImageStats:
    inodes: int
    blocks: int
    block_size: int
    bytes: int
    root_nid: int
    seconds: float


def blkszbits_of(block_size: int) -> int:
    bits = block_size.bit_length() - 1
    if block_size != 1 << bits or not fs.EROFS_MIN_BLKSZBITS <= bits <= fs.EROFS_MAX_BLKSZBITS:
        raise ImageError(f"block size {block_size} is not a power of two from 512 to 65536")
    return bits


def check_volume_name(name: str) -> bytes:
    raw = name.encode()
    if len(raw) > 15:
        raise ImageError(f"volume label {name!r} is {len(raw)} bytes; at most 15 fit")
    return raw


def write_image(tree: Tree, target, options: ImageOptions) -> ImageStats:
    """Lay out ``tree`` and write the image to ``target`` (a path or a binary file).

    A path is written through a temporary file in the same folder that is renamed
    over ``target`` only when everything succeeded, so a failed build leaves nothing.
    """
    started = time.monotonic()
    opts = options.resolved()
    blkszbits = blkszbits_of(opts.block_size)
    label = check_volume_name(opts.volume_name)

    if isinstance(target, (str, os.PathLike)):
        placed = _write_atomically(
            Path(target), lambda f: _emit(tree, opts, label, blkszbits, f))
    else:
        placed = _emit(tree, opts, label, blkszbits, target)

    stats = ImageStats(
        inodes=len(placed["order"]), blocks=int(placed["blocks"]),
        block_size=opts.block_size, bytes=int(placed["blocks"]) * opts.block_size,
        root_nid=int(placed["nid"][0]), seconds=time.monotonic() - started,
    )
    log.info("image: %d bytes in %.2f s", stats.bytes, stats.seconds)
    return stats


def _emit(tree, opts, label, blkszbits, f) -> dict:
    """Lay out and stream the packed blocks, then the data, then the finished head."""
    if not f.seekable():
        raise ImageError("the output must be seekable (a file, not a pipe)")
    start = f.tell()

    def emit(offset, view):
        f.seek(start + offset)
        f.write(view)

    def tail_of(ino):
        return _tail(tree.payload[int(ino)], int(tree.columns["size"][ino]), opts.block_size)

    try:
        placed = _layout.layout(tree.columns, blkszbits, opts.build_time, 0, emit, tail_of)
    except ValueError as exc:
        raise ImageError(f"cannot lay out the image: {exc}") from None
    log.info("layout: %d inodes, %d metadata blocks, %d blocks in all",
             len(placed["order"]), placed["meta_blocks"], placed["blocks"])

    _write_payload(tree, placed, opts.block_size, f, start)
    head = placed["head"]
    head[fs.EROFS_SUPER_OFFSET:fs.EROFS_SUPER_OFFSET + fs.EROFS_SUPER_SIZE] = \
        superblock(tree, placed, opts, label, blkszbits).view(np.uint8)
    put_checksum(head, opts.block_size)

    # beyond the packed blocks the head is zeros, and file data may already be there
    f.seek(start)
    f.write(memoryview(head)[:min(len(head), int(placed["dir_end"]) * opts.block_size)])
    f.truncate(start + int(placed["blocks"]) * opts.block_size)
    f.flush()
    return placed


def superblock(tree, placed, opts, label, blkszbits) -> np.ndarray:
    sb = np.zeros(1, fs.erofs_super_block)
    sb["magic"] = fs.EROFS_SUPER_MAGIC_V1
    sb["feature_compat"] = fs.EROFS_FEATURE_COMPAT_SB_CHKSUM | fs.EROFS_FEATURE_COMPAT_MTIME
    sb["blkszbits"] = blkszbits
    root_nid = int(placed["nid"][0])
    if root_nid > 0xFFFF:
        raise ImageError(f"root nid {root_nid} does not fit the 16-bit root_nid field")
    sb["root_nid"] = root_nid
    sb["inos"] = len(placed["order"])
    sb["epoch"] = opts.build_time
    sb["fixed_nsec"] = 0
    sb["blocks"] = placed["blocks"]
    sb["uuid"] = np.frombuffer(opts.uuid.bytes, np.uint8)
    sb["volume_name"] = label
    # chunk-based inodes need Linux 5.15; saying so makes older kernels refuse the mount
    # instead of failing on every file
    if np.any(placed["layout"][placed["order"]] == _layout_chunk_based()):
        sb["feature_incompat"] = fs.EROFS_FEATURE_INCOMPAT_CHUNKED_FILE
    return sb


def _layout_chunk_based() -> int:
    return fs.EROFS_INODE_CHUNK_BASED


def put_checksum(buf: np.ndarray, block_size: int) -> None:
    """crc32c of the rest of block 0 (or of one block when blocks are <= 1 KiB).

    erofs_fs.h: seed ~0 and no final xor, i.e. the complement of standard CRC32C,
    computed with the checksum field zeroed.
    """
    end = fs.EROFS_SUPER_OFFSET + (block_size if block_size <= 1024 else block_size - 1024)
    buf[1028:1032] = 0
    value = crc32c.crc32c(memoryview(buf[fs.EROFS_SUPER_OFFSET:end])) ^ 0xFFFFFFFF
    buf[1028:1032] = np.frombuffer(value.to_bytes(4, "little"), np.uint8)


def _tail(data, size: int, block_size: int) -> bytes:
    """The last ``size % block_size`` bytes of an inode's data (packed after the inode)."""
    full = size - size % block_size
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data[full:size])
    with open(data, "rb") as src:
        src.seek(full)
        tail = src.read(size - full)
    if len(tail) != size - full:
        raise ImageError(f"{os.fsdecode(data)!r} shrank while being read "
                         f"(expected {size} bytes)")
    return tail


def _write_payload(tree, placed, block_size, f, start) -> None:
    """Full blocks of real data (symlink targets, local files); tails are inline."""
    if not tree.payload:
        return
    kinds = tree.columns["data_kind"]
    for ino in placed["order"]:
        if kinds[ino] != DATA_BYTES:
            continue
        data = tree.payload[int(ino)]
        size = int(placed["size"][ino])
        full = min(int(placed["nfull"][ino]) * block_size, size)
        f.seek(start + int(placed["startblk"][ino]) * block_size)
        if isinstance(data, (bytes, bytearray, memoryview)):
            if len(data) != size:
                raise ImageError(f"inode {ino}: {len(data)} bytes of data for size {size}")
            f.write(bytes(data[:full]))
        else:
            _copy_file(data, size, full, f)


def _copy_file(path, size, full, f) -> None:
    """Copy a local file's full blocks; its size must still be the one laid out."""
    with open(path, "rb") as src:
        remaining = full
        while remaining:
            chunk = src.read(min(_COPY_CHUNK, remaining))
            if not chunk:
                raise ImageError(f"{os.fsdecode(path)!r} shrank while being read "
                                 f"(expected {size} bytes)")
            f.write(chunk)
            remaining -= len(chunk)
        src.seek(size)
        if src.read(1):
            raise ImageError(f"{os.fsdecode(path)!r} grew while being read "
                             f"(expected {size} bytes)")


def _write_atomically(target: Path, emit):
    """Run ``emit(file)`` on a temporary file beside ``target``, then rename it."""
    folder = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        # no fsync, as mkfs.erofs: the rename protects against a failed build, not
        # against power loss (run `sync` for that)
        with os.fdopen(fd, "w+b") as f:
            result = emit(f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        return result
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
