# push2fa — make run (serve on http://127.0.0.1:5000) and make test (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
VENDOR := push2fa/static/vendor

.PHONY: run install install-dev assets test lint bench bench-quick screenshots icons mutation clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(STAMP)

# Front-end libraries from the npm registry (package-lock.json), copied to push2fa/static/vendor.
# Re-run only when the lock file changes. Without npm the pages use the same versions from a
# CDN, pinned with SRI hashes.
ASSETS_STAMP := $(VENDOR)/.installed

assets: $(ASSETS_STAMP)

$(ASSETS_STAMP): package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --no-audit --no-fund --loglevel=error && \
		mkdir -p $(VENDOR) && \
		cp node_modules/bootstrap/dist/css/bootstrap.min.css \
		   node_modules/bootstrap/dist/js/bootstrap.bundle.min.js \
		   node_modules/socket.io-client/dist/socket.io.min.js $(VENDOR)/ && \
		touch $@ ; \
	else \
		echo "npm not found: pages will load Bootstrap and socket.io-client from a pinned CDN"; \
	fi

install: $(STAMP) assets

install-dev: $(DEV_STAMP) assets

run: install
	$(BIN)/push2fa serve

test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check push2fa tests bench
	$(BIN)/mypy push2fa tests bench
	$(BIN)/lint-imports

bench: install-dev
	$(BIN)/python -m bench.run

bench-quick: install-dev
	$(BIN)/python -m bench.run --quick

screenshots: install-dev
	PUSH2FA_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -p no:cacheprovider -q tests/browser/test_pages_look_finished.py

# Mutation testing of the security-critical modules ([tool.mutmut] in pyproject.toml; see
# docs/mutation.md). Slow, so not in CI: run it before resolving security work. One module:
# make mutation MUTANTS='push2fa.domain.recovery_codes*'. Results: .venv/bin/mutmut results / show NAME.
MUTANTS ?=
MUTATION_CHILDREN ?= 2

mutation: install-dev
	$(BIN)/mutmut run --max-children $(MUTATION_CHILDREN) $(MUTANTS)
	$(BIN)/mutmut results

# The Approver's PNG app icons, rendered from push2fa/static/brand/icon.svg (committed).
icons: install-dev
	$(BIN)/python scripts/render_icons.py

clean:
	rm -rf $(VENV) node_modules $(VENDOR) .pytest_cache .mypy_cache .ruff_cache mutants
