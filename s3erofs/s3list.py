"""List a bucket: ListObjectsV2 (or V1) pages parsed into ``KeyColumns``.

Each page is parsed into columns as it arrives and its XML tree dropped; the pages are joined
once at the end. Pagination follows ``IsTruncated`` only (a truncated page may hold no
``Contents``) and stops with ``ListingError`` when the server repeats a marker or token.

References:
- https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html
- https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjects.html
"""

import ctypes
import ctypes.util
import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from urllib.parse import unquote_to_bytes

import numpy as np
from lxml import etree

from s3erofs import safexml, sign
from s3erofs._fast.timeparse import parse_last_modified, parse_sizes
from s3erofs.columns import ColumnsBuilder, KeyColumns
from s3erofs.errors import ListingError, UsageError

logger = logging.getLogger(__name__)

# a % that does not start a %XX escape (url decoding leaves it as it is)
_BAD_ESCAPE = re.compile("%(?![0-9A-Fa-f]{2})")


@dataclass
class Page:
    """One parsed ``ListBucketResult``.

    ``next_marker``, ``last_key``, ``marker``, ``prefix`` and ``start_after`` are raw bytes,
    url-decoded when ``encoding_url``; ``next_token`` is opaque text and never decoded.
    ``key_count`` is the page's ``KeyCount`` or, when absent, its number of ``Contents``.
    """

    columns: KeyColumns
    is_truncated: bool
    next_token: str | None
    next_marker: bytes | None
    last_key: bytes | None
    encoding_url: bool
    key_count: int
    marker: bytes | None = None
    prefix: bytes | None = None
    start_after: bytes | None = None


class _Paths:
    """Compiled XPath expressions for one namespace (S3's, or none)."""

    def __init__(self, namespace: str | None):
        ns = {"s3": namespace} if namespace else {}
        p = "s3:" if namespace else ""

        def compile_(expr):
            return etree.XPath(expr.replace("~", p), namespaces=ns, smart_strings=False)

        self.contents_tag = f"{{{namespace}}}Contents" if namespace else "Contents"
        self.count = compile_("count(~Contents)")
        # [1] takes at most one value per Contents, so the three lists can only be
        # shorter than the Contents count, never shifted against each other
        self.keys = compile_("~Contents/~Key[1]/text()[1]")
        self.sizes = compile_("~Contents/~Size[1]/text()[1]")
        self.stamps = compile_("~Contents/~LastModified[1]/text()[1]")
        self.header = compile_("*[not(self::~Contents)]")


_PATHS = {safexml.S3_NS: _Paths(safexml.S3_NS), None: _Paths(None)}


def show_key(raw: bytes) -> str:
    """A key for messages: quoted like ``repr``, valid UTF-8 shown as text, other bytes
    and non-printable characters escaped (``b"bad\\x01name"`` -> ``'bad\\x01name'``)."""
    out = []
    for ch in raw.decode("utf-8", "surrogateescape"):
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch in "\\'":
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1])
    return "'" + "".join(out) + "'"


def url_decode(text: str) -> bytes:
    """Form-style decoding as S3 applies it: ``+`` is a space, then ``%XX`` is a byte."""
    if "%" not in text and "+" not in text:
        return text.encode()
    return unquote_to_bytes(text.replace("+", " "))


def _parse_root(body: bytes, parser) -> tuple[etree._Element, _Paths]:
    try:
        root = safexml.parse(body, parser)
    except ValueError as exc:
        head = body[:64].lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html")):
            raise ListingError(f"not a ListBucketResult (an HTML page: {body[:80]!r})") from None
        raise ListingError(f"listing page: {exc}") from None

    qname = etree.QName(root)
    if qname.localname != "ListBucketResult" or qname.namespace not in _PATHS:
        raise ListingError(f"not a ListBucketResult (root element <{root.tag}>)")
    return root, _PATHS[qname.namespace]


def _header(root: etree._Element, paths: _Paths) -> dict[str, str]:
    """Text of the page-level elements, by local name (the first of each wins)."""
    fields: dict[str, str] = {}
    for element in paths.header(root):
        fields.setdefault(etree.QName(element).localname, element.text or "")
    return fields


def _is_truncated(fields: dict[str, str]) -> bool:
    value = fields.get("IsTruncated")
    if value is None:
        logger.debug("listing page has no IsTruncated; taking it as the last page")
        return False
    if value.strip().lower() not in ("true", "false"):
        raise ListingError(f"listing page: IsTruncated is {value!r}, not true or false")
    return value.strip().lower() == "true"


def _key_arena(keys: list[str], encoding_url: bool) -> tuple[np.ndarray, np.ndarray]:
    """Keys as one uint8 arena plus int64 offsets (url-decoded when ``encoding_url``)."""
    joined = "".join(keys)
    needs_decoding = encoding_url and ("%" in joined or "+" in joined)
    arena = None
    if joined.isascii() and not needs_decoding:
        arena = joined.encode("ascii")
        lengths = np.fromiter(map(len, keys), np.int64, len(keys))
    elif joined.isascii() and not _BAD_ESCAPE.search("\0".join(keys)):
        # every % starts a complete escape inside its own key (XML text never holds NUL),
        # so the page decodes in one call and each escape shrinks its key by 2 bytes
        lengths = np.fromiter(map(len, keys), np.int64, len(keys))
        lengths -= 2 * np.fromiter(map(str.count, keys, repeat("%")), np.int64, len(keys))
        arena = url_decode(joined)
    if arena is None:
        raw = [url_decode(k) for k in keys] if needs_decoding else [k.encode() for k in keys]
        arena = b"".join(raw)
        lengths = np.fromiter(map(len, raw), np.int64, len(raw))

    offsets = np.zeros(len(keys) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return np.frombuffer(arena, np.uint8).copy(), offsets


def _walk_contents(root, paths: _Paths, encoding_url: bool) -> None:
    """Find the first ``Contents`` without a usable ``Key``, ``Size`` or ``LastModified``
    and raise ``ListingError`` naming it (the slow path, taken only on a bad page)."""
    ns = paths.contents_tag[:-len("Contents")]
    previous = None
    for number, contents in enumerate(root.iterchildren(paths.contents_tag), 1):
        key = contents.findtext(ns + "Key")
        if not key:
            after = f" (after key {show_key(previous)})" if previous is not None else ""
            raise ListingError(f"listing page: Contents #{number} has no Key{after}")
        raw = url_decode(key) if encoding_url else key.encode()
        for field in ("Size", "LastModified"):
            if not contents.findtext(ns + field):
                raise ListingError(f"listing page: key {show_key(raw)}: no {field}")
        previous = raw
    raise ListingError("listing page: Contents fields could not be matched up")  # unreachable


def _contents(root, paths: _Paths, encoding_url: bool) -> KeyColumns:
    count = int(paths.count(root))
    keys, sizes, stamps = paths.keys(root), paths.sizes(root), paths.stamps(root)
    if not len(keys) == len(sizes) == len(stamps) == count:
        _walk_contents(root, paths, encoding_url)

    arena, offsets = _key_arena(keys, encoding_url)
    columns = KeyColumns(arena, offsets, np.zeros(count, np.int64),
                         np.zeros(count, np.int64), np.zeros(count, np.uint32))
    try:
        columns.size = parse_sizes(sizes)
    except ValueError as exc:
        raise _invalid(columns, exc, "Size") from None
    try:
        columns.mtime, columns.nsec = parse_last_modified(stamps)
    except ValueError as exc:
        raise _invalid(columns, exc, "LastModified") from None
    return columns


def _invalid(columns: KeyColumns, exc: ValueError, field: str) -> ListingError:
    key = show_key(columns.key(exc.index))
    return ListingError(f"listing page: key {key}: invalid {field} {exc.value!r}")


def parse_page(body: bytes, parser: etree.XMLParser | None = None) -> Page:
    """Parse one ListObjects (V1 or V2) response body.

    :param body: the 2xx response body.
    :param parser: a parser from ``safexml.make_parser()`` to reuse across pages.
    :raises ListingError: the body is not a well-formed ``ListBucketResult``, or a
        ``Contents`` lacks a valid ``Key``, ``Size`` or ``LastModified`` (named by key).
    """
    root, paths = _parse_root(body, parser)
    fields = _header(root, paths)
    encoding_url = fields.get("EncodingType", "").strip().lower() == "url"
    columns = _contents(root, paths, encoding_url)

    def decoded(name):
        value = fields.get(name)
        if value is None:
            return None
        return url_decode(value) if encoding_url else value.encode()

    key_count = fields.get("KeyCount", "").strip()
    return Page(
        columns=columns,
        is_truncated=_is_truncated(fields),
        next_token=fields.get("NextContinuationToken") or None,
        next_marker=decoded("NextMarker") or None,
        last_key=columns.key(len(columns) - 1) if len(columns) else None,
        encoding_url=encoding_url,
        key_count=int(key_count) if key_count.isdigit() else len(columns),
        marker=decoded("Marker"),
        prefix=decoded("Prefix"),
        start_after=decoded("StartAfter"),
    )


def _param(raw: str | bytes) -> str | bytes:
    """Query values are text when they are UTF-8, else raw bytes (``sign.quote`` takes both)."""
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _first_params(version: int, prefix, max_keys: int, start_after) -> list[tuple]:
    params = [("list-type", "2")] if version == 2 else []
    if prefix:
        params.append(("prefix", _param(prefix)))
    params += [("max-keys", str(max_keys)), ("encoding-type", "url")]
    if start_after:
        # V1 has no start-after; its marker means the same thing ("list keys after this")
        params.append(("start-after" if version == 2 else "marker", _param(start_after)))
    return params


def _next_params(version: int, base: list[tuple], page: Page, number: int) -> list[tuple]:
    """Parameters of the request after the truncated ``page`` (page ``number``)."""
    if version == 2:
        if not page.next_token:
            raise ListingError(f"listing page {number} is truncated but has no "
                               "NextContinuationToken")
        return base + [("continuation-token", page.next_token)]

    # without a delimiter S3 sends no NextMarker: the last key is the marker. NextMarker is
    # not compared with the previous one: moto, for one, sends an md5 token, not a key
    marker = page.next_marker if page.next_marker is not None else page.last_key
    if marker is None:
        raise ListingError(f"listing page {number} is truncated but has neither Contents nor "
                           "NextMarker")
    return base + [("marker", _param(marker))]


def _repeated(params: list[tuple]) -> str:
    name, value = params[-1]
    raw = value if isinstance(value, bytes) else value.encode()
    what = "continuation token" if name == "continuation-token" else name
    return (f"server returned {what} {show_key(raw)} twice; stopping to avoid an endless "
            "listing")


def list_bucket(client, prefix: str | bytes, *, version: int = 2, max_keys: int = 1000,
                start_after: str | bytes | None = None,
                progress: Callable[[int, int], None] | None = None) -> KeyColumns:
    """List every key under ``prefix``, in the order the server returns them.

    :param client: has ``get_bucket(params) -> bytes`` (``s3client.S3Client``).
    :param prefix: only keys starting with it; returned keys are full keys.
    :param version: 2 for ListObjectsV2 (``continuation-token``), 1 for ListObjects
        (``marker``), for servers that handle V1 better.
    :param max_keys: keys per page (S3 caps it at 1000).
    :param start_after: list keys after this one (V1 sends it as the first ``marker``).
    :param progress: called as ``progress(pages, keys)`` after each page.
    :raises ListingError: a malformed page, or pagination that does not progress.
    """
    if version not in (1, 2):
        raise UsageError(f"listing version must be 1 or 2, not {version!r}")
    if max_keys < 1:
        raise UsageError(f"max-keys must be at least 1, not {max_keys}")

    started = time.monotonic()
    parser = safexml.make_parser()
    base = _first_params(version, prefix, max_keys, None)
    params = _first_params(version, prefix, max_keys, start_after)
    # a server may answer one empty truncated page that repeats the marker (S3 semantics
    # allow it), so a request is sent at most twice; the third time is a loop
    sent: Counter[tuple] = Counter({tuple(params): 1})
    columns = ColumnsBuilder()
    npages = 0
    # One worker thread owns the client's single curl handle and fetches page N + 1 while
    # this thread parses page N: the next request needs only the token or last key, which
    # a byte search finds before the page is parsed (both curl and libxml2 drop the GIL).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="s3list-fetch") as fetcher:
        pending = fetcher.submit(client.get_bucket, params)
        while True:
            body = pending.result()
            guess = _peek_next_params(body, version, base)
            prefetched = None
            if guess is not None and sent[tuple(guess)] == 0:
                prefetched = fetcher.submit(client.get_bucket, guess)

            try:
                page = _parse_fetched(body, params, parser, npages + 1)
            except BaseException:
                _discard(prefetched)
                raise
            columns.append(page.columns)
            npages += 1
            if npages % _TRIM_EVERY_PAGES == 0:
                release_free_heap()
            if progress is not None:
                progress(npages, columns.n)
            if not page.is_truncated:
                _discard(prefetched)
                break

            params = _next_params(version, base, page, npages)
            # any earlier request repeated twice means a loop (a, b, a, b, a), not only the last
            if sent[tuple(params)] >= 2:
                _discard(prefetched)
                raise ListingError(_repeated(params))
            sent[tuple(params)] += 1
            if prefetched is not None and guess == params:
                pending = prefetched
            else:
                _discard(prefetched)
                pending = fetcher.submit(client.get_bucket, params)

    columns = columns.finish()
    release_free_heap()
    logger.info("listed %d keys in %d pages in %.2f s", len(columns), npages,
                time.monotonic() - started)
    return columns


def _load_malloc_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to release this way
        return None


_MALLOC_TRIM = _load_malloc_trim()
_TRIM_EVERY_PAGES = 64


def release_free_heap() -> None:
    """Hand heap pages freed by parsed pages back to the OS (glibc keeps them otherwise).

    Every page's lxml tree and strings are freed once its columns are taken, but glibc
    holds the freed memory in its arenas; at a million keys that is as much again as the
    columns themselves.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _discard(future: Future | None) -> None:
    """Wait for a prefetch that turned out not to be needed; its outcome does not matter."""
    if future is not None:
        try:
            future.result()
        except Exception as exc:  # the request was never wanted
            logger.debug("unneeded prefetch failed: %s", exc)


def _peek_next_params(body: bytes, version: int, base: list[tuple]) -> list[tuple] | None:
    """The next request's parameters found by byte search, or None when unsure.

    Only a guess: the parsed page decides. Anything unusual (no IsTruncated, an XML
    escape in the value, a namespace prefix) gives None, and the page is parsed first.
    """
    if b"<IsTruncated>true</IsTruncated>" not in body:
        return None
    if version == 2:
        token = _element_text(body, b"NextContinuationToken", last=False)
        return None if token is None else base + [("continuation-token", token.decode())]

    marker = _element_text(body, b"NextMarker", last=False)
    if marker is None:
        marker = _element_text(body, b"Key", last=True)
    if marker is None:
        return None
    if b"<EncodingType>url</EncodingType>" in body:
        marker = url_decode(marker.decode())
    return base + [("marker", _param(marker))]


def _element_text(body: bytes, name: bytes, *, last: bool) -> bytes | None:
    opening, closing = b"<" + name + b">", b"</" + name + b">"
    start = body.rfind(opening) if last else body.find(opening)
    if start < 0:
        return None
    start += len(opening)
    end = body.find(closing, start)
    if end < 0:
        return None
    value = body[start:end]
    if b"&" in value or b"<" in value or not value.isascii():
        return None
    return value


def _parse_fetched(body: bytes, params: list[tuple], parser, number: int) -> Page:
    query = sign.canonical_query(params)
    try:
        page = parse_page(body, parser)
    except ListingError as exc:
        raise ListingError(f"{exc} (page {number}, query {query})") from None

    logger.debug("page %d (query %s): %d keys, truncated %s", number, query,
                 len(page.columns), page.is_truncated)
    return page
