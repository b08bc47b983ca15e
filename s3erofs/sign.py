"""S3 request signing: AWS Signature Version 4 and the legacy Version 2. No I/O.

The clock and the credentials are passed in, so every function here is a pure function of its
arguments and can be checked against fixed vectors.

References:
- SigV4: https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
- S3 SigV4 header signing:
  https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
- SigV2: https://docs.aws.amazon.com/AmazonS3/latest/userguide/RESTAuthentication.html
"""

import base64
import datetime
import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from email.utils import format_datetime

logger = logging.getLogger(__name__)

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"

# RFC 3986 section 2.3: the only bytes that are never percent-encoded
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_QUOTED_BYTE = tuple(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in range(256))


@dataclass(frozen=True)
class Credentials:
    """An access key pair, plus the token of temporary (STS) credentials.

    ``repr`` (and so ``str``) shows the access key id only: the secret and the token never
    reach a log line or a traceback.
    """

    access_key: str
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    def __repr__(self):
        token = ", session_token=<hidden>" if self.session_token else ""
        return f"Credentials(access_key={self.access_key!r}, secret_key=<hidden>{token})"

    __str__ = __repr__


def quote(value: str | bytes) -> str:
    """Percent-encode ``value`` keeping only RFC 3986 unreserved characters.

    :param value: text (encoded as UTF-8 first) or raw bytes.
    :returns: the encoded text; space is ``%20``, ``+`` is ``%2B``, ``/`` is ``%2F``.
    """
    if isinstance(value, str):
        value = value.encode("utf-8")
    return "".join([_QUOTED_BYTE[b] for b in value])


def canonical_query(params: list[tuple[str, str]]) -> str:
    """Build the query string that is both sent on the wire and signed.

    :param params: ``(name, value)`` pairs, unencoded; an empty value gives ``name=``.
    :returns: ``name=value`` pairs, quoted, sorted by encoded name then value, joined by ``&``.
    """
    pairs = sorted((quote(name), quote(value)) for name, value in params)
    return "&".join(f"{name}={value}" for name, value in pairs)


def _utc(now: datetime.datetime) -> datetime.datetime:
    # a naive datetime is taken as UTC (as botocore does), never as local time
    if now.tzinfo is None:
        return now.replace(tzinfo=datetime.UTC)
    return now.astimezone(datetime.UTC)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def canonical_headers(headers: dict[str, str]) -> tuple[str, str]:
    """Return the canonical header block and the signed header list.

    :param headers: header names (any case) and values to sign.
    :returns: ``("name:value\\n" * n, "name1;name2")``, names lower-cased and sorted,
        values trimmed with inner runs of spaces folded to one.
    """
    folded = {name.lower().strip(): " ".join(value.split()) for name, value in headers.items()}
    names = sorted(folded)
    block = "".join(f"{name}:{folded[name]}\n" for name in names)
    return block, ";".join(names)


def canonical_request(method: str, path: str, query: str, headers: dict[str, str],
                      payload_hash: str) -> str:
    """SigV4 task 1: the canonical request.

    :param path: the URI path exactly as sent (S3: not normalised, not encoded again).
    :param query: the canonical query string (see :func:`canonical_query`).
    :param headers: every header to sign, ``host`` included.
    """
    block, signed = canonical_headers(headers)
    return "\n".join([method.upper(), path, query, block, signed, payload_hash])


def credential_scope(date: str, region: str, service: str) -> str:
    """The ``YYYYMMDD/region/service/aws4_request`` scope."""
    return f"{date}/{region}/{service}/aws4_request"


def string_to_sign(timestamp: str, scope: str, creq: str) -> str:
    """SigV4 task 2: algorithm, timestamp, scope and the SHA-256 of the canonical request."""
    digest = hashlib.sha256(creq.encode("utf-8")).hexdigest()
    return "\n".join([ALGORITHM, timestamp, scope, digest])


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """SigV4 task 3: the HMAC chain over date, region, service and ``aws4_request``."""
    key = _hmac(f"AWS4{secret_key}".encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def signature(key: bytes, sts: str) -> str:
    """SigV4 task 4: hex HMAC-SHA256 of the string to sign."""
    return hmac.new(key, sts.encode("utf-8"), hashlib.sha256).hexdigest()


def sign_v4(method: str, host: str, path: str, query: str, creds: Credentials, region: str,
            now: datetime.datetime, *, service: str = "s3", payload_hash: str = EMPTY_SHA256,
            headers: dict[str, str] | None = None) -> dict[str, str]:
    """Sign a request with SigV4 in the ``Authorization`` header.

    :param host: the ``Host`` header value: ``bucket.s3.amazonaws.com`` or ``127.0.0.1:5000``
        (leave out the port when it is the scheme's default, as HTTP clients do).
    :param path: the already-encoded URI path (``/bucket`` or ``/``).
    :param query: the canonical query string, the same one that is sent.
    :param now: the one clock reading for this request (naive means UTC).
    :param payload_hash: hex SHA-256 of the body, or ``UNSIGNED-PAYLOAD``.
    :param headers: other headers the request sends that must be signed too (e.g. ``Range``).
    :returns: the headers to add: ``Authorization``, ``x-amz-date``,
        ``x-amz-content-sha256`` and, for temporary credentials, ``x-amz-security-token``.
    """
    timestamp = _utc(now).strftime(SIGV4_TIMESTAMP)
    scope = credential_scope(timestamp[:8], region, service)
    added = {"x-amz-date": timestamp, "x-amz-content-sha256": payload_hash}
    if creds.session_token:
        added["x-amz-security-token"] = creds.session_token

    signed = {**(headers or {}), "host": host, **added}
    creq = canonical_request(method, path, query, signed, payload_hash)
    sts = string_to_sign(timestamp, scope, creq)
    _log_v4(creq, sts, creds)

    key = signing_key(creds.secret_key, timestamp[:8], region, service)
    signed_names = canonical_headers(signed)[1]
    added["Authorization"] = (f"{ALGORITHM} Credential={creds.access_key}/{scope}, "
                              f"SignedHeaders={signed_names}, Signature={signature(key, sts)}")
    return added


def _log_v4(creq: str, sts: str, creds: Credentials) -> None:
    # the session token is a credential too: keep it out of the logged canonical request
    if logger.isEnabledFor(logging.DEBUG):
        if creds.session_token:
            creq = creq.replace(creds.session_token, "<hidden>")
        logger.debug("SigV4 canonical request:\n%s", creq)
        logger.debug("SigV4 string to sign:\n%s", sts)


def string_to_sign_v2(method: str, date: str, amz_headers: dict[str, str], resource: str) -> str:
    """SigV2: method, Content-MD5, Content-Type, Date, ``x-amz-*`` headers, resource.

    Content-MD5 and Content-Type are empty: the requests we sign have no body.
    """
    amz = "".join(f"{name.lower()}:{amz_headers[name].strip()}\n" for name in sorted(amz_headers))
    return f"{method.upper()}\n\n\n{date}\n{amz}{resource}"


def signature_v2(secret_key: str, sts: str) -> str:
    """SigV2: base64 of the HMAC-SHA1 of the string to sign."""
    digest = hmac.new(secret_key.encode("utf-8"), sts.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def sign_v2(method: str, resource: str, creds: Credentials,
            now: datetime.datetime) -> dict[str, str]:
    """Sign a request with the legacy SigV2 (HMAC-SHA1) scheme.

    :param resource: the canonical resource: ``/bucket/`` (or ``/bucket/key``); list
        parameters such as ``prefix`` or ``marker`` are not part of it.
    :param now: the one clock reading for this request (naive means UTC).
    :returns: ``Date``, ``Authorization`` and, for temporary credentials,
        ``x-amz-security-token``.
    """
    added = {"Date": format_datetime(_utc(now), usegmt=True)}
    amz = {}
    if creds.session_token:
        amz["x-amz-security-token"] = creds.session_token

    sts = string_to_sign_v2(method, added["Date"], amz, resource)
    if logger.isEnabledFor(logging.DEBUG):
        logged = sts.replace(creds.session_token, "<hidden>") if creds.session_token else sts
        logger.debug("SigV2 string to sign:\n%s", logged)

    added["Authorization"] = f"AWS {creds.access_key}:{signature_v2(creds.secret_key, sts)}"
    added.update(amz)
    return added
