# `make run` and `make test` are the only two commands a fresh machine needs.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: run test bench clean

$(BIN)/safetybot: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

.env:
	cp config.example.env .env

run: $(BIN)/safetybot .env
	$(BIN)/safetybot db upgrade
	$(BIN)/safetybot demo

test: $(BIN)/safetybot
	$(BIN)/pytest

bench: $(BIN)/safetybot
	$(BIN)/python benchmarks/webhook.py

clean:
	rm -rf $(VENV) var
