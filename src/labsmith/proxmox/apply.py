"""Carry out a plan: mappings first, then guests concurrently (a limit per node), every task
awaited, starts after their guest's create or update.

A write whose answer was lost may have happened, so nothing is repeated blindly: after a
round with transient failures the tasks those writes may have started are awaited by UPID
(a task that outlived ``task_timeout``, or one the node still runs for the guest), then the
cluster is observed again and re-planned, and only the guests of the confirmed plan are
touched again. A guest whose task still runs is never sent the write again. Creates use the
inventory's fixed VMIDs, so a retried create can never make a second guest.

An ``Interruption`` (Ctrl-C) stops every write not yet sent; the tasks already running are
awaited for a short grace, and those still running are reported with their UPIDs.
"""

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field

from labsmith.proxmox.client import ProxmoxClient
from labsmith.proxmox.errors import (
    AuthenticationFailedError,
    ParameterRejectedError,
    PermissionDeniedError,
    ProxmoxApiError,
    TaskAbandonedError,
    TaskTimeoutError,
)
from labsmith.proxmox.plan import Action, MappingAction, Plan

# Concurrent guest operations per node: PVE runs each as a worker process and serialises
# storage allocation per storage, so a handful in parallel is what a node digests well.
DEFAULT_PER_NODE = 4
# After an interruption, how long the tasks already running are still awaited: long enough
# for a start or a small create, short enough that one Ctrl-C is an answer.
INTERRUPT_GRACE = 10.0


@dataclass(frozen=True)
class ApplySettings:
    per_node: int = DEFAULT_PER_NODE
    task_timeout: float = 900.0
    poll_interval: float = 0.5


class Interruption:
    """A request to stop (Ctrl-C): no write is sent after it, and the waits for tasks already
    running give up ``grace`` seconds later. Requesting and reading take no lock, so a signal
    handler may do both while a worker or the main thread holds any lock."""

    def __init__(self, grace: float = INTERRUPT_GRACE) -> None:
        self.grace = grace
        self.requested_at: float | None = None
        self._awaited: dict[str, str] = {}  # UPID -> subject

    @property
    def requested(self) -> bool:
        return self.requested_at is not None

    def request(self) -> None:
        if self.requested_at is None:
            self.requested_at = time.monotonic()

    def expired(self) -> bool:
        """The grace after the request is over: stop waiting for tasks."""
        return self.requested_at is not None and time.monotonic() >= self.requested_at + self.grace

    def awaited(self) -> dict[str, str]:
        """The tasks being awaited now: UPID -> guest or mapping."""
        return self._awaited.copy()

    @contextmanager
    def awaiting(self, upid: str, subject: str) -> Iterator[None]:
        self._awaited[upid] = subject
        try:
            yield
        finally:
            self._awaited.pop(upid, None)


class _InterruptedError(Exception):
    """Raised in a worker instead of sending a write after an interruption."""


@dataclass
class Outcome:
    """What happened to one guest or mapping."""

    subject: str  # guest name or "mapping <id>"
    node: str
    action: str
    ok: bool
    detail: str = ""
    retryable: bool = False
    cluster: str = ""
    vmid: int | None = None  # None for a mapping
    # A task this write started that was still running when labsmith stopped awaiting it.
    running: str | None = None
    # Not done, or done only in part, because the run was interrupted.
    interrupted: bool = False


@dataclass
class ApplyResult:
    outcomes: list[Outcome] = field(default_factory=list)
    rounds: int = 0
    interrupted: bool = False

    def latest(self) -> list[Outcome]:
        """The last word on each guest and mapping."""
        latest: dict[tuple[str, str], Outcome] = {}
        for outcome in self.outcomes:
            latest[(outcome.subject, outcome.node)] = outcome
        return list(latest.values())

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.latest() if not o.ok and not o.interrupted]

    @property
    def not_done(self) -> list[Outcome]:
        """Left undone (or half done) by an interruption."""
        return [o for o in self.latest() if o.interrupted]

    @property
    def still_running(self) -> list[Outcome]:
        return [o for o in self.latest() if o.running is not None]


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
    interruption: Interruption | None = None,
) -> list[Outcome]:
    """One pass over the plan's writing actions; errors become failed outcomes.
    ``root_clients``: root@pam sessions per cluster, for the actions' ``root_send``."""
    root_clients = root_clients or {}
    settings = settings or ApplySettings()
    progress = progress or Progress()
    interruption = interruption or Interruption()
    outcomes: list[Outcome] = []
    failed_mappings: set[tuple[str, str]] = set()
    for mapping in plan.mapping_actions:
        if not mapping.writes:
            continue
        outcome = _apply_mapping(clients[mapping.cluster], mapping, progress, interruption)
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
            outcome = _outcome(
                action,
                False,
                f"skipped: PCI mapping {', '.join(missing)} could not be written",
                retryable=not interruption.requested,
                interrupted=interruption.requested,
            )
            progress.done(outcome)
            outcomes.append(outcome)
            continue
        runnable.append(action)
    outcomes.extend(
        _apply_guests(clients, root_clients, runnable, settings, progress, interruption)
    )
    return outcomes


def _apply_guests(
    clients: dict[str, ProxmoxClient],
    root_clients: dict[str, ProxmoxClient],
    actions: list[Action],
    settings: ApplySettings,
    progress: Progress,
    interruption: Interruption,
) -> list[Outcome]:
    by_node: dict[tuple[str, str], list[Action]] = {}
    for action in actions:
        by_node.setdefault((action.cluster, action.node), []).append(action)
    # One pool per node: a node's waiting guests never hold a worker another node could use.
    pools: list[ThreadPoolExecutor] = []
    outcomes: list[Outcome] = []
    try:
        futures: list[Future[Outcome]] = []
        for (cluster, node), queued in sorted(by_node.items()):
            pool = ThreadPoolExecutor(
                max_workers=min(settings.per_node, len(queued)),
                thread_name_prefix=f"apply-{node}",
            )
            pools.append(pool)
            futures.extend(
                pool.submit(
                    _apply_guest,
                    clients[cluster],
                    root_clients.get(cluster),
                    action,
                    settings,
                    progress,
                    interruption,
                )
                for action in queued
            )
        for future in as_completed(futures):
            outcome = future.result()
            progress.done(outcome)
            outcomes.append(outcome)
    except BaseException:
        # Whatever stops the main thread (a KeyboardInterrupt where no handler catches
        # SIGINT) must not leave the workers sending the queued writes.
        interruption.request()
        raise
    finally:
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
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
    interruption: Interruption | None = None,
) -> ApplyResult:
    """Apply ``plan``; while transient failures remain, await the tasks they may have left
    running, observe again and apply the fresh plan's actions for the same guests and
    mappings (never anything the user did not see)."""
    settings = settings or ApplySettings()
    interruption = interruption or Interruption()
    confirmed_guests = {(a.cluster, a.vmid) for a in plan.actions if a.writes}
    confirmed_mappings = {(m.cluster, m.id) for m in plan.mapping_actions if m.writes}
    # Guests whose task outlived every wait: they are not touched again in this run.
    held: set[tuple[str, int]] = set()
    result = ApplyResult()
    current = plan
    for attempt in range(rounds):
        result.rounds = attempt + 1
        outcomes = apply_plan(clients, current, settings, progress, root_clients, interruption)
        result.outcomes.extend(outcomes)
        retry = [o for o in outcomes if o.retryable and not o.ok]
        if interruption.requested or not retry or attempt == rounds - 1:
            break
        retried = {(o.cluster, o.vmid) for o in retry}
        still_running = _await_tasks(clients, retry, settings, interruption)
        result.outcomes.extend(still_running)
        held |= {(o.cluster, o.vmid) for o in still_running if o.vmid is not None}
        fresh = _replan_when_unlocked(replan, settings, sleep, interruption)
        if fresh is None:
            break  # the cluster cannot be read now (or the run was interrupted)
        wanted = confirmed_guests - held
        current = Plan(
            actions=[a for a in fresh.actions if (a.cluster, a.vmid) in wanted],
            mapping_actions=[
                m for m in fresh.mapping_actions if (m.cluster, m.id) in confirmed_mappings
            ],
        )
        result.outcomes.extend(_done_after_all(plan, fresh, current, retried))
    result.interrupted = interruption.requested
    return result


def _done_after_all(
    plan: Plan, fresh: Plan, current: Plan, retried: set[tuple[str, int | None]]
) -> list[Outcome]:
    """What the fresh plan shows is done although its write failed or was not answered: a
    guest or mapping that now matches, a destroyed guest that is gone."""
    outcomes = [
        _outcome(action, True, "matches the inventory", what="check")
        for action in current.actions
        if action.action == "noop"
    ]
    outcomes += [
        Outcome(f"mapping {m.id}", m.node, "check", True, "in place", cluster=m.cluster)
        for m in current.mapping_actions
        if m.action == "noop"
    ]
    listed = {(a.cluster, a.vmid) for a in fresh.actions}
    outcomes += [
        _outcome(action, True, "gone", what="check")
        for action in plan.actions
        if action.action == "destroy" and (action.cluster, action.vmid) in retried - listed
    ]
    return outcomes


def _await_tasks(
    clients: dict[str, ProxmoxClient],
    failures: list[Outcome],
    settings: ApplySettings,
    interruption: Interruption,
) -> list[Outcome]:
    """Before anything is sent again, the tasks the failed writes may have started: those a
    timeout left running (by UPID) and any the node still runs for the guest (a write whose
    answer was lost). Returns an outcome for each guest whose task outlives this wait too."""
    pending: dict[str, Outcome] = {}
    for outcome in failures:
        if outcome.vmid is None:
            continue  # mapping writes are synchronous: no task to await
        if outcome.running:
            pending[outcome.running] = outcome
        try:
            found = clients[outcome.cluster].running_tasks(outcome.node, outcome.vmid)
        except ProxmoxApiError:
            found = []  # the re-plan still sees the guest's lock, if it has one
        for upid in found:
            pending.setdefault(upid, outcome)
    deadline = time.monotonic() + settings.task_timeout
    while pending and time.monotonic() < deadline and not interruption.expired():
        for upid, outcome in list(pending.items()):
            try:
                status = clients[outcome.cluster].task_status(upid)
            except ProxmoxApiError:
                continue
            if status.get("status") == "stopped":
                del pending[upid]
        if pending:
            time.sleep(settings.poll_interval)
    return [
        Outcome(
            outcome.subject,
            outcome.node,
            outcome.action,
            False,
            f"task {upid} is still running on {outcome.node}; labsmith does not send the "
            "write again while it runs: look at the task on the node, then apply again",
            cluster=outcome.cluster,
            vmid=outcome.vmid,
            running=upid,
            interrupted=interruption.requested,
        )
        for upid, outcome in pending.items()
    ]


def _replan_when_unlocked(
    replan: Callable[[], Plan],
    settings: ApplySettings,
    sleep: Callable[[float], None],
    interruption: Interruption,
) -> Plan | None:
    """A fresh plan once no confirmed guest is locked by a task still running (a create or
    update whose answer was lost), waiting at most one task timeout."""
    deadline = time.monotonic() + settings.task_timeout
    while not interruption.requested:
        sleep(settings.poll_interval)
        try:
            fresh = replan()
        except ProxmoxApiError:
            return None
        locked = any(a.action == "blocked" and "is locked" in a.reason for a in fresh.actions)
        if not locked or time.monotonic() >= deadline:
            return fresh
    return None


# Mappings -------------------------------------------------------------------------------


def _apply_mapping(
    client: ProxmoxClient, mapping: MappingAction, progress: Progress, interruption: Interruption
) -> Outcome:
    subject = f"mapping {mapping.id}"

    def outcome(ok: bool, detail: str, retryable: bool = False) -> Outcome:
        return Outcome(
            subject,
            mapping.node,
            mapping.action,
            ok,
            detail,
            retryable,
            cluster=mapping.cluster,
            interrupted=interruption.requested and not ok,
        )

    if interruption.requested:
        return outcome(False, f"interrupted before writing it on {mapping.node}")
    progress.step(subject, f"{mapping.action} PCI mapping on {mapping.node}")
    try:
        if mapping.action == "create":
            client.create_pci_mapping(mapping.id, mapping.entries, mapping.description)
        else:
            client.update_pci_mapping(mapping.id, mapping.entries)
    except ProxmoxApiError as error:
        return outcome(False, str(error), _retryable(error))
    return outcome(True, mapping.new or "")


# Guests ---------------------------------------------------------------------------------


def _outcome(
    action: Action,
    ok: bool,
    detail: str,
    *,
    what: str | None = None,
    retryable: bool = False,
    running: str | None = None,
    interrupted: bool = False,
) -> Outcome:
    return Outcome(
        action.guest,
        action.node,
        what or action.action,
        ok,
        detail,
        retryable,
        cluster=action.cluster,
        vmid=action.vmid,
        running=running,
        interrupted=interrupted,
    )


def _apply_guest(
    client: ProxmoxClient,
    root: ProxmoxClient | None,
    action: Action,
    settings: ApplySettings,
    progress: Progress,
    interruption: Interruption,
) -> Outcome:
    done: list[str] = []
    try:
        _run(client, root, action, settings, progress, interruption, done)
    except _InterruptedError as withheld:
        return _outcome(action, False, _so_far(done, str(withheld)), interrupted=True)
    except TaskAbandonedError as error:
        detail = _so_far(done, f"{error} on {action.node}")
        return _outcome(action, False, detail, running=error.upid, interrupted=True)
    except TaskTimeoutError as error:
        # Retryable: the next round awaits this task by its UPID; it never re-sends the write.
        detail = _so_far(done, str(error))
        return _outcome(action, False, detail, retryable=True, running=error.upid)
    except ProxmoxApiError as error:
        return _outcome(action, False, _so_far(done, str(error)), retryable=_retryable(error))
    return _outcome(action, True, ", ".join(done))


def _so_far(done: list[str], then: str) -> str:
    return f"{', '.join(done)}; then {then}" if done else then


def _run(
    client: ProxmoxClient,
    root: ProxmoxClient | None,
    action: Action,
    settings: ApplySettings,
    progress: Progress,
    interruption: Interruption,
    done: list[str],
) -> None:
    """The guest's writes in order, each task awaited; what is done goes into ``done``."""
    node, kind, vmid = action.node, action.kind, action.vmid

    def step(what: str) -> None:
        if interruption.requested:
            raise _InterruptedError(f"interrupted before {what}")
        progress.step(action.guest, what)

    def wait(upid: str | None) -> None:
        if upid:
            with interruption.awaiting(upid, action.guest):
                client.wait_task(
                    upid,
                    timeout=settings.task_timeout,
                    poll_interval=settings.poll_interval,
                    abandon=interruption.expired,
                )

    if action.action == "create":
        step(f"creating {kind} {vmid} on {node}")
        wait(client.create_guest(node, kind, vmid, action.send))
        done.append("created")
    elif action.action == "update" and (action.send or action.delete):
        keys = ", ".join([*action.send, *action.delete])
        step(f"updating {keys}")
        wait(
            client.update_config(
                node, kind, vmid, action.send, delete=action.delete, digest=action.digest
            )
        )
        done.append(f"updated {keys}")
    elif action.action == "destroy":
        if interruption.requested:
            raise _InterruptedError(f"interrupted before destroying {kind} {vmid}")
        if client.guest_status(node, kind, vmid).get("status") == "running":
            step(f"stopping {kind} {vmid}")
            wait(client.power(node, kind, vmid, "stop"))
            done.append("stopped")
        step(f"destroying {kind} {vmid}")
        wait(client.destroy_guest(node, kind, vmid))
        done[:] = ["destroyed"]
        return
    if action.root_send and root is not None:
        keys = ", ".join(action.root_send)
        step(f"setting {keys} as root@pam")
        wait(root.update_config(node, kind, vmid, action.root_send))
        done.append(f"set {keys}")
    if action.start or action.action == "start":
        step(f"starting {kind} {vmid}")
        wait(client.power(node, kind, vmid, "start"))
        done.append("started")


def _retryable(error: ProxmoxApiError) -> bool:
    """Refusals of the request itself repeat identically; anything else may pass next time."""
    permanent = (AuthenticationFailedError, PermissionDeniedError, ParameterRejectedError)
    return not isinstance(error, permanent)
