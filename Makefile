# gonghui: `make run` starts a working server with demo data; `make test` runs every test.
# Both create .venv and install on first use.

PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	&& { command -v $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

ASSETS := src/gonghui/web/static/vendor/.built

.PHONY: install assets run test test-sqlite test-postgres lint bench openapi clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is required"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

$(ASSETS): package.json package-lock.json
	scripts/web-assets.sh
	touch $@

install: $(STAMP) $(ASSETS)

assets: $(ASSETS)

run: install
	$(BIN)/gonghui migrate
	$(BIN)/gonghui demo --if-empty
	$(BIN)/gonghui serve

test: install
	scripts/browser-deps.sh
	scripts/sandbox-deps.sh
	scripts/deploy-deps.sh
	scripts/sdk-deps.sh
	scripts/test.sh

test-sqlite: install
	$(BIN)/pytest

test-postgres: install
	scripts/test.sh --postgres-only

lint: install
	$(BIN)/ruff format --check src tests bench sdk
	$(BIN)/ruff check src tests bench sdk
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install
	scripts/sandbox-deps.sh
	scripts/bench.sh $(W)

openapi: install
	$(BIN)/gonghui openapi --out openapi.json

clean:
	rm -rf $(VENV) data node_modules sdk/typescript/node_modules sdk/typescript/dist src/gonghui/web/static/vendor .pytest_cache .mypy_cache .ruff_cache \
		.import_linter_cache .grimp_cache
