"""Parity with mkfs.erofs 1.9: the same bucket, the same command line, the same tree.

Both tools build from one moto bucket with `--s3=...,urlstyle=path --clean=0 -T T --mkfs-time
--all-root -U UUID`; dump.erofs 1.9 then describes every path of both images and the records
are compared entry by entry. The keys are ones mkfs.erofs handles correctly (ASCII, no space,
no clash); where mkfs.erofs is wrong (milliseconds read as nanoseconds) the test says so.
"""

import os
import re
import subprocess

import erofs19
import motoserver
import pytest
from conftest import cli_env, run_s3erofs

UUID = "00000000-0000-0000-0000-0000000000a1"
BUILD_TIME = 1_700_000_000
OBJECTS = {
    "README.txt": 1200,
    "a/b/c.txt": 900,
    "a/b/d.bin": 0,
    "a/e": 3 * 1024 * 1024,
    "docs/deep/er/f": 14,
    "m/": 0,
    "m/n/": 0,
    "m/n/o": 500,
    "m/n/implicit/p": 7,
    "photos/": 0,
    "photos/2024/x.jpg": 1700,
    "z-last": 1,
}

DUMP_FIELDS = {
    "size": re.compile(r"Size: (\d+)"),
    "links": re.compile(r"Links: (\d+)"),
    "uid": re.compile(r"Uid: (\d+)"),
    "gid": re.compile(r"Gid: (\d+)"),
    "access": re.compile(r"Access: (\S+)"),
    "timestamp": re.compile(r"Timestamp: (\S+ \S+)"),
}


@pytest.fixture(scope="module")
def parity_bucket(moto_nocheck):
    client = moto_nocheck.client("s3")
    motoserver.seed_bucket(client, "parity", {k: bytes(n) for k, n in OBJECTS.items()})
    return moto_nocheck


def mkfs_args(endpoint):
    return [f"--s3={endpoint},urlstyle=path", "--clean=0", "-b", "4096", "-T", str(BUILD_TIME),
            "--mkfs-time", "--all-root", "-U", UUID]


def dump_paths(img) -> dict:
    """{path: {field: value}} for every path, from dump.erofs 1.9 (TZ=UTC)."""
    dump = str(erofs19.tool("dump.erofs"))
    env = dict(os.environ, TZ="UTC")
    records = {}
    for path in walk_paths(dump, img, env):
        out = subprocess.run([dump, f"--path={path}", str(img)], capture_output=True,
                             text=True, env=env, check=True).stdout
        records[path] = {name: rx.search(out).group(1) for name, rx in DUMP_FIELDS.items()}
    return records


def walk_paths(dump, img, env, top="/"):
    """Every path under ``top`` via ``dump.erofs --ls --path=DIR`` (names, types)."""
    yield top
    out = subprocess.run([dump, "--ls", f"--path={top}", str(img)], capture_output=True,
                         text=True, env=env, check=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if len(fields) != 3 or not fields[0].isdigit() or fields[2] in (".", ".."):
            continue
        path = top.rstrip("/") + "/" + fields[2]
        if fields[1] == "2":  # directory
            yield from walk_paths(dump, img, env, path)
        else:
            yield path


def test_same_tree_as_mkfs_erofs(parity_bucket, tmp_path):
    mkfs = erofs19.tool("mkfs.erofs")
    keys = parity_bucket.keys
    env = cli_env({"AWS_ACCESS_KEY_ID": keys.access_key,
                   "AWS_SECRET_ACCESS_KEY": keys.secret_key})
    theirs, ours = tmp_path / "mkfs.erofs.img", tmp_path / "s3erofs.img"

    subprocess.run([str(mkfs), *mkfs_args(parity_bucket.endpoint), str(theirs), "parity"],
                   check=True, capture_output=True, env=env, timeout=120)
    result = run_s3erofs("mkfs", *mkfs_args(parity_bucket.endpoint), ours, "parity",
                         env={"AWS_ACCESS_KEY_ID": keys.access_key,
                              "AWS_SECRET_ACCESS_KEY": keys.secret_key})
    assert result.returncode == 0, result.stderr
    erofs19.fsck(ours, 4096)

    expected, actual = dump_paths(theirs), dump_paths(ours)
    assert sorted(actual) == sorted(expected)
    # the root and the unmarked a, a/b, docs, docs/deep, docs/deep/er, m/n/implicit, photos/2024
    assert len(actual) == len(OBJECTS) + 8
    for path, theirs_fields in expected.items():
        ours_fields = actual[path]
        for name in ("size", "links", "uid", "gid", "access"):
            assert ours_fields[name] == theirs_fields[name], (path, name)
        # mkfs.erofs stores ".123Z" as 123 ns; seconds agree, s3erofs keeps 123000000 ns
        assert ours_fields["timestamp"][:19] == theirs_fields["timestamp"][:19], path
    assert actual["/m/n/implicit"]["access"] == expected["/m/n/implicit"]["access"]
    assert actual["/"]["access"].startswith("0777")
