"""One hardware rule, two readers: the collection's sysfs reader (``labsmith.lab.pci_cards``,
which the vfio role trusts before it binds a card) and labsmith's offline GPU checks (which
``labsmith probe`` and ``labsmith build`` print) must reach the same verdict on whether a
GPU is alone in its IOMMU group. Each real capture's listing becomes a sysfs tree for the
module, and the saved listing itself is judged by the checks."""

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import pytest

from labsmith.checks.gpu import gpu_verdicts
from labsmith.facts.model import IommuListing
from labsmith.facts.snapshot import load_snapshot
from tests.conftest import FIXTURES, REPO

# Every capture of a listing with groups; the raw sysfs-path listing shows no device
# classes, so neither reader can judge from it.
LISTINGS = sorted(
    p.name
    for p in (FIXTURES / "host").iterdir()
    if "iommu_groups" in p.name and "no_groups" not in p.name and "sysfs_find" not in p.name
)


def pci_sysfs() -> Any:
    path = REPO / "plugins" / "module_utils" / "pci_sysfs.py"
    spec = importlib.util.spec_from_file_location("pci_sysfs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_sysfs(root: Path, listing: IommuListing) -> None:
    """The kernel's layout: bus/pci/devices/<address>/{vendor,device,class,iommu_group}."""
    for group, members in listing.groups.items():
        group_dir = root / "kernel" / "iommu_groups" / str(group)
        group_dir.mkdir(parents=True, exist_ok=True)
        for member in members:
            assert member.class_code, member
            device = root / "bus" / "pci" / "devices" / member.address
            device.mkdir(parents=True)
            # A poster's cut-off line may lose the id; the isolation rule needs only classes.
            vendor, product = (member.vendor_device or "ffff:ffff").split(":")
            (device / "vendor").write_text(f"0x{vendor}\n")
            (device / "device").write_text(f"0x{product}\n")
            (device / "class").write_text(f"0x{member.class_code}00\n")
            (device / "iommu_group").symlink_to(group_dir)


def judged_by_both(tmp_path: Path, fixture: str) -> list[tuple[str, bool, bool]]:
    """(GPU address, isolated per the module, isolated per the checks) for every GPU whose
    group members all show their class."""
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir(parents=True)
    shutil.copy(FIXTURES / "host" / fixture, snapshot / "iommu_groups")
    facts = load_snapshot(snapshot)
    assert facts.iommu is not None and facts.iommu.groups, fixture
    complete = {
        number: members
        for number, members in facts.iommu.groups.items()
        if all(m.class_code for m in members)
    }
    write_sysfs(tmp_path / "sys", IommuListing(groups=complete))
    module = pci_sysfs()
    found = module.read_devices(str(tmp_path / "sys"))
    results = []
    for verdict in gpu_verdicts(facts, {}):
        if verdict.iommu_group not in complete:
            continue
        [card] = module.describe_cards([verdict.address], found)
        reasons = {r.id: r.status for r in verdict.reasons}
        checks_isolated = (
            reasons.get("gpu.isolation") in ("pass", "warn") and "gpu.shared_group" not in reasons
        )
        results.append((verdict.address, not card["strangers"], checks_isolated))
    return results


@pytest.mark.parametrize("fixture", LISTINGS)
def test_module_and_checks_agree_on_every_gpu(tmp_path: Path, fixture: str) -> None:
    results = judged_by_both(tmp_path, fixture)
    assert results, f"{fixture}: no GPU to compare"
    disagreements = [r for r in results if r[1] != r[2]]
    assert disagreements == [], f"{fixture}: (address, module, checks): {disagreements}"


def test_the_captures_hold_both_verdicts(tmp_path: Path) -> None:
    """Agreement on isolated GPUs alone would prove little: the captures must also hold
    GPUs that share their group with something else."""
    verdicts = [
        isolated
        for index, fixture in enumerate(LISTINGS)
        for _, isolated, _ in judged_by_both(tmp_path / str(index), fixture)
    ]
    assert verdicts.count(True) >= 3 and verdicts.count(False) >= 1, verdicts
