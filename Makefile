# image-cdn: every command a developer or CI runs. `make help` lists them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK ?= dev
PORT ?= 8080
PYTEST_WORKERS ?= 2
# The primary origin of make serve / make drill: s3 (our renderer) or thumbor (a third-party service).
ORIGIN ?= s3

.PHONY: help serve test lint types unit bench sync drill fmt clean thumbor schema cost

help:
	@echo "make help     this list"
	@echo "make serve    run the whole service locally (STACK=$(STACK)) on http://127.0.0.1:$(PORT) (PORT=...)"
	@echo "              ORIGIN=thumbor: thumbor on loopback as a third-party primary, our bucket as its fallback"
	@echo "make test     lint, types and unit: what CI runs"
	@echo "make lint     ruff check and ruff format --check"
	@echo "make types    mypy"
	@echo "make unit     every test (pytest, PYTEST_WORKERS=$(PYTEST_WORKERS) processes)"
	@echo "make bench    benchmarks side by side with sharp and pyvips (writes bench/results.json)"
	@echo "make sync     backfill the fallback bucket of STACK (AWS credentials from the environment)"
	@echo "make drill    outage drill against the emulator: primary up, down, error, up (ORIGIN=thumbor too)"
	@echo "make thumbor  install thumbor in .thumbor/ (the third-party primary of ORIGIN=thumbor and the tests)"
	@echo "make schema   regenerate schema.json, the Pulumi package schema of the components"
	@echo "make cost     estimate the monthly bill of STACK for TRAFFIC (default ops/traffic.yaml)"
	@echo "make fmt      format the code"
	@echo "make clean    drop the virtualenv and caches"
	@echo "operator commands: $(BIN)/python -m ops --help (exit status: 0 done, 1 a missing prerequisite"
	@echo "              or a failed check, 2 a usage mistake, 130 interrupted)"

# The ASL validator the state machine test runs (npm, pinned by tests/asl/package-lock.json).
ASL := tests/asl/node_modules/.installed

$(ASL): tests/asl/package.json tests/asl/package-lock.json
	cd tests/asl && npm ci --no-audit --no-fund --silent
	touch $@

# thumbor, the third-party image service the tests run as a primary (its own virtualenv: it
# pins an older Pillow than ours).
THUMBOR := .thumbor/.installed

$(THUMBOR): requirements-thumbor.txt
	test -x .thumbor/bin/python || $(PYTHON) -m venv .thumbor
	.thumbor/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-thumbor.txt
	touch $@

thumbor: $(THUMBOR)

# Installs: uv (pinned; it fetches and unpacks in parallel) where it can be had, pip otherwise
# (INSTALLER=pip: pip alone).
UV_VERSION := 0.13.9
INSTALLER ?= uv
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
# Creates the virtualenv; a Ctrl-C meanwhile is one line, not venv's and ensurepip's tracebacks
# (their stderr is kept and shown only when the creation fails for another reason).
define MAKE_VENV
import subprocess, sys
try:
    done = subprocess.run([sys.executable, "-m", "venv", "--clear", sys.argv[1]], stderr=subprocess.PIPE, text=True)
except KeyboardInterrupt:
    sys.exit("interrupted while creating " + sys.argv[1] + " (Ctrl-C): run the command again")
sys.stderr.write(done.stderr)
sys.exit(done.returncode)
endef
export MAKE_VENV

define install
	# A virtualenv cut short (Ctrl-C while it was made) has a python and no pip: made again.
	$(BIN)/python -m pip --version >/dev/null 2>&1 || $(PYTHON) -c "$$MAKE_VENV" $(VENV)
	if test "$(INSTALLER)" = uv && { test -x $(BIN)/uv || $(PIP) uv==$(UV_VERSION); }; then \
	  $(BIN)/uv pip install --quiet --python $(BIN)/python -r $(1) || $(PIP) -r $(1); \
	else $(PIP) -r $(1); fi
endef

# make serve's: what the service needs to run, nothing for tests, lint, types, bench or Pulumi.
$(BIN)/.serve: requirements-serve.txt
	$(call install,requirements-serve.txt)
	touch $@

# Everything else: the Pulumi SDK, the tests, linters, type checker and the benchmark peers.
$(BIN)/.installed: $(BIN)/.serve requirements.txt requirements-dev.txt
	$(call install,requirements-dev.txt)
	touch $@

serve: $(BIN)/.serve $(if $(filter thumbor,$(ORIGIN)),$(THUMBOR))
	$(BIN)/python -m localcdn --stack $(STACK) --port $(PORT) --origin $(ORIGIN)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(BIN)/.installed
	$(BIN)/mypy

unit: $(BIN)/.installed $(ASL) $(THUMBOR)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile -q

test: lint types unit

bench: $(BIN)/.installed
	$(BIN)/python -m bench
	$(BIN)/python -m bench.first_run  # a newcomer's first make serve: fresh copy, empty package caches
	$(BIN)/python -m ops cost --readme --write >/dev/null  # the README's cost table follows the new measurements
	$(BIN)/python -m bench.figures --write  # and so does every figure it quotes (bench/figures.py)

sync: $(BIN)/.serve
	$(BIN)/python -m ops sync --stack $(STACK)

drill: $(BIN)/.serve $(if $(filter thumbor,$(ORIGIN)),$(THUMBOR))
	$(BIN)/python -m ops drill --stack $(STACK) --origin $(ORIGIN)

schema: $(BIN)/.installed
	$(BIN)/python -m components.package

TRAFFIC ?= ops/traffic.yaml
cost: $(BIN)/.installed
	$(BIN)/python -m ops cost --stack $(STACK) --traffic $(TRAFFIC)

fmt: $(BIN)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache .hypothesis bench/node_modules tests/asl/node_modules
