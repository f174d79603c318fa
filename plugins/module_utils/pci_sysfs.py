# Copyright: labsmith contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PCI devices as sysfs shows them, and the rule that decides whether a card can be passed
through on its own: every device in its IOMMU group is one of the card's functions or a
PCI bridge. labsmith's offline checks (``labsmith.checks.gpu``) judge the same rule from a
saved listing; a test runs both on the same real captures."""

from __future__ import annotations

import os

PCI_BRIDGE_CLASS = "0604"


class SysfsReadError(Exception):
    """A sysfs path that exists but cannot be read; the message names it."""

    def __init__(self, path, error):
        super().__init__("cannot read %s: %s" % (path, error.strerror or error))
        self.path = path


def read_text(path):
    """The file's stripped text; None when it does not exist (an optional attribute)."""
    try:
        with open(path) as handle:
            return handle.read().strip()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise SysfsReadError(path, error) from error


def link_name(path):
    """The name a symlink points at (a driver, a group number); None when absent."""
    try:
        return os.path.basename(os.readlink(path))
    except FileNotFoundError:
        return None
    except OSError as error:
        raise SysfsReadError(path, error) from error


def read_devices(sysfs):
    """Every PCI function under ``sysfs``: address, vendor:device, class, driver, group."""
    root = os.path.join(sysfs, "bus", "pci", "devices")
    try:
        addresses = sorted(os.listdir(root))
    except OSError as error:
        raise SysfsReadError(root, error) from error
    found = {}
    for address in addresses:
        base = os.path.join(root, address)
        vendor = (read_text(os.path.join(base, "vendor")) or "0x0000")[2:]
        device = (read_text(os.path.join(base, "device")) or "0x0000")[2:]
        found[address] = {
            "address": address,
            "vendor_device": ("%s:%s" % (vendor, device)).lower(),
            "class": (read_text(os.path.join(base, "class")) or "0x000000")[2:6],
            "driver": link_name(os.path.join(base, "driver")),
            "iommu_group": link_name(os.path.join(base, "iommu_group")),
        }
    return found


def slot_of(address):
    """``0000:01:00.1`` -> ``0000:01:00``: the card, whatever the function."""
    return address.lower().rsplit(".", 1)[0]


def group_strangers(slot, members):
    """The members of a card's IOMMU group that would go to the VM with it although they
    are not the card: anything but its own functions and PCI bridges. ``members`` are
    dicts with ``address`` and ``class`` (a 4-digit class code)."""
    return [
        member
        for member in members
        if not member["address"].startswith(slot + ".") and member["class"] != PCI_BRIDGE_CLASS
    ]


def describe_cards(cards, found):
    """One entry per requested card, in the order given."""
    slots = [slot_of(card) for card in cards]
    results = []
    for card, slot in zip(cards, slots):
        functions = [d for a, d in found.items() if a.startswith(slot + ".")]
        groups = sorted({f["iommu_group"] for f in functions if f["iommu_group"] is not None})
        members = [d for d in found.values() if d["iommu_group"] is not None and d["iommu_group"] in groups]
        ids = sorted({f["vendor_device"] for f in functions})
        twins = [
            d["address"]
            for d in found.values()
            if d["vendor_device"] in ids and not any(d["address"].startswith(s + ".") for s in slots)
        ]
        results.append(
            {
                "card": card,
                "slot": slot,
                "present": bool(functions),
                "functions": functions,
                "ids": ids,
                "iommu_groups": groups,
                "strangers": group_strangers(slot, members),
                "identical_elsewhere": twins,
            }
        )
    return results
