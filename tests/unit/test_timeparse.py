"""_fast.timeparse: LastModified as UTC seconds + nanoseconds, Size as exact int64."""

import datetime
import random
import time

import numpy as np
import pytest

from s3erofs._fast import timeparse

parse_last_modified = timeparse.parse_last_modified
parse_one = timeparse.parse_one
parse_sizes = timeparse.parse_sizes

NEW_YEAR_2024 = 1704067200  # 2024-01-01T00:00:00Z

CASES = [
    ("2024-01-01T00:00:00.5Z", (NEW_YEAR_2024, 500000000)),
    ("2024-01-01T00:00:00.123Z", (NEW_YEAR_2024, 123000000)),
    ("2024-01-01T00:00:00Z", (NEW_YEAR_2024, 0)),
    ("2024-01-01T00:00:00.000Z", (NEW_YEAR_2024, 0)),
    ("2024-01-01T00:00:00.123456789Z", (NEW_YEAR_2024, 123456789)),
    ("2024-01-01T00:00:00.1234567891Z", (NEW_YEAR_2024, 123456789)),
    ("2024-01-01T00:00:00+00:00", (NEW_YEAR_2024, 0)),
    ("2024-01-01T00:00:00.000+0000", (NEW_YEAR_2024, 0)),
    ("2024-01-01T02:00:00+02:00", (NEW_YEAR_2024, 0)),
    ("2023-12-31T19:00:00-05:00", (NEW_YEAR_2024, 0)),
    ("2024-01-01T00:00:00z", (NEW_YEAR_2024, 0)),
    ("Mon, 01 Jan 2024 00:00:00 GMT", (NEW_YEAR_2024, 0)),
    ("2024-02-29T23:59:59.999Z", (1709251199, 999000000)),
    ("1970-01-01T00:00:00Z", (0, 0)),
    ("1969-12-31T23:59:59.5Z", (-1, 500000000)),
    ("1900-03-01T00:00:00Z", (-2203891200, 0)),
    ("2038-01-19T03:14:08Z", (2**31, 0)),
]


@pytest.mark.parametrize("text, expected", CASES)
def test_forms(text, expected):
    assert parse_one(text) == expected


@pytest.mark.parametrize("tz", ["America/New_York", "Asia/Tokyo", "UTC"])
def test_local_time_zone_is_never_used(tz, monkeypatch):
    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        assert time.timezone != 0 or tz == "UTC"
        assert [parse_one(text) for text, _ in CASES] == [expected for _, expected in CASES]
    finally:
        monkeypatch.undo()
        time.tzset()


def test_columns_and_dtypes():
    mtime, nsec = parse_last_modified(["2024-01-01T00:00:00.5Z", "1969-12-31T23:59:59Z"])

    assert mtime.dtype == np.int64 and nsec.dtype == np.uint32
    assert mtime.tolist() == [NEW_YEAR_2024, -1]
    assert nsec.tolist() == [500000000, 0]


def test_empty_list():
    mtime, nsec = parse_last_modified([])

    assert len(mtime) == 0 and len(nsec) == 0


@pytest.mark.parametrize("bad", [
    "garbage", "", "2024-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "2024-01-01T24:00:00Z",
    "2024-01-01T00:00:00.Z", "2024-01-01T00:00:00ZZ", "2024-01-01T00:00:00+02:",
    "2024-01-01T00:00:00+2400", "Mon, 01 Jan 2024 00:00:00 PST", "Mon, 01 Foo 2024 00:00:00 GMT",
    "２０２４-01-01T00:00:00Z", "2024-01-01", None, 1704067200,
])
def test_invalid_value_names_index_and_value(bad):
    values = ["2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", bad]

    with pytest.raises(ValueError) as info:
        parse_last_modified(values)

    assert str(info.value) == f"invalid LastModified at index 2: {bad!r}"
    assert info.value.index == 2
    assert info.value.value == bad


def test_matches_python_datetime_over_random_instants():
    rng = random.Random(20240101)
    epoch = datetime.datetime(1970, 1, 1)
    for _ in range(20000):
        seconds = rng.randrange(-62135596800, 253402300800)  # years 1 to 9999
        nanos = rng.randrange(10**9)
        when = epoch + datetime.timedelta(seconds=seconds)
        text = f"{when.year:04d}-{when:%m-%dT%H:%M:%S}.{nanos:09d}Z"

        assert parse_one(text) == (seconds, nanos), text


def test_sizes_are_exact_64_bit():
    values = ["0", "2246119204", "5000000000", "6442450944", "9223372036854775807"]

    sizes = parse_sizes(values)

    assert sizes.dtype == np.int64
    assert sizes.tolist() == [0, 2246119204, 5000000000, 6442450944, 2**63 - 1]


@pytest.mark.parametrize("bad", ["-1", "", "1.5", " 1", "+1", "1_0", "9223372036854775808", "٣"])
def test_invalid_size_names_index_and_value(bad):
    with pytest.raises(ValueError) as info:
        parse_sizes(["1", bad])

    assert str(info.value) == f"invalid Size at index 1: {bad!r}"
    assert (info.value.index, info.value.value) == (1, bad)
