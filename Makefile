# Two commands on a fresh machine: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEPS := requirements-dev.txt libs/*/pyproject.toml services/*/pyproject.toml

.PHONY: install system-deps broker run test test-unit test-e2e bench asyncapi clean

$(STAMP): $(DEPS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# Debian packages the tests drive for real: Chromium (browser tests), Dovecot (IMAP),
# Prometheus and promtool (alert rules).
system-deps:
	@bash scripts/system-deps.sh

# A RabbitMQ on 127.0.0.1:5672: installed (Debian's rabbitmq-server) and started when none
# answers; does nothing when one does, or when DESK_AMQP_URL / DESK_TEST_AMQP_URL names one.
broker:
	@bash scripts/rabbitmq.sh "$(if $(filter run,$(MAKECMDGOALS)),$(DESK_AMQP_URL),$(DESK_TEST_AMQP_URL))"

run: install broker
	$(PY) scripts/run.py

test: install system-deps broker
	$(PY) -m pytest -q

test-unit: install broker
	$(PY) -m pytest -q -m "not slow and not browser"

test-e2e: install system-deps broker
	$(PY) -m pytest -q -m "slow or browser"

asyncapi: install
	$(PY) -m desk_runtime.asyncapi > docs/asyncapi.yaml

bench: install broker
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) var
