"""The guest planner against data files: one case per YAML file in tests/fixtures/planner.

A case names its subject with one key: ``desired`` (a guest, through ``plan_guest``),
``mapping`` (a PCI mapping, through ``plan_mapping``) or ``lab_desired`` (guests, through
``plan_lab``, for what it reports about guests outside the inventory). ``observed`` is the
cluster as the API reads it. Every expectation key is checked; an unknown one fails the
case, so a misspelt key cannot pass silently.
"""

from pathlib import Path
from typing import Any

import pytest
import yaml

from labsmith.proxmox.desired import DesiredGuest, DesiredLab, DesiredMapping
from labsmith.proxmox.observe import ObservedCluster, ObservedGuest
from labsmith.proxmox.plan import plan_guest, plan_lab, plan_mapping
from tests.conftest import FIXTURES

CASES = FIXTURES / "planner"
CASE_FILES = sorted(CASES.glob("*.yml"))
SUBJECTS = ("desired", "mapping", "lab_desired")
GUEST_EXPECT = frozenset(
    {"action", "changes", "send", "delete", "start", "reason_contains", "notes_contain"}
)
MAPPING_EXPECT = frozenset({"action", "entries", "reason_contains"})
LAB_EXPECT = frozenset({"guest", "action", "in_inventory", "reason_contains"})
CASE_KEYS = frozenset({*SUBJECTS, "observed", "expect", "expect_actions", "destroy", "xfail"})


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path.name}: a case is a mapping"
    return data


def case_params() -> list[Any]:
    params: list[Any] = []
    for path in CASE_FILES:
        reason = load(path).get("xfail")
        marks = [pytest.mark.xfail(reason=str(reason), strict=True)] if reason else []
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


def desired_guest(data: dict[str, Any]) -> DesiredGuest:
    fields = dict(data)
    fields["mappings"] = tuple(fields.get("mappings", ()))
    fields["root_only"] = {str(k): str(v) for k, v in fields.get("root_only", {}).items()}
    return DesiredGuest(**fields)


def observed_cluster(data: dict[str, Any] | None) -> ObservedCluster:
    data = data or {}
    guests: dict[int, ObservedGuest] = {}
    for vmid, fields in (data.get("guests") or {}).items():
        row = {"vmid": int(vmid), **fields}
        row["pending"] = frozenset(row.get("pending", ()))
        row["config"] = dict(row.get("config") or {})
        guests[int(vmid)] = ObservedGuest(**row)
    return ObservedCluster(
        guests=guests,
        mappings={str(k): [str(e) for e in v] for k, v in (data.get("mappings") or {}).items()},
        iommu_groups={
            (str(node), str(address)): int(group)
            for node, address, group in data.get("iommu_groups") or []
        },
        offline_nodes={str(node) for node in data.get("offline_nodes") or []},
    )


def check_guest(case: dict[str, Any]) -> None:
    expect: dict[str, Any] = case["expect"]
    assert set(expect) <= GUEST_EXPECT, f"unknown expect keys: {set(expect) - GUEST_EXPECT}"
    action = plan_guest(desired_guest(case["desired"]), observed_cluster(case.get("observed")))
    assert action.action == expect["action"], action.reason
    if "changes" in expect:
        changes = {key: change.to_json() for key, change in action.changes.items()}
        assert changes == expect["changes"]
    if "send" in expect:
        assert action.send == expect["send"]
    if "delete" in expect:
        assert list(action.delete) == expect["delete"]
    if "start" in expect:
        assert action.start is expect["start"]
    if "reason_contains" in expect:
        assert expect["reason_contains"] in action.reason
    if "notes_contain" in expect:
        assert any(expect["notes_contain"] in note for note in action.notes), action.notes


def check_mapping(case: dict[str, Any]) -> None:
    expect: dict[str, Any] = case["expect"]
    assert set(expect) <= MAPPING_EXPECT, f"unknown expect keys: {set(expect) - MAPPING_EXPECT}"
    mapping = DesiredMapping(**case["mapping"])
    action = plan_mapping(mapping, "lab", observed_cluster(case.get("observed")))
    assert action.action == expect["action"], action.reason
    if "entries" in expect:
        assert list(action.entries) == expect["entries"]
    if "reason_contains" in expect:
        assert expect["reason_contains"] in action.reason


def check_lab(case: dict[str, Any]) -> None:
    guests = [desired_guest(guest) for guest in case["lab_desired"]]
    clusters = {guest.cluster for guest in guests}
    assert len(clusters) == 1, "a lab case holds guests of one cluster"
    observed = {clusters.pop(): observed_cluster(case.get("observed"))}
    destroy = frozenset(str(name) for name in case.get("destroy", ()))
    plan = plan_lab(DesiredLab(guests=guests, mappings={}), observed, destroy)
    expected: list[dict[str, Any]] = case["expect_actions"]
    assert [a.guest for a in plan.actions] == [e["guest"] for e in expected]
    for action, expect in zip(plan.actions, expected, strict=True):
        assert set(expect) <= LAB_EXPECT, f"unknown expect keys: {set(expect) - LAB_EXPECT}"
        assert action.action == expect["action"], f"{action.guest}: {action.reason}"
        if "in_inventory" in expect:
            assert action.in_inventory is expect["in_inventory"]
        if "reason_contains" in expect:
            assert expect["reason_contains"] in action.reason


@pytest.mark.parametrize("path", case_params())
def test_planner_case(path: Path) -> None:
    case = load(path)
    if "desired" in case:
        check_guest(case)
    elif "mapping" in case:
        check_mapping(case)
    else:
        check_lab(case)


def test_there_are_cases() -> None:
    assert len(CASE_FILES) >= 10


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_case_is_well_formed(path: Path) -> None:
    """A case says what it proves, names one subject and states what to expect."""
    first_line = path.read_text().splitlines()[0] if path.read_text() else ""
    assert first_line.startswith("# ") and first_line[2:].strip(), "first line: # what it proves"
    case = load(path)
    assert set(case) <= CASE_KEYS, f"unknown keys: {set(case) - CASE_KEYS}"
    subjects = [key for key in SUBJECTS if key in case]
    assert len(subjects) == 1, f"exactly one of {SUBJECTS}, found {subjects}"
    wanted = "expect_actions" if subjects == ["lab_desired"] else "expect"
    assert case.get(wanted), f"{subjects[0]} needs a non-empty {wanted}"
    if wanted == "expect":
        assert "action" in case["expect"], "expect names the action"
