# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
VENV_STAMP := $(VENV)/.installed
NPM_STAMP  := node_modules/.installed

.PHONY: demo test venv npm bench clean

demo: $(VENV_STAMP)
	$(BIN)/provsim demo

test: $(VENV_STAMP) $(NPM_STAMP)
	$(BIN)/python -m pytest -q

venv: $(VENV_STAMP)

npm: $(NPM_STAMP)

# Python packages: ranges in pyproject.toml, exact versions tested here in constraints.txt.
$(VENV_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

# JavaScript tools (pinned in package-lock.json): solcjs for the contract rebuild test, and the
# local nodes anvil (@foundry-rs/anvil-linux-amd64) and ganache that pipeline/nodes.py starts.
$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

bench: $(VENV_STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache
