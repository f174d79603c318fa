# The two README commands are `make demo` and `make test`; each builds .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

# Debian and Ubuntu ship python3 without ensurepip unless python3-venv is installed: as root
# it is installed with apt-get, otherwise the message says what to install.
define INSTALL_VENV_SUPPORT
if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
	echo "$(PYTHON) cannot create a virtual environment with pip: install python3-venv" \
		"(apt-get install python3-venv) or your distribution's venv package, then run make again" >&2
	exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
endef
export INSTALL_VENV_SUPPORT

# Debian packages the tests need, installed as root with apt-get (CI machines):
# - openssh-server: the SSH collector's tests start a throwaway sshd on 127.0.0.1. A
#   policy-rc.d answering 101 ("not allowed") keeps its postinst from starting a system sshd
#   on port 22, and the unit is disabled so that none starts at the next boot either.
# - debootstrap, qemu, grub-pc-bin, fdisk, e2fsprogs: the disposable test hosts the roles
#   and labsmith build are tested on (tests/testbed/).
SYSTEM_PACKAGES := openssh-server openssh-client debootstrap qemu-system-x86 qemu-utils \
	e2fsprogs fdisk grub-pc-bin systemd-container netcat-openbsd
define INSTALL_SYSTEM_PACKAGES
missing=""
for tool in /usr/sbin/sshd /usr/sbin/debootstrap /usr/bin/qemu-system-x86_64 /usr/bin/qemu-img \
	/usr/sbin/sfdisk /usr/bin/grub-mkimage /usr/sbin/mkfs.ext4 /usr/bin/systemd-nspawn /usr/bin/nc.openbsd; do
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

.PHONY: demo test lint typecheck system-deps bench clean $(addprefix tier-,$(TIERS))

$(INSTALLED): pyproject.toml
	@if ! $(PYTHON) -m venv $(VENV) 2>/dev/null; then \
		rm -rf $(VENV); bash -eo pipefail -c "$$INSTALL_VENV_SUPPORT" && $(PYTHON) -m venv $(VENV); \
	fi
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

# The checkout is the collection labsmith.lab; Ansible finds it by FQCN through this link
# (molecule's scenarios and plain ansible-playbook runs from the checkout).
COLLECTIONS := $(CURDIR)/$(VENV)/collections
$(COLLECTIONS)/ansible_collections/labsmith/lab: | $(INSTALLED)
	mkdir -p $(@D)
	ln -sfn $(CURDIR) $@

demo: $(INSTALLED)
	$(BIN)/labsmith validate
	$(BIN)/labsmith graph
	$(BIN)/labsmith fit
	BIN=$(BIN) scripts/demo-guests.sh

lint: $(INSTALLED)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/yamllint --strict galaxy.yml meta inventories playbooks roles tests/fixtures/planner tests/testbed
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/ansible-lint -q --profile production roles playbooks tests/testbed/molecule

typecheck: $(INSTALLED)
	$(BIN)/mypy

system-deps:
	@bash -eo pipefail -c "$$INSTALL_SYSTEM_PACKAGES"

# The test tiers, cheapest first (DESIGN.md): static checks; unit (pure code); integration
# (the simulator over HTTPS, a real sshd); containers (systemd-nspawn, about a second to
# boot: the collection as an engine installs it, roles without a kernel of their own); vms
# (qemu under TCG: each role's molecule scenario, GRUB only where the boot path is under
# test); e2e (labsmith build against booted test hosts).
TIERS := static unit integration containers vms e2e
ROLES_WITH_SCENARIOS := iommu vfio

tier-static: lint typecheck
tier-unit: $(INSTALLED)
	$(BIN)/pytest -q tests/unit
tier-integration: $(INSTALLED) system-deps
	$(BIN)/pytest -q tests/integration
tier-containers: $(INSTALLED) system-deps
	$(BIN)/pytest -q tests/containers
tier-vms: $(INSTALLED) system-deps $(COLLECTIONS)/ansible_collections/labsmith/lab
	@for role in $(ROLES_WITH_SCENARIOS); do \
		echo "== molecule test: roles/$$role"; \
		(cd roles/$$role && PATH=$(CURDIR)/$(BIN):$$PATH ANSIBLE_COLLECTIONS_PATH=$(COLLECTIONS) \
			molecule test) || exit 1; \
	done
tier-e2e: $(INSTALLED) system-deps
	$(BIN)/pytest -q tests/e2e

# Every tier in order, stopping at the first that fails; each tier's duration at the end.
test: $(INSTALLED) system-deps
	@durations=""; status=0; \
	for tier in $(TIERS); do \
		echo "== tier $$tier"; started=$$(date +%s); \
		$(MAKE) --no-print-directory tier-$$tier || status=$$?; \
		durations="$$durations$$(printf '%-12s %5d s' $$tier $$(( $$(date +%s) - started )))\n"; \
		if [ $$status != 0 ]; then durations="$$durations$$tier failed\n"; break; fi; \
	done; \
	printf '\n== tier durations\n'"$$durations"; exit $$status

bench: $(INSTALLED) system-deps
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/validate_large_inventory.py
	$(BIN)/python benchmarks/probe_loopback.py
	$(BIN)/python benchmarks/sim_throughput.py
	$(BIN)/python benchmarks/apply_guests.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
