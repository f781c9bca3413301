# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
# both cores (pytest-xdist): the suite runs in about half the time
PYTEST_ARGS ?= -n 2
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install test-packages browser bench clean

run: install
	$(VENV)/bin/ml4paleo serve

test: install test-packages
	$(PY) -m pytest $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	# spam ships a real micro-CT scan (spam/data/snow/snow.tif) used by the tests;
	# --no-deps: its own dependencies are heavy and not needed to read one file.
	$(PY) -m pip install --quiet --no-deps spam==0.9.1
	touch $(STAMP)

# Debian packages for the tests, installed when missing and running as root (one apt-get update
# for both): Chromium for the browser tests (Playwright cannot download its own here) and the
# PostgreSQL server, for the store contract suite on a throwaway cluster (tests/pgserver.py).
test-packages:
	@pkgs=""; \
	[ -x /usr/bin/chromium ] || pkgs="$$pkgs chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || pkgs="$$pkgs postgresql"; \
	if [ -n "$$pkgs" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkgs >/dev/null; \
		else echo "note: missing Debian packages:$$pkgs and not root; the browser / PostgreSQL tests will be skipped"; fi; \
	fi

browser: test-packages

bench: install
	$(PY) bench/convert.py

clean:
	rm -rf $(VENV) build src/*.egg-info
