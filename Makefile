# gridledger: two commands, `make demo` and `make test`, each sets up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup browser demo test test-all bench coverage clean

setup: $(STAMP)

# The report test opens report.html in a real headless browser: a Chromium or Chrome already installed, else
# Debian's Chromium when this runs as root with apt-get; otherwise the test says what to install.
BROWSERS := chromium chromium-browser google-chrome google-chrome-stable chrome
browser:
	@for b in $(BROWSERS); do command -v $$b >/dev/null && exit 0; done; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq chromium; \
	else \
		echo "make: no Chromium or Chrome found and not root: the report test will fail until one is installed"; \
	fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[bench,sweep,test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/gridledger run studies/baran-wu-p2p.yaml

# Two pytest workers (pytest-xdist), one test file each at a time, so a file's
# module-scoped study runs stay in one process; WORKERS=0 runs in one process.
# The 25 slowest tests close every log, to keep `make test` within its budget.
WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(WORKERS) --dist loadfile --durations=25

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
