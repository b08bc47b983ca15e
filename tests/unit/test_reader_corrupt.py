"""s3erofs.reader on damaged images: exact errors naming nid and offset, never a crash or a hang.

The good image comes from Debian's mkfs.erofs 1.5 with everything pinned. Its layout (checked
against dump.erofs in test_layout_assumptions) is one 4 KiB metadata block plus one data block:

    root nid 36 (compact, 1152) with inline dirents at 1184: '.' 1184, '..' 1196, 'a' 1208,
        'p' 1220, 'sub' 1232; names at 1244 ('.' 1244, '..' 1245, 'a' 1247, 'p' 1248, 'sub' 1249)
    'a'   nid 40 at 1280, 100 bytes FLAT_INLINE (tail at 1312)
    'p'   nid 45 at 1440, 4096 bytes FLAT_PLAIN at block 1
    'sub' nid 46 at 1472, dirents at 1504: '.' 1504, '..' 1516, 'x' 1528, 'y' 1540
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
from s3erofs.errors import CorruptImageError, ImageError

BLOCK = 4096
ROOT, A, P, SUB = 36, 40, 45, 46
DE_ROOT = {b".": 1184, b"..": 1196, b"a": 1208, b"p": 1220, b"sub": 1232}
DE_SUB = {b".": 1504, b"..": 1516, b"x": 1528, b"y": 1540}
NAME_A = 1247


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("good")
    src = root / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a").write_bytes(b"A" * 100)
    (src / "p").write_bytes(bytes(range(256)) * 16)
    (src / "sub" / "x").write_bytes(b"x")
    (src / "sub" / "y").write_bytes(b"yy")
    image = root / "good.erofs"
    subprocess.run(["mkfs.erofs", "--quiet", "-T1500000000", "-x-1", "--all-root",
                    "-U01234567-89ab-cdef-0123-456789abcdef", str(image), str(src)],
                   check=True, capture_output=True)
    return image.read_bytes()


def _refresh_checksum(buf: bytearray) -> None:
    # erofs-format.md 1.2: ~crc32c over 1024..4096 with the field zeroed
    area = bytearray(buf[1024:BLOCK])
    area[4:8] = bytes(4)
    struct.pack_into("<I", buf, 1028, ~crc32c.crc32c(bytes(area)) & 0xFFFFFFFF)


def _damaged(good: bytes, *patches, checksum=True) -> bytes:
    """Apply (offset, struct format, value) patches and, by default, fix the checksum."""
    buf = bytearray(good)
    for offset, fmt, value in patches:
        struct.pack_into(fmt, buf, offset, value)
    if checksum:
        _refresh_checksum(buf)
    return bytes(buf)


def _open(data: bytes):
    return reader.open(io.BytesIO(data))


def _exhaust(data: bytes) -> None:
    """Open, walk and read everything (reads capped); return only if nothing is wrong."""
    with _open(data) as im:
        steps = 0
        for dirpath, _, _ in im.walk():
            steps += 1
            assert steps < 100, "walk does not end"
            for entry in im.scandir(dirpath):
                st = im.inode(entry.nid)
                if stat.S_ISREG(st.mode):
                    im.read_inode(entry.nid, 0, 1 << 16)
                elif stat.S_ISLNK(st.mode):
                    im.readlink(os.path.join(dirpath, entry.name))


def _fsck_fails(tmp_path, data: bytes) -> bool:
    image = tmp_path / "bad.erofs"
    image.write_bytes(data)
    return subprocess.run(["fsck.erofs", str(image)], capture_output=True,
                          timeout=60).returncode != 0


def test_layout_assumptions(good, tmp_path):
    image = tmp_path / "good.erofs"
    image.write_bytes(good)
    listing = subprocess.run(["dump.erofs", "--ls", "--path=/", str(image)], check=True,
                             capture_output=True, text=True).stdout
    nids = {m.group(2): int(m.group(1))
            for m in re.finditer(r"^\s+(\d+)\s+\d\s+(\S+)$", listing, re.M)}
    assert nids == {".": ROOT, "..": ROOT, "a": A, "p": P, "sub": SUB}
    assert len(good) == 2 * BLOCK
    assert good[NAME_A:NAME_A + 4] == b"apsu"
    assert not _fsck_fails(tmp_path, _damaged(good))  # the checksum helper is right
    _exhaust(good)


def _raises(data: bytes, message: str, *, nid=None, offset=None, action=_exhaust):
    with pytest.raises(CorruptImageError) as caught:
        action(data)
    assert str(caught.value) == message
    assert (caught.value.nid, caught.value.offset) == (nid, offset)
    assert caught.value.exit_code == 5


def test_bad_magic(good, tmp_path):
    data = _damaged(good, (1024, "<I", 0xE0F5E1E3), checksum=False)
    _raises(data, "bad magic 0xe0f5e1e3 at offset 1024 (0xe0f5e1e2 expected)", offset=1024)
    assert _fsck_fails(tmp_path, data)


def test_bad_checksum_byte(good, tmp_path):
    buf = bytearray(good)
    buf[3000] ^= 0x40
    stored = struct.unpack_from("<I", good, 1028)[0]
    area = bytearray(buf[1024:BLOCK])
    area[4:8] = bytes(4)
    expected = ~crc32c.crc32c(bytes(area)) & 0xFFFFFFFF
    _raises(bytes(buf), f"invalid superblock checksum 0x{stored:08x}, 0x{expected:08x} "
            "expected (offset 1028)", offset=1028)

    # fsck.erofs 1.5 reports a mismatch (but exits 0): its value must be ours
    image = tmp_path / "bad.erofs"
    image.write_bytes(bytes(buf))
    report = subprocess.run(["fsck.erofs", str(image)], capture_output=True, text=True).stderr
    assert f"saved({stored:08x}h) calculated({expected:08x}h)" in report


def test_dirent_nid_beyond_image_end(good, tmp_path):
    data = _damaged(good, (DE_ROOT[b"a"], "<Q", 99999))
    message = "dirent 'a' points to nid 99999 beyond the image end (offset 1208)"
    _raises(data, message, nid=ROOT, offset=1208)
    _raises(data, message, nid=ROOT, offset=1208, action=lambda d: _open(d).stat("/p"))
    assert _fsck_fails(tmp_path, data)


@pytest.mark.parametrize("nameoff", [5, 0, 61, 68, 4000])
def test_bad_first_nameoff(good, tmp_path, nameoff):
    data = _damaged(good, (DE_ROOT[b"."] + 8, "<H", nameoff))
    _raises(data, f"invalid de[0].nameoff {nameoff} at nid 36 (offset 1184)",
            nid=ROOT, offset=1184)
    assert _fsck_fails(tmp_path, data)


def test_nameoff_past_block_end(good):
    data = _damaged(good, (DE_ROOT[b"p"] + 8, "<H", 4000))
    _raises(data, "nameoff 4000 is past the directory block end (68 bytes) at nid 36 "
            "(offset 1220)", nid=ROOT, offset=1220)


def test_nameoffs_not_increasing(good, tmp_path):
    data = _damaged(good, (DE_ROOT[b"p"] + 8, "<H", 63))
    _raises(data, "nameoff 63 leaves an empty name or is out of order at nid 36 (offset 1208)",
            nid=ROOT, offset=1208)
    assert _fsck_fails(tmp_path, data)


def test_invalid_file_type(good, tmp_path):
    data = _damaged(good, (DE_ROOT[b"a"] + 10, "B", 9))
    _raises(data, "dirent 'a' has invalid file_type 9 at nid 36 (offset 1208)",
            nid=ROOT, offset=1208)
    assert _fsck_fails(tmp_path, data)


def test_names_not_sorted(good):
    data = _damaged(good, (NAME_A, "B", ord("q")))
    _raises(data, "names not sorted at nid 36: 'q' then 'p' (offset 1220)",
            nid=ROOT, offset=1220)


def test_slash_in_name(good):
    data = _damaged(good, (NAME_A, "B", ord("/")))
    _raises(data, "dirent '/' contains '/' or NUL at nid 36 (offset 1208)",
            nid=ROOT, offset=1208)


def test_dot_missing(good):
    data = _damaged(good, (1244, "B", ord("-")))
    _raises(data, "directory nid 36 has no '.' entry (offset 1184)", nid=ROOT, offset=1184)


def test_inline_dirents_cross_block(good):
    data = _damaged(good, (1152 + 8, "<I", 4000))  # root i_size
    _raises(data, "inline data of nid 36 crosses a block boundary (offset 1184)",
            nid=ROOT, offset=1184)


def test_inline_file_tail_crosses_block(good, tmp_path):
    data = _damaged(good, (1280 + 8, "<I", 3000))  # 'a' i_size
    _raises(data, "inline data of nid 40 crosses a block boundary (offset 1312)",
            nid=A, offset=1312, action=lambda d: _open(d).read("/a"))
    assert _fsck_fails(tmp_path, data)


@pytest.mark.parametrize("startblk", [2, 1000])
def test_data_block_beyond_image_end(good, startblk):
    data = _damaged(good, (1440 + 16, "<I", startblk))  # 'p' startblk
    _raises(data, f"data block {startblk} of nid 45 is beyond the image end "
            f"(offset {startblk * BLOCK})", nid=P, offset=startblk * BLOCK)


def test_subdir_pointing_at_root_is_a_loop(good):
    data = _damaged(good, (DE_ROOT[b"sub"], "<Q", ROOT))
    _raises(data, "directory loop: '/sub' is nid 36, which was already visited (offset 1232)",
            nid=ROOT, offset=1232)


def test_subdir_entry_pointing_at_itself_is_a_loop(good):
    data = _damaged(good, (DE_SUB[b"x"], "<Q", SUB), (DE_SUB[b"x"] + 10, "B", 2))
    _raises(data, "directory loop: '/sub/x' is nid 46, which was already visited "
            "(offset 1528)", nid=SUB, offset=1528)
    with _open(data) as im:
        seen = [dirpath for dirpath, _, _ in _walk_until_error(im)]
    assert seen == [b"/", b"/sub"]


def _walk_until_error(im):
    try:
        yield from im.walk()
    except CorruptImageError:
        return


def test_dotdot_not_the_parent(good):
    data = _damaged(good, (DE_SUB[b".."], "<Q", A))
    _raises(data, "'..' of '/sub' (nid 46) points to nid 40, not to its parent nid 36 "
            "(offset 1516)", nid=SUB, offset=1516)


@pytest.mark.parametrize("size, message", [
    (100, "image is 100 bytes, too small for a superblock (1152 bytes needed)"),
    (2000, "image is 2000 bytes, too small for the checksummed range 1024..4096"),
    (4096, "image is 4096 bytes but the superblock counts 2 blocks of 4096 bytes (8192 bytes)"),
])
def test_truncated_image(good, size, message):
    _raises(good[:size], message, offset=0 if size == 100 else size)


def test_bad_blkszbits(good):
    data = _damaged(good, (1036, "B", 20), checksum=False)
    _raises(data, "blkszbits 20 isn't supported (9..16) (offset 1036)", offset=1036)


@pytest.mark.parametrize("bits, names", [(0x180, "48bit, metabox"), (0x10000, "unknown bit 16")])
def test_unknown_incompat_bits(good, bits, names):
    data = _damaged(good, (1104, "<I", bits))
    with pytest.raises(reader.UnsupportedImageError) as caught:
        _open(data)
    assert str(caught.value) == (f"unsupported feature_incompat bits 0x{bits:x} ({names}) "
                                 "(offset 1104)")


def test_root_nid_not_a_directory(good):
    data = _damaged(good, (1038, "<H", A))
    _raises(data, "root nid 40 is not a directory (mode 0o100644, offset 1280)",
            nid=A, offset=1280)


def test_bad_nids_and_formats(good):
    with _open(good) as im:
        with pytest.raises(CorruptImageError,
                           match=r"^nid 99999 is beyond the image end \(offset 3199968\)$"):
            im.inode(99999)
    data = _damaged(good, (1280, "<H", 6 << 1))
    _raises(data, "unknown data layout 6 at nid 40 (offset 1280)", nid=A, offset=1280,
            action=lambda d: _open(d).stat("/a"))
    data = _damaged(good, (1280, "<H", 0x24))
    _raises(data, "unsupported i_format 0x24 at nid 40 (offset 1280)", nid=A, offset=1280,
            action=lambda d: _open(d).stat("/a"))
    data = _damaged(good, (1280 + 4, "<H", 0o170644))
    _raises(data, "invalid file type in mode 0o170644 at nid 40 (offset 1280)", nid=A,
            offset=1280, action=lambda d: _open(d).stat("/a"))


def test_random_damage_never_crashes_or_hangs(good):
    rng = random.Random(1234)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(400):
        buf = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(1024, 1600)] = rng.randrange(256)
        _refresh_checksum(buf)
        try:
            _exhaust(bytes(buf))
            outcomes["ok"] += 1
        except ImageError:
            outcomes["error"] += 1
    # both outcomes occur, so the loop really exercised the validation
    assert outcomes["ok"] > 20 and outcomes["error"] > 20, outcomes
