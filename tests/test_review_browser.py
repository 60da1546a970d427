"""The report in a real browser (headless Chromium): what a district admin sees and does on the page.

Skipped only where Chromium is not installed; CI installs it (.ci/run) and sets
CLEVER2SIS_REQUIRE_BROWSER=1, so there a missing browser fails instead.
"""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clever2sis.canvas.signoff import approve
from clever2sis.review import report
from clever2sis.review.facts import open_build, review_facts
from clever2sis.review.report import write_report
from tests.browser import CHROMIUM, Browser, browser
from tests.review_district import Changes
from tests.test_review_verdict import DEMO_DECISIONS
from tests.test_sync_observers import LATER, observer_nights

SCREEN = (1400, 900)
MIN_DISTINCT_SCANLINES = 100
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIDDLE = "661fd5e0956a26afbc4a057d"
HIGH = "664bc7e0956a26afbc4a057e"

if not CHROMIUM.exists():
    if os.environ.get("CLEVER2SIS_REQUIRE_BROWSER"):
        raise RuntimeError(f"CLEVER2SIS_REQUIRE_BROWSER is set but {CHROMIUM} is not installed")
    pytest.skip(f"no headless browser: {CHROMIUM} is not installed", allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def page() -> Iterator[Browser]:
    with browser(*SCREEN) as opened:
        yield opened


@pytest.fixture
def demo(review_pair: tuple[Path, Path, Changes], tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """The demo night's report, written into a copy of the newer build."""
    old, new, _ = review_pair
    new = shutil.copytree(new, tmp_path / "new")
    facts = review_facts(open_build(new), open_build(old))
    return write_report(new, facts), facts


def visible_rows(page: Browser, table: str) -> list[str]:
    """The rows of ``table`` a person sees, each as its cells' text joined by tabs."""
    return list(
        page.js(
            f"Array.from(document.querySelectorAll('#{table} tbody tr'))"
            ".filter(function (row) { return row.checkVisibility(); })"
            ".map(function (row) { return row.innerText; })"
        )
    )


def first_cells(page: Browser, table: str) -> list[str]:
    return [row.split("\t")[0] for row in visible_rows(page, table)]


def png_facts(png: bytes) -> tuple[int, int, int]:
    """Width, height, and how many distinct scanlines a PNG has (a blank page has one or two)."""
    assert png.startswith(PNG_SIGNATURE)
    position, data, header = len(PNG_SIGNATURE), b"", b""
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind = png[position + 4 : position + 8]
        body = png[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            data += body
        position += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    channels = {2: 3, 6: 4}[color]
    stride = 1 + width * channels * depth // 8
    raw = zlib.decompress(data)
    lines = {raw[row * stride + 1 : (row + 1) * stride] for row in range(height)}
    return width, height, len(lines)


def test_the_first_screen_shows_the_verdict(
    page: Browser, demo: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    path, _ = demo
    page.open(path)
    assert page.text("#verdict-headline") == "Not ready to sign off: 8 things need a decision."
    assert page.text("#verdict-decisions").splitlines() == [text for text, _ in DEMO_DECISIONS]
    assert page.js("document.getElementById('verdict').getBoundingClientRect().top") < SCREEN[1] / 4
    shot = page.screenshot()
    (tmp_path / "first-screen.png").write_bytes(shot)
    width, height, distinct = png_facts(shot)
    assert (width, height) == SCREEN
    assert distinct >= MIN_DISTINCT_SCANLINES
    assert page.js("performance.getEntriesByName('clever2sis-ready').length") == 1


def test_a_verdict_line_leads_to_its_table(page: Browser, demo: tuple[Path, dict[str, Any]]) -> None:
    path, facts = demo
    page.open(path)
    page.click("#verdict-information a[href='#diff-enrollments-added']")
    top = page.js("document.getElementById('diff-enrollments-added').getBoundingClientRect().top")
    assert 0 <= top < SCREEN[1]
    assert len(visible_rows(page, "diff-enrollments-added")) == facts["diff"]["enrollments.csv"]["added"]


def test_typing_in_a_filter_narrows_its_table(page: Browser, demo: tuple[Path, dict[str, Any]]) -> None:
    path, facts = demo
    page.open(path)
    removed = facts["diff"]["enrollments.csv"]["rows"]["removed"]
    jacks = [row for row in removed if row["user_name"] == "Jack Evans"]
    page.type_text("#diff-enrollments-removed input[type=search]", "jack")
    rows = visible_rows(page, "diff-enrollments-removed")
    assert [row.split("\t")[2].split(" 6a")[0] for row in rows] == [row["section_name"] for row in jacks]
    assert all(row.startswith("Jack Evans") for row in rows)
    assert page.text("#diff-enrollments-removed .tablecount") == f"{len(jacks)} of {len(removed)} rows"


def test_clicking_a_heading_sorts_the_table(page: Browser, demo: tuple[Path, dict[str, Any]]) -> None:
    path, facts = demo
    page.open(path)
    schools = facts["counts"]["by_school"]
    page.click("#counts-schools th:nth-child(5)")  # students
    by_students = sorted(schools, key=lambda s: s["people"]["student"])
    assert first_cells(page, "counts-schools") == [s["name"] for s in by_students]
    page.click("#counts-schools th:nth-child(5)")
    assert first_cells(page, "counts-schools") == [s["name"] for s in reversed(by_students)]
    removed = facts["diff"]["enrollments.csv"]["rows"]["removed"]
    page.click("#diff-enrollments-removed th:nth-child(1)")  # user: by name
    names = [cell.split(" ")[0] for cell in first_cells(page, "diff-enrollments-removed")]
    assert names == sorted(row["user_name"].split(" ")[0] for row in removed)


def test_the_school_filter_shows_one_schools_rows(page: Browser, demo: tuple[Path, dict[str, Any]]) -> None:
    path, facts = demo
    page.open(path)
    page.js(
        f"(function () {{ var s = document.getElementById('school-filter'); s.value = '{MIDDLE}';"
        " s.dispatchEvent(new Event('change')); }())"
    )
    removed = facts["diff"]["enrollments.csv"]["rows"]["removed"]
    middle = [row for row in removed if row["school_ids"] == MIDDLE]
    assert len(visible_rows(page, "diff-enrollments-removed")) == len(middle) == 14
    assert page.text("#diff-enrollments-removed .tablecount") == f"14 of {len(removed)} rows"
    assert first_cells(page, "diff-users-removed") == ["Emily Thomas 6880e1b044b8c55b4f19189c"]
    assert visible_rows(page, "diff-users-added") == []
    terms = [
        item
        for entry in facts["findings"]["by_kind"].values()
        for item in entry["items"]
        if item["school_ids"] == MIDDLE and entry["severity"] == "info"
    ]
    assert len(visible_rows(page, "finding-section_without_term-rows")) == len(terms) == 2
    assert page.text("#school-shown").startswith("Findings and changes of Sotomayor Middle School")
    # The per-school table links into the filter.
    page.click(f"#counts-schools a[href='#school={HIGH}']")
    assert page.js("document.getElementById('school-filter').value") == HIGH
    assert first_cells(page, "diff-enrollments-removed") == ["Yuki 高橋 6871245a44b8c55b4f191875"]
    assert first_cells(page, "diff-users-added") == ["Amara Okonkwo 69ffffff44b8c55b4f19ff01"]
    assert page.text("#counts-schools").count("\n") == len(facts["counts"]["by_school"])  # not filtered


def test_the_print_view_is_a_sign_off_record(page: Browser, demo: tuple[Path, dict[str, Any]]) -> None:
    path, _ = demo
    page.open(path)
    page.click("#changes > summary")  # a person folds a section
    assert page.js("document.getElementById('changes').open") is False
    page.print_media(True)
    try:
        assert page.js("document.querySelectorAll('details:not([open])').length") == 0
        hidden = page.js(
            "['#toolbar', '.filterbar', '#school-filter'].map(function (s) {"
            " return getComputedStyle(document.querySelector(s)).display; })"
        )
        assert hidden == ["none", "none", "none"]
        assert (
            page.js("getComputedStyle(document.querySelector('table.data tbody tr')).breakInside") == "avoid"
        )
        assert page.js("getComputedStyle(document.querySelector('.signature')).display") != "none"
        assert "Reviewed and signed off by" in page.text("#signoff")
    finally:
        page.print_media(False)
    assert page.js("document.getElementById('changes').open") is False
    pdf = page.page("Page.printToPDF")["data"]
    assert len(pdf) > 10_000


def test_a_big_table_starts_folded_and_a_link_opens_it(
    page: Browser, review_pair: tuple[Path, Path, Changes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report, "OPEN_ROW_LIMIT", 10)
    old, new, _ = review_pair
    new = shutil.copytree(new, tmp_path / "new")
    path = write_report(new, review_facts(open_build(new), open_build(old)))
    page.open(path)
    assert page.js("document.getElementById('diff-enrollments-removed').open") is False
    assert visible_rows(page, "diff-enrollments-removed") == []
    page.click("#verdict-information a[href='#diff-enrollments-removed']")
    assert len(visible_rows(page, "diff-enrollments-removed")) == 15


def test_an_approved_build_shows_its_sign_off(
    page: Browser, review_pair: tuple[Path, Path, Changes], tmp_path: Path
) -> None:
    old, new, _ = review_pair
    new = shutil.copytree(new, tmp_path / "new")
    record = approve(new, "production", "Dana Whitfield")
    path = write_report(new, review_facts(open_build(new), open_build(old)))
    page.open(path)
    signed = f"Signed off for production by Dana Whitfield at {record['approved_at']}."
    assert page.text("#verdict-signed") == signed
    assert page.text("#signoff-approved") == signed
    assert page.text("#signoff-command") == f"clever2sis approve {new} --profile production --by 'YOUR NAME'"


def test_a_long_table_shows_a_page_at_a_time_and_prints_whole(
    page: Browser, review_pair: tuple[Path, Path, Changes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report, "PAGE_ROWS", 5)
    old, new, _ = review_pair
    new = shutil.copytree(new, tmp_path / "new")
    facts = review_facts(open_build(new), open_build(old))
    page.open(write_report(new, facts))
    table = "diff-enrollments-removed"
    removed = facts["diff"]["enrollments.csv"]["rows"]["removed"]
    by_name = sorted(row["user_name"] for row in removed)
    assert len(visible_rows(page, table)) == 5
    assert page.text(f"#{table} .tablecount") == "rows 1–5 (15 rows)"
    page.click(f"#{table} th:nth-child(1)")  # the sort orders all 15, then shows the first page
    assert [cell.rsplit(" ", 1)[0] for cell in first_cells(page, table)] == by_name[:5]
    page.click(f"#{table} .pager button:nth-child(2)")
    assert page.text(f"#{table} .tablecount") == "rows 6–10 (15 rows)"
    assert [cell.rsplit(" ", 1)[0] for cell in first_cells(page, table)] == by_name[5:10]
    page.type_text(f"#{table} input[type=search]", "jack")
    jacks = sum(1 for name in by_name if name == "Jack Evans")
    assert page.text(f"#{table} .tablecount") == f"rows 1–5 ({jacks} of 15 rows)"
    page.print_media(True)
    try:
        assert len(visible_rows(page, table)) == jacks  # every row the filter keeps, and a line says so
        assert page.text(f"#{table} p.note") == f"Filtered by “jack”: {jacks} of 15 rows."
    finally:
        page.print_media(False)
    assert len(visible_rows(page, table)) == 5


def test_a_sync_nights_observer_links_follow_the_school_filter(page: Browser, tmp_path: Path) -> None:
    with observer_nights(tmp_path) as district:
        night = district.night(LATER[0])
    assert night.exit_code == 0, night.message
    assert night.run_dir is not None
    page.open(night.run_dir / "build" / "report.html")
    links = district.clever_links()
    schools_of = {
        student: {s["school"] for s in district.records["sections"] if student in s["students"]}
        for _, student in links
    }
    assert len(visible_rows(page, "observer-links-added")) == len(links)
    school = sorted(s["id"] for s in district.records["schools"])[0]
    page.js(
        f"(function () {{ var s = document.getElementById('school-filter'); s.value = '{school}';"
        " s.dispatchEvent(new Event('change')); }())"
    )
    there = [link for link in links if school in schools_of[link[1]]]
    assert 0 < len(there) < len(links)
    assert len(visible_rows(page, "observer-links-added")) == len(there)
    page.click("#verdict-information a[href='#observer-links-added']")
    top = page.js("document.getElementById('observer-links-added').getBoundingClientRect().top")
    assert 0 <= top < SCREEN[1]
