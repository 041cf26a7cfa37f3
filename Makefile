# Set-up and entry points. Every target creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test serve bench lint-policies clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## The test suite (what CI runs).
test: $(STAMP)
	$(BIN)/python -m pytest -q

## The main job. Until the gRPC server lands (issue "headwater serve"), this checks the sample policy.
serve: $(STAMP)
	$(BIN)/headwater lint examples/sample/policy.zed
	$(BIN)/headwater fmt --check examples/sample/policy.zed

## Benchmarks (numbers, not pass/fail).
bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_compile
	$(BIN)/python -m benchmarks.bench_check
	$(BIN)/python -m benchmarks.bench_lookup
	$(BIN)/python -m benchmarks.bench_lineage

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
