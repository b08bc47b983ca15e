"""EROFS on-disk format: constants and numpy dtypes, named as in erofs_fs.h.

This module is the only home of on-disk layout facts. Everything is little-endian.
References: Linux fs/erofs/erofs_fs.h and Documentation/filesystems/erofs.rst.
"""

import numpy as np

EROFS_SUPER_MAGIC_V1 = 0xE0F5E1E2
EROFS_SUPER_OFFSET = 1024  # bytes 0..1023 stay zero (boot sectors and the like)
EROFS_SUPER_SIZE = 128  # 128 + 16 * sb_extslots; we always write sb_extslots = 0
EROFS_ISLOTBITS = 5  # inodes sit in 32-byte slots: iloc = meta_blkaddr * blksz + 32 * nid
EROFS_ISLOT_SIZE = 1 << EROFS_ISLOTBITS
EROFS_NAME_LEN = 255  # bytes, no terminator on disk
EROFS_NULL_ADDR = 0xFFFFFFFF  # a hole in a 4-byte chunk block map: reads as zeros

EROFS_MIN_BLKSZBITS = 9  # 512 bytes
EROFS_MAX_BLKSZBITS = 16  # 64 KiB: nameoff is 16-bit
EROFS_BLOCK_MAP_ENTRY_SIZE = 4  # chunk-based inode without EROFS_CHUNK_FORMAT_INDEXES
EROFS_CHUNK_FORMAT_BLKBITS_MASK = 0x001F  # chunk size = blksz << (format & mask)
EROFS_CHUNK_FORMAT_INDEXES = 0x0020
EROFS_CHUNK_MAX_BLKBITS = 31

# feature_compat
EROFS_FEATURE_COMPAT_SB_CHKSUM = 0x0001
EROFS_FEATURE_COMPAT_MTIME = 0x0002
# feature_incompat
EROFS_FEATURE_INCOMPAT_ZERO_PADDING = 0x0001
EROFS_FEATURE_INCOMPAT_CHUNKED_FILE = 0x0004
EROFS_FEATURE_INCOMPAT_DEVICE_TABLE = 0x0008
EROFS_FEATURE_INCOMPAT_48BIT = 0x0080

# i_format: bit 0 version, bits 1..3 data layout
EROFS_I_VERSION_BIT = 0
EROFS_I_DATALAYOUT_BIT = 1
EROFS_INODE_LAYOUT_COMPACT = 0
EROFS_INODE_LAYOUT_EXTENDED = 1
EROFS_INODE_FLAT_PLAIN = 0
EROFS_INODE_COMPRESSED_FULL = 1
EROFS_INODE_FLAT_INLINE = 2
EROFS_INODE_COMPRESSED_COMPACT = 3
EROFS_INODE_CHUNK_BASED = 4

# dirent file_type
EROFS_FT_UNKNOWN = 0
EROFS_FT_REG_FILE = 1
EROFS_FT_DIR = 2
EROFS_FT_CHRDEV = 3
EROFS_FT_BLKDEV = 4
EROFS_FT_FIFO = 5
EROFS_FT_SOCK = 6
EROFS_FT_SYMLINK = 7

# the largest value a compact inode can carry in its 16-bit and 32-bit fields
EROFS_COMPACT_ID_MAX = 0xFFFF
EROFS_COMPACT_SIZE_MAX = 0xFFFFFFFF

# chunk formats, limits and feature names the reader checks
EROFS_CHUNK_FORMAT_48BIT = 0x0040
EROFS_CHUNK_FORMAT_ALL = (EROFS_CHUNK_FORMAT_BLKBITS_MASK | EROFS_CHUNK_FORMAT_INDEXES
                          | EROFS_CHUNK_FORMAT_48BIT)
EROFS_CHUNK_INDEX_SIZE = 8  # {startblk_hi u16, device_id u16, startblk_lo u32}
EROFS_I_FORMAT_KNOWN = 0x000F  # version bit + 3 layout bits; bit 4 needs 48BIT
EROFS_NID_METABOX_BIT = 1 << 63
EROFS_SB_CHECKSUM_OFFSET = EROFS_SUPER_OFFSET + 4
EROFS_SYMLINK_MAX = 4095  # the kernel rejects i_size >= PAGE_SIZE for symlinks

# feature_incompat bits this reader accepts. The compression ones only matter for compressed
# inodes, which are refused one by one; extra devices only when a chunk points at one.
INCOMPAT_NAMES = {
    0x0001: "lz4_0padding", 0x0002: "compr_cfgs", 0x0004: "chunked_file",
    0x0008: "device_table", 0x0010: "ztailpacking", 0x0020: "fragments",
    0x0040: "xattr_prefixes", 0x0080: "48bit", 0x0100: "metabox",
}
INCOMPAT_SUPPORTED = 0x007F


erofs_super_block = np.dtype([
    ("magic", "<u4"),  # EROFS_SUPER_MAGIC_V1
    ("checksum", "<u4"),  # crc32c over the rest of block 0, see write.superblock_checksum
    ("feature_compat", "<u4"),
    ("blkszbits", "u1"),  # block size = 1 << blkszbits
    ("sb_extslots", "u1"),  # superblock size = 128 + sb_extslots * 16
    ("root_nid", "<u2"),
    ("inos", "<u8"),  # total valid inode count
    ("epoch", "<u8"),  # base time of compact inodes, seconds (old name build_time)
    ("fixed_nsec", "<u4"),  # nanoseconds of the epoch (old name build_time_nsec)
    ("blocks", "<u4"),  # image size in blocks (blocks_lo)
    ("meta_blkaddr", "<u4"),  # start block of the metadata area (nid 0)
    ("xattr_blkaddr", "<u4"),
    ("uuid", "u1", (16,)),
    ("volume_name", "S16"),
    ("feature_incompat", "<u4"),
    ("available_compr_algs", "<u2"),
    ("extra_devices", "<u2"),
    ("devt_slotoff", "<u2"),
    ("dirblkbits", "u1"),  # must be 0
    ("xattr_prefix_count", "u1"),
    ("xattr_prefix_start", "<u4"),
    ("packed_nid", "<u8"),
    ("xattr_filter_reserved", "u1"),
    ("ishare_xattr_prefix_id", "u1"),
    ("reserved", "<u2"),
    ("build_time", "<u4"),  # 48BIT only
    ("rootnid_8b", "<u8"),  # 48BIT only
    ("reserved2", "u1", (8,)),  # metabox_nid and reserved3 follow only with sb_extslots
])

erofs_inode_compact = np.dtype([
    ("i_format", "<u2"),
    ("i_xattr_icount", "<u2"),
    ("i_mode", "<u2"),
    ("i_nlink", "<u2"),
    ("i_size", "<u4"),
    ("i_mtime", "<u4"),  # seconds after sb.epoch; we only use compact when this is 0
    ("i_u", "<u4"),  # startblk / rdev / chunk info {format u16, reserved u16}
    ("i_ino", "<u4"),  # 1-based serial, only for 32-bit stat compatibility
    ("i_uid", "<u2"),
    ("i_gid", "<u2"),
    ("i_reserved", "<u4"),
])

erofs_inode_extended = np.dtype([
    ("i_format", "<u2"),
    ("i_xattr_icount", "<u2"),
    ("i_mode", "<u2"),
    ("i_nb", "<u2"),  # startblk_hi / blocks_hi for 48-bit; 0 here
    ("i_size", "<u8"),
    ("i_u", "<u4"),
    ("i_ino", "<u4"),
    ("i_uid", "<u4"),
    ("i_gid", "<u4"),
    ("i_mtime", "<i8"),  # seconds since the Unix epoch
    ("i_mtime_nsec", "<u4"),
    ("i_nlink", "<u4"),
    ("i_reserved2", "u1", (16,)),
])

erofs_dirent = np.dtype([
    ("nid", "<u8"),
    ("nameoff", "<u2"),  # start of the name inside the block; de[0].nameoff = 12 * count
    ("file_type", "u1"),
    ("reserved", "u1"),
])

EROFS_INODE_COMPACT_SIZE = 32
EROFS_INODE_EXTENDED_SIZE = 64
EROFS_DIRENT_SIZE = 12


def i_format(version: int, datalayout: int) -> int:
    """Compose i_format from the inode version and the data layout."""
    return (version << EROFS_I_VERSION_BIT) | (datalayout << EROFS_I_DATALAYOUT_BIT)


def check_ondisk_layout_definitions() -> None:
    """Fail loudly if a dtype drifts from the on-disk sizes (as erofs_fs.h does at build)."""
    expected = {
        "erofs_super_block": (erofs_super_block, EROFS_SUPER_SIZE),
        "erofs_inode_compact": (erofs_inode_compact, EROFS_INODE_COMPACT_SIZE),
        "erofs_inode_extended": (erofs_inode_extended, EROFS_INODE_EXTENDED_SIZE),
        "erofs_dirent": (erofs_dirent, EROFS_DIRENT_SIZE),
    }
    for name, (dtype, size) in expected.items():
        if dtype.itemsize != size:
            raise AssertionError(f"{name} is {dtype.itemsize} bytes, {size} expected")


check_ondisk_layout_definitions()
