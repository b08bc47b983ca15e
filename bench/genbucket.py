"""Deterministic generator of realistic S3 bucket listings for benchmarks and tests.

``generate(n, seed)`` returns ``n`` objects as ``(key bytes, size, LastModified)`` tuples in
UTF-8 byte order, the order S3 lists them in. The shape follows real buckets: keys 1 to 6
components deep, about 1,000 directories per million keys, names of 5 to 80 bytes (UTF-8 with
accents, CJK and emoji unless ``ascii_only``), log-distributed sizes up to 10 GiB with some
empty objects, millisecond LastModified values and some ``dir/`` markers. With ``per_dir=K``
the files are spread evenly instead (about K per directory, n / K directories), for tools that
slow down on big directories. Every key is unique,
no key is also a prefix of another (``a`` and ``a/b``), and no key has ``//``, ``.`` or ``..``.

Results are cached under ``bench/.cache/`` (a pickle per parameter set), so a million keys
load in about a second after the first run.
"""

from __future__ import annotations

import gc
import logging
import os
import pickle
import random
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # bump when the output for given parameters changes
CACHE_DIR = Path(os.environ.get("S3EROFS_BENCH_CACHE_DIR", Path(__file__).parent / ".cache"))

MAX_DEPTH = 6  # components of the deepest key
MIN_NAME, MAX_NAME = 5, 80  # bytes per name component
MAX_SIZE = 10 << 30
DIRS_PER_KEY = 1 / 1000
MARKER_SHARE = 0.3  # share of directories that have a "dir/" marker object
EMPTY_SHARE = 0.03  # share of files with size 0

# 2015-01-01 .. 2025-01-01 in epoch milliseconds
MTIME_RANGE_MS = (1_420_070_400_000, 1_735_689_600_000)

ASCII_WORDS = (
    "data report backup logs images img photo video export archive build release config "
    "assets static raw processed final draft part chunk shard index user customer invoice "
    "2023 2024 Q1 Q4 v2 prod staging tmp cache model checkpoint dataset train test eval "
    "IMG DSC README LICENSE Makefile main lib src docs notes scan thumbnail"
).split()
UTF8_WORDS = (
    "été données café naïve résumé Ärger größe señal über Łódź Ελλάδα данные "
    "日本 東京 写真 データ 报告 文件 사진 🎉 📷 🚀 ✓ ★ ½ €uro"
).split()
PUNCT_UTF8 = (" ", " ", "(1)", " + ", " & ", ", ")
SEPARATORS = ("-", "_", ".", "")
EXTENSIONS = (
    ".jpg", ".png", ".json", ".csv", ".parquet", ".txt", ".log", ".gz", ".tar", ".mp4", ".pdf",
    ".bin", ".html", ".xml", "",
)
TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"


def generate(
    n: int, seed: int = 0, *, ascii_only: bool = False, flat: bool = False, per_dir: int = 0
) -> list[tuple[bytes, int, str]]:
    """Return ``n`` objects ``(key, size, last_modified)`` sorted by key bytes.

    :param n: number of objects (directory markers included), at least 1.
    :param seed: same parameters, same output on every machine.
    :param ascii_only: names use only letters, digits, ``-``, ``_`` and ``.`` (no spaces).
    :param flat: every key sits in one directory: ``flat/NNNNNN-name``.
    :param per_dir: 0 (default) draws directory sizes from a skewed (Zipf-like) distribution;
        K > 0 makes about ``n / K`` directories and deals the files out evenly among them
        and the root (ignored when ``flat``).
    """
    if n < 1:
        raise ValueError(f"generate: n must be at least 1, got {n}")
    if per_dir < 0:
        raise ValueError(f"generate: per_dir must be 0 or positive, got {per_dir}")
    per_dir = 0 if flat else per_dir
    # existing parameter sets keep their cache names; only per_dir adds a suffix
    spread = f"-p{per_dir}" if per_dir else ""
    name = f"bucket-v{FORMAT_VERSION}-n{n}-s{seed}-a{int(ascii_only)}-f{int(flat)}{spread}.pkl"
    path = CACHE_DIR / name
    if path.exists():
        with path.open("rb") as f:
            gc_was_enabled = gc.isenabled()
            gc.disable()
            try:
                return pickle.load(f)
            finally:
                if gc_was_enabled:
                    gc.enable()

    # millions of new objects would make the cyclic GC rescan the heap over and over
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        objects = _generate(n, seed, ascii_only, flat, per_dir)
    finally:
        if gc_was_enabled:
            gc.enable()

    # write beside and rename, so a killed run never leaves a truncated cache file
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with tmp.open("wb") as f:
        pickle.dump(objects, f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
    return objects


def _generate(n: int, seed: int, ascii_only: bool, flat: bool,
              per_dir: int = 0) -> list[tuple[bytes, int, str]]:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    names = _NameMaker(nrng, ascii_only)

    if flat:
        width = max(6, len(str(n - 1)))
        keys = [f"flat/{_fit(f'{i:0{width}d}-{names.name()}', '')}".encode() for i in range(n)]
    else:
        keys = _tree_keys(n, rng, nrng, names, per_dir)

    # sizes and times are drawn independently of the names, so they can be paired with the
    # keys after sorting (much cheaper than sorting tuples); markers get size 0 then
    keys.sort()
    sizes = _sizes(n, nrng).tolist()
    mtimes = _last_modified(n, nrng)
    return [
        (key, 0 if key[-1:] == b"/" else size, mtime)
        for key, size, mtime in zip(keys, sizes, mtimes, strict=True)
    ]


def _tree_keys(
    n: int, rng: random.Random, nrng: np.random.Generator, names: _NameMaker, per_dir: int = 0
) -> list[bytes]:
    ndirs = max(1, round(n / per_dir) if per_dir else round(n * DIRS_PER_KEY))
    dirs = _directories(ndirs, rng, names)
    taken = set(dirs)  # paths already used by a directory or a file

    nmarkers = min(n - 1, sum(1 for _ in range(ndirs) if rng.random() < MARKER_SHARE))
    markers = [dirs[i] + "/" for i in sorted(rng.sample(range(ndirs), nmarkers))]
    nfiles = n - nmarkers

    if per_dir:
        # even: deal the files out round-robin over the directories and the root (index -1)
        where = nrng.permutation(np.arange(nfiles) % (ndirs + 1)) - 1
    else:
        # Zipf-like directory popularity: a few huge directories, many small ones; the root
        # (index -1 below) gets its share too, so depth-1 keys exist
        weights = 1.0 / np.arange(1, ndirs + 2) ** 0.9
        nrng.shuffle(weights)
        where = nrng.choice(ndirs + 1, size=nfiles, p=weights / weights.sum()) - 1

    # make sure the deepest directory (depth 5, so depth-6 keys) holds a file
    if len(dirs) >= MAX_DEPTH - 1:
        where[0] = len(dirs) - 1

    parents = [d + "/" for d in dirs] + [""]  # index -1 is the root
    files = []
    for d in where.tolist():
        parent = parents[d]
        path = parent + names.name()
        while path in taken:
            path = parent + names.name()
        taken.add(path)
        files.append(path.encode())

    return files + [m.encode() for m in markers]


def _directories(ndirs: int, rng: random.Random, names: _NameMaker) -> list[str]:
    """Return ``ndirs`` directory paths (no trailing slash), 1 to 5 components deep.

    The deepest chain comes last, so that ``dirs[-1]`` is 5 deep when there are enough
    directories for one.
    """
    chain_len = min(ndirs, MAX_DEPTH - 1)
    dirs: list[str] = []
    depth: list[int] = []
    taken: set[str] = set()
    parents = [-1]  # directories that may still have children (-1 is the root)
    for _ in range(ndirs - chain_len):
        _add_dir(dirs, depth, taken, rng.choice(parents), names)
        if depth[-1] < MAX_DEPTH - 1:
            parents.append(len(dirs) - 1)

    parent = -1
    for _ in range(chain_len):
        _add_dir(dirs, depth, taken, parent, names)
        parent = len(dirs) - 1
    return dirs


def _add_dir(dirs: list[str], depth: list[int], taken: set[str], parent: int,
             names: _NameMaker) -> None:
    base = dirs[parent] + "/" if parent >= 0 else ""
    path = base + names.name(directory=True)
    while path in taken:
        path = base + names.name(directory=True)
    taken.add(path)
    dirs.append(path)
    depth.append(depth[parent] + 1 if parent >= 0 else 1)


class _NameMaker:
    """Names of 5 to 80 UTF-8 bytes built from words, tokens and extensions.

    Names are drawn in numpy batches (a Python loop per name would take ~10 s per million);
    ``name()`` hands them out one at a time and refills the batch when it runs dry.
    """

    MAX_BATCH = 65536

    def __init__(self, nrng: np.random.Generator, ascii_only: bool) -> None:
        self.nrng = nrng
        words = ASCII_WORDS if ascii_only else ASCII_WORDS * 3 + UTF8_WORDS
        seps = SEPARATORS * 6 if ascii_only else SEPARATORS * 6 + PUNCT_UTF8
        self.words = np.array(words, dtype=object)
        self.seps = np.array(seps, dtype=object)
        self.exts = np.array(EXTENSIONS, dtype=object)
        self.tokens = self._tokens(4096)
        self.batches: dict[bool, list[str]] = {False: [], True: []}
        self.batch_size = {False: 1024, True: 1024}  # doubles on each refill

    def name(self, directory: bool = False) -> str:
        batch = self.batches[directory]
        if not batch:
            size = self.batch_size[directory]
            self.batch_size[directory] = min(2 * size, self.MAX_BATCH)
            batch.extend(self._batch(size, directory))
            batch.reverse()
        return batch.pop()

    def _batch(self, count: int, directory: bool) -> list[str]:
        nrng = self.nrng
        extra = nrng.choice(4, size=count, p=(0.2, 0.4, 0.2, 0.2))
        columns = [nrng.choice(self.words, size=count)]
        for j in range(1, 4):
            part = np.where(
                nrng.random(count) < 0.5,
                nrng.choice(self.words, size=count),
                nrng.choice(self.tokens, size=count),
            )
            columns.append(np.where(extra >= j, nrng.choice(self.seps, size=count), ""))
            columns.append(np.where(extra >= j, part, ""))

        # long tail: a few names run to the 80-byte limit
        tail = np.full(count, "", dtype=object)
        long = np.nonzero(nrng.random(count) < 0.03)[0]
        for _ in range(12):
            tail[long] = tail[long] + nrng.choice(self.words, size=len(long)) + "_"
        columns.append(tail)

        if not directory:
            columns.append(nrng.choice(self.exts, size=count))
        pad = nrng.choice(self.tokens, size=count).tolist()
        names = ["".join(parts) for parts in zip(*(c.tolist() for c in columns), strict=True)]
        return [_fit(name, p) for name, p in zip(names, pad, strict=True)]

    def _tokens(self, count: int) -> np.ndarray:
        chars = np.array(list(TOKEN_CHARS), dtype=object)
        lengths = self.nrng.choice((2, 4, 6, 8, 12), size=count)
        return np.array(
            ["".join(self.nrng.choice(chars, size=k)) for k in lengths.tolist()], dtype=object
        )


def _fit(name: str, pad: str) -> str:
    """Pad (with ``pad``, 2+ bytes) or cut ``name`` to 5..80 UTF-8 bytes at a character boundary."""
    if name.isascii() and MIN_NAME <= len(name) <= MAX_NAME:
        return name  # the common case, without encoding
    data = name.encode()
    while len(data) < MIN_NAME:
        data += pad.encode()
    if len(data) > MAX_NAME:
        data = data[:MAX_NAME].decode("utf-8", errors="ignore").encode()
    return data.decode()


def _sizes(n: int, nrng: np.random.Generator) -> np.ndarray:
    # log-normal around ~30 KiB with a long tail, clipped to 10 GiB
    sizes = np.exp(nrng.normal(10.3, 3.0, size=n)).astype(np.float64)
    sizes = np.minimum(sizes, MAX_SIZE).astype(np.int64)
    sizes[nrng.random(n) < EMPTY_SHARE] = 0
    return sizes


def _last_modified(n: int, nrng: np.random.Generator) -> list[str]:
    ms = nrng.integers(*MTIME_RANGE_MS, size=n, dtype=np.int64)
    text = np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms")
    return [t + "Z" for t in text.tolist()]


def check(objects: list[tuple[bytes, int, str]]) -> dict[str, int]:
    """Raise ``ValueError`` naming the first key that breaks a generator promise; else stats."""
    keys = [key for key, _, _ in objects]
    if any(a >= b for a, b in zip(keys, keys[1:], strict=False)):
        raise ValueError("keys are not strictly increasing in byte order")
    prefixes = set()
    for key in keys:
        parts = key.rstrip(b"/").split(b"/")
        for i in range(1, len(parts)):
            prefixes.add(b"/".join(parts[:i]))
    depths = {}
    for key, size, mtime in objects:
        parts = key.rstrip(b"/").split(b"/")
        if any(p in (b"", b".", b"..") for p in parts) or key.startswith(b"/"):
            raise ValueError(f"key {key!r} has an empty, '.' or '..' component")
        names = parts[1:] if parts[0] == b"flat" else parts  # flat=True's one directory
        if any(not MIN_NAME <= len(p) <= MAX_NAME for p in names):
            raise ValueError(f"key {key!r} has a name outside 5..80 bytes")
        if not key.endswith(b"/") and key in prefixes:
            raise ValueError(f"key {key!r} is both a file and a prefix")
        if not 0 <= size <= MAX_SIZE or (key.endswith(b"/") and size):
            raise ValueError(f"key {key!r} has size {size}")
        if len(mtime) != 24 or mtime[19] != "." or not mtime.endswith("Z"):
            raise ValueError(f"key {key!r} has LastModified {mtime!r}")
        depths[len(parts)] = depths.get(len(parts), 0) + 1
    return {
        "keys": len(keys),
        "directories": len(prefixes),
        "markers": sum(k.endswith(b"/") for k in keys),
        "empty": sum(1 for _, size, _ in objects if size == 0),
        "non_ascii": sum(1 for k in keys if not k.isascii()),
        "max_size": max(size for _, size, _ in objects),
        **{f"depth{d}": c for d, c in sorted(depths.items())},
    }


if __name__ == "__main__":
    import argparse
    import time

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ascii", action="store_true")
    parser.add_argument("--flat", action="store_true")
    parser.add_argument("--per-dir", type=int, default=0,
                        help="spread files evenly, about this many per directory")
    parser.add_argument("--show", type=int, default=10, help="print this many objects")
    parser.add_argument("--check", action="store_true", help="verify the promises, print stats")
    args = parser.parse_args()
    start = time.perf_counter()
    objs = generate(args.keys, args.seed, ascii_only=args.ascii, flat=args.flat,
                    per_dir=args.per_dir)
    print(f"{len(objs)} objects in {time.perf_counter() - start:.2f}s")
    if args.check:
        print(check(objs))
    for key, size, mtime in objs[:: max(1, len(objs) // args.show)]:
        print(f"{size:>12} {mtime} {key.decode()}")
