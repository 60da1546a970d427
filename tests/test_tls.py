"""One TLS context per process: the Clever and Canvas clients share it, it is httpx's own (certifi's bundle,
or SSL_CERT_FILE), and a client on an injected transport never builds it."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import certifi
import httpx
import pytest

from clever2sis import tls
from clever2sis.canvas.client import CanvasClient
from clever2sis.clever.client import CleverClient

PEM_END = "-----END CERTIFICATE-----"


@pytest.fixture(autouse=True)
def fresh_context(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test builds the context from its own environment; the next test (or module) gets a fresh one."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    tls.ssl_context.cache_clear()
    yield
    tls.ssl_context.cache_clear()


def context_of(client: httpx.Client) -> ssl.SSLContext:
    """The context the client's connection pool opens TLS connections with (httpx 0.28 / httpcore 1.x)."""
    transport = client._transport
    assert isinstance(transport, httpx.HTTPTransport)
    context = transport._pool._ssl_context
    assert context is not None
    return context


def bundle() -> list[str]:
    """certifi's certificates, one PEM block each."""
    text = Path(certifi.where()).read_text(encoding="ascii")
    return [
        block[block.index("-----BEGIN") :] + PEM_END for block in text.split(PEM_END) if "-----BEGIN" in block
    ]


def test_the_clever_and_canvas_clients_share_one_context() -> None:
    clever = CleverClient("clever-token-0123456789abcdef")
    canvas = CanvasClient("https://canvas.example.edu", "canvas-token-0123456789")
    other = CanvasClient("https://other.example.edu", "canvas-token-9876543210")
    with clever, canvas, other:
        shared = context_of(clever._http)
        assert context_of(canvas._http) is shared
        assert context_of(other._http) is shared
        assert shared is tls.ssl_context()
    assert shared.verify_mode == ssl.CERT_REQUIRED
    assert shared.check_hostname
    assert len(shared.get_ca_certs()) == len(bundle())


def test_ssl_cert_file_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = bundle()[0]
    (tmp_path / "ca.pem").write_text(one + "\n", encoding="ascii")
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    with CanvasClient("https://canvas.example.edu", "canvas-token-0123456789") as canvas:
        certificates = context_of(canvas._http).get_ca_certs(binary_form=True)
    assert certificates == [ssl.PEM_cert_to_DER_cert(one)]


def test_a_client_on_an_injected_transport_builds_no_context() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={}))
    assert tls.verify(transport) is True
    with CanvasClient("https://canvas.example.edu", "canvas-token-0123456789", transport=transport):
        pass
    assert tls.ssl_context.cache_info().currsize == 0
    assert tls.verify(None) is tls.ssl_context()
