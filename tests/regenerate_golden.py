"""Rewrite samples/demo-district.expected and tests/golden/ from the current code (run by ``make golden``)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import orjson

from clever2sis.config import RawConfig, build_settings
from clever2sis.sis.build import build
from tests.review_district import build_pair
from tests.test_demo_golden import DEMO, EXPECTED, stable_record
from tests.test_review_facts import GOLDEN, demo_facts, stable_facts


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        record = build(DEMO, Path(tmp) / "demo", build_settings(RawConfig(data={})))
        shutil.rmtree(EXPECTED, ignore_errors=True)
        shutil.copytree(Path(tmp) / "demo" / "csv", EXPECTED / "csv")
    (EXPECTED / "build.json").write_bytes(
        orjson.dumps(stable_record(record), option=orjson.OPT_INDENT_2) + b"\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        facts = stable_facts(demo_facts(build_pair(Path(tmp))))
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_bytes(orjson.dumps(facts, option=orjson.OPT_INDENT_2) + b"\n")


if __name__ == "__main__":
    main()
