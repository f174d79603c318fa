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

# Debian packages the tests need, installed as root with apt-get (CI machines):
# - openssh-server: the SSH collector's tests start a throwaway sshd on 127.0.0.1. A
#   policy-rc.d answering 101 ("not allowed") keeps its postinst from starting a system sshd
#   on port 22, and the unit is disabled so that none starts at the next boot either.
# - debootstrap, qemu, grub-pc-bin, fdisk, e2fsprogs: the disposable test hosts the roles
#   and labsmith build are tested on (tests/testbed/).
SYSTEM_PACKAGES := openssh-server openssh-client debootstrap qemu-system-x86 qemu-utils \
	e2fsprogs fdisk grub-pc-bin
define INSTALL_SYSTEM_PACKAGES
missing=""
for tool in /usr/sbin/sshd /usr/sbin/debootstrap /usr/bin/qemu-system-x86_64 /usr/bin/qemu-img \
	/usr/sbin/sfdisk /usr/bin/grub-mkimage /usr/sbin/mkfs.ext4; do
	[ -x "$$tool" ] || missing="$$missing $$tool"
done
[ -z "$$missing" ] && exit 0
if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
	echo "missing:$$missing; the SSH and test-host tests need them (run as root, or install $(SYSTEM_PACKAGES))"
	exit 0
fi
policy=/usr/sbin/policy-rc.d
if [ ! -e "$$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$$policy" && chmod +x "$$policy"
	trap 'rm -f "$$policy"' EXIT
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES) >/dev/null
# systemctl and service are often missing in containers; there nothing was started anyway.
{ systemctl stop ssh.service || service ssh stop; } >/dev/null 2>&1 || true
systemctl disable --quiet ssh.service >/dev/null 2>&1 || true
endef
export INSTALL_SYSTEM_PACKAGES

.PHONY: demo test lint typecheck pytest roles system-deps bench clean

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
	$(BIN)/yamllint --strict inventories playbooks roles tests/fixtures/planner tests/testbed
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/ansible-lint -q --profile production roles playbooks tests/testbed/molecule

typecheck: $(INSTALLED)
	$(BIN)/mypy

pytest: $(INSTALLED) system-deps
	$(BIN)/pytest

system-deps:
	@bash -eo pipefail -c "$$INSTALL_SYSTEM_PACKAGES"

# Each role's molecule scenario on a disposable Debian VM: converge, idempotence, verify.
ROLES_WITH_SCENARIOS := iommu vfio
roles: $(INSTALLED) system-deps
	@for role in $(ROLES_WITH_SCENARIOS); do \
		echo "== molecule test: roles/$$role"; \
		(cd roles/$$role && PATH=$(CURDIR)/$(BIN):$$PATH molecule test) || exit 1; \
	done

test: lint typecheck pytest roles

bench: $(INSTALLED) system-deps
	$(BIN)/python benchmarks/validate_large_inventory.py
	$(BIN)/python benchmarks/probe_loopback.py
	$(BIN)/python benchmarks/sim_throughput.py
	$(BIN)/python benchmarks/apply_guests.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
