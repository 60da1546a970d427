"""The user documentation as the tests read it: README.md (the tour) and the reference pages of docs/.

The tests that hold the documentation to the code read the page a text lives on (``page("build")``) or all
of it (``every_page()``); ``section`` cuts one heading's part out of a page, and ``anchors`` and ``links``
follow GitHub's rendering, so that a link the tests accept is one that works on GitHub.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

HEADING = re.compile(r"^(#{1,6}) +(.*?) *#*$")
FENCE = "```"
# [text](target) and ![alt](target); the text may hold `code` but no brackets.
LINK = re.compile(r"!?\[[^\]]*\]\(([^()\s]+)\)")
CODE_SPAN = re.compile(r"`[^`]*`")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # https:, mailto:, ...


def pages() -> list[Path]:
    """README.md, then every page of docs/ in name order."""
    return [README, *sorted(DOCS.glob("*.md"))]


def page(name: str) -> str:
    """The text of ``docs/<name>.md``."""
    return (DOCS / f"{name}.md").read_text(encoding="utf-8")


def every_page() -> str:
    """README.md and every docs page, one after the other."""
    return "\n".join(path.read_text(encoding="utf-8") for path in pages())


def _prose(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the lines outside fenced code blocks."""
    lines: list[tuple[int, str]] = []
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith(FENCE):
            fenced = not fenced
        elif not fenced:
            lines.append((number, line))
    return lines


def anchor(title: str) -> str:
    """GitHub's anchor of a heading: its rendered text (links by their text, code without backticks) in
    lower case, every character but letters, digits, ``-``, ``_`` and spaces dropped, spaces made ``-``."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", title).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


@dataclass(frozen=True)
class Heading:
    level: int
    title: str
    anchor: str
    line: int


def headings(text: str) -> list[Heading]:
    """The headings outside code blocks, in order; a repeated anchor gets GitHub's ``-1``, ``-2``, ..."""
    found: list[Heading] = []
    seen: dict[str, int] = {}
    for number, line in _prose(text):
        match = HEADING.match(line)
        if match:
            base = anchor(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            unique = base if count == 0 else f"{base}-{count}"
            found.append(Heading(len(match.group(1)), match.group(2), unique, number))
    return found


def anchors(text: str) -> set[str]:
    return {heading.anchor for heading in headings(text)}


def section(text: str, title: str) -> str:
    """The part of ``text`` under the heading ``title`` (exactly as written after its ``#``s), up to the next
    heading of the same or a higher level, or the end."""
    found = headings(text)
    (start,) = [heading for heading in found if heading.title == title]
    end = next((h.line for h in found if h.line > start.line and h.level <= start.level), None)
    lines = text.splitlines()
    return "\n".join(lines[start.line - 1 : None if end is None else end - 1])


def links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every link outside code blocks and code spans."""
    return [
        (number, match.group(1))
        for number, line in _prose(text)
        for match in LINK.finditer(CODE_SPAN.sub("", line))
    ]


def broken_links(path: Path) -> list[str]:
    """The relative links of a markdown file that lead nowhere: to a missing file, or to an ``#anchor`` that
    is not a heading of the file it names. External links (``https:``, ``mailto:``) are not followed."""
    text = path.read_text(encoding="utf-8")
    broken = []
    for number, target in links(text):
        if EXTERNAL.match(target):
            continue
        file_part, _, fragment = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name}:{number}: {target}"
        if not linked.exists():
            broken.append(f"{where}: no such file")
        elif fragment and (
            linked.suffix != ".md" or fragment not in anchors(linked.read_text(encoding="utf-8"))
        ):
            broken.append(f"{where}: no heading with that anchor in {linked.name}")
    return broken
