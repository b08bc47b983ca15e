"""s3erofs.sign against botocore's signers (an independent implementation) and AWS vectors."""

import datetime
import email.utils
import functools
import logging
from urllib.parse import urlsplit

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest, create_request_object, prepare_request_dict
from botocore.credentials import Credentials as BotoCredentials

from s3erofs import sign

AK = "AKIAIOSFODNN7EXAMPLE"
SK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "FQoGZXIvYXdzEXAMPLE//////////wEaDEXAMPLETOKEN+/="
NOW = datetime.datetime(2024, 2, 29, 23, 59, 58)
NOW_EPOCH = 1709251198  # NOW as seconds since the epoch (UTC)

VALUES = ["plain/", "a+b/", "a b/", "x~y/", "(1)!*'/", "日本/", "a=b&c/", "a#b/", "{foo"]
# (scheme, host header, path): path style, virtual-host style, and a local server with a port
HOSTS = [
    ("https", "s3.amazonaws.com", "/bucket"),
    ("https", "bucket.s3.eu-west-1.amazonaws.com", "/"),
    ("http", "127.0.0.1:5000", "/bucket"),
]


@pytest.fixture
def frozen_botocore(monkeypatch):
    """Freeze botocore's clock at NOW (SigV4 reads get_current_datetime, SigV2 formatdate)."""
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *args, **kwargs: NOW)
    monkeypatch.setattr(botocore.auth, "formatdate",
                        functools.partial(email.utils.formatdate, NOW_EPOCH))


def list_params(version, value):
    # listed in canonical order so botocore's wire query (kept in given order) can be compared
    if version == 2:
        return [("encoding-type", "url"), ("list-type", "2"), ("prefix", value)]
    return [("encoding-type", "url"), ("marker", value), ("prefix", "p/")]


def botocore_v4(method, url, params, token):
    """Sign as botocore's client does: the query is encoded into the URL, then signed."""
    scheme, netloc, path = urlsplit(url)[:3]
    request_dict = {"url_path": path, "query_string": params, "method": method,
                    "headers": {}, "body": b""}
    prepare_request_dict(request_dict, f"{scheme}://{netloc}")
    request = create_request_object(request_dict)
    creds = BotoCredentials(AK, SK, token)
    botocore.auth.S3SigV4Auth(creds, "s3", "eu-west-1").add_auth(request)
    return request


def botocore_v4_params(method, url, params, token):
    """Sign with the parameters given apart, so botocore encodes them for the signature."""
    request = AWSRequest(method, url, params=params)
    creds = BotoCredentials(AK, SK, token)
    botocore.auth.S3SigV4Auth(creds, "s3", "eu-west-1").add_auth(request)
    return request


# quote and canonical_query

@pytest.mark.parametrize(("value", "expected"), [
    ("AZaz09-._~", "AZaz09-._~"),
    ("a b", "a%20b"),
    ("a+b", "a%2Bb"),
    ("a/b", "a%2Fb"),
    ("日本", "%E6%97%A5%E6%9C%AC"),
    ("é", "%C3%A9"),
    ("%", "%25"),
    (b"\xff\x00", "%FF%00"),
    ("", ""),
])
def test_quote(value, expected):
    assert sign.quote(value) == expected


@pytest.mark.parametrize(("value", "wire"), [
    ("a+b/", "prefix=a%2Bb%2F"),
    ("(1)!*'/", "prefix=%281%29%21%2A%27%2F"),
    ("日本/", "prefix=%E6%97%A5%E6%9C%AC%2F"),
    ("a#b/", "prefix=a%23b%2F"),
    ("a b/", "prefix=a%20b%2F"),
    ("a=b&c/", "prefix=a%3Db%26c%2F"),
    ("x~y/", "prefix=x~y%2F"),
    ("{foo", "prefix=%7Bfoo"),
])
def test_canonical_query_wire_strings(value, wire):
    assert sign.canonical_query([("prefix", value)]) == wire


def test_canonical_query_list_v2_full():
    params = [("prefix", "a+b/"), ("list-type", "2"), ("encoding-type", "url")]
    assert sign.canonical_query(params) == "encoding-type=url&list-type=2&prefix=a%2Bb%2F"


def test_canonical_query_empty_value_and_sort_by_encoded_form():
    # raw "é" sorts after "~", encoded "%C3%A9" before it; repeated names sort by value
    params = [("~", "1"), ("é", "2"), ("delimiter", ""), ("k", "b"), ("k", "a")]
    assert sign.canonical_query(params) == "%C3%A9=2&delimiter=&k=a&k=b&~=1"


# SigV4 against botocore

@pytest.mark.parametrize("token", [None, TOKEN], ids=["keys", "session"])
@pytest.mark.parametrize(("scheme", "host", "path"), HOSTS, ids=["path", "vhost", "port"])
@pytest.mark.parametrize("version", [2, 1], ids=["v2", "v1"])
@pytest.mark.parametrize("value", VALUES)
def test_sign_v4_matches_botocore(frozen_botocore, value, version, scheme, host, path, token):
    params = list_params(version, value)
    query = sign.canonical_query(params)
    ours = sign.sign_v4("GET", host, path, query, sign.Credentials(AK, SK, token),
                        "eu-west-1", NOW)

    theirs = botocore_v4("GET", f"{scheme}://{host}{path}", params, token)
    assert ours["Authorization"] == theirs.headers["Authorization"]
    apart = botocore_v4_params("GET", f"{scheme}://{host}{path}", params, token)
    assert ours["Authorization"] == apart.headers["Authorization"]
    assert ours["x-amz-date"] == theirs.headers["X-Amz-Date"] == "20240229T235958Z"
    assert ours["x-amz-content-sha256"] == theirs.headers["X-Amz-Content-SHA256"]
    assert ours["x-amz-content-sha256"] == sign.EMPTY_SHA256
    assert ours.get("x-amz-security-token") == theirs.headers.get("X-Amz-Security-Token") == token

    # what is sent is what was signed: botocore's client sends the same query
    assert urlsplit(theirs.url).query == query


def test_sign_v4_continuation_token_matches_botocore(frozen_botocore):
    params = [("continuation-token", "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="),
              ("list-type", "2")]
    query = sign.canonical_query(params)
    ours = sign.sign_v4("GET", "s3.amazonaws.com", "/bucket", query,
                        sign.Credentials(AK, SK), "eu-west-1", NOW)

    theirs = botocore_v4_params("GET", "https://s3.amazonaws.com/bucket", params, None)
    assert query == ("continuation-token=1ueGcxLPRx1Tr%2FXYExHnhbYLgveDs2J%2Fwm36Hy4vbOwM%3D"
                     "&list-type=2")
    assert ours["Authorization"] == theirs.headers["Authorization"]


def test_sign_v4_exact_authorization_for_session_token():
    headers = sign.sign_v4("GET", "127.0.0.1:5000", "/bucket",
                           "encoding-type=url&list-type=2&prefix=a%2Bb%2F",
                           sign.Credentials(AK, SK, TOKEN), "eu-west-1", NOW)

    assert headers["Authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={AK}/20240229/eu-west-1/s3/aws4_request, "
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=")
    assert headers["x-amz-security-token"] == TOKEN
    assert sorted(headers) == ["Authorization", "x-amz-content-sha256", "x-amz-date",
                               "x-amz-security-token"]


def test_sign_v4_clock_read_once_and_as_utc():
    # an aware time in UTC+2 just after midnight is the previous day in UTC: the scope date
    # and x-amz-date must both say so
    plus2 = datetime.timezone(datetime.timedelta(hours=2))
    now = datetime.datetime(2024, 3, 1, 1, 59, 58, 999999, tzinfo=plus2)
    headers = sign.sign_v4("GET", "s3.amazonaws.com", "/bucket", "",
                           sign.Credentials(AK, SK), "eu-west-1", now)

    assert headers["x-amz-date"] == "20240229T235958Z"
    assert f"Credential={AK}/20240229/eu-west-1/s3/aws4_request" in headers["Authorization"]
    assert headers == sign.sign_v4("GET", "s3.amazonaws.com", "/bucket", "",
                                   sign.Credentials(AK, SK), "eu-west-1", NOW)


def test_sign_v4_unsigned_payload_matches_botocore(frozen_botocore):
    ours = sign.sign_v4("GET", "s3.amazonaws.com", "/bucket", "list-type=2",
                        sign.Credentials(AK, SK), "eu-west-1", NOW,
                        payload_hash=sign.UNSIGNED_PAYLOAD)

    request = AWSRequest("GET", "https://s3.amazonaws.com/bucket", params=[("list-type", "2")])
    request.context["payload_signing_enabled"] = False
    botocore.auth.SigV4Auth(BotoCredentials(AK, SK), "s3", "eu-west-1").add_auth(request)
    assert ours["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert ours["Authorization"] == request.headers["Authorization"]


# AWS published vectors (S3 API reference, "Signature calculations for the Authorization
# header: transferring payload in a single chunk"), also checked against botocore

AWS_DATE = datetime.datetime(2013, 5, 24)
AWS_CREDS = sign.Credentials(AK, SK)
AWS_SCOPE = f"{AK}/20130524/us-east-1/s3/aws4_request"


def test_aws_vector_get_object_with_range(frozen_botocore, monkeypatch):
    headers = sign.sign_v4("GET", "examplebucket.s3.amazonaws.com", "/test.txt", "",
                           AWS_CREDS, "us-east-1", AWS_DATE, headers={"Range": "bytes=0-9"})

    expected = (f"AWS4-HMAC-SHA256 Credential={AWS_SCOPE}, "
                "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    assert headers["Authorization"] == expected

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: AWS_DATE)
    request = AWSRequest("GET", "https://examplebucket.s3.amazonaws.com/test.txt",
                         headers={"Range": "bytes=0-9"})
    botocore.auth.S3SigV4Auth(BotoCredentials(AK, SK), "s3", "us-east-1").add_auth(request)
    assert request.headers["Authorization"] == expected


def test_aws_vector_list_objects_steps():
    query = sign.canonical_query([("prefix", "J"), ("max-keys", "2")])
    signed = {"host": "examplebucket.s3.amazonaws.com", "x-amz-date": "20130524T000000Z",
              "x-amz-content-sha256": sign.EMPTY_SHA256}
    creq = sign.canonical_request("GET", "/", query, signed, sign.EMPTY_SHA256)
    assert creq == ("GET\n/\nmax-keys=2&prefix=J\nhost:examplebucket.s3.amazonaws.com\n"
                    f"x-amz-content-sha256:{sign.EMPTY_SHA256}\nx-amz-date:20130524T000000Z\n\n"
                    f"host;x-amz-content-sha256;x-amz-date\n{sign.EMPTY_SHA256}")

    sts = sign.string_to_sign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request", creq)
    assert sts.splitlines()[:3] == ["AWS4-HMAC-SHA256", "20130524T000000Z",
                                    "20130524/us-east-1/s3/aws4_request"]

    key = sign.signing_key(SK, "20130524", "us-east-1", "s3")
    assert sign.signature(key, sts) == (
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")


def test_canonical_headers_trim_and_fold():
    block, names = sign.canonical_headers({"X-Amz-Meta-A": "  a   b  ", "Host": "h"})
    assert block == "host:h\nx-amz-meta-a:a b\n"
    assert names == "host;x-amz-meta-a"


# SigV2

@pytest.mark.parametrize("token", [None, TOKEN], ids=["keys", "session"])
@pytest.mark.parametrize(("url", "resource"), [
    ("https://bucket.s3.amazonaws.com/?prefix=a%2Bb%2F&marker=a%23b%2F", "/bucket/"),
    ("https://s3.amazonaws.com/bucket?prefix=%E6%97%A5%E6%9C%AC%2F", "/bucket"),
    ("http://127.0.0.1:5000/bucket/?prefix=%281%29%21%2A%27%2F", "/bucket/"),
])
def test_sign_v2_matches_botocore(frozen_botocore, url, resource, token):
    ours = sign.sign_v2("GET", resource, sign.Credentials(AK, SK, token), NOW)

    request = AWSRequest("GET", url)
    request.auth_path = resource
    botocore.auth.HmacV1Auth(BotoCredentials(AK, SK, token)).add_auth(request)
    assert ours["Date"] == request.headers["Date"] == "Thu, 29 Feb 2024 23:59:58 GMT"
    assert ours["Authorization"] == request.headers["Authorization"]
    assert ours["Authorization"].startswith(f"AWS {AK}:")
    assert ours.get("x-amz-security-token") == request.headers.get("x-amz-security-token")


def test_sign_v2_string_to_sign_includes_token():
    sts = sign.string_to_sign_v2("GET", "Thu, 29 Feb 2024 23:59:58 GMT",
                                 {"x-amz-security-token": TOKEN}, "/bucket/")
    assert sts == f"GET\n\n\nThu, 29 Feb 2024 23:59:58 GMT\nx-amz-security-token:{TOKEN}\n/bucket/"


def test_aws_vector_sign_v2_get_object():
    # S3 user guide, "Authenticating requests (AWS signature version 2)", object GET example
    sts = sign.string_to_sign_v2("GET", "Tue, 27 Mar 2007 19:36:42 +0000", {},
                                 "/awsexamplebucket1/photos/puppy.jpg")
    assert sign.signature_v2(SK, sts) == "qgk2+6Sv9/oM7G3qLEjTH1a1l1g="


# secrets stay secret

def test_credentials_repr_hides_secrets():
    creds = sign.Credentials(AK, SK, TOKEN)
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert SK not in text
        assert TOKEN not in text
        assert AK in text
    assert repr(creds) == (
        f"Credentials(access_key='{AK}', secret_key=<hidden>, session_token=<hidden>)")
    assert repr(sign.Credentials(AK, SK)) == f"Credentials(access_key='{AK}', secret_key=<hidden>)"


def test_credentials_are_frozen():
    creds = sign.Credentials(AK, SK)
    with pytest.raises(AttributeError):
        creds.secret_key = "x"


def test_debug_log_has_steps_but_no_secrets(caplog):
    caplog.set_level(logging.DEBUG, logger="s3erofs.sign")
    creds = sign.Credentials(AK, SK, TOKEN)
    v4 = sign.sign_v4("GET", "s3.amazonaws.com", "/bucket", "list-type=2", creds, "eu-west-1", NOW)
    v2 = sign.sign_v2("GET", "/bucket/", creds, NOW)

    text = caplog.text
    assert "SigV4 canonical request:\nGET\n/bucket\nlist-type=2\nhost:s3.amazonaws.com\n" in text
    assert "SigV4 string to sign:\nAWS4-HMAC-SHA256\n20240229T235958Z\n" in text
    assert "SigV2 string to sign:\nGET\n\n\nThu, 29 Feb 2024 23:59:58 GMT\n" in text
    key = sign.signing_key(SK, "20240229", "eu-west-1", "s3")
    for secret in (SK, TOKEN, key.hex(), v4["Authorization"].rsplit("=", 1)[1],
                   v2["Authorization"].split(":", 1)[1]):
        assert secret not in text


def test_sign_v4_other_service_matches_botocore(frozen_botocore):
    ours = sign.sign_v4("GET", "sts.amazonaws.com", "/", "Action=GetCallerIdentity",
                        sign.Credentials(AK, SK), "us-east-1", NOW, service="sts")

    request = AWSRequest("GET", "https://sts.amazonaws.com/",
                         params=[("Action", "GetCallerIdentity")],
                         headers={"X-Amz-Content-SHA256": sign.EMPTY_SHA256})
    botocore.auth.SigV4Auth(BotoCredentials(AK, SK), "sts", "us-east-1").add_auth(request)
    assert "/20240229/us-east-1/sts/aws4_request" in ours["Authorization"]
    assert ours["Authorization"] == request.headers["Authorization"]
