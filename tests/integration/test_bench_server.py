"""Honesty check of bench/listserver.py: it must list a bucket exactly as moto (and S3) does.

One small bucket (unicode, spaces, ``+ % # & = ?``, markers, a 0-byte object) is put into
moto; the same objects, with moto's own LastModified and ETag, are served by the benchmark
list server. Both are listed with boto3 (V1 and V2, MaxKeys 7, with and without
EncodingType=url, with prefixes, delimiters and StartAfter) and compared field by field.

Where moto is not S3, the test pins S3's behaviour on the list server and names the moto
difference instead of copying it:
- moto sends an opaque NextMarker on V1 pages without a delimiter; S3 sends none.
- moto's V1 with a delimiter repeats all common prefixes on every page; V1 pages are checked
  against moto's V2 pages instead, which are right.
- moto writes its elements in model order (IsTruncated first); S3 writes Name, Prefix, ...
- moto encodes a space in a key as ``%20``; S3 (and the list server) as ``+``.
"""

import importlib.util
import math
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote_plus

import boto3
import botocore.handlers
import pytest
from botocore.config import Config
from lxml import etree

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bench_listserver", REPO / "bench" / "listserver.py")
listserver = importlib.util.module_from_spec(spec)
spec.loader.exec_module(listserver)

BUCKET = "bench-honesty"
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"

NAMES = [
    "plain.txt", "a b.txt", "a+b.txt", "a%20b.txt", "100%.csv", "%41.txt", "hash#tag.txt",
    "amp&and.txt", "q?mark=1", "k=v.txt", "tilde~x", "copy (1).jpg", "comma, semi;colon",
    "quote'single", 'quote"double', "lt<gt>.txt", "café.txt", "é/naïve.txt", "日本/東京/写真.jpg",
    "emoji/🎉 party.png", "dir/", "dir/a", "dir/b c/", "dir/b c/d+e", "dir/sub/", "dir/sub/x",
    "empty-marker/", "zero-byte.bin", "trailing space ", "deep/a/b/c/d/e.txt", "a-b/x", "a/y",
    "a.b/z", "UPPER/lower", "sort/a", "sort/a-b", "sort/a0", "sort/A", "sort/~z",
] + [f"many/file-{i:02d}.dat" for i in range(22)]


def size_of(i: int, key: str) -> int:
    if key.endswith("/") or key == "zero-byte.bin":
        return 0
    return (i * 37 + 5) % 700


@pytest.fixture(scope="module")
def servers(moto_nocheck):
    """(moto client, list server client, moto endpoint, list server url, served objects)."""
    moto_s3 = s3_client(moto_nocheck.endpoint)
    moto_s3.create_bucket(Bucket=BUCKET)
    for i, key in enumerate(NAMES):
        moto_s3.put_object(Bucket=BUCKET, Key=key, Body=b"\0" * size_of(i, key))

    objects = raw_listing(moto_nocheck.endpoint)
    assert len(objects) == len(NAMES)
    url, stop = listserver.start_server(objects, BUCKET)
    ours = s3_client(url)
    yield moto_s3, ours, moto_nocheck.endpoint, url, objects
    stop()
    for key in NAMES:
        moto_s3.delete_object(Bucket=BUCKET, Key=key)
    moto_s3.delete_bucket(Bucket=BUCKET)


def raw_listing(endpoint: str) -> list[tuple]:
    """moto's objects as ``(key bytes, size, LastModified text, etag)``, in byte order."""
    body = fetch(f"{endpoint}/{BUCKET}?list-type=2")
    root = etree.fromstring(body)
    objects = [
        (c.findtext(f"{NS}Key").encode(), int(c.findtext(f"{NS}Size")),
         c.findtext(f"{NS}LastModified"), c.findtext(f"{NS}ETag").strip('"'))
        for c in root.iter(f"{NS}Contents")
    ]
    return sorted(objects)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def s3_client(endpoint: str):
    """A path-style boto3 client that sends exactly the EncodingType it is given.

    botocore adds ``encoding-type=url`` to every listing and decodes the answer itself, so
    a listing without it could never be compared; its handler is taken out here.
    """
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(s3={"addressing_style": "path"},
                      request_checksum_calculation="when_required"),
    )
    for op in ("ListObjects", "ListObjectsV2"):
        client.meta.events.unregister(f"before-parameter-build.s3.{op}",
                                      botocore.handlers.set_list_objects_encoding_type_url)
    return client


def pages(client, op: str, **params) -> list[dict]:
    """Every page of one listing, following NextMarker/last Key (V1) or the token (V2)."""
    result = []
    cursor = {}
    while True:
        page = getattr(client, op)(Bucket=BUCKET, MaxKeys=7, **params, **cursor)
        page.pop("ResponseMetadata")
        result.append(page)
        if not page["IsTruncated"]:
            return result
        if op == "list_objects_v2":
            cursor = {"ContinuationToken": page["NextContinuationToken"]}
        else:
            last = [c["Key"] for c in page.get("Contents", ())]
            last += [p["Prefix"] for p in page.get("CommonPrefixes", ())]
            cursor = {"Marker": decoded(page, page.get("NextMarker") or max(last))}
        assert len(result) < 50, f"{op} {params}: no end after 50 pages"


def decoded(page: dict, value: str | None) -> str | None:
    """What a client makes of an encoded field: S3 encodes form style, moto with %20."""
    if value is None or page.get("EncodingType") != "url":
        return value
    return unquote_plus(value)


def comparable(page: dict) -> dict:
    """The fields that must agree, decoded; the cursors are opaque and differ by design."""
    return {
        "Contents": [
            (decoded(page, c["Key"]), c["Size"], c["LastModified"], c["ETag"], c["StorageClass"])
            for c in page.get("Contents", ())
        ],
        "CommonPrefixes": [decoded(page, p["Prefix"]) for p in page.get("CommonPrefixes", ())],
        **{name: page.get(name) for name in ("IsTruncated", "MaxKeys", "Name", "EncodingType")},
        **({"KeyCount": page["KeyCount"]} if "KeyCount" in page else {}),
        **{name: decoded(page, page.get(name)) for name in ("Delimiter", "StartAfter")},
        # moto leaves out an empty V1 Prefix, S3 sends <Prefix></Prefix>: the same to a client
        "Prefix": decoded(page, page.get("Prefix") or ""),
    }


LISTINGS = [
    pytest.param(op, enc, extra, id=f"{op}-{enc or 'raw'}-{'-'.join(extra) or 'all'}")
    for op in ("list_objects", "list_objects_v2")
    for enc in (None, "url")
    for extra in ({}, {"Prefix": "dir/"}, {"Prefix": "日本/"}, {"Delimiter": "/"},
                  {"Prefix": "dir/", "Delimiter": "/"})
]


@pytest.mark.parametrize(("op", "encoding", "extra"), LISTINGS)
def test_listing_matches_moto(servers, op, encoding, extra):
    moto_s3, ours, *_ = servers
    params = dict(extra, **({"EncodingType": encoding} if encoding else {}))

    reference_op = op
    if op == "list_objects" and "Delimiter" in extra:
        # moto's V1 repeats every common prefix on every page and does not count them in
        # MaxKeys; its V2 pages are S3's, and V1 pages are the same pages with a marker
        reference_op = "list_objects_v2"

    expected = [comparable(p) for p in pages(moto_s3, reference_op, **params)]
    got = [comparable(p) for p in pages(ours, op, **params)]

    if reference_op != op:
        for page in expected:
            page.pop("KeyCount")
    assert got == expected
    assert sum(len(p["Contents"]) for p in got) > 0
    assert {p["EncodingType"] for p in got} == {encoding}


@pytest.mark.parametrize("encoding", [None, "url"])
def test_v1_next_marker_only_with_delimiter(servers, encoding):
    moto_s3, ours, *_ = servers
    params = {"EncodingType": encoding} if encoding else {}

    plain = pages(ours, "list_objects", **params)
    grouped = pages(ours, "list_objects", Delimiter="/", **params)

    assert len(plain) == math.ceil(len(NAMES) / 7)
    assert not any("NextMarker" in p for p in plain)
    # with a delimiter S3 names the last key or common prefix of each truncated page
    for page in grouped[:-1]:
        names = [c["Key"] for c in page.get("Contents", ())]
        names += [p["Prefix"] for p in page.get("CommonPrefixes", ())]
        assert page["NextMarker"] == max(names)
    assert "NextMarker" not in grouped[-1]
    # moto differs here (an opaque NextMarker on every truncated page); S3 is the reference
    assert all("NextMarker" in p for p in pages(moto_s3, "list_objects")[:-1])


@pytest.mark.parametrize("start_after", ["dir/b c/", "many/file-10.dat", "zzz"])
def test_v2_start_after_matches_moto(servers, start_after):
    moto_s3, ours, *_ = servers

    expected = pages(moto_s3, "list_objects_v2", StartAfter=start_after)
    got = pages(ours, "list_objects_v2", StartAfter=start_after)

    assert [comparable(p) for p in got] == [comparable(p) for p in expected]


def test_served_objects_are_moto_objects(servers):
    moto_s3, ours, _, _, objects = servers

    listed = [(c["Key"], c["Size"]) for p in pages(ours, "list_objects_v2") for c in p["Contents"]]

    assert listed == [(k.decode(), s) for k, s, _, _ in objects]
    assert sorted(k.encode() for k in NAMES) == [k for k, _, _, _ in objects]
    assert dict(listed)["zero-byte.bin"] == 0
    assert dict(listed)["hash#tag.txt"] == size_of(NAMES.index("hash#tag.txt"), "")
    assert all(lm.endswith("Z") and len(lm) == 24 for _, _, lm, _ in objects)


def element_names(body: bytes) -> tuple[list[str], list[list[str]]]:
    root = etree.fromstring(body)
    top = [child.tag.removeprefix(NS) for child in root]
    contents = [[c.tag.removeprefix(NS) for c in item] for item in root.iter(f"{NS}Contents")]
    return top, contents


V1_ORDER = ["Name", "Prefix", "Marker", "MaxKeys", "EncodingType", "IsTruncated"]
V2_ORDER = ["Name", "Prefix", "NextContinuationToken", "KeyCount", "MaxKeys", "EncodingType",
            "IsTruncated"]


@pytest.mark.parametrize(("query", "order", "moto_extra", "ours_missing"), [
    # moto omits Prefix and Marker on V1 and adds an opaque NextMarker
    ("max-keys=7&encoding-type=url", V1_ORDER, {"NextMarker"}, {"Prefix", "Marker"}),
    ("list-type=2&max-keys=7&encoding-type=url", V2_ORDER, set(), set()),
])
def test_raw_xml_elements(servers, query, order, moto_extra, ours_missing):
    _, _, moto_url, our_url, _ = servers

    moto_top, moto_contents = element_names(fetch(f"{moto_url}/{BUCKET}?{query}"))
    our_body = fetch(f"{our_url}/{BUCKET}?{query}")
    our_top, our_contents = element_names(our_body)

    assert our_body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult '
                               b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">')
    assert our_top == order + ["Contents"] * 7
    assert set(moto_top) == set(our_top) - ours_missing | moto_extra
    assert len(our_contents) == len(moto_contents) == 7
    # per object, the same elements; S3 puts Owner before StorageClass, moto after it
    assert [sorted(c) for c in our_contents] == [sorted(c) for c in moto_contents]
    assert our_contents[0][:4] == ["Key", "LastModified", "ETag", "Size"]


def test_url_encoding_like_s3(servers):
    _, _, _, our_url, _ = servers

    body = fetch(f"{our_url}/{BUCKET}?list-type=2&encoding-type=url&prefix=a")
    keys = [k.text for k in etree.fromstring(body).iter(f"{NS}Key")]

    # "a b.txt", "a%20b.txt", "a+b.txt", ... in byte order; a space becomes "+" as on S3
    assert keys == ["a+b.txt", "a%2520b.txt", "a%2Bb.txt", "a-b/x", "a.b/z", "a/y",
                    "amp%26and.txt"]


def test_virtual_host_style(servers):
    _, _, _, our_url, objects = servers
    port = our_url.rsplit(":", 1)[1]

    request = urllib.request.Request(f"{our_url}/?list-type=2&prefix=many/",
                                     headers={"Host": f"{BUCKET}.localhost:{port}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        keys = [k.text for k in etree.fromstring(response.read()).iter(f"{NS}Key")]

    assert keys == [f"many/file-{i:02d}.dat" for i in range(22)]


def test_errors_name_the_cause(servers):
    _, _, _, our_url, _ = servers

    with pytest.raises(urllib.error.HTTPError) as missing:
        fetch(f"{our_url}/no-such-bucket?list-type=2")
    with pytest.raises(urllib.error.HTTPError) as token:
        fetch(f"{our_url}/{BUCKET}?list-type=2&continuation-token=%25%25")

    assert missing.value.code == 404
    assert b"<Code>NoSuchBucket</Code>" in missing.value.read()
    assert token.value.code == 400
    assert b"The continuation token provided is incorrect" in token.value.read()
