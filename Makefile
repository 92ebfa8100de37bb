# The two commands of the quick start: `make demo` and `make test`. Each sets up what it needs.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed

.PHONY: demo test setup system-deps bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

setup: $(STAMP)

# Fill var/chunfeng.db with the notice, a synthetic organisation, a living ledger and demo users, then serve.
demo: $(STAMP)
	@scripts/ensure-system-packages
	$(VENV)/bin/chunfeng demo

# The whole suite; on PostgreSQL with CHUNFENG_DATABASE_URL=postgresql://user:pass@host/db.
test: $(STAMP) system-deps
	$(VENV)/bin/pytest

# Debian's chromium, a CJK font and Pango for the browser and PDF tests.
system-deps:
	@scripts/ensure-system-packages test

clean:
	rm -rf $(VENV) var .pytest_cache
