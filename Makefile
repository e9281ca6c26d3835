# Two commands on a fresh machine: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEPS := requirements-dev.txt libs/*/pyproject.toml services/*/pyproject.toml

.PHONY: install system-deps run test test-unit test-e2e bench asyncapi clean

$(STAMP): $(DEPS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# Debian packages the tests drive for real: Chromium (browser tests), Dovecot (IMAP).
system-deps:
	@bash scripts/system-deps.sh

run: install
	$(PY) scripts/run.py

test: install system-deps
	$(PY) -m pytest -q

test-unit: install
	$(PY) -m pytest -q -m "not slow and not browser"

test-e2e: install system-deps
	$(PY) -m pytest -q -m "slow or browser"

asyncapi: install
	$(PY) -m desk_contracts.asyncapi > docs/asyncapi.yaml

bench: install
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) var
