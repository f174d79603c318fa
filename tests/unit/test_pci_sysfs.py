"""The collection's sysfs reader (``plugins/module_utils/pci_sysfs.py``, behind the module
``labsmith.lab.pci_cards``) on a fake sysfs tree shaped like the kernel's: functions,
groups, drivers, twins, and paths it cannot read."""

import importlib.util
from pathlib import Path
from typing import Any

from tests.conftest import REPO

MODULE = REPO / "plugins" / "module_utils" / "pci_sysfs.py"


def load() -> Any:
    spec = importlib.util.spec_from_file_location("pci_sysfs", MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def add_device(
    sysfs: Path, address: str, ids: str, pci_class: str, group: int, driver: str | None = None
) -> None:
    device = sysfs / "bus" / "pci" / "devices" / address
    device.mkdir(parents=True)
    vendor, product = ids.split(":")
    (device / "vendor").write_text(f"0x{vendor}\n")
    (device / "device").write_text(f"0x{product}\n")
    (device / "class").write_text(f"0x{pci_class}00\n")
    groups = sysfs / "kernel" / "iommu_groups" / str(group)
    groups.mkdir(parents=True, exist_ok=True)
    (device / "iommu_group").symlink_to(groups)
    if driver:
        target = sysfs / "bus" / "pci" / "drivers" / driver
        target.mkdir(parents=True, exist_ok=True)
        (device / "driver").symlink_to(target)


def host(tmp_path: Path) -> Path:
    """An RTX 4090 (VGA + HDMI audio) alone behind its root port; a second, identical 4090
    the host keeps; a 3060 sharing its group with a USB controller."""
    sysfs = tmp_path / "sys"
    add_device(sysfs, "0000:00:01.0", "8086:a70d", "0604", 1, "pcieport")
    add_device(sysfs, "0000:01:00.0", "10de:2684", "0300", 1, "nvidia")
    add_device(sysfs, "0000:01:00.1", "10de:22ba", "0403", 1, "snd_hda_intel")
    add_device(sysfs, "0000:02:00.0", "10de:2684", "0300", 2, "nvidia")
    add_device(sysfs, "0000:02:00.1", "10de:22ba", "0403", 2)
    add_device(sysfs, "0000:05:00.0", "10de:2504", "0300", 7, "vfio-pci")
    add_device(sysfs, "0000:05:00.1", "10de:228e", "0403", 7, "vfio-pci")
    add_device(sysfs, "0000:06:00.0", "1022:43f7", "0c03", 7, "xhci_hcd")
    return sysfs


def test_a_card_alone_in_its_group_with_a_twin_the_host_keeps(tmp_path: Path) -> None:
    module = load()
    [card] = module.describe_cards(["0000:01:00.0"], module.read_devices(str(host(tmp_path))))
    assert card["present"] and card["slot"] == "0000:01:00"
    assert [f["address"] for f in card["functions"]] == ["0000:01:00.0", "0000:01:00.1"]
    assert [f["driver"] for f in card["functions"]] == ["nvidia", "snd_hda_intel"]
    assert card["ids"] == ["10de:22ba", "10de:2684"]
    assert card["iommu_groups"] == ["1"]
    assert card["strangers"] == []  # the root port is a PCI bridge: allowed
    assert card["identical_elsewhere"] == ["0000:02:00.0", "0000:02:00.1"]


def test_both_twins_passed_through_are_not_each_others_twins(tmp_path: Path) -> None:
    module = load()
    cards = module.describe_cards(
        ["0000:01:00.0", "0000:02:00.0"], module.read_devices(str(host(tmp_path)))
    )
    assert [card["identical_elsewhere"] for card in cards] == [[], []]


def test_a_shared_group_and_a_missing_card(tmp_path: Path) -> None:
    module = load()
    shared, missing = module.describe_cards(
        ["0000:05:00.0", "0000:09:00.0"], module.read_devices(str(host(tmp_path)))
    )
    assert [d["address"] for d in shared["strangers"]] == ["0000:06:00.0"]
    assert shared["strangers"][0]["vendor_device"] == "1022:43f7"
    assert all(f["driver"] == "vfio-pci" for f in shared["functions"])
    assert not missing["present"] and missing["functions"] == []


def test_an_unreadable_attribute_is_named(tmp_path: Path) -> None:
    module = load()
    sysfs = host(tmp_path)
    # A directory where a file should be: open() fails with EISDIR, as a file without read
    # permission fails with EACCES (root reads those anyway, so the test cannot use them).
    vendor = sysfs / "bus" / "pci" / "devices" / "0000:05:00.0" / "vendor"
    vendor.unlink()
    vendor.mkdir()
    try:
        module.read_devices(str(sysfs))
    except module.SysfsReadError as error:
        assert error.path == str(vendor)
        assert str(error).startswith(f"cannot read {vendor}: ")
    else:
        raise AssertionError("an unreadable vendor file was taken for a value")


def test_a_missing_sysfs_is_named(tmp_path: Path) -> None:
    module = load()
    try:
        module.read_devices(str(tmp_path / "nowhere"))
    except module.SysfsReadError as error:
        assert error.path == str(tmp_path / "nowhere" / "bus" / "pci" / "devices")
    else:
        raise AssertionError("a missing sysfs read as a host without PCI devices")
