# Everything runs from a local virtualenv built from pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Tests run in parallel (pytest-xdist: one worker per core); each has a time limit (pytest.ini_options).
PYTEST := $(BIN)/python -m pytest -n auto

.PHONY: install test test-fast lint wheel demo bench clean browser postgres jvm system-packages

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# System packages some tests need, from Debian through apt-get (as root only). Each target says
# what it installs and why before doing it, installs nothing that is already there, and where
# apt-get is unavailable prints which tests will be skipped instead.
# $(call apt,PACKAGE,PRESENT-TEST,WHY,WITHOUT-IT)
define apt
	@if $(2); then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "make: installing Debian's $(1) with apt-get: $(3)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(1) >/dev/null) \
	    || echo "make: $(1) could not be installed: $(4)"; \
	else echo "make: $(1) is missing and apt-get (as root) is unavailable: $(4)"; fi
endef

browser:
	$(call apt,chromium,command -v chromium >/dev/null 2>&1,the report test renders report.html in a real headless browser,the browser test will be skipped)

postgres:
	$(call apt,postgresql,ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1,the PostgreSQL store tests run a real server on 127.0.0.1,the PostgreSQL tests will be skipped)

jvm:
	$(call apt,openjdk-17-jre-headless,command -v java >/dev/null 2>&1,Spark runs in local mode on a JVM,the Spark tests will be skipped)

system-packages: browser postgres jvm

# The whole suite. pytest's exit 5 (no test collected) is a broken run, never a pass.
test: install system-packages
	@$(PYTEST); code=$$?; [ $$code != 5 ] || echo "make: pytest collected no tests" >&2; exit $$code

# Without the tests marked slow (moto servers, subprocesses, browsers, database servers).
test-fast: install
	@$(PYTEST) -m "not slow"; code=$$?; [ $$code != 5 ] || echo "make: pytest collected no tests" >&2; exit $$code

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# Build the wheel and check what it carries (package data, no stray top-level packages, extras).
wheel: install
	$(BIN)/python -m pytest -q -p no:xdist tests/test_install.py -k wheel

demo: install
	$(BIN)/vigil demo

bench: install
	$(BIN)/python bench/check_bench.py

clean:
	rm -rf $(VENV) evidence-out vigil-out .pytest_cache .mypy_cache build dist *.egg-info
