# SepSum developer targets. Every target creates or reuses .venv idempotently.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export SEPSUM_HOME ?= $(CURDIR)/.cache/sepsum-home

.PHONY: setup demo test test-gpu test-ocr lint bench bench-quick package package-test clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)
	$(BIN)/sepsum models install-default

demo: setup
	$(BIN)/sepsum summarize resources/sample.md --length short

test: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -m "not gpu and not ocr" $(PYTEST_ARGS)

test-ocr: setup
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[ocr]'
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -m ocr $(PYTEST_ARGS)

test-gpu: setup
	$(BIN)/python -m pytest -m gpu $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check app sepllm_core tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: setup
	$(BIN)/python -m benchmarks.run_all $(BENCH_ARGS)

bench-quick: setup
	$(BIN)/python -m benchmarks.run_all --quick $(BENCH_ARGS)

package: setup
	$(BIN)/python packaging/build.py

package-test: package
	$(BIN)/python packaging/smoke_test.py

clean:
	rm -rf $(VENV) build dist .cache
