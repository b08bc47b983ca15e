# cython: language_level=3
"""Split S3 keys into path components and build the directory table.

The rules are those of SEMANTICS.md; tree.py turns the reason codes into reports.
Keys stay in their arena: every name is a slice (offset, length) of it, and a key's
parent directory is looked up only when it differs from the previous key's, which in
listing order is once per directory.
"""

import numpy as np

cimport numpy as cnp
from libc.stdint cimport int64_t, uint8_t
from libc.string cimport memchr, memcmp

cnp.import_array()

# reason codes, named in tree.REASONS
R_EMPTY_COMPONENT = 1
R_DOT_COMPONENT = 2
R_NAME_TOO_LONG = 3
R_NUL_BYTE = 4
R_ROOT_MARKER = 5
R_OUTSIDE_PREFIX = 6
R_MARKER_HAS_DATA = 7  # kept as a directory; the bytes are ignored
R_DUPLICATE_MARKER = 8

cdef enum:
    SLASH = 0x2F
    DOT = 0x2E
    NAME_LEN_MAX = 255


cdef int check_components(const uint8_t *p, int64_t n) noexcept:
    """0 when every '/'-separated component of p[0:n] is a valid name, else a reason."""
    cdef int64_t start = 0, end
    cdef const uint8_t *slash
    if n == 0:
        return R_EMPTY_COMPONENT
    while True:
        slash = <const uint8_t *>memchr(p + start, SLASH, n - start)
        end = (slash - p) if slash != NULL else n
        if end == start:
            return R_EMPTY_COMPONENT
        if p[start] == DOT and (end - start == 1 or (end - start == 2 and p[start + 1] == DOT)):
            return R_DOT_COMPONENT
        if end - start > NAME_LEN_MAX:
            return R_NAME_TOO_LONG
        if memchr(p + start, 0, end - start) != NULL:
            return R_NUL_BYTE
        if slash == NULL:
            return 0
        start = end + 1


cdef int64_t last_slash(const uint8_t *p, int64_t n) noexcept:
    cdef int64_t i = n - 1
    while i >= 0 and p[i] != SLASH:
        i -= 1
    return i


def split_keys(const uint8_t[::1] arena, const int64_t[::1] offsets, bytes prefix):
    """Map keys to directories and files.

    Returns a dict of columns:
    - directories: ``dir_parent``, ``dir_name_off``, ``dir_name_len``, ``dir_marker``
      (key index of the marker that gives its metadata, or -1); directory 0 is the root.
    - files: ``file_parent``, ``file_name_off``, ``file_name_len``, ``file_key``.
    - reports: ``rep_key``, ``rep_reason`` (codes above).
    - ``prefix_markers``: keys equal to the prefix itself (the root's own marker).
    """
    cdef int64_t n = offsets.shape[0] - 1
    cdef int64_t plen = len(prefix)
    cdef const uint8_t *pp = prefix
    cdef const uint8_t *a = &arena[0] if arena.shape[0] else <const uint8_t *>b""
    cdef int64_t i, s, e, ce, ls, reason, d, parent
    cdef bint marker

    cdef cnp.ndarray fparent_arr = np.empty(n, np.int64)
    cdef cnp.ndarray foff_arr = np.empty(n, np.int64)
    cdef cnp.ndarray flen_arr = np.empty(n, np.int64)
    cdef cnp.ndarray fkey_arr = np.empty(n, np.int64)
    cdef int64_t[::1] fparent = fparent_arr, foff = foff_arr, flen = flen_arr, fkey = fkey_arr
    cdef int64_t nfiles = 0

    # directories are few (about one per thousand keys): Python lists and a dict suffice
    dir_parent = [0]
    dir_off = [0]
    dir_len = [0]
    dir_marker = [-1]
    dirs = {b"": 0}
    rep_key = []
    rep_reason = []
    prefix_markers = 0

    # cache of the previous key's parent directory: (start in arena, length, id)
    cdef int64_t cache_s = 0, cache_len = -1, cache_id = 0

    for i in range(n):
        s = offsets[i]
        e = offsets[i + 1]
        if e - s < plen or memcmp(a + s, pp, plen) != 0:
            rep_key.append(i)
            rep_reason.append(R_OUTSIDE_PREFIX)
            continue
        s += plen
        if s == e:
            # the prefix's own marker ("photos/" when listing s3://b/photos/)
            prefix_markers += 1
            continue

        marker = a[e - 1] == SLASH
        ce = e - 1 if marker else e
        if ce == s:
            rep_key.append(i)
            rep_reason.append(R_ROOT_MARKER if marker else R_EMPTY_COMPONENT)
            continue
        reason = check_components(a + s, ce - s)
        if reason:
            rep_key.append(i)
            rep_reason.append(reason)
            continue

        ls = last_slash(a + s, ce - s)  # -1: the parent is the root
        if ls < 0:
            parent = 0
        elif ls == cache_len and memcmp(a + s, a + cache_s, ls) == 0:
            parent = cache_id
        else:
            parent = _ensure_dir(arena, s, ls, dirs, dir_parent, dir_off, dir_len, dir_marker)
            cache_s = s
            cache_len = ls
            cache_id = parent

        if marker:
            d = _ensure_dir(arena, s, ce - s, dirs, dir_parent, dir_off, dir_len, dir_marker)
            if dir_marker[d] >= 0:
                rep_key.append(dir_marker[d])
                rep_reason.append(R_DUPLICATE_MARKER)
            dir_marker[d] = i
        else:
            fparent[nfiles] = parent
            foff[nfiles] = s + ls + 1
            flen[nfiles] = ce - (s + ls + 1)
            fkey[nfiles] = i
            nfiles += 1

    return {
        "dir_parent": np.array(dir_parent, np.int64),
        "dir_name_off": np.array(dir_off, np.int64),
        "dir_name_len": np.array(dir_len, np.int64),
        "dir_marker": np.array(dir_marker, np.int64),
        "file_parent": fparent_arr[:nfiles],
        "file_name_off": foff_arr[:nfiles],
        "file_name_len": flen_arr[:nfiles],
        "file_key": fkey_arr[:nfiles],
        "rep_key": np.array(rep_key, np.int64),
        "rep_reason": np.array(rep_reason, np.int64),
        "prefix_markers": prefix_markers,
    }


cdef int64_t _ensure_dir(const uint8_t[::1] arena, int64_t s, int64_t length, dict dirs,
                         list dir_parent, list dir_off, list dir_len, list dir_marker):
    """Id of the directory at arena[s:s+length], creating it and its ancestors."""
    cdef bytes path = bytes(arena[s:s + length])
    found = dirs.get(path)
    if found is not None:
        return found

    cdef const uint8_t *p = &arena[0] + s
    cdef int64_t ls = last_slash(p, length)
    cdef int64_t parent = 0 if ls < 0 else _ensure_dir(
        arena, s, ls, dirs, dir_parent, dir_off, dir_len, dir_marker)
    cdef int64_t d = len(dir_parent)
    dir_parent.append(parent)
    dir_off.append(s + ls + 1)
    dir_len.append(length - ls - 1)
    dir_marker.append(-1)
    dirs[path] = d
    return d
