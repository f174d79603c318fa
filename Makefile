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

# The SSH collector's integration tests start a throwaway OpenSSH sshd on 127.0.0.1. As root
# with apt-get (CI containers) openssh-server is installed. A policy-rc.d answering 101
# ("not allowed") keeps its postinst from starting a system sshd on port 22, and the unit is
# disabled so that none starts at the next boot either: only the binary was wanted.
define INSTALL_OPENSSH_SERVER
[ -x /usr/sbin/sshd ] && exit 0
if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
	echo "/usr/sbin/sshd is missing: the SSH integration tests need openssh-server (run as root, or install it)"
	exit 0
fi
policy=/usr/sbin/policy-rc.d
if [ ! -e "$$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$$policy" && chmod +x "$$policy"
	trap 'rm -f "$$policy"' EXIT
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server
# systemctl and service are often missing in containers; there nothing was started anyway.
{ systemctl stop ssh.service || service ssh stop; } >/dev/null 2>&1 || true
systemctl disable --quiet ssh.service >/dev/null 2>&1 || true
endef
export INSTALL_OPENSSH_SERVER

.PHONY: demo test lint typecheck pytest system-deps bench clean

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
	$(BIN)/labsmith fit
	BIN=$(BIN) scripts/demo-guests.sh

lint: $(INSTALLED)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/yamllint --strict inventories playbooks roles tests/fixtures/planner

typecheck: $(INSTALLED)
	$(BIN)/mypy

pytest: $(INSTALLED) system-deps
	$(BIN)/pytest

system-deps:
	@bash -eo pipefail -c "$$INSTALL_OPENSSH_SERVER"

test: lint typecheck pytest

bench: $(INSTALLED) system-deps
	$(BIN)/python benchmarks/validate_large_inventory.py
	$(BIN)/python benchmarks/probe_loopback.py
	$(BIN)/python benchmarks/sim_throughput.py
	$(BIN)/python benchmarks/apply_guests.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
