"""Independent checks of an image: erofs-utils' fsck/dump, the kernel's mount, and a tree model.

Nothing here imports s3erofs: the point is to judge its images with other people's readers.

The tree shape used by ``walk_tree`` and ``expected_tree`` is
``{relpath: (type, mode, size, uid, gid, mtime_ns, nlink)}`` with ``relpath`` the bytes path
below the root (``b""`` is the root, ``b"a/b"`` a nested entry), ``type`` one of ``"dir"``,
``"file"``, ``"symlink"``, ``"other"``, ``mode`` the permission bits (``0o644``), and ``size``
``None`` for directories: a directory's size is the length of its dirent blocks, which
depends on the layout and is not part of the bucket's truth.
"""

import contextlib
import datetime as dt
import functools
import os
import re
import shutil
import stat
import struct
import subprocess
import tempfile
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path

import pytest

EROFS_SUPER_OFFSET = 1024
EROFS_SUPER_MAGIC = 0xE0F5E1E2

DUMP_ENV = dict(os.environ, TZ="UTC")  # dump.erofs prints timestamps in local time

REPO = Path(__file__).resolve().parents[1]

# where a newer erofs-utils may be: .ci/run builds 1.9 with MAX_BLOCK_SIZE=65536 into the
# first; Debian 12's 1.5 (on PATH) reads only images whose block size is the page size
TOOL_DIRS = [
    *filter(None, os.environ.get("EROFS_UTILS_BIN", "").split(os.pathsep)),
    "/var/cache/s3erofs/erofs-utils-64k/bin",
    os.path.join(os.environ.get("S3EROFS_BENCH_CACHE", ""), "bin"),
    str(REPO / "bench/.cache/erofs-utils/bin"),
    "",
]

UNSUPPORTED_BLOCK = re.compile(r"blksize \d+ isn't supported")


@dataclass(frozen=True)
class Toolset:
    """fsck.erofs and dump.erofs of one erofs-utils build (``bindir`` "" means PATH)."""

    bindir: str
    version: tuple

    def tool(self, name: str) -> str:
        return os.path.join(self.bindir, name) if self.bindir else name

    def __str__(self) -> str:
        return f"erofs-utils {'.'.join(map(str, self.version))} ({self.bindir or 'PATH'})"


@functools.cache
def toolsets() -> tuple:
    """Every distinct erofs-utils build found, newest first."""
    found = {}
    for bindir in TOOL_DIRS:
        fsck_path = shutil.which(os.path.join(bindir, "fsck.erofs") if bindir else "fsck.erofs")
        if not fsck_path or not os.access(os.path.join(os.path.dirname(fsck_path),
                                                       "dump.erofs"), os.X_OK):
            continue
        result = run_tool([fsck_path, "-V"])
        match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", result.stdout + result.stderr)
        version = tuple(int(part) for part in match.groups(default="0")) if match else (0,)
        # one build per version: the first dir listed wins (the 64 KiB one)
        found.setdefault(version, Toolset(bindir, version))
    assert found, f"no fsck.erofs/dump.erofs in {TOOL_DIRS} (apt-get install erofs-utils)"
    return tuple(found[version] for version in sorted(found, reverse=True))


def run_tool(args: list) -> subprocess.CompletedProcess:
    return subprocess.run([str(arg) for arg in args], capture_output=True, text=True,
                          env=DUMP_ENV, timeout=300)


def run_supported(name: str, args: list, img, check_all: bool) -> list:
    """Run tool ``name`` of each toolset (or the newest) that reads IMG's block size.

    Returns ``[(toolset, CompletedProcess)]``; skips the test, naming the block size and the
    versions tried, when no toolset here can read the image.
    """
    results, refused = [], []
    block_size = raw_superblock(img)["block_size"]
    for toolset in toolsets():
        if toolset.version < (1, 6) and block_size != os.sysconf("SC_PAGE_SIZE"):
            # 1.5 reads a whole page as the superblock block and knows no other size
            refused.append(str(toolset))
            continue
        result = run_tool([toolset.tool(name), *args, img])
        if UNSUPPORTED_BLOCK.search(result.stdout + result.stderr):
            refused.append(str(toolset))
            continue
        results.append((toolset, result))
        if not check_all:
            break
    if not results:
        pytest.skip(f"no {name} here reads block size {block_size} ({', '.join(refused)} "
                    "refuse it); .ci/run builds erofs-utils 1.9 with MAX_BLOCK_SIZE=65536")
    return results


def fsck(img) -> str:
    """Run every ``fsck.erofs`` here that reads IMG's block size; each must exit 0.

    Returns their combined output. Skips the test when none can read the block size.
    """
    outputs = []
    for toolset, result in run_supported("fsck.erofs", [], img, check_all=True):
        output = result.stdout + result.stderr
        assert result.returncode == 0, \
            f"fsck.erofs ({toolset}) {img} exited {result.returncode}:\n{output}"
        outputs.append(output)
    return "".join(outputs)


def fsck_extract(img) -> str:
    """``fsck.erofs --extract`` also reads every file's data."""
    outputs = []
    for toolset, result in run_supported("fsck.erofs", ["--extract"], img, check_all=True):
        output = result.stdout + result.stderr
        assert result.returncode == 0, \
            f"fsck.erofs --extract ({toolset}) {img} exited {result.returncode}:\n{output}"
        outputs.append(output)
    return "".join(outputs)


# dump.erofs --path output (1.5 says "File :" and prints "Extent size", 1.9 says "Path :"):
#   File : /sub/f
#   Size: 3  On-disk size: 3  regular file
#   NID: 42   Links: 1   Layout: 2   Compression ratio: 100.00%
#   Inode size: 64   Extent size: 0   Xattr size: 0
#   Uid: 70000   Gid: 80000  Access: 0644/rw-r--r--
#   Timestamp: 2024-01-02 03:04:05.123456789
DUMP_INODE_RE = re.compile(
    r"(?:File|Path) : (?P<path>.*)\n"
    r"Size: (?P<size>\d+)\s+On-disk size: (?P<ondisk_size>\d+)\s+(?P<type>[^\n]+)\n"
    r"NID: (?P<nid>\d+)\s+Links: (?P<nlink>\d+)\s+Layout: (?P<layout>\d+)[^\n]*\n"
    r"Inode size: (?P<inode_size>\d+)\s+(?:Extent size: \d+\s+)?"
    r"Xattr size: (?P<xattr_size>\d+)\n"
    r"Uid: (?P<uid>\d+)\s+Gid: (?P<gid>\d+)\s+Access: (?P<mode>[0-7]+)/\S+\n"
    r"Timestamp: (?P<date>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.(?P<nsec>\d{9})"
)


def dump_inode(img, path: str) -> dict:
    """Parse ``dump.erofs --path=PATH IMG`` (the newest erofs-utils here), times as UTC.

    Returns path, size, ondisk_size, type (``"regular file"``, ``"directory"``...), nid,
    nlink, layout, inode_size (32 compact / 64 extended), xattr_size, uid, gid, mode
    (permission bits as int), mtime (seconds), mtime_nsec, mtime_ns (both combined).
    """
    [(toolset, result)] = run_supported("dump.erofs", [f"--path={path}"], img, False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"dump.erofs ({toolset}) --path={path} {img} exited " \
        f"{result.returncode}:\n{output}"

    match = DUMP_INODE_RE.search(result.stdout)
    assert match, f"unexpected dump.erofs ({toolset}) output for {path}:\n{output}"

    fields = match.groupdict()
    info = {name: int(fields[name]) for name in
            ("size", "ondisk_size", "nid", "nlink", "layout", "inode_size", "xattr_size",
             "uid", "gid")}
    when = dt.datetime.strptime(fields["date"], "%Y-%m-%d %H:%M:%S")
    info["path"] = fields["path"]
    info["type"] = fields["type"].strip()
    info["mode"] = int(fields["mode"], 8)
    info["mtime"] = int(when.replace(tzinfo=dt.UTC).timestamp())
    info["mtime_nsec"] = int(fields["nsec"])
    info["mtime_ns"] = info["mtime"] * 10**9 + info["mtime_nsec"]
    return info


def dump_superblock(img) -> dict:
    """Parse ``dump.erofs -s IMG`` ("Filesystem <name>: <value>" lines) plus the raw fields.

    Keys from dump: ``magic``, ``blocks``, ``root_nid``, ``inode_count``, ``created``,
    ``features`` (list), ``uuid``. dump.erofs 1.5 prints neither the block size nor the
    volume name, so ``blkszbits``, ``block_size``, ``build_time``, ``build_time_nsec``,
    ``volume_name`` and ``feature_*`` are read from the superblock bytes (raw_superblock).
    """
    [(toolset, result)] = run_supported("dump.erofs", ["-s"], img, False)
    assert result.returncode == 0, f"dump.erofs ({toolset}) -s {img} exited " \
        f"{result.returncode}:\n{result.stdout}{result.stderr}"

    lines = dict(re.findall(r"^Filesystem ([^:]+):[ \t]*(.*?)[ \t]*$", result.stdout, re.M))
    features = lines.get("features") or lines.get("compatible features", "")
    info = {
        "magic": int(lines["magic number"], 16),
        "blocks": int(lines["blocks"]),
        "root_nid": int(lines["root nid"]),
        "inode_count": int(lines["inode count"]),
        "created": lines["created"],
        "features": features.split(),
        "uuid": lines["UUID"],
    }
    if "blocksize" in lines:
        info["dump_block_size"] = int(lines["blocksize"])
    info.update(raw_superblock(img))
    return info


def raw_superblock(img) -> dict:
    """The fixed superblock fields at byte 1024 (erofs_fs.h ``erofs_super_block``)."""
    with open(img, "rb") as f:
        f.seek(EROFS_SUPER_OFFSET)
        raw = f.read(128)
    assert len(raw) == 128, f"{img}: {len(raw)} bytes at offset 1024, a superblock needs 128"

    (magic, checksum, compat, blkszbits, extslots, root_nid, inos, build_time,
     build_time_nsec, blocks, meta_blkaddr, xattr_blkaddr) = struct.unpack_from(
        "<IIIBBHQQIIII", raw, 0)
    return {
        "raw_magic": magic,
        "checksum": checksum,
        "feature_compat": compat,
        "blkszbits": blkszbits,
        "block_size": 1 << blkszbits,
        "sb_extslots": extslots,
        "raw_root_nid": root_nid,
        "inos": inos,
        "build_time": build_time,
        "build_time_nsec": build_time_nsec,
        "raw_blocks": blocks,
        "meta_blkaddr": meta_blkaddr,
        "xattr_blkaddr": xattr_blkaddr,
        "raw_uuid": str(uuidlib.UUID(bytes=raw[48:64])),
        "volume_name": raw[64:80].rstrip(b"\0"),
        "feature_incompat": struct.unpack_from("<I", raw, 80)[0],
    }


def mount_unavailable_reason() -> str | None:
    """Why this process cannot mount EROFS at all, or None if it may try."""
    if os.geteuid() != 0:
        return f"mounting EROFS needs root (euid is {os.geteuid()})"
    with open("/proc/filesystems") as f:
        known = {line.split()[-1] for line in f if line.strip()}
    if "erofs" not in known:
        # the driver may be a module that mount loads on demand: try modprobe once
        subprocess.run(["modprobe", "erofs"], capture_output=True)
        with open("/proc/filesystems") as f:
            if "erofs" not in f.read().split():
                return "the kernel has no erofs driver (/proc/filesystems, modprobe erofs)"
    return None


# mount(8) messages that mean "this machine cannot mount", not "this image is bad"
ENVIRONMENT_FAILURES = ("permission denied", "operation not permitted", "only root",
                        "unknown filesystem type", "failed to setup loop device",
                        "could not find any free loop device")


@contextlib.contextmanager
def mounted(img):
    """Mount IMG read-only through a loop device, yield the mount point, unmount after.

    Skips the test (with the reason) when this machine cannot mount EROFS; a mount that
    fails for any other reason (a bad superblock) fails the test.
    """
    reason = mount_unavailable_reason()
    if reason:
        pytest.skip(reason)

    mountpoint = tempfile.mkdtemp(prefix="s3erofs-mnt-")
    result = subprocess.run(["mount", "-t", "erofs", "-o", "loop,ro", str(img), mountpoint],
                            capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        os.rmdir(mountpoint)
        message = (result.stdout + result.stderr).strip()
        if any(text in message.lower() for text in ENVIRONMENT_FAILURES):
            pytest.skip(f"cannot mount EROFS here: {message}")
        pytest.fail(f"mount -t erofs -o loop,ro {img} failed ({result.returncode}): "
                    f"{message}; dmesg: {dmesg_tail()}")

    try:
        yield mountpoint
    finally:
        unmount(mountpoint)


def unmount(mountpoint: str) -> None:
    result = subprocess.run(["umount", mountpoint], capture_output=True, timeout=60)
    if result.returncode != 0:
        # something (a test's open file, a walker) still holds it: detach lazily
        subprocess.run(["umount", "-l", mountpoint], capture_output=True, timeout=60)
    with contextlib.suppress(OSError):
        os.rmdir(mountpoint)


def dmesg_tail(lines: int = 5) -> str:
    result = subprocess.run(["dmesg"], capture_output=True, text=True)
    if result.returncode != 0:
        return "(dmesg unavailable)"
    return " | ".join(line for line in result.stdout.splitlines()[-lines:] if "erofs" in line)


def entry_type(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def walk_tree(root) -> dict:
    """Every entry below ``root`` (a mounted image) as the module's tree shape."""
    root = os.fsencode(root)
    tree = {b"": describe(os.lstat(root))}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            tree[os.path.relpath(full, root)] = describe(os.lstat(full))
    return tree


def describe(st: os.stat_result) -> tuple:
    kind = entry_type(st.st_mode)
    size = None if kind == "dir" else st.st_size
    return (kind, stat.S_IMODE(st.st_mode), size, st.st_uid, st.st_gid, st.st_mtime_ns,
            st.st_nlink)


def mtime_ns(last_modified: dt.datetime) -> int:
    """A LastModified datetime (ms precision from S3) as integer ns since the epoch, UTC."""
    if last_modified.tzinfo is None:
        last_modified = last_modified.replace(tzinfo=dt.UTC)
    delta = last_modified - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def expected_tree(listing, prefix: bytes = b"", keep_prefix: bool = False,
                  build_time: int = 0, uid: int = 0, gid: int = 0) -> dict:
    """The tree an image of ``listing`` must hold, in the module's tree shape.

    ``listing`` is a list of ``(key, size, last_modified)`` (key str or bytes, last_modified
    a datetime or ns int) for plain keys: no ``a`` beside ``a/b``, no empty, ``.`` or ``..``
    segments. Keys not under ``prefix`` are ignored; ``prefix`` is stripped unless
    ``keep_prefix``. A key ending in ``/`` is a directory (0755, its own mtime), other keys
    are files (0644); implicit directories and the root are 0755 with ``build_time``.
    The prefix's own marker (key == prefix) does not change the root.
    """
    implicit = ("dir", 0o755, None, uid, gid, build_time * 10**9)
    entries = {b"": implicit}

    for key, size, last_modified in listing:
        key = os.fsencode(key) if isinstance(key, str) else key
        if not key.startswith(prefix):
            continue
        path = key if keep_prefix else key[len(prefix):]
        when = last_modified if isinstance(last_modified, int) else mtime_ns(last_modified)

        is_dir = path.endswith(b"/")
        path = path.rstrip(b"/")
        if not path:
            continue
        assert path not in entries or entries[path][0] == "dir", f"key {key!r} is not plain"

        parts = path.split(b"/")
        for depth in range(1, len(parts)):
            entries.setdefault(b"/".join(parts[:depth]), implicit)
        if is_dir:
            entries[path] = ("dir", 0o755, None, uid, gid, when)
        else:
            assert path not in entries, f"key {key!r} is a file and a directory"
            entries[path] = ("file", 0o644, size, uid, gid, when)

    return with_nlink(entries)


def with_nlink(entries: dict) -> dict:
    """Add nlink: 2 + subdirectories for a directory, 1 for anything else."""
    subdirs = dict.fromkeys(entries, 0)
    for path, entry in entries.items():
        if path and entry[0] == "dir":
            parent = path.rpartition(b"/")[0]
            subdirs[parent] += 1
    return {path: entry + (2 + subdirs[path] if entry[0] == "dir" else 1,)
            for path, entry in entries.items()}


def diff_trees(actual: dict, expected: dict, limit: int = 20) -> str:
    """A short readable difference of two trees ('' when equal), for assertion messages."""
    lines = []
    for path in sorted(expected.keys() - actual.keys())[:limit]:
        lines.append(f"missing {path!r}: {expected[path]}")
    for path in sorted(actual.keys() - expected.keys())[:limit]:
        lines.append(f"extra   {path!r}: {actual[path]}")
    changed = [p for p in sorted(actual.keys() & expected.keys()) if actual[p] != expected[p]]
    for path in changed[:limit]:
        lines.append(f"differs {path!r}: image {actual[path]} != expected {expected[path]}")
    return "\n".join(lines)


def assert_zeros(path, size: int) -> None:
    """The file at ``path`` reads back as exactly ``size`` zero bytes."""
    total = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            assert chunk.count(0) == len(chunk), f"{path!r}: non-zero byte near {total}"
            total += len(chunk)
    assert total == size, f"{path!r}: read {total} bytes, expected {size}"
