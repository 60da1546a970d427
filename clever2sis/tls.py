"""The one TLS context every HTTPS client of clever2sis uses (Clever, Canvas, the alert webhook).

httpx builds a context for each client made with ``verify=True``, and building one loads the whole CA
bundle (20-25 ms of OpenSSL parsing certifi's file). ``doctor`` makes two clients and ``sync`` several, so
the context is built once per process, when the first client needs it, and shared: a context may serve any
number of connections. It is made by :func:`httpx.create_ssl_context`, as httpx makes its own, so
``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` are honoured as before (read once, when it is built).

httpcore sets the context's ALPN protocols on each connection; every client here speaks HTTP/1.1 only, so
the clients never disagree about them.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """The process's TLS context: verified against certifi's bundle, or SSL_CERT_FILE / SSL_CERT_DIR."""
    return httpx.create_ssl_context()


def verify(transport: httpx.BaseTransport | None) -> ssl.SSLContext | bool:
    """The ``verify=`` for a client: the shared context, or (with an injected transport, which never uses
    it) ``True``, so that a test's client never loads the bundle."""
    return True if transport is not None else ssl_context()
