# Two commands on a fresh machine: `make demo` and `make test`.
# Every target creates .venv when missing and installs the CPU build of torch BEFORE the
# package: an open torch range with no torch installed pulls several GB of CUDA packages.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_PIN := torch==2.13.0
# Where pip finds torch: empty = the configured indexes. On a machine whose pip would take a
# CUDA build from PyPI, `make test TORCH_INDEX=https://download.pytorch.org/whl/cpu` keeps it small.
TORCH_INDEX ?=
STAMP := $(VENV)/.gabaapp-installed
DEMO_DIR ?= demo_output

.PHONY: all install demo test test-slow lint docs bench clean

all: test

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_PIN) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -q -e '.[test,docs]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh $(DEMO_DIR)

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not gpu" -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m "slow" -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

BENCHES := $(sort $(wildcard benchmarks/bench_*.py))

bench: $(STAMP)
	@test -n "$(BENCHES)" || { echo "no benchmarks/bench_*.py yet"; exit 0; }
	@for s in $(BENCHES); do echo "== $$s"; $(BIN)/python $$s || exit 1; done

clean:
	rm -rf $(DEMO_DIR) docs/_build .pytest_cache
