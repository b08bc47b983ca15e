"""Measurement helpers for ``bench/run``, and the workers it runs in child processes.

Parent side: ``measure(cmd, env, timeout)`` runs one child and returns its wall time and peak
RSS (``ru_maxrss``, the command forked from a 5 MiB launcher, see LAUNCHER); ``image_tree(path)``
and ``bucket_tree(objects)`` give ``{path: (type, size, mtime seconds)}`` for comparisons.

Child side (``python bench/runlib.py WORKER ...``, one JSON line on stdout):

- ``baseline``: RSS after importing s3erofs, numpy, lxml and pycurl (the interpreter baseline
  that bytes-per-key numbers are taken above);
- ``listparse URL BUCKET``: S3Client + list_bucket only (no tree, no image);
- ``phases URL BUCKET IMAGE``: list, tree and write in one process, RSS after each phase;
- ``writer COLUMNS_NPZ COPIES IMAGE``: columns already in memory -> image, timed alone;
- ``touch [MIB]``: seconds to fault in fresh memory (the machine's page-fault cost).
"""

from __future__ import annotations

import json
import os
import re
import stat as statmod
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

KIB = 1024


# ---------------------------------------------------------------- parent side


# Runs one command and reports its rusage. Linux's ru_maxrss keeps the largest memory the
# process ever had, including the copy of its parent's memory between fork and exec, so the
# command is forked from this small interpreter (python -S, about 5 MiB), never from the
# benchmark's own process, which holds millions of generated keys.
LAUNCHER = r"""
import os, signal, sys, time
timeout, stdout, stderr, *cmd = sys.argv[1:]
out = os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
err = os.open(stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
timed_out = 0
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.setsid()
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)

def kill(*_):
    global timed_out
    timed_out = 1
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass

if float(timeout):
    signal.signal(signal.SIGALRM, kill)
    signal.setitimer(signal.ITIMER_REAL, float(timeout))
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
signal.setitimer(signal.ITIMER_REAL, 0)
print(wall, usage.ru_maxrss, usage.ru_utime, usage.ru_stime, os.waitstatus_to_exitcode(status),
      timed_out)
"""


def measure(cmd: list[str], env: dict[str, str] | None = None,
            timeout: float | None = None) -> dict:
    """Run ``cmd``; return wall seconds, its peak RSS (KiB), CPU times, exit code and output.

    The command runs in its own session, so a timeout (SIGKILL to its process group) also
    ends whatever it started.
    """
    with tempfile.TemporaryDirectory(prefix="s3erofs-bench-run-") as tmp:
        out, err = f"{tmp}/stdout", f"{tmp}/stderr"
        # -S: no site imports, so the launcher stays small; the command gets ``env``
        done = subprocess.run([sys.executable, "-S", "-c", LAUNCHER, str(timeout or 0), out, err,
                               *cmd], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"launcher for {cmd[0]} failed: {done.stderr[-1500:]}")
        wall, maxrss, user, system, rc, timed_out = done.stdout.split()
        return {
            "wall_s": round(float(wall), 4), "maxrss_kib": int(maxrss),
            "user_s": round(float(user), 3), "sys_s": round(float(system), 3),
            "rc": int(rc), "timed_out": timed_out == "1",
            "stdout": Path(out).read_text("utf-8", "replace")[-4000:],
            "stderr": Path(err).read_text("utf-8", "replace")[-2000:],
        }


def run_worker(args: list[str], env: dict[str, str]) -> dict:
    """Run one worker of this module in a child; its JSON result plus the parent's view."""
    result = measure([sys.executable, str(Path(__file__).resolve()), *args], env)
    if result["rc"] != 0:
        raise RuntimeError(f"worker {args[0]} failed with exit code {result['rc']}: "
                           f"{result['stderr'][-1500:]}")
    lines = [line for line in result["stdout"].splitlines() if line.startswith("{")]
    return {**json.loads(lines[-1]), "wall_s": result["wall_s"],
            "maxrss_kib": result["maxrss_kib"]}


def image_tree(path: str | os.PathLike) -> dict[bytes, tuple[str, int, int]]:
    """``{b"/a/b": (type, size, mtime seconds)}`` of every entry below the root.

    Walks by nid (``scandir_nid`` + ``inode``) rather than ``stat(path)``: a path lookup per
    entry is five times slower on million-entry images. Directories get size 0 (their size
    is the layout's, not the bucket's).
    """
    from s3erofs import reader

    out: dict[bytes, tuple[str, int, int]] = {}
    with reader.open(path) as img:
        stack = [(b"", img.superblock.root_nid)]
        while stack:
            dirpath, nid = stack.pop()
            for entry in img.scandir_nid(nid):
                st = img.inode(entry.nid)
                child = dirpath + b"/" + entry.name
                if statmod.S_ISDIR(st.mode):
                    out[child] = ("d", 0, st.mtime)
                    stack.append((child, entry.nid))
                else:
                    kind = "f" if statmod.S_ISREG(st.mode) else oct(statmod.S_IFMT(st.mode))
                    out[child] = (kind, st.size, st.mtime)
    return out


def bucket_tree(objects) -> tuple[dict[bytes, tuple[str, int, int | None]], set[bytes]]:
    """The tree the bucket should become, and the paths of directories with a marker object.

    Unmarked directories get mtime ``None``: s3erofs gives them the build time (``-T``),
    mkfs.erofs its parent's, so they are compared by presence only.
    """
    stamps = np.array([o[2][:19] for o in objects], dtype="datetime64[s]").astype(np.int64)
    out: dict[bytes, tuple[str, int, int | None]] = {}
    marked: set[bytes] = set()
    for (key, size, _), mtime in zip(objects, stamps.tolist(), strict=True):
        parts = key.rstrip(b"/").split(b"/")
        for i in range(1, len(parts)):
            out.setdefault(b"/" + b"/".join(parts[:i]), ("d", 0, None))
        path = b"/" + b"/".join(parts)
        if key.endswith(b"/"):
            out[path] = ("d", 0, mtime)
            marked.add(path)
        else:
            out[path] = ("f", size, mtime)
    return out, marked


def compare_trees(got: dict, want: dict, *, skip_mtime: set[bytes] | None = None,
                  limit: int = 5) -> dict:
    """Paths, types, sizes and mtimes (seconds); ``want`` mtimes of ``None`` are not compared.

    ``skip_mtime``: paths whose mtimes differ by design and are not compared.
    """
    skip_mtime = skip_mtime or set()
    missing = [p for p in want if p not in got]
    extra = [p for p in got if p not in want]
    differ = []
    for path, (kind, size, mtime) in want.items():
        have = got.get(path)
        if have is None:
            continue
        same_mtime = mtime is None or path in skip_mtime or have[2] == mtime
        if have[0] != kind or have[1] != size or not same_mtime:
            differ.append(path)
    show = lambda paths: [p.decode("utf-8", "backslashreplace") for p in paths[:limit]]  # noqa: E731
    return {
        "same": not (missing or extra or differ),
        "entries": len(got),
        "missing": len(missing), "extra": len(extra), "differ": len(differ),
        "examples": {"missing": show(missing), "extra": show(extra),
                     "differ": [(p.decode("utf-8", "backslashreplace"), want[p], got[p])
                                for p in differ[:limit]]},
    }


def columns_from_objects(objects):
    """KeyColumns of generator objects (LastModified ms -> seconds + nanoseconds)."""
    from s3erofs.columns import KeyColumns

    ms = np.array([o[2][:23] for o in objects], dtype="datetime64[ms]").astype(np.int64)
    return KeyColumns.from_keys([o[0] for o in objects], [o[1] for o in objects],
                                ms // 1000, (ms % 1000) * 1_000_000)


def save_columns(columns, path: Path) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, arena=columns.arena, offsets=columns.offsets, size=columns.size,
             mtime=columns.mtime, nsec=columns.nsec)
    tmp.replace(path)


# ---------------------------------------------------------------- child side


def proc_status() -> dict[str, int]:
    """VmRSS and VmHWM (peak) of this process, KiB."""
    text = Path("/proc/self/status").read_text()
    return {name: int(re.search(name + r":\s+(\d+)", text)[1]) for name in ("VmRSS", "VmHWM")}


def reset_peak() -> None:
    """Make VmHWM start again from the current RSS (Linux >= 4.0, clear_refs 5)."""
    Path("/proc/self/clear_refs").write_text("5")


def _import_all():
    import lxml.etree  # noqa: F401
    import pycurl  # noqa: F401

    import s3erofs.build  # noqa: F401
    import s3erofs.s3list  # noqa: F401
    import s3erofs.tree  # noqa: F401
    import s3erofs.write  # noqa: F401


def _client(url: str, bucket: str):
    from s3erofs import sign
    from s3erofs.s3client import ClientConfig, S3Client

    config = ClientConfig(endpoint_url=url, url_style="path",
                          credentials=sign.Credentials("bench", "bench"))
    return S3Client(bucket, config)


def worker_baseline() -> dict:
    _import_all()
    return {"baseline_kib": proc_status()["VmRSS"]}


def worker_listparse(url: str, bucket: str) -> dict:
    _import_all()
    from s3erofs.s3list import list_bucket

    base = proc_status()["VmRSS"]
    started = time.perf_counter()
    with _client(url, bucket) as client:
        columns = list_bucket(client, "", version=2)
    seconds = time.perf_counter() - started
    return {"keys": len(columns), "inner_s": round(seconds, 4), "baseline_kib": base,
            "peak_kib": proc_status()["VmHWM"], "columns_bytes": columns.nbytes}


def worker_phases(url: str, bucket: str, image: str) -> dict:
    """list -> tree -> write in one process, with RSS and peak after each phase."""
    _import_all()
    from s3erofs.s3list import list_bucket
    from s3erofs.tree import TreeOptions, build_tree
    from s3erofs.write import ImageOptions, write_image

    phases = {"imports": {**proc_status(), "s": 0.0}}
    started = time.perf_counter()
    with _client(url, bucket) as client:
        columns = list_bucket(client, "", version=2)
    phases["list"] = {**proc_status(), "s": round(time.perf_counter() - started, 4),
                      "columns_bytes": columns.nbytes}

    started = time.perf_counter()
    tree = build_tree(columns, TreeOptions(build_time=0))
    tree_bytes = sum(getattr(v, "nbytes", 0) for v in tree.columns.values())
    phases["tree"] = {**proc_status(), "s": round(time.perf_counter() - started, 4),
                      "tree_column_bytes": tree_bytes}

    started = time.perf_counter()
    stats = write_image(tree, image, ImageOptions(build_time=0, uuid=uuid.UUID(int=0)))
    phases["write"] = {**proc_status(), "s": round(time.perf_counter() - started, 4),
                       "image_bytes": stats.bytes}
    return {"keys": len(columns), "phases": phases}


def replicate(columns, copies: int):
    """``copies`` copies of ``columns`` under ``c0/``, ``c1/``, ... (listing order kept)."""
    from s3erofs.columns import KeyColumns

    if copies == 1:
        return columns
    width = len(str(copies - 1))
    plen = width + 2
    n = len(columns)
    lengths = np.diff(columns.offsets)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths + plen, out=offsets[1:])

    # one copy with room for the prefix before every key; the copies differ only there
    is_prefix = np.zeros(offsets[-1], bool)
    starts = offsets[:-1]
    for j in range(plen):
        is_prefix[starts + j] = True
    template = np.empty(offsets[-1], np.uint8)
    template[~is_prefix] = columns.arena
    del is_prefix

    arenas = []
    for c in range(copies):
        arena = template.copy()
        for j, byte in enumerate(f"c{c:0{width}d}/".encode()):
            arena[starts + j] = byte
        arenas.append(arena)
    bases = np.arange(copies, dtype=np.int64) * offsets[-1]
    all_offsets = np.concatenate([offsets[:1]] + [offsets[1:] + b for b in bases])
    return KeyColumns(np.concatenate(arenas), all_offsets, np.tile(columns.size, copies),
                      np.tile(columns.mtime, copies), np.tile(columns.nsec, copies))


def worker_writer(npz: str, copies: str, image: str) -> dict:
    """Columns in memory -> image file; only ``build_from_columns`` is timed."""
    import gc

    _import_all()
    from s3erofs.build import build_from_columns
    from s3erofs.columns import KeyColumns
    from s3erofs.tree import TreeOptions
    from s3erofs.write import ImageOptions

    interp = proc_status()["VmRSS"]
    with np.load(npz) as data:
        columns = KeyColumns(*(data[k] for k in ("arena", "offsets", "size", "mtime", "nsec")))
    columns = replicate(columns, int(copies))
    gc.collect()
    reset_peak()
    with_columns = proc_status()["VmRSS"]

    started = time.perf_counter()
    summary = build_from_columns(columns, image, tree_options=TreeOptions(),
                                 image_options=ImageOptions(build_time=0, uuid=uuid.UUID(int=0)))
    seconds = time.perf_counter() - started
    return {
        "entries": len(columns), "seconds": round(seconds, 4),
        "entries_per_s": round(len(columns) / seconds),
        "timings": {k: round(v, 4) for k, v in summary.timings.items()},
        "interp_kib": interp, "with_columns_kib": with_columns,
        "peak_kib": proc_status()["VmHWM"], "columns_bytes": columns.nbytes,
        "image_bytes": summary.image_bytes, "files": summary.files,
        "directories": summary.directories,
    }


def worker_touch(mib: str = "256") -> dict:
    """Seconds to touch fresh memory: page faults are slow and uneven on some VMs."""
    size = int(mib) << 20
    started = time.perf_counter()
    buf = np.zeros(size, np.uint8)
    buf[::4096] = 1
    seconds = time.perf_counter() - started
    return {"mib": int(mib), "seconds": round(seconds, 4),
            "us_per_page": round(seconds / (size // 4096) * 1e6, 3)}


WORKERS = {"touch": worker_touch, "baseline": worker_baseline, "listparse": worker_listparse,
           "phases": worker_phases, "writer": worker_writer}

if __name__ == "__main__":
    print(json.dumps(WORKERS[sys.argv[1]](*sys.argv[2:])), flush=True)
