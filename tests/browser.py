"""Headless Chromium driven through its DevTools protocol, for tests that look at a page as a person does.

Chromium is started with ``--remote-debugging-pipe``: protocol messages (JSON, each ended by a NUL byte)
go to it on file descriptor 3 and come back on 4, so no port, websocket or driver binary is involved.
A test opens a page, clicks and types with real input events (``Input.dispatchMouseEvent``,
``Input.insertText``), reads what is rendered (``innerText`` leaves out hidden rows), takes screenshots
and emulates print media. https://chromedevtools.github.io/devtools-protocol/ describes the commands.
"""

from __future__ import annotations

import base64
import contextlib
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

CHROMIUM = Path("/usr/bin/chromium")
# As root, on a closed network: no sandbox, nothing that calls out, a fresh profile every time.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--remote-debugging-pipe",
)
COMMAND_TIMEOUT_S = 60.0
READ_BYTES = 1 << 16


class BrowserError(RuntimeError):
    """Chromium answered a command with an error, exited, or did not answer in time."""


class Browser:
    """One headless Chromium with one page (tab), at a fixed viewport size."""

    def __init__(self, width: int = 1400, height: int = 900, executable: Path = CHROMIUM) -> None:
        self.profile = tempfile.mkdtemp(prefix="clever2sis-chromium-")
        to_chromium, self._commands = os.pipe()
        self._answers, from_chromium = os.pipe()

        def as_fds_3_and_4() -> None:
            os.dup2(to_chromium, 3)
            os.dup2(from_chromium, 4)

        self.process = subprocess.Popen(
            [str(executable), *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            # Runs between fork and exec: only dup2, which takes no lock, so threads do not matter.
            preexec_fn=as_fds_3_and_4,
        )
        os.close(to_chromium)
        os.close(from_chromium)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.page("Page.enable")
        self.page("Runtime.enable")
        self.page(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    # --- the protocol -----------------------------------------------------------------------------------

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("Chromium did not answer in time")
            ready, _, _ = select.select([self._answers], [], [], left)
            if ready:
                chunk = os.read(self._answers, READ_BYTES)
                if not chunk:
                    raise BrowserError(f"Chromium exited (code {self.process.poll()})")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = orjson.loads(raw)
        return message

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events that arrive meanwhile are kept)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._commands, orjson.dumps(message) + b"\0")
        deadline = time.monotonic() + COMMAND_TIMEOUT_S
        while True:
            answer = self._message(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            self.events.append(answer)

    def page(self, method: str, **params: Any) -> dict[str, Any]:
        return self.send(method, self.session, **params)

    def wait_for(self, event: str, timeout_s: float = COMMAND_TIMEOUT_S) -> dict[str, Any]:
        """The first ``event`` of the page since the last wait (waiting for it if need be)."""
        deadline = time.monotonic() + timeout_s
        while True:
            for position, message in enumerate(self.events):
                if message.get("method") == event:
                    del self.events[: position + 1]
                    return message
            self.events.append(self._message(deadline))

    # --- what a test does -------------------------------------------------------------------------------

    def open(self, path: Path) -> None:
        """Load a local file and wait for its load event."""
        self.events.clear()
        self.page("Page.navigate", url=path.resolve().as_uri())
        self.wait_for("Page.loadEventFired")

    def js(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (an exception in it fails the test)."""
        result = self.page("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def text(self, selector: str) -> str:
        """What a person reads in the element ``selector`` (hidden and folded parts left out)."""
        return str(self.js(f"document.querySelector({orjson.dumps(selector).decode()}).innerText"))

    def click(self, selector: str) -> None:
        """Scroll the element into view and click its middle with the mouse."""
        box = self.js(
            f"(function () {{ var e = document.querySelector({orjson.dumps(selector).decode()});"
            " e.scrollIntoView({block: 'center'}); var r = e.getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2]; }())"
        )
        x, y = float(box[0]), float(box[1])
        for kind in ("mousePressed", "mouseReleased"):
            self.page("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
        self.settle()

    def settle(self) -> None:
        """Let the tasks a click queued (a hashchange, say) run: wait for a frame and a timer after it."""
        self.js(
            "new Promise(function (done) { requestAnimationFrame(function () { setTimeout(done, 0); }); })"
        )

    def type_text(self, selector: str, text: str) -> None:
        """Click into the field ``selector`` and type ``text``."""
        self.click(selector)
        self.page("Input.insertText", text=text)
        self.settle()

    def screenshot(self) -> bytes:
        return base64.b64decode(self.page("Page.captureScreenshot", format="png")["data"])

    def print_media(self, on: bool = True) -> None:
        """Show the page as it prints (``on``), or as on screen again; the page's listeners run first."""
        self.page("Emulation.setEmulatedMedia", media="print" if on else "")
        self.settle()

    def close(self) -> None:
        with contextlib.suppress(OSError, BrowserError):
            self.send("Browser.close")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for fd in (self._commands, self._answers):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)


@contextlib.contextmanager
def browser(width: int = 1400, height: int = 900) -> Iterator[Browser]:
    """A headless Chromium for the length of a ``with`` block."""
    opened = Browser(width, height)
    try:
        yield opened
    finally:
        opened.close()
