# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
VENV_STAMP := $(VENV)/.installed
NPM_STAMP  := node_modules/.installed

WRK_DIR := build/wrk
WRK     := $(WRK_DIR)/usr/bin/wrk

.PHONY: demo test venv npm bench wrk reliability clean

demo: $(VENV_STAMP)
	$(BIN)/provsim demo

# One pytest worker per core (pytest-xdist): the suite waits on subprocesses, nodes and sockets a lot.
test: $(VENV_STAMP) $(NPM_STAMP)
	$(BIN)/python -m pytest -q -n auto

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

bench: $(VENV_STAMP) $(WRK)
	WRK=$(WRK) $(BIN)/python bench/run_all.py

# The long crash soak: SIGKILL a run of 500 items at 20 random points, restart each time, count what was lost.
reliability: $(VENV_STAMP) $(NPM_STAMP)
	$(BIN)/python tools/soak.py

# wrk (Debian's package and its LuaJIT library, unpacked without root) for the load generator's benchmark.
wrk: $(WRK)

$(WRK):
	rm -rf $(WRK_DIR) && mkdir -p $(WRK_DIR)
	cd $(WRK_DIR) && apt-get download wrk libluajit-5.1-2 && for deb in *.deb; do dpkg -x $$deb .; done && rm -f *.deb
	LD_LIBRARY_PATH=$(WRK_DIR)/usr/lib/x86_64-linux-gnu $(WRK) --version >/dev/null || test $$? -eq 1

clean:
	rm -rf $(VENV) node_modules .pytest_cache
