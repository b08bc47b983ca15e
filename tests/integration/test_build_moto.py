"""Build images of a seeded moto bucket with the CLI and judge them with fsck, dump and mount.

The truth is the bucket listing as boto3 reports it (``big.listing``); the images are read
back by erofs-utils (fsck.erofs, dump.erofs) and the kernel (a read-only loop mount).
"""

import filecmp
import os
import time

import pytest
from conftest import BUILD_TIME, MIB
from oracle import (
    assert_zeros,
    diff_trees,
    dump_inode,
    dump_superblock,
    expected_tree,
    fsck,
    mtime_ns,
    walk_tree,
)

UUID = "3a1e5c1d-7b2a-4f4e-9d6c-0123456789ab"


def build_args(server, url, img, *extra, keys=None):
    keys = keys or server.keys
    return [
        "build", url, img,
        "--endpoint-url", server.endpoint, "--region", "us-east-1", "--url-style", "path",
        "--access-key", keys.access_key, "--secret-key", keys.secret_key,
        "-T", BUILD_TIME, *extra,
    ]


def build_ok(s3erofs, server, url, img, *extra):
    result = s3erofs(*build_args(server, url, img, *extra))
    assert result.returncode == 0, f"build {url} exited {result.returncode}:\n{result.stderr}"
    assert os.path.getsize(img) > 0
    return result


def assert_tree(root, expected):
    actual = walk_tree(root)
    assert actual == expected, "image differs from the bucket:\n" + diff_trees(actual, expected)


@pytest.fixture(scope="module")
def default_image(big, s3erofs, tmp_path_factory, pytestconfig):
    """The whole bucket with ListObjectsV2 and 1000 keys a page, timed."""
    img = tmp_path_factory.mktemp("default") / "big.img"
    started = time.perf_counter()
    build_ok(s3erofs, big.server, "s3://big", img, "--list-version", "2", "--max-keys", "1000")
    seconds = time.perf_counter() - started

    count = len(big.listing)
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\n[s3erofs] built {count} objects from moto in {seconds:.2f} s: "
              f"{count / seconds:.0f} objects/s (process start included)")
    return img


def test_default_build_matches_bucket(big, default_image, mountpoint):
    fsck(default_image)
    root = mountpoint(default_image)

    assert_tree(root, expected_tree(big.listing, build_time=BUILD_TIME))
    assert_zeros(os.path.join(root, "blobs/three.bin"), 3 * MIB)
    unicode_key = "names/日本語/ファイル.txt"
    assert_zeros(os.path.join(root, unicode_key), big.sizes()[unicode_key])


@pytest.mark.parametrize("version,max_keys", [("2", "7"), ("1", "1000"), ("1", "7")])
def test_listing_modes_give_the_same_tree(big, s3erofs, tmp_path, mountpoint, version,
                                          max_keys):
    img = tmp_path / "big.img"
    build_ok(s3erofs, big.server, "s3://big", img, "--list-version", version,
             "--max-keys", max_keys)

    fsck(img)
    assert_tree(mountpoint(img), expected_tree(big.listing, build_time=BUILD_TIME))


def test_dump_shows_exact_size_and_mtime(big, default_image):
    for key in ("blobs/five.bin", "names/emoji 😀.txt", "bulk/d19/e09/f011.dat"):
        info = dump_inode(default_image, "/" + key)

        assert info["type"] == "regular file"
        assert info["size"] == big.sizes()[key]
        assert info["mtime_ns"] == mtime_ns(big.last_modified(key))
        assert (info["mode"], info["uid"], info["gid"], info["nlink"]) == (0o644, 0, 0, 1)

    # a marker directory keeps the marker's mtime; photos holds 2023 and 2024
    info = dump_inode(default_image, "/photos")
    assert info["type"] == "directory"
    assert info["mtime_ns"] == mtime_ns(big.last_modified("photos/"))
    assert (info["mode"], info["nlink"]) == (0o755, 4)

    # an implicit directory gets the -T time
    info = dump_inode(default_image, "/bulk")
    assert (info["mtime"], info["mtime_nsec"], info["nlink"]) == (BUILD_TIME, 0, 22)


def test_millisecond_mtimes_are_kept_as_nanoseconds(big, default_image):
    # moto stamps objects with ms; at least one listed object must have a non-zero fraction
    key = next(k for k, _, when in big.listing if when.microsecond and not k.endswith("/"))
    info = dump_inode(default_image, "/" + key)

    assert info["mtime_nsec"] == big.last_modified(key).microsecond * 1000
    assert info["mtime_nsec"] % 1_000_000 == 0


@pytest.mark.parametrize("block_size", [512, 1024, 4096])
def test_block_sizes_mount(big, s3erofs, tmp_path, mountpoint, block_size):
    img = tmp_path / "big.img"
    build_ok(s3erofs, big.server, "s3://big", img, "-b", block_size)

    assert os.path.getsize(img) % block_size == 0
    root = mountpoint(img)
    assert_tree(root, expected_tree(big.listing, build_time=BUILD_TIME))
    assert_zeros(os.path.join(root, "blobs/five.bin"), 5 * MIB)

    # fsck last: Debian 12's fsck.erofs 1.5 reads only 4096; .ci/run builds 1.9 for the rest
    fsck(img)
    assert dump_superblock(img)["block_size"] == block_size


def test_block_size_65536_passes_fsck(big, s3erofs, tmp_path):
    # the kernel mounts only block sizes up to the page size (4096 here): fsck and dump only
    img = tmp_path / "big.img"
    build_ok(s3erofs, big.server, "s3://big", img, "--block-size", "65536")

    fsck(img)
    superblock = dump_superblock(img)
    assert superblock["block_size"] == superblock["dump_block_size"] == 65536
    assert superblock["inode_count"] == len(expected_tree(big.listing))
    assert os.path.getsize(img) == superblock["blocks"] * 65536

    info = dump_inode(img, "/blobs/three.bin")
    assert (info["size"], info["mtime_ns"]) == (3 * MIB, mtime_ns(big.last_modified(
        "blobs/three.bin")))


def test_uid_and_gid_options(big, s3erofs, tmp_path, mountpoint):
    img = tmp_path / "owned.img"
    build_ok(s3erofs, big.server, "s3://big", img, "--uid", "70000", "--gid", "80000")

    fsck(img)
    expected = expected_tree(big.listing, build_time=BUILD_TIME, uid=70000, gid=80000)
    assert_tree(mountpoint(img), expected)


def test_prefix_becomes_the_root(big, s3erofs, tmp_path, mountpoint):
    img = tmp_path / "photos.img"
    build_ok(s3erofs, big.server, "s3://big/photos/", img)

    fsck(img)
    expected = expected_tree(big.listing, prefix=b"photos/", build_time=BUILD_TIME)
    assert sorted(p for p in expected if b"/" not in p) == [b"", b"2023", b"2024"]
    assert_tree(mountpoint(img), expected)


def test_keep_prefix_keeps_full_paths(big, s3erofs, tmp_path, mountpoint):
    img = tmp_path / "photos.img"
    build_ok(s3erofs, big.server, "s3://big/photos/", img, "--keep-prefix")

    fsck(img)
    listing = [item for item in big.listing if item[0].startswith("photos/")]
    expected = expected_tree(listing, build_time=BUILD_TIME)
    assert sorted(p for p in expected if b"/" not in p) == [b"", b"photos"]
    assert_tree(mountpoint(img), expected)


def test_wrong_secret_fails_and_leaves_nothing(big, s3erofs, tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    keys = big.server.keys
    wrong = type(keys)(keys.access_key, keys.secret_key[:-4] + "AAAA")

    result = s3erofs(*build_args(big.server, "s3://big", target / "big.img", keys=wrong))

    assert result.returncode == 3, result.stderr
    assert "SignatureDoesNotMatch" in result.stderr
    assert os.listdir(target) == []


def test_unknown_access_key_is_named(big, s3erofs, tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    unknown = type(big.server.keys)("AKIAUNKNOWNUNKNOWN00", "x" * 40)

    result = s3erofs(*build_args(big.server, "s3://big", target / "big.img", keys=unknown))

    assert result.returncode == 3, result.stderr
    assert "InvalidAccessKeyId" in result.stderr
    assert os.listdir(target) == []


def test_missing_bucket_is_named(big, s3erofs, tmp_path):
    result = s3erofs(*build_args(big.server, "s3://no-such-bucket", tmp_path / "x.img"))

    assert result.returncode == 3, result.stderr
    assert "NoSuchBucket" in result.stderr
    assert not (tmp_path / "x.img").exists()


def test_empty_bucket_gives_only_the_root(moto, boto_s3, s3erofs, tmp_path, mountpoint):
    boto_s3().create_bucket(Bucket="empty-bucket")
    img = tmp_path / "empty.img"
    build_ok(s3erofs, moto, "s3://empty-bucket", img)

    fsck(img)
    assert dump_superblock(img)["inode_count"] == 1
    root = mountpoint(img)
    assert walk_tree(root) == {b"": ("dir", 0o755, None, 0, 0, BUILD_TIME * 10**9, 2)}


def test_fixed_time_and_uuid_are_reproducible(big, s3erofs, tmp_path):
    first, second = tmp_path / "one.img", tmp_path / "two.img"
    for img in (first, second):
        build_ok(s3erofs, big.server, "s3://big", img, "-U", UUID, "-L", "s3erofs-test")

    assert filecmp.cmp(first, second, shallow=False)
    superblock = dump_superblock(first)
    assert (superblock["uuid"], superblock["build_time"]) == (UUID, BUILD_TIME)
    assert superblock["volume_name"] == b"s3erofs-test"
