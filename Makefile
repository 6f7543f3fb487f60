# Faster Payments on AWS: the two commands are `make serve` and `make test` (see README.md).
# Every target sets up what it needs first; re-running with nothing changed skips the installs.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ADDR   ?= 127.0.0.1:8000
export NO_MKDOCS_2_WARNING := 1
# Let Python keep compiled modules (.pyc, git-ignored). Some machines set PYTHONDONTWRITEBYTECODE=1, and then every
# process of a run (test workers, notebook kernels, the site build, subprocesses) compiled moto, botocore and
# matplotlib again from source: about 10 s more to collect the tests, 3 s more per notebook kernel.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help setup serve build test test-fast system-deps browser-deps clean lock package

help:
	@echo "make serve   set up, execute the notebooks, build and serve the site at http://$(ADDR)"
	@echo "make test    set up and run every test (unit, notebooks, site build, browser); FORCE=1 reruns unchanged"
	@echo "make build   set up and build the static site into site/"
	@echo "make clean   remove build output (keeps the virtual environment)"

# The virtual environment, reinstalled only when pyproject.toml or constraints.txt changes. constraints.txt
# pins every package to the version the tests last passed with. uv (pinned there too) installs them: about
# 15 s where pip takes two minutes; if uv cannot be installed, pip does the same install.
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed: set PYTHON=python3.11")'
	@PYTHON=$(PYTHON) bash tools/ensure-system-packages.sh python-venv
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt uv 2>/dev/null \
	  || echo "uv could not be installed: installing with pip (slower)"
	@if test -x $(BIN)/uv; then \
	  echo "$(BIN)/uv pip install -c constraints.txt -e '.[site,test]'"; \
	  $(BIN)/uv pip install --quiet --python $(BIN)/python -c constraints.txt -e '.[site,test]'; \
	else \
	  echo "$(BIN)/python -m pip install -c constraints.txt -e '.[site,test]'"; \
	  $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[site,test]'; \
	fi
	@touch $@

# Move the pins on: install the newest versions pyproject.toml allows into a scratch environment, freeze them.
lock:
	rm -rf build/lock-venv && $(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/python -m pip install --quiet --disable-pip-version-check uv -e '.[site,test]'
	{ head -n 2 constraints.txt; build/lock-venv/bin/python -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt && rm -rf build/lock-venv

system-deps:
	@bash tools/ensure-system-packages.sh graphviz

browser-deps:
	@bash tools/ensure-system-packages.sh chromium

setup: $(STAMP) system-deps

serve: setup
	$(BIN)/mkdocs serve --strict -a $(ADDR)

build: setup
	$(BIN)/mkdocs build --strict

# A rerun whose inputs (every file git would commit, the interpreter, the browser, FASTERPAY_* settings) are
# those of a run that passed is skipped with a line that says so; FORCE=1 runs every test regardless.
test: setup browser-deps
	@$(BIN)/python tools/testcache.py check $(if $(FORCE),--force) || { \
	  echo "$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=15 --junitxml=build/test-results/junit.xml tests"; \
	  $(BIN)/python -m pytest -n 2 --dist loadgroup --durations=15 --junitxml=build/test-results/junit.xml tests && $(BIN)/python tools/testcache.py record; }

# The Lambda deployment package (fasterpay and its runtime dependencies, for the template's runtime and CPU);
# pip keeps the wheels in build/lambda/wheels, so a rebuild needs no network.
package: $(STAMP)
	$(BIN)/python -m simulations.package --out build/lambda/fasterpay-lambda.zip

clean:
	rm -rf build site docs/generated
