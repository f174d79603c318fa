"""A labsmith inventory for a booted test host: an ordinary Ansible inventory directory."""

import shlex
from pathlib import Path
from typing import Any

import yaml

from tests.testbed.vm import ATI_VGA, EDU, ISOLATED_EDU, VGA, HostInfo

HOST = "testhost"
# The stand-ins the roles pass through: the edu card (the host keeps two more of the same
# id, so it is bound by address) and the ATI VGA (a unique id: bound by ids=).
STAND_IN_GPUS: list[dict[str, Any]] = [
    {"name": "edu", "pci": ISOLATED_EDU, "vendor_device": EDU, "vram": "1G",
     "mode": "passthrough"},
    {"name": "ativga", "pci": VGA, "vendor_device": ATI_VGA, "vram": "1G",
     "mode": "passthrough"},
]  # fmt: skip


def write_inventory(
    directory: Path,
    host: HostInfo,
    *,
    allow_reboot: bool = True,
    gpus: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """hosts.yml + host_vars/testhost.yml; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    hosts = {"all": {"children": {"proxmox": {"hosts": {HOST: None}}}}}
    (directory / "hosts.yml").write_text("---\n" + yaml.safe_dump(hosts, sort_keys=False))
    # The keepalives matter: qemu's user network keeps a dead connection open across a
    # reboot, and without them the reboot module's multiplexed session never notices.
    common_args = " ".join(shlex.quote(f"-o{option}") for option in host.ssh_options())
    variables: dict[str, Any] = {
        "ansible_host": host.address,
        "ansible_port": host.port,
        "ansible_user": host.user,
        "ansible_ssh_private_key_file": host.key,
        "ansible_ssh_common_args": common_args,
        "labsmith_kind": "proxmox",
        "labsmith_cpu": {"vendor": "intel", "model": "QEMU TCG", "cores": 2},
        "labsmith_memory": "2G",
        "labsmith_gpus": STAND_IN_GPUS if gpus is None else gpus,
        "labsmith_allow_reboot": allow_reboot,
        **(extra or {}),
    }
    host_vars = directory / "host_vars"
    host_vars.mkdir(exist_ok=True)
    (host_vars / f"{HOST}.yml").write_text("---\n" + yaml.safe_dump(variables, sort_keys=False))
    return directory
