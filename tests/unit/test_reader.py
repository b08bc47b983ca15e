"""s3erofs.reader against images that Debian's mkfs.erofs 1.5 builds from a real tree.

Every value the reader returns is compared with os.lstat, os.readlink and the file bytes of the
source tree, and a few with dump.erofs, an independent reader.
"""

import io
import os
import random
import re
import stat
import struct
import subprocess

import crc32c
import pytest

from s3erofs import reader
from s3erofs.errors import CorruptImageError

BLOCK = 4096
FIXED_TIME = 1_500_000_000
SIZES = {"empty": 0, "one": 1, "b4095": 4095, "b4096": 4096, "b4097": 4097,
         "big": (1 << 20) + 3}
DIR_COUNTS = (1, 50, 300, 2000)
LONG_TARGET = b"t" * 190 + b"/123456789"  # 200 bytes
IS_ROOT = os.geteuid() == 0


def _mtime_ns(i: int) -> int:
    return 1_600_000_000_000_000_000 + i * 1_000_003_007


def _populate(src) -> None:
    rng = random.Random(20240601)
    files = src / "files"
    files.mkdir()
    for name, size in SIZES.items():
        (files / name).write_bytes(rng.randbytes(size))

    for count in DIR_COUNTS:
        folder = src / f"d{count}"
        folder.mkdir()
        for i in range(count):
            (folder / f"e{i:05d}").write_bytes(b"x" * (i % 7))
    deep = src / "a" / "b" / "c" / "d"
    deep.mkdir(parents=True)
    (deep / "leaf").write_bytes(b"leaf\n")

    os.symlink("files/one", src / "lnk")
    os.symlink(LONG_TARGET, src / "longlnk")
    (src / "h2a").write_bytes(b"two links\n")
    os.link(src / "h2a", src / "a" / "h2b")
    (src / "h3a").write_bytes(rng.randbytes(5000))
    os.link(src / "h3a", src / "a" / "b" / "h3b")
    os.link(src / "h3a", src / "a" / "b" / "c" / "h3c")

    os.mkfifo(src / "fifo")
    _special_files(src)
    _modes_and_owners(src)
    os.setxattr(src / "files" / "one", b"user.note", b"x" * 30)
    os.setxattr(src / "a", b"user.k", b"v")


def _special_files(src) -> None:
    if IS_ROOT:
        os.mknod(src / "chr", stat.S_IFCHR | 0o620, os.makedev(1, 3))
        os.mknod(src / "blk", stat.S_IFBLK | 0o660, os.makedev(259, 65540))
        os.mknod(src / "sock", stat.S_IFSOCK | 0o755)
        for name, mode in (("chr", 0o620), ("blk", 0o660), ("sock", 0o755)):
            os.chmod(src / name, mode)  # mknod applies the umask


def _modes_and_owners(src) -> None:
    (src / "files" / "b4095").chmod(0o600)
    (src / "files" / "b4096").chmod(0o4755)
    (src / "d1").chmod(0o1777)
    (src / "d50").chmod(0o2750)
    if IS_ROOT:
        os.chown(src / "files" / "b4097", 1234, 5678)
        os.chown(src / "files" / "big", 70000, 80000)  # only fits an extended inode
        os.chown(src / "lnk", 42, 43, follow_symlinks=False)


def _set_mtimes(src) -> None:
    # bottom-up, so that adding entries no longer changes a directory's mtime afterwards
    paths = [dirpath + "/" + name for dirpath, dirs, files in os.walk(src, topdown=False)
             for name in sorted(files + dirs)]
    for i, path in enumerate(paths + [str(src)]):
        ns = _mtime_ns(i)
        os.utime(path, ns=(ns, ns), follow_symlinks=False)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    src = tmp_path_factory.mktemp("tree") / "src"
    src.mkdir()
    _populate(src)
    _set_mtimes(src)
    return src


def _mkfs(image, src, *options):
    subprocess.run(["mkfs.erofs", "--quiet", *options, str(image), str(src)], check=True,
                   capture_output=True, env={**os.environ, "TZ": "UTC"})
    return image


VARIANTS = {
    "plain": (),
    "noinline": ("-Enoinline_data",),
    "chunk4096": ("--chunksize=4096",),
    "chunk16k": ("--chunksize=16384",),
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def built(request, source, tmp_path_factory):
    image = tmp_path_factory.mktemp("img") / f"{request.param}.erofs"
    _mkfs(image, source, *VARIANTS[request.param])
    return request.param, image


@pytest.fixture(scope="module")
def fixed_time_image(source, tmp_path_factory):
    image = tmp_path_factory.mktemp("img") / "fixed.erofs"
    return _mkfs(image, source, f"-T{FIXED_TIME}")


def _relative(src, dirpath: str) -> bytes:
    rel = os.path.relpath(dirpath, src)
    return b"/" if rel == "." else b"/" + os.fsencode(rel)


def _dump(*args) -> str:
    done = subprocess.run(["dump.erofs", *args], check=True, capture_output=True, text=True,
                          env={**os.environ, "TZ": "UTC"})
    return done.stdout


def test_walk_matches_os_walk(built, source):
    _, image = built
    expected = {_relative(source, dirpath): (sorted(map(os.fsencode, dirs)),
                                             sorted(map(os.fsencode, files)))
                for dirpath, dirs, files in os.walk(source)}
    with reader.open(image) as im:
        walked = list(im.walk())

    assert {path: (dirs, files) for path, dirs, files in walked} == expected
    assert len(walked) == len(expected)
    for _, dirs, files in walked:
        assert dirs == sorted(dirs) and files == sorted(files)  # on-disk order is sorted
    assert walked[0][0] == b"/"
    paths = [path for path, _, _ in walked]
    assert paths.index(b"/a") < paths.index(b"/a/b") < paths.index(b"/a/b/c/d")


def test_every_inode_matches_lstat(built, source):
    variant, image = built
    with reader.open(image) as im:
        for dirpath, dirs, files in os.walk(source):
            for name in [None, *dirs, *files]:
                path = dirpath if name is None else os.path.join(dirpath, name)
                rel = _relative(source, path)
                _compare(im, rel, os.lstat(path))
                _compare_content(im, rel, path, os.lstat(path))


def _compare(im, rel: bytes, expected: os.stat_result) -> None:
    st = im.stat(rel)
    got = (st.mode, st.uid, st.gid, st.nlink, st.mtime, st.mtime_nsec)
    want = (expected.st_mode, expected.st_uid, expected.st_gid, expected.st_nlink,
            expected.st_mtime_ns // 10**9, expected.st_mtime_ns % 10**9)
    assert got == want, rel
    assert st.inode_size == 64, rel  # mtime differs from the build time: extended
    if not stat.S_ISDIR(expected.st_mode):
        assert st.size == expected.st_size, rel
    if stat.S_ISCHR(expected.st_mode) or stat.S_ISBLK(expected.st_mode):
        assert st.rdev == expected.st_rdev, rel
    else:
        assert st.rdev == 0, rel
    assert im.inode(st.nid) == st
    assert im.lookup(rel) == st.nid


def _compare_content(im, rel: bytes, path: str, expected: os.stat_result) -> None:
    if stat.S_ISREG(expected.st_mode):
        data = open(path, "rb").read()
        assert im.read(rel) == data, rel
        assert im.read(rel, 4095, 3) == data[4095:4098], rel
        assert im.read(rel, len(data) + 5) == b"", rel
    elif stat.S_ISLNK(expected.st_mode):
        assert im.readlink(rel) == os.fsencode(os.readlink(path)), rel
    elif stat.S_ISDIR(expected.st_mode):
        assert im.listdir(rel) == sorted(os.fsencode(n) for n in os.listdir(path)), rel


def test_layouts_as_mkfs_wrote_them(built):
    variant, image = built
    with reader.open(image) as im:
        layouts = {name: im.stat(f"/files/{name}").layout for name in SIZES}
        dir_layout = im.stat("/d300").layout

    if variant == "plain":
        # tails are inlined unless the size is block-aligned or the tail doesn't fit
        assert layouts == {"empty": 0, "one": 2, "b4095": 0, "b4096": 0, "b4097": 2, "big": 2}
    elif variant == "noinline":
        assert set(layouts.values()) == {0}
    else:
        assert layouts["b4097"] == layouts["big"] == 4
    assert dir_layout == 2


def test_special_files_and_links(built, source):
    _, image = built
    with reader.open(image) as im:
        assert im.readlink("/longlnk") == LONG_TARGET
        assert im.readlink(b"/lnk") == b"files/one"
        h2 = [im.stat(p) for p in ("/h2a", "/a/h2b")]
        h3 = [im.stat(p) for p in ("/h3a", "/a/b/h3b", "/a/b/c/h3c")]
        assert {st.nid for st in h2} == {h2[0].nid} and h2[0].nlink == 2
        assert {st.nid for st in h3} == {h3[0].nid} and h3[0].nlink == 3
        assert stat.S_ISFIFO(im.stat("/fifo").mode)
        entries = {e.name: e.file_type for e in im.scandir("/")}
    assert entries[b"fifo"] == 5 and entries[b"lnk"] == 7 and entries[b"files"] == 2
    assert entries[b"h2a"] == 1


@pytest.mark.skipif(not IS_ROOT, reason="mknod and chown need root")
def test_devices_and_owners(built):
    _, image = built
    with reader.open(image) as im:
        chr_st, blk_st, sock_st = im.stat("/chr"), im.stat("/blk"), im.stat("/sock")
        big, b4097 = im.stat("/files/big"), im.stat("/files/b4097")
        lnk = im.stat("/lnk")
        entries = {e.name: e.file_type for e in im.scandir("/")}
    assert (chr_st.mode, chr_st.rdev) == (stat.S_IFCHR | 0o620, os.makedev(1, 3))
    assert (blk_st.mode, blk_st.rdev) == (stat.S_IFBLK | 0o660, os.makedev(259, 65540))
    assert sock_st.mode == stat.S_IFSOCK | 0o755
    assert (entries[b"chr"], entries[b"blk"], entries[b"sock"]) == (3, 4, 6)
    assert (big.uid, big.gid, b4097.uid, b4097.gid) == (70000, 80000, 1234, 5678)
    assert (lnk.uid, lnk.gid) == (42, 43)


def test_superblock_and_nids_agree_with_dump(built):
    _, image = built
    text = _dump(str(image))
    with reader.open(image) as im:
        sb = im.superblock
        nids = {path: im.stat(path).nid for path in ("/files/big", "/d2000/e01999", "/a")}

    assert f"Filesystem blocks:                            {sb.blocks}\n" in text
    assert f"Filesystem root nid:                          {sb.root_nid}\n" in text
    assert f"Filesystem inode count:                       {sb.inos}\n" in text
    uuid = sb.uuid.hex()
    assert f"{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:]}" in text
    assert sb.block_size == BLOCK and sb.blocks * BLOCK == image.stat().st_size
    for path, nid in nids.items():
        assert re.search(rf"^NID: {nid} ", _dump(f"--path={path}", str(image)), re.M), path


def test_compact_inodes_take_the_build_time(fixed_time_image, source):
    with reader.open(fixed_time_image) as im:
        sb = im.superblock
        files_st = im.stat("/files/b4095")
        root = im.stat("/")
        big = im.stat("/files/big")
    assert (sb.epoch, sb.fixed_nsec) == (FIXED_TIME, 0)
    assert (files_st.inode_size, files_st.mtime, files_st.mtime_nsec) == (32, FIXED_TIME, 0)
    assert (root.inode_size, root.mtime) == (32, FIXED_TIME)
    assert big.mtime == FIXED_TIME
    assert big.inode_size == (64 if IS_ROOT else 32)  # uid 70000 needs an extended inode


def test_missing_and_wrong_kind_paths(built):
    _, image = built
    with reader.open(image) as im:
        with pytest.raises(FileNotFoundError, match="'/files/nope'"):
            im.stat("/files/nope")
        with pytest.raises(NotADirectoryError, match="'/files/one/x'"):
            im.stat("/files/one/x")
        with pytest.raises(NotADirectoryError):
            im.listdir("/files/one")
        with pytest.raises(IsADirectoryError):
            im.read("/files")
        with pytest.raises(NotADirectoryError, match="'/files/one'"):
            next(im.walk("/files/one"))
        with pytest.raises(FileNotFoundError, match="'/nope'"):
            next(im.walk("/nope"))
        with pytest.raises(OSError, match="Not a symlink"):
            im.readlink("/files/one")
        assert im.stat("/a/b/..").nid == im.stat("/a").nid
        assert im.stat("/").nid == im.superblock.root_nid


def test_walk_prunes_and_starts_below_root(built):
    _, image = built
    with reader.open(image) as im:
        walked = []
        for dirpath, dirs, _ in im.walk("/a"):
            walked.append(dirpath)
            if dirpath == b"/a/b":
                dirs.remove(b"c")
    assert walked == [b"/a", b"/a/b"]


def test_open_file_object_and_format_mode(built, source):
    _, image = built
    one = (source / "files" / "big").read_bytes()
    with open(image, "rb") as f, reader.open(f) as im:
        assert im.read("/files/big") == one
    im = reader.open(io.BytesIO(image.read_bytes()))
    assert im.read("/files/big", 5, 10) == one[5:15]
    assert im.listdir("/a") == [b"b", b"h2b"]
    assert reader.format_mode(im.stat("/a").mode) == "drwxr-xr-x"
    assert reader.format_mode(im.stat("/d1").mode) == "drwxrwxrwt"
    assert reader.format_mode(im.stat("/files/b4096").mode) == "-rwsr-xr-x"
    assert reader.format_mode(im.stat("/lnk").mode) == "lrwxrwxrwx"
    assert reader.format_mode(im.stat("/fifo").mode) == "prw-r--r--"


def test_compressed_inode_is_refused_by_nid(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "z").write_bytes(b"abc" * 30000)
    image = _mkfs(tmp_path / "z.erofs", src, "-zlz4")
    nid = int(re.search(r"^NID: (\d+) ", _dump("--path=/z", str(image)), re.M).group(1))
    with reader.open(image) as im:
        st = im.stat("/z")
        with pytest.raises(reader.UnsupportedImageError,
                           match=rf"^compressed inodes are not supported \(nid {nid}\)$"):
            im.read("/z")
    assert (st.nid, st.size, st.layout) == (nid, 90000, 3)
    assert issubclass(reader.UnsupportedImageError, NotImplementedError)


# Chunk features mkfs.erofs 1.5 never writes (holes, 8-byte indexes, 48-bit entries) are made
# by patching a --chunksize image of one 3-block file, whose inode is the last in block 0.

def _refresh_checksum(buf: bytearray) -> None:
    area = bytearray(buf[1024:BLOCK])
    area[4:8] = bytes(4)
    struct.pack_into("<I", buf, 1028, ~crc32c.crc32c(bytes(area)) & 0xFFFFFFFF)


@pytest.fixture(scope="module")
def chunk_image(tmp_path_factory):
    root = tmp_path_factory.mktemp("chunk")
    (root / "src").mkdir()
    data = random.Random(7).randbytes(3 * BLOCK - 100)
    (root / "src" / "f").write_bytes(data)
    image = _mkfs(root / "c.erofs", root / "src", "--chunksize=4096", f"-T{FIXED_TIME}",
                  "-x-1")
    with reader.open(image) as im:
        nid = im.stat("/f").nid
    return bytearray(image.read_bytes()), nid, data


def _patched(chunk_image, entries: list[bytes], chunk_format: int):
    buf, nid, data = chunk_image
    buf = bytearray(buf)
    iloc = nid * 32
    struct.pack_into("<H", buf, iloc + 16, chunk_format)
    start = -(-(iloc + 32) // 8) * 8 if chunk_format & 0x20 else iloc + 32
    buf[start:start + sum(map(len, entries))] = b"".join(entries)
    _refresh_checksum(buf)
    return bytes(buf), data


def test_chunk_block_map_hole_reads_zeros(chunk_image):
    buf, nid, data = chunk_image
    blocks = struct.unpack_from("<3I", buf, nid * 32 + 32)
    entries = [struct.pack("<I", b) for b in (blocks[0], 0xFFFFFFFF, blocks[2])]
    image, data = _patched(chunk_image, entries, 0)
    with reader.open(io.BytesIO(image)) as im:
        assert im.read("/f") == data[:BLOCK] + bytes(BLOCK) + data[2 * BLOCK:]
        assert im.read("/f", BLOCK - 2, 4) == data[BLOCK - 2:BLOCK] + b"\0\0"


def test_chunk_indexes_8_byte_and_48bit(chunk_image):
    buf, nid, data = chunk_image
    blocks = struct.unpack_from("<3I", buf, nid * 32 + 32)
    # device_id 5 is ignored: the image has no extra devices
    entries = [struct.pack("<HHI", 0, 5, blocks[0]), struct.pack("<HHI", 0, 0, 0xFFFFFFFF),
               struct.pack("<HHI", 0, 0, blocks[2])]
    image, data = _patched(chunk_image, entries, 0x20)
    with reader.open(io.BytesIO(image)) as im:
        assert im.read("/f") == data[:BLOCK] + bytes(BLOCK) + data[2 * BLOCK:]

    # with the 48BIT chunk format a hole needs the high bits all ones too
    entries[1] = struct.pack("<HHI", 0xFFFF, 0, 0xFFFFFFFF)
    image, data = _patched(chunk_image, entries, 0x60)
    with reader.open(io.BytesIO(image)) as im:
        assert im.read("/f") == data[:BLOCK] + bytes(BLOCK) + data[2 * BLOCK:]
    entries[1] = struct.pack("<HHI", 0, 0, 0xFFFFFFFF)
    image, data = _patched(chunk_image, entries, 0x60)
    with reader.open(io.BytesIO(image)) as im:
        with pytest.raises(CorruptImageError,
                           match=rf"^data block 4294967295 of nid {nid} is beyond the image end"):
            im.read("/f")


def test_meta_only_zero_fill_like_mkfs_s3(chunk_image):
    # erofs-format.md 1.5: one chunk covers the file, its block map entry is a hole
    image, data = _patched(chunk_image, [struct.pack("<I", 0xFFFFFFFF)], 2)
    with reader.open(io.BytesIO(image)) as im:
        st = im.stat("/f")
        assert im.read("/f") == bytes(len(data))
        assert im.read("/f", 5000, 7) == bytes(7)
    assert (st.layout, st.size) == (4, len(data))
