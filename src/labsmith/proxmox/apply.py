"""Carry out a plan: mappings first, then guests concurrently (a limit per node), every task
awaited, starts after their guest's create or update.

A write whose answer was lost may have happened, so nothing is repeated blindly: after a
round with transient failures the cluster is observed again and re-planned, and only the
guests of the confirmed plan are touched again. Creates use the inventory's fixed VMIDs,
so a retried create can never make a second guest.
"""

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import ExitStack
from dataclasses import dataclass, field

from labsmith.proxmox.client import ProxmoxClient
from labsmith.proxmox.errors import (
    AuthenticationFailedError,
    ParameterRejectedError,
    PermissionDeniedError,
    ProxmoxApiError,
)
from labsmith.proxmox.plan import Action, MappingAction, Plan

# Concurrent guest operations per node: PVE runs each as a worker process and serialises
# storage allocation per storage, so a handful in parallel is what a node digests well.
DEFAULT_PER_NODE = 4


@dataclass(frozen=True)
class ApplySettings:
    per_node: int = DEFAULT_PER_NODE
    task_timeout: float = 900.0
    poll_interval: float = 0.5


@dataclass
class Outcome:
    """What happened to one guest or mapping."""

    subject: str  # guest name or "mapping <id>"
    node: str
    action: str
    ok: bool
    detail: str = ""
    retryable: bool = False


@dataclass
class ApplyResult:
    outcomes: list[Outcome] = field(default_factory=list)
    rounds: int = 0

    @property
    def failed(self) -> list[Outcome]:
        latest: dict[tuple[str, str], Outcome] = {}
        for outcome in self.outcomes:
            latest[(outcome.subject, outcome.node)] = outcome
        return [outcome for outcome in latest.values() if not outcome.ok]


class Progress:
    """Hooks for a display; the default shows nothing."""

    def step(self, subject: str, what: str) -> None:
        """A write is about to be sent."""

    def done(self, outcome: Outcome) -> None:
        """A guest or mapping is finished (or failed)."""


def apply_plan(
    clients: dict[str, ProxmoxClient],
    plan: Plan,
    settings: ApplySettings | None = None,
    progress: Progress | None = None,
    root_clients: dict[str, ProxmoxClient] | None = None,
) -> list[Outcome]:
    """One pass over the plan's writing actions; errors become failed outcomes.
    ``root_clients``: root@pam sessions per cluster, for the actions' ``root_send``."""
    root_clients = root_clients or {}
    settings = settings or ApplySettings()
    progress = progress or Progress()
    outcomes: list[Outcome] = []
    failed_mappings: set[tuple[str, str]] = set()
    for mapping in plan.mapping_actions:
        if not mapping.writes:
            continue
        outcome = _apply_mapping(clients[mapping.cluster], mapping, progress)
        if not outcome.ok:
            failed_mappings.add((mapping.cluster, mapping.id))
        progress.done(outcome)
        outcomes.append(outcome)
    runnable: list[Action] = []
    for action in plan.actions:
        if not action.writes:
            continue
        missing = [m for m in action.mappings if (action.cluster, m) in failed_mappings]
        if missing and action.action != "destroy":
            outcome = Outcome(
                action.guest,
                action.node,
                action.action,
                ok=False,
                detail=f"skipped: PCI mapping {', '.join(missing)} could not be written",
                retryable=True,
            )
            progress.done(outcome)
            outcomes.append(outcome)
            continue
        runnable.append(action)
    by_node: dict[tuple[str, str], list[Action]] = {}
    for action in runnable:
        by_node.setdefault((action.cluster, action.node), []).append(action)
    # One pool per node: a node's waiting guests never hold a worker another node could use.
    with ExitStack() as pools:
        futures: list[Future[Outcome]] = []
        for (cluster, node), actions in sorted(by_node.items()):
            pool = pools.enter_context(
                ThreadPoolExecutor(
                    max_workers=min(settings.per_node, len(actions)),
                    thread_name_prefix=f"apply-{node}",
                )
            )
            futures.extend(
                pool.submit(
                    _apply_guest,
                    clients[cluster],
                    root_clients.get(cluster),
                    action,
                    settings,
                    progress,
                )
                for action in actions
            )
        for future in as_completed(futures):
            outcome = future.result()
            progress.done(outcome)
            outcomes.append(outcome)
    return outcomes


def converge(
    clients: dict[str, ProxmoxClient],
    plan: Plan,
    replan: Callable[[], Plan],
    *,
    rounds: int = 3,
    settings: ApplySettings | None = None,
    progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
    root_clients: dict[str, ProxmoxClient] | None = None,
) -> ApplyResult:
    """Apply ``plan``; while transient failures remain, observe again and apply the fresh
    plan's actions for the same guests and mappings (never anything the user did not see)."""
    settings = settings or ApplySettings()
    confirmed_guests = {(a.cluster, a.vmid) for a in plan.actions if a.writes}
    confirmed_mappings = {(m.cluster, m.id) for m in plan.mapping_actions if m.writes}
    result = ApplyResult()
    current = plan
    for attempt in range(rounds):
        result.rounds = attempt + 1
        outcomes = apply_plan(clients, current, settings, progress, root_clients)
        result.outcomes.extend(outcomes)
        if not any(o.retryable and not o.ok for o in outcomes) or attempt == rounds - 1:
            break
        fresh = _replan_when_unlocked(replan, settings, sleep)
        if fresh is None:
            break  # the cluster cannot be read now; the failures stand
        current = Plan(
            actions=[a for a in fresh.actions if (a.cluster, a.vmid) in confirmed_guests],
            mapping_actions=[
                m for m in fresh.mapping_actions if (m.cluster, m.id) in confirmed_mappings
            ],
        )
        # A write whose answer was lost may have done its work: nothing left to do there.
        for action in current.actions:
            if action.action == "noop":
                result.outcomes.append(
                    Outcome(action.guest, action.node, "check", True, "matches the inventory")
                )
        for mapping in current.mapping_actions:
            if mapping.action == "noop":
                subject = f"mapping {mapping.id}"
                result.outcomes.append(Outcome(subject, mapping.node, "check", True, "in place"))
    return result


def _replan_when_unlocked(
    replan: Callable[[], Plan], settings: ApplySettings, sleep: Callable[[float], None]
) -> Plan | None:
    """A fresh plan once no confirmed guest is locked by a task still running (a create or
    update whose answer was lost), waiting at most one task timeout."""
    deadline = time.monotonic() + settings.task_timeout
    while True:
        sleep(settings.poll_interval)
        try:
            fresh = replan()
        except ProxmoxApiError:
            return None
        locked = any(a.action == "blocked" and "is locked" in a.reason for a in fresh.actions)
        if not locked or time.monotonic() >= deadline:
            return fresh


# Mappings -------------------------------------------------------------------------------


def _apply_mapping(client: ProxmoxClient, mapping: MappingAction, progress: Progress) -> Outcome:
    subject = f"mapping {mapping.id}"
    progress.step(subject, f"{mapping.action} PCI mapping on {mapping.node}")
    try:
        if mapping.action == "create":
            client.create_pci_mapping(mapping.id, mapping.entries, mapping.description)
        else:
            client.update_pci_mapping(mapping.id, mapping.entries)
    except ProxmoxApiError as error:
        return Outcome(subject, mapping.node, mapping.action, False, str(error), _retryable(error))
    return Outcome(subject, mapping.node, mapping.action, True, mapping.new or "")


# Guests ---------------------------------------------------------------------------------


def _apply_guest(
    client: ProxmoxClient,
    root: ProxmoxClient | None,
    action: Action,
    settings: ApplySettings,
    progress: Progress,
) -> Outcome:
    try:
        detail = _run(client, root, action, settings, progress)
    except ProxmoxApiError as error:
        return Outcome(
            action.guest, action.node, action.action, False, str(error), _retryable(error)
        )
    return Outcome(action.guest, action.node, action.action, True, detail)


def _run(
    client: ProxmoxClient,
    root: ProxmoxClient | None,
    action: Action,
    settings: ApplySettings,
    progress: Progress,
) -> str:
    node, kind, vmid = action.node, action.kind, action.vmid

    def wait(upid: str | None) -> None:
        if upid:
            client.wait_task(
                upid, timeout=settings.task_timeout, poll_interval=settings.poll_interval
            )

    done: list[str] = []
    if action.action == "create":
        progress.step(action.guest, f"creating {kind} {vmid} on {node}")
        wait(client.create_guest(node, kind, vmid, action.send))
        done.append("created")
    elif action.action == "update" and (action.send or action.delete):
        keys = ", ".join([*action.send, *action.delete])
        progress.step(action.guest, f"updating {keys}")
        wait(
            client.update_config(
                node, kind, vmid, action.send, delete=action.delete, digest=action.digest
            )
        )
        done.append(f"updated {keys}")
    elif action.action == "destroy":
        status = client.guest_status(node, kind, vmid)
        if status.get("status") == "running":
            progress.step(action.guest, f"stopping {kind} {vmid}")
            wait(client.power(node, kind, vmid, "stop"))
        progress.step(action.guest, f"destroying {kind} {vmid}")
        wait(client.destroy_guest(node, kind, vmid))
        return "destroyed"
    if action.root_send and root is not None:
        keys = ", ".join(action.root_send)
        progress.step(action.guest, f"setting {keys} as root@pam")
        wait(root.update_config(node, kind, vmid, action.root_send))
        done.append(f"set {keys}")
    if action.start or action.action == "start":
        progress.step(action.guest, f"starting {kind} {vmid}")
        wait(client.power(node, kind, vmid, "start"))
        done.append("started")
    return ", ".join(done)


def _retryable(error: ProxmoxApiError) -> bool:
    """Refusals of the request itself repeat identically; anything else may pass next time."""
    permanent = (AuthenticationFailedError, PermissionDeniedError, ParameterRejectedError)
    return not isinstance(error, permanent)
