#!/usr/bin/python
# Copyright: labsmith contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pci_cards
short_description: Describe PCI cards for VFIO passthrough from sysfs
version_added: "0.1.0"
description:
  - For each card (a PCI address; the function is ignored), lists every function with its
    vendor:device id, class and bound driver, the card's IOMMU group, the devices in that
    group that are neither its functions nor PCI bridges, and whether another device of the
    host has one of the card's vendor:device ids (then C(ids=) would bind it too).
  - Reads sysfs only and never changes anything.
  - A sysfs path that exists but cannot be read fails the task with that path in the message.
options:
  cards:
    description: PCI addresses as C(lspci -D) prints them, for example C(0000:01:00.0).
    type: list
    elements: str
    required: true
  sysfs:
    description: Where sysfs is mounted; tests point it at a copy.
    type: path
    default: /sys
attributes:
  check_mode:
    support: full
    description: The module only reads, so check mode runs it unchanged.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to show.
  platform:
    support: full
    platforms: posix
    description: Linux hosts with sysfs.
author:
  - labsmith contributors
"""

EXAMPLES = r"""
- name: Describe the passthrough GPU and its audio function
  labsmith.lab.pci_cards:
    cards:
      - "0000:01:00.0"
  register: gpu_cards

- name: Refuse a card that shares its IOMMU group
  ansible.builtin.fail:
    msg: "{{ item.card }} shares its IOMMU group with {{ item.strangers | map(attribute='address') | join(', ') }}"
  loop: "{{ gpu_cards.cards }}"
  when: item.strangers | length > 0
"""

RETURN = r"""
cards:
  description: One entry per requested card, in the order given.
  type: list
  elements: dict
  returned: always
  contains:
    card:
      description: The address as requested.
      type: str
      sample: "0000:01:00.0"
    slot:
      description: The card without its function number.
      type: str
      sample: "0000:01:00"
    present:
      description: Whether the host has any function at that slot.
      type: bool
      sample: true
    functions:
      description: Every function of the card.
      type: list
      elements: dict
      contains:
        address:
          description: The function's PCI address.
          type: str
          sample: "0000:01:00.1"
        vendor_device:
          description: Vendor and device id.
          type: str
          sample: "10de:22ba"
        class:
          description: The 4-digit PCI class code.
          type: str
          sample: "0403"
        driver:
          description: The bound driver, or null when none is.
          type: str
          sample: snd_hda_intel
        iommu_group:
          description: The IOMMU group number as a string, or null without an IOMMU.
          type: str
          sample: "14"
    ids:
      description: The distinct vendor:device ids of the card's functions.
      type: list
      elements: str
      sample: ["10de:2684", "10de:22ba"]
    iommu_groups:
      description: The IOMMU groups the card's functions are in (empty without an IOMMU).
      type: list
      elements: str
      sample: ["14"]
    strangers:
      description: Devices in those groups that are neither the card's functions nor PCI bridges; they would go to the VM with the card. Same keys as I(functions).
      type: list
      elements: dict
      sample: []
    identical_elsewhere:
      description: Addresses of other devices with one of the card's ids.
      type: list
      elements: str
      sample: ["0000:02:00.0"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.labsmith.lab.plugins.module_utils.pci_sysfs import (
    SysfsReadError,
    describe_cards,
    read_devices,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "cards": {"type": "list", "elements": "str", "required": True},
            "sysfs": {"type": "path", "default": "/sys"},
        },
        supports_check_mode=True,
    )
    try:
        found = read_devices(module.params["sysfs"])
    except SysfsReadError as error:
        module.fail_json(msg=str(error), path=error.path)
    module.exit_json(changed=False, cards=describe_cards(module.params["cards"], found))


if __name__ == "__main__":
    main()
