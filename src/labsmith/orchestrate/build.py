"""``labsmith build``'s host half: validate the lab, probe the hosts that answer, then run
the host playbook on the physical hosts (all, or the ``--limit`` ones) with ansible-runner.

Each stage is a function of the previous one's result, so later stages (the guests, the
services inside them) are added after ``run_host_stage`` without changing it.
"""

import os
import re
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labsmith.ansible.runner import Event, PlaybookRun, run_playbook, tighten
from labsmith.checks.lab import require_valid_lab
from labsmith.checks.probe_report import ProbeReport, judge
from labsmith.errors import UnknownHostError
from labsmith.facts.collect import collect_snapshot
from labsmith.facts.snapshot import load_snapshot
from labsmith.facts.ssh import HostUnreachableError, UnknownHostKeyError
from labsmith.facts.targets import InventoryHostError, target_for_host
from labsmith.inventory.lab import Lab, PhysicalHost

HOST_PLAYBOOK = "host"  # labsmith.lab.host

# The names run_dir_for gives: only these are ever removed by prune_runs, so a --run-dir that
# holds other things loses none of them.
RUN_NAME = re.compile(r"\d{8}-\d{6}-(check|build)-\d+")
KEEP_RUNS = 20


@dataclass(frozen=True)
class BuildTarget:
    source: Path
    lab: Lab
    hosts: list[str]  # the physical hosts this build touches, in name order
    vault_password_file: Path | None = None  # for the playbook too, not only validation


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
    return BuildTarget(
        source=source, lab=report.lab, hosts=physical, vault_password_file=vault_password_file
    )


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
        outcome = _probe_one(target.lab.hosts[name], run_dir / "snapshots" / name, target.source)
        if on_host is not None:
            on_host(outcome)
        outcomes.append(outcome)
    return outcomes


def _probe_one(host: PhysicalHost, destination: Path, source: Path) -> ProbeOutcome:
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
    except UnknownHostKeyError as error:
        # The probe's own advice names its --accept-new-host-key, which build lacks.
        accept = f"record it with `labsmith probe {name} -i {source} --accept-new-host-key`, "
        return ProbeOutcome(name, skipped=str(error.advising(accept + "then build again")))
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


def make_run_dir(run_root: Path, check: bool, keep: int = KEEP_RUNS) -> Path:
    """A new owner-only run directory under ``run_root`` (made owner-only when labsmith
    creates it; a --run-dir that exists keeps its mode), after removing labsmith's older
    runs there beyond the newest ``keep - 1``."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    if not run_root.exists():
        run_root.mkdir(mode=0o700, parents=True)
    elif run_root == default_run_root():
        run_root.chmod(0o700)  # a root made by an earlier labsmith may be 0755
    prune_runs(run_root, keep - 1)
    directory = run_dir_for(run_root, check)
    directory.mkdir(mode=0o700)
    return directory


def prune_runs(run_root: Path, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` of labsmith's run directories; returns them.
    Names start with a UTC timestamp to the second; runs within one second are told apart
    by when they were made."""
    runs = sorted(
        (
            path
            for path in run_root.iterdir()
            if RUN_NAME.fullmatch(path.name) and path.is_dir() and not path.is_symlink()
        ),
        key=lambda path: (path.name[:15], path.stat().st_mtime_ns),
    )
    removed = runs[: max(0, len(runs) - keep)]
    for path in removed:
        shutil.rmtree(path)
    return removed


def run_host_stage(
    target: BuildTarget,
    run_dir: Path,
    *,
    check: bool = False,
    on_event: Callable[[Event], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> PlaybookRun:
    """Stage 3: the host playbook (IOMMU, vfio) on the target hosts; ``cancel`` stops it."""
    result = run_playbook(
        HOST_PLAYBOOK,
        target.source,
        run_dir / "ansible",
        limit=",".join(target.hosts),
        check=check,
        vault_password_file=target.vault_password_file,
        on_event=on_event,
        cancel=cancel,
    )
    tighten(run_dir)  # the probe's snapshots too
    return result


def default_run_root() -> Path:
    """Where runs are kept: $XDG_STATE_HOME/labsmith/runs (~/.local/state/labsmith/runs)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "labsmith" / "runs"
