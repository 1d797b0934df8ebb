# Two entry points for a fresh machine with Python 3.10+ and make:
#   make demo   set everything up and run the demo on the bundled model
#   make test   set everything up and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: install demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg setup.py
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/dcgan-complete demo --out demo-out

# The browser tests of `serve` need a chromium (Debian: sudo apt-get install chromium; or set
# CHROMIUM to one); without it they are skipped, and -rs prints why.
test: install
	@command -v chromium > /dev/null 2>&1 || [ -x "$${CHROMIUM:-}" ] || echo "note: no chromium" \
		"found: the browser tests of 'serve' will be skipped (sudo apt-get install chromium)"
	$(BIN)/python -m pytest -q -rs

bench: install
	$(BIN)/python bench/train_speed.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
