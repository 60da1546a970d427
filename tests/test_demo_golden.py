"""The bundled demo district builds into exactly the expected build committed beside it.

After an intended change to the mapping, regenerate with ``make golden`` and review the diff.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from clever2sis.config import RawConfig, build_settings
from clever2sis.sis.build import build

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
DEMO = SAMPLES / "demo-district"
EXPECTED = SAMPLES / "demo-district.expected"

# Fields of build.json that name where and when, not what: left out of the comparison.
VOLATILE = ("built_at",)


def stable_record(record: dict[str, object]) -> dict[str, object]:
    out = {key: value for key, value in record.items() if key not in VOLATILE}
    out["snapshot"] = {k: v for k, v in record["snapshot"].items() if k != "path"}  # type: ignore[attr-defined]
    return out


def test_demo_build_matches_the_expected_csvs_and_record(tmp_path: Path) -> None:
    record = build(DEMO, tmp_path / "demo", build_settings(RawConfig(data={})))
    expected_files = sorted(p.name for p in (EXPECTED / "csv").iterdir())
    assert sorted(p.name for p in (tmp_path / "demo" / "csv").iterdir()) == expected_files
    for name in expected_files:
        assert (tmp_path / "demo" / "csv" / name).read_bytes() == (EXPECTED / "csv" / name).read_bytes(), name
    assert stable_record(record) == orjson.loads((EXPECTED / "build.json").read_bytes())


def test_demo_zip_is_byte_identical_across_builds(tmp_path: Path) -> None:
    settings = build_settings(RawConfig(data={}))
    first = build(DEMO, tmp_path / "a", settings)
    second = build(DEMO, tmp_path / "b", settings)
    assert first["zip"]["sha256"] == second["zip"]["sha256"]
    assert (tmp_path / "a" / "sis_import.zip").read_bytes() == (
        tmp_path / "b" / "sis_import.zip"
    ).read_bytes()
