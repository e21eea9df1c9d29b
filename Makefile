# Two entry points: `make demo` and `make test`. Both create .venv and install into it,
# idempotently (the stamp file is rebuilt only when pyproject.toml or constraints.txt change).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-faults lint typecheck layers packages unit bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ledgerline demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

# The console's browser tests drive the distribution's headless Chromium, never a downloaded
# browser, and `bench api` (and its test) sends its load with the distribution's wrk: install
# what is missing from the package manager when we may (root, apt-get).
packages:
	@missing=""; \
	if [ -z "$$LEDGERLINE_CHROMIUM" ] && [ ! -x /usr/bin/chromium ]; then missing=" chromium"; fi; \
	if ! command -v wrk >/dev/null; then missing="$$missing wrk"; fi; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "make: installing$$missing for the browser tests and the API bench"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; \
	else \
		echo "make: missing$$missing: the console's browser tests need chromium (or" \
			"LEDGERLINE_CHROMIUM), bench api's load generator test needs wrk;" \
			"install them from the distribution" >&2; \
	fi

test: lint typecheck layers packages
	$(BIN)/pytest --cov --cov-report=term:skip-covered --cov-report=xml -q --durations=25

# The long fault schedules: many seeds of SIGKILLs in both read-path modes, and 20,000
# simulated seeds (the default suite runs a short version of each).
test-faults: $(STAMP)
	LEDGERLINE_FAULTS_LONG=1 LEDGERLINE_SIM_SEEDS=20000 $(BIN)/pytest tests/faults -s -q -p no:cacheprovider --timeout=3600

bench: $(STAMP)
	$(BIN)/ledgerline bench append --json

clean:
	rm -rf $(VENV) .ledgerline .coverage coverage.xml .mypy_cache .ruff_cache .pytest_cache
