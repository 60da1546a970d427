"""Progress reporting: library code calls a ``Progress`` callback; the CLI decides how to show it."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def __call__(self, message: str) -> None: ...


def silent(message: str) -> None:
    """A ``Progress`` that shows nothing."""
