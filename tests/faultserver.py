"""A scripted HTTP/1.1 server on 127.0.0.1 that misbehaves on request, for client tests.

It serves a script of replies in order (one per request, across all connections) and records
every request. A reply can stall after some body bytes, declare a longer body than it sends,
or cut the connection, so retries, timeouts and partial bodies can be tested for real::

    from faultserver import FaultServer, Reply, error_xml  # tests/ is on sys.path (conftest)

    script = [
        Reply(503, {"Retry-After": "1"}, error_xml("SlowDown", "Please reduce your request rate.")),
        Reply(200, {"Content-Type": "application/xml"}, b"<ListBucketResult/>"),
    ]
    with FaultServer(script) as server:
        ...  # talk to server.url ("http://127.0.0.1:PORT")
        assert server.requests[1].query == "list-type=2"

A script item may also be a callable ``fn(request) -> Reply``, for replies that depend on the
request. When the script runs out, ``default`` is served (a callable or a ``Reply``); without
one the server answers ``599 script exhausted``, which no client retries.

It never hangs a test: stalls wait on an event that ``close()`` (or leaving the ``with``
block) sets, every thread is a daemon, and open connections are shut down on exit.
"""

import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

_MAX_HEAD = 64 * 1024


@dataclass
class Reply:
    """One scripted response.

    :param status: the HTTP status code.
    :param headers: extra headers (``Content-Length`` is added unless given here).
    :param body: the bytes to send (possibly fewer than ``content_length``).
    :param content_length: the declared body length; defaults to ``len(body)``.
    :param stall_after: send this many body bytes, then go silent for ``stall_seconds``.
    :param stall_seconds: how long the stall lasts (bounded: ended early by ``close()``).
    :param disconnect: ``"before"``: reset the connection before sending a byte;
        ``"after"``: close it once the (possibly short) body is sent.
    :param delay: seconds to wait before sending anything (ended early by ``close()``).
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_length: int | None = None
    stall_after: int | None = None
    stall_seconds: float = 0.0
    disconnect: str | None = None
    delay: float = 0.0


@dataclass
class Request:
    """One request as received.

    ``target`` is the raw request target; ``path`` and ``query`` are its two halves, undecoded.
    ``connection`` numbers the TCP connections from 1, so tests can see connection reuse.
    """

    method: str
    target: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    time: float
    connection: int

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


def error_xml(code: str, message: str, request_id: str = "REQ123", **extra: str) -> bytes:
    """An S3 ``<Error>`` document; ``extra`` adds elements such as ``Region=...``."""
    fields = {"Code": code, "Message": message, **extra, "RequestId": request_id}
    inner = "".join(f"<{name}>{value}</{name}>" for name, value in fields.items())
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{inner}</Error>'.encode()


ScriptItem = Reply | Callable[[Request], Reply]


class FaultServer:
    """A threaded HTTP/1.1 server playing ``script``; use it as a context manager.

    :param script: replies (or callables) served in order, one per request.
    :param default: what to serve once the script is used up.
    :ivar requests: every :class:`Request` received, in order.
    :ivar url: ``http://127.0.0.1:PORT``; ``host`` is ``127.0.0.1:PORT``.
    """

    def __init__(self, script: list[ScriptItem] = (), *, default: ScriptItem | None = None):
        self.script = list(script)
        self.default = default
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._connections: set[socket.socket] = set()
        self._accepted = 0

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), self._handler_class(),
                                                        bind_and_activate=False)
        self._server.daemon_threads = True
        self._server.allow_reuse_address = True
        self._server.server_bind()
        self._server.server_activate()
        self.port = self._server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def add(self, *items: ScriptItem) -> None:
        """Append replies to the script."""
        with self._lock:
            self.script.extend(items)

    def close(self) -> None:
        """Stop serving: end stalls, shut open connections, join the accept thread."""
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)

    def __enter__(self) -> "FaultServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _next_reply(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            item = self.script.pop(0) if self.script else self.default
        if item is None:
            return Reply(599, {}, b"fault server: script exhausted")
        return item(request) if callable(item) else item

    def _handler_class(self):
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                with server._lock:
                    server._connections.add(self.request)
                    server._accepted += 1
                    number = server._accepted
                try:
                    server._serve_connection(self.request, number)
                except OSError:
                    pass  # the client went away; nothing to report
                finally:
                    with server._lock:
                        server._connections.discard(self.request)

        return Handler

    def _serve_connection(self, conn: socket.socket, number: int) -> None:
        buffer = b""
        while not self._stop.is_set():
            head, buffer = _read_head(conn, buffer)
            if head is None:
                return
            request = _parse_head(head, number)
            reply = self._next_reply(request)
            if not self._send(conn, reply):
                return

    def _send(self, conn: socket.socket, reply: Reply) -> bool:
        """Send ``reply``; returns False when the connection must end."""
        if reply.delay and self._stop.wait(reply.delay):
            return False
        if reply.disconnect == "before":
            # SO_LINGER 0 makes close() send a reset instead of an orderly FIN
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            return False

        conn.sendall(_head_bytes(reply))
        body = reply.body
        if reply.stall_after is not None:
            conn.sendall(body[:reply.stall_after])
            if self._stop.wait(reply.stall_seconds):
                return False
            body = body[reply.stall_after:]
        conn.sendall(body)

        declared = reply.content_length if reply.content_length is not None else len(reply.body)
        return reply.disconnect != "after" and declared == len(reply.body)


def _read_head(conn: socket.socket, buffer: bytes) -> tuple[bytes | None, bytes]:
    while b"\r\n\r\n" not in buffer:
        if len(buffer) > _MAX_HEAD:
            return None, b""
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    return head, rest


def _parse_head(head: bytes, connection: int) -> Request:
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    path, _, query = target.partition("?")
    return Request(method, target, path, query, headers, time.monotonic(), connection)


_REASONS = {200: "OK", 301: "Moved Permanently", 307: "Temporary Redirect", 400: "Bad Request",
            403: "Forbidden", 404: "Not Found", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def _head_bytes(reply: Reply) -> bytes:
    length = reply.content_length if reply.content_length is not None else len(reply.body)
    headers = dict(reply.headers)
    if not any(name.lower() == "content-length" for name in headers):
        headers["Content-Length"] = str(length)
    lines = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
