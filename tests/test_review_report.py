"""The report renders, escapes every value, and refers to nothing outside itself; the spreadsheet copies."""

from __future__ import annotations

import copy
import re
import shutil
import zipfile
from pathlib import Path

import orjson
import pytest

from clever2sis.canvas.signoff import approve
from clever2sis.config import RawConfig, build_settings
from clever2sis.review import report
from clever2sis.review.excel import spreadsheet_cell, write_spreadsheet_copies
from clever2sis.review.facts import open_build, review_facts
from clever2sis.review.report import render_report, write_report
from clever2sis.sis.build import build
from tests.conftest import tiny_district, write_snapshot
from tests.review_district import Changes

HOSTILE = "<script>alert('x')</script>"


def hostile_builds(tmp_path: Path) -> tuple[Path, Path]:
    """The tiny district, then again with a student renamed to a script tag."""
    settings = build_settings(RawConfig(data={}))
    records = tiny_district()
    build(write_snapshot(tmp_path / "s1", records), tmp_path / "b1", settings)
    changed = copy.deepcopy(records)
    changed["users"][0]["name"]["first"] = HOSTILE
    changed["schools"][0]["name"] = 'Alder "High" & <b>Co</b>'
    build(write_snapshot(tmp_path / "s2", changed), tmp_path / "b2", settings)
    return tmp_path / "b1", tmp_path / "b2"


def test_every_value_is_escaped(tmp_path: Path) -> None:
    old, new = hostile_builds(tmp_path)
    html = render_report(review_facts(open_build(new), open_build(old)))
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "<b>Co</b>" not in html
    assert "Alder &#34;High&#34; &amp; &lt;b&gt;Co&lt;/b&gt;" in html
    assert html.count("<script>") == 1  # the report's own script


def test_the_report_refers_to_nothing_outside_itself(review_pair: tuple[Path, Path, Changes]) -> None:
    old, new, _ = review_pair
    html = render_report(review_facts(open_build(new), open_build(old)))
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert "@import" not in html
    assert "url(" not in html
    assert not re.search(r"<(link|iframe|object|embed|img)\b", html, re.IGNORECASE)


def test_the_report_shows_counts_findings_and_changes(review_pair: tuple[Path, Path, Changes]) -> None:
    old, new, changes = review_pair
    path = write_report(new, review_facts(open_build(new), open_build(old)))
    html = path.read_text(encoding="utf-8")
    assert path == new / "report.html"
    assert "4,168" in html
    assert "4,170" in html
    assert 'id="finding-missing_login"' in html
    assert 'id="finding-duplicate_login"' in html
    assert "Amara" in html
    assert "Okonkwo" in html
    assert changes.new_last_name in html
    assert "Sotomayor Middle School" in html
    assert "Carver High School" in html
    assert "<svg" in html
    assert "What the removals would do in Canvas" in html


def test_large_tables_are_capped(
    review_pair: tuple[Path, Path, Changes], monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new, _ = review_pair
    monkeypatch.setattr(report, "ROW_LIMIT", 5)
    html = render_report(review_facts(open_build(new), open_build(old)))
    assert "Showing the first 5 of 13 rows" in html


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("00123", '="00123"'),
        ("123456789012345678", '="123456789012345678"'),
        ("1E5", '="1E5"'),
        ("2026-08-17", '="2026-08-17"'),
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1 555", "'+1 555"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("65f3e3e0956a26afbc4a057c", "65f3e3e0956a26afbc4a057c"),
        ("Zoë O'Brien", "Zoë O'Brien"),
        ("", ""),
    ],
)
def test_spreadsheet_cells_are_kept_as_text_and_never_run(value: str, cell: str) -> None:
    assert spreadsheet_cell(value) == cell


def test_excel_copies(review_pair: tuple[Path, Path, Changes], tmp_path: Path) -> None:
    old, new, changes = review_pair
    new = shutil.copytree(new, tmp_path / "new")
    view = open_build(new)
    out = write_spreadsheet_copies(view, review_facts(view, open_build(old)))
    assert sorted(p.name for p in out.iterdir()) == [
        "README.txt",
        "accounts.csv",
        "changes.csv",
        "courses.csv",
        "enrollments.csv",
        "findings.csv",
        "review.xlsx",
        "sections.csv",
        "terms.csv",
        "users.csv",
    ]
    users = (out / "users.csv").read_bytes()
    assert users.startswith(b"\xef\xbb\xbfuser_id,login_id,first_name,last_name,email,status\r\n")
    assert "schools" not in users.decode("utf-8-sig")
    changed = (out / "changes.csv").read_text(encoding="utf-8-sig")
    assert (
        f"users.csv,changed,{changes.moved},,,schools,Sotomayor Middle School,Carver High School" in changed
    )
    terms = (out / "terms.csv").read_text(encoding="utf-8-sig")
    assert '"=""2026-08-17T00:00:00Z"""' not in terms  # a timestamp with a zone is not read as a date


def test_the_change_chart_leaves_out_files_neither_build_has(review_pair: tuple[Path, Path, Changes]) -> None:
    old, new, _ = review_pair
    html = render_report(review_facts(open_build(new), open_build(old)))
    chart = html[html.index("Rows added, removed and changed per Canvas file") :]
    chart = chart[: chart.index("</svg>")]
    labels = re.findall(r'<text class="label"[^>]*>([^<]+)</text>', chart)
    assert labels == [
        "users.csv",
        "enrollments.csv",
        "sections.csv",
        "courses.csv",
        "accounts.csv",
        "terms.csv",
    ]
    assert 'id="diff-user_observers"' not in html
    assert 'id="diff-change_sis_id"' not in html


def test_the_report_ends_with_the_sign_off(review_pair: tuple[Path, Path, Changes], tmp_path: Path) -> None:
    old, new, _ = review_pair
    new = shutil.copytree(new, tmp_path / "new")
    facts = review_facts(open_build(new), open_build(old), profile="production")
    html = render_report(facts)
    sha = facts["build"]["zip"]["sha256"]
    assert f'<code class="id" id="signoff-sha256">{sha}</code> (53,129 bytes)' in html
    assert f"clever2sis approve {new} --profile production --by &#39;YOUR NAME&#39;" in html
    assert "This build has not been imported with profile test" in html
    assert "Signed off for" not in html
    record = approve(new, "production", "Dana Whitfield")
    (new / "approvals" / "test.json").write_bytes(orjson.dumps({**record, "zip_sha256": "0" * 64}))
    html = render_report(review_facts(open_build(new), open_build(old)))
    assert f"Signed off for production by Dana Whitfield at {record['approved_at']}." in html
    assert html.index('id="verdict-signed"') < html.index('id="contents"')
    assert "<td>test</td><td>Dana Whitfield</td>" in html
    assert "no: these bytes were not signed off" in html


def test_the_workbook_holds_every_table_as_text_exactly_as_sent(
    review_pair: tuple[Path, Path, Changes], tmp_path: Path
) -> None:
    import openpyxl

    old, new, changes = review_pair
    new = shutil.copytree(new, tmp_path / "new")
    view = open_build(new)
    out = write_spreadsheet_copies(view, review_facts(view, open_build(old)))
    book = openpyxl.load_workbook(out / "review.xlsx", read_only=True)
    names = ["accounts", "terms", "courses", "sections", "users", "enrollments"]
    assert book.sheetnames == ["about", *names, "findings", "changes"]
    for name in names:
        frame = view.frames[f"{name}.csv"]
        columns = [c for c in frame.columns if c not in ("schools", "teachers")]
        rows = [
            [cell if cell is not None else "" for cell in row]
            for row in book[name].iter_rows(values_only=True)
        ]
        assert rows[0] == columns, name
        assert rows[1:] == frame[columns].values.tolist(), name  # every value, as text, in the build's order
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type in ("s", "n")
                assert cell.value is None or isinstance(cell.value, str)
    changed = [row for row in book["changes"].iter_rows(values_only=True) if row[5] == "schools"]
    assert ("users.csv", "changed", changes.moved) == changed[0][:3]
    with zipfile.ZipFile(out / "review.xlsx") as archive:
        xml = b"".join(archive.read(n) for n in archive.namelist() if n.startswith("xl/worksheets/"))
    assert b"<f>" not in xml
    assert b"<f " not in xml


def test_the_workbook_keeps_ids_and_neutralises_formulas(tmp_path: Path) -> None:
    import openpyxl

    from clever2sis.review.excel import write_workbook

    rows = [["00123", '=HYPERLINK("http://x")', "1E5", "2026-08-17", "+1", "@SUM(A1)", "-3", "plain", ""]]
    write_workbook(tmp_path / "w.xlsx", [("users.csv", [f"c{i}" for i in range(9)], rows)])
    sheet = openpyxl.load_workbook(tmp_path / "w.xlsx")["users"]
    values = [cell.value for cell in sheet[2]]
    assert values == [
        "00123",
        '=HYPERLINK("http://x")',
        "1E5",
        "2026-08-17",
        "+1",
        "@SUM(A1)",
        "-3",
        "plain",
        None,
    ]
    assert [cell.data_type for cell in sheet[2]][:8] == ["s"] * 8
    assert [cell.quotePrefix for cell in sheet[2]][:8] == [False, True, False, False, True, True, True, False]
    assert sheet.freeze_panes == "A2"


def test_a_table_longer_than_a_sheet_continues_on_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import openpyxl

    import clever2sis.review.excel as excel

    monkeypatch.setattr(excel, "SHEET_MAX_ROWS", 4)  # 3 rows under the header per sheet
    excel.write_workbook(tmp_path / "w.xlsx", [("enrollments.csv", ["n"], [[str(n)] for n in range(7)])])
    book = openpyxl.load_workbook(tmp_path / "w.xlsx", read_only=True)
    assert book.sheetnames == ["about", "enrollments", "enrollments (2)", "enrollments (3)"]
    sheets = [[row[0] for row in book[name].iter_rows(values_only=True)] for name in book.sheetnames[1:]]
    assert sheets == [["n", "0", "1", "2"], ["n", "3", "4", "5"], ["n", "6"]]
