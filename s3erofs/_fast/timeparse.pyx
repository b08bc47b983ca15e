"""Listing fields to numbers: ``LastModified`` to (seconds, nanoseconds) and ``Size`` to int64.

Every timestamp is converted as UTC with calendar arithmetic done here in C: no Python
``datetime`` per value and never the local time zone (mkfs.erofs's ``mktime`` shifts mtimes
with ``TZ``). Accepted forms:

- ISO 8601 as S3 and S3-compatible servers send it: ``2024-01-01T00:00:00Z``, an optional
  fraction of any length (``.5`` is 500000000 ns; digits past the ninth are truncated), and a
  zone ``Z``/``z``, ``+HH:MM``, ``+HHMM`` or ``+HH`` (either sign); no zone is taken as UTC.
- RFC 1123 as HTTP dates are written: ``Mon, 01 Jan 2024 00:00:00 GMT``.

Errors are ``ValueError`` with attributes ``index`` and ``value`` so the caller can name the key.
"""

from libc.stdint cimport int64_t, uint32_t

import numpy as np

cimport numpy as cnp

cnp.import_array()

cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object text, Py_ssize_t *size) except NULL

cdef const char *_WEEKDAYS = b"MonTueWedThuFriSatSun"
cdef const char *_MONTHS = b"JanFebMarAprMayJunJulAugSepOctNovDec"
cdef int _MONTH_DAYS[13]
_MONTH_DAYS[:] = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

# Size has at most 19 decimal digits below 2**63
cdef int64_t _SIZE_MAX_DIV10 = 922337203685477580
cdef int64_t _SIZE_MAX_LAST = 7


cdef struct Stamp:
    int64_t year
    int month
    int day
    int hour
    int minute
    int second
    uint32_t nsec
    int offset  # seconds east of UTC


cdef inline int _digits(const char *s, Py_ssize_t n, Py_ssize_t pos, int count) noexcept nogil:
    """``count`` decimal digits at ``pos`` as a number, or -1."""
    cdef int value = 0
    cdef int i
    cdef char c

    if pos + count > n:
        return -1
    for i in range(count):
        c = s[pos + i]
        if c < 48 or c > 57:
            return -1
        value = value * 10 + (c - 48)
    return value


cdef inline bint _is_leap(int64_t year) noexcept nogil:
    return (year % 4 == 0 and year % 100 != 0) or year % 400 == 0


cdef inline int64_t _days_from_civil(int64_t y, int m, int d) noexcept nogil:
    """Days since 1970-01-01 of the proleptic Gregorian date (H. Hinnant's algorithm)."""
    cdef int64_t era, yoe, doy, doe

    if m <= 2:
        y -= 1
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


cdef bint _valid(Stamp *t) noexcept nogil:
    cdef int last_day

    if t.month < 1 or t.month > 12 or t.day < 1:
        return False
    last_day = _MONTH_DAYS[t.month] + (1 if t.month == 2 and _is_leap(t.year) else 0)
    # second 60 is a leap second; it counts as the first second of the next minute
    return (t.day <= last_day and t.hour <= 23 and t.minute <= 59 and t.second <= 60
            and -86400 < t.offset < 86400)


cdef Py_ssize_t _fraction(const char *s, Py_ssize_t n, Py_ssize_t pos, Stamp *t) noexcept nogil:
    """Read ``.ddd`` (or ``,ddd``) at ``pos`` into ``t.nsec``; the new position or -1."""
    cdef int ndigits = 0
    cdef uint32_t nsec = 0
    cdef char c

    if pos >= n or (s[pos] != 46 and s[pos] != 44):  # '.' ','
        return pos
    pos += 1
    while pos < n and 48 <= s[pos] <= 57:
        c = s[pos]
        if ndigits < 9:
            nsec = nsec * 10 + <uint32_t>(c - 48)
        ndigits += 1
        pos += 1
    if ndigits == 0:
        return -1
    while ndigits < 9:
        nsec *= 10
        ndigits += 1
    t.nsec = nsec
    return pos


cdef bint _iso_zone(const char *s, Py_ssize_t n, Py_ssize_t pos, Stamp *t) noexcept nogil:
    """``Z``, ``z``, ``+HH``, ``+HHMM``, ``+HH:MM`` (or ``-``) ending the text, or nothing."""
    cdef int sign, hours, minutes = 0

    if pos == n:
        return True
    if s[pos] == 90 or s[pos] == 122:  # 'Z' 'z'
        return pos + 1 == n
    if s[pos] != 43 and s[pos] != 45:  # '+' '-'
        return False
    sign = 1 if s[pos] == 43 else -1
    hours = _digits(s, n, pos + 1, 2)
    pos += 3
    if pos < n:
        if s[pos] == 58:  # ':'
            pos += 1
        minutes = _digits(s, n, pos, 2)
        pos += 2
    if hours < 0 or hours > 23 or minutes < 0 or minutes > 59 or pos != n:
        return False
    t.offset = sign * (hours * 3600 + minutes * 60)
    return True


cdef bint _parse_iso(const char *s, Py_ssize_t n, Stamp *t) noexcept nogil:
    """``YYYY-MM-DDTHH:MM:SS[.fff][zone]``."""
    cdef Py_ssize_t pos

    if n < 19 or s[4] != 45 or s[7] != 45 or s[13] != 58 or s[16] != 58:
        return False
    if s[10] != 84 and s[10] != 116 and s[10] != 32:  # 'T' 't' ' '
        return False
    t.year = _digits(s, n, 0, 4)
    t.month = _digits(s, n, 5, 2)
    t.day = _digits(s, n, 8, 2)
    t.hour = _digits(s, n, 11, 2)
    t.minute = _digits(s, n, 14, 2)
    t.second = _digits(s, n, 17, 2)
    if t.year < 0 or t.month < 0 or t.day < 0 or t.hour < 0 or t.minute < 0 or t.second < 0:
        return False

    pos = _fraction(s, n, 19, t)
    if pos < 0:
        return False
    return _iso_zone(s, n, pos, t)


cdef int _name_index(const char *s, Py_ssize_t n, Py_ssize_t pos,
                     const char *names, int count) noexcept nogil:
    """Index of the three-letter name at ``pos`` in ``names``, or -1."""
    cdef int i

    if pos + 3 > n:
        return -1
    for i in range(count):
        if (s[pos] == names[3 * i] and s[pos + 1] == names[3 * i + 1]
                and s[pos + 2] == names[3 * i + 2]):
            return i
    return -1


cdef bint _parse_rfc1123(const char *s, Py_ssize_t n, Stamp *t) noexcept nogil:
    """``Www, DD Mon YYYY HH:MM:SS GMT`` (``UTC`` is accepted for ``GMT``)."""
    cdef Py_ssize_t pos = 5
    cdef int day_digits = 2

    if _name_index(s, n, 0, _WEEKDAYS, 7) < 0 or n < 5 or s[3] != 44 or s[4] != 32:
        return False
    t.day = _digits(s, n, pos, 2)
    if t.day < 0:  # tolerate a one-digit day ("Mon, 1 Jan 2024 ...")
        day_digits = 1
        t.day = _digits(s, n, pos, 1)
    pos += day_digits
    if t.day < 0 or n != pos + 22 or s[pos] != 32 or s[pos + 4] != 32 or s[pos + 9] != 32:
        return False
    t.month = _name_index(s, n, pos + 1, _MONTHS, 12) + 1
    t.year = _digits(s, n, pos + 5, 4)
    pos += 10
    if s[pos + 2] != 58 or s[pos + 5] != 58 or s[pos + 8] != 32:
        return False
    t.hour = _digits(s, n, pos, 2)
    t.minute = _digits(s, n, pos + 3, 2)
    t.second = _digits(s, n, pos + 6, 2)
    if t.month < 1 or t.year < 0 or t.hour < 0 or t.minute < 0 or t.second < 0:
        return False
    pos += 9
    return ((s[pos] == 71 and s[pos + 1] == 77 and s[pos + 2] == 84)  # GMT
            or (s[pos] == 85 and s[pos + 1] == 84 and s[pos + 2] == 67))  # UTC


cdef bint _parse(const char *s, Py_ssize_t n, int64_t *sec, uint32_t *nsec) noexcept nogil:
    cdef Stamp t
    cdef bint ok

    t.nsec = 0
    t.offset = 0
    if n > 0 and 48 <= s[0] <= 57:
        ok = _parse_iso(s, n, &t)
    else:
        ok = _parse_rfc1123(s, n, &t)
    if not ok or not _valid(&t):
        return False

    sec[0] = (_days_from_civil(t.year, t.month, t.day) * 86400
              + t.hour * 3600 + t.minute * 60 + t.second - t.offset)
    nsec[0] = t.nsec
    return True


cdef const char *_text(object value, Py_ssize_t *n):
    """The bytes of ``value`` (str as UTF-8, or bytes), or NULL for anything else."""
    if isinstance(value, str):
        try:
            return PyUnicode_AsUTF8AndSize(value, n)
        except UnicodeError:  # a lone surrogate
            return NULL
    if isinstance(value, bytes):
        n[0] = len(<bytes>value)
        return <bytes>value
    return NULL


cdef _invalid(str what, Py_ssize_t index, object value):
    error = ValueError(f"invalid {what} at index {index}: {value!r}")
    error.index = index
    error.value = value
    return error


def parse_last_modified(list values):
    """Convert ``LastModified`` texts to seconds and nanoseconds since the epoch (UTC).

    :param values: ``str`` (or ``bytes``) timestamps in listing order.
    :returns: ``(mtime, nsec)``: int64 and uint32 arrays of ``len(values)``; ``mtime`` is the
        floor, so 1969-12-31T23:59:59.5Z is ``(-1, 500000000)``.
    :raises ValueError: naming the index and the value of the first invalid timestamp.
    """
    cdef Py_ssize_t count = len(values)
    cdef cnp.ndarray[cnp.int64_t, ndim=1] mtime = np.empty(count, np.int64)
    cdef cnp.ndarray[cnp.uint32_t, ndim=1] nsec = np.empty(count, np.uint32)
    cdef Py_ssize_t i, n = 0
    cdef const char *s
    cdef int64_t sec_out
    cdef uint32_t nsec_out

    for i in range(count):
        s = _text(values[i], &n)
        if s == NULL or not _parse(s, n, &sec_out, &nsec_out):
            raise _invalid("LastModified", i, values[i])
        mtime[i] = sec_out
        nsec[i] = nsec_out
    return mtime, nsec


def parse_one(value):
    """One timestamp as ``(seconds, nanoseconds)``; for tests and messages."""
    mtime, nsec = parse_last_modified([value])
    return int(mtime[0]), int(nsec[0])


def parse_sizes(list values):
    """Convert ``Size`` texts to int64: ASCII decimal digits only, below 2**63.

    :raises ValueError: naming the index and the value of the first empty, signed,
        non-decimal or too large size.
    """
    cdef Py_ssize_t count = len(values)
    cdef cnp.ndarray[cnp.int64_t, ndim=1] sizes = np.empty(count, np.int64)
    cdef Py_ssize_t i, j, n = 0
    cdef const char *s
    cdef int64_t size, digit

    for i in range(count):
        s = _text(values[i], &n)
        if s == NULL or n == 0:
            raise _invalid("Size", i, values[i])
        size = 0
        for j in range(n):
            digit = s[j] - 48
            if digit < 0 or digit > 9 or size > _SIZE_MAX_DIV10 or (
                    size == _SIZE_MAX_DIV10 and digit > _SIZE_MAX_LAST):
                raise _invalid("Size", i, values[i])
            size = size * 10 + digit
        sizes[i] = size
    return sizes
