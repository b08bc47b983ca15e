"""Key shapes of SEMANTICS.md, one test each, built with build_from_columns and read back.

Images are read with s3erofs.reader (and, where a name's exact bytes matter, by the kernel
through a loop mount). Every expected tree is written out by hand.
"""

import json
import logging
import os
import stat
import uuid

import pytest

from s3erofs import reader
from s3erofs.build import build_from_columns
from s3erofs.columns import KeyColumns
from s3erofs.errors import StrictKeyError
from s3erofs.tree import TreeOptions
from s3erofs.write import ImageOptions

BUILD_TIME = 1_700_000_000
JUNE = 1_685_613_600  # 2023-06-01T10:00:00Z
MAY = 1_684_000_000
ROOT = ("dir", 0o755, None, BUILD_TIME, 0)


def columns(entries) -> KeyColumns:
    """``[(key, size)]`` or ``[(key, size, mtime, nsec)]``; mtime defaults to MAY, nsec 7."""
    full = [e if len(e) == 4 else (e[0], e[1], MAY, 7) for e in entries]
    return KeyColumns.from_keys([e[0] for e in full], [e[1] for e in full],
                                [e[2] for e in full], [e[3] for e in full])


def build(tmp_path, entries, *, prefix=b"", strict=False, report=None, uid=0, gid=0,
          name="t.img"):
    img = tmp_path / name
    summary = build_from_columns(
        columns(entries), img, tree_options=TreeOptions(prefix=prefix, uid=uid, gid=gid),
        image_options=ImageOptions(build_time=BUILD_TIME, uuid=uuid.UUID(int=0)),
        strict=strict, report_path=report)
    return summary, img


def view(img) -> dict:
    """{path: (type, mode, size or None, mtime, nsec, nlink)}, paths relative, b"" the root."""
    tree = {}
    with reader.open(img) as image:
        for dirpath, dirnames, filenames in image.walk(b"/"):
            names = dirnames + filenames
            assert len(names) == len(set(names)), f"{dirpath!r} has a name twice: {names}"
            for path in [dirpath] + [os.path.join(dirpath, n) for n in names]:
                st = image.stat(path)
                kind = "dir" if stat.S_ISDIR(st.mode) else "file"
                tree[path.lstrip(b"/")] = (kind, stat.S_IMODE(st.mode),
                                           None if kind == "dir" else st.size,
                                           st.mtime, st.mtime_nsec, st.nlink)
    return tree


def implicit(nlink=2):
    return ("dir", 0o755, None, BUILD_TIME, 0, nlink)


def file(size, mtime=MAY, nsec=7):
    return ("file", 0o644, size, mtime, nsec, 1)


def reports(summary) -> list:
    return [(r.key, r.reason, r.action) for r in summary.reports]


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


SHADOWED = ("is an object shadowed by the directory of the same name (a prefix or a marker "
            "ending in '/'); the directory is kept (skipped)")


def test_object_beside_its_prefix_loses_to_the_directory(tmp_path, caplog, mountpoint):
    summary, img = build(tmp_path, [(b"a", 3), (b"a/b", 4)])

    assert view(img) == {b"": ROOT + (3,), b"a": implicit(), b"a/b": file(4)}
    assert reports(summary) == [(b"a", "shadowed-by-directory", "skipped")]
    assert warnings(caplog) == [f"key 'a' {SHADOWED}"]
    root = mountpoint(img)
    assert os.listdir(os.fsencode(root)) == [b"a"]
    assert os.listdir(os.path.join(os.fsencode(root), b"a")) == [b"b"]


def test_strict_fails_naming_the_shadowed_key_and_writes_nothing(tmp_path):
    with pytest.raises(StrictKeyError) as info:
        build(tmp_path, [(b"a", 3), (b"a/b", 4)], strict=True)

    assert str(info.value) == f"--strict: 1 key(s) cannot be represented exactly; first: " \
        f"key 'a' {SHADOWED.removesuffix(' (skipped)')}"
    assert info.value.exit_code == 4
    assert os.listdir(tmp_path) == []


def test_object_beside_a_marker_of_its_name_loses_to_the_directory(tmp_path):
    summary, img = build(tmp_path, [(b"a/b", 1), (b"a/b/", 0, JUNE, 5)])

    assert view(img) == {b"": ROOT + (3,), b"a": implicit(3),
                         b"a/b": ("dir", 0o755, None, JUNE, 5, 2)}
    assert reports(summary) == [(b"a/b", "shadowed-by-directory", "skipped")]


def test_markers_are_directories_with_their_own_mtime(tmp_path, caplog):
    summary, img = build(tmp_path, [
        (b"data/", 123, JUNE, 0), (b"docs/b/", 0, JUNE, 0), (b"photos/", 0, JUNE, 0),
        (b"photos/2024/", 0, JUNE, 0), (b"photos/2024/x.jpg", 5, JUNE, 250_000_000)])

    marker = ("dir", 0o755, None, JUNE, 0)
    assert view(img) == {
        b"": ROOT + (5,),
        b"data": marker + (2,),
        b"docs": implicit(3), b"docs/b": marker + (2,),
        b"photos": marker + (3,), b"photos/2024": marker + (2,),
        b"photos/2024/x.jpg": file(5, JUNE, 250_000_000),
    }
    assert reports(summary) == [(b"data/", "marker-has-data", "kept-as-directory")]
    assert warnings(caplog) == ["key 'data/' is a directory marker with 123 bytes of data; "
                                "the bytes are ignored (kept-as-directory)"]


def test_empty_components_are_skipped_never_merged(tmp_path):
    summary, img = build(tmp_path, [(b"/etc/passwd", 1), (b"a//b", 1), (b"a/b", 2),
                                    (b"etc/passwd", 2), (b"c//", 0)])

    assert view(img) == {b"": ROOT + (4,), b"a": implicit(), b"a/b": file(2),
                         b"etc": implicit(), b"etc/passwd": file(2)}
    assert reports(summary) == [(b"/etc/passwd", "empty-component", "skipped"),
                                (b"a//b", "empty-component", "skipped"),
                                (b"c//", "empty-component", "skipped")]


def test_dot_components_are_skipped_and_the_root_is_unchanged(tmp_path, caplog, mountpoint):
    keys = [b"..", b"a/../b", b"a/./c", b"../../escape", b"."]
    summary, img = build(tmp_path, [(k, 1, JUNE, 0) for k in keys])

    assert view(img) == {b"": ROOT + (2,)}
    assert sorted(reports(summary)) == sorted((k, "dot-component", "skipped") for k in keys)
    assert len(warnings(caplog)) == 5
    assert "key 'a/../b' has a '.' or '..' path component (skipped)" in warnings(caplog)
    root = mountpoint(img)
    st = os.lstat(root)
    assert (stat.S_IMODE(st.st_mode), st.st_mtime_ns, os.listdir(root)) == \
        (0o755, BUILD_TIME * 10**9, [])


def test_dotted_names_that_are_not_dot_or_dotdot_are_kept(tmp_path):
    summary, img = build(tmp_path, [(b".a", 1), (b"...", 2), (b"a..b/.c", 3)])

    assert view(img) == {b"": ROOT + (3,), b".a": file(1), b"...": file(2),
                         b"a..b": implicit(), b"a..b/.c": file(3)}
    assert summary.reports == []


def test_names_over_255_bytes_are_reported_never_truncated(tmp_path, mountpoint):
    e = "é".encode()
    summary, img = build(tmp_path, [(b"d/" + b"x" * 256, 1), (b"d/" + e * 128, 2),
                                    (b"d/" + b"x" * 255, 3), (b"d/ok", 4)])

    assert view(img) == {b"": ROOT + (3,), b"d": implicit(), b"d/" + b"x" * 255: file(3),
                         b"d/ok": file(4)}
    assert sorted(reports(summary)) == [(b"d/" + b"x" * 256, "name-too-long", "skipped"),
                                        (b"d/" + e * 128, "name-too-long", "skipped")]
    names = os.listdir(os.path.join(os.fsencode(mountpoint(img)), b"d"))
    assert sorted(map(len, names)) == [2, 255]


def test_control_bytes_and_invalid_utf8_are_kept_nul_is_not(tmp_path, caplog, mountpoint):
    summary, img = build(tmp_path, [(b"bad\x01name", 1), (b"caf\xe9", 2), (b"nul\x00x", 3),
                                    (b"good", 2)])

    assert view(img) == {b"": ROOT + (2,), b"bad\x01name": file(1), b"caf\xe9": file(2),
                         b"good": file(2)}
    assert reports(summary) == [(b"nul\x00x", "nul-byte", "skipped")]
    assert warnings(caplog) == [
        "key 'nul\\x00x' contains a NUL byte, which no file name can hold (skipped)"]
    names = sorted(os.listdir(os.fsencode(mountpoint(img))))
    assert names == [b"bad\x01name", b"caf\xe9", b"good"]
    assert len(names[0]) == 8


def test_a_key_listed_twice_keeps_the_last_listing(tmp_path):
    summary, img = build(tmp_path, [(b"a", 1, JUNE, 1), (b"m/", 0, JUNE, 2), (b"a", 2, MAY, 3),
                                     (b"m/", 9, MAY, 4)])

    assert view(img) == {b"": ROOT + (3,), b"a": file(2, MAY, 3),
                         b"m": ("dir", 0o755, None, MAY, 4, 2)}
    # the earlier listings are reported; the kept marker's 9 bytes are reported too
    assert reports(summary) == [(b"a", "duplicate-key", "skipped"),
                                (b"m/", "duplicate-key", "skipped"),
                                (b"m/", "marker-has-data", "kept-as-directory")]
    assert [r.detail for r in summary.reports][1:] == [
        "was listed more than once; the last listing is kept",
        "is a directory marker with 9 bytes of data; the bytes are ignored"]


def test_every_listing_of_a_shadowed_object_is_reported_as_shadowed(tmp_path):
    summary, img = build(tmp_path, [(b"a", 1), (b"a", 2), (b"a/b", 3)])

    assert view(img) == {b"": ROOT + (3,), b"a": implicit(), b"a/b": file(3)}
    assert reports(summary) == [(b"a", "shadowed-by-directory", "skipped")] * 2


def test_prefix_marker_is_silent_other_root_keys_are_reported(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="s3erofs")
    summary, img = build(tmp_path, [(b"p/", 5, JUNE, 0), (b"p//", 0, JUNE, 0),
                                    (b"p/x", 1), (b"q/y", 2)], prefix=b"p/")

    assert view(img) == {b"": ROOT + (2,), b"x": file(1)}
    assert reports(summary) == [(b"p//", "root-marker", "skipped"),
                                (b"q/y", "outside-prefix", "skipped")]
    assert warnings(caplog) == [
        "key 'p//' names the root directory; the root's metadata never comes from a key "
        "(skipped)",
        "key 'q/y' is outside the listed prefix (skipped)"]
    assert any("the root's own marker" in r.getMessage() for r in caplog.records
               if r.levelno == logging.DEBUG)


def test_a_slash_key_without_prefix_is_a_root_marker(tmp_path):
    summary, img = build(tmp_path, [(b"/", 0, JUNE, 0), (b"f", 1)])

    assert view(img) == {b"": ROOT + (2,), b"f": file(1)}
    assert reports(summary) == [(b"/", "root-marker", "skipped")]


def test_owner_sizes_over_4_gib_and_nanosecond_mtimes(tmp_path, mountpoint):
    summary, img = build(tmp_path, [(b"big", 5 << 40, 2**32 + 1, 999_999_999), (b"d/z", 0, 0, 0)],
                         uid=70000, gid=80000)

    assert view(img) == {b"": ROOT + (3,), b"big": file(5 << 40, 2**32 + 1, 999_999_999),
                         b"d": implicit(), b"d/z": file(0, 0, 0)}
    root = os.fsencode(mountpoint(img))
    for path in (root, root + b"/big", root + b"/d", root + b"/d/z"):
        st = os.lstat(path)
        assert (st.st_uid, st.st_gid) == (70000, 80000), path
    assert os.lstat(root + b"/big").st_size == 5 << 40
    assert os.lstat(root + b"/big").st_mtime_ns == (2**32 + 1) * 10**9 + 999_999_999


def test_report_file_and_summary_line(tmp_path):
    report = tmp_path / "report.jsonl"
    summary, _img = build(tmp_path, [(b"a", 1), (b"a/b", 2), (b"x/../y", 1), (b"nul\x00", 1),
                                     (b"k//", 0), (b"d\x01/", 7)], report=report)

    assert [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()] == [
        {"key": "a", "reason": "shadowed-by-directory", "action": "skipped"},
        {"key": "d\\x01/", "reason": "marker-has-data", "action": "kept-as-directory"},
        {"key": "k//", "reason": "empty-component", "action": "skipped"},
        {"key": "nul\\x00", "reason": "nul-byte", "action": "skipped"},
        {"key": "x/../y", "reason": "dot-component", "action": "skipped"},
    ]
    assert summary.line().endswith(
        "; 5 keys reported (1 dot-component, 1 empty-component, 1 marker-has-data, "
        "1 nul-byte, 1 shadowed-by-directory)")
    assert summary.line().startswith("1 objects, 3 directories, ")


def test_nlink_is_two_plus_subdirectories(tmp_path):
    _summary, img = build(tmp_path, [(b"a/b/c/f", 1), (b"a/d/", 0), (b"a/e", 1), (b"g/", 0)])

    tree = view(img)
    assert {path: entry[5] for path, entry in tree.items()} == {
        b"": 4, b"a": 4, b"a/b": 3, b"a/b/c": 2, b"a/b/c/f": 1, b"a/d": 2, b"a/e": 1, b"g": 2}


def test_an_empty_listing_gives_only_the_root(tmp_path):
    summary, img = build(tmp_path, [])

    assert view(img) == {b"": ROOT + (2,)}
    assert summary.reports == []
