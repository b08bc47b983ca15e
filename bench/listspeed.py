"""Measure how fast an S3 endpoint lists a bucket: one pycurl handle, 1000-key pages.

``python bench/listspeed.py URL BUCKET [--v1] [--url-encoding]`` prints keys, pages, seconds
and keys/s. The client does as little as it can (no XML parsing: it finds the last ``<Key>`` or
``<NextContinuationToken>`` with ``rfind``), so the number measures the server.
"""

from __future__ import annotations

import argparse
import io
import time
from urllib.parse import quote, unquote_plus

import pycurl


def list_all(url: str, bucket: str, *, v2: bool = True, url_encoding: bool = False,
             max_keys: int = 1000) -> tuple[int, int, float]:
    """List the whole bucket; return ``(keys, pages, seconds)``."""
    curl = pycurl.Curl()
    curl.setopt(pycurl.HTTPHEADER, ["Authorization: AWS bench:unsigned"])
    keys = pages = 0
    cursor: bytes | None = None
    start = time.perf_counter()
    while True:
        query = [f"max-keys={max_keys}"]
        if v2:
            query.insert(0, "list-type=2")
        if url_encoding:
            query.append("encoding-type=url")
        if cursor is not None:
            name = "continuation-token" if v2 else "marker"
            query.append(f"{name}={quote(cursor, safe='')}")
        body = _get(curl, f"{url}/{bucket}?{'&'.join(query)}")
        pages += 1
        keys += body.count(b"<Key>")
        if b"<IsTruncated>true</IsTruncated>" not in body:
            break
        cursor = _next_cursor(body, v2, url_encoding)
    seconds = time.perf_counter() - start
    curl.close()
    return keys, pages, seconds


def _get(curl: pycurl.Curl, url: str) -> bytes:
    buf = io.BytesIO()
    curl.setopt(pycurl.URL, url)
    curl.setopt(pycurl.WRITEDATA, buf)
    curl.perform()
    status = curl.getinfo(pycurl.RESPONSE_CODE)
    if status != 200:
        raise RuntimeError(f"GET {url}: HTTP {status}: {buf.getvalue()[:300]!r}")
    return buf.getvalue()


def _next_cursor(body: bytes, v2: bool, url_encoding: bool) -> bytes:
    if v2:
        start = body.index(b"<NextContinuationToken>") + len(b"<NextContinuationToken>")
        return body[start:body.index(b"</", start)]
    start = body.rindex(b"<Key>") + 5
    key = body[start:body.index(b"</Key>", start)]
    if url_encoding:
        return unquote_plus(key.decode("ascii")).encode()
    return key.replace(b"&lt;", b"<").replace(b"&gt;", b">").replace(b"&amp;", b"&")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("bucket")
    parser.add_argument("--v1", action="store_true", help="ListObjects V1 with marker")
    parser.add_argument("--url-encoding", action="store_true", help="send encoding-type=url")
    args = parser.parse_args()
    keys, pages, seconds = list_all(args.url, args.bucket, v2=not args.v1,
                                    url_encoding=args.url_encoding)
    print(f"{keys} keys, {pages} pages, {seconds:.2f} s, {keys / seconds:,.0f} keys/s")


if __name__ == "__main__":
    main()
