"""Credentials and signatures against moto: session tokens, environment, SigV2, --debug."""

import re
import urllib.error
import urllib.request

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from conftest import BUILD_TIME, big_objects
from motoserver import REGION, Keys, list_bucket, seed_bucket
from oracle import diff_trees, expected_tree, fsck, walk_tree

SIGNATURE_HEX = re.compile(r"Signature=[0-9a-fA-F]{64}")


def build_args(server, url, img, keys, *extra):
    args = ["build", url, img, "--endpoint-url", server.endpoint, "--region", REGION,
            "--url-style", "path", "--access-key", keys.access_key,
            "--secret-key", keys.secret_key, "-T", BUILD_TIME, *extra]
    if keys.session_token:
        args += ["--session-token", keys.session_token]
    return args


def assert_tree(root, expected):
    actual = walk_tree(root)
    assert actual == expected, "image differs from the bucket:\n" + diff_trees(actual, expected)


def test_moto_checks_the_uri_as_sent(moto, big):
    # the test server's checker (patched in motoserver.py) must still refuse a request whose
    # wire URI differs from the signed one, or the signing tests below could not fail
    signed = f"{moto.endpoint}/big?list-type=2&max-keys=1&prefix=photos%2F"
    request = AWSRequest(method="GET", url=signed)
    keys = moto.keys
    S3SigV4Auth(Credentials(keys.access_key, keys.secret_key), "s3", REGION).add_auth(request)
    headers = dict(request.headers.items())

    with urllib.request.urlopen(urllib.request.Request(signed, headers=headers)) as response:
        assert b"<Key>photos/</Key>" in response.read()

    with pytest.raises(urllib.error.HTTPError) as failure:
        urllib.request.urlopen(urllib.request.Request(signed.replace("%2F", "/"),
                                                      headers=headers))
    assert failure.value.code == 403
    assert b"SignatureDoesNotMatch" in failure.value.read()


def test_assume_role_credentials_with_token(moto, big, s3erofs, tmp_path, mountpoint):
    img = tmp_path / "role.img"
    result = s3erofs(*build_args(moto, "s3://big/names/", img, moto.role_keys))

    assert result.returncode == 0, result.stderr
    fsck(img)
    expected = expected_tree(big.listing, prefix=b"names/", build_time=BUILD_TIME)
    assert_tree(mountpoint(img), expected)


def test_assume_role_key_without_its_token_is_refused(moto, big, s3erofs, tmp_path):
    role = moto.role_keys
    img = tmp_path / "role.img"
    result = s3erofs(*build_args(moto, "s3://big/names/", img,
                                 Keys(role.access_key, role.secret_key)))

    assert result.returncode == 3, result.stderr
    assert "InvalidAccessKeyId" in result.stderr
    assert not img.exists()


def test_credentials_and_endpoint_from_environment(moto, big, s3erofs, tmp_path, mountpoint):
    role = moto.role_keys
    env = {"AWS_ACCESS_KEY_ID": role.access_key, "AWS_SECRET_ACCESS_KEY": role.secret_key,
           "AWS_SESSION_TOKEN": role.session_token, "AWS_ENDPOINT_URL": moto.endpoint}
    img = tmp_path / "env.img"
    result = s3erofs("build", "s3://big/photos/", img, "--region", REGION, "--url-style",
                     "path", "-T", BUILD_TIME, env=env)

    assert result.returncode == 0, result.stderr
    fsck(img)
    expected = expected_tree(big.listing, prefix=b"photos/", build_time=BUILD_TIME)
    assert_tree(mountpoint(img), expected)


@pytest.fixture(scope="module")
def v2_bucket(moto_nocheck):
    """Bucket ``sigv2`` on the unchecked server: the odd names plus a few plain keys."""
    client = moto_nocheck.client("s3")
    objects = {key: body for key, body in big_objects().items()
               if key.startswith(("names/", "photos/2024/img_000", "deep/")) or key == "empty/"}
    seed_bucket(client, "sigv2", objects)
    return list_bucket(client, "sigv2")


@pytest.mark.parametrize("version", ["1", "2"])
def test_sigv2_builds_the_right_tree(moto_nocheck, v2_bucket, s3erofs, tmp_path, mountpoint,
                                     version):
    # moto answers SigV2 with a 500 while it checks signatures, so this server does not check
    img = tmp_path / "v2.img"
    result = s3erofs(*build_args(moto_nocheck, "s3://sigv2", img, moto_nocheck.keys,
                                 "--sig", "2", "--list-version", version, "--max-keys", "5"))

    assert result.returncode == 0, result.stderr
    fsck(img)
    assert_tree(mountpoint(img), expected_tree(v2_bucket, build_time=BUILD_TIME))


@pytest.mark.parametrize("who", ["user", "role"])
def test_debug_output_hides_secrets(moto, big, s3erofs, tmp_path, who):
    keys = moto.keys if who == "user" else moto.role_keys
    img = tmp_path / "debug.img"
    result = s3erofs(*build_args(moto, "s3://big/names/", img, keys, "--debug",
                                 "--max-keys", "10"))

    assert result.returncode == 0, result.stderr
    output = result.stderr + result.stdout
    assert str(moto.port) in output or "list-type" in output, "--debug printed no request"
    assert keys.secret_key not in output
    assert not SIGNATURE_HEX.search(output), SIGNATURE_HEX.search(output).group(0)
    if keys.session_token:
        assert keys.session_token not in output
