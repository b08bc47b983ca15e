"""Key shapes and listing shapes through the command line, against a scripted S3 server.

The fault server plays ListBucketResult pages in order; the CLI lists, builds and writes the
image, which the kernel then mounts. These are the cases where the listing itself matters:
url-encoded control bytes, empty truncated pages, repeated tokens, pages without IsTruncated,
and the same keys split into pages differently.
"""

import json
import os
import stat
from pathlib import Path

import pytest
from conftest import BUILD_TIME
from faultserver import FaultServer, Reply
from s3pages import render_page

PAGES = Path(__file__).resolve().parent.parent / "_data" / "pages"
JUNE = "2023-06-01T10:00:00.000Z"
JUNE_NS = 1_685_613_600 * 10**9


def xml_reply(body: bytes) -> Reply:
    return Reply(200, {"Content-Type": "application/xml"}, body)


def data_page(name: str) -> Reply:
    return xml_reply((PAGES / name).read_bytes())


def page(entries, *, version=2, truncated=False, token=None, next_marker=None,
         prefix=b"") -> Reply:
    """A ListBucketResult with url-encoded keys; ``entries`` are (key bytes, size, time)."""
    return xml_reply(render_page(entries, prefix, version=version, truncated=truncated,
                                 token=token, next_marker=next_marker))


def build(s3erofs, server, img, *extra, url="s3://bucket"):
    return s3erofs("build", url, img, "--endpoint-url", server.url, "--url-style", "path",
                   "--no-sign-request", "--max-attempts", "1", "-T", BUILD_TIME, "-U", "clear",
                   "--no-progress", *extra)


def build_ok(s3erofs, server, img, *extra, url="s3://bucket"):
    result = build(s3erofs, server, img, *extra, url=url)
    assert result.returncode == 0, f"build exited {result.returncode}:\n{result.stderr}"
    return result


def tree(root) -> dict:
    """{relpath: (type, mode, size or None, mtime_ns, nlink)} as the kernel shows it."""
    root = os.fsencode(root)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        names = dirnames + filenames
        assert len(names) == len(set(names)), f"{dirpath!r} has a name twice: {names}"
        for path in [dirpath] + [os.path.join(dirpath, n) for n in names]:
            st = os.lstat(path)
            kind = "dir" if stat.S_ISDIR(st.st_mode) else "file"
            rel = os.path.relpath(path, root) if path != root else b""
            out[rel] = (kind, stat.S_IMODE(st.st_mode), None if kind == "dir" else st.st_size,
                        st.st_mtime_ns, st.st_nlink)
    return out


ROOT = ("dir", 0o755, None, BUILD_TIME * 10**9)
JAN_NS = 1_704_067_200 * 10**9  # 2024-01-01T00:00:00Z, the time in tests/_data/pages


def warning_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("s3erofs: WARNING")]


def test_control_byte_in_a_key_travels_url_encoded(s3erofs, tmp_path, mountpoint):
    img = tmp_path / "ctl.img"
    with FaultServer([data_page("v2_control_char.xml")]) as server:
        result = build_ok(s3erofs, server, img)
        assert "encoding-type=url" in server.requests[0].query

    assert warning_lines(result) == []
    assert tree(mountpoint(img)) == {b"": ROOT + (2,),
                                     b"bad\x01name": ("file", 0o644, 1, JAN_NS, 1),
                                     b"good": ("file", 0o644, 2, JAN_NS, 1)}
    assert len(b"bad\x01name") == 8


def test_v1_truncated_page_without_contents_repeating_the_marker(s3erofs, tmp_path, mountpoint):
    """Page 2 is empty and names the marker page 1 implied; page 3 ends the listing."""
    img = tmp_path / "v1.img"
    script = [page([(b"a", 1, JUNE)], version=1, truncated=True),
              page([], version=1, truncated=True, next_marker=b"a"),
              page([(b"b", 2, JUNE)], version=1)]
    with FaultServer(script) as server:
        result = build(s3erofs, server, img, "--list-version", "1")
        requests = len(server.requests)

    assert result.returncode == 0, result.stderr
    assert requests == 3
    assert tree(mountpoint(img)) == {b"": ROOT + (2,), b"a": ("file", 0o644, 1, JUNE_NS, 1),
                                     b"b": ("file", 0o644, 2, JUNE_NS, 1)}


def test_empty_bucket_gives_only_the_root(s3erofs, tmp_path, mountpoint):
    img = tmp_path / "empty.img"
    with FaultServer([data_page("v2_empty.xml")]) as server:
        result = build_ok(s3erofs, server, img)
        assert len(server.requests) == 1

    assert result.stdout.startswith(f"{img}: 0 objects, 1 directories, ")
    assert tree(mountpoint(img)) == {b"": ROOT + (2,)}


@pytest.mark.parametrize("version, name, what", [
    (2, "v2_same_token.xml",
     "continuation token '1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM='"),
    (1, "v1_same_marker.xml", "marker 'a'"),
])
def test_a_repeated_token_or_marker_stops_the_listing(s3erofs, tmp_path, version, name, what):
    img = tmp_path / "loop.img"
    with FaultServer(default=data_page(name)) as server:
        result = build(s3erofs, server, img, "--list-version", str(version))
        queries = [r.query for r in server.requests]

    assert result.returncode == 3, result.stderr
    assert f"server returned {what} twice" in result.stderr
    assert max(queries.count(q) for q in queries) <= 2, queries
    assert len(queries) <= 3, queries
    assert os.listdir(tmp_path) == []


def test_a_page_without_is_truncated_is_the_last(s3erofs, tmp_path, mountpoint):
    img = tmp_path / "last.img"
    with FaultServer(default=data_page("v2_no_is_truncated.xml")) as server:
        build_ok(s3erofs, server, img)
        assert len(server.requests) == 1

    assert tree(mountpoint(img)) == {b"": ROOT + (2,), b"only": ("file", 0o644, 1, JAN_NS, 1)}


SHADOW_PAGE = [(b"a", 3, JUNE), (b"a/b", 4, JUNE)]
SHADOW_WARNING = ("s3erofs: WARNING: key 'a' is an object shadowed by the directory of the "
                  "same name (a prefix or a marker ending in '/'); the directory is kept "
                  "(skipped)")


def test_object_beside_its_prefix_through_the_cli(s3erofs, tmp_path, mountpoint):
    img = tmp_path / "shadow.img"
    report = tmp_path / "report.jsonl"
    with FaultServer([page(SHADOW_PAGE)]) as server:
        result = build_ok(s3erofs, server, img, "--report", report)

    assert warning_lines(result) == [SHADOW_WARNING]
    assert result.stdout.startswith(f"{img}: 1 objects, 2 directories, ")
    assert result.stdout.rstrip().endswith("; 1 keys reported (1 shadowed-by-directory)")
    assert [json.loads(line) for line in report.read_text().splitlines()] == [
        {"key": "a", "reason": "shadowed-by-directory", "action": "skipped"}]
    assert tree(mountpoint(img)) == {b"": ROOT + (3,), b"a": ROOT + (2,),
                                     b"a/b": ("file", 0o644, 4, JUNE_NS, 1)}


def test_strict_fails_naming_the_key_and_writes_no_image(s3erofs, tmp_path):
    img = tmp_path / "out" / "strict.img"
    img.parent.mkdir()
    with FaultServer([page(SHADOW_PAGE)]) as server:
        result = build(s3erofs, server, img, "--strict")

    assert result.returncode == 4, result.stderr
    assert "first: key 'a' is an object shadowed by the directory" in result.stderr
    assert os.listdir(img.parent) == []


def test_markers_and_the_prefix_marker_through_the_cli(s3erofs, tmp_path, mountpoint):
    """s3://bucket/photos (no '/'): photos/ is the root's own marker, silently ignored."""
    img = tmp_path / "photos.img"
    entries = [(b"photos/", 0, JUNE), (b"photos/2024/", 0, JUNE),
               (b"photos/2024/x.jpg", 5, "2023-06-01T10:00:00.123Z"),
               (b"photos/data/", 123, JUNE), (b"photos/docs/b/", 0, JUNE)]
    with FaultServer([page(entries, prefix=b"photos/")]) as server:
        result = build_ok(s3erofs, server, img, url="s3://bucket/photos")
        assert "prefix=photos%2F" in server.requests[0].query

    assert warning_lines(result) == [
        "s3erofs: WARNING: key 'photos/data/' is a directory marker with 123 bytes of data; "
        "the bytes are ignored (kept-as-directory)"]
    marker = ("dir", 0o755, None, JUNE_NS)
    assert tree(mountpoint(img)) == {
        b"": ROOT + (5,), b"2024": marker + (2,),
        b"2024/x.jpg": ("file", 0o644, 5, JUNE_NS + 123_000_000, 1),
        b"data": marker + (2,), b"docs": ROOT + (3,), b"docs/b": marker + (2,)}


def test_keep_prefix_makes_the_prefix_marker_an_ordinary_directory(s3erofs, tmp_path,
                                                                   mountpoint):
    img = tmp_path / "keep.img"
    entries = [(b"photos/", 0, JUNE), (b"photos/x", 5, JUNE)]
    with FaultServer([page(entries, prefix=b"photos/")]) as server:
        result = build_ok(s3erofs, server, img, "--keep-prefix", url="s3://bucket/photos/")

    assert warning_lines(result) == []
    assert tree(mountpoint(img)) == {b"": ROOT + (3,),
                                     b"photos": ("dir", 0o755, None, JUNE_NS, 2),
                                     b"photos/x": ("file", 0o644, 5, JUNE_NS, 1)}


def test_dot_keys_leave_the_root_alone(s3erofs, tmp_path, mountpoint):
    img = tmp_path / "dots.img"
    keys = [b"..", b"../../escape", b".", b"a/../b", b"a/./c"]
    with FaultServer([page([(k, 1, JUNE) for k in keys])]) as server:
        result = build_ok(s3erofs, server, img)

    assert sorted(warning_lines(result)) == sorted(
        f"s3erofs: WARNING: key '{k.decode()}' has a '.' or '..' path component (skipped)"
        for k in keys)
    assert tree(mountpoint(img)) == {b"": ROOT + (2,)}


SPLIT_KEYS = sorted([b"a", b"a-b/x", b"a/y/", b"a/y/z", b"b\x01", b"c\xc3\xa9/d", b"c//e",
                     b"d/" + b"x" * 255, b"e/f/g/h", b"f", b"g/"] +
                    [b"n/%02d" % i for i in range(20)])
SPLIT_ENTRIES = [(k, i * 1000, f"2023-06-01T10:00:{i % 60:02d}.{i:03d}Z")
                 for i, k in enumerate(SPLIT_KEYS)]


def v2_pages(cuts):
    bounds = [0, *cuts, len(SPLIT_ENTRIES)]
    chunks = [SPLIT_ENTRIES[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    return [page(chunk, truncated=n + 1 < len(chunks),
                 token=f"t{n + 1}" if n + 1 < len(chunks) else None)
            for n, chunk in enumerate(chunks)]


def v1_pages(cuts):
    bounds = [0, *cuts, len(SPLIT_ENTRIES)]
    chunks = [SPLIT_ENTRIES[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    return [page(chunk, version=1, truncated=n + 1 < len(chunks))
            for n, chunk in enumerate(chunks)]


def test_page_splits_give_byte_identical_images(s3erofs, tmp_path):
    scripts = {"one page": (v2_pages([]), "2"),
               "v2 with an empty page": (v2_pages([1, 5, 5, 17, 30]), "2"),
               "v2 one key a page": (v2_pages(list(range(1, len(SPLIT_ENTRIES)))), "2"),
               "v1": (v1_pages([3, 4, 11, 12, 29]), "1")}
    images = {}
    for name, (script, version) in scripts.items():
        img = tmp_path / f"{name}.img"
        with FaultServer(script) as server:
            build_ok(s3erofs, server, img, "--list-version", version)
            assert len(server.requests) == len(script), name
        images[name] = img.read_bytes()

    assert all(image == images["one page"] for image in images.values()), \
        {name: len(image) for name, image in images.items()}
