"""``labsmith build``'s host half: validate the lab, probe the hosts that answer, then run
the host playbook on the physical hosts (all, or the ``--limit`` ones) with ansible-runner.

Each stage is a function of the previous one's result, so later stages (the guests, the
services inside them) are added after ``run_host_stage`` without changing it.
"""

import os
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labsmith.ansible.runner import Event, PlaybookRun, run_playbook
from labsmith.checks.lab import require_valid_lab
from labsmith.checks.probe_report import ProbeReport, judge
from labsmith.errors import UnknownHostError
from labsmith.facts.collect import HostUnreachableError, collect_snapshot
from labsmith.facts.snapshot import load_snapshot
from labsmith.facts.targets import InventoryHostError, target_for_host
from labsmith.inventory.lab import Lab, PhysicalHost

HOST_PLAYBOOK = "host"  # labsmith.lab.host


@dataclass(frozen=True)
class BuildTarget:
    source: Path
    lab: Lab
    hosts: list[str]  # the physical hosts this build touches, in name order


def prepare(
    source: Path, limit: tuple[str, ...] = (), vault_password_file: Path | None = None
) -> BuildTarget:
    """Stage 1: the inventory must validate; ``--limit`` names physical hosts."""
    report = require_valid_lab(source, vault_password_file)
    physical = sorted(report.lab.hosts)
    if limit:
        unknown = sorted(set(limit) - set(physical))
        if unknown:
            raise UnknownHostError(
                f"--limit {', '.join(unknown)}: not a physical host of the inventory; "
                f"hosts: {', '.join(physical) or '(none)'}"
            )
        physical = [name for name in physical if name in limit]
    if not physical:
        raise UnknownHostError(f"{source}: no physical host (labsmith_kind) to build")
    return BuildTarget(source=source, lab=report.lab, hosts=physical)


@dataclass(frozen=True)
class ProbeOutcome:
    host: str
    report: ProbeReport | None = None
    skipped: str = ""  # why there is no report (unreachable, no connection settings)


def probe_stage(
    target: BuildTarget,
    run_dir: Path,
    on_host: Callable[[ProbeOutcome], None] | None = None,
) -> list[ProbeOutcome]:
    """Stage 2: snapshot and judge each host that answers over SSH (read-only). A host
    that does not answer is not an error here: the playbook reports it."""
    outcomes = []
    for name in target.hosts:
        outcome = _probe_one(target.lab.hosts[name], run_dir / "snapshots" / name)
        if on_host is not None:
            on_host(outcome)
        outcomes.append(outcome)
    return outcomes


def _probe_one(host: PhysicalHost, destination: Path) -> ProbeOutcome:
    """The host's connection variables come with the validated lab: no second load."""
    name, variables = host.name, host.source.variables
    try:
        ssh_target = target_for_host(name, variables)
    except InventoryHostError as error:
        return ProbeOutcome(name, skipped=str(error))
    try:
        collect_snapshot(
            ssh_target,
            destination,
            known_hosts=known_hosts_file(variables.get("ansible_ssh_common_args")),
            connect_timeout=10.0,
        )
    except HostUnreachableError as error:
        return ProbeOutcome(name, skipped=str(error))
    return ProbeOutcome(name, report=judge(load_snapshot(destination), name, host))


def known_hosts_file(common_args: object) -> Path | None:
    """``-o UserKnownHostsFile=X`` from ``ansible_ssh_common_args``: where Ansible checks
    this host's key, so the probe checks it in the same place."""
    if not isinstance(common_args, str):
        return None
    words = shlex.split(common_args)
    for index, word in enumerate(words):
        option = word[2:] if word.startswith("-o") and len(word) > 2 else None
        if word == "-o" and index + 1 < len(words):
            option = words[index + 1]
        if option and option.lower().startswith("userknownhostsfile="):
            return Path(option.split("=", 1)[1].split()[0]).expanduser()
    return None


def run_dir_for(run_root: Path, check: bool) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return run_root / f"{stamp}-{'check' if check else 'build'}-{os.getpid()}"


def run_host_stage(
    target: BuildTarget,
    run_dir: Path,
    *,
    check: bool = False,
    on_event: Callable[[Event], None] | None = None,
) -> PlaybookRun:
    """Stage 3: the host playbook (IOMMU, vfio) on the target hosts."""
    return run_playbook(
        HOST_PLAYBOOK,
        target.source,
        run_dir / "ansible",
        limit=",".join(target.hosts),
        check=check,
        on_event=on_event,
    )


def default_run_root() -> Path:
    """Where runs are kept: $XDG_STATE_HOME/labsmith/runs (~/.local/state/labsmith/runs)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "labsmith" / "runs"
