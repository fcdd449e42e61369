# Credit Ledger — the two commands of the README, and a few more.
# Needs only Python 3.11+ on the machine: everything else is installed into .venv.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= $(or $(CREDIT_WEB_PORT),5000)

.PHONY: run test lint typecheck unit bench clean help verifier

help:
	@echo "make run    set up, load the demo city into var/, verify it, serve it on :5000"
	@echo "make test   set up, run lint, type checks and every test"
	@echo "make bench  ingest and verify benchmark (BENCH_ARGS='--db postgresql --events N')"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/credit demo
	$(BIN)/credit verify
	@echo "The ledger is in var/ (CREDIT_DATABASE_URL to change it). Try: $(BIN)/credit keys list;"
	@echo "  $(BIN)/credit lookup 杭州; $(BIN)/credit history SUBJECT;"
	@echo "  CREDIT_DEVELOPMENT_SECRETS=1 $(BIN)/credit extract SUBJECT -o var/extract.json --as credit-office --purpose 演示"
	@echo "    (signing needs the acting authority's secret; the demo's are development ones);"
	@echo "  $(BIN)/credit keys export platform > var/platform.pem; $(BIN)/credit verify-extract var/extract.json --trust var/platform.pem"
	@echo "    and with the demo's witnesses (in-process; FORMAT.md §12): add --witness court.hangzhou/witness var/witnesses/court.pem"
	@echo "    --witness commission.linan/witness var/witnesses/commission.pem --witness audit.zhejiang/monitor var/witnesses/audit.pem"
	@echo "Serving the 信用临安 window (CREDIT_WEB_PORT=$(PORT)); Ctrl-C stops it."
	@CREDIT_DEVELOPMENT_SECRETS=1 $(BIN)/credit serve --port $(PORT) || [ $$? -eq 130 ]

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

# The release step: build the court's verifier and publish its SHA-256 in docs/VERIFYING.md.
verifier: $(STAMP)
	$(BIN)/python -c 'from pathlib import Path; from workflows.verifier_file import pack_verifier, publish_digest; d = pack_verifier(Path("credit-verify.pyz")); publish_digest(Path("docs/VERIFYING.md"), d); print("credit-verify.pyz", d)'

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
