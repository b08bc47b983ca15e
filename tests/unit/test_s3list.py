"""s3list: recorded ListBucketResult pages parsed into columns, and pagination over them."""

import logging
import time
from pathlib import Path

import pytest

from s3erofs import sign
from s3erofs.errors import ListingError
from s3erofs.s3list import list_bucket, parse_page, show_key

PAGES = Path(__file__).parent.parent / "_data" / "pages"
NEW_YEAR_2024 = 1704067200  # 2024-01-01T00:00:00Z


def page(name: str) -> bytes:
    return (PAGES / name).read_bytes()


class RecordedBucket:
    """Serves recorded pages in order, one per request, and keeps every request's params."""

    def __init__(self, *names: str):
        self.bodies = [page(name) for name in names]
        self.params: list[list[tuple]] = []

    @property
    def requests(self) -> int:
        return len(self.params)

    def get_bucket(self, params):
        self.params.append(list(params))
        assert self.requests <= len(self.bodies), f"unexpected request {params}"
        return self.bodies[self.requests - 1]

    def queries(self) -> list[str]:
        return [sign.canonical_query(params) for params in self.params]


def keys(columns) -> list[bytes]:
    return [columns.key(i) for i in range(len(columns))]


# parse_page


def test_last_modified_nanoseconds():
    columns = parse_page(page("v2_times.xml")).columns

    assert keys(columns) == [b"t/half", b"t/millis", b"t/whole", b"t/nanos", b"t/offset",
                             b"t/old"]
    assert columns.mtime.tolist() == [NEW_YEAR_2024] * 5 + [-1]
    assert columns.nsec.tolist() == [500000000, 123000000, 0, 123456789, 0, 500000000]


def test_sizes_are_exact_64_bit():
    columns = parse_page(page("v2_big_sizes.xml")).columns

    assert keys(columns) == [b"big/2g", b"big/5g", b"big/6g"]
    assert columns.size.tolist() == [2246119204, 5000000000, 6442450944]
    assert columns.offsets.tolist() == [0, 6, 12, 18]


def test_url_encoded_keys_are_decoded_form_style():
    parsed = parse_page(page("v2_url_encoded.xml"))

    assert parsed.encoding_url
    assert keys(parsed.columns) == [b"a b.txt", b"a+b.txt", b"100%.csv",
                                    "한글/x.txt".encode()]


def test_invalid_escapes_stay_literal_and_never_cross_keys():
    # "a%" followed by "41b" must not decode to "aA" + "b"
    columns = parse_page(page("v2_bad_escapes.xml")).columns

    assert keys(columns) == [b"a%", b"41b", b"100%zz", b"x/y", b"p q"]


def test_url_encoded_page_with_raw_utf8():
    columns = parse_page(page("v2_raw_utf8_encoded.xml")).columns

    assert keys(columns) == ["café x".encode(), "café y".encode()]


def test_keys_without_encoding_type_are_not_decoded():
    parsed = parse_page(page("v2_not_encoded.xml"))

    assert not parsed.encoding_url
    assert keys(parsed.columns) == [b"a+b.txt", b"100%25.csv", "한글/x.txt".encode()]


def test_control_character_key_stays_raw_bytes():
    columns = parse_page(page("v2_control_char.xml")).columns

    assert columns.key(0) == b"bad\x01name"
    assert len(columns.key(0)) == 8
    assert columns.key(1) == b"good"
    assert columns.size.tolist() == [1, 2]


def test_page_fields_v2():
    parsed = parse_page(page("v2_same_token.xml"))

    assert parsed.is_truncated
    assert parsed.next_token == "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="
    assert parsed.next_marker is None
    assert parsed.last_key == b"a"
    assert parsed.key_count == 1


def test_page_fields_v1_are_decoded():
    parsed = parse_page(page("v1_special_3.xml"))

    assert parsed.marker == b"ctp/-%C.svg"
    assert parsed.prefix == b""
    assert parsed.last_key == b"dir/x y"
    assert parsed.next_marker is None


def test_next_marker_without_contents():
    parsed = parse_page(page("v1_next_marker_2.xml"))

    assert len(parsed.columns) == 0
    assert parsed.is_truncated
    assert parsed.next_marker == b"am"
    assert parsed.last_key is None


def test_page_without_namespace():
    parsed = parse_page(page("v2_no_namespace.xml"))

    assert keys(parsed.columns) == [b"plain key"]


def test_missing_is_truncated_means_last_page(caplog):
    caplog.set_level(logging.DEBUG, logger="s3erofs.s3list")

    parsed = parse_page(page("v2_no_is_truncated.xml"))

    assert parsed.is_truncated is False
    assert "no IsTruncated" in caplog.text


@pytest.mark.parametrize("name, message", [
    ("v2_negative_size.xml", "listing page: key 'neg/file': invalid Size '-1'"),
    ("v2_fraction_size.xml", "listing page: key 'frac/file': invalid Size '1.5'"),
    ("v2_no_size.xml", "listing page: key 'nosize/file': no Size"),
    ("v2_no_last_modified.xml", "listing page: key 'nolm/file': no LastModified"),
    ("v2_bad_last_modified.xml",
     "listing page: key 'badlm/file': invalid LastModified 'yesterday'"),
    ("v2_no_key.xml", "listing page: Contents #2 has no Key (after key 'ok')"),
])
def test_bad_contents_name_the_key(name, message):
    with pytest.raises(ListingError) as info:
        parse_page(page(name))

    assert str(info.value) == message
    assert info.value.exit_code == 3


def test_bad_size_after_a_control_character_key_is_escaped():
    body = page("v2_control_char.xml").replace(b"<Size>1</Size>", b"<Size></Size>")

    with pytest.raises(ListingError, match=r"^listing page: key 'bad\\x01name': no Size$"):
        parse_page(body)


def test_html_portal_page():
    with pytest.raises(ListingError, match=r"^not a ListBucketResult \(an HTML page: "):
        parse_page(page("html_portal.html"))


def test_well_formed_html_names_the_root_element():
    body = b"<html><body><p>Sign in</p></body></html>"

    with pytest.raises(ListingError) as info:
        parse_page(body)

    assert str(info.value) == "not a ListBucketResult (root element <html>)"


def test_s3_error_document_names_the_root_element():
    body = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
            b"<Message>Access Denied</Message></Error>")

    with pytest.raises(ListingError, match=r"^not a ListBucketResult \(root element <Error>\)$"):
        parse_page(body)


def test_xml_cut_in_the_middle():
    with pytest.raises(ListingError, match=r"^listing page: malformed XML: .*line 20"):
        parse_page(page("v2_cut.xml"))


@pytest.mark.parametrize("name", ["entity_bomb.xml", "external_entity.xml"])
def test_entities_are_refused_quickly(name):
    started = time.monotonic()

    with pytest.raises(ListingError, match=r"^listing page: "):
        parse_page(page(name))

    assert time.monotonic() - started < 0.5


def test_show_key():
    assert show_key(b"bad\x01name") == r"'bad\x01name'"
    assert show_key("한글".encode()) == "'한글'"
    assert show_key(b"\xff/it's\\") == r"'\xff/it\'s\\'"


def test_thousand_key_page():
    body = thousand_key_page()

    columns = parse_page(body).columns

    assert len(columns) == 1000
    assert columns.key(0) == b"data/part 00000.parquet"
    assert columns.key(999) == b"data/part 00999.parquet"
    assert columns.size.tolist() == [i * 5000000 for i in range(1000)]
    assert columns.mtime.tolist() == [NEW_YEAR_2024 + i for i in range(1000)]
    assert columns.nsec.tolist() == [i * 1000000 for i in range(1000)]


def thousand_key_page() -> bytes:
    """A page shaped like AWS's: namespace, url encoding, ETag and StorageClass per key."""
    items = "".join(
        f"<Contents><Key>data%2Fpart+{i:05d}.parquet</Key>"
        f"<LastModified>2024-01-01T00:{i // 60:02d}:{i % 60:02d}.{i:03d}Z</LastModified>"
        f"<ETag>&quot;{i:032x}&quot;</ETag><Size>{i * 5000000}</Size>"
        "<StorageClass>STANDARD</StorageClass></Contents>"
        for i in range(1000))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult '
            'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name><Prefix></Prefix>'
            "<KeyCount>1000</KeyCount><MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType>"
            f"<IsTruncated>false</IsTruncated>{items}</ListBucketResult>").encode()


# list_bucket


def test_v1_marker_is_the_last_key_without_next_marker():
    bucket = RecordedBucket("v1_no_next_marker_1.xml", "v1_no_next_marker_2.xml")

    columns = list_bucket(bucket, "x/", version=1)

    assert keys(columns) == [b"x/one", b"x/two", b"x/three"]
    assert bucket.requests == 2
    assert bucket.params[0] == [("prefix", "x/"), ("max-keys", "1000"), ("encoding-type", "url")]
    assert "marker=x%2Ftwo" in bucket.queries()[1]
    assert bucket.queries()[1] == "encoding-type=url&marker=x%2Ftwo&max-keys=1000&prefix=x%2F"


def test_v1_page_boundaries_at_special_keys():
    bucket = RecordedBucket(*(f"v1_special_{n}.xml" for n in range(1, 7)))

    columns = list_bucket(bucket, "", version=1)

    assert keys(columns) == [b"a+b/0", b"a+b/1", b"ctp/-%C.svg", b"d", b"dir/x y",
                             b"notes#1.txt", b"with space.txt", b"zz"]
    assert bucket.queries() == [
        "encoding-type=url&max-keys=1000",
        "encoding-type=url&marker=a%2Bb%2F1&max-keys=1000",
        "encoding-type=url&marker=ctp%2F-%25C.svg&max-keys=1000",
        "encoding-type=url&marker=dir%2Fx%20y&max-keys=1000",
        "encoding-type=url&marker=notes%231.txt&max-keys=1000",
        "encoding-type=url&marker=with%20space.txt&max-keys=1000",
    ]


def test_v1_truncated_page_without_contents_follows_next_marker():
    bucket = RecordedBucket("v1_next_marker_1.xml", "v1_next_marker_2.xml", "v1_next_marker_3.xml")

    columns = list_bucket(bucket, "", version=1)

    assert keys(columns) == [b"a", b"b"]
    assert bucket.requests == 3
    assert [dict(p).get("marker") for p in bucket.params] == [None, "a", "am"]


def test_v1_invalid_utf8_marker_is_sent_as_bytes():
    body = page("v1_same_marker.xml").replace(b"<Key>a</Key>", b"<Key>a%FF</Key>")
    bucket = RecordedBucket("v1_next_marker_3.xml")
    bucket.bodies.insert(0, body)

    list_bucket(bucket, "", version=1)

    assert bucket.params[1][-1] == ("marker", b"a\xff")
    assert "marker=a%FF" in bucket.queries()[1]


def test_v2_request_parameters():
    bucket = RecordedBucket("v2_same_token.xml", "v2_big_sizes.xml")

    columns = list_bucket(bucket, "big/", max_keys=500, start_after="big/1")

    assert keys(columns) == [b"a", b"big/2g", b"big/5g", b"big/6g"]
    assert bucket.params == [
        [("list-type", "2"), ("prefix", "big/"), ("max-keys", "500"), ("encoding-type", "url"),
         ("start-after", "big/1")],
        [("list-type", "2"), ("prefix", "big/"), ("max-keys", "500"), ("encoding-type", "url"),
         ("continuation-token", "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")],
    ]


def test_empty_bucket():
    bucket = RecordedBucket("v2_empty.xml")

    columns = list_bucket(bucket, "")

    assert len(columns) == 0
    assert columns.offsets.tolist() == [0]
    assert bucket.requests == 1


def test_same_marker_twice_stops():
    bucket = RecordedBucket("v1_same_marker.xml", "v1_same_marker.xml", "v1_same_marker.xml")

    with pytest.raises(ListingError) as info:
        list_bucket(bucket, "", version=1)

    assert str(info.value) == ("server returned marker 'a' twice; stopping to avoid an endless "
                               "listing")
    # one repeat is allowed (an empty truncated page may repeat the marker); never a third
    assert [dict(p).get("marker") for p in bucket.params] == [None, "a", "a"]


def test_same_continuation_token_twice_stops():
    bucket = RecordedBucket("v2_same_token.xml", "v2_same_token.xml", "v2_same_token.xml")

    with pytest.raises(ListingError) as info:
        list_bucket(bucket, "")

    assert str(info.value) == ("server returned continuation token "
                               "'1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=' twice; stopping "
                               "to avoid an endless listing")
    token = "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="
    assert [dict(p).get("continuation-token") for p in bucket.params] == [None, token, token]


def test_marker_cycle_stops():
    # markers a, am, a, am, a: the third request for marker 'a' is never sent
    back_to_a = page("v1_next_marker_2.xml").replace(b"<NextMarker>am<", b"<NextMarker>a<")
    bucket = RecordedBucket("v1_next_marker_1.xml", "v1_next_marker_2.xml")
    bucket.bodies += [back_to_a, page("v1_next_marker_2.xml"), back_to_a]

    with pytest.raises(ListingError, match="^server returned marker 'a' twice; "):
        list_bucket(bucket, "", version=1)

    assert [dict(p).get("marker") for p in bucket.params] == [None, "a", "am", "a", "am"]


def test_truncated_v2_page_without_token():
    bucket = RecordedBucket("v2_no_token.xml")

    with pytest.raises(ListingError, match="^listing page 1 is truncated but has no "
                                           "NextContinuationToken$"):
        list_bucket(bucket, "")

    assert bucket.requests == 1


def test_truncated_v1_page_with_neither_contents_nor_next_marker():
    body = page("v1_next_marker_2.xml").replace(b"<NextMarker>am</NextMarker>", b"")
    bucket = RecordedBucket("v1_next_marker_1.xml")
    bucket.bodies.append(body)

    with pytest.raises(ListingError, match="^listing page 2 is truncated but has neither "
                                           "Contents nor NextMarker$"):
        list_bucket(bucket, "", version=1)

    assert bucket.requests == 2


def test_page_without_is_truncated_is_not_followed():
    bucket = RecordedBucket("v2_no_is_truncated.xml")

    columns = list_bucket(bucket, "")

    assert keys(columns) == [b"only"]
    assert bucket.requests == 1


def test_bad_page_error_names_page_and_query():
    bucket = RecordedBucket("v2_same_token.xml", "v2_negative_size.xml")

    with pytest.raises(ListingError) as info:
        list_bucket(bucket, "")

    assert str(info.value) == (
        "listing page: key 'neg/file': invalid Size '-1' (page 2, query "
        "continuation-token=1ueGcxLPRx1Tr%2FXYExHnhbYLgveDs2J%2Fwm36Hy4vbOwM%3D&encoding-type=url"
        "&list-type=2&max-keys=1000)")


def test_progress_and_summary_log(caplog):
    caplog.set_level(logging.INFO, logger="s3erofs.s3list")
    bucket = RecordedBucket(*(f"v1_special_{n}.xml" for n in range(1, 7)))
    calls = []

    list_bucket(bucket, b"", version=1, progress=lambda pages, nkeys: calls.append((pages, nkeys)))

    assert calls == [(1, 2), (2, 3), (3, 5), (4, 6), (5, 7), (6, 8)]
    assert [r.getMessage().split(" in ")[:2] for r in caplog.records] == [
        ["listed 8 keys", "6 pages"]]
