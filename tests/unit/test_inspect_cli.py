"""``s3erofs ls`` and ``stat`` on small images, and verify.compare without a network.

Images are built from key columns with pinned times and UUID, so every printed value is known;
``stat`` is also checked against dump.erofs, an independent reader. The CLI runs in-process
through cli.main (exit codes and stderr as the user sees them).
"""

import json
import logging
import os
import re
import struct
import subprocess
import uuid

import crc32c
import pytest

from s3erofs import cli, inspect_cli, reader, verify
from s3erofs.build import build_from_columns
from s3erofs.columns import KeyColumns
from s3erofs.tree import TreeOptions
from s3erofs.write import ImageOptions

BUILD_TIME = 1_600_000_000  # 2020-09-13 12:26:40 UTC
T0 = 1_700_000_000  # 2023-11-14 22:13:20 UTC

KEYS = {
    "docs/": (0, T0 + 100, 123_000_000),
    "docs/readme.md": (12, T0 + 200, 5),
    "docs/sub/deep.bin": (5000, T0 + 300, 999_999_999),
    "top.txt": (0, T0 + 400, 0),
    "tab\there": (1, T0 + 500, 1),
    "café.txt": (1_234_567, T0 + 600, 600_000_000),
}


def columns_of(keys: dict) -> KeyColumns:
    names = list(keys)
    return KeyColumns.from_keys(names, [keys[k][0] for k in names],
                                [keys[k][1] for k in names], [keys[k][2] for k in names])


def build_image(path, keys: dict, prefix: bytes = b""):
    build_from_columns(columns_of(keys), path, tree_options=TreeOptions(prefix=prefix),
                       image_options=ImageOptions(build_time=BUILD_TIME, uuid=uuid.UUID(int=0)))
    return path


@pytest.fixture(autouse=True)
def _restore_logging():
    """cli.main installs its own stderr handler on the root logger; put pytest's back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return build_image(tmp_path_factory.mktemp("inspect") / "keys.img", KEYS)


@pytest.fixture(scope="module")
def symlink_image(tmp_path_factory):
    """mkfs.erofs 1.5 image with a symlink (s3erofs images hold none)."""
    root = tmp_path_factory.mktemp("symlink")
    src = root / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "file").write_bytes(b"hi\n")
    os.symlink("sub/file", src / "link")
    for path in (src / "link", src / "sub" / "file", src / "sub", src):
        os.utime(path, (1_500_000_000, 1_500_000_000), follow_symlinks=False)
    img = root / "sym.img"
    subprocess.run(["mkfs.erofs", "--quiet", "-T1500000000", "--all-root",
                    "-U01234567-89ab-cdef-0123-456789abcdef", str(img), str(src)],
                   check=True, capture_output=True)
    return img


def run(capsys, *args):
    """cli.main(args) -> (exit code, stdout lines, stderr text)."""
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


# ls

def test_ls_root_prints_names_in_disk_order_escaped(capsys, image):
    code, lines, err = run(capsys, "ls", image)
    assert (code, err) == (0, "")
    assert lines == ["café.txt", "docs", "tab\\there", "top.txt"]


def test_ls_long(capsys, image):
    code, lines, _ = run(capsys, "ls", "-l", image, "/")
    assert code == 0
    assert lines == [
        "-rw-r--r-- 1 0 0 1234567 2023-11-14 22:23:20.600000000 café.txt",
        "drwxr-xr-x 3 0 0      63 2023-11-14 22:15:00.123000000 docs",
        "-rw-r--r-- 1 0 0       1 2023-11-14 22:21:40.000000001 tab\\there",
        "-rw-r--r-- 1 0 0       0 2023-11-14 22:20:00.000000000 top.txt",
    ]


def test_ls_subdirectory_and_file(capsys, image):
    assert run(capsys, "ls", image, "/docs")[:2] == (0, ["readme.md", "sub"])
    assert run(capsys, "ls", image, "docs/sub")[:2] == (0, ["deep.bin"])
    code, lines, _ = run(capsys, "ls", "-l", image, "/docs/sub/deep.bin")
    assert (code, lines) == (0, ["-rw-r--r-- 1 0 0 5000 2023-11-14 22:18:20.999999999 "
                                 "/docs/sub/deep.bin"])


def test_ls_recursive_has_headers_like_ls(capsys, image):
    code, lines, _ = run(capsys, "ls", "-R", image)
    assert code == 0
    assert lines == ["/:", "café.txt", "docs", "tab\\there", "top.txt", "",
                     "/docs:", "readme.md", "sub", "",
                     "/docs/sub:", "deep.bin"]


def test_ls_recursive_long_implicit_directory_has_build_time(capsys, image):
    code, lines, _ = run(capsys, "ls", "-lR", image, "/docs")
    assert code == 0
    assert lines == [
        "/docs:",
        "-rw-r--r-- 1 0 0 12 2023-11-14 22:16:40.000000005 readme.md",
        "drwxr-xr-x 2 0 0 47 2020-09-13 12:26:40.000000000 sub",
        "",
        "/docs/sub:",
        "-rw-r--r-- 1 0 0 5000 2023-11-14 22:18:20.999999999 deep.bin",
    ]


def test_ls_long_shows_symlink_target(capsys, symlink_image):
    code, lines, _ = run(capsys, "ls", "-l", symlink_image)
    assert code == 0
    assert lines == [
        "lrwxrwxrwx 1 0 0  8 2017-07-14 02:40:00.000000000 link -> sub/file",
        "drwxr-xr-x 2 0 0 43 2017-07-14 02:40:00.000000000 sub",
    ]


def test_ls_escapes_non_printable_and_invalid_utf8(capsys, tmp_path):
    img = build_image(tmp_path / "odd.img", {b"bell\x07": (1, T0, 0), b"bad\xff": (2, T0, 0),
                                             "new\nline": (3, T0, 0)})
    code, lines, _ = run(capsys, "ls", img)
    assert (code, lines) == (0, ["bad\\xff", "bell\\x07", "new\\nline"])


# stat

def test_stat_file_lines(capsys, image):
    with reader.open(image) as img:
        st = img.stat("/docs/sub/deep.bin")
    code, lines, err = run(capsys, "stat", image, "/docs/sub/deep.bin")
    assert (code, err) == (0, "")
    assert lines == [
        "path: /docs/sub/deep.bin",
        "type: regular file",
        "mode: 0100644 (-rw-r--r--)",
        f"nid: {st.nid}",
        f"ino: {st.ino}",
        "nlink: 1",
        "uid: 0",
        "gid: 0",
        "size: 5000",
        "mtime: 2023-11-14T22:18:20.999999999Z",
        "rdev: 0,0",
        "layout: 4 (chunk-based)",
        "inode size: 64",
    ]


def test_stat_root_json(capsys, image):
    with reader.open(image) as img:
        root_nid = img.superblock.root_nid
    code, lines, _ = run(capsys, "stat", "--json", image, "/")
    assert code == 0 and len(lines) == 1
    assert json.loads(lines[0]) == {
        "path": "/", "type": "directory", "mode": 0o40755, "mode_octal": "040755",
        "mode_string": "drwxr-xr-x", "nid": root_nid, "ino": 1, "nlink": 3, "uid": 0, "gid": 0,
        "size": 103, "mtime": BUILD_TIME, "mtime_nsec": 0,
        "mtime_iso": "2020-09-13T12:26:40.000000000Z", "rdev_major": 0, "rdev_minor": 0,
        "layout": 2, "layout_name": "flat-inline", "inode_size": 32,
    }


def test_stat_symlink_has_target(capsys, symlink_image):
    code, lines, _ = run(capsys, "stat", symlink_image, "/link")
    assert code == 0
    assert lines[1:3] == ["type: symbolic link", "mode: 0120777 (lrwxrwxrwx)"]
    assert lines[8] == "size: 8"
    assert lines[-1] == "target: sub/file"


def _dump_erofs(img, path) -> dict:
    text = subprocess.run(["dump.erofs", f"--path={path}", str(img)], check=True,
                          capture_output=True, text=True, env={**os.environ, "TZ": "UTC"}).stdout
    fields = {
        "size": r"Size: (\d+)", "nid": r"NID: (\d+)", "nlink": r"Links: (\d+)",
        "layout": r"Layout: (\d+)", "inode_size": r"Inode size: (\d+)",
        "uid": r"Uid: (\d+)", "gid": r"Gid: (\d+)",
    }
    found = {name: int(re.search(rx, text).group(1)) for name, rx in fields.items()}
    found["mtime"] = re.search(r"Timestamp: (\S+ \S+)", text).group(1)
    return found


@pytest.mark.parametrize("path", ["/", "/docs", "/docs/readme.md", "/docs/sub",
                                  "/docs/sub/deep.bin", "/top.txt", "/café.txt"])
def test_stat_json_agrees_with_dump_erofs(capsys, image, path):
    code, lines, _ = run(capsys, "stat", "--json", image, path)
    assert code == 0
    ours = json.loads(lines[0])
    dumped = _dump_erofs(image, path)
    assert {name: ours[name] for name in dumped if name != "mtime"} == \
        {name: value for name, value in dumped.items() if name != "mtime"}
    assert ours["mtime_iso"] == dumped["mtime"].replace(" ", "T") + "Z"


# errors

@pytest.mark.parametrize("command", ["ls", "stat"])
def test_missing_path_is_a_usage_error_naming_it(capsys, image, command):
    code, lines, err = run(capsys, command, image, "/docs/nope.txt")
    assert (code, lines) == (2, [])
    assert err == f"s3erofs: ERROR: /docs/nope.txt: no such file or directory in image {image}\n"


def test_path_through_a_file_is_a_usage_error(capsys, image):
    code, _, err = run(capsys, "ls", image, "/top.txt/x")
    assert code == 2
    assert err == ("s3erofs: ERROR: /top.txt/x: a path component is not a directory in image "
                   f"{image}\n")


def test_missing_image_file_is_an_image_error(capsys, tmp_path):
    code, _, err = run(capsys, "ls", tmp_path / "none.img")
    assert code == 5
    assert f"No such file or directory: '{tmp_path / 'none.img'}'" in err


def _refresh_checksum(buf: bytearray, block_size: int = 4096) -> None:
    # erofs-format.md 1.2: ~crc32c over 1024..end of block 0 with the field zeroed
    area = bytearray(buf[1024:block_size])
    area[4:8] = bytes(4)
    struct.pack_into("<I", buf, 1028, ~crc32c.crc32c(bytes(area)) & 0xFFFFFFFF)


def test_corrupt_inode_exits_5_naming_nid_and_offset(capsys, image, tmp_path):
    with reader.open(image) as img:
        nid = img.lookup("/top.txt")
        iloc = img.superblock.meta_blkaddr * img.superblock.block_size + nid * 32
    buf = bytearray(image.read_bytes())
    struct.pack_into("<H", buf, iloc, 0xFFFF)  # i_format with unknown bits
    _refresh_checksum(buf)
    bad = tmp_path / "bad.img"
    bad.write_bytes(buf)

    assert run(capsys, "ls", bad)[:2] == (0, ["café.txt", "docs", "tab\\there", "top.txt"])
    for args in (("ls", "-l", bad), ("stat", bad, "/top.txt")):
        code, lines, err = run(capsys, *args)
        assert (code, lines) == (5, [])
        assert err == (f"s3erofs: ERROR: unsupported i_format 0xffff at nid {nid} "
                       f"(offset {iloc})\n")


def test_bad_superblock_exits_5(capsys, image, tmp_path):
    bad = tmp_path / "bad.img"
    bad.write_bytes(image.read_bytes()[:1024] + b"\0" * 3072)
    code, _, err = run(capsys, "stat", bad, "/")
    assert code == 5
    assert err == "s3erofs: ERROR: bad magic 0x00000000 at offset 1024 (0xe0f5e1e2 expected)\n"


# verify.compare: the comparison without S3

def _compare(image_path, keys: dict, prefix: bytes = b"") -> verify.VerifyResult:
    with reader.open(image_path) as img:
        return verify.compare(img, columns_of(keys), prefix)


def test_compare_same_keys_match(image):
    result = _compare(image, KEYS)
    assert (result.missing, result.extra, result.changed) == ([], [], [])
    assert result.checked == 6 and result.ok
    assert inspect_cli.summary_line(result) == "6 keys checked: 0 missing, 0 extra, 0 changed"


def test_compare_reports_each_kind_of_difference(image):
    keys = dict(KEYS)
    del keys["top.txt"]  # in the image only
    keys["new.txt"] = (7, T0, 0)  # in the bucket only
    keys["docs/readme.md"] = (13, T0 + 200, 5)  # size
    keys["docs/sub/deep.bin"] = (4999, T0 + 301, 0)  # size and mtime
    keys["café.txt"] = (1_234_567, T0 + 600, 600_000_001)  # one nanosecond
    keys["docs/"] = (0, T0 + 101, 123_000_000)  # marker mtime
    keys["docs/sub/"] = (0, T0, 0)  # marker on a directory the image made implicitly
    result = _compare(image, keys)

    assert result.missing == [b"docs/sub/", b"new.txt"]
    assert result.extra == [b"/top.txt"]
    assert result.changed == [
        ("café.txt".encode(), "mtime", (T0 + 600) * 10**9 + 600_000_000,
         (T0 + 600) * 10**9 + 600_000_001),
        (b"docs/", "mtime", (T0 + 100) * 10**9 + 123_000_000, (T0 + 101) * 10**9 + 123_000_000),
        (b"docs/readme.md", "size", 12, 13),
        (b"docs/sub/deep.bin", "size", 5000, 4999),
        (b"docs/sub/deep.bin", "mtime", (T0 + 300) * 10**9 + 999_999_999, (T0 + 301) * 10**9),
    ]
    assert result.checked == 7 and not result.ok
    assert inspect_cli.difference_lines(result) == [
        "missing: docs/sub/",
        "missing: new.txt",
        "extra: /top.txt",
        "changed: café.txt mtime 2023-11-14T22:23:20.600000000Z -> "
        "2023-11-14T22:23:20.600000001Z",
        "changed: docs/ mtime 2023-11-14T22:15:00.123000000Z -> 2023-11-14T22:15:01.123000000Z",
        "changed: docs/readme.md size 12 -> 13",
        "changed: docs/sub/deep.bin size 5000 -> 4999, mtime 2023-11-14T22:18:20.999999999Z "
        "-> 2023-11-14T22:18:21.000000000Z",
    ]
    assert inspect_cli.summary_line(result) == "7 keys checked: 2 missing, 1 extra, 4 changed"


def test_compare_deleted_marker_and_type_flips(image):
    keys = dict(KEYS)
    del keys["docs/"]  # docs stays as an implicit directory: its marker's mtime is extra
    del keys["docs/sub/deep.bin"]
    keys["docs/sub"] = (5, T0, 0)  # a directory became a file
    keys["top.txt/inner"] = (1, T0, 0)  # a file became a directory
    del keys["top.txt"]
    result = _compare(image, keys)

    assert result.missing == [b"docs/sub", b"top.txt/inner"]
    assert result.extra == [b"/docs/", b"/docs/sub/deep.bin", b"/top.txt"]
    assert result.changed == []


def test_compare_with_prefix_shows_full_keys(tmp_path):
    img = build_image(tmp_path / "p.img", {"p/a": (1, T0, 0), "p/d/": (0, T0, 0)}, b"p/")
    keys = {"p/a": (2, T0, 0), "p/d/": (0, T0, 0), "p/b": (1, T0, 0), "p//skipped": (1, T0, 0)}
    result = _compare(img, keys, b"p/")
    assert result.missing == [b"p/b"]
    assert result.changed == [(b"p/a", "size", 1, 2)]
    assert result.extra == []
    assert (result.checked, result.reported) == (3, 1)
