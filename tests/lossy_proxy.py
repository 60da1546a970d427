"""A small HTTP proxy in front of the Canvas test double that loses the answer to the upload's POST.

Every request is forwarded to the upstream server (tests/canvas_server.py) as it came, and its answer sent
back, except the next ``POST .../sis_imports`` while a fault is set. That one is forwarded too, so Canvas
creates the import, and then its answer is lost in one of the ways a real network loses it:

``drop``
    the connection is closed without an answer (a reset proxy, a dying load balancer);
``bad_gateway``
    a 502 from the proxy, in HTML, after it forwarded the request;
``truncate``
    the JSON body cut in half (sent with the length of what is sent, so the client sees a whole answer
    that is not valid JSON).

Listens on 127.0.0.1 only, on a free port, in a daemon thread.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

FAULTS = ("drop", "bad_gateway", "truncate")
UPSTREAM_TIMEOUT_S = 30.0
_UPLOAD = re.compile(r"/api/v1/accounts/[^/]+/sis_imports/?(\?.*)?")
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read what the proxy counted."""

    def do_GET(self) -> None:
        self._forward("GET")

    def do_PUT(self) -> None:
        self._forward("PUT")

    def do_POST(self) -> None:
        self._forward("POST")

    def _forward(self, method: str) -> None:
        proxy = self.server.proxy
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP | {"host"}}
        upstream = urlsplit(proxy.upstream)
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=UPSTREAM_TIMEOUT_S)
        try:
            connection.request(method, self.path, body=body, headers=headers)
            answer = connection.getresponse()
            payload = answer.read()
            answer_headers = [(k, v) for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP]
            status = answer.status
        finally:
            connection.close()
        fault = proxy.take_fault(method, self.path)
        if fault == "drop":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault == "bad_gateway":
            status, payload = 502, b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            answer_headers = [("Content-Type", "text/html")]
        elif fault == "truncate":
            payload = payload[: len(payload) // 2]
        self.send_response(status)
        for name, value in answer_headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    proxy: LossyProxy


class LossyProxy:
    """``with LossyProxy(server.base_url, "drop") as proxy:`` point the client at ``proxy.base_url``."""

    def __init__(self, upstream: str, fault: str | None = None) -> None:
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {FAULTS}")
        self.upstream = upstream
        self.fault = fault
        self.faulted: list[str] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def take_fault(self, method: str, path: str) -> str | None:
        """The fault for this request, if it is the upload's POST and one is set (it is used up)."""
        with self._lock:
            if method != "POST" or self.fault is None or not _UPLOAD.fullmatch(path):
                return None
            fault, self.fault = self.fault, None
            self.faulted.append(fault)
            return fault

    def __enter__(self) -> LossyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
