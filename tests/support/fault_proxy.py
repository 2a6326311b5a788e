"""A small HTTP proxy in front of localstripe that plays Stripe's failure modes.

    with FaultProxy(localstripe_url) as proxy:
        gateway = StripeGateway(key, api_base=proxy.url, ...)
        proxy.fail_next(2, "POST", r"/v1/refunds$", status=500)
        proxy.fail_next(1, "POST", r"/v1/refunds$", status=429, retry_after=7)
        proxy.fail_next(1, "POST", r"/confirm$", drop=True, after_forwarding=True)
        proxy.fail_next(1, "GET", r"/v1/refunds", delay=3.0)
        ...
        proxy.seen  # every request: method, path, Idempotency-Key, what was done, when

A fault answers the next N requests that match a method and a path pattern (re.search
on the path without the query) with one of:
  status=409|429|500|...  a Stripe-shaped JSON error (429 with Retry-After if given;
                          error={...} replaces the body's "error" object, for refusals
                          localstripe never makes, such as 400 charge_already_refunded);
  delay=SECONDS           an answer that comes too late (past the client's timeout);
  drop=True               the connection reset with no answer (TCP RST).
By default the fault strikes before the request reaches localstripe (nothing
happened there); with after_forwarding=True localstripe acts first and only the
answer is lost or replaced: the case where a retry could act twice.

localstripe ignores Idempotency-Key headers. Stripe honours them: a retry with the key
of a request that completed gets the first answer again, not a second refund.
`honor_idempotency_keys=True` makes the proxy do that for POSTs it forwarded (a
replay is recorded as such); False shows what our code does against a gateway that
would act twice.

Only 127.0.0.1; one thread per connection; HTTP/1.0 (one request per connection).
"""

from __future__ import annotations

import dataclasses
import http.client
import http.server
import json
import re
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Iterator

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
}

_ERRORS = {
    409: {
        "type": "invalid_request_error",
        "code": "lock_timeout",
        "message": "This object cannot be accessed right now because another API request "
        "or Stripe process is currently accessing it.",
    },
    429: {"type": "invalid_request_error", "code": "rate_limit", "message": "Request rate limit exceeded."},
    500: {"type": "api_error", "message": "Something went wrong on Stripe's end."},
    502: {"type": "api_error", "message": "Bad gateway."},
    503: {"type": "api_error", "message": "Service unavailable."},
}


@dataclasses.dataclass
class Fault:
    method: str
    path: re.Pattern
    remaining: int
    status: int | None = None
    retry_after: float | None = None
    delay: float | None = None
    drop: bool = False
    after_forwarding: bool = False
    error: dict | None = None

    def matches(self, method: str, path: str) -> bool:
        return self.remaining > 0 and self.method in ("*", method) and bool(self.path.search(path))

    def describe(self) -> str:
        what = f"status {self.status}" if self.status else f"delay {self.delay}s" if self.delay else "reset"
        return what + (" after forwarding" if self.after_forwarding else "")


@dataclasses.dataclass
class Seen:
    at: float  # time.monotonic() when the request arrived
    method: str
    path: str
    idempotency_key: str | None
    outcome: str  # "forwarded 200", "replayed 200", "fault status 500", "fault reset after forwarding"...
    # (a fault's outcome is set on arrival; "in flight" until a forwarded answer is back)
    upstream_status: int | None = None  # what localstripe answered, if it was asked


class FaultProxy:
    def __init__(self, upstream: str, *, honor_idempotency_keys: bool = True):
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_host, self.upstream_port = parsed.hostname, parsed.port or 80
        self.honor_idempotency_keys = honor_idempotency_keys
        self.seen: list[Seen] = []
        self._faults: list[Fault] = []
        self._replies: dict[str, tuple[str, tuple[int, list, bytes]]] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        handler = type("Handler", (_Handler,), {"proxy": self})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, address: None  # a client that went away
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="fault-proxy")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    # -- telling it what to do -----------------------------------------------------------
    def fail_next(
        self,
        times: int,
        method: str,
        path: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        delay: float | None = None,
        drop: bool = False,
        after_forwarding: bool = False,
        error: dict | None = None,
    ) -> None:
        if sum(bool(x) for x in (status, delay, drop)) != 1:
            raise ValueError("a fault is one of status=, delay= or drop=True")
        if error is not None and status is None:
            raise ValueError("error= is the body of a status= answer")
        with self._lock:
            self._faults.append(
                Fault(
                    method.upper(),
                    re.compile(path),
                    times,
                    status,
                    retry_after,
                    delay,
                    drop,
                    after_forwarding,
                    error,
                )
            )

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.seen.clear()

    def requests(self, method: str, path: str) -> list[Seen]:
        pattern = re.compile(path)
        with self._lock:
            return [s for s in self.seen if s.method == method.upper() and pattern.search(s.path)]

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    return fault
        return None

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    # -- forwarding -----------------------------------------------------------------------
    def _forward(self, method: str, target: str, headers, body: bytes) -> tuple[int, list, bytes]:
        connection = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=30)
        try:
            forwarded = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
            forwarded["Host"] = f"{self.upstream_host}:{self.upstream_port}"
            forwarded["Content-Length"] = str(len(body))
            connection.request(method, target, body=body, headers=forwarded)
            response = connection.getresponse()
            payload = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            return response.status, kept, payload
        finally:
            connection.close()

    def _upstream(
        self, method: str, target: str, headers, body: bytes, key: str | None
    ) -> tuple[tuple[int, list, bytes], bool]:
        """localstripe's answer, or Stripe's replay of an earlier one for the same key."""
        signature = f"{method} {target} {body!r}"
        if self.honor_idempotency_keys and method == "POST" and key:
            with self._lock:
                stored = self._replies.get(key)
            if stored is not None:
                if stored[0] != signature:
                    return (
                        400,
                        [("Content-Type", "application/json")],
                        json.dumps(
                            {
                                "error": {
                                    "type": "idempotency_error",
                                    "message": "Keys for idempotent requests can only be used with the same "
                                    "parameters they were first used with.",
                                }
                            }
                        ).encode(),
                    ), False
                return stored[1], True
        reply = self._forward(method, target, headers, body)
        if self.honor_idempotency_keys and method == "POST" and key and reply[0] < 500:
            with self._lock:
                self._replies[key] = (signature, reply)
        return reply, False


class _Handler(http.server.BaseHTTPRequestHandler):
    proxy: FaultProxy
    protocol_version = "HTTP/1.0"

    def log_message(self, *args) -> None:
        pass

    def _handle(self) -> None:
        proxy = self.proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = urllib.parse.urlsplit(self.path).path
        key = self.headers.get("Idempotency-Key")
        fault = proxy._take_fault(self.command, path)
        seen = Seen(
            time.monotonic(), self.command, path, key, f"fault {fault.describe()}" if fault else "in flight"
        )
        proxy._record(seen)  # at arrival: a late answer is still being worked on
        reply = None
        if fault is None or fault.after_forwarding:
            reply, replayed = proxy._upstream(self.command, self.path, self.headers, body, key)
            seen.upstream_status = None if replayed else reply[0]
            if fault is None:
                seen.outcome = f"{'replayed' if replayed else 'forwarded'} {reply[0]}"
        if fault is not None:
            if fault.delay:
                proxy._closing.wait(fault.delay)
                if reply is None:  # too late, but it reaches Stripe all the same
                    reply = proxy._upstream(self.command, self.path, self.headers, body, key)[0]
                    seen.upstream_status = reply[0]
            elif fault.drop:
                self._reset()
                return
            else:
                reply = self._error_reply(fault)
        self._send(*reply)

    do_GET = do_POST = do_DELETE = _handle

    def _error_reply(self, fault: Fault) -> tuple[int, list, bytes]:
        error = fault.error or _ERRORS.get(
            fault.status, {"type": "api_error", "message": "Injected failure."}
        )
        headers = [("Content-Type", "application/json"), ("Request-Id", "req_faultproxy")]
        if fault.retry_after is not None:
            headers.append(("Retry-After", f"{fault.retry_after:g}"))
        return fault.status, headers, json.dumps({"error": error}).encode()

    def _send(self, status: int, headers: list, body: bytes) -> None:
        try:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (timed out) before the answer came

    def _reset(self) -> None:
        """Close with a TCP RST: the client sees 'connection reset by peer'."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True
        self.wfile = _Discard()

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass


class _Discard:
    closed = False

    def write(self, data) -> int:
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def gaps(seen: list[Seen]) -> Iterator[float]:
    """Seconds between consecutive requests: the client's backoff, as the server saw it."""
    for earlier, later in zip(seen, seen[1:]):
        yield later.at - earlier.at
