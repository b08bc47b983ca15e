"""ListBucketResult pages for tests, rendered as S3 sends them with encoding-type=url."""

import datetime as dt
from urllib.parse import quote_plus

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def render_time(mtime: int, nsec: int) -> str:
    when = dt.datetime.fromtimestamp(mtime, dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + f".{nsec:09d}Z"


def url(raw: bytes) -> str:
    """Form-style percent-encoding as S3 sends with encoding-type=url."""
    return quote_plus(raw, safe="/")


def render_page(entries, prefix: bytes = b"", *, version: int = 2, truncated: bool = False,
                token: str | None = None, next_marker: bytes | None = None) -> bytes:
    """One ListBucketResult with every key url-encoded.

    ``entries`` are ``(key, size, LastModified text)`` or ``(key, size, mtime, nsec)``.
    """
    head = [f'<ListBucketResult xmlns="{S3_NS}">', "<Name>bucket</Name>",
            f"<Prefix>{url(prefix)}</Prefix>", "<MaxKeys>1000</MaxKeys>",
            "<EncodingType>url</EncodingType>",
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"]
    if version == 2:
        head.append(f"<KeyCount>{len(entries)}</KeyCount>")
    if token is not None:
        head.append(f"<NextContinuationToken>{token}</NextContinuationToken>")
    if next_marker is not None:
        head.append(f"<NextMarker>{url(next_marker)}</NextMarker>")

    contents = []
    for key, size, *when in entries:
        stamp = when[0] if len(when) == 1 else render_time(*when)
        contents.append(f"<Contents><Key>{url(key)}</Key><LastModified>{stamp}</LastModified>"
                        f"<ETag>&quot;0123&quot;</ETag><Size>{size}</Size>"
                        "<StorageClass>STANDARD</StorageClass></Contents>")
    body = "".join(head + contents) + "</ListBucketResult>"
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode()
