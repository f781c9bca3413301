# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install browser bench clean

run: install
	$(VENV)/bin/ml4paleo serve

test: install browser
	$(PY) -m pytest $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	# spam ships a real micro-CT scan (spam/data/snow/snow.tif) used by the tests;
	# --no-deps: its own dependencies are heavy and not needed to read one file.
	$(PY) -m pip install --quiet --no-deps spam==0.9.1
	touch $(STAMP)

# Debian's Chromium for the browser tests (Playwright cannot download its own here).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
		else echo "note: /usr/bin/chromium missing and not root; browser tests will be skipped"; fi; \
	fi

bench: install
	$(PY) bench/convert.py

clean:
	rm -rf $(VENV) build src/*.egg-info
