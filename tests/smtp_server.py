"""A minimal local SMTP relay for the alert tests (standard library only), recording every session.

It speaks enough ESMTP for smtplib: EHLO/HELO, STARTTLS, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT,
with implicit TLS as an option. It offers AUTH before TLS too, so a client that would send credentials in
clear could; each command is recorded with whether the session was encrypted when it came, which is what
the tests check. ``refuse_first`` sessions get a 421 greeting; ``hang`` never greets at all.

Listens on 127.0.0.1 only, on a free port, in daemon threads; every loop in it is bounded.
"""

from __future__ import annotations

import base64
import shutil
import socket
import socketserver
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

SESSION_TIMEOUT_S = 10.0
MAX_COMMANDS = 100
MAX_DATA_LINES = 10_000
USERNAME = "alerts@example.org"
PASSWORD = "smtp-password-0123-not-a-secret"


def make_certificate(directory: Path) -> tuple[Path, Path] | None:
    """A throwaway self-signed certificate for 127.0.0.1 and localhost (None: no openssl on PATH)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = directory / "relay-cert.pem", directory / "relay-key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@dataclass
class Session:
    """One connection: its commands as (line, encrypted), logins as (user, password, encrypted), mails."""

    commands: list[tuple[str, bool]] = field(default_factory=list)
    logins: list[tuple[str, str, bool]] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    tls: bool = False


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    relay: SmtpRelay


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        relay = self.server.relay
        session = Session()
        with relay.lock:
            relay.sessions.append(session)
            number = len(relay.sessions)
        sock: socket.socket = self.request
        sock.settimeout(SESSION_TIMEOUT_S)
        if relay.hang:
            relay.closed.wait(SESSION_TIMEOUT_S)
            return
        try:
            if relay.implicit_tls:
                sock = relay.context().wrap_socket(sock, server_side=True)
                session.tls = True
            self._talk(relay, session, sock, refuse=number <= relay.refuse_first)
        except (OSError, ssl.SSLError):
            pass

    def _talk(self, relay: SmtpRelay, session: Session, sock: socket.socket, *, refuse: bool) -> None:
        reader = sock.makefile("rb")

        def send(*lines: str) -> None:
            sock.sendall("".join(f"{line}\r\n" for line in lines).encode())

        if refuse:
            send("421 test relay busy, try again later")
            return
        send("220 relay.test ESMTP test relay")
        for _ in range(MAX_COMMANDS):
            raw = reader.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            session.commands.append((line, session.tls))
            verb, _, argument = line.partition(" ")
            verb = verb.upper()
            if verb in ("EHLO", "HELO"):
                offers = ["SIZE 1000000", "8BITMIME"]
                if relay.starttls and not session.tls:
                    offers.append("STARTTLS")
                if relay.auth:
                    offers.append("AUTH PLAIN")
                send("250-relay.test", *(f"250-{offer}" for offer in offers[:-1]), f"250 {offers[-1]}")
            elif verb == "STARTTLS" and relay.starttls and not session.tls:
                send("220 go ahead")
                sock = relay.context().wrap_socket(sock, server_side=True)
                reader = sock.makefile("rb")
                session.tls = True
            elif verb == "AUTH" and relay.auth:
                _mechanism, _, response = argument.partition(" ")
                if not response:
                    send("334 ")
                    response = reader.readline().decode().strip()
                _, user, password = base64.b64decode(response).decode().split("\0")
                session.logins.append((user, password, session.tls))
                ok = (user, password) == (USERNAME, PASSWORD)
                send("235 2.7.0 authenticated" if ok else "535 5.7.8 bad credentials")
            elif verb == "MAIL":
                send("250 2.1.0 ok")
            elif verb == "RCPT":
                session.recipients.append(argument.partition(":")[2].strip().strip("<>"))
                send("250 2.1.5 ok")
            elif verb == "DATA":
                send("354 end with <CRLF>.<CRLF>")
                session.messages.append(_read_data(reader))
                send("250 2.0.0 queued")
            elif verb in ("RSET", "NOOP"):
                send("250 ok")
            elif verb == "QUIT":
                send("221 bye")
                return
            else:
                send("502 5.5.2 command not recognised")


def _read_data(reader: object) -> bytes:
    lines = []
    for _ in range(MAX_DATA_LINES):
        line = reader.readline()  # type: ignore[attr-defined]
        if line in (b".\r\n", b".\n", b""):
            break
        lines.append(line[1:] if line.startswith(b"..") else line)
    return b"".join(lines)


class SmtpRelay:
    """``with SmtpRelay(cert, key) as relay:`` an SMTP relay at ``relay.host``:``relay.port``."""

    def __init__(
        self,
        certificate: tuple[Path, Path] | None = None,
        *,
        starttls: bool = True,
        implicit_tls: bool = False,
        auth: bool = True,
        refuse_first: int = 0,
        hang: bool = False,
    ) -> None:
        self.certificate = certificate
        self.starttls = starttls and certificate is not None
        self.implicit_tls = implicit_tls
        self.auth = auth
        self.refuse_first = refuse_first
        self.hang = hang
        self.sessions: list[Session] = []
        self.lock = threading.Lock()
        self.closed = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.relay = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def context(self) -> ssl.SSLContext:
        assert self.certificate is not None, "TLS needs a certificate"
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*self.certificate)
        return context

    def __enter__(self) -> SmtpRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.closed.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
