# `make run` and `make test` are the only two commands a fresh machine needs.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: run test bench clean

$(BIN)/safetybot: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

.env:
	cp config.example.env .env

DEMO_CAMPAIGN := campaigns/jincheng-commerce-2023.toml
DEMO_UNITS := docs/examples/jincheng-demo-units.csv

run: $(BIN)/safetybot .env
	$(BIN)/safetybot db upgrade
	$(BIN)/safetybot campaign load $(DEMO_CAMPAIGN)
	$(BIN)/safetybot units import --campaign jincheng-commerce-2023 $(DEMO_UNITS)
	$(BIN)/safetybot units export --campaign jincheng-commerce-2023
	$(BIN)/safetybot demo

test: $(BIN)/safetybot
	$(BIN)/mypy
	$(BIN)/pytest -n auto --durations=15

# The webhook benchmark; its load comes from wrk when installed (apt-get install wrk), else from Python.
bench: $(BIN)/safetybot
	$(BIN)/python benchmarks/webhook.py

clean:
	rm -rf $(VENV) var
