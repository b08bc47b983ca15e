"""ImageBuilder and the public API: random trees written, checked by fsck.erofs and read back.

The model is what the test added; the image is judged by erofs-utils (``fsck.erofs
--extract`` reads every file's data) and read back with s3erofs.reader. One example is
also mounted, so the kernel agrees with the reader on every field.
"""

import io
import os
import stat
import subprocess
import sys
import uuid as uuidlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import fsck_extract, mounted

import s3erofs
from s3erofs import ImageBuilder, TreeError

BUILD_TIME = 1_700_000_000
UUID = uuidlib.UUID("12345678-1234-5678-9abc-def012345678")
GIB = 1 << 30
REPO = Path(__file__).resolve().parents[2]

# ---- model -------------------------------------------------------------------------------


class Model:
    """What was added: ``entries[path] = dict(kind, perm, uid, gid, mtime, nsec, ...)``."""

    def __init__(self, root=None):
        self.entries = {}
        self.links = {}  # path -> canonical path of its inode
        self.root = root or {"kind": "dir", "perm": 0o755, "uid": 0, "gid": 0,
                             "mtime": BUILD_TIME, "nsec": 0}

    def implicit_parents(self, path: bytes) -> None:
        parts = path.split(b"/")
        for depth in range(1, len(parts)):
            parent = b"/".join(parts[:depth])
            self.entries.setdefault(parent, {"kind": "dir", "perm": 0o755, "uid": 0, "gid": 0,
                                             "mtime": BUILD_TIME, "nsec": 0, "implicit": True})

    def add(self, path: bytes, **entry) -> None:
        self.implicit_parents(path)
        self.entries[path] = entry
        self.links[path] = path

    def expected(self, path: bytes) -> dict:
        if not path:
            return self.root
        return self.entries[self.links.get(path, path)]

    def nlink(self, path: bytes) -> int:
        if path and self.entries[path]["kind"] != "dir":
            canonical = self.links[path]
            return sum(1 for target in self.links.values() if target == canonical)
        prefix = path + b"/" if path else b""
        return 2 + sum(1 for p, e in self.entries.items()
                       if e["kind"] == "dir" and p.startswith(prefix)
                       and b"/" not in p[len(prefix):])


IFMT = {"dir": stat.S_IFDIR, "data": stat.S_IFREG, "meta": stat.S_IFREG,
        "symlink": stat.S_IFLNK, "char": stat.S_IFCHR, "block": stat.S_IFBLK,
        "fifo": stat.S_IFIFO, "socket": stat.S_IFSOCK}


def check_image(img, model: Model) -> None:
    """fsck.erofs accepts ``img`` and the reader sees exactly ``model``."""
    fsck_extract(img)
    with s3erofs.open(img) as image:
        seen = {b""}
        for dirpath, dirnames, filenames in image.walk("/"):
            for name in dirnames + filenames:
                seen.add(os.path.join(dirpath, name)[1:])
        assert seen == {b""} | set(model.entries), "paths differ"

        nids = {}
        for path in sorted(seen):
            check_entry(image, path, model)
            canonical = model.links.get(path, path)
            nids.setdefault(canonical, set()).add(image.stat(b"/" + path).nid)
        assert all(len(found) == 1 for found in nids.values()), f"hard links split: {nids}"


def check_entry(image, path: bytes, model: Model) -> None:
    where = b"/" + path
    st_ = image.stat(where)
    want = model.expected(path)
    got = (stat.S_IFMT(st_.mode), stat.S_IMODE(st_.mode), st_.uid, st_.gid, st_.mtime,
           st_.mtime_nsec, st_.nlink)
    assert got == (IFMT[want["kind"]], want["perm"], want["uid"], want["gid"], want["mtime"],
                   want["nsec"], model.nlink(path)), f"{path!r}: {got} != {want}"

    kind = want["kind"]
    if kind == "data":
        assert st_.size == len(want["data"])
        assert image.read(where) == want["data"], f"{path!r}: contents differ"
    elif kind == "meta":
        assert st_.size == want["size"]
        assert image.read(where, 0, 8192) == bytes(min(8192, want["size"]))
        assert image.read(where, max(0, want["size"] - 100)) == bytes(min(100, want["size"]))
    elif kind == "symlink":
        assert image.readlink(where) == want["target"]
    elif kind in ("char", "block"):
        assert (os.major(st_.rdev), os.minor(st_.rdev)) == (want["major"], want["minor"])


# ---- random trees -------------------------------------------------------------------------

names = st.one_of(
    st.text("ab-é.", min_size=1, max_size=3).map(str.encode).filter(lambda n: n not in
                                                                     (b".", b"..")),
    st.sampled_from([b"bad\xffname", b"x" * 255, "日本".encode()]),
)
metas = st.fixed_dictionaries({
    "perm": st.integers(0, 0o7777),
    "uid": st.sampled_from([0, 1, 1000, 65535, 65536, 70000, 2**32 - 1]),
    "gid": st.sampled_from([0, 5, 65535, 65536, 2**32 - 1]),
    "mtime": st.one_of(st.just(BUILD_TIME), st.integers(0, 2**34)),
    "nsec": st.one_of(st.just(0), st.integers(0, 999_999_999)),
})
kinds = st.sampled_from(["dir", "dir", "data", "meta", "symlink", "hardlink", "char", "block",
                         "fifo", "socket", "upgrade"])
# over 4 GiB needs the extended inode; fsck.erofs 1.9 --extract reads holes at ~40 GiB/s
meta_sizes = st.sampled_from([0, 1, 4095, 4096, 4097, 4 * GIB + 1])


@st.composite
def builds(draw):
    """A list of (method name, args, kwargs) and the model of the tree they make."""
    model = Model()
    calls = []
    for _ in range(draw(st.integers(1, 30))):
        dirs = [b""] + [p for p, e in model.entries.items() if e["kind"] == "dir"]
        parent = draw(st.sampled_from(dirs))
        if draw(st.booleans()):  # sometimes below a directory nobody added
            parent = (parent + b"/" if parent else b"") + draw(st.sampled_from([b"na", b"nb"]))
        path = (parent + b"/" if parent else b"") + draw(names)
        ancestors = [path[:i] for i in range(len(path)) if path[i:i + 1] == b"/"]
        if path in model.entries or any(model.entries[a]["kind"] != "dir"
                                        for a in ancestors if a in model.entries):
            continue
        kind = draw(kinds)
        meta = draw(metas)
        kw = {"mode": meta["perm"], "uid": meta["uid"], "gid": meta["gid"],
              "mtime": meta["mtime"], "mtime_nsec": meta["nsec"]}
        shown = path.decode("utf-8", "surrogateescape") if draw(st.booleans()) else path
        if kind == "upgrade":
            implicit = [p for p, e in model.entries.items() if e.get("implicit")]
            if not implicit:
                continue
            target = draw(st.sampled_from(implicit))
            calls.append(("add_directory", (target,), kw))
            model.entries[target] = {"kind": "dir", **meta}
        elif kind == "dir":
            calls.append(("add_directory", (b"/" + path,), kw))
            model.add(path, kind="dir", **meta)
        elif kind == "data":
            data = draw(st.binary(max_size=9000))
            calls.append(("add_file", (shown,), dict(kw, data=data)))
            model.add(path, kind="data", data=data, **meta)
        elif kind == "meta":
            size = draw(meta_sizes)
            calls.append(("add_file", (shown,), dict(kw, size=size)))
            model.add(path, kind="meta", size=size, **meta)
        elif kind == "symlink":
            target = draw(st.sampled_from([b"/", b"../x", b"t" * 200, b"u" * 4095]))
            calls.append(("add_symlink", (shown, target), kw))
            model.add(path, kind="symlink", target=target, **meta)
        elif kind == "hardlink":
            others = [p for p, e in model.entries.items() if e["kind"] != "dir"]
            if not others:
                continue
            existing = draw(st.sampled_from(others))
            calls.append(("add_hardlink", (shown, existing), {}))
            model.implicit_parents(path)
            model.entries[path] = model.entries[model.links[existing]]
            model.links[path] = model.links[existing]
        elif kind in ("char", "block"):
            major, minor = draw(st.sampled_from([(1, 3), (8, 0), (4095, 0xFFFFF), (0, 256)]))
            calls.append(("add_device", (shown, kind, major, minor), kw))
            model.add(path, kind=kind, major=major, minor=minor, **meta)
        else:
            calls.append((f"add_{kind}", (shown,), kw))
            model.add(path, kind=kind, **meta)
    return calls, model


def replay(calls, **options) -> ImageBuilder:
    builder = ImageBuilder(build_time=BUILD_TIME, uuid=UUID, **options)
    for method, args, kwargs in calls:
        getattr(builder, method)(*args, **kwargs)
    return builder


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(builds())
def test_random_trees_read_back_exactly(tmp_path_factory, case):
    calls, model = case
    img = tmp_path_factory.mktemp("random") / "t.img"
    stats = replay(calls).write(img)
    assert stats.bytes == os.path.getsize(img)
    check_image(img, model)


def test_every_kind_mounted_by_the_kernel(tmp_path):
    """The kernel agrees with the model on every field, hard links and devices included."""
    b = ImageBuilder(build_time=BUILD_TIME, uuid=UUID, root_mode=0o750, root_uid=7,
                     root_gid=8, root_mtime=1_600_000_000, root_mtime_nsec=5)
    b.add_directory("etc", mode=0o700, uid=70000, gid=80000, mtime=1_234_567_890,
                    mtime_nsec=123_456_789)
    b.add_file("etc/hostname", data=b"box\n" * 2000, mode=0o4755, uid=65536, mtime=1,
               mtime_nsec=999_999_999)
    b.add_file("var/lib/huge.img", size=5 * GIB + 3, mode=0o600, mtime=2)
    b.add_symlink("etc/localtime", b"/usr/share/zoneinfo/" + b"Z" * 3000)
    b.add_device("dev/null", "char", 1, 3, mode=0o666)
    b.add_device("dev/big", "block", 4095, 0xFFFFF)
    b.add_fifo("run/fifo", mode=0o620)
    b.add_socket("run/sock", mode=0o777)
    b.add_hardlink("etc/hostname2", "etc/hostname")
    b.add_hardlink("run/null2", "dev/null")
    img = tmp_path / "kinds.img"
    b.write(img)
    fsck_extract(img)

    with mounted(img) as mnt:
        def lst(path):
            s = os.lstat(os.path.join(mnt, path))
            return (oct(s.st_mode), s.st_uid, s.st_gid, s.st_size, s.st_nlink, s.st_mtime_ns)

        assert lst("") == (oct(0o40750), 7, 8, lst("")[3], 6, 1_600_000_000_000_000_005)
        assert lst("etc") == (oct(0o40700), 70000, 80000, lst("etc")[3], 2,
                              1_234_567_890_123_456_789)
        assert lst("etc/hostname") == (oct(0o104755), 65536, 0, 8000, 2, 1_999_999_999)
        assert lst("var") == (oct(0o40755), 0, 0, lst("var")[3], 3, BUILD_TIME * 10**9)
        assert lst("var/lib/huge.img") == (oct(0o100600), 0, 0, 5 * GIB + 3, 1, 2 * 10**9)
        assert lst("etc/localtime")[0::3] == (oct(0o120777), 3020)
        assert lst("run/fifo")[0] == oct(0o10620)
        assert lst("run/sock")[0] == oct(0o140777)
        assert lst("run/null2")[4] == 2
        with open(os.path.join(mnt, "etc/hostname2"), "rb") as f:
            assert f.read() == b"box\n" * 2000
        with open(os.path.join(mnt, "var/lib/huge.img"), "rb") as f:
            f.seek(5 * GIB - 10)
            assert f.read() == bytes(13)
        assert os.readlink(os.path.join(mnt, "etc/localtime")).encode() == \
            b"/usr/share/zoneinfo/" + b"Z" * 3000
        for name, major, minor, is_char in (("dev/null", 1, 3, True),
                                            ("dev/big", 4095, 0xFFFFF, False)):
            s = os.lstat(os.path.join(mnt, name))
            assert (os.major(s.st_rdev), os.minor(s.st_rdev)) == (major, minor)
            assert stat.S_ISCHR(s.st_mode) == is_char
        assert os.lstat(os.path.join(mnt, "etc/hostname")).st_ino == \
            os.lstat(os.path.join(mnt, "etc/hostname2")).st_ino


def test_regression_inode_ending_at_the_image_end(tmp_path):
    """Found by the random test: 60 fifos (or 60 empty objects of a bucket) fill block 0 so
    the last inode ends at byte 4096, the end of the image. fsck.erofs 1.5 reads the
    12-byte xattr header after every inode and fails on the short read ("Failed to read
    data from device [4096, 12]"); mkfs.erofs images never end right after an inode."""
    b = ImageBuilder(build_time=0, uuid=UUID)
    for i in range(60):
        b.add_fifo(f"f{i:03d}")
    img = tmp_path / "fifos.img"
    b.write(img)
    fsck_extract(img)


# ---- add_columns --------------------------------------------------------------------------


def test_add_columns_with_explicit_entries_and_a_link(tmp_path):
    n = 20_000
    paths = [f"d{i % 7}/e{i % 13}/f{i:05d}".encode() for i in range(n)]
    arena = b"".join(paths)
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in paths])])
    size = (np.arange(n, dtype=np.int64) * 977) % 100_000
    size[-1] = 6 * GIB
    mtime = np.arange(n, dtype=np.int64) + 1_000_000
    nsec = (np.arange(n, dtype=np.int64) * 7919) % 1_000_000_000
    mode = np.full(n, 0o640, np.uint32)
    uid = np.arange(n, dtype=np.uint32) + 65530

    b = ImageBuilder(build_time=BUILD_TIME, uuid=UUID)
    b.add_directory("d3", mode=0o711, uid=9, mtime=77, mtime_nsec=88)
    b.add_file("d3/readme", data=b"hello")
    b.add_columns(arena, offsets, size, mtime, nsec=nsec, mode=mode, uid=uid)
    b.add_hardlink("link", paths[-1])
    assert len(b) == 2 + n + 1
    img = tmp_path / "cols.img"
    b.write(img)
    fsck_extract(img)

    with s3erofs.open(img) as image:
        for i in (0, 1, 4242, n - 1):
            s = image.stat(b"/" + paths[i])
            assert (s.mode, s.uid, s.gid, s.size, s.mtime, s.mtime_nsec) == \
                (0o100640, 65530 + i, 0, int(size[i]), 1_000_000 + i, int(nsec[i]))
        assert image.stat("/link").nid == image.stat(b"/" + paths[-1]).nid
        assert image.stat("/link").nlink == 2
        d3 = image.stat("/d3")
        assert (d3.mode, d3.uid, d3.mtime, d3.mtime_nsec) == (0o40711, 9, 77, 88)
        d0 = image.stat("/d0")
        assert (d0.mode, d0.uid, d0.mtime, d0.mtime_nsec) == (0o40755, 0, BUILD_TIME, 0)
        assert image.read("/d3/readme") == b"hello"
        count = sum(len(files) for _, _, files in image.walk("/"))
        assert count == n + 2


def test_add_columns_defaults_and_offsets_not_from_zero(tmp_path):
    b = ImageBuilder(build_time=BUILD_TIME, uuid=UUID)
    b.add_columns(np.frombuffer(b"xxa/bc", np.uint8), np.array([2, 5, 6]), [3, 4], [5, 6])
    img = tmp_path / "d.img"
    b.write(img)
    with s3erofs.open(img) as image:
        assert sorted(image.listdir("/")) == [b"a", b"c"]
        s = image.stat("/a/b")
        assert (s.mode, s.uid, s.gid, s.size, s.mtime, s.mtime_nsec) == (0o100644, 0, 0, 3, 5, 0)


# ---- targets ------------------------------------------------------------------------------


def test_file_object_target_matches_path_target(tmp_path):
    b = ImageBuilder(build_time=BUILD_TIME, uuid=UUID, volume_name="vol")
    b.add_file("a/b", data=b"x" * 5000)
    b.add_file("a/c", size=3 * GIB)
    img = tmp_path / "p.img"
    stats = b.write(img)
    buf = io.BytesIO()
    assert b.write(buf).bytes == stats.bytes
    assert buf.getvalue() == img.read_bytes()
    buf.seek(0)
    with s3erofs.open(buf) as image:
        assert image.read("/a/b") == b"x" * 5000
        assert image.stat("/a/c").size == 3 * GIB


def test_source_file_is_copied_at_write_time(tmp_path):
    src = tmp_path / "src.bin"
    data = np.random.default_rng(5).integers(0, 256, 3 * 4096 + 17, np.uint8).tobytes()
    src.write_bytes(data)
    b = ImageBuilder(build_time=BUILD_TIME, uuid=UUID)
    b.add_file("copy", source=src)
    img = tmp_path / "s.img"
    b.write(img)
    fsck_extract(img)
    with s3erofs.open(img) as image:
        assert image.read("/copy") == data

    src.write_bytes(data + b"!")
    with pytest.raises(s3erofs.ImageError, match="grew while being read"):
        b.write(tmp_path / "s2.img")
    assert not (tmp_path / "s2.img").exists()


def test_root_only_image(tmp_path):
    img = tmp_path / "empty.img"
    ImageBuilder(build_time=5, uuid=UUID, root_mode=0o1777).write(img)
    fsck_extract(img)
    with s3erofs.open(img) as image:
        s = image.stat("/")
        assert (s.mode, s.mtime, s.nlink, image.listdir("/")) == (0o41777, 5, 2, [])


def test_build_from_directory_wrapper(tmp_path):
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "sub" / "f").write_bytes(b"data")
    os.utime(tmp_path / "src" / "sub" / "f", ns=(0, 1_500_000_000_123_456_789))
    summary = s3erofs.build_from_directory(tmp_path / "src", tmp_path / "d.img",
                                           build_time=0, uuid=UUID, uid=4, gid=5)
    assert (summary.files, summary.directories) == (1, 2)
    with s3erofs.open(tmp_path / "d.img") as image:
        s = image.stat("/sub/f")
        assert (s.uid, s.gid, s.mtime_ns) == (4, 5, 1_500_000_000_123_456_789)
        assert image.read("/sub/f") == b"data"


def test_build_from_bucket_wrapper(moto, tmp_path):
    """The keyword API reaches a real (moto) endpoint with explicit keys."""
    import motoserver
    from oracle import mtime_ns

    client = moto.client("s3")
    motoserver.seed_bucket(client, "apibucket", {"p/a.txt": b"abc", "p/d/b.bin": b"x" * 5000,
                                                 "other": b""})
    truth = {key: (size, mtime_ns(when))
             for key, size, when in motoserver.list_bucket(client, "apibucket")}
    img = tmp_path / "bucket.img"
    summary = s3erofs.build_from_bucket(
        "s3://apibucket/p", img, endpoint_url=moto.endpoint, region="us-east-1",
        access_key=moto.keys.access_key, secret_key=moto.keys.secret_key, build_time=7,
        uuid=UUID, uid=3, gid=4)
    assert (summary.keys, summary.files, summary.directories) == (2, 2, 2)
    assert summary.image_bytes == os.path.getsize(img)
    with s3erofs.open(img) as image:
        for key in ("p/a.txt", "p/d/b.bin"):
            s = image.stat("/" + key[2:])
            assert (s.size, s.mtime_ns, s.uid, s.gid) == truth[key] + (3, 4)
            assert image.read("/" + key[2:]) == bytes(truth[key][0])
        assert image.stat("/d").mtime == 7


# ---- errors -------------------------------------------------------------------------------


@pytest.fixture
def builder():
    b = ImageBuilder(build_time=BUILD_TIME)
    b.add_file("a/f", data=b"x")
    b.add_directory("d")
    return b


@pytest.mark.parametrize("call, message", [
    (lambda b: b.add_file("a/f"), "cannot add 'a/f': the path exists already (a regular file)"),
    (lambda b: b.add_directory("/d/"), "cannot add 'd': the path exists already (a directory)"),
    (lambda b: b.add_fifo("a"), "cannot add 'a': the path exists already (a directory)"),
    (lambda b: b.add_file("a/f/g"), "cannot add 'a/f/g': 'a/f' is not a directory "
     "(a regular file)"),
    (lambda b: b.add_file("x/" + "n" * 256), "cannot add 'x/" + "n" * 256 + "': a component "
     "is 256 bytes long; EROFS names hold at most 255"),
    (lambda b: b.add_file(b"x/a\0b"), "cannot add 'x/a\\x00b': it contains a NUL byte"),
    (lambda b: b.add_file("x/./b"), "cannot add 'x/./b': '.' and '..' components are not "
     "allowed"),
    (lambda b: b.add_symlink("x/../b", "t"), "cannot add 'x/../b': '.' and '..' components "
     "are not allowed"),
    (lambda b: b.add_file("x//b"), "cannot add 'x//b': it has an empty component "
     "('//' or a trailing '/')"),
    (lambda b: b.add_file("/"), "cannot add '/': it names the root, whose metadata comes "
     "from ImageBuilder(root_mode=...)"),
    (lambda b: b.add_hardlink("h", "d"), "cannot hard-link 'h' to 'd': it is a directory"),
    (lambda b: b.add_hardlink("h", "a"), "cannot hard-link 'h' to 'a': it is a directory"),
    (lambda b: b.add_hardlink("h", "nope"), "cannot hard-link 'h' to 'nope': no such path"),
    (lambda b: b.add_file("m", mode=0o100644), "cannot add 'm': mode 0o100644 is not "
     "permission bits (0 to 0o7777)"),
    (lambda b: b.add_file("m", uid=-1), "cannot add 'm': uid -1 is not from 0 to 4294967295"),
    (lambda b: b.add_file("m", gid=2**32), "cannot add 'm': gid 4294967296 is not from 0 to "
     "4294967295"),
    (lambda b: b.add_file("m", mtime_nsec=10**9), "cannot add 'm': mtime_nsec 1000000000 is "
     "not from 0 to 999999999"),
    (lambda b: b.add_symlink("s", ""), "cannot add symlink 's': its target is 0 bytes; it "
     "must be 1 to 4095"),
    (lambda b: b.add_symlink("s", "x" * 4096), "cannot add symlink 's': its target is 4096 "
     "bytes; it must be 1 to 4095"),
    (lambda b: b.add_symlink("s", b"a\0"), "cannot add symlink 's': its target contains a "
     "NUL byte"),
    (lambda b: b.add_device("v", "pipe", 1, 1), "cannot add device 'v': kind 'pipe' is not "
     "'char' or 'block'"),
    (lambda b: b.add_device("v", "char", 4096, 1), "cannot add device 'v': 4096:1 does not "
     "fit (major 0 to 4095, minor 0 to 1048575)"),
    (lambda b: b.add_file("z", size=3, data=b"ab"), "cannot add 'z': size 3 does not match "
     "the 2 bytes of its data"),
    (lambda b: b.add_file("z", data=b"", source="/etc/hostname"), "cannot add 'z': give data "
     "or source, not both"),
    (lambda b: b.add_columns(b"/a", [0, 2], [1], [1]), "add_columns: path '/a' must be "
     "non-empty and relative, without a leading or trailing '/'"),
    (lambda b: b.add_columns(b"ab/", [0, 1, 3], [1, 1], [1, 1]), "add_columns: path 'b/' "
     "must be non-empty and relative, without a leading or trailing '/'"),
    (lambda b: b.add_columns(b"a", [0, 1, 1], [1, 1], [1, 1]), "add_columns: path '' must "
     "be non-empty and relative, without a leading or trailing '/'"),
    (lambda b: b.add_columns(b"a", [0, 1], [-1], [1]), "add_columns: 'a' has size -1, not "
     "from 0 to 18446744073709551615"),
    (lambda b: b.add_columns(b"a", [0, 1], [1], [1], nsec=[10**9]), "add_columns: 'a' has "
     "nsec 1000000000, not from 0 to 999999999"),
    (lambda b: b.add_columns(b"a", [0, 1], [1], [1], mode=[0o40755]), "add_columns: 'a' has "
     "mode 0o40755; only permission bits (and S_IFREG) are allowed"),
    (lambda b: b.add_columns(b"a", [0, 1], [1, 2], [1]), "add_columns: size has shape (2,), "
     "expected (1,)"),
])
def test_add_errors_name_the_path(builder, call, message):
    before = len(builder)
    with pytest.raises(TreeError) as info:
        call(builder)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError) and info.value.exit_code == 2
    assert len(builder) == before, "a failed add must leave the builder unchanged"
    builder.write(io.BytesIO())


@pytest.mark.parametrize("setup, message", [
    (lambda b: (b.add_file("a/f"), b.add_columns(b"a/f", [0, 3], [1], [1])),
     "cannot add 'a/f': the path exists already (a regular file)"),
    (lambda b: (b.add_file("a"), b.add_columns(b"a/f", [0, 3], [1], [1])),
     "cannot add 'a/f': 'a' is not a directory (a regular file)"),
    (lambda b: (b.add_columns(b"a", [0, 1], [1], [1]), b.add_symlink("a/f", "t")),
     "cannot add 'a/f': 'a' is not a directory (a regular file)"),
    (lambda b: (b.add_columns(b"aa/b/c", [0, 1, 6], [1, 1], [1, 1]),),
     "cannot add 'a/b/c': 'a' is not a directory (a regular file)"),
    (lambda b: (b.add_directory("a"), b.add_columns(b"a", [0, 1], [1], [1])),
     "cannot add 'a': the path exists already (a directory)"),
    (lambda b: (b.add_columns(b"aa", [0, 1, 2], [1, 1], [1, 1]),),
     "cannot add 'a': the path exists already (a regular file)"),
    (lambda b: (b.add_columns(b"a/./b", [0, 5], [1], [1]),),
     "cannot add 'a/./b': '.' and '..' components are not allowed"),
    (lambda b: (b.add_columns(b"x/" + b"y" * 256, [0, 258], [1], [1]),),
     "cannot add 'x/" + "y" * 256 + "': a component is 256 bytes long; EROFS names hold at "
     "most 255"),
    (lambda b: (b.add_columns(b"a/b", [0, 3], [1], [1]), b.add_hardlink("h", "a")),
     "cannot hard-link 'h' to 'a': it is a directory"),
    (lambda b: (b.add_columns(b"a/b", [0, 3], [1], [1]), b.add_hardlink("h", "a/c")),
     "cannot hard-link 'h' to 'a/c': no such path"),
    (lambda b: (b.add_columns(b"a/b", [0, 3], [1], [1]), b.add_hardlink("h", "a/b/c")),
     "cannot hard-link 'h' to 'a/b/c': no such path"),
])
def test_clashes_with_columns_are_found_by_write(tmp_path, setup, message):
    b = ImageBuilder(build_time=BUILD_TIME)
    setup(b)
    img = tmp_path / "never.img"
    with pytest.raises(TreeError) as info:
        b.write(img)
    assert str(info.value) == message
    assert not img.exists()


def test_bad_image_options_fail_at_construction():
    with pytest.raises(s3erofs.ImageError, match="block size 3000 is not a power of two"):
        ImageBuilder(block_size=3000)
    with pytest.raises(s3erofs.ImageError, match="at most 15 fit"):
        ImageBuilder(volume_name="x" * 16)


def test_public_names_and_cheap_import():
    code = ("import sys, s3erofs; s3erofs.ImageBuilder; "
            "print(sorted(m for m in ('pycurl', 'lxml', 's3erofs.build') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(REPO)), check=True).stdout
    assert out.strip() == "[]"
    for name in ("ImageBuilder", "build_from_bucket", "build_from_directory", "open",
                 "BuildSummary", "ImageStats", "S3erofsError", "ImageError", "TreeError",
                 "SourceError", "CorruptImageError", "StrictKeyError", "S3Error"):
        assert name in s3erofs.__all__ and getattr(s3erofs, name) is not None
    assert s3erofs.__version__ == "0.1.0"
