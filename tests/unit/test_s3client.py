"""S3Client against a scripted fault server: retries, stalls, error texts, redirects, URLs."""

import datetime
import logging
import time

import pytest
from faultserver import FaultServer, Reply, error_xml

from s3erofs import sign
from s3erofs.errors import S3Error, UsageError
from s3erofs.s3client import ClientConfig, S3Client

CREDS = sign.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
LISTING = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
           b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
           b"<Name>bucket</Name><IsTruncated>false</IsTruncated></ListBucketResult>")
SLOWDOWN = error_xml("SlowDown", "Please reduce your request rate.", "123ABC")
PARAMS = [("list-type", "2"), ("prefix", "x/"), ("start-after", "x/two")]
QUERY = "list-type=2&prefix=x%2F&start-after=x%2Ftwo"


def ok(body: bytes = LISTING) -> Reply:
    return Reply(200, {"Content-Type": "application/xml"}, body)


def config(server: FaultServer, **overrides) -> ClientConfig:
    """Small timeouts and backoff so every scenario ends in a second or two."""
    settings = {"endpoint_url": server.url, "credentials": CREDS, "backoff_base": 0.01,
                "backoff_cap": 0.05, "connect_timeout": 2.0, "low_speed_time": 2.0,
                "request_timeout": 10.0, **overrides}
    return ClientConfig(**settings)


def expected_authorization(request, region: str) -> str:
    """Recompute the SigV4 Authorization header for a recorded request."""
    now = datetime.datetime.strptime(request.header("x-amz-date"), sign.SIGV4_TIMESTAMP)
    headers = sign.sign_v4(request.method, request.header("Host"), request.path,
                           request.query, CREDS, region, now)
    return headers["Authorization"]


class StepClock:
    """A clock that moves one second per reading, from 2026-01-01T00:00:00Z."""

    def __init__(self):
        self.readings = 0

    def __call__(self) -> datetime.datetime:
        start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
        self.readings += 1
        return start + datetime.timedelta(seconds=self.readings - 1)


def test_slowdown_with_retry_after_then_success():
    with FaultServer([Reply(503, {"Retry-After": "1"}, SLOWDOWN), ok()]) as server:
        with S3Client("bucket", config(server)) as client:
            body = client.get_bucket(PARAMS)

    first, second = server.requests
    assert body == LISTING
    assert client.requests == 2
    assert second.header("x-amz-date") != first.header("x-amz-date")
    assert second.header("Authorization") != first.header("Authorization")
    assert second.header("Authorization") == expected_authorization(second, "us-east-1")
    assert second.time - first.time >= 1.0


def test_internal_error_retry_sends_same_query_with_fresh_date():
    script = [Reply(500, {}, error_xml("InternalError", "We encountered an internal error.")),
              ok()]
    with FaultServer(script) as server:
        client = S3Client("bucket", config(server), clock=StepClock())
        assert client.get_bucket(PARAMS) == LISTING

    first, second = server.requests
    assert first.target == second.target == f"/bucket?{QUERY}"
    assert first.header("x-amz-date") == "20260101T000000Z"
    assert second.header("x-amz-date") == "20260101T000001Z"
    assert second.header("Authorization") == expected_authorization(second, "us-east-1")
    assert client.last_url == f"{server.url}/bucket?{QUERY}"


def test_slowdown_every_time_gives_up_after_max_attempts():
    with FaultServer([Reply(503, {}, SLOWDOWN)] * 6) as server:
        client = S3Client("bucket", config(server, max_attempts=5))
        with pytest.raises(S3Error) as caught:
            client.get_bucket([("list-type", "2")])

    assert str(caught.value) == (
        "S3 error SlowDown (HTTP 503) after 5 attempts: Please reduce your request rate. "
        f"[request id 123ABC] GET {server.url}/bucket?list-type=2")
    assert (caught.value.status, caught.value.code, caught.value.request_id) == (
        503, "SlowDown", "123ABC")
    assert caught.value.attempts == 5
    assert caught.value.exit_code == 3
    assert len(server.requests) == 5


def test_stalled_body_is_abandoned_and_named():
    stall = Reply(200, {}, b"<ListBucketRe", content_length=100000, stall_after=13,
                  stall_seconds=40)
    started = time.monotonic()
    with FaultServer([stall, stall]) as server:
        client = S3Client("bucket", config(server, low_speed_time=1, max_attempts=2))
        with pytest.raises(S3Error) as caught:
            client.get_bucket([("marker", "x/two")])

    assert time.monotonic() - started < 20
    assert str(caught.value) == (
        f"no data from {server.host} for 1 s while listing after marker 'x/two' "
        f"(2 attempts) GET {server.url}/bucket?marker=x%2Ftwo")
    assert len(server.requests) == 2


def test_request_time_too_skewed_says_how_far_behind():
    server_time = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    shown = server_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    body = error_xml("RequestTimeTooSkewed", "The difference between the request time and the "
                     "current time is too large.", "SKEW1", ServerTime=shown,
                     MaxAllowedSkewMilliseconds="900000")
    with FaultServer([Reply(403, {}, body)]) as server:
        client = S3Client("bucket", config(server))
        with pytest.raises(S3Error) as caught:
            client.get_bucket([("list-type", "2")])

    assert str(caught.value) == (
        "S3 error RequestTimeTooSkewed (HTTP 403): The difference between the request time "
        "and the current time is too large; the local clock is 60 minutes behind the "
        f"server's (ServerTime {shown}); fix the clock (e.g. enable NTP) [request id SKEW1] "
        f"GET {server.url}/bucket?list-type=2")
    assert len(server.requests) == 1


def test_request_time_too_skewed_uses_request_time_when_given():
    body = error_xml("RequestTimeTooSkewed", "Too skewed.", RequestTime="20260101T003000Z",
                     ServerTime="2026-01-01T00:00:00Z")
    with FaultServer([Reply(403, {}, body)]) as server:
        with pytest.raises(S3Error, match="the local clock is 30 minutes ahead of the server's "
                                          r"\(ServerTime 2026-01-01T00:00:00Z\)"):
            S3Client("bucket", config(server)).get_bucket([])


def test_no_such_bucket_names_the_bucket():
    body = error_xml("NoSuchBucket", "The specified bucket does not exist", "NSB1",
                     BucketName="missing")
    with FaultServer([Reply(404, {}, body)]) as server:
        with pytest.raises(S3Error) as caught:
            S3Client("missing", config(server)).get_bucket([("list-type", "2")])

    assert str(caught.value) == (
        "S3 error NoSuchBucket (HTTP 404): The specified bucket does not exist; bucket "
        f"'missing' does not exist at {server.host} [request id NSB1] "
        f"GET {server.url}/missing?list-type=2")


def test_access_denied_shows_code_and_message_without_retry():
    with FaultServer([Reply(403, {}, error_xml("AccessDenied", "Access Denied", "AD1"))]) as server:
        with pytest.raises(S3Error) as caught:
            S3Client("bucket", config(server)).get_bucket([("list-type", "2")])

    assert str(caught.value) == ("S3 error AccessDenied (HTTP 403): Access Denied "
                                 f"[request id AD1] GET {server.url}/bucket?list-type=2")
    assert len(server.requests) == 1


def test_signature_does_not_match_shows_code_and_message():
    body = error_xml("SignatureDoesNotMatch", "The request signature we calculated does not "
                     "match the signature you provided.", "SIG1")
    with FaultServer([Reply(403, {}, body)]) as server:
        with pytest.raises(S3Error, match=r"^S3 error SignatureDoesNotMatch \(HTTP 403\): The "
                                          "request signature we calculated does not match"):
            S3Client("bucket", config(server)).get_bucket([])


def test_non_xml_error_body_is_shown_escaped_and_cut():
    body = b"<html>\n<h1>Bad request</h1>\x00" + b"x" * 300
    with FaultServer([Reply(400, {}, body)]) as server:
        with pytest.raises(S3Error) as caught:
            S3Client("bucket", config(server)).get_bucket([])

    shown = "'<html>\\n<h1>Bad request</h1>\\x00" + "x" * 172 + "'..."
    assert str(caught.value) == f"HTTP 400 with {shown} from GET {server.url}/bucket"
    assert caught.value.status == 400


def test_permanent_redirect_without_auto_says_which_region():
    body = error_xml("PermanentRedirect", "The bucket you are attempting to access must be "
                     "addressed using the specified endpoint.", "PR1",
                     Endpoint="bucket.s3.eu-west-1.amazonaws.com", Bucket="bucket")
    with FaultServer([Reply(301, {}, body)]) as server:
        with pytest.raises(S3Error) as caught:
            S3Client("bucket", config(server)).get_bucket([("list-type", "2")])

    assert str(caught.value) == (
        "bucket 'bucket' is in region 'eu-west-1'; pass --region eu-west-1 (or --region auto) "
        f"[HTTP 301 PermanentRedirect] GET {server.url}/bucket?list-type=2")
    assert len(server.requests) == 1


def test_permanent_redirect_with_auto_resigns_for_the_named_region():
    body = error_xml("PermanentRedirect", "Use the specified endpoint.", "PR2")
    moved = Reply(301, {"x-amz-bucket-region": "eu-west-1"}, body)
    with FaultServer([moved, ok()]) as server:
        client = S3Client("bucket", config(server, region="auto"))
        assert client.get_bucket([("list-type", "2")]) == LISTING

    first, second = server.requests
    assert "/us-east-1/s3/aws4_request" in first.header("Authorization")
    assert "/eu-west-1/s3/aws4_request" in second.header("Authorization")
    assert second.header("Authorization") == expected_authorization(second, "eu-west-1")
    assert client.region == "eu-west-1"


def test_authorization_header_malformed_with_auto_follows_region_element():
    body = error_xml("AuthorizationHeaderMalformed", "The authorization header is malformed; "
                     "the region 'us-east-1' is wrong; expecting 'ap-south-2'", "AHM1",
                     Region="ap-south-2")
    with FaultServer([Reply(400, {}, body), ok()]) as server:
        client = S3Client("bucket", config(server, region="auto"))
        assert client.get_bucket([]) == LISTING

    assert "/ap-south-2/s3/aws4_request" in server.requests[1].header("Authorization")


def test_temporary_redirect_is_resigned_for_the_new_host():
    with FaultServer([ok()]) as target:
        moved = Reply(307, {"Location": f"{target.url}/bucket?list-type=2"},
                      error_xml("TemporaryRedirect", "Please re-send this request."))
        with FaultServer([moved]) as origin:
            client = S3Client("bucket", config(origin))
            assert client.get_bucket([("list-type", "2")]) == LISTING

    (request,) = target.requests
    assert request.header("Host") == target.host
    assert request.target == "/bucket?list-type=2"
    assert request.header("Authorization") == expected_authorization(request, "us-east-1")
    assert client.requests == 2
    assert client.last_url == f"{target.url}/bucket?list-type=2"


def test_temporary_redirect_does_not_use_up_attempts():
    with FaultServer([Reply(503, {}, SLOWDOWN), ok()]) as target:
        moved = Reply(307, {"Location": f"{target.url}/bucket"})
        with FaultServer([moved]) as origin:
            client = S3Client("bucket", config(origin, max_attempts=2))
            assert client.get_bucket([]) == LISTING

    assert (len(origin.requests), len(target.requests)) == (1, 2)


def test_redirect_loop_stops_after_five():
    with FaultServer() as server:
        server.default = Reply(307, {"Location": f"{server.url}/bucket"})
        with pytest.raises(S3Error) as caught:
            S3Client("bucket", config(server)).get_bucket([])

    assert str(caught.value) == f"more than 5 redirects for GET {server.url}/bucket"
    assert len(server.requests) == 6


def test_connection_reset_before_any_byte_is_retried():
    with FaultServer([Reply(disconnect="before"), ok()]) as server:
        client = S3Client("bucket", config(server))
        assert client.get_bucket([("list-type", "2")]) == LISTING

    assert len(server.requests) == 2
    assert client.requests == 2


def test_partial_body_is_retried():
    short = Reply(200, {}, LISTING[:40], content_length=len(LISTING), disconnect="after")
    with FaultServer([short, ok()]) as server:
        assert S3Client("bucket", config(server)).get_bucket([]) == LISTING

    assert len(server.requests) == 2


def test_connection_refused_names_the_host():
    with FaultServer() as server:
        url = server.url
    client = S3Client("bucket", ClientConfig(endpoint_url=url, max_attempts=2,
                                             backoff_base=0.01))
    with pytest.raises(S3Error) as caught:
        client.get_bucket([])

    assert str(caught.value).startswith(
        f"network error talking to {url[7:]} while listing from the start: ")
    assert str(caught.value).endswith(f"(curl error 7, 2 attempts) GET {url}/bucket")


def test_one_connection_serves_consecutive_requests():
    with FaultServer([ok(), ok()]) as server:
        client = S3Client("bucket", config(server))
        client.get_bucket([("marker", "a")])
        client.get_bucket([("marker", "b")])

    assert [r.connection for r in server.requests] == [1, 1]


def test_secrets_never_reach_the_log(caplog):
    creds = sign.Credentials("AKIDLOG", "secretSECRETsecret", "tokenTOKENtoken")
    caplog.set_level(logging.DEBUG)
    with FaultServer([Reply(503, {}, SLOWDOWN), ok()]) as server:
        client = S3Client("bucket", config(server, credentials=creds, debug_wire=True))
        client.get_bucket([("list-type", "2")])

    signatures = [r.header("Authorization").rpartition("Signature=")[2]
                  for r in server.requests]
    assert "secretSECRETsecret" not in caplog.text
    assert "tokenTOKENtoken" not in caplog.text
    assert all(len(value) == 64 and value not in caplog.text for value in signatures)
    assert "Authorization: <redacted>" in caplog.text
    assert f"GET {server.url}/bucket?list-type=2 -> 200" in caplog.text


def test_sigv2_and_anonymous_requests():
    with FaultServer([ok(), ok()]) as server:
        S3Client("bucket", config(server, signature=2)).get_bucket([("marker", "m")])
        S3Client("bucket", config(server, credentials=None)).get_bucket([("marker", "m")])

    signed, anonymous = server.requests
    now = datetime.datetime.strptime(signed.header("Date"), "%a, %d %b %Y %H:%M:%S GMT")
    assert signed.header("Authorization") == sign.sign_v2("GET", "/bucket/", CREDS,
                                                          now)["Authorization"]
    assert anonymous.header("Authorization") is None


@pytest.mark.parametrize(("bucket", "endpoint", "url"), [
    ("mybucket", "http://127.0.0.1:9000", "http://127.0.0.1:9000/mybucket?list-type=2"),
    ("mybucket", "http://localhost:9000/", "http://localhost:9000/mybucket?list-type=2"),
    ("my.bucket", "https://s3.example.com", "https://s3.example.com/my.bucket?list-type=2"),
    ("my.bucket", "http://s3.example.com", "http://my.bucket.s3.example.com/?list-type=2"),
    ("Bad_Bucket", None, "https://s3.us-east-1.amazonaws.com/Bad_Bucket?list-type=2"),
    ("mybucket", None, "https://mybucket.s3.us-east-1.amazonaws.com/?list-type=2"),
    ("mybucket", "https://minio.example:443/s3/", "https://mybucket.minio.example/s3/?list-type=2"),
    ("mybucket", "http://[::1]:9000", "http://[::1]:9000/mybucket?list-type=2"),
])
def test_auto_url_style(bucket, endpoint, url):
    client = S3Client(bucket, ClientConfig(endpoint_url=endpoint))
    assert client.bucket_url([("list-type", "2")]) == url


def test_dotted_bucket_over_https_logs_why_path_style(caplog):
    caplog.set_level(logging.INFO)
    S3Client("my.bucket", ClientConfig(region="eu-west-1"))
    assert ("using path-style URLs: bucket 'my.bucket' has dots, which TLS wildcard "
            "certificates do not match in a host name") in caplog.text


def test_explicit_url_styles():
    path = S3Client("mybucket", ClientConfig(url_style="path", region="eu-west-1"))
    virtual = S3Client("my.bucket", ClientConfig(endpoint_url="https://s3.example.com:8443",
                                                 url_style="virtual"))
    assert path.bucket_url() == "https://s3.eu-west-1.amazonaws.com/mybucket"
    assert virtual.bucket_url() == "https://my.bucket.s3.example.com:8443/"
    with pytest.raises(UsageError, match="virtual-host style needs a host name, not '::1'"):
        S3Client("mybucket", ClientConfig(endpoint_url="http://[::1]:9000", url_style="virtual"))
    with pytest.raises(UsageError, match="bucket 'Bad_Bucket' is not a valid host name"):
        S3Client("Bad_Bucket", ClientConfig(url_style="virtual"))


@pytest.mark.parametrize(("bucket", "message"), [
    ("", "bucket name is empty"),
    ("a/b", "invalid bucket name 'a/b'"),
    ("x" * 256, f"invalid bucket name '{'x' * 256}'"),
    ("sp ace", "invalid bucket name 'sp ace'"),
])
def test_invalid_bucket_names(bucket, message):
    with pytest.raises(UsageError) as caught:
        S3Client(bucket, ClientConfig())
    assert str(caught.value).startswith(message)


def test_endpoint_with_credentials_is_refused_without_showing_them():
    with pytest.raises(UsageError) as caught:
        S3Client("bucket", ClientConfig(endpoint_url="http://user:hunter2@host:9000"))
    assert "hunter2" not in str(caught.value)
    assert "'host'" in str(caught.value)


def test_permanent_redirect_without_a_region_shows_the_endpoint():
    body = error_xml("PermanentRedirect", "Use the specified endpoint.", "PR3",
                     Endpoint="bucket.storage.example")
    with FaultServer([Reply(301, {}, body)]) as server:
        with pytest.raises(S3Error) as caught:
            S3Client("bucket", config(server, region="auto")).get_bucket([])

    assert str(caught.value) == (
        "S3 error PermanentRedirect (HTTP 301): Use the specified endpoint; endpoint "
        f"'bucket.storage.example' [request id PR3] GET {server.url}/bucket")
