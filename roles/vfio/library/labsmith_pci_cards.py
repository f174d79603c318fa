#!/usr/bin/python
# Copyright: labsmith contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only: the PCI functions of the cards to pass through, their IOMMU group, the other
devices in that group, and whether the host keeps an identical card."""

import os

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: labsmith_pci_cards
short_description: Describe PCI cards for VFIO passthrough from sysfs (changes nothing)
description:
  - For each card (a PCI address; the function is ignored), lists every function with its
    vendor:device id, class and bound driver, the card's IOMMU group, the devices in that
    group that are neither its functions nor PCI bridges, and whether another device of the
    host has one of the card's vendor:device ids (then C(ids=) would take it too).
options:
  cards:
    description: PCI addresses as lspci -D prints them, e.g. 0000:01:00.0.
    type: list
    elements: str
    required: true
  sysfs:
    description: Where sysfs is mounted (tests point it at a copy).
    type: path
    default: /sys
author: labsmith
"""

RETURN = r"""
cards:
  description: One entry per requested card, in the order given.
  type: list
  elements: dict
  returned: always
"""

PCI_BRIDGE_CLASS = "0604"


def read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def link_name(path):
    try:
        return os.path.basename(os.readlink(path))
    except OSError:
        return None


def devices(sysfs):
    root = os.path.join(sysfs, "bus", "pci", "devices")
    found = {}
    for address in sorted(os.listdir(root)):
        base = os.path.join(root, address)
        vendor = (read(os.path.join(base, "vendor")) or "0x0000")[2:]
        device = (read(os.path.join(base, "device")) or "0x0000")[2:]
        found[address] = {
            "address": address,
            "vendor_device": f"{vendor}:{device}".lower(),
            "class": (read(os.path.join(base, "class")) or "0x000000")[2:6],
            "driver": link_name(os.path.join(base, "driver")),
            "iommu_group": link_name(os.path.join(base, "iommu_group")),
        }
    return found


def describe(cards, found):
    slots = [card.lower().rsplit(".", 1)[0] for card in cards]
    results = []
    for card, slot in zip(cards, slots):
        functions = [d for a, d in found.items() if a.startswith(slot + ".")]
        groups = sorted({f["iommu_group"] for f in functions if f["iommu_group"] is not None})
        strangers = [
            d
            for d in found.values()
            if d["iommu_group"] is not None
            and d["iommu_group"] in groups
            and not d["address"].startswith(slot + ".")
            and d["class"] != PCI_BRIDGE_CLASS
        ]
        ids = sorted({f["vendor_device"] for f in functions})
        twins = [
            d["address"]
            for d in found.values()
            if d["vendor_device"] in ids
            and not any(d["address"].startswith(s + ".") for s in slots)
        ]
        results.append(
            {
                "card": card,
                "slot": slot,
                "present": bool(functions),
                "functions": functions,
                "ids": ids,
                "iommu_groups": groups,
                "strangers": strangers,
                "identical_elsewhere": twins,
            }
        )
    return results


def main():
    module = AnsibleModule(
        argument_spec={
            "cards": {"type": "list", "elements": "str", "required": True},
            "sysfs": {"type": "path", "default": "/sys"},
        },
        supports_check_mode=True,
    )
    found = devices(module.params["sysfs"])
    module.exit_json(changed=False, cards=describe(module.params["cards"], found))


if __name__ == "__main__":
    main()
