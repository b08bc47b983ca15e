"""A fast, read-only S3 listing server on 127.0.0.1 for benchmarks.

It serves one bucket from a sorted list of ``(key bytes, size, LastModified[, etag])`` objects:

- ``GET /BUCKET?...`` (path style) or ``GET /?...`` with ``Host: BUCKET.anything`` (virtual
  host, e.g. ``http://BUCKET.localhost:PORT``: curl resolves ``*.localhost`` itself);
- ListObjects V1 (``marker``) and V2 (``list-type=2``, ``continuation-token``, ``start-after``),
  ``prefix``, ``delimiter``, ``max-keys`` (at most 1000, the default), ``encoding-type=url``;
- ``HEAD`` bucket, ``GET ?location``, ``HEAD`` of an object (sizes only, no object bodies).

Responses follow S3's element names and order (taken from real AWS responses, not from
moto's, which are in model order). Semantics follow S3: V1 sends ``NextMarker`` only with a
delimiter; V2's ``NextContinuationToken`` is opaque (base64 of the last key, so it holds ``+``,
``/`` and ``=`` and tests the client's query encoding); ``encoding-type=url`` encodes like AWS
(space as ``+``, ``/`` kept; botocore and s3erofs decode with ``unquote_plus``).

It does not check signatures: any ``Authorization`` (or none) is accepted, so it is only for
benchmarks and tests on the loopback interface. The request line is read leniently (a target
with raw spaces is accepted), because mkfs.erofs sends markers unencoded.

Speed: every object's ``<Contents>`` fragment is built once as bytes; a page is a bisect into
the sorted keys and one ``bytes.join``. The HTTP/1.1 side is a small asyncio protocol with
keep-alive.

CLI: ``python bench/listserver.py --keys N [--seed S] [--ascii] [--flat] [--port P]
[--bucket NAME]`` prints ``READY http://127.0.0.1:PORT`` once it listens.
Library: ``start_server(objects, bucket) -> (url, stop)``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import bisect
import email.utils
import gc
import hashlib
import logging
import os
import pickle
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import quote_plus, unquote_to_bytes

log = logging.getLogger(__name__)

XMLNS = b"http://s3.amazonaws.com/doc/2006-03-01/"
XML_DECL = b'<?xml version="1.0" encoding="UTF-8"?>\n'
MAX_KEYS = 1000
REGION = "us-east-1"
OWNER = (
    b"<Owner><ID>bench0000000000000000000000000000000000000000000000000000000000bench</ID>"
    b"<DisplayName>bench</DisplayName></Owner>"
)
STORAGE = b"<StorageClass>STANDARD</StorageClass></Contents>"
V1_TAIL = OWNER + STORAGE  # V1 lists the owner by default, V2 only with fetch-owner
V2_TAIL = STORAGE

# control characters cannot appear raw in XML 1.0 text; S3 writes them as references
_XML_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# bytes that encoding-type=url leaves alone (quote_plus with "/" safe)
_URL_UNSAFE_RUN = re.compile(rb"[^A-Za-z0-9_.\-~/]+")

Obj = tuple  # (key: bytes, size: int, last_modified: str[, etag: str])


def xml_text(value: bytes) -> bytes:
    """Escape ``value`` (UTF-8 bytes) for XML element text."""
    value = value.replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b">", b"&gt;")
    if _XML_CONTROL.search(value):
        value = _XML_CONTROL.sub(lambda m: b"&#x%X;" % m[0][0], value)
    return value


def url_text(value: bytes) -> bytes:
    """Encode ``value`` as S3 does for ``encoding-type=url``: form style, ``/`` kept."""
    return _URL_UNSAFE_RUN.sub(_quote_run, value)


_quoted_runs: dict[bytes, bytes] = {}


def _quote_run(match: re.Match) -> bytes:
    # the same runs (" ", "é", "日本") come back over and over in a real bucket
    run = match[0]
    quoted = _quoted_runs.get(run)
    if quoted is None:
        quoted = quote_plus(run).encode("ascii")
        if len(_quoted_runs) < 1_000_000:
            _quoted_runs[run] = quoted
    return quoted


class Bucket:
    """Sorted objects plus their precomputed ``<Contents>`` fragments."""

    def __init__(self, name: str, objects: Sequence[Obj]) -> None:
        self.name = name
        self.keys = [o[0] for o in objects]
        if any(a >= b for a, b in zip(self.keys, self.keys[1:], strict=False)):
            raise ValueError(f"bucket {name!r}: keys must be unique and sorted by bytes")
        self.sizes = [o[1] for o in objects]
        self.objects = objects
        # everything after the key text is the same in both encodings
        rests = [_rest(o) for o in objects]
        pairs = list(zip(self.keys, rests, strict=True))
        self._frags = {
            False: [b"<Contents><Key>" + xml_text(k) + r for k, r in pairs],
            True: [b"<Contents><Key>" + url_text(k) + r for k, r in pairs],
        }

    def frags(self, url: bool) -> list[bytes]:
        """Per-object ``<Contents>`` fragments, without the tail that differs in V1 and V2."""
        return self._frags[url]

    def etag(self, i: int) -> str:
        o = self.objects[i]
        return o[3] if len(o) > 3 else _etag(o[0])


def _etag(key: bytes) -> str:
    # a stable stand-in for the MD5 of the object's content
    return hashlib.md5(key).hexdigest()


def _rest(o: Obj) -> bytes:
    etag = o[3] if len(o) > 3 else _etag(o[0])
    return b"</Key><LastModified>%s</LastModified><ETag>&quot;%s&quot;</ETag><Size>%d</Size>" % (
        o[2].encode(), etag.encode(), o[1])


class S3Error(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def parse_query(query: bytes) -> dict[str, bytes]:
    """Decode a query string as S3 does: ``+`` is a space, ``%XX`` a byte; last value wins."""
    params: dict[str, bytes] = {}
    for part in query.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        name_text = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8", "replace")
        params[name_text] = unquote_to_bytes(value.replace(b"+", b" "))
    return params


def list_objects(bucket: Bucket, params: dict[str, bytes]) -> bytes:
    """Return the ListBucketResult body for V1 or V2 listing parameters."""
    v2 = params.get("list-type") == b"2"
    url = _encoding(params)
    enc = url_text if url else xml_text
    max_keys = _max_keys(params)
    prefix = params.get("prefix", b"")
    delimiter = params.get("delimiter", b"")

    after = _after(params, v2)
    lo = bisect.bisect_left(bucket.keys, prefix)
    if after is not None:
        lo = max(lo, bisect.bisect_right(bucket.keys, after))
    # UTF-8 never contains 0xFF, so every key starting with prefix sorts below prefix + 0xFF
    hi = bisect.bisect_left(bucket.keys, prefix + b"\xff", lo)

    if delimiter:
        chosen, common, truncated = _with_delimiter(bucket, lo, hi, prefix, delimiter, max_keys,
                                                    after)
    else:
        end = min(hi, lo + max_keys)
        chosen, common, truncated = range(lo, end), [], end < hi

    tail = V2_TAIL if v2 else V1_TAIL
    frags = bucket.frags(url)
    if isinstance(chosen, range):
        contents = tail.join(frags[chosen.start:chosen.stop])
    else:
        contents = tail.join([frags[i] for i in chosen])
    if len(chosen):
        contents += tail
    prefixes = b"".join(
        b"<CommonPrefixes><Prefix>%s</Prefix></CommonPrefixes>" % enc(p) for p in common
    )

    last = _last_name(bucket, chosen, common)
    head = _head_v2 if v2 else _head_v1
    body = head(bucket, params, enc, url, max_keys, len(chosen) + len(common), truncated, last)
    return b"".join((XML_DECL, body, contents, prefixes, b"</ListBucketResult>"))


def _encoding(params: dict[str, bytes]) -> bool:
    value = params.get("encoding-type")
    if value is None:
        return False
    if value != b"url":
        raise S3Error(400, "InvalidArgument", f"Invalid Encoding Method specified: {value!r}")
    return True


def _max_keys(params: dict[str, bytes]) -> int:
    raw = params.get("max-keys")
    if raw is None:
        return MAX_KEYS
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise S3Error(400, "InvalidArgument", f"Provided max-keys not an integer or within "
                      f"integer range: {raw!r}")
    return min(value, MAX_KEYS)


def _after(params: dict[str, bytes], v2: bool) -> bytes | None:
    """The key after which the page starts, from marker, continuation-token or start-after."""
    if not v2:
        return params.get("marker") or None
    token = params.get("continuation-token")
    if token is None:
        return params.get("start-after") or None
    try:
        return base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        raise S3Error(400, "InvalidArgument",
                      "The continuation token provided is incorrect") from None


def _with_delimiter(bucket, lo, hi, prefix, delimiter, max_keys, after):
    """Walk keys from ``lo``, rolling up keys that share ``prefix...delimiter``.

    A common prefix not above ``after`` (the marker or token, which may itself be the last
    page's common prefix) was sent already, so its keys are skipped.
    """
    chosen: list[int] = []
    common: list[bytes] = []
    i = lo
    while i < hi and len(chosen) + len(common) < max_keys:
        key = bucket.keys[i]
        cut = key.find(delimiter, len(prefix))
        if cut < 0:
            chosen.append(i)
            i += 1
            continue
        group = key[:cut + len(delimiter)]
        if after is None or group > after:
            common.append(group)
        i = bisect.bisect_left(bucket.keys, group + b"\xff", i)
    return chosen, common, i < hi


def _last_name(bucket, chosen, common) -> bytes | None:
    last_key = bucket.keys[chosen[-1]] if len(chosen) else None
    last_prefix = common[-1] if common else None
    if last_key is None or last_prefix is None:
        return last_key or last_prefix
    return max(last_key, last_prefix)


def _head_v1(bucket, params, enc, url, max_keys, count, truncated, last) -> bytes:
    parts = [
        b'<ListBucketResult xmlns="%s"><Name>%s</Name>' % (XMLNS, xml_text(bucket.name.encode())),
        b"<Prefix>%s</Prefix>" % enc(params.get("prefix", b"")),
        b"<Marker>%s</Marker>" % enc(params.get("marker", b"")),
    ]
    # S3 sends NextMarker only when a delimiter was given; otherwise it is the last Key
    if truncated and params.get("delimiter") and last is not None:
        parts.append(b"<NextMarker>%s</NextMarker>" % enc(last))
    parts.append(b"<MaxKeys>%d</MaxKeys>" % max_keys)
    return b"".join(parts + _head_end(params, enc, url, truncated))


def _head_end(params, enc, url, truncated) -> list[bytes]:
    """Delimiter, EncodingType and IsTruncated: the same in V1 and V2, in S3's order."""
    end = []
    if params.get("delimiter"):
        end.append(b"<Delimiter>%s</Delimiter>" % enc(params["delimiter"]))
    if url:
        end.append(b"<EncodingType>url</EncodingType>")
    end.append(b"<IsTruncated>%s</IsTruncated>" % (b"true" if truncated else b"false"))
    return end


def _head_v2(bucket, params, enc, url, max_keys, count, truncated, last) -> bytes:
    parts = [
        b'<ListBucketResult xmlns="%s"><Name>%s</Name>' % (XMLNS, xml_text(bucket.name.encode())),
        b"<Prefix>%s</Prefix>" % enc(params.get("prefix", b"")),
    ]
    token = params.get("continuation-token")
    if token is None and params.get("start-after"):
        parts.append(b"<StartAfter>%s</StartAfter>" % enc(params["start-after"]))
    if token is not None:
        parts.append(b"<ContinuationToken>%s</ContinuationToken>" % xml_text(token))
    if truncated and last is not None:
        parts.append(b"<NextContinuationToken>%s</NextContinuationToken>"
                     % base64.b64encode(last))
    parts.append(b"<KeyCount>%d</KeyCount><MaxKeys>%d</MaxKeys>" % (count, max_keys))
    return b"".join(parts + _head_end(params, enc, url, truncated))


def error_body(err: S3Error, resource: str, request_id: str) -> bytes:
    return b"".join((
        XML_DECL,
        b"<Error><Code>%s</Code><Message>%s</Message><Resource>%s</Resource>"
        b"<RequestId>%s</RequestId></Error>" % (
            err.code.encode(), xml_text(err.message.encode()),
            xml_text(resource.encode("utf-8", "replace")), request_id.encode(),
        ),
    ))


class Handler:
    """Maps one parsed request to (status, headers, body)."""

    def __init__(self, bucket: Bucket, log_requests: bool = False) -> None:
        self.bucket = bucket
        self.log_requests = log_requests
        self.count = 0

    def handle(self, method: str, target: bytes, host: str):
        self.count += 1
        request_id = f"{self.count:016X}"
        if self.log_requests:
            print(f"{method} {target.decode('utf-8', 'replace')} host={host}", file=sys.stderr,
                  flush=True)
        path, _, query = target.partition(b"?")
        try:
            status, headers, body = self._route(method, unquote_to_bytes(path), query, host)
        except S3Error as err:
            status, headers = err.status, {"Content-Type": "application/xml"}
            body = error_body(err, target.decode("utf-8", "replace"), request_id)
        headers["x-amz-request-id"] = request_id
        return status, headers, body

    def _route(self, method: str, path: bytes, query: bytes, host: str):
        bucket_name, key = self._split(path, host)
        if bucket_name != self.bucket.name:
            raise S3Error(404, "NoSuchBucket", f"The specified bucket does not exist: "
                          f"{bucket_name!r}")
        params = parse_query(query)
        xml = {"Content-Type": "application/xml"}
        if key:
            return self._object(method, key)
        if method == "HEAD":
            return 200, {"x-amz-bucket-region": REGION, **xml}, b""
        if method != "GET":
            raise S3Error(405, "MethodNotAllowed", f"{method} is not allowed on a bucket here")
        if "location" in params:
            return 200, xml, XML_DECL + b'<LocationConstraint xmlns="%s"/>' % XMLNS
        unsupported = set(params) & {"versions", "uploads", "acl", "policy", "versioning",
                                     "tagging", "cors", "lifecycle", "website", "logging"}
        if unsupported:
            raise S3Error(501, "NotImplemented", f"subresource {sorted(unsupported)[0]} is not "
                          "served by the benchmark list server")
        return 200, xml, list_objects(self.bucket, params)

    def _split(self, path: bytes, host: str) -> tuple[str, bytes]:
        hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if hostname.startswith(self.bucket.name + "."):
            return self.bucket.name, path[1:]  # virtual-host style
        bucket, _, key = path[1:].partition(b"/")
        return bucket.decode("utf-8", "replace"), key

    def _object(self, method: str, key: bytes):
        i = bisect.bisect_left(self.bucket.keys, key)
        if i == len(self.bucket.keys) or self.bucket.keys[i] != key:
            raise S3Error(404, "NoSuchKey", "The specified key does not exist.")
        if method != "HEAD":
            raise S3Error(501, "NotImplemented", "object bodies are not served by the "
                          "benchmark list server")
        lm = self.bucket.objects[i][2]
        stamp = _http_date(lm)
        return 200, {
            "Content-Length": str(self.bucket.sizes[i]),
            "Last-Modified": stamp,
            "ETag": f'"{self.bucket.etag(i)}"',
        }, b""


def _http_date(iso: str) -> str:
    from datetime import datetime

    when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return email.utils.format_datetime(when, usegmt=True)


REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 405: b"Method Not Allowed",
           501: b"Not Implemented"}


class HttpProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, for GET and HEAD requests without bodies."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > 65536:
                    self._reply(400, {}, b"request head too large", close=True)
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4:]
            if not self._serve(head):
                return

    def _serve(self, head: bytes) -> bool:
        lines = head.split(b"\r\n")
        first = lines[0]
        # lenient: the target is everything between the first and the last space
        method, _, rest = first.partition(b" ")
        target, _, version = rest.rpartition(b" ")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get(b"content-length", b"0") or 0)
        if length:
            # list requests have no body; skip one if a client sends it anyway
            self.buffer = self.buffer[length:]
        connection = headers.get(b"connection", b"").lower()
        close = connection == b"close" or (version == b"HTTP/1.0" and connection != b"keep-alive")
        status, out_headers, body = self.handler.handle(
            method.decode("ascii", "replace"), target,
            headers.get(b"host", b"").decode("ascii", "replace"),
        )
        self._reply(status, out_headers, body, close=close, head_only=method == b"HEAD")
        return not close

    def _reply(self, status, headers, body, *, close=False, head_only=False) -> None:
        if "Content-Length" not in headers:
            headers["Content-Length"] = str(len(body))
        lines = [b"HTTP/1.1 %d %s" % (status, REASONS.get(status, b"Error"))]
        lines += [f"{k}: {v}".encode() for k, v in headers.items()]
        lines.append(b"Connection: close" if close else b"Connection: keep-alive")
        self.transport.write(b"\r\n".join(lines) + b"\r\n\r\n")
        if not head_only and body:
            self.transport.write(body)
        if close:
            self.transport.close()
            self.transport = None

    def connection_lost(self, exc) -> None:
        self.transport = None


async def _serve(bucket: Bucket, port: int, ready: Callable[[str, Callable[[], None]], None],
                 log_requests: bool = False) -> None:
    loop = asyncio.get_running_loop()
    handler = Handler(bucket, log_requests)
    server = await loop.create_server(lambda: HttpProtocol(handler), "127.0.0.1", port,
                                      reuse_address=True)
    done = asyncio.Event()
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    ready(url, lambda: loop.call_soon_threadsafe(done.set))
    async with server:
        await done.wait()


def start_server(objects: Sequence[Obj], bucket: str = "bench", *, port: int = 0,
                 in_subprocess: bool = False) -> tuple[str, Callable[[], None]]:
    """Serve ``objects`` (sorted by key bytes) as ``bucket``; return ``(url, stop)``.

    :param objects: ``(key bytes, size, LastModified[, etag])`` tuples in byte order.
    :param in_subprocess: run in a child process (keeps the GIL free for a client in this
        process); otherwise in a daemon thread.
    """
    if in_subprocess:
        return _start_subprocess(objects, bucket, port)
    built = Bucket(bucket, objects)
    started = threading.Event()
    result: dict = {}

    def ready(url, stop):
        result.update(url=url, stop=stop)
        started.set()

    thread = threading.Thread(target=lambda: asyncio.run(_serve(built, port, ready)),
                              name=f"listserver-{bucket}", daemon=True)
    thread.start()
    if not started.wait(30):
        raise RuntimeError(f"list server for bucket {bucket!r} did not start within 30 s")

    def stop():
        result["stop"]()
        thread.join(10)

    return result["url"], stop


def _start_subprocess(objects, bucket, port):
    fd, path = tempfile.mkstemp(prefix="listserver-", suffix=".pkl")
    with os.fdopen(fd, "wb") as f:
        pickle.dump(list(objects), f, protocol=pickle.HIGHEST_PROTOCOL)
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--objects", path, "--bucket", bucket,
         "--port", str(port)],
        stdout=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline().strip()
    os.unlink(path)
    if not line.startswith("READY "):
        proc.kill()
        raise RuntimeError(f"list server for bucket {bucket!r} failed to start: {line!r}")

    def stop():
        proc.terminate()
        proc.wait(10)

    return line.split(" ", 1)[1], stop


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a generated bucket listing over HTTP.")
    parser.add_argument("--keys", type=int, help="number of generated objects")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ascii", action="store_true", help="ASCII-only names")
    parser.add_argument("--flat", action="store_true", help="all keys in one directory")
    parser.add_argument("--objects", help="pickle of (key, size, last_modified) tuples instead")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--bucket", default="bench")
    parser.add_argument("--log-requests", action="store_true",
                        help="print each request line to stderr")
    args = parser.parse_args(argv)

    gc.disable()  # millions of long-lived fragments; nothing cyclic is created per request
    if args.objects:
        with open(args.objects, "rb") as f:
            objects = pickle.load(f)
    elif args.keys:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from genbucket import generate

        objects = generate(args.keys, args.seed, ascii_only=args.ascii, flat=args.flat)
    else:
        parser.error("give --keys N or --objects FILE")
    bucket = Bucket(args.bucket, objects)
    gc.freeze()

    def ready(url, _stop):
        print(f"READY {url}", flush=True)

    try:
        asyncio.run(_serve(bucket, args.port, ready, args.log_requests))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
