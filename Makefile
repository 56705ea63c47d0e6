# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
URL := http://$(HOST):$(PORT)
# Test processes (pytest-xdist): the suite is mostly one core's Python; `make test TEST_PROCESSES=0`
# runs it in one process.
TEST_PROCESSES ?= 2

.PHONY: run test install migrate seed simulate bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/gateway migrate

seed: migrate
	$(BIN)/gateway seed-demo --if-empty
	$(BIN)/gateway staff first-admin
	@# Voice prompts nobody has recorded yet, made offline by the bundled speech engine (once).
	$(BIN)/gateway voice synthesize

run: seed
	@echo ""
	@echo "Sugu gateway on $(URL)"
	@echo "  try a USSD session in this terminal:  $(BIN)/gateway simulate"
	@echo "  or post a hop yourself:"
	@echo "    curl -d sessionId=demo1 -d phoneNumber=+22370000001 -d serviceCode='*123#' -d text= $(URL)/webhooks/at/ussd"
	@echo "  staff console: $(URL)/admin"
	@echo "  SMS that would have been sent: $(URL)/fake-at/_fake/ (GATEWAY_SMS_PROVIDER=orange: /fake-orange/_fake/)"
	@echo "  API documentation: $(URL)/docs"
	@echo ""
	@echo "  DEVELOPMENT MODE (GATEWAY_DEV_MODE=true): callbacks need no secret, fakes on loopback;"
	@echo "  never expose this server (production: see README, Security)"
	@echo ""
	GATEWAY_DEV_MODE=true MALLOC_ARENA_MAX=2 $(BIN)/gateway serve --host $(HOST) --port $(PORT)

test: install
	@# The console's end-to-end tests drive Debian's Chromium; without root they are skipped
	@# locally, while CI (CI=true) requires it.
	scripts/install-browser || [ -z "$$CI" ]
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) $(PYTEST_ARGS)

simulate: seed
	GATEWAY_DEV_MODE=true $(BIN)/gateway simulate

bench: install
	$(BIN)/python bench/ussd_load.py

clean:
	rm -rf $(VENV) var/*.db var/*.db-wal var/*.db-shm .pytest_cache .hypothesis
