# clever2sis — `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help install demo sample-demo golden example-config test check lint format typecheck bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install the package with its dev extras

demo: $(STAMP)  ## build the bundled sample district into build/demo and print a summary
	$(BIN)/clever2sis build samples/demo-district --out build/demo --force

sample-demo: $(STAMP)  ## regenerate samples/demo-district (synthetic: 600 students, seed 7)
	$(BIN)/clever2sis sample --students 600 --seed 7 --out samples/demo-district --force

golden: $(STAMP)  ## rewrite samples/demo-district.expected and tests/golden/ from the current code (review the diff!)
	$(BIN)/python -m tests.regenerate_golden

example-config: $(STAMP)  ## rewrite samples/clever2sis.example.toml from the settings dataclasses
	$(BIN)/python -c "import clever2sis.example_config as e, pathlib; pathlib.Path('samples/clever2sis.example.toml').write_text(e.example_config(), encoding='utf-8')"

SIZES ?= 10000,100000,1000000
REPEATS ?= 3
bench: $(STAMP)  ## measure start-up, pull and build into docs/benchmarks.md (make bench SIZES=10000,100000 REPEATS=3)
	$(BIN)/python -m bench.run --sizes $(SIZES) --repeats $(REPEATS) $(BENCH_ARGS)

test: $(STAMP)  ## run the test suite
	$(BIN)/pytest -q

lint: $(STAMP)  ## ruff format check and lint
	$(BIN)/ruff format --check clever2sis tests bench
	$(BIN)/ruff check clever2sis tests bench

format: $(STAMP)  ## apply ruff formatting and safe fixes
	$(BIN)/ruff format clever2sis tests bench
	$(BIN)/ruff check --fix clever2sis tests bench

typecheck: $(STAMP)  ## mypy, strict on the package
	$(BIN)/mypy

check: lint typecheck test  ## everything CI checks

clean:  ## remove the virtualenv and build outputs
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
