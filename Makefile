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

## The main job: the gRPC server on the embedded SQLite default (headwater.db), bootstrapped with the sample AI-lineage
## policy and its data (examples/ai-lineage/validation.yaml), on 127.0.0.1:50051. Local demo: no tokens (it says so
## loudly); see docs/grpc.md for tokens and TLS.
serve: $(STAMP)
	$(BIN)/headwater serve --db headwater.db --bootstrap examples/ai-lineage/validation.yaml --insecure-no-auth

## Benchmarks (numbers, not pass/fail): Headwater and real SpiceDB side by side (skips SpiceDB, saying so, if the
## peer cannot be installed), then the focused benchmarks.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --scale 1 --json benchmarks/results/side-by-side.json
	$(BIN)/python -m benchmarks.bench_grpc
	$(BIN)/python -m benchmarks.bench_compile
	$(BIN)/python -m benchmarks.bench_check
	$(BIN)/python -m benchmarks.bench_lookup
	$(BIN)/python -m benchmarks.bench_lineage

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
