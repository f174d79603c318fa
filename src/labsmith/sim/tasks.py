"""Asynchronous operations as Proxmox VE runs them: worker tasks named by a UPID.

A task's effect (the guest appears, the backup file exists, the lock is released) happens
when its configured duration has passed. The simulator advances tasks lazily, before each
request, so a test can replay the same sequence of requests and see the same states.

The UPID layout follows pve-common ``PVE/Tools.pm`` (``upid_encode``):
``UPID:<node>:<pid 8 hex>:<pstart 8 hex>:<starttime 8 hex>:<type>:<id>:<user>:``.
"""

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TASK_OK = "OK"


class TaskFailedError(Exception):
    """Raised by a task's effect: the task ends with this text as its ``exitstatus``."""


def encode_upid(
    node: str, pid: int, pstart: int, starttime: int, task_type: str, task_id: str, user: str
) -> str:
    return f"UPID:{node}:{pid:08X}:{pstart:08X}:{starttime:08X}:{task_type}:{task_id}:{user}:"


@dataclass
class Task:
    """One worker task; ``effect`` runs once when the task's time is up."""

    upid: str
    node: str
    task_type: str
    task_id: str
    user: str
    pid: int
    pstart: int
    starttime: int
    ends_at: float
    effect: Callable[[], list[str]] | None
    # What an injected failure leaves behind (a failed create removes its guest).
    cleanup: Callable[[], None] | None = None
    injected_failure: str | None = None
    log: list[str] = field(default_factory=list)
    exitstatus: str | None = None
    endtime: int | None = None
    # Set when the node the task runs on is lost: the task never finishes.
    frozen: bool = False

    @property
    def running(self) -> bool:
        return self.exitstatus is None

    def status(self) -> dict[str, Any]:
        """The body of ``GET /nodes/{node}/tasks/{upid}/status``."""
        data: dict[str, Any] = {
            "upid": self.upid,
            "node": self.node,
            "pid": self.pid,
            "pstart": self.pstart,
            "starttime": self.starttime,
            "type": self.task_type,
            "id": self.task_id,
            "user": self.user.split("!")[0],
            "status": "running" if self.running else "stopped",
        }
        if "!" in self.user:
            data["tokenid"] = self.user.split("!", 1)[1]
        if not self.running:
            data["exitstatus"] = self.exitstatus
        return data

    def summary(self) -> dict[str, Any]:
        """One row of ``GET /nodes/{node}/tasks``."""
        row = {key: value for key, value in self.status().items() if key != "exitstatus"}
        if not self.running:
            row["endtime"] = self.endtime
            row["status"] = self.exitstatus
        return row

    def log_lines(self) -> list[str]:
        """The log as the log endpoint shows it (RESTEnvironment.pm fork_worker's last line)."""
        lines = list(self.log)
        if self.exitstatus == TASK_OK:
            lines.append("TASK OK")
        elif self.exitstatus is not None:
            lines.append("TASK ERROR: " + " ".join(self.exitstatus.splitlines()))
        return lines or ["no content"]


class TaskRunner:
    """Starts tasks and finishes those whose time has come, in start order."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._wall_offset = time.time() - clock()
        self._pids = itertools.count(0x1000 + int(time.time()) % 0x10000)
        self.tasks: dict[str, Task] = {}

    def now(self) -> float:
        return self._clock()

    def wall_time(self) -> int:
        """Unix time matching the simulator's clock (task start and end times)."""
        return int(self._clock() + self._wall_offset)

    def start(
        self,
        *,
        node: str,
        task_type: str,
        task_id: str,
        user: str,
        duration: float,
        effect: Callable[[], list[str]] | None,
        cleanup: Callable[[], None] | None = None,
        failure: str | None = None,
    ) -> Task:
        """Register a task; ``failure`` makes it end with that exit status instead."""
        starttime = self.wall_time()
        pid = next(self._pids)
        pstart = (pid * 7919) % 0xFFFFFF
        upid = encode_upid(node, pid, pstart, starttime, task_type, task_id, user)
        # Several tasks in the same second get distinct UPIDs through their pid.
        task = Task(
            upid=upid,
            node=node,
            task_type=task_type,
            task_id=task_id,
            user=user,
            pid=pid,
            pstart=pstart,
            starttime=starttime,
            ends_at=self._clock() + duration,
            effect=effect,
            cleanup=cleanup,
            injected_failure=failure,
        )
        self.tasks[upid] = task
        if duration <= 0:
            self._finish(task)
        return task

    def advance(self) -> None:
        """Finish every task whose duration has passed."""
        now = self._clock()
        for task in list(self.tasks.values()):
            if task.running and not task.frozen and task.ends_at <= now:
                self._finish(task)

    def _finish(self, task: Task) -> None:
        try:
            if task.injected_failure is not None:
                raise TaskFailedError(task.injected_failure)
            task.log.extend(task.effect() if task.effect is not None else [])
            task.exitstatus = TASK_OK
        except TaskFailedError as failure:
            if task.cleanup is not None:
                task.cleanup()
            task.exitstatus = str(failure)
        task.endtime = self.wall_time()

    def freeze_node(self, node: str) -> None:
        """A lost node's running tasks never report an end."""
        for task in self.tasks.values():
            if task.node == node and task.running:
                task.frozen = True
