"""Signed S3 bucket requests over one reused curl handle, with retries and clear errors.

The client sends ``GET`` requests on a bucket's root (the list operations). Every request is
signed with a fresh clock reading, so a retry carries a fresh date; the query string that is
signed is the one sent. Redirects are never followed by curl: a 307 is re-signed for its new
host and a wrong-region answer either switches region (``region="auto"``) or says which
``--region`` to pass.

References:
- errors: https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
- retries: https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
- bucket names: https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
"""

import datetime
import email.utils
import ipaddress
import logging
import random
import re
import time
import urllib.parse
from dataclasses import dataclass, field
from io import BytesIO

import pycurl

from . import __version__, safexml, sign
from .errors import S3Error, UsageError

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_CODES = frozenset({"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout"})
REGION_CODES = frozenset({"PermanentRedirect", "AuthorizationHeaderMalformed",
                          "IllegalLocationConstraintException"})

# curl errors worth another attempt: refused or reset connections, timeouts, short bodies
RETRY_CURL_ERRORS = frozenset({
    pycurl.E_COULDNT_RESOLVE_HOST, pycurl.E_COULDNT_CONNECT, pycurl.E_PARTIAL_FILE,
    pycurl.E_OPERATION_TIMEDOUT, pycurl.E_GOT_NOTHING, pycurl.E_SEND_ERROR, pycurl.E_RECV_ERROR,
    pycurl.E_SSL_CONNECT_ERROR, pycurl.E_ABORTED_BY_CALLBACK,
    16, 92,  # CURLE_HTTP2, CURLE_HTTP2_STREAM
})

_LEGACY_BUCKET = re.compile(r"[A-Za-z0-9._-]{1,255}")
_DNS_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_AWS_HOST = re.compile(r"s3(?:[.-]([a-z0-9-]+))?\.amazonaws\.com")
_EXPECTING_REGION = re.compile(r"expecting '([a-z0-9-]+)'")
_ERROR_EXCERPT = 200


@dataclass
class ClientConfig:
    """How to reach S3 and how hard to try.

    :param endpoint_url: ``scheme://host[:port][/path]``; None is AWS,
        ``https://s3.{region}.amazonaws.com``.
    :param region: the signing region; ``"auto"`` starts with us-east-1 and follows the
        region the server names.
    :param url_style: ``"auto"``, ``"path"`` or ``"virtual"`` (bucket in the host name).
    :param signature: 4, 2, or None for anonymous requests.
    :param credentials: a :class:`sign.Credentials`, or None for anonymous requests.
    :param low_speed_time: abort a transfer slower than ``low_speed_limit`` bytes/s for
        this many seconds (curl counts whole seconds).
    :param request_timeout: the limit for one whole request, in seconds.
    :param max_attempts: attempts per request, the first included.
    :param debug_wire: log curl's verbose output (headers) at DEBUG, credentials redacted.
    """

    endpoint_url: str | None = None
    region: str = "us-east-1"
    url_style: str = "auto"
    signature: int | None = 4
    credentials: sign.Credentials | None = None
    connect_timeout: float = 10.0
    low_speed_time: float = 30.0
    low_speed_limit: int = 1
    request_timeout: float = 300.0
    max_attempts: int = 5
    retry_after_cap: float = 20.0
    backoff_base: float = 0.2
    backoff_cap: float = 20.0
    max_redirects: int = 5
    max_body_bytes: int = 256 * 1024 * 1024
    user_agent: str = f"s3erofs/{__version__}"
    debug_wire: bool = False


@dataclass
class _Endpoint:
    scheme: str
    host: str          # lower-case host name or IP literal (IPv6 without brackets)
    port: int | None   # None when it is the scheme's default
    base_path: str     # "" or "/prefix" without a trailing slash

    def netloc(self, host: str | None = None) -> str:
        host = host or self.host
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{self.port}" if self.port else host


@dataclass
class _Target:
    """Where one request goes: ``netloc`` is also the ``Host`` header and what is signed."""

    scheme: str
    netloc: str
    path: str

    def url(self, query: str) -> str:
        return f"{self.scheme}://{self.netloc}{self.path}" + (f"?{query}" if query else "")


@dataclass
class _Response:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float


class _CurlFailure(Exception):
    def __init__(self, code: int, text: str, stalled: bool):
        super().__init__(code, text)
        self.code = code
        self.text = text
        self.stalled = stalled


class _StallWatch:
    """Curl progress callback: abort when fewer than ``limit`` bytes/s arrive for ``seconds``.

    curl's own LOW_SPEED check averages over the last ~5 s, so a few bytes followed by silence
    go unnoticed for up to 5 s longer than asked; this watch counts from the last progress.
    """

    def __init__(self, limit: int, seconds: float):
        self.needed = limit * seconds
        self.seconds = seconds
        self.since = time.monotonic()
        self.mark = 0
        self.stalled = False

    def __call__(self, dltotal: int, dlnow: int, ultotal: int, ulnow: int) -> int:
        now = time.monotonic()
        if self.needed <= 0 or dlnow - self.mark >= self.needed:
            self.since, self.mark = now, dlnow
        elif now - self.since >= self.seconds:
            self.stalled = True
            return 1  # non-zero aborts the transfer (CURLE_ABORTED_BY_CALLBACK)
        return 0


@dataclass
class _ErrorBody:
    """The fields of an S3 ``<Error>`` document; ``xml`` is False for any other body."""

    xml: bool = False
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def code(self) -> str | None:
        return self.fields.get("Code")

    @property
    def message(self) -> str | None:
        return self.fields.get("Message")

    @property
    def request_id(self) -> str | None:
        return self.fields.get("RequestId")


def check_bucket_name(bucket: str) -> None:
    """Refuse a bucket name S3 cannot have (legacy names with capitals or ``_`` pass).

    :raises UsageError: naming the bucket.
    """
    if not bucket:
        raise UsageError("bucket name is empty")
    if not _LEGACY_BUCKET.fullmatch(bucket):
        raise UsageError(f"invalid bucket name {bucket!r}: use 1-255 letters, digits, '.', "
                         "'-' or '_' (3-63 lower-case for new buckets)")


def is_dns_compatible(bucket: str) -> bool:
    """True when ``bucket`` can be a host name label sequence (virtual-host style)."""
    if not _DNS_BUCKET.fullmatch(bucket) or ".." in bucket:
        return False
    if ".-" in bucket or "-." in bucket:
        return False
    return not _is_ip(bucket)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _parse_endpoint(endpoint_url: str | None, region: str) -> _Endpoint:
    if endpoint_url is None:
        return _Endpoint("https", f"s3.{region}.amazonaws.com", None, "")

    parts = urllib.parse.urlsplit(endpoint_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"endpoint URL {endpoint_url!r} must look like https://host[:port]")
    if parts.username or parts.password:
        raise UsageError(f"endpoint URL for host {parts.hostname!r} must not contain "
                         "credentials; pass them as options or in the environment")
    if parts.query or parts.fragment:
        raise UsageError(f"endpoint URL {endpoint_url!r} must not have a query or fragment")

    default_port = 443 if parts.scheme == "https" else 80
    port = parts.port if parts.port not in (None, default_port) else None
    return _Endpoint(parts.scheme, parts.hostname.lower(), port, parts.path.rstrip("/"))


def _aws_region(host: str) -> str | None:
    """The region of an AWS S3 endpoint host name (``s3.amazonaws.com`` is us-east-1)."""
    match = _AWS_HOST.fullmatch(host)
    if not match:
        return None
    return match.group(1) or "us-east-1"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _excerpt(body: bytes) -> str:
    text = repr(body[:_ERROR_EXCERPT].decode("utf-8", "backslashreplace"))
    return text + ("..." if len(body) > _ERROR_EXCERPT else "")


def _position(params: list[tuple[str, str]]) -> str:
    """Which page a listing request fetches, for error messages."""
    values = dict(params)
    for name, label in (("continuation-token", "continuation token"), ("marker", "marker"),
                        ("start-after", "start-after")):
        if values.get(name):
            return f"after {label} {values[name]!r}"
    return "from the start"


def _parse_error_body(body: bytes) -> _ErrorBody:
    try:
        root = safexml.parse(body)
    except ValueError:
        return _ErrorBody()
    if safexml.local_name(root) != "Error":
        return _ErrorBody()
    fields = {safexml.local_name(child): (child.text or "").strip() for child in root
              if isinstance(child.tag, str)}
    return _ErrorBody(True, fields)


def _parse_s3_time(text: str) -> datetime.datetime | None:
    """``2026-01-01T00:00:00Z`` (ServerTime) or ``20260101T000000Z`` (RequestTime)."""
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ", "%Y%m%dT%H%M%SZ"):
        try:
            return datetime.datetime.strptime(text, fmt).replace(tzinfo=datetime.UTC)
        except ValueError:
            continue
    return None


def _retry_after(headers: dict[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = datetime.datetime.now(datetime.UTC)
    return max(0.0, (when - now).total_seconds())


def _redact_wire(text: str) -> str:
    lines = []
    for line in text.splitlines():
        name = line.partition(":")[0].strip().lower()
        if name in ("authorization", "x-amz-security-token"):
            line = f"{line.partition(':')[0]}: <redacted>"
        lines.append(line)
    return "\n".join(lines)


class S3Client:
    """Requests on one bucket through one reused curl handle (one client per thread).

    :param bucket: the bucket name (checked: an empty or invalid name is a UsageError).
    :param config: endpoint, region, signing and retry settings.
    :param clock: returns the current UTC time; read once per request for its signature.
    :ivar requests: how many HTTP requests were sent (retries and redirects included).
    :ivar last_url: the URL of the latest request (it never holds credentials).
    :ivar region: the signing region in use (it changes when ``region="auto"`` follows one).
    """

    def __init__(self, bucket: str, config: ClientConfig | None = None, *, clock=None):
        check_bucket_name(bucket)
        self.bucket = bucket
        self.config = config if config is not None else ClientConfig()
        self.region = "us-east-1" if self.config.region == "auto" else self.config.region
        self.requests = 0
        self.last_url: str | None = None
        self._clock = clock or (lambda: datetime.datetime.now(datetime.UTC))
        self._random = random.Random()

        self._endpoint = _parse_endpoint(self.config.endpoint_url, self.region)
        self._follows_aws = _aws_region(self._endpoint.host) is not None
        self._sent_at: datetime.datetime | None = None
        self.url_style = self._choose_url_style()
        self._curl = self._make_curl()

    def _choose_url_style(self) -> str:
        style = self.config.url_style
        if style not in ("auto", "path", "virtual"):
            raise UsageError(f"URL style {style!r} is not one of auto, path, virtual")
        if style == "virtual" and not is_dns_compatible(self.bucket):
            raise UsageError(f"bucket {self.bucket!r} is not a valid host name; "
                             "virtual-host style needs one (use path style)")
        host = self._endpoint.host
        if style == "virtual" and (_is_ip(host) or host == "localhost"):
            raise UsageError(f"virtual-host style needs a host name, not {host!r}; use path style")
        if style != "auto":
            return style

        if _is_ip(host) or host == "localhost" or not is_dns_compatible(self.bucket):
            return "path"
        if "." in self.bucket and self._endpoint.scheme == "https":
            logger.info("using path-style URLs: bucket %r has dots, which TLS wildcard "
                        "certificates do not match in a host name", self.bucket)
            return "path"
        return "virtual"

    def _make_curl(self) -> pycurl.Curl:
        curl = pycurl.Curl()
        curl.setopt(pycurl.NOSIGNAL, 1)
        curl.setopt(pycurl.FOLLOWLOCATION, 0)
        curl.setopt(pycurl.USERAGENT, self.config.user_agent)
        curl.setopt(pycurl.HTTPGET, 1)
        if self.config.debug_wire:
            curl.setopt(pycurl.VERBOSE, 1)
            curl.setopt(pycurl.DEBUGFUNCTION, self._log_wire)
        return curl

    def _log_wire(self, kind: int, data: bytes) -> None:
        # only curl's own notes and header blocks: bodies are logged elsewhere in summary
        if kind in (pycurl.INFOTYPE_TEXT, pycurl.INFOTYPE_HEADER_IN,
                    pycurl.INFOTYPE_HEADER_OUT):
            text = _redact_wire(data.decode("latin-1"))
            logger.debug("curl: %s", text.rstrip())

    def _bucket_target(self) -> _Target:
        """Scheme, host and path of the bucket root under the current region and style."""
        endpoint = self._endpoint
        host = endpoint.host
        if self.url_style == "virtual":
            netloc = endpoint.netloc(f"{self.bucket}.{host}")
            return _Target(endpoint.scheme, netloc, f"{endpoint.base_path}/")
        path = f"{endpoint.base_path}/{sign.quote(self.bucket)}"
        return _Target(endpoint.scheme, endpoint.netloc(host), path)

    def bucket_url(self, params: list[tuple[str, str]] = ()) -> str:
        """The URL a request with ``params`` goes to (no network)."""
        return self._bucket_target().url(sign.canonical_query(list(params)))

    def get_bucket(self, params: list[tuple[str, str]]) -> bytes:
        """``GET`` the bucket root with ``params``; return the body of the 2xx answer.

        :param params: unencoded ``(name, value)`` query pairs, e.g. ``[("list-type", "2")]``.
        :raises S3Error: for an error answer, or after ``max_attempts`` failed attempts.
        """
        query = sign.canonical_query(list(params))
        position = _position(params)
        target = self._bucket_target()
        failures = 0
        hops = 0

        while True:
            try:
                response = self._perform(target, query)
            except _CurlFailure as failure:
                failures += 1
                if failure.code not in RETRY_CURL_ERRORS or failures >= self.config.max_attempts:
                    raise self._network_error(failure, target, query, position,
                                              failures) from None
                self._pause(failures, None, f"curl error {failure.code} ({failure.text})")
                continue

            if 200 <= response.status < 300:
                return response.body

            error = _parse_error_body(response.body)
            next_target = self._redirect(response, error, target, query, failures + 1)
            if next_target is not None:
                hops += 1
                if hops > self.config.max_redirects:
                    raise S3Error(f"more than {self.config.max_redirects} redirects for GET "
                                  f"{target.url(query)}", status=response.status,
                                  code=error.code, url=target.url(query),
                                  attempts=failures + 1)
                target = next_target
                continue

            retryable = response.status in RETRY_STATUSES or error.code in RETRY_CODES
            if retryable and failures + 1 < self.config.max_attempts:
                failures += 1
                retry_after = _retry_after(response.headers)
                self._pause(failures, retry_after, f"HTTP {response.status} {error.code or ''}")
                continue
            raise self._http_error(response, error, target.url(query), failures + 1)

    list_request = get_bucket

    def _perform(self, target: _Target, query: str) -> _Response:
        """Sign and send one request; a curl failure raises ``_CurlFailure``."""
        url = target.url(query)
        self._sent_at = self._clock()
        headers = {"Host": target.netloc, **self._sign(target, query, self._sent_at)}
        body = BytesIO()
        received: dict[str, str] = {}
        watch = self._apply_options(url, headers, body, received)

        self.requests += 1
        self.last_url = url
        started = time.monotonic()
        try:
            self._curl.perform()
        except pycurl.error as exc:
            seconds = time.monotonic() - started
            code, text = exc.args[0], exc.args[1] if len(exc.args) > 1 else ""
            logger.debug("GET %s -> curl error %d (%s), %d bytes in %.3f s", url, code, text,
                         body.tell(), seconds)
            raise _CurlFailure(code, text, watch.stalled) from None

        seconds = time.monotonic() - started
        status = self._curl.getinfo(pycurl.RESPONSE_CODE)
        logger.debug("GET %s -> %d, %d bytes in %.3f s", url, status, body.tell(), seconds)
        return _Response(status, received, body.getvalue(), seconds)

    def _sign(self, target: _Target, query: str, now: datetime.datetime) -> dict[str, str]:
        config = self.config
        if config.signature is None or config.credentials is None:
            return {}
        if config.signature == 2:
            return sign.sign_v2("GET", f"/{self.bucket}/", config.credentials, now)
        return sign.sign_v4("GET", target.netloc, target.path, query, config.credentials,
                            self.region, now)

    def _apply_options(self, url: str, headers: dict[str, str], body: BytesIO,
                       received: dict[str, str]) -> _StallWatch:
        config = self.config
        limit = config.max_body_bytes

        def write(chunk: bytes):
            if body.tell() + len(chunk) > limit:
                return 0  # tells curl to abort (CURLE_WRITE_ERROR)
            body.write(chunk)
            return None

        def header(line: bytes):
            text = line.decode("latin-1").strip()
            if text.startswith("HTTP/"):
                received.clear()
            elif ":" in text:
                name, _, value = text.partition(":")
                received[name.strip().lower()] = value.strip()

        curl = self._curl
        curl.setopt(pycurl.URL, url)
        curl.setopt(pycurl.HTTPHEADER, [f"{name}: {value}" for name, value in headers.items()])
        curl.setopt(pycurl.WRITEFUNCTION, write)
        curl.setopt(pycurl.HEADERFUNCTION, header)
        curl.setopt(pycurl.CONNECTTIMEOUT_MS, int(config.connect_timeout * 1000))
        curl.setopt(pycurl.TIMEOUT_MS, int(config.request_timeout * 1000))
        curl.setopt(pycurl.LOW_SPEED_LIMIT, config.low_speed_limit)
        curl.setopt(pycurl.LOW_SPEED_TIME, max(1, round(config.low_speed_time)))
        watch = _StallWatch(config.low_speed_limit, config.low_speed_time)
        curl.setopt(pycurl.NOPROGRESS, 0)
        curl.setopt(pycurl.XFERINFOFUNCTION, watch)
        return watch

    def _pause(self, failures: int, retry_after: float | None, reason: str) -> None:
        """Sleep before attempt ``failures + 1``: Retry-After, else full-jitter backoff."""
        config = self.config
        if retry_after is not None:
            delay = min(retry_after, config.retry_after_cap)
        else:
            ceiling = min(config.backoff_cap, config.backoff_base * 2 ** (failures - 1))
            delay = self._random.uniform(0, ceiling)
        logger.info("retrying GET %s in %.2f s after %s (attempt %d of %d)", self.last_url,
                    delay, reason.strip(), failures + 1, config.max_attempts)
        time.sleep(delay)

    def _redirect(self, response: _Response, error: _ErrorBody, target: _Target, query: str,
                  attempts: int) -> _Target | None:
        """Where to send the request next for a 307 or a wrong-region answer, else None."""
        location = response.headers.get("location")
        if response.status == 307 and location:
            parts = urllib.parse.urlsplit(urllib.parse.urljoin(target.url(query), location))
            if parts.scheme not in ("http", "https") or not parts.netloc:
                return None
            logger.debug("307 redirect from %s to %s", target.netloc, parts.netloc)
            return _Target(parts.scheme, parts.netloc.rpartition("@")[2], parts.path or "/")

        region = self._named_region(response, error)
        if region is None or region == self.region:
            return None
        if self.config.region != "auto":
            raise S3Error(f"bucket {self.bucket!r} is in region {region!r}; pass --region "
                          f"{region} (or --region auto) [HTTP {response.status} {error.code}] "
                          f"GET {target.url(query)}", status=response.status, code=error.code,
                          s3_message=error.message, request_id=error.request_id,
                          url=target.url(query), attempts=attempts)
        logger.info("bucket %r is in region %r, not %r: switching", self.bucket, region,
                    self.region)
        self.region = region
        if self._follows_aws:
            self._endpoint.host = f"s3.{region}.amazonaws.com"
        return self._bucket_target()

    def _named_region(self, response: _Response, error: _ErrorBody) -> str | None:
        if response.status != 301 and error.code not in REGION_CODES:
            return None
        region = (response.headers.get("x-amz-bucket-region") or error.fields.get("Region"))
        if region:
            return region
        endpoint = error.fields.get("Endpoint", "")
        for start in range(len(endpoint)):
            # the endpoint may start with the bucket name: bucket.s3.eu-west-1.amazonaws.com
            if (start == 0 or endpoint[start - 1] == ".") and _aws_region(endpoint[start:]):
                return _aws_region(endpoint[start:])
        match = _EXPECTING_REGION.search(error.message or "")
        return match.group(1) if match else None

    def _http_error(self, response: _Response, error: _ErrorBody, url: str,
                    attempts: int) -> S3Error:
        after = f" after {_plural(attempts, 'attempt')}" if attempts > 1 else ""
        if not error.xml:
            shown = _excerpt(response.body) if response.body else "an empty body"
            message = f"HTTP {response.status}{after} with {shown} from GET {url}"
            return S3Error(message, status=response.status, url=url, attempts=attempts)

        text = error.message or "(no message)"
        detail = self._error_detail(error)
        if detail:
            text = f"{text.rstrip('.')}; {detail}"
        message = (f"S3 error {error.code} (HTTP {response.status}){after}: {text} "
                   f"[request id {error.request_id}] GET {url}")
        return S3Error(message, status=response.status, code=error.code,
                       s3_message=error.message, request_id=error.request_id, url=url,
                       attempts=attempts)

    def _error_detail(self, error: _ErrorBody) -> str | None:
        if error.code == "NoSuchBucket":
            return f"bucket {self.bucket!r} does not exist at {self._endpoint.netloc()}"
        if error.code == "RequestTimeTooSkewed":
            return self._skew_detail(error)
        if error.fields.get("Endpoint"):
            return f"endpoint {error.fields['Endpoint']!r}"
        return None

    def _skew_detail(self, error: _ErrorBody) -> str | None:
        server_text = error.fields.get("ServerTime", "")
        server = _parse_s3_time(server_text)
        if server is None:
            return None
        sent = _parse_s3_time(error.fields.get("RequestTime", "")) or self._sent_at
        if sent.tzinfo is None:
            sent = sent.replace(tzinfo=datetime.UTC)

        offset = (server - sent).total_seconds()
        direction = "behind" if offset > 0 else "ahead of"
        amount = (_plural(round(abs(offset) / 60), "minute") if abs(offset) >= 90
                  else _plural(round(abs(offset)), "second"))
        return (f"the local clock is {amount} {direction} the server's "
                f"(ServerTime {server_text}); fix the clock (e.g. enable NTP)")

    def _network_error(self, failure: _CurlFailure, target: _Target, query: str,
                       position: str, attempts: int) -> S3Error:
        config = self.config
        url = target.url(query)
        tries = _plural(attempts, "attempt")
        host = target.netloc
        text = failure.text.lower()
        if failure.stalled or (failure.code == pycurl.E_OPERATION_TIMEDOUT
                               and "too slow" in text):
            message = (f"no data from {host} for {config.low_speed_time:g} s while listing "
                       f"{position} ({tries}) GET {url}")
        elif failure.code == pycurl.E_OPERATION_TIMEDOUT and "connect" in text:
            message = (f"could not connect to {host} within {config.connect_timeout:g} s "
                       f"({tries}) GET {url}")
        elif failure.code == pycurl.E_OPERATION_TIMEDOUT:
            message = (f"no complete answer from {host} within {config.request_timeout:g} s "
                       f"while listing {position} ({tries}) GET {url}")
        elif failure.code == pycurl.E_WRITE_ERROR:
            message = (f"answer from {host} is larger than {config.max_body_bytes} bytes "
                       f"while listing {position} GET {url}")
        else:
            message = (f"network error talking to {host} while listing {position}: "
                       f"{failure.text} (curl error {failure.code}, {tries}) GET {url}")
        return S3Error(message, url=url, attempts=attempts)

    def close(self) -> None:
        """Release the curl handle and its connections."""
        if self._curl is not None:
            self._curl.close()
            self._curl = None

    def __enter__(self) -> "S3Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
