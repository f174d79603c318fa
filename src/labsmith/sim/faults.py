"""Fault injection: the failures a client of a real cluster meets, on demand and replayable.

Every decision comes from one seeded random stream drawn in request order, so a failing test
that sends the same requests in the same order sees the same faults again.
"""

import random
import re
import threading
from dataclasses import dataclass, field
from enum import Enum

from labsmith.errors import LabsmithError


class FaultSpecError(LabsmithError):
    exit_code = 2


class Fault(Enum):
    NONE = "none"
    ERROR = "error"  # 5xx before anything happens
    DROP_BEFORE = "drop-before"  # connection closed, request not processed
    DROP_AFTER = "drop-after"  # processed, but the answer never arrives


@dataclass
class FaultPlan:
    """What to break. Rates are shares of requests in [0, 1]."""

    seed: int = 0
    error_rate: float = 0.0
    drop_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 1.0
    # Task type (``qmcreate``, ``vzdump``...) or ``*`` -> exit status the task ends with.
    task_failures: dict[str, str] = field(default_factory=dict)
    task_failure_rate: float = 0.0
    # Node name -> number of requests after which it goes offline.
    lose_nodes: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("error_rate", "drop_rate", "slow_rate", "task_failure_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                option = "--fault-" + name.replace("_", "-")
                raise FaultSpecError(f"{option} must be between 0 and 1, got {rate}")


@dataclass(frozen=True)
class RequestFaults:
    fault: Fault
    delay: float


class FaultInjector:
    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._random = random.Random(plan.seed)  # noqa: S311 - replayable faults, not secrets
        self._lock = threading.Lock()
        self.requests = 0

    def next_request(self) -> RequestFaults:
        """Draw this request's fate; the draw count is fixed so the stream stays aligned."""
        with self._lock:
            self.requests += 1
            roll_error, roll_drop, roll_side, roll_slow = (self._random.random() for _ in range(4))
        plan = self.plan
        delay = plan.slow_seconds if roll_slow < plan.slow_rate else 0.0
        if roll_error < plan.error_rate:
            return RequestFaults(Fault.ERROR, delay)
        if roll_drop < plan.drop_rate:
            side = Fault.DROP_BEFORE if roll_side < 0.5 else Fault.DROP_AFTER
            return RequestFaults(side, delay)
        return RequestFaults(Fault.NONE, delay)

    def task_failure(self, task_type: str) -> str | None:
        plan = self.plan
        message = plan.task_failures.get(task_type) or plan.task_failures.get("*")
        if message is not None and plan.task_failure_rate == 0.0:
            return message
        with self._lock:
            roll = self._random.random()
        if roll < plan.task_failure_rate:
            return message or f"simulated failure of task {task_type}"
        return None

    def nodes_lost_now(self) -> list[str]:
        return [node for node, after in self.plan.lose_nodes.items() if self.requests >= after]


def parse_task_failure(text: str) -> tuple[str, str]:
    """``qmstart=exit code 1`` -> ("qmstart", "exit code 1")."""
    task_type, separator, message = text.partition("=")
    if not separator or not re.fullmatch(r"[a-z*]+", task_type) or not message:
        raise FaultSpecError(
            f"--fault-task {text!r}: write TYPE=EXITSTATUS, e.g. 'qmstart=start failed: "
            "QEMU exited with code 1' (TYPE is a task type such as qmcreate, or *)"
        )
    return task_type, message


def parse_lose_node(text: str) -> tuple[str, int]:
    """``pve2@40`` -> ("pve2", 40): pve2 goes offline after 40 requests."""
    node, separator, count = text.partition("@")
    if not separator or not node or not count.isdigit():
        raise FaultSpecError(
            f"--fault-lose-node {text!r}: write NODE@REQUESTS, e.g. 'pve2@40' "
            "(pve2 goes offline after the 40th request)"
        )
    return node, int(count)
