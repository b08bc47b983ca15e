"""Pinned listings for the model test: each runs through the fake bucket, s3list, the builder,
the kernel and fsck (``test_model.check_listing``) and also states the expected result by hand,
so a change to model.py cannot quietly move the goalposts.

Add a ``test_regression_*`` here for every falsifying example hypothesis finds.
"""

from collections import Counter

import pytest
from test_model import check_listing

T = 1_700_000_000  # build time
E = "é".encode()


def f(key, size=1, mtime=1_600_000_000, nsec=0):
    return (key, size, mtime, nsec)


@pytest.fixture
def tmp(tmp_path):
    return tmp_path


def test_regression_empty_listing_with_an_empty_first_page(tmp):
    # found by hypothesis: a V2 listing cut at 0 (one empty page) broke the fake bucket
    want = check_listing([[]], b"", tmp)
    assert want.tree == {b"": ("dir", 0o755, None, T, 0, 2)}


def test_regression_object_repeated_across_pages_beside_its_prefix(tmp):
    want = check_listing([[f(b"a", 1)], [f(b"a", 2), f(b"a/b", 3)]], b"", tmp)
    assert want.reports == Counter({(b"a", "shadowed-by-directory"): 2})
    assert want.tree[b"a/b"] == ("file", 0o644, 3, 1_600_000_000, 0, 1)


def test_regression_out_of_order_duplicate_keeps_the_last_listing(tmp):
    want = check_listing([[f(b"b/c"), f(b"a", 7, 5, 6)], [], [f(b"a", 8, 9, 10)]], b"", tmp)
    assert want.tree[b"a"] == ("file", 0o644, 8, 9, 10, 1)
    assert want.reports == Counter({(b"a", "duplicate-key"): 1})


def test_regression_repeated_marker_only_the_kept_one_counts_its_data(tmp):
    want = check_listing([[f(b"m/", 5, 11, 1)], [f(b"m/", 0, 12, 2)]], b"", tmp)
    assert want.tree[b"m"] == ("dir", 0o755, None, 12, 2, 2)
    assert want.reports == Counter({(b"m/", "duplicate-key"): 1})


def test_regression_keys_naming_the_root_under_a_prefix(tmp):
    want = check_listing([[f(b"a/", 3), f(b"a//"), f(b"a//b"), f(b"a/b"), f(b"b/x")]],
                         b"a/", tmp)
    assert want.tree == {b"": ("dir", 0o755, None, T, 0, 2),
                         b"b": ("file", 0o644, 1, 1_600_000_000, 0, 1)}
    assert want.reports == Counter({(b"a//", "root-marker"): 1, (b"a//b", "empty-component"): 1,
                                    (b"b/x", "outside-prefix"): 1})


def test_regression_byte_order_differs_from_directory_order(tmp):
    # 'a-b/x' < 'a/y' < 'a0' as keys, but in the root the names sort 'a' < 'a-b' < 'a0'
    want = check_listing([[f(b"a-b/x")], [f(b"a/y")], [f(b"a0")]], b"", tmp, version=1)
    assert sorted(want.tree) == [b"", b"a", b"a-b", b"a-b/x", b"a/y", b"a0"]


def test_regression_many_names_across_small_dirent_blocks(tmp):
    entries = [f(b"d/%03d-" % n + b"m" * (n % 60), n) for n in range(150)]
    want = check_listing([entries[:70], entries[70:]], b"", tmp, block_size=512)
    assert len(want.tree) == 152


def test_regression_names_at_the_255_byte_limit_in_utf8(tmp):
    keys = sorted([E * 127 + b"x", E * 128, b"d/" + E * 127, b"d/" + b"y" * 255 + b"/z"])
    want = check_listing([[f(k) for k in keys]], b"", tmp)
    assert set(want.tree) == {b"", E * 127 + b"x", b"d", b"d/" + E * 127,
                              b"d/" + b"y" * 255, b"d/" + b"y" * 255 + b"/z"}
    assert want.reports == Counter({(E * 128, "name-too-long"): 1})


def test_regression_control_and_invalid_utf8_bytes_in_directory_names(tmp):
    want = check_listing([[f(b"\x01/\xff/"), f(b"\x01/\xff/x", 0, 2**32, 999_999_999)]],
                         b"", tmp, owner=(70000, 80000), build_time=2**32 + 7)
    assert want.tree[b"\x01/\xff"] == ("dir", 0o755, None, 1_600_000_000, 0, 2)
    assert want.tree[b"\x01"] == ("dir", 0o755, None, 2**32 + 7, 0, 3)
    assert want.tree[b"\x01/\xff/x"] == ("file", 0o644, 0, 2**32, 999_999_999, 1)


def test_regression_first_bad_component_names_the_reason(tmp):
    want = check_listing([[f(b"\x00/.."), f(b"a/../\x00"), f(b"x" * 256 + b"//")]], b"", tmp)
    assert want.reports == Counter({(b"\x00/..", "nul-byte"): 1,
                                    (b"a/../\x00", "dot-component"): 1,
                                    (b"x" * 256 + b"//", "name-too-long"): 1})
