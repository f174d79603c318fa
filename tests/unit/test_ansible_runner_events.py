"""How labsmith reads ansible-runner's events: counts, changes, loop failures, diffs."""

from pathlib import Path
from typing import Any

from labsmith.ansible.runner import Event, PlaybookRun, _record


def event(kind: str, task: str, res: dict[str, Any] | None = None, **data: Any) -> dict[str, Any]:
    return {
        "event": kind,
        "event_data": {"host": "pve1", "task": task, "role": "vfio", "res": res or {}, **data},
    }


def test_events_become_counts_changes_and_progress(tmp_path: Path) -> None:
    run = PlaybookRun(playbook="host.yml", run_dir=tmp_path)
    seen: list[Event] = []
    diff = {"before": "", "after": "options vfio-pci ids=10de:2b85\n",
            "after_header": "/etc/modprobe.d/labsmith-vfio.conf"}  # fmt: skip
    for item in [
        event("playbook_on_task_start", "Describe the cards"),
        event("runner_on_ok", "Describe the cards", {"changed": False}),
        event("runner_on_ok", "Give vfio-pci the cards", {"changed": True, "diff": diff}),
        event("runner_on_skipped", "Say that a reboot is still due"),
        event("runner_on_failed", "Ignored probe", {"msg": "no"}, ignore_errors=True),
    ]:
        _record(run, item, seen.append)
    counts = run.hosts["pve1"]
    assert (counts.ok, counts.changed, counts.skipped, counts.failed) == (3, 1, 1, 0)
    assert [e.kind for e in seen] == ["task", "ok", "changed", "skipped", "ok"]
    [change] = run.outcomes
    assert change.task == "Give vfio-pci the cards" and change.status == "changed"
    assert change.diff.splitlines() == [
        "--- /etc/modprobe.d/labsmith-vfio.conf",
        "+ options vfio-pci ids=10de:2b85",
    ]
    assert run.changed == 1 and run.failed_hosts == [] and run.unreachable_hosts == []


def test_a_failed_loop_reports_its_items_messages(tmp_path: Path) -> None:
    run = PlaybookRun(playbook="host.yml", run_dir=tmp_path)
    results = [
        {"item": {"card": "0000:01:00.0"}, "failed": False, "skipped": True},
        {"item": {"card": "0000:05:00.0"}, "failed": True,
         "msg": "0000:05:00.0 shares IOMMU group 7 with 0000:06:00.0 [1022:43f7]"},
    ]  # fmt: skip
    response = {"msg": "One or more items failed", "results": results}
    _record(run, event("runner_on_failed", "Refuse a card that shares", response), None)
    _record(run, event("runner_on_unreachable", "Gathering", {"msg": "ssh: timed out"}), None)
    assert run.failed_hosts == ["pve1"] and run.unreachable_hosts == ["pve1"]
    assert [o.message for o in run.outcomes] == [
        "0000:05:00.0 shares IOMMU group 7 with 0000:06:00.0 [1022:43f7]",
        "ssh: timed out",
    ]
