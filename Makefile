# The two commands of the quick start: `make demo` and `make test`. Each sets up what it needs: the demo only the
# application (pyproject's dependencies), the suite its test extras too (torch, pyspark, playwright: about 2 GB).
VENV ?= .venv
PYTHON ?= python3
APP_STAMP := $(VENV)/.installed-app
TEST_STAMP := $(VENV)/.installed-test
# `make wheelhouse`: where the wheels go, and which extras besides the application (e.g. EXTRAS=test).
WHEELHOUSE ?= wheelhouse
EXTRAS ?=

.PHONY: demo test setup system-deps wheelhouse clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip

# --no-compile: pip would byte-compile all ~5,500 modules up front (two thirds of the install's time here, 127 MB);
# Python compiles the few hundred the demo imports when it first imports them.
$(APP_STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -q --no-compile -e .
	touch $@

# The test extras include the application, so the application's stamp is fresh too.
$(TEST_STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@ $(APP_STAMP)

setup: $(TEST_STAMP)

# Fill var/chunfeng.db with the notice, a synthetic organisation, a living ledger and demo users, then serve.
# Pango and a CJK font for the PDFs are the application's; chromium and Java are only the tests'.
demo: $(APP_STAMP)
	@scripts/ensure-system-packages
	$(VENV)/bin/chunfeng demo

# The whole suite; on PostgreSQL with CHUNFENG_DATABASE_URL=postgresql://user:pass@host/db.
test: $(TEST_STAMP) system-deps
	$(VENV)/bin/pytest

# Debian's chromium, a CJK font and Pango for the browser and PDF tests.
system-deps:
	@scripts/ensure-system-packages test

# Every wheel the application needs (and EXTRAS'), built or downloaded once, for an intranet without a package
# registry: `pip install --no-index --find-links $(WHEELHOUSE) chunfeng` installs from it (README: Deploying).
# Wheels are for this machine's Python version and platform: build the wheelhouse where the servers' match.
wheelhouse: | $(VENV)/bin/python
	$(VENV)/bin/pip wheel -q --wheel-dir $(WHEELHOUSE) '.$(if $(EXTRAS),[$(EXTRAS)])'

clean:
	rm -rf $(VENV) var .pytest_cache
