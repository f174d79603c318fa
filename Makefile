# The two README commands are `make demo` and `make test`; each builds .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

# Debian and Ubuntu ship python3 without ensurepip unless python3-venv is installed; then
# the venv is made without pip and pip is installed from PyPI's own wheel.
define BOOTSTRAP_PIP
import json, pathlib, tempfile, urllib.parse, urllib.request, subprocess, sys
index = "https://pypi.org/pypi/pip/json"
release = json.load(urllib.request.urlopen(index))
wheel = next(f for f in release["urls"] if f["filename"].endswith(".whl"))
target = pathlib.Path(tempfile.mkdtemp()) / wheel["filename"]
urllib.request.urlretrieve(urllib.parse.urljoin(index, wheel["url"]), target)
subprocess.run([sys.executable, f"{target}/pip", "install", "--quiet", str(target)], check=True)
endef
export BOOTSTRAP_PIP

.PHONY: demo test lint typecheck unit bench clean

$(INSTALLED): pyproject.toml
	@if ! $(PYTHON) -m venv $(VENV) 2>/dev/null; then \
		echo "python3-venv is missing: creating $(VENV) without ensurepip"; \
		$(PYTHON) -m venv --clear --without-pip $(VENV) && $(BIN)/python -c "$$BOOTSTRAP_PIP"; \
	fi
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/labsmith validate
	$(BIN)/labsmith graph

lint: $(INSTALLED)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/yamllint --strict inventories playbooks roles

typecheck: $(INSTALLED)
	$(BIN)/mypy

unit: $(INSTALLED)
	$(BIN)/pytest

test: lint typecheck unit

bench: $(INSTALLED)
	$(BIN)/python benchmarks/validate_large_inventory.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
