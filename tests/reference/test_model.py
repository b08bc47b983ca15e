"""Random key sets, listed through s3list and built into an image, against model.py.

Each example draws keys from a tiny alphabet (plus names around 255 bytes), sorts them by
bytes as S3 does, serves them as ListBucketResult pages of random sizes (encoding-type=url,
so control bytes travel) to ``s3list.list_bucket`` through an in-process fake bucket,
builds with ``build_from_columns``, then compares the model's tree with the image as the
Linux kernel shows it (loop mount, os.walk, os.lstat), with s3erofs.reader, and with
``fsck.erofs``; the reports are compared as multisets of (key, reason).

``S3EROFS_MODEL_EXAMPLES`` overrides the number of examples (default 500).
"""

import json
import os
import stat
import uuid
from collections import Counter

import model
import oracle
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from s3pages import render_page

from s3erofs import reader, s3list
from s3erofs.build import build_from_columns
from s3erofs.tree import REASONS, TreeOptions, escape_key
from s3erofs.write import ImageOptions

EXAMPLES = int(os.environ.get("S3EROFS_MODEL_EXAMPLES", "500"))

MODEL_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much, HealthCheck.large_base_example])

E_ACUTE = "é".encode()

# the alphabet: common bytes three times over, NUL and a byte that is never UTF-8 once
TOKENS = [b"a", b"b", b"-", b".", b"/", E_ACUTE, b"\x01"] * 3 + [b"\x00", b"\xff"]

# components around EROFS_NAME_LEN (255), ASCII and two-byte characters
LONG_NAMES = [b"x" * 254, b"x" * 255, b"x" * 256,
              E_ACUTE * 127, E_ACUTE * 127 + b"x", E_ACUTE * 128]

PREFIXES = [b"", b"", b"a/", b"a/b/", E_ACUTE + b"/"]

short_keys = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=12).map(b"".join)
# keys made of whole names, so that deeper trees, markers and clashes are common
path_keys = st.tuples(
    st.lists(st.sampled_from([b"a", b"b", b"a-", E_ACUTE, b"\x01b"]), min_size=1, max_size=4),
    st.sampled_from([b"", b"", b"/"])).map(lambda t: b"/".join(t[0]) + t[1])
long_keys = st.tuples(st.sampled_from([b"", b"a/", b"d/"]), st.sampled_from(LONG_NAMES),
                      st.sampled_from([b"", b"/", b"/b", b"/" + b"y" * 255])).map(b"".join)
sizes = st.one_of(st.sampled_from([0, 1, 4095, 4096, 2**32 - 1, 2**32, 2**32 + 1, 5 << 40]),
                  st.integers(0, 1 << 42))
mtimes = st.one_of(st.sampled_from([0, 1, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 4102444799]),
                   st.integers(0, 4102444799))
nsecs = st.one_of(st.just(0), st.integers(0, 999_999_999))

BUILD_TIMES = [0, 1_700_000_000, 2**32 + 7]
OWNERS = [(0, 0), (1000, 1000), (70000, 80000)]



# -- the fake bucket --------------------------------------------------------------------------

class FakeBucket:
    """Serves fixed pages to ``s3list.list_bucket`` (``get_bucket(params) -> bytes``).

    V2 pages are chained by tokens ``page-N``; V1 pages by their last key as the marker
    (with ``NextMarker`` when ``next_marker`` is set), as S3 does without a delimiter.
    """

    def __init__(self, pages, prefix: bytes, version: int, next_marker: bool = False):
        self.pages = pages
        self.prefix = prefix
        self.version = version
        self.next_marker = next_marker
        self.requests = []
        if version == 1:
            self.by_marker = {page[-1][0]: n + 1 for n, page in enumerate(pages[:-1])}

    def get_bucket(self, params) -> bytes:
        self.requests.append(params)
        query = dict(params)
        assert query["encoding-type"] == "url"
        assert _raw(query.get("prefix", b"")) == self.prefix
        if self.version == 2:
            assert query["list-type"] == "2"
            number = int(query.get("continuation-token", "page-0")[len("page-"):])
        else:
            number = self.by_marker[_raw(query["marker"])] if "marker" in query else 0

        page = self.pages[number]
        truncated = number + 1 < len(self.pages)
        token = f"page-{number + 1}" if truncated and self.version == 2 else None
        marker = page[-1][0] if truncated and self.next_marker and self.version == 1 else None
        return render_page(page, self.prefix, version=self.version, truncated=truncated,
                           token=token, next_marker=marker)


def _raw(value) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


# -- drawing a bucket -------------------------------------------------------------------------

def draw_keys(data, prefix: bytes) -> list[bytes]:
    """Unique keys, sorted by bytes: mostly under ``prefix``, a few from anywhere."""
    suffixes = data.draw(st.lists(short_keys, max_size=12), label="suffixes")
    suffixes += data.draw(st.lists(path_keys, max_size=20), label="path suffixes")
    suffixes += data.draw(st.lists(long_keys, max_size=3), label="long suffixes")
    keys = {prefix + suffix for suffix in suffixes}
    if prefix:
        if data.draw(st.booleans(), label="prefix marker"):
            keys.add(prefix)
        keys.update(data.draw(st.lists(short_keys, max_size=3), label="stray keys"))
    return sorted(keys)


def draw_many(data, prefix: bytes) -> list[tuple]:
    """Now and then a directory that needs several dirent blocks (metadata drawn once)."""
    many = data.draw(st.sampled_from([0, 0, 0, 0, 40, 200]), label="many")
    if not many:
        return []
    _key, size, mtime, nsec = draw_entry(data, b"")
    return [(prefix + b"many/%03d-" % n + b"m" * (n % 50), size + n, mtime + n, nsec)
            for n in range(many)]


def draw_entry(data, key: bytes) -> tuple:
    return (key, data.draw(sizes), data.draw(mtimes), data.draw(nsecs))


def split_pages(data, entries, *, version: int, repeats: bool) -> list[list]:
    """Entries cut into pages at random points; V2 may have empty pages and (``repeats``)
    pages that start with the previous page's last key again, with other metadata."""
    n = len(entries)
    cuts = data.draw(st.lists(st.integers(0, n), max_size=6), label="cuts")
    if version == 1:
        # a V1 page without Contents has no marker to go on with: S3 never sends one
        cuts = sorted({c for c in cuts if 0 < c < n})
    bounds = [0] + sorted(cuts) + [n]
    pages = [list(entries[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]

    if repeats:
        for number in range(1, len(pages)):
            previous = pages[number - 1]
            if previous and data.draw(st.booleans(), label=f"repeat before page {number}"):
                pages[number].insert(0, draw_entry(data, previous[-1][0]))
    return pages


# -- reading the image ------------------------------------------------------------------------

def describe(st_result) -> tuple:
    kind = "dir" if stat.S_ISDIR(st_result.st_mode) else \
        "file" if stat.S_ISREG(st_result.st_mode) else f"other {st_result.st_mode:o}"
    size = None if kind == "dir" else st_result.st_size
    mtime, nsec = divmod(st_result.st_mtime_ns, 10**9)
    return (kind, stat.S_IMODE(st_result.st_mode), size, mtime, nsec, st_result.st_nlink)


def kernel_view(mountpoint) -> tuple[dict, set]:
    """{relpath: model shape} and {(uid, gid)} of a mounted image; checks names on the way."""
    root = os.fsencode(mountpoint)
    tree = {}
    owners = set()
    for dirpath, dirnames, filenames in os.walk(root):
        names = dirnames + filenames
        # invariants: a name once per directory, and no '.' or '..' besides the real ones
        assert len(names) == len(set(names)), f"duplicate names in {dirpath!r}: {names}"
        assert not {b".", b".."} & set(names), f"{dirpath!r} lists '.' or '..' as entries"
        assert set(names) == set(os.listdir(dirpath))
        for path in [dirpath] + [os.path.join(dirpath, name) for name in names]:
            result = os.lstat(path)
            relpath = os.path.relpath(path, root) if path != root else b""
            tree[relpath] = describe(result)
            owners.add((result.st_uid, result.st_gid))
    return tree, owners


def reader_view(img) -> tuple[dict, set]:
    """The same as kernel_view, read by s3erofs.reader."""
    tree = {}
    owners = set()
    with reader.open(img) as image:
        for dirpath, dirnames, filenames in image.walk(b"/"):
            names = dirnames + filenames
            assert len(names) == len(set(names)), f"duplicate names in {dirpath!r}: {names}"
            for path in [dirpath] + [os.path.join(dirpath, name) for name in names]:
                st_result = image.stat(path)
                kind = "dir" if stat.S_ISDIR(st_result.mode) else \
                    "file" if stat.S_ISREG(st_result.mode) else f"other {st_result.mode:o}"
                tree[path.lstrip(b"/")] = (
                    kind, stat.S_IMODE(st_result.mode), None if kind == "dir" else st_result.size,
                    st_result.mtime, st_result.mtime_nsec, st_result.nlink)
                owners.add((st_result.uid, st_result.gid))
    return tree, owners


MOUNT_UNAVAILABLE = oracle.mount_unavailable_reason()


def image_view(img) -> tuple[dict, set]:
    """The kernel's view when this machine can mount, checked against the reader's."""
    tree, owners = reader_view(img)
    if MOUNT_UNAVAILABLE is None:
        with oracle.mounted(img) as mountpoint:
            kernel_tree, kernel_owners = kernel_view(mountpoint)
        assert kernel_tree == tree, "s3erofs.reader disagrees with the kernel:\n" + \
            oracle.diff_trees(tree, kernel_tree)
        assert kernel_owners == owners
    return tree, owners


# -- the check --------------------------------------------------------------------------------

def build(listing_pages, prefix, version, tmp, *, next_marker=False, build_time=1_700_000_000,
          owner=(0, 0), block_size=4096):
    """List the fake bucket with s3list and build; returns (listing, summary, image path)."""
    bucket = FakeBucket(listing_pages, prefix, version, next_marker)
    columns = s3list.list_bucket(bucket, prefix, version=version)
    assert len(bucket.requests) == len(listing_pages)

    img = tmp / "model.img"
    report = tmp / "report.jsonl"
    summary = build_from_columns(
        columns, img,
        tree_options=TreeOptions(prefix=prefix, uid=owner[0], gid=owner[1]),
        image_options=ImageOptions(block_size=block_size, build_time=build_time,
                                   uuid=uuid.UUID(int=0)),
        report_path=report)
    listed = [(columns.key(i), int(columns.size[i]), int(columns.mtime[i]),
               int(columns.nsec[i])) for i in range(len(columns))]
    return listed, summary, img, report


def check_example(data, tmp) -> None:
    prefix = data.draw(st.sampled_from(PREFIXES), label="prefix")
    version = data.draw(st.sampled_from([2, 2, 1]), label="version")
    build_time = data.draw(st.sampled_from(BUILD_TIMES), label="build time")
    block_size = data.draw(st.sampled_from([4096, 4096, 512, 1024]), label="block size")
    owner = data.draw(st.sampled_from(OWNERS), label="owner")
    entries = [draw_entry(data, key) for key in draw_keys(data, prefix)]
    entries = sorted(entries + draw_many(data, prefix))
    if version == 2 and data.draw(st.booleans(), label="shuffled"):
        # a misbehaving server may list out of order: only duplicates care about order
        entries = data.draw(st.permutations(entries), label="order")
    pages = split_pages(data, entries, version=version, repeats=version == 2)
    next_marker = version == 1 and data.draw(st.booleans(), label="NextMarker")

    want = check_listing(pages, prefix, tmp, version=version, next_marker=next_marker,
                         build_time=build_time, owner=owner, block_size=block_size)
    for reason in sorted({reason for _key, reason in want.reports}):
        event(reason)
    files = sum(1 for entry in want.tree.values() if entry[0] == "file")
    event(f"{files} files" if len(want.tree) > 1 else "only the root")


def check_listing(pages, prefix: bytes, tmp, *, version=2, next_marker=False,
                  build_time=1_700_000_000, owner=(0, 0), block_size=4096) -> model.Expected:
    """Serve ``pages`` [[(key, size, mtime, nsec)]], build, and check the image and reports
    against the model; returns the model's expectation."""
    listed, summary, img, report = build(pages, prefix, version, tmp, next_marker=next_marker,
                                         build_time=build_time, owner=owner,
                                         block_size=block_size)
    served = [entry for page in pages for entry in page]
    assert listed == served, "s3list did not return the served listing"
    want = model.expected(served, prefix, build_time)

    got_reports = Counter((r.key, r.reason) for r in summary.reports)
    assert got_reports == want.reports
    assert all(r.action == REASONS[r.reason][0] for r in summary.reports)
    lines = report.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        {"key": escape_key(r.key), "reason": r.reason, "action": r.action}
        for r in summary.reports]

    tree, owners = image_view(img)
    assert tree == want.tree, oracle.diff_trees(tree, want.tree)
    assert owners == {owner}
    check_inside_prefix(tree, served, prefix)
    oracle.fsck(img)
    return want


def check_inside_prefix(tree: dict, listing, prefix: bytes) -> None:
    """Invariant: every path in the image comes from a listed key under the prefix."""
    inside = [key[len(prefix):] for key, *_ in listing if key.startswith(prefix)]
    for path in tree:
        if path:
            assert any(rest == path or rest.startswith(path + b"/") for rest in inside), \
                f"{path!r} is in the image but no key under {prefix!r} names it"


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("model")


@MODEL_SETTINGS
@given(data=st.data())
def test_image_matches_model(data, tmp):
    check_example(data, tmp)


@settings(MODEL_SETTINGS, max_examples=max(1, EXAMPLES // 5))
@given(data=st.data())
def test_image_does_not_depend_on_page_split(data, tmp):
    """The same keys split into pages two ways (and listed V1 or V2): the same image bytes."""
    prefix = data.draw(st.sampled_from(PREFIXES), label="prefix")
    entries = [draw_entry(data, key) for key in draw_keys(data, prefix)]
    images = []
    reports = []
    for attempt in range(2):
        version = data.draw(st.sampled_from([1, 2]), label=f"version {attempt}")
        pages = split_pages(data, entries, version=version, repeats=False)
        _listed, summary, img, _report = build(pages, prefix, version, tmp)
        images.append(img.read_bytes())
        reports.append(summary.reports)
    assert images[0] == images[1]
    assert reports[0] == reports[1]
