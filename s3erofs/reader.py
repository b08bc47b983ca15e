"""Read EROFS images: superblock, inodes, directories and file data.

Reads the uncompressed images that s3erofs and mkfs.erofs write: FLAT_PLAIN, FLAT_INLINE and
CHUNK_BASED data (4-byte block maps and 8-byte chunk indexes, holes read as zeros), compact and
extended inodes, xattrs skipped. Everything is validated while it is read; damage raises
errors.CorruptImageError naming the nid and the absolute byte offset, never IndexError or
struct.error. Format facts come from erofs_fs (erofs_fs.h); see
shared/reference/erofs-format.md sections 1 and 3.

Paths are absolute bytes or str ("/", "/a/b"); symlinks are never followed (lstat semantics).
"""

import builtins
import collections
import errno
import functools
import io
import logging
import mmap
import os
import stat as statmod
import struct
from dataclasses import dataclass
from typing import NamedTuple

import crc32c
import numpy as np

from s3erofs import erofs_fs as fs
from s3erofs.erofs_fs import (
    EROFS_CHUNK_FORMAT_48BIT,
    EROFS_CHUNK_FORMAT_ALL,
    EROFS_CHUNK_INDEX_SIZE,
    EROFS_I_FORMAT_KNOWN,
    EROFS_SB_CHECKSUM_OFFSET,
    EROFS_SYMLINK_MAX,
    INCOMPAT_NAMES,
    INCOMPAT_SUPPORTED,
)
from s3erofs.errors import CorruptImageError, S3erofsError, UnsupportedImageError

log = logging.getLogger(__name__)

_FT_OF_IFMT = {
    statmod.S_IFREG: fs.EROFS_FT_REG_FILE, statmod.S_IFDIR: fs.EROFS_FT_DIR,
    statmod.S_IFCHR: fs.EROFS_FT_CHRDEV, statmod.S_IFBLK: fs.EROFS_FT_BLKDEV,
    statmod.S_IFIFO: fs.EROFS_FT_FIFO, statmod.S_IFSOCK: fs.EROFS_FT_SOCK,
    statmod.S_IFLNK: fs.EROFS_FT_SYMLINK,
}
_COMPRESSED = (fs.EROFS_INODE_COMPRESSED_FULL, fs.EROFS_INODE_COMPRESSED_COMPACT)
_DIR_CACHE_SIZE = 256


def _struct_of(dtype: np.dtype) -> struct.Struct:
    """A struct.Struct with the exact layout of an erofs_fs dtype (struct unpacks faster)."""
    codes = {("u", 1): "B", ("u", 2): "H", ("u", 4): "I", ("u", 8): "Q",
             ("i", 2): "h", ("i", 4): "i", ("i", 8): "q"}
    fmt = "<"
    for name in dtype.names:
        field = dtype.fields[name][0]
        if field.subdtype is not None or field.kind == "S":
            fmt += f"{field.itemsize}s"
        else:
            fmt += codes[(field.kind, field.itemsize)]
    packed = struct.Struct(fmt)
    assert packed.size == dtype.itemsize, dtype
    return packed


def _record(dtype: np.dtype):
    """(struct, namedtuple class) to unpack one on-disk record of ``dtype``."""
    return _struct_of(dtype), collections.namedtuple("r", dtype.names)


_SUPER = _record(fs.erofs_super_block)
_COMPACT = _record(fs.erofs_inode_compact)
_EXTENDED = _record(fs.erofs_inode_extended)
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_CHUNK_INDEX = struct.Struct("<HHI")


def _unpack(record, buf, offset):
    packed, cls = record
    return cls._make(packed.unpack_from(buf, offset))


def _show(name: bytes) -> str:
    """A name for an error message: quoted, undecodable bytes escaped."""
    return "'" + name.decode("utf-8", "backslashreplace") + "'"


def format_mode(mode: int) -> str:
    """``ls -l`` style mode string, e.g. ``drwxr-xr-x``.

    :param mode: a full st_mode including the file type bits.
    """
    return statmod.filemode(mode)


@dataclass(frozen=True, slots=True)
class Superblock:
    """The superblock fields a caller needs (sizes in bytes, times in seconds)."""

    block_size: int
    blkszbits: int
    blocks: int
    root_nid: int
    inos: int
    epoch: int
    fixed_nsec: int
    uuid: bytes
    volume_name: bytes
    feature_compat: int
    feature_incompat: int
    meta_blkaddr: int
    xattr_blkaddr: int
    extra_devices: int
    checksum: int


@dataclass(frozen=True, slots=True)
class Stat:
    """One inode as lstat would show it. ``rdev`` uses the host's dev_t encoding (os.makedev)."""

    nid: int
    mode: int
    nlink: int
    uid: int
    gid: int
    size: int
    mtime: int
    mtime_nsec: int
    rdev: int
    layout: int
    inode_size: int
    ino: int

    @property
    def mtime_ns(self) -> int:
        return self.mtime * 1_000_000_000 + self.mtime_nsec


class DirEntry(NamedTuple):
    name: bytes
    nid: int
    file_type: int


class _Inode(NamedTuple):
    st: Stat
    iloc: int  # absolute byte offset of the inode
    i_u: int  # startblk, rdev or chunk format
    tail: int  # absolute offset right after the inode and its xattrs


class _Dir(NamedTuple):
    entries: list  # DirEntry, '.' and '..' included, on-disk order
    offsets: list  # absolute byte offset of each dirent
    index: dict  # name -> position in entries


# what a parser slip on damaged input looks like; none of them may reach a caller
_SLIPS = (IndexError, KeyError, ValueError, OverflowError, struct.error)


def _guarded(method):
    """Turn a parsing slip on damaged input (IndexError, struct.error...) into CorruptImageError."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except S3erofsError:
            raise
        except _SLIPS as exc:
            raise CorruptImageError(f"malformed image {self.name}: {exc!r}") from exc

    return wrapper


class Image:
    """An opened EROFS image. Use :func:`open`; close it or use it as a context manager."""

    def __init__(self, buf, *, name="<image>", closers=()):
        self.name = name
        self._buf = buf
        self._closers = list(closers)
        self._dirs = collections.OrderedDict()
        try:
            self.superblock = self._read_superblock()
            self._check_root()
        except BaseException:
            self.close()
            raise
        log.debug("opened %s: %d blocks of %d bytes, root nid %d, %d inodes", name,
                  self.superblock.blocks, self.superblock.block_size,
                  self.superblock.root_nid, self.superblock.inos)

    def close(self) -> None:
        self._dirs.clear()
        while self._closers:
            self._closers.pop()()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # superblock

    def _read_superblock(self) -> Superblock:
        need = fs.EROFS_SUPER_OFFSET + fs.EROFS_SUPER_SIZE
        if len(self._buf) < need:
            raise CorruptImageError(f"image is {len(self._buf)} bytes, too small for a "
                                    f"superblock ({need} bytes needed)", offset=0)
        raw = _unpack(_SUPER, self._buf, fs.EROFS_SUPER_OFFSET)

        if raw.magic != fs.EROFS_SUPER_MAGIC_V1:
            raise CorruptImageError(f"bad magic 0x{raw.magic:08x} at offset 1024 "
                                    f"(0x{fs.EROFS_SUPER_MAGIC_V1:08x} expected)", offset=1024)
        if not fs.EROFS_MIN_BLKSZBITS <= raw.blkszbits <= fs.EROFS_MAX_BLKSZBITS:
            raise CorruptImageError(f"blkszbits {raw.blkszbits} isn't supported (9..16) "
                                    f"(offset 1036)", offset=1036)
        if raw.feature_compat & fs.EROFS_FEATURE_COMPAT_SB_CHKSUM:
            self._check_checksum(raw.checksum, 1 << raw.blkszbits)
        self._check_incompat(raw.feature_incompat)
        if raw.dirblkbits:
            raise CorruptImageError(f"dirblkbits {raw.dirblkbits} isn't supported "
                                    f"(offset 1114)", offset=1114)

        sb = Superblock(
            block_size=1 << raw.blkszbits, blkszbits=raw.blkszbits, blocks=raw.blocks,
            root_nid=raw.root_nid, inos=raw.inos, epoch=raw.epoch, fixed_nsec=raw.fixed_nsec,
            uuid=bytes(raw.uuid), volume_name=raw.volume_name.rstrip(b"\0"),
            feature_compat=raw.feature_compat, feature_incompat=raw.feature_incompat,
            meta_blkaddr=raw.meta_blkaddr, xattr_blkaddr=raw.xattr_blkaddr,
            extra_devices=raw.extra_devices, checksum=raw.checksum)
        self._set_geometry(sb)
        return sb

    def _check_checksum(self, stored: int, block_size: int) -> None:
        # crc32c over 1024..end of block 0 (blksz bytes if blksz <= 1024), field zeroed,
        # seed ~0 and no final xor: the stored value is the complement of the standard crc32c
        start = fs.EROFS_SUPER_OFFSET
        end = block_size if block_size > start else start + block_size
        if len(self._buf) < end:
            raise CorruptImageError(f"image is {len(self._buf)} bytes, too small for the "
                                    f"checksummed range 1024..{end}", offset=len(self._buf))
        area = bytearray(self._buf[start:end])
        area[4:8] = bytes(4)
        expected = ~crc32c.crc32c(bytes(area)) & 0xFFFFFFFF
        if stored != expected:
            raise CorruptImageError(f"invalid superblock checksum 0x{stored:08x}, "
                                    f"0x{expected:08x} expected (offset 1028)",
                                    offset=EROFS_SB_CHECKSUM_OFFSET)

    @staticmethod
    def _check_incompat(incompat: int) -> None:
        unknown = incompat & ~INCOMPAT_SUPPORTED
        if unknown:
            names = [INCOMPAT_NAMES.get(1 << bit, f"unknown bit {bit}")
                     for bit in range(32) if unknown >> bit & 1]
            raise UnsupportedImageError(f"unsupported feature_incompat bits 0x{unknown:x} "
                                        f"({', '.join(names)}) (offset 1104)", offset=1104)

    def _set_geometry(self, sb: Superblock) -> None:
        self._bits = sb.blkszbits
        self._bsz = sb.block_size
        self._meta = sb.meta_blkaddr * sb.block_size
        self._end = sb.blocks * sb.block_size
        self._epoch = sb.epoch
        self._fixed_nsec = sb.fixed_nsec
        self._compat_mtime = bool(sb.feature_compat & fs.EROFS_FEATURE_COMPAT_MTIME)
        self._extra_devices = sb.extra_devices
        if len(self._buf) < self._end:
            raise CorruptImageError(f"image is {len(self._buf)} bytes but the superblock counts "
                                    f"{sb.blocks} blocks of {sb.block_size} bytes "
                                    f"({self._end} bytes)", offset=len(self._buf))

    def _check_root(self) -> None:
        root = self._load(self.superblock.root_nid)
        if not statmod.S_ISDIR(root.st.mode):
            raise CorruptImageError(f"root nid {root.st.nid} is not a directory (mode "
                                    f"0o{root.st.mode:o}, offset {root.iloc})",
                                    nid=root.st.nid, offset=root.iloc)

    # inodes

    def _load(self, nid: int) -> _Inode:
        iloc = self._meta + (nid << fs.EROFS_ISLOTBITS)
        if nid < 0 or iloc + fs.EROFS_INODE_COMPACT_SIZE > self._end:
            raise CorruptImageError(f"nid {nid} is beyond the image end (offset {iloc})",
                                    nid=nid, offset=iloc)
        i_format = _U16.unpack_from(self._buf, iloc)[0]
        if i_format & ~EROFS_I_FORMAT_KNOWN:
            raise CorruptImageError(f"unsupported i_format 0x{i_format:x} at nid {nid} "
                                    f"(offset {iloc})", nid=nid, offset=iloc)
        layout = i_format >> fs.EROFS_I_DATALAYOUT_BIT
        if layout > fs.EROFS_INODE_CHUNK_BASED:
            raise CorruptImageError(f"unknown data layout {layout} at nid {nid} "
                                    f"(offset {iloc})", nid=nid, offset=iloc)

        if i_format & 1 << fs.EROFS_I_VERSION_BIT:
            inode = self._load_extended(nid, iloc, layout)
        else:
            inode = self._load_compact(nid, iloc, layout)
        if statmod.S_IFMT(inode.st.mode) not in _FT_OF_IFMT:
            raise CorruptImageError(f"invalid file type in mode 0o{inode.st.mode:o} at nid {nid} "
                                    f"(offset {iloc})", nid=nid, offset=iloc)
        return inode

    def _load_compact(self, nid: int, iloc: int, layout: int) -> _Inode:
        raw = _unpack(_COMPACT, self._buf, iloc)
        # pre-MTIME images keep the build time for every compact inode
        mtime = self._epoch + (raw.i_mtime if self._compat_mtime else 0)
        st = Stat(nid=nid, mode=raw.i_mode, nlink=raw.i_nlink, uid=raw.i_uid, gid=raw.i_gid,
                  size=raw.i_size, mtime=mtime, mtime_nsec=self._fixed_nsec,
                  rdev=self._rdev(raw.i_mode, raw.i_u), layout=layout,
                  inode_size=fs.EROFS_INODE_COMPACT_SIZE, ino=raw.i_ino)
        return _Inode(st, iloc, raw.i_u, self._tail(iloc, st.inode_size, raw.i_xattr_icount))

    def _load_extended(self, nid: int, iloc: int, layout: int) -> _Inode:
        if iloc + fs.EROFS_INODE_EXTENDED_SIZE > self._end:
            raise CorruptImageError(f"extended inode nid {nid} crosses the image end "
                                    f"(offset {iloc})", nid=nid, offset=iloc)
        raw = _unpack(_EXTENDED, self._buf, iloc)
        st = Stat(nid=nid, mode=raw.i_mode, nlink=raw.i_nlink, uid=raw.i_uid, gid=raw.i_gid,
                  size=raw.i_size, mtime=raw.i_mtime, mtime_nsec=raw.i_mtime_nsec,
                  rdev=self._rdev(raw.i_mode, raw.i_u), layout=layout,
                  inode_size=fs.EROFS_INODE_EXTENDED_SIZE, ino=raw.i_ino)
        return _Inode(st, iloc, raw.i_u, self._tail(iloc, st.inode_size, raw.i_xattr_icount))

    @staticmethod
    def _tail(iloc: int, inode_size: int, xattr_icount: int) -> int:
        # xattr body: an ibody header (12 bytes, one of the counted 4-byte units) plus entries
        xattr_size = 0 if xattr_icount == 0 else 12 + 4 * (xattr_icount - 1)
        return iloc + inode_size + xattr_size

    @staticmethod
    def _rdev(mode: int, i_u: int) -> int:
        if not (statmod.S_ISCHR(mode) or statmod.S_ISBLK(mode)):
            return 0
        # i_u holds the kernel's new_encode_dev(): 12-bit major, 20-bit minor interleaved
        major = (i_u & 0xFFF00) >> 8
        minor = (i_u & 0xFF) | ((i_u >> 12) & 0xFFF00)
        return os.makedev(major, minor)

    # data mapping

    def _map(self, inode: _Inode, la: int) -> tuple[int | None, int]:
        """Physical offset (None for a hole) of logical byte ``la`` and the contiguous length."""
        st = inode.st
        if st.layout in _COMPRESSED:
            raise UnsupportedImageError(f"compressed inodes are not supported (nid {st.nid})",
                                        nid=st.nid, offset=inode.iloc)
        if st.layout == fs.EROFS_INODE_CHUNK_BASED:
            pa, length = self._map_chunk(inode, la)
        elif st.layout == fs.EROFS_INODE_FLAT_INLINE:
            pa, length = self._map_inline(inode, la)
        else:
            pa, length = (inode.i_u << self._bits) + la, st.size - la

        if pa is not None and pa + length > self._end:
            block = max(pa, self._end) >> self._bits
            raise CorruptImageError(f"data block {block} of nid {st.nid} is beyond the image "
                                    f"end (offset {block << self._bits})",
                                    nid=st.nid, offset=block << self._bits)
        return pa, length

    def _map_inline(self, inode: _Inode, la: int) -> tuple[int, int]:
        # the last (possibly partial) block sits right after the inode and its xattrs
        size = inode.st.size
        tail_start = ((size - 1) >> self._bits) << self._bits
        if la < tail_start:
            return (inode.i_u << self._bits) + la, tail_start - la

        tail_len = size - tail_start
        if (inode.tail & (self._bsz - 1)) + tail_len > self._bsz:
            raise CorruptImageError(f"inline data of nid {inode.st.nid} crosses a block boundary "
                                    f"(offset {inode.tail})", nid=inode.st.nid, offset=inode.tail)
        return inode.tail + la - tail_start, size - la

    def _map_chunk(self, inode: _Inode, la: int) -> tuple[int | None, int]:
        nid = inode.st.nid
        chunk_format = inode.i_u & 0xFFFF
        if chunk_format & ~EROFS_CHUNK_FORMAT_ALL:
            raise CorruptImageError(f"unsupported chunk format 0x{chunk_format:x} at nid {nid} "
                                    f"(offset {inode.iloc + 16})", nid=nid, offset=inode.iloc + 16)
        chunkbits = self._bits + (chunk_format & fs.EROFS_CHUNK_FORMAT_BLKBITS_MASK)
        chunk = la >> chunkbits
        chunk_start = chunk << chunkbits
        length = min(chunk_start + (1 << chunkbits), inode.st.size) - la

        indexes = chunk_format & fs.EROFS_CHUNK_FORMAT_INDEXES
        unit = EROFS_CHUNK_INDEX_SIZE if indexes else fs.EROFS_BLOCK_MAP_ENTRY_SIZE
        pos = -(-inode.tail // unit) * unit + chunk * unit
        if pos + unit > self._end:
            raise CorruptImageError(f"chunk entry {chunk} of nid {nid} is beyond the image end "
                                    f"(offset {pos})", nid=nid, offset=pos)
        if indexes:
            startblk = self._chunk_index(nid, chunk_format, pos)
        else:
            startblk = _U32.unpack_from(self._buf, pos)[0]
            startblk = None if startblk == fs.EROFS_NULL_ADDR else startblk
        if startblk is None:
            return None, length
        return (startblk << self._bits) + la - chunk_start, length

    def _chunk_index(self, nid: int, chunk_format: int, pos: int) -> int | None:
        startblk_hi, device_id, startblk_lo = _CHUNK_INDEX.unpack_from(self._buf, pos)
        if chunk_format & EROFS_CHUNK_FORMAT_48BIT:
            if startblk_lo == fs.EROFS_NULL_ADDR and startblk_hi == 0xFFFF:
                return None
            startblk = startblk_hi << 32 | startblk_lo
        elif startblk_lo == fs.EROFS_NULL_ADDR:
            return None
        else:
            startblk = startblk_lo

        # as in the kernel, device_id only counts when the image has extra devices
        device_mask = (1 << self._extra_devices.bit_length()) - 1
        if device_id & device_mask:
            raise UnsupportedImageError(f"chunk of nid {nid} is on device {device_id}; extra "
                                        f"devices are not supported (offset {pos})",
                                        nid=nid, offset=pos)
        return startblk

    def _read_data(self, inode: _Inode, start: int, end: int) -> bytes:
        out = bytearray()
        la = start
        while la < end:
            pa, length = self._map(inode, la)
            length = min(length, end - la)
            if length <= 0:
                raise CorruptImageError(f"empty mapping at logical offset {la} of nid "
                                        f"{inode.st.nid}", nid=inode.st.nid, offset=inode.iloc)
            out += bytes(length) if pa is None else self._buf[pa:pa + length]
            la += length
        return bytes(out)

    # directories

    def _dir(self, nid: int) -> _Dir:
        cached = self._dirs.get(nid)
        if cached is not None:
            self._dirs.move_to_end(nid)
            return cached

        inode = self._load(nid)
        if not statmod.S_ISDIR(inode.st.mode):
            raise CorruptImageError(f"nid {nid} is not a directory (offset {inode.iloc})",
                                    nid=nid, offset=inode.iloc)
        parsed = self._parse_dir(inode)
        self._dirs[nid] = parsed
        if len(self._dirs) > _DIR_CACHE_SIZE:
            self._dirs.popitem(last=False)
        return parsed

    def _parse_dir(self, inode: _Inode) -> _Dir:
        nid, size = inode.st.nid, inode.st.size
        parsed = _Dir([], [], {})
        first_offset = None
        for la in range(0, size, self._bsz):
            pa, _ = self._map(inode, la)
            if pa is None:
                raise CorruptImageError(f"directory nid {nid} has a hole at logical offset {la}",
                                        nid=nid, offset=inode.iloc)
            first_offset = pa if first_offset is None else first_offset
            block = self._buf[pa:pa + min(self._bsz, size - la)]
            self._parse_dir_block(nid, block, pa, parsed)

        self._check_dots(inode, parsed, first_offset)
        return parsed

    def _parse_dir_block(self, nid: int, block: bytes, pa: int, parsed: _Dir) -> None:
        nameoff0 = _U16.unpack_from(block, 8)[0] if len(block) >= fs.EROFS_DIRENT_SIZE else 0
        if (nameoff0 < fs.EROFS_DIRENT_SIZE or nameoff0 % fs.EROFS_DIRENT_SIZE
                or nameoff0 >= len(block)):
            raise CorruptImageError(f"invalid de[0].nameoff {nameoff0} at nid {nid} "
                                    f"(offset {pa})", nid=nid, offset=pa)
        count = nameoff0 // fs.EROFS_DIRENT_SIZE
        dirents = np.frombuffer(block, fs.erofs_dirent, count)
        nameoffs = dirents["nameoff"].tolist() + [None]

        for i, (child, file_type) in enumerate(zip(dirents["nid"].tolist(),
                                                   dirents["file_type"].tolist(), strict=True)):
            offset = pa + i * fs.EROFS_DIRENT_SIZE
            name = self._dirent_name(nid, block, nameoffs[i], nameoffs[i + 1], offset)
            self._check_dirent(nid, name, child, file_type, offset, parsed)
            parsed.index[name] = len(parsed.entries)
            parsed.entries.append(DirEntry(name, child, file_type))
            parsed.offsets.append(offset)

    @staticmethod
    def _dirent_name(nid: int, block: bytes, start: int, end: int | None, offset: int) -> bytes:
        if end is None:
            # the last name runs to the first NUL, or to the end of the block (or of i_size)
            nul = block.find(b"\0", start)
            end = len(block) if nul < 0 else nul
        elif end > len(block):
            raise CorruptImageError(f"nameoff {end} is past the directory block end "
                                    f"({len(block)} bytes) at nid {nid} (offset {offset + 12})",
                                    nid=nid, offset=offset + 12)
        if end <= start:
            raise CorruptImageError(f"nameoff {start} leaves an empty name or is out of order at "
                                    f"nid {nid} (offset {offset})", nid=nid, offset=offset)
        if end - start > fs.EROFS_NAME_LEN:
            raise CorruptImageError(f"name of {end - start} bytes (max {fs.EROFS_NAME_LEN}) at "
                                    f"nid {nid} (offset {offset})", nid=nid, offset=offset)
        return block[start:end]

    def _check_dirent(self, nid: int, name: bytes, child: int, file_type: int, offset: int,
                      parsed: _Dir) -> None:
        if b"/" in name or b"\0" in name:
            raise CorruptImageError(f"dirent {_show(name)} contains '/' or NUL at nid {nid} "
                                    f"(offset {offset})", nid=nid, offset=offset)
        if file_type > fs.EROFS_FT_SYMLINK:
            raise CorruptImageError(f"dirent {_show(name)} has invalid file_type {file_type} at "
                                    f"nid {nid} (offset {offset})", nid=nid, offset=offset)
        if self._meta + (child << fs.EROFS_ISLOTBITS) + fs.EROFS_INODE_COMPACT_SIZE > self._end:
            raise CorruptImageError(f"dirent {_show(name)} points to nid {child} beyond the image "
                                    f"end (offset {offset})", nid=nid, offset=offset)
        if parsed.entries:
            previous = parsed.entries[-1].name
            # the kernel binary-searches names, so the whole directory must be sorted
            if name <= previous:
                raise CorruptImageError(f"names not sorted at nid {nid}: {_show(previous)} then "
                                        f"{_show(name)} (offset {offset})", nid=nid, offset=offset)

    @staticmethod
    def _check_dots(inode: _Inode, parsed: _Dir, offset: int | None) -> None:
        nid = inode.st.nid
        offset = inode.iloc if offset is None else offset
        for dots in (b".", b".."):
            if dots not in parsed.index:
                raise CorruptImageError(f"directory nid {nid} has no {_show(dots)} entry "
                                        f"(offset {offset})", nid=nid, offset=offset)
        position = parsed.index[b"."]
        if parsed.entries[position].nid != nid:
            raise CorruptImageError(f"'.' of directory nid {nid} points to nid "
                                    f"{parsed.entries[position].nid} "
                                    f"(offset {parsed.offsets[position]})",
                                    nid=nid, offset=parsed.offsets[position])

    # paths

    def _lookup(self, path) -> tuple[int, bytes]:
        raw = os.fsencode(path)
        nid = self.superblock.root_nid
        for component in raw.split(b"/"):
            if not component:
                continue
            parent = self._load(nid)
            if not statmod.S_ISDIR(parent.st.mode):
                raise NotADirectoryError(errno.ENOTDIR, "Not a directory in the image",
                                         os.fsdecode(raw))
            parsed = self._dir(nid)
            position = parsed.index.get(component)
            if position is None:
                raise FileNotFoundError(errno.ENOENT, "No such file or directory in the image",
                                        os.fsdecode(raw))
            nid = parsed.entries[position].nid
        return nid, raw

    def _inode_at(self, path) -> _Inode:
        nid, raw = self._lookup(path)
        inode = self._load(nid)
        if raw.endswith(b"/") and raw.strip(b"/") and not statmod.S_ISDIR(inode.st.mode):
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory in the image",
                                     os.fsdecode(raw))
        return inode

    def _dir_at(self, path) -> _Dir:
        inode = self._inode_at(path)
        if not statmod.S_ISDIR(inode.st.mode):
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory in the image",
                                     os.fsdecode(path))
        return self._dir(inode.st.nid)

    # public API

    @_guarded
    def lookup(self, path: bytes | str) -> int:
        """The nid of ``path`` (no symlinks followed).

        :raises FileNotFoundError: a component is missing.
        :raises NotADirectoryError: a non-final component is not a directory.
        """
        return self._inode_at(path).st.nid

    @_guarded
    def inode(self, nid: int) -> Stat:
        """The inode at ``nid``."""
        return self._load(nid).st

    @_guarded
    def stat(self, path: bytes | str) -> Stat:
        """lstat of ``path`` inside the image."""
        return self._inode_at(path).st

    @_guarded
    def scandir(self, path: bytes | str) -> list[DirEntry]:
        """``(name, nid, file_type)`` of each entry, on-disk order, without '.' and '..'."""
        return [e for e in self._dir_at(path).entries if e.name not in (b".", b"..")]

    @_guarded
    def scandir_nid(self, nid: int) -> list[DirEntry]:
        """Like :meth:`scandir`, for a directory given by nid."""
        return [e for e in self._dir(nid).entries if e.name not in (b".", b"..")]

    def listdir(self, path: bytes | str) -> list[bytes]:
        """Names in ``path``, on-disk order, without '.' and '..'."""
        return [e.name for e in self.scandir(path)]

    @_guarded
    def readlink(self, path: bytes | str) -> bytes:
        """Target of the symlink at ``path``.

        :raises OSError: EINVAL if ``path`` is not a symlink.
        """
        inode = self._inode_at(path)
        return self._symlink_target(inode, path)

    def _symlink_target(self, inode: _Inode, path) -> bytes:
        st = inode.st
        if not statmod.S_ISLNK(st.mode):
            raise OSError(errno.EINVAL, "Not a symlink in the image", os.fsdecode(path))
        if not 0 < st.size <= EROFS_SYMLINK_MAX:
            raise CorruptImageError(f"symlink nid {st.nid} has size {st.size} "
                                    f"(offset {inode.iloc})", nid=st.nid, offset=inode.iloc)
        return self._read_data(inode, 0, st.size)

    @_guarded
    def read(self, path: bytes | str, offset: int = 0, size: int = -1) -> bytes:
        """Bytes of the regular file at ``path``; holes read as zeros.

        :param offset: first byte to return.
        :param size: bytes to return at most; negative means up to the end of the file.
        :raises IsADirectoryError: ``path`` is a directory.
        :raises OSError: EINVAL if ``path`` is not a regular file or ``offset`` is negative.
        """
        return self._read_regular(self._inode_at(path), os.fsdecode(path), offset, size)

    @_guarded
    def read_inode(self, nid: int, offset: int = 0, size: int = -1) -> bytes:
        """Like :meth:`read`, for a regular file given by nid."""
        return self._read_regular(self._load(nid), f"nid {nid}", offset, size)

    def _read_regular(self, inode: _Inode, where: str, offset: int, size: int) -> bytes:
        if statmod.S_ISDIR(inode.st.mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory in the image", where)
        if not statmod.S_ISREG(inode.st.mode):
            raise OSError(errno.EINVAL, "Not a regular file in the image", where)
        if offset < 0:
            raise OSError(errno.EINVAL, f"Negative offset {offset}", where)
        end = inode.st.size if size < 0 else min(inode.st.size, offset + size)
        return self._read_data(inode, offset, end)

    def walk(self, top: bytes | str = "/"):
        """Top-down ``(dirpath, dirnames, filenames)`` like os.walk, all bytes, on-disk order.

        Removing names from ``dirnames`` prunes them. A directory reached twice (a loop or a
        hard-linked directory) raises CorruptImageError, so the walk always ends.
        """
        top = os.fsencode(top)
        start = self.lookup(top)
        if not statmod.S_ISDIR(self.inode(start).mode):
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory in the image",
                                     os.fsdecode(top))
        parent = start if start == self.superblock.root_nid else None
        stack = [(top, start, parent, None)]
        visited = set()
        while stack:
            dirpath, nid, parent, offset = stack.pop()
            try:
                dirnames, filenames, children = self._walk_step(dirpath, nid, parent, offset,
                                                                visited)
            except _SLIPS as exc:
                raise CorruptImageError(f"malformed image {self.name}: {exc!r}",
                                        nid=nid) from exc
            yield dirpath, dirnames, filenames
            for name in reversed(dirnames):
                if name in children:
                    child, child_offset = children[name]
                    stack.append((os.path.join(dirpath, name), child, nid, child_offset))

    def _walk_step(self, dirpath: bytes, nid: int, parent: int | None, offset: int | None,
                   visited: set):
        if nid in visited:
            raise CorruptImageError(f"directory loop: {_show(dirpath)} is nid {nid}, which was "
                                    f"already visited (offset {offset})", nid=nid, offset=offset)
        visited.add(nid)
        inode = self._load(nid)
        if not statmod.S_ISDIR(inode.st.mode):
            raise CorruptImageError(f"{_show(dirpath)} is typed as a directory but nid {nid} is "
                                    f"not one (offset {offset})", nid=nid, offset=offset)

        parsed = self._dir(nid)
        dotdot = parsed.index[b".."]
        if parent is not None and parsed.entries[dotdot].nid != parent:
            raise CorruptImageError(f"'..' of {_show(dirpath)} (nid {nid}) points to nid "
                                    f"{parsed.entries[dotdot].nid}, not to its parent nid "
                                    f"{parent} (offset {parsed.offsets[dotdot]})",
                                    nid=nid, offset=parsed.offsets[dotdot])

        dirnames, filenames, children = [], [], {}
        for entry, entry_offset in zip(parsed.entries, parsed.offsets, strict=True):
            if entry.name in (b".", b".."):
                continue
            if self._is_dir_entry(entry):
                dirnames.append(entry.name)
                children[entry.name] = (entry.nid, entry_offset)
            else:
                filenames.append(entry.name)
        return dirnames, filenames, children

    def _is_dir_entry(self, entry: DirEntry) -> bool:
        if entry.file_type != fs.EROFS_FT_UNKNOWN:
            return entry.file_type == fs.EROFS_FT_DIR
        return statmod.S_ISDIR(self._load(entry.nid).st.mode)


def open(source) -> Image:  # noqa: A001 - the module's entry point, like tarfile.open
    """Open an EROFS image and validate its superblock and root directory.

    :param source: a path (str, bytes or os.PathLike; the file is mmapped) or a binary file
        object (mmapped when it has a real file descriptor, read whole otherwise).
    :raises CorruptImageError: the superblock or root inode is damaged.
    :raises UnsupportedImageError: the image needs a feature this reader lacks.
    """
    if isinstance(source, (str, bytes, os.PathLike)):
        name = os.fsdecode(source)
        fileobj = builtins.open(source, "rb")
        closers = [fileobj.close]
    else:
        name = getattr(source, "name", "<file object>")
        fileobj = source
        closers = []

    try:
        buf = _map_file(fileobj)
    except BaseException:
        for close in closers:
            close()
        raise
    if isinstance(buf, mmap.mmap):
        closers.append(buf.close)
    return Image(buf, name=str(name), closers=closers)


def _map_file(fileobj):
    """mmap ``fileobj`` read-only, or read it whole when it has no usable descriptor."""
    try:
        fd = fileobj.fileno()
        if os.fstat(fd).st_size > 0:
            return mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except (AttributeError, OSError, io.UnsupportedOperation, ValueError):
        pass
    fileobj.seek(0)
    return fileobj.read()
