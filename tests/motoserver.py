"""Run moto's S3 server on a loopback port for the integration tests.

``MotoServer(check_signatures=True)`` starts ``moto_server`` on a free 127.0.0.1 port, waits
until it answers, and (when asked) turns on moto's request authentication, after which every
SigV4 signature is verified and a wrong secret is answered with ``SignatureDoesNotMatch``.

moto 5 lists ``LastModified`` truncated to whole seconds (``.000Z``) while S3 sends
milliseconds, so the server runs through this module's ``__main__``, which makes moto print the
milliseconds it keeps; otherwise the ms -> ns conversion could not be tested.

Recipe for signature checking (moto 5): create an IAM user with an allow-all policy and an
access key while moto still accepts anything, create an allow-all role for AssumeRole, then
``POST /moto-api/reset-auth`` with body ``0`` (the number of requests still let through
unauthenticated). With checking on, moto answers SigV2 requests with a 500, so SigV2 tests
use a server with checking off.
"""

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import boto3
from botocore.config import Config

log = logging.getLogger(__name__)

REGION = "us-east-1"

# any credentials pass while moto's authentication is off; moto's own default account
BOOT_ACCESS_KEY = "testing"
BOOT_SECRET_KEY = "testing"

ALLOW_ALL = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
})

TRUST_ANYONE = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "sts:AssumeRole",
    }],
})


@dataclass(frozen=True)
class Keys:
    """One set of credentials moto accepts (``session_token`` only for AssumeRole ones)."""

    access_key: str
    secret_key: str
    session_token: str | None = None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MotoServer:
    """A ``moto_server`` subprocess; use as a context manager or call start()/stop().

    After start(): ``endpoint`` (``http://127.0.0.1:PORT``), ``keys`` (an IAM user's access
    key), ``role_keys`` (AssumeRole credentials with a session token; only with checking on).
    """

    def __init__(self, check_signatures: bool = True, log_path: str | None = None):
        self.check_signatures = check_signatures
        self.log_path = log_path
        self.port = None
        self.endpoint = None
        self.keys = Keys(BOOT_ACCESS_KEY, BOOT_SECRET_KEY)
        self.role_keys = None
        self._proc = None
        self._log_file = None

    def __enter__(self) -> "MotoServer":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self, timeout: float = 30.0) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._spawn()
        self._wait_ready(timeout)

        if self.check_signatures:
            self.keys = self._create_user()
            # AssumeRole before checking is on: moto then refuses sts:AssumeRole to users
            self.role_keys = self._assume_role(self._create_role())
            self.set_checking(True)
        log.info("moto_server ready at %s (signature checking %s)", self.endpoint,
                 "on" if self.check_signatures else "off")

    def stop(self) -> None:
        """Kill moto_server and anything it started (it runs in its own process group)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return

        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue

        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def set_checking(self, on: bool) -> None:
        """Turn signature checking on or off (moto: the count of unchecked requests left)."""
        self._post("/moto-api/reset-auth", b"0" if on else b"inf")

    @contextlib.contextmanager
    def unchecked(self):
        """Signature checking off inside the block (for requests moto cannot check)."""
        if not self.check_signatures:
            yield
            return
        self.set_checking(False)
        try:
            yield
        finally:
            self.set_checking(True)

    def client(self, service: str = "s3", keys: Keys | None = None, **config):
        """A boto3 client for ``service`` against this server (path-style addressing for S3)."""
        keys = keys or self.keys
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=keys.access_key,
            aws_secret_access_key=keys.secret_key,
            aws_session_token=keys.session_token,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2},
                          **config),
        )

    def _spawn(self) -> None:
        out = subprocess.DEVNULL
        if self.log_path:
            self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
            out = self._log_file

        env = dict(os.environ)
        # moto_server must not pick up a caller's real AWS settings
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE"):
            env.pop(name, None)

        self._proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "-H", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=env, start_new_session=True,
        )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"moto_server on port {self.port} exited with {self._proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto_server on port {self.port} not ready after {timeout} s")

    def _post(self, path: str, body: bytes) -> None:
        request = urllib.request.Request(f"{self.endpoint}{path}", data=body, method="POST",
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def _create_user(self) -> Keys:
        iam = self.client("iam")
        iam.create_user(UserName="s3erofs-test")
        iam.put_user_policy(UserName="s3erofs-test", PolicyName="all",
                            PolicyDocument=ALLOW_ALL)
        key = iam.create_access_key(UserName="s3erofs-test")["AccessKey"]
        return Keys(key["AccessKeyId"], key["SecretAccessKey"])

    def _create_role(self) -> str:
        iam = self.client("iam")
        role = iam.create_role(RoleName="s3erofs-role", AssumeRolePolicyDocument=TRUST_ANYONE)
        iam.put_role_policy(RoleName="s3erofs-role", PolicyName="all",
                            PolicyDocument=ALLOW_ALL)
        return role["Role"]["Arn"]

    def _assume_role(self, role_arn: str) -> Keys:
        sts = self.client("sts")
        creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="s3erofs-tests",
                                DurationSeconds=3600)["Credentials"]
        return Keys(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])


def seed_bucket(client, bucket: str, objects: dict, threads: int = 8) -> None:
    """Create ``bucket`` and put ``objects`` ({key: bytes}) in parallel."""
    client.create_bucket(Bucket=bucket)
    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(client.put_object, Bucket=bucket, Key=key, Body=body)
                   for key, body in objects.items()]
        for future in futures:
            future.result()


def list_bucket(client, bucket: str, prefix: str = "") -> list[tuple]:
    """``[(key, size, last_modified)]`` as boto3's ListObjectsV2 returns them: the truth."""
    paginator = client.get_paginator("list_objects_v2")
    listing = []
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        listing.extend((item["Key"], item["Size"], item["LastModified"])
                       for item in page.get("Contents", ()))
    return listing


def s3_timestamp(value) -> str | None:
    """S3's ``LastModified`` form: milliseconds, UTC, ``Z`` (moto's own drops the ms)."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" if value else None


def serve(argv: list[str]) -> None:
    """``moto_server ARGV`` with two fixes that make it behave like S3 for our tests."""
    import moto.core.serialize
    import moto.s3.models
    import moto.server

    # the model formats LastModified, the serializer parses and formats it again
    moto.s3.models.iso_8601_datetime_without_milliseconds_s3 = s3_timestamp
    moto.core.serialize.TimestampSerializer._timestamp_iso8601_zeroed = (
        lambda self, value: s3_timestamp(value))
    check_raw_uri()

    moto.server.main(argv)


def check_raw_uri() -> None:
    """Make moto verify SigV4 against the request URI as sent on the wire.

    moto rebuilds the canonical request from werkzeug's IRI form of the URL, in which
    ``%2F``, ``%2B``, ``%20`` and UTF-8 escapes are already decoded, so any correctly signed
    request whose path or query holds such a character (a prefix ``photos/``, a marker, a
    key with ``+`` or ``é``) fails with SignatureDoesNotMatch. S3 signs the encoded URI.
    """
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.responses import BaseResponse

    setup_class = BaseResponse.setup_class
    authenticate = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def setup_with_raw_uri(self, request, full_url, headers, *args, **kwargs):
        environ = getattr(request, "environ", None) or {}
        self._raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        return setup_class(self, request, full_url, headers, *args, **kwargs)

    def authenticate_raw(self, iam_request_cls, *args, **kwargs):
        raw_uri = getattr(self, "_raw_uri", None)
        if not raw_uri:
            return authenticate(self, iam_request_cls, *args, **kwargs)
        decoded_uri, self.uri = self.uri, raw_uri
        try:
            return authenticate(self, iam_request_cls, *args, **kwargs)
        finally:
            self.uri = decoded_uri

    BaseResponse.setup_class = setup_with_raw_uri
    ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate_raw


if __name__ == "__main__":
    serve(sys.argv[1:])
