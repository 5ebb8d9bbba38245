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
# The fake WeChat's port: WECHAT_API_BASE_URL must point at it (`make run FAKE_PORT=…` beside PORT=… when 8080/8081 are taken).
FAKE_PORT ?= 8081

# The demo loads the 晋城 campaign for the coming June with its units, serves the bot on a demo clock
# in that June (DEMO_CLOCK_START; moved at /demo/clock), and once the bot is served replays liaisons
# reporting in it (once per database), so the office's side has a June to show.
run: $(BIN)/safetybot .env
	$(BIN)/safetybot db upgrade
	$(BIN)/safetybot demo --fake-port $(FAKE_PORT) --replay-june $(DEMO_CAMPAIGN) --units $(DEMO_UNITS)

test: $(BIN)/safetybot
	$(BIN)/mypy
	$(BIN)/pytest -n auto --durations=15

# The webhook benchmark; its load comes from wrk when installed (apt-get install wrk), else from Python.
bench: $(BIN)/safetybot
	$(BIN)/python benchmarks/webhook.py

clean:
	rm -rf $(VENV) var
