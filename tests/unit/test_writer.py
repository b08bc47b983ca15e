"""The EROFS writer: on-disk sizes, big directories, block sizes, ids, sizes, checksums."""

import os
import stat
import uuid

import crc32c
import erofs19
import numpy as np
import oracle
import pytest

from s3erofs import erofs_fs as fs
from s3erofs.build import build_from_columns
from s3erofs.columns import KeyColumns
from s3erofs.tree import TreeOptions
from s3erofs.write import ImageOptions

BUILD_TIME = 1_700_000_000
MTIME = 1_685_613_600  # 2023-06-01T10:00:00Z


def build(tmp_path, keys, sizes=None, *, block_size=4096, uid=0, gid=0, nsec=None, name="img"):
    sizes = [len(k) for k in keys] if sizes is None else sizes
    cols = KeyColumns.from_keys(keys, sizes, [MTIME] * len(keys), nsec)
    target = tmp_path / f"{name}.erofs"
    build_from_columns(cols, target, tree_options=TreeOptions(uid=uid, gid=gid),
                       image_options=ImageOptions(block_size=block_size, build_time=BUILD_TIME,
                                                  uuid=uuid.UUID(int=7)))
    return target


def test_ondisk_sizes():
    assert fs.erofs_super_block.itemsize == 128
    assert fs.erofs_inode_compact.itemsize == 32
    assert fs.erofs_inode_extended.itemsize == 64
    assert fs.erofs_dirent.itemsize == 12
    assert fs.erofs_super_block.fields["feature_incompat"][1] == 80
    assert fs.erofs_inode_extended.fields["i_mtime"][1] == 32


def big_directory_keys():
    long_names = [f"{i:03d}".encode() + b"L" * 252 for i in range(300)]
    short_names = [f"s{i:04d}".encode() for i in range(500)]
    assert all(len(n) == 255 for n in long_names)
    return sorted(b"big/" + n for n in long_names + short_names)


@pytest.mark.parametrize("block_size", [512, 4096])
def test_directory_of_800_entries(tmp_path, block_size):
    keys = big_directory_keys()
    img = build(tmp_path, keys, block_size=block_size)

    erofs19.fsck(img, block_size)
    with oracle.mounted(img) as mnt:
        names = os.listdir(os.path.join(mnt, "big").encode())
        assert len(names) == 800
        assert sorted(names) == sorted(k[len(b"big/"):] for k in keys)
        # every lookup goes through the kernel's binary search over the blocks
        for key in keys:
            assert os.lstat(os.path.join(mnt.encode(), key)).st_size == len(key)
        assert os.lstat(os.path.join(mnt, "big")).st_size > block_size


def stored_and_computed_checksum(img, block_size):
    data = bytearray(img.read_bytes())
    stored = int.from_bytes(data[1028:1032], "little")
    data[1028:1032] = bytes(4)
    end = 1024 + (block_size if block_size <= 1024 else block_size - 1024)
    return stored, crc32c.crc32c(bytes(data[1024:end])) ^ 0xFFFFFFFF


@pytest.mark.parametrize("block_size", [512, 1024, 4096, 65536])
def test_superblock_checksum(tmp_path, block_size):
    img = build(tmp_path, [b"a/b", b"c"], block_size=block_size)

    stored, computed = stored_and_computed_checksum(img, block_size)
    assert stored == computed
    sb = np.frombuffer(img.read_bytes()[1024:1152], fs.erofs_super_block)[0]
    assert sb["magic"] == fs.EROFS_SUPER_MAGIC_V1
    assert 1 << int(sb["blkszbits"]) == block_size
    assert sb["feature_compat"] & fs.EROFS_FEATURE_COMPAT_SB_CHKSUM
    assert img.stat().st_size == sb["blocks"] * block_size
    erofs19.fsck(img, block_size)


def test_checksum_change_is_detected(tmp_path):
    img = build(tmp_path, [b"a"])
    data = bytearray(img.read_bytes())
    data[1200] ^= 0xFF  # an inode byte inside block 0: covered by the checksum
    img.write_bytes(bytes(data))
    stored, computed = stored_and_computed_checksum(img, 4096)
    assert stored != computed


def test_uid_gid_above_65535(tmp_path):
    img = build(tmp_path, [b"d/f", b"g"], uid=70000, gid=80000)

    oracle.fsck(img)
    with oracle.mounted(img) as mnt:
        for path in ("", "d", "d/f", "g"):
            st = os.lstat(os.path.join(mnt, path))
            assert (st.st_uid, st.st_gid) == (70000, 80000), path


def test_sizes_past_4_gib_are_exact(tmp_path):
    sizes = [2246119204, 5000000000, 6442450944, 4294967295, 4294967296]
    keys = [f"f{i}".encode() for i in range(len(sizes))]
    img = build(tmp_path, keys, sizes)

    oracle.fsck(img)
    with oracle.mounted(img) as mnt:
        for key, size in zip(keys, sizes, strict=True):
            st = os.lstat(os.path.join(mnt.encode(), key))
            assert st.st_size == size
        with open(os.path.join(mnt, "f1"), "rb") as f:
            f.seek(4999999990)
            assert f.read() == bytes(10)
    info = oracle.dump_inode(img, "/f2")
    assert info["size"] == 6442450944


def test_mtime_nanoseconds_and_modes(tmp_path):
    keys = [b"m/", b"m/x", b"y"]
    img = build(tmp_path, keys, [0, 5, 6], nsec=[1, 123456789, 999999999])

    with oracle.mounted(img) as mnt:
        root = os.lstat(mnt)
        assert stat.S_IMODE(root.st_mode) == 0o755 and root.st_mtime_ns == BUILD_TIME * 10**9
        assert root.st_nlink == 3
        marker = os.lstat(os.path.join(mnt, "m"))
        assert stat.S_ISDIR(marker.st_mode) and marker.st_mtime_ns == MTIME * 10**9 + 1
        x = os.lstat(os.path.join(mnt, "m", "x"))
        assert stat.S_IMODE(x.st_mode) == 0o644 and x.st_mtime_ns == MTIME * 10**9 + 123456789
        assert os.lstat(os.path.join(mnt, "y")).st_mtime_ns == MTIME * 10**9 + 999999999
        with open(os.path.join(mnt, "y"), "rb") as f:
            assert f.read() == bytes(6)


def test_nlink_counts_subdirectories(tmp_path):
    keys = [b"a/b/c", b"a/d/e", b"a/f", b"g/"]
    img = build(tmp_path, keys)
    with oracle.mounted(img) as mnt:
        assert os.lstat(mnt).st_nlink == 4  # ., .., a, g
        assert os.lstat(os.path.join(mnt, "a")).st_nlink == 4
        assert os.lstat(os.path.join(mnt, "a", "f")).st_nlink == 1


def test_dot_entries_sorted_with_names(tmp_path):
    # '-', '!' and '+' sort before '.', so '.' and '..' sit between names on disk
    keys = [b"d/!x", b"d/+y", b"d/-z", b"d/.hidden", b"d/a"]
    img = build(tmp_path, keys)
    oracle.fsck(img)
    with oracle.mounted(img) as mnt:
        assert sorted(os.listdir(os.path.join(mnt, "d"))) == ["!x", "+y", "-z", ".hidden", "a"]
        for key in keys:
            assert os.lstat(os.path.join(mnt.encode(), key)).st_size == len(key)


def test_reproducible_bytes(tmp_path):
    keys = [b"x/%d" % i for i in range(100)]
    a = build(tmp_path, keys, name="a")
    b = build(tmp_path, keys, name="b")
    assert a.read_bytes() == b.read_bytes()


def test_bad_block_size_is_an_error(tmp_path):
    from s3erofs.errors import ImageError
    with pytest.raises(ImageError, match="block size 3000 is not a power of two from 512 to 65536"):
        build(tmp_path, [b"a"], block_size=3000)
    assert list(tmp_path.iterdir()) == []
