"""A local webhook receiver for the alert tests: it records every POST and answers from a script.

It listens on 127.0.0.1 only, on a free port, in a daemon thread. ``statuses`` are the answers to the first
requests in turn (then 200); ``hang_s`` makes it wait that long before answering each request (bounded, and
cut short when the receiver is closed).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

WEBHOOK_PATH = "/services/T0001/B0002/webhook-path-secret-0123"
MAX_BODY_BYTES = 1 << 20


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: WebhookReceiver


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        receiver = self.server.receiver
        length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY_BYTES)
        body = self.rfile.read(length)
        with receiver.lock:
            receiver.received.append(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            number = len(receiver.received)
        if receiver.hang_s:
            receiver.closed.wait(receiver.hang_s)
        status = receiver.statuses[number - 1] if number <= len(receiver.statuses) else 200
        answer = b"ok" if status < 400 else b"invalid_payload"
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
        except OSError:  # the client gave up waiting
            pass


class WebhookReceiver:
    """``with WebhookReceiver() as hook:`` a webhook at ``hook.url`` recording ``hook.received``."""

    def __init__(self, statuses: Sequence[int] = (), *, hang_s: float = 0.0) -> None:
        self.statuses = list(statuses)
        self.hang_s = hang_s
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.closed = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{WEBHOOK_PATH}"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.closed.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
