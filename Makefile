# gridledger: two commands, `make demo` and `make test`, each sets up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup browser demo test test-all bench coverage clean

setup: $(STAMP)

# The report test opens report.html in a real headless browser: Debian's Chromium.
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/gridledger run studies/baran-wu-p2p.yaml

# Two pytest workers (pytest-xdist), one test file each at a time, so a file's
# module-scoped study runs stay in one process; WORKERS=0 runs in one process.
WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(WORKERS) --dist loadfile

test: $(STAMP) browser
	$(PYTEST) -m "not slow"

test-all: $(STAMP) browser
	$(PYTEST)

# Line coverage of agents/ by the tests that start no federate (no broker, no processes).
coverage: $(STAMP)
	$(BIN)/python -m coverage run --source=agents -m pytest -q -m "not e2e and not slow" tests/test_agents_*.py tests/test_prosumer.py tests/test_ev_fleet.py tests/test_grid_inverters.py
	$(BIN)/python -m coverage report --show-missing --fail-under=90

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
