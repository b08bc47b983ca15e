"""``s3erofs verify`` against moto: an image matches its bucket, then the bucket moves on.

The expected values come from boto3's own listing of the bucket (sizes, LastModified with
milliseconds), never from s3erofs.
"""

import motoserver
from conftest import BUILD_TIME

OBJECTS = {f"dir{i % 3}/obj{i:02d}.txt": b"x" * i for i in range(17)}
OBJECTS.update({"marker/": b"", "marker/inside.txt": b"in", "top": b"top"})  # 20 keys


def s3_args(server):
    return ["--endpoint-url", server.endpoint, "--region", "us-east-1", "--url-style", "path",
            "--access-key", server.keys.access_key, "--secret-key", server.keys.secret_key]


def build(s3erofs, server, url, img, *extra):
    result = s3erofs("build", url, img, *s3_args(server), "-T", BUILD_TIME, "-U", "clear",
                     *extra)
    assert result.returncode == 0, f"build {url} exited {result.returncode}:\n{result.stderr}"


def verify(s3erofs, server, img, url, *extra):
    return s3erofs("verify", img, url, *s3_args(server), *extra)


def iso_ns(when) -> str:
    """boto3's LastModified (ms precision) as verify prints it: UTC, nanoseconds, 'Z'."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def test_verify_matches_then_reports_each_change(moto, boto_s3, s3erofs, tmp_path):
    s3 = boto_s3()
    motoserver.seed_bucket(s3, "verify-stage", OBJECTS)
    before = {key: when for key, _, when in motoserver.list_bucket(s3, "verify-stage")}
    assert len(before) == 20
    img = tmp_path / "stage.img"
    build(s3erofs, moto, "s3://verify-stage", img)

    fresh = verify(s3erofs, moto, img, "s3://verify-stage")
    assert (fresh.returncode, fresh.stdout) == \
        (0, "20 keys checked: 0 missing, 0 extra, 0 changed\n"), fresh.stderr

    s3.delete_object(Bucket="verify-stage", Key="dir1/obj04.txt")
    s3.put_object(Bucket="verify-stage", Key="dir2/new.txt", Body=b"new")
    s3.put_object(Bucket="verify-stage", Key="dir0/obj03.txt", Body=b"y" * 10)  # was 3 bytes
    after = {key: when for key, _, when in motoserver.list_bucket(s3, "verify-stage")}
    assert after["dir0/obj03.txt"] != before["dir0/obj03.txt"]

    changed = verify(s3erofs, moto, img, "s3://verify-stage")
    assert changed.returncode == 1, changed.stderr
    assert changed.stdout.splitlines() == [
        "missing: dir2/new.txt",
        "extra: /dir1/obj04.txt",
        f"changed: dir0/obj03.txt size 3 -> 10, mtime {iso_ns(before['dir0/obj03.txt'])} -> "
        f"{iso_ns(after['dir0/obj03.txt'])}",
        "20 keys checked: 1 missing, 1 extra, 1 changed",
    ]

    quiet = verify(s3erofs, moto, img, "s3://verify-stage", "-q")
    assert quiet.returncode == 1
    assert quiet.stdout.splitlines() == changed.stdout.splitlines()[:-1]


def test_verify_with_prefix_and_keep_prefix(moto, boto_s3, s3erofs, tmp_path):
    s3 = boto_s3()
    motoserver.seed_bucket(s3, "verify-prefix", OBJECTS)
    stripped, kept = tmp_path / "stripped.img", tmp_path / "kept.img"
    build(s3erofs, moto, "s3://verify-prefix/marker", stripped)
    build(s3erofs, moto, "s3://verify-prefix/marker", kept, "--keep-prefix")

    # the prefix's own marker names the root, which verify never compares: 1 key checked
    same = verify(s3erofs, moto, stripped, "s3://verify-prefix/marker")
    assert (same.returncode, same.stdout) == \
        (0, "1 keys checked: 0 missing, 0 extra, 0 changed\n"), same.stderr
    same = verify(s3erofs, moto, kept, "s3://verify-prefix/marker/", "--keep-prefix")
    assert (same.returncode, same.stdout) == \
        (0, "2 keys checked: 0 missing, 0 extra, 0 changed\n"), same.stderr

    # judged against the wrong mapping, every path is off by the prefix
    mixed = verify(s3erofs, moto, kept, "s3://verify-prefix/marker")
    assert mixed.returncode == 1
    assert mixed.stdout.splitlines() == [
        "missing: marker/inside.txt",
        "extra: /marker/",
        "extra: /marker/inside.txt",
        "1 keys checked: 1 missing, 2 extra, 0 changed",
    ]


def test_verify_missing_bucket_is_an_s3_error(moto, s3erofs, tmp_path, boto_s3):
    s3 = boto_s3()
    motoserver.seed_bucket(s3, "verify-gone", {"a": b"a"})
    img = tmp_path / "gone.img"
    build(s3erofs, moto, "s3://verify-gone", img)

    result = verify(s3erofs, moto, img, "s3://verify-no-such-bucket")
    assert result.returncode == 3
    assert "NoSuchBucket" in result.stderr
    assert result.stdout == ""


def test_verify_corrupt_image_fails_before_listing(moto, s3erofs, tmp_path):
    img = tmp_path / "zero.img"
    img.write_bytes(bytes(8192))
    result = verify(s3erofs, moto, img, "s3://verify-never-listed")
    assert (result.returncode, result.stdout) == (5, "")
    assert result.stderr == ("s3erofs: ERROR: bad magic 0x00000000 at offset 1024 "
                             "(0xe0f5e1e2 expected)\n")
