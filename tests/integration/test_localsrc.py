"""``s3erofs build DIR IMG``: a local tree with every file type, judged by fsck.erofs
(``--extract``) and by the kernel (a read-only loop mount) against ``os.lstat`` of the source.
"""

import hashlib
import os
import re
import stat
import subprocess

import numpy as np
import pytest
from oracle import assert_zeros, fsck, mounted, run_tool, toolsets

MIB = 1 << 20
SIZES = [0, 1, 4095, 4096, 4097, MIB + 3]
SYMLINK_TARGETS = {b"short": b"files/f1", b"long200": b"t" * 200, b"long3000": b"../" * 1000}
DEVICES = {b"dev/null": (stat.S_IFCHR, 1, 3), b"dev/sda1": (stat.S_IFBLK, 8, 1),
           b"dev/big": (stat.S_IFCHR, 4095, 0xFFFFF)}
BAD_NAME = b"bad\xffname"


def make_source(root: bytes) -> None:
    """The source tree; every entry gets its own mode, owner and mtime (with ns)."""
    rng = np.random.default_rng(20240601)
    os.makedirs(os.path.join(root, b"files"))
    for size in SIZES:
        with open(os.path.join(root, b"files", b"f%d" % size), "wb") as f:
            f.write(rng.integers(0, 256, size, np.uint8).tobytes())
    with open(os.path.join(root, b"sparse.img"), "wb") as f:
        f.truncate(10 * MIB)

    for count in (1, 10, 100, 2000):
        folder = os.path.join(root, b"nest", b"d%d" % count)
        os.makedirs(folder)
        for i in range(count):
            name = b"entry-%05d-" % i + b"x" * (i % 60)
            with open(os.path.join(folder, name), "wb") as f:
                f.write(b"%d" % i)
    os.makedirs(os.path.join(root, b"nest", b"deep", b"a", b"b", b"c"))

    os.makedirs(os.path.join(root, b"links"))
    for name, target in SYMLINK_TARGETS.items():
        os.symlink(target, os.path.join(root, b"links", name))
    os.link(os.path.join(root, b"files/f4097"), os.path.join(root, b"links/hard1"))
    os.link(os.path.join(root, b"files/f4097"), os.path.join(root, b"nest/deep/a/hard2"))
    os.link(os.path.join(root, b"links/short"), os.path.join(root, b"links/short-again"))

    os.makedirs(os.path.join(root, b"dev"))
    for name, (kind, major, minor) in DEVICES.items():
        os.mknod(os.path.join(root, name), kind | 0o640, os.makedev(major, minor))
    os.mkfifo(os.path.join(root, b"dev/fifo"), 0o600)
    os.mknod(os.path.join(root, b"dev/sock"), stat.S_IFSOCK | 0o755)
    with open(os.path.join(root, BAD_NAME), "wb") as f:
        f.write(b"not utf-8")

    set_metadata(root)


def set_metadata(root: bytes) -> None:
    """Varied modes, owners and mtimes; directories last and bottom-up (children touch them)."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        entries += [os.path.join(dirpath, n) for n in filenames + dirnames]
    entries.sort(key=lambda p: (-p.count(b"/"), p))
    for i, path in enumerate(entries + [root]):
        st = os.lstat(path)
        uid, gid = [(0, 0), (70000, 80000), (65534, 65535), (1000, 100), (2**32 - 2, 7)][i % 5]
        os.lchown(path, uid, gid)
        if not stat.S_ISLNK(st.st_mode):
            modes = [0o644, 0o4755, 0o600, 0o2711, 0o1777, 0o444, 0o000] \
                if not stat.S_ISDIR(st.st_mode) else [0o755, 0o1777, 0o700, 0o2750]
            os.chmod(path, modes[i % len(modes)])
        when = 1_600_000_000 + 86_400 * i
        os.utime(path, ns=(when * 10**9, when * 10**9 + (i * 123_456_789) % 10**9),
                 follow_symlinks=False)


def snapshot(root, *, hashes: bool = True) -> dict:
    """``relpath -> (type, mode, uid, gid, size, nlink, rdev, mtime_ns, target, sha256)``.

    Directory sizes are left out: EROFS sizes a directory by its dirents.
    """
    root = os.fsencode(root)
    tree = {b"": describe(root, root, hashes)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            tree[os.path.relpath(path, root)] = describe(path, root, hashes)
    return tree


def describe(path: bytes, root: bytes, hashes: bool) -> tuple:
    st = os.lstat(path)
    kind = stat.S_IFMT(st.st_mode)
    target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
    digest = None
    if stat.S_ISREG(st.st_mode) and hashes:
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
    rdev = (os.major(st.st_rdev), os.minor(st.st_rdev)) \
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else None
    size = None if stat.S_ISDIR(st.st_mode) else st.st_size
    return (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, size, st.st_nlink, rdev,
            st.st_mtime_ns, target, digest)


def diff(actual: dict, expected: dict, limit: int = 15) -> str:
    lines = [f"missing {p!r}" for p in sorted(expected.keys() - actual.keys())[:limit]]
    lines += [f"extra {p!r}" for p in sorted(actual.keys() - expected.keys())[:limit]]
    lines += [f"differs {p!r}: image {actual[p]} != source {expected[p]}"
              for p in sorted(actual.keys() & expected.keys()) if actual[p] != expected[p]]
    return "\n".join(lines[:limit * 3])


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> bytes:
    root = os.fsencode(tmp_path_factory.mktemp("localsrc") / "src")
    os.makedirs(root)
    make_source(root)
    return root


@pytest.fixture(scope="module")
def image(source, tmp_path_factory):
    img = tmp_path_factory.mktemp("localimg") / "src.img"
    result = run_build(source, img, "-T", "0", "-U", "clear")
    return img, result


def run_build(source, img, *extra):
    from conftest import run_s3erofs

    return run_s3erofs("build", os.fsdecode(source), img, *extra)


def test_build_summary_and_fsck(source, image):
    img, result = image
    assert result.returncode == 0, result.stderr
    truth = snapshot(source, hashes=False)
    dirs = sum(1 for entry in truth.values() if stat.S_ISDIR(entry[0]))
    line = result.stdout.strip()
    match = re.fullmatch(rf"{re.escape(str(img))}: (\d+) \w+, (\d+) directories, "
                         r"(\d+) image bytes, [\d.]+ s", line)
    assert match, line
    assert (int(match[1]), int(match[2]), int(match[3])) == \
        (len(truth) - dirs, dirs, os.path.getsize(img))
    fsck(img)


def test_mounted_image_equals_the_source(source, image):
    img, result = image
    assert result.returncode == 0, result.stderr
    truth = snapshot(source)
    with mounted(img) as mnt:
        actual = snapshot(mnt)
        inodes = {p: os.lstat(os.path.join(os.fsencode(mnt), p)).st_ino
                  for p in (b"files/f4097", b"links/hard1", b"nest/deep/a/hard2")}
    assert actual == truth, "mounted image differs from the source:\n" + diff(actual, truth)
    assert len(set(inodes.values())) == 1, inodes
    assert truth[b"files/f4097"][5] == 3 and truth[b"links/short"][5] == 2
    assert truth[BAD_NAME][9] == hashlib.sha256(b"not utf-8").hexdigest()
    assert truth[b"links/long3000"][8] == b"../" * 1000
    assert truth[b"dev/big"][6] == (4095, 0xFFFFF)


def test_fully_sparse_file_is_stored_as_holes(source, image):
    img, _ = image
    sizes = {os.path.getsize(os.path.join(source, b"files", b"f%d" % s)) for s in SIZES}
    data_bytes = sum(sizes) + sum(len(b"%d" % i) for c in (1, 10, 100, 2000) for i in range(c))
    # the 10 MiB hole takes no blocks: the image holds the data plus metadata
    assert os.path.getsize(img) < data_bytes + 2 * MIB
    with mounted(img) as mnt:
        assert_zeros(os.path.join(mnt, "sparse.img"), 10 * MIB)


def test_extracted_tree_equals_the_source(source, image, tmp_path):
    """``fsck.erofs --extract=OUT`` of each erofs-utils here gives the source back.

    erofs-utils 1.5 does not restore hard links (each name becomes its own file), leaves a
    file that is one hole empty, and loses setuid/setgid of non-directories; see
    extracted_by_1_5.
    """
    img, _ = image
    truth = snapshot(source)
    for toolset in toolsets():
        out = tmp_path / f"out-{'.'.join(map(str, toolset.version))}"
        result = run_tool([toolset.tool("fsck.erofs"), f"--extract={out}", "--preserve",
                           img])
        assert result.returncode == 0, f"{toolset}: {result.stdout}{result.stderr}"
        expected = dict(truth)
        if toolset.version < (1, 6):
            expected = {p: extracted_by_1_5(e) for p, e in expected.items()}
            empty = hashlib.sha256(b"").hexdigest()
            expected[b"sparse.img"] = expected[b"sparse.img"][:4] + (0,) + \
                expected[b"sparse.img"][5:9] + (empty,)
        actual = snapshot(out)
        assert actual == expected, f"{toolset} extract differs:\n" + diff(actual, expected)


def extracted_by_1_5(entry: tuple) -> tuple:
    """What fsck.erofs 1.5 --extract makes of a source entry: hard links become separate
    files (nlink 1), and its chown after chmod clears setuid/setgid of everything but
    directories."""
    kind, mode, uid, gid, size, nlink = entry[:6]
    if not stat.S_ISDIR(kind):
        mode &= ~(stat.S_ISUID | stat.S_ISGID)
        nlink = 1
    return (kind, mode, uid, gid, size, nlink) + entry[6:]


def test_meta_only_keeps_sizes_and_reads_zeros(source, tmp_path):
    img = tmp_path / "meta.img"
    result = run_build(source, img, "--meta-only", "-T", "0", "-U", "clear")
    assert result.returncode == 0, result.stderr
    assert os.path.getsize(img) < MIB  # no file data at all
    truth = snapshot(source, hashes=False)
    with mounted(img) as mnt:
        assert snapshot(mnt, hashes=False) == truth
        for size in SIZES:
            assert_zeros(os.path.join(mnt, f"files/f{size}"), size)
        assert os.readlink(os.path.join(mnt, "links/long200")) == "t" * 200


def test_uid_and_gid_override_every_inode(source, tmp_path):
    img = tmp_path / "owned.img"
    result = run_build(source, img, "--uid", "5", "--gid", "70001", "-T", "0", "-U", "clear")
    assert result.returncode == 0, result.stderr
    with mounted(img) as mnt:
        owners = {(e[2], e[3]) for e in snapshot(mnt, hashes=False).values()}
    assert owners == {(5, 70001)}


def test_builds_are_reproducible(source, image, tmp_path):
    img, _ = image
    again = tmp_path / "again.img"
    assert run_build(source, again, "-T", "0", "-U", "clear").returncode == 0
    assert again.read_bytes() == img.read_bytes()


def test_mount_points_are_not_crossed(tmp_path):
    src = tmp_path / "src"
    inner = src / "sub" / "mnt"
    inner.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(inner)], check=True)
    try:
        (inner / "hidden").write_bytes(b"on another file system")
        img = tmp_path / "m.img"
        result = run_build(src, img, "-T", "0", "-U", "clear")
    finally:
        subprocess.run(["umount", str(inner)], check=True)
    assert result.returncode == 0, result.stderr
    assert f"'{inner}' is a mount point; its contents are not copied" in result.stderr
    with mounted(img) as mnt:
        assert os.listdir(os.path.join(mnt, "sub/mnt")) == []


def test_existing_image_inside_the_source_is_left_out(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(b"a")
    img = src / "self.img"
    assert run_build(src, img, "-T", "0").returncode == 0
    result = run_build(src, img, "-T", "0")
    assert result.returncode == 0, result.stderr
    assert f"'{img}' is the image being written; it is left out" in result.stderr
    with mounted(img) as mnt:
        assert sorted(os.listdir(mnt)) == ["a"]


def test_source_errors(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    result = run_build(tmp_path / "file", tmp_path / "x.img")
    assert (result.returncode, result.stderr.strip()) == \
        (2, f"s3erofs: ERROR: source '{tmp_path / 'file'}' is not a directory")
    result = run_build(tmp_path / "missing", tmp_path / "x.img")
    assert (result.returncode, result.stderr.strip()) == \
        (2, f"s3erofs: ERROR: cannot read source directory '{tmp_path / 'missing'}': "
            "No such file or directory")
    assert not (tmp_path / "x.img").exists()
