"""Shared fixtures: moto servers, a seeded bucket, the CLI runner, and mounting.

``tests/`` is put on sys.path so test modules can ``import motoserver, oracle, faultserver``.
Tests under tests/integration get the ``integration`` marker automatically.
"""

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
sys.path.insert(0, str(TESTS))

import motoserver  # noqa: E402
import oracle  # noqa: E402

# -T of the integration builds: implicit directories and the root get this mtime
BUILD_TIME = 1_700_000_000

MIB = 1 << 20


def pytest_configure(config):
    config.addinivalue_line("markers", "integration: talks to a local S3 server (moto)")
    config.addinivalue_line("markers", "mount: needs root and the kernel's erofs driver")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if (TESTS / "integration") in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    """moto with signature checking on; ``moto.keys`` is the good IAM user key."""
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with motoserver.MotoServer(check_signatures=True, log_path=str(log_path)) as server:
        yield server


@pytest.fixture(scope="session")
def moto_nocheck(tmp_path_factory):
    """moto that accepts any signature (SigV2 tests: checking on answers SigV2 with 500)."""
    log_path = tmp_path_factory.mktemp("moto-nocheck") / "moto.log"
    with motoserver.MotoServer(check_signatures=False, log_path=str(log_path)) as server:
        yield server


@pytest.fixture(scope="session")
def boto_s3(moto):
    """``boto_s3(server=moto, keys=server.keys)`` -> a path-style boto3 S3 client."""
    def make(server=None, keys=None):
        return (server or moto).client("s3", keys=keys)
    return make


def big_objects() -> dict:
    """The seeded bucket's keys and bodies: ~2,600 plain keys (no key is also a prefix).

    Covers directory markers (``photos/``, ``photos/2024/``, an empty ``empty/``), depth 4,
    0-byte and multi-MiB objects, unicode, and characters that need URL encoding.
    """
    objects = {"photos/": b"", "photos/2024/": b"", "empty/": b"", "README": b"read me\n",
               "top level.txt": b""}

    # 20 x 10 x 12 = 2,400 keys three directories deep; sizes 0..299, every 10th empty
    for i in range(20):
        for j in range(10):
            for k in range(12):
                n = (i * 120 + j * 12 + k)
                objects[f"bulk/d{i:02d}/e{j:02d}/f{k:03d}.dat"] = b"x" * (n * 37 % 300)

    for n in range(100):
        objects[f"photos/2024/img_{n:04d}.jpg"] = b"j" * (n + 1)
        objects[f"photos/2023/img_{n:04d}.jpg"] = b""
    for n in range(10):
        objects[f"deep/l1/l2/l3/leaf{n}.txt"] = b"d" * n

    objects["blobs/three.bin"] = bytes(3 * MIB)
    objects["blobs/five.bin"] = bytes(5 * MIB)

    names = ["café.txt", "日本語/ファイル.txt", "한글.txt", "emoji 😀.txt", "naïve/é/ü.txt",
             "with space.txt", "dir with space/inner+plus/x.txt", "a+b.txt", "100%.txt",
             "%41.txt", "hash#tag.txt", "a&b.txt", "k=v.txt", "tilde~.txt", "copy (1).txt",
             "semi;colon.txt", "quote'.txt", "comma,.txt", "at@.txt", "dollar$.txt",
             "excl!.txt", "star*.txt", "brackets[1].txt", "braces{x}.txt", "caret^.txt",
             "back`tick.txt", "pipe|.txt", "less<more>.txt", "sort/a-b.txt", "sort/a.txt",
             "sort/a/b.txt", "sort/a0.txt", "sort/A.txt", "sort/~z.txt"]
    for n, name in enumerate(names):
        objects[f"names/{name}"] = b"n" * n
    return objects


@dataclass
class SeededBucket:
    """A bucket on ``server`` and its listing as boto3 reports it (the expected truth)."""

    server: motoserver.MotoServer
    name: str
    listing: list  # [(key, size, last_modified datetime with ms)]

    def sizes(self) -> dict:
        return {key: size for key, size, _ in self.listing}

    def last_modified(self, key: str):
        return next(when for k, _, when in self.listing if k == key)


@pytest.fixture(scope="session")
def big(moto):
    """Bucket ``big`` on ``moto`` with ``big_objects()``; ``big.listing`` is the truth."""
    client = moto.client("s3")
    motoserver.seed_bucket(client, "big", big_objects(), threads=8)
    listing = motoserver.list_bucket(client, "big")
    assert len(listing) >= 2500, f"seeded {len(listing)} keys"
    assert any(when.microsecond for _, _, when in listing), \
        "moto listed no millisecond in LastModified: the ms patch in motoserver.py is broken"
    return SeededBucket(moto, "big", listing)


def cli_env(extra: dict | None = None) -> dict:
    """The environment for a CLI run: no AWS settings of the caller, s3erofs on the path."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env["AWS_CONFIG_FILE"] = "/nonexistent/aws-config"
    env["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent/aws-credentials"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["TZ"] = "UTC"
    env.update(extra or {})
    return env


def run_s3erofs(*args, env: dict | None = None, timeout: float = 600):
    """``python -m s3erofs ARGS`` -> CompletedProcess (stdout/stderr as text)."""
    return subprocess.run([sys.executable, "-m", "s3erofs", *map(str, args)],
                          capture_output=True, text=True, errors="replace",
                          env=cli_env(env), timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def s3erofs():
    """``s3erofs(*args, env=None)`` runs the CLI in a subprocess; see run_s3erofs."""
    return run_s3erofs


@pytest.fixture
def mountpoint():
    """``mountpoint(img) -> dir``: mounts read-only, unmounted at the end of the test.

    Skips the test with the reason when this machine cannot mount EROFS.
    """
    with contextlib.ExitStack() as stack:
        yield lambda img: stack.enter_context(oracle.mounted(img))
