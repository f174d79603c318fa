"""Parse what ``lspci`` and a listing of ``/sys/kernel/iommu_groups`` print.

Both come from hosts and from issue threads alike, so the parsers accept every flag mix
people run (``-nnk``, ``-nkk``, ``-vvv``, ``-D``) and every listing script's shape, and
skip what they do not recognise instead of failing: text output has no syntax to violate.
"""

import re
from dataclasses import dataclass, field

from labsmith.facts.model import (
    IommuListing,
    IommuMember,
    PciBar,
    PciDevice,
    PciLink,
    ResizableBar,
)

# A PCI address, the domain optional: "01:00.0", "0000:01:00.0", "10000:e0:06.0" (VMD).
_ADDRESS = r"(?:[0-9a-fA-F]{4,8}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]"

# "00000000:01:00.0" (nvidia-smi), "0000:01:00.0", "01:00.0": one address, split
_DOMAIN_AND_SLOT = re.compile(
    r"(?:(?P<domain>[0-9a-f]{4,8}):)?(?P<slot>[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])"
)
# "01:00.0 VGA compatible controller [0300]: NVIDIA ..." -- a device header, at column 0.
_DEVICE_HEADER = re.compile(rf"^(?P<address>{_ADDRESS})\s+(?P<rest>.*)$")
# "VGA compatible controller [0300]: NVIDIA Corporation GA102 [10de:2204] (rev a1)" (-nn)
_NAMED_CLASS = re.compile(r"^(?P<name>[^\[\]:]*?)\s*\[(?P<code>[0-9a-fA-F]{4})\]:\s*(?P<rest>.*)$")
# "0300: 1002:67df (rev ef)" (-n without the second n: numbers only)
_NUMERIC_CLASS = re.compile(r"^(?P<code>[0-9a-fA-F]{4}):\s*(?P<rest>.*)$")
# "Class 0300: Device 1002:67df (rev cf)": lspci -vv on a host without pci.ids (no -n)
_UNNAMED_CLASS = re.compile(
    r"^Class (?P<code>[0-9a-fA-F]{4}):\s*"
    r"(?P<rest>Device (?P<ids>[0-9a-fA-F]{4}:[0-9a-fA-F]{4})\b.*)$"
)
# "1002:67df (rev ef)": the vendor:device that opens a numeric header's remainder
_NUMERIC_IDS = re.compile(r"^(?P<ids>[0-9a-fA-F]{4}:[0-9a-fA-F]{4})\b")
# "[10de:2204]": lspci -nn's vendor:device; the last such pair on a line is the device's
_BRACKETED_IDS = re.compile(r"\[(?P<ids>[0-9a-fA-F]{4}:[0-9a-fA-F]{4})\]")

# "Region 1: Memory at 3f000000000 (64-bit, prefetchable) [size=64G]"
# "Region 5: I/O ports at 2000 [disabled] [size=128]"
_REGION = re.compile(r"^Region (?P<index>\d+): (?P<rest>.*)$")
# "[size=64G]": lspci prints BAR sizes with binary K/M/G/T suffixes, or none for bytes
_REGION_SIZE = re.compile(r"\[size=(?P<number>\d+)(?P<unit>[KMGT]?)\]")
# "Capabilities: [bb0 v1] Physical Resizable BAR"
_CAPABILITY = re.compile(r"^Capabilities: (?P<rest>.*)$")
# "BAR 1: current size: 64GB, supported: 64MB 128MB 256MB ..."
_REBAR = re.compile(
    r"^BAR (?P<index>\d+): current size: (?P<number>\d+)(?P<unit>[KMGT]?)B"
    r"(?:, supported:(?P<supported>.*))?$"
)
# "64MB", one of the sizes after "supported:"
_REBAR_SIZE = re.compile(r"(?P<number>\d+)(?P<unit>[KMGT]?)B\b")
# "LnkCap:\tPort #0, Speed 16GT/s, Width x16, ASPM L1, ..." and
# "LnkSta:\tSpeed 2.5GT/s (downgraded), Width x4 (downgraded)"; lspci prints "Speed unknown"
# for a rate it cannot name.
_LINK_SPEED = re.compile(r"\bSpeed (?:(?P<speed>\d+(?:\.\d+)?)GT/s|unknown)")
_LINK_WIDTH = re.compile(r"\bWidth x(?P<width>\d+)")

# "IOMMU Group 14 01:00.0 VGA ...", "IOMMU group 0", "IOMMU Group 0:", "IOMMU Group * ...",
# and the scripts that drop the "IOMMU": "Group 12:\t[1002:7480] [R] 03:00.0 ..." (iommu.sh),
# "Group:  0   0000:00:00.0 Host bridge [0600]: ..." (IOMMU-viewer's iommu_viewer.sh)
_GROUP_LINE = re.compile(
    r"^(?:IOMMU\s+)?group\s*:?\s*(?P<group>\d+|\*)(?:\s*:|\s|$)\s*(?P<rest>.*)$", re.IGNORECASE
)
# "/sys/kernel/iommu_groups/14/devices/0000:01:00.0", or ".../14/devices:" from `ls`
_SYSFS_LINE = re.compile(
    rf"/sys/kernel/iommu_groups/(?P<group>\d+)/devices(?:/(?P<address>{_ADDRESS}))?"
)
# "  00:01.0 Host bridge [0600]: ..." -- a member line under a group header
_MEMBER_LINE = re.compile(rf"^(?P<address>{_ADDRESS})(?:\s+(?P<rest>.*))?$")
# "[1002:7480] [R] 03:00.0  VGA compatible controller    Navi 33 [...]": a device line of
# iommu.sh (https://gist.github.com/r15ch13/ba2d738985fce8990a4e9f32d07c6ada), which prints
# `lspci -nm`'s ids, "[R]" when the device has a sysfs reset file, then `lspci -mm`'s class
# name padded to 40 columns and the device name.
_IOMMU_SH_MEMBER = re.compile(
    rf"^\[(?P<ids>[0-9a-fA-F]{{4}}:[0-9a-fA-F]{{4}})\]\s+(?P<reset>\[R\]\s+)?"
    rf"(?P<address>{_ADDRESS})\s+(?P<rest>.*)$"
)
# "USB:\t\t[1d6b:0002]\t\t Bus 001 Device 001 ...": a USB device behind the controller above,
# not a PCI function of the group
_IOMMU_SH_USB = "USB:"
# "lrwxrwxrwx 1 root root 0 Feb  4 10:29 0000:00:1f.0 -> ../../../../devices/pci0000:00/...":
# `ls -l /sys/kernel/iommu_groups/*/devices`, under a ".../N/devices:" header
_LS_LONG_LINK = re.compile(rf"\s(?P<address>{_ADDRESS}) -> ")
# "   Driver: pcieport": what iommu_viewer.sh appends to a bound device's line
_TRAILING_DRIVER = re.compile(r"\s+Driver:\s*\S+\s*$")
# `pvesh get /nodes/NODE/hardware/pci --pci-class-blacklist ""`: a box-drawn table whose
# header row names the columns ("class", "device", "id", "iommugroup", "vendor", ...)
_TABLE_BAR = "│"
# "0x030000": the table's class is class, subclass and programming interface
_TABLE_HEX = re.compile(r"^0x(?P<hex>[0-9a-fA-F]+)$")
# lspci's class names (pciutils pci.ids, "C" lines) for listings that print the name without
# the [code]: iommu.sh. Only the classes an isolation verdict needs to tell apart.
_CLASS_CODES = {
    "vga compatible controller": "0300",
    "3d controller": "0302",
    "display controller": "0380",
    "host bridge": "0600",
    "isa bridge": "0601",
    "pci bridge": "0604",
    "audio device": "0403",
    "multimedia audio controller": "0401",
    "usb controller": "0c03",
    "smbus": "0c05",
    "serial bus controller": "0c80",
    "sata controller": "0106",
    "raid bus controller": "0104",
    "non-volatile memory controller": "0108",
    "ethernet controller": "0200",
    "network controller": "0280",
    "ram memory": "0500",
    "memory controller": "0580",
    "communication controller": "0780",
    "system peripheral": "0880",
    "iommu": "0806",
    "signal processing controller": "1180",
    "encryption controller": "1080",
    "non-essential instrumentation": "1300",
}

_BINARY_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
# Captures pasted from a terminal keep the command that made them: "$ lspci -nnk".
_SHELL_PROMPT = "$ "
# The 990FX capture wraps its listing in Markdown backticks.
_PASTE_QUOTES = "`"


def normalise_address(address: str) -> str:
    """0000:BB:DD.F in lowercase, whatever domain width (none, 4 or 8 digits) was shown;
    text that is no PCI address comes back as it was, lowercased."""
    found = _DOMAIN_AND_SLOT.fullmatch(address.strip().lower())
    if found is None:
        return address.strip().lower()
    return f"{int(found['domain'] or '0', 16):04x}:{found['slot']}"


# ---- lspci ---------------------------------------------------------------------------------


@dataclass
class _DeviceBlock:
    """One device of an lspci listing while its detail lines are being read."""

    header: PciDevice
    driver: str | None = None
    modules: tuple[str, ...] = ()
    subsystem: str | None = None
    bars: list[PciBar] = field(default_factory=list)
    resizable_bars: list[ResizableBar] = field(default_factory=list)
    # Only "BAR N:" lines inside a Physical Resizable BAR capability are resizable BARs.
    in_resizable_bar: bool = False
    link_capable: PciLink | None = None
    link_status: PciLink | None = None

    def build(self) -> PciDevice:
        return PciDevice(
            address=self.header.address,
            class_code=self.header.class_code,
            class_name=self.header.class_name,
            vendor_device=self.header.vendor_device,
            description=self.header.description,
            driver=self.driver,
            modules=self.modules,
            bars=tuple(self.bars),
            resizable_bars=tuple(self.resizable_bars),
            subsystem=self.subsystem,
            link_capable=self.link_capable,
            link_status=self.link_status,
        )


def parse_lspci(text: str) -> tuple[PciDevice, ...]:
    """Every device block of ``lspci -nnk``, ``-nkk``, ``-nnkvvv`` or ``-vvv``, ``-D`` or not."""
    devices: list[PciDevice] = []
    block: _DeviceBlock | None = None
    for line in text.splitlines():
        if not line.strip() or line.startswith(_SHELL_PROMPT):
            continue
        if not line[0].isspace():
            header = _DEVICE_HEADER.match(line)
            if header is not None:
                if block is not None:
                    devices.append(block.build())
                block = _DeviceBlock(_parse_header(header["address"], header["rest"]))
            continue
        if block is not None:
            _read_detail(block, line.strip())
    if block is not None:
        devices.append(block.build())
    return tuple(devices)


def _parse_header(address: str, rest: str) -> PciDevice:
    """The header line's class and ids; a detail-less device until its block is read."""
    named = _NAMED_CLASS.match(rest)
    if named is not None:
        ids = _BRACKETED_IDS.findall(named["rest"])
        return _header(
            address, named["code"], named["name"], ids[-1] if ids else None, named["rest"]
        )
    numeric = _NUMERIC_CLASS.match(rest)
    if numeric is not None:
        leading_ids = _NUMERIC_IDS.match(numeric["rest"])
        vendor_device = leading_ids["ids"] if leading_ids else None
        return _header(address, numeric["code"], "", vendor_device, numeric["rest"])
    unnamed = _UNNAMED_CLASS.match(rest)
    if unnamed is not None:
        return _header(address, unnamed["code"], "", unnamed["ids"], unnamed["rest"])
    # Without -n there are no numbers: "VGA compatible controller: NVIDIA Corporation ..."
    class_name, _, description = rest.partition(":")
    return _header(address, None, class_name.strip(), None, description.strip())


def _header(
    address: str,
    class_code: str | None,
    class_name: str,
    vendor_device: str | None,
    description: str,
) -> PciDevice:
    return PciDevice(
        address=normalise_address(address),
        class_code=class_code.lower() if class_code else None,
        class_name=class_name,
        vendor_device=vendor_device.lower() if vendor_device else None,
        description=description.strip(),
        driver=None,
    )


def _read_detail(block: _DeviceBlock, detail: str) -> None:
    key, _, value = detail.partition(":")
    value = value.strip()
    if key == "Kernel driver in use":
        block.driver = value
    elif key == "Kernel modules":
        block.modules = tuple(module.strip() for module in value.split(",") if module.strip())
    elif key == "Subsystem":
        block.subsystem = value
    elif key == "LnkCap" and block.link_capable is None:
        # A device has one PCI Express capability; the first LnkCap/LnkSta are its link.
        block.link_capable = _parse_link(value)
    elif key == "LnkSta" and block.link_status is None:
        block.link_status = _parse_link(value)
    elif (capability := _CAPABILITY.match(detail)) is not None:
        # "Virtual Resizable BAR" (SR-IOV VFs) uses the same lines; only the physical one
        # tells what the firmware gave the card itself.
        name = capability["rest"]
        block.in_resizable_bar = "Resizable BAR" in name and "Virtual" not in name
    elif (region := _REGION.match(detail)) is not None:
        bar = _parse_region(int(region["index"]), region["rest"])
        if bar is not None:
            block.bars.append(bar)
    elif block.in_resizable_bar and (rebar := _REBAR.match(detail)) is not None:
        block.resizable_bars.append(_parse_resizable_bar(rebar))


def _parse_link(text: str) -> PciLink:
    speed = _LINK_SPEED.search(text)
    width = _LINK_WIDTH.search(text)
    return PciLink(
        speed_gts=float(speed["speed"]) if speed and speed["speed"] else None,
        width=int(width["width"]) if width else None,
    )


def _parse_region(index: int, rest: str) -> PciBar | None:
    size = _REGION_SIZE.search(rest)
    if size is None:
        return None  # lspci prints no size for an unsized BAR: nothing to judge
    is_io = "I/O ports" in rest
    return PciBar(
        index=index,
        size_bytes=_size_bytes(size),
        is_64bit="64-bit" in rest,
        prefetchable=not is_io and "non-prefetchable" not in rest and "prefetchable" in rest,
        kind="io" if is_io else "memory",
    )


def _parse_resizable_bar(line: re.Match[str]) -> ResizableBar:
    supported = _REBAR_SIZE.finditer(line["supported"] or "")
    return ResizableBar(
        index=int(line["index"]),
        current_bytes=_size_bytes(line),
        supported_bytes=tuple(_size_bytes(size) for size in supported),
    )


def _size_bytes(size: re.Match[str]) -> int:
    """A match with a "number" and a binary "unit" group, in bytes."""
    return int(size["number"]) * _BINARY_UNITS[size["unit"]]


# ---- IOMMU groups --------------------------------------------------------------------------


def parse_iommu_groups(text: str) -> IommuListing:
    """A listing of IOMMU groups in any shape people paste: one device per line with its
    group, group headers over indented devices (tab-separated iommu.sh included), raw or
    ``ls -l`` sysfs paths, or Proxmox's ``pvesh .../hardware/pci`` table."""
    groups: dict[int, list[IommuMember]] = {}
    empty_glob = False
    # The group that unprefixed device lines belong to; None before any header and after
    # "IOMMU Group *", whose devices belong to no group at all.
    current: int | None = None
    columns: dict[str, int] | None = None
    for raw_line in text.splitlines():
        line = raw_line.strip().strip(_PASTE_QUOTES).strip()
        if not line or raw_line.startswith(_SHELL_PROMPT) or line.startswith(_IOMMU_SH_USB):
            continue
        if line.startswith(_TABLE_BAR):
            cells = [cell.strip() for cell in line.strip(_TABLE_BAR).split(_TABLE_BAR)]
            if "iommugroup" in cells:
                columns = {name: position for position, name in enumerate(cells)}
            elif columns is not None and (row := _table_row(cells, columns)) is not None:
                _add_member(groups.setdefault(row[0], []), row[1])
            continue
        member_text = line
        if (group_line := _GROUP_LINE.match(line)) is not None:
            if group_line["group"] == "*":
                empty_glob, current = True, None
                continue
            current = int(group_line["group"])
            groups.setdefault(current, [])
            member_text = group_line["rest"]
        elif (sysfs := _SYSFS_LINE.search(line)) is not None:
            current = int(sysfs["group"])
            groups.setdefault(current, [])
            member_text = sysfs["address"] or ""
        elif (link := _LS_LONG_LINK.search(line)) is not None:
            member_text = link["address"]
        member = _parse_member(member_text)
        if member is not None and current is not None:
            _add_member(groups[current], member)
    return IommuListing(
        groups={number: tuple(members) for number, members in groups.items()},
        empty_glob=empty_glob,
    )


def _parse_member(text: str) -> IommuMember | None:
    if (script := _IOMMU_SH_MEMBER.match(text)) is not None:
        return _iommu_sh_member(script)
    line = _MEMBER_LINE.match(text)
    if line is None:
        return None
    description = _TRAILING_DRIVER.sub("", (line["rest"] or "").strip())
    named = _NAMED_CLASS.match(description)
    ids = _BRACKETED_IDS.findall(description)
    return IommuMember(
        address=normalise_address(line["address"]),
        class_code=named["code"].lower() if named else None,
        vendor_device=ids[-1].lower() if ids else None,
        description=description,
    )


def _iommu_sh_member(line: re.Match[str]) -> IommuMember:
    # The class name is padded to 40 columns, so two or more spaces end it; a name that
    # fills the column leaves a single space, and then only a known name can be split off.
    rest = line["rest"].strip()
    code = _CLASS_CODES.get(re.split(r"\s{2,}", rest, maxsplit=1)[0].lower())
    if code is None:
        lowered = rest.lower()
        code = next((c for n, c in _CLASS_CODES.items() if lowered.startswith(n + " ")), None)
    return IommuMember(
        address=normalise_address(line["address"]),
        class_code=code,
        vendor_device=line["ids"].lower(),
        description=" ".join(rest.split()),
        reset=line["reset"] is not None,
    )


def _table_row(cells: list[str], columns: dict[str, int]) -> tuple[int, IommuMember] | None:
    """One device row of the pvesh table: its group and member; None for ruler rows and
    devices without a group."""

    def cell(name: str) -> str:
        position = columns.get(name)
        return cells[position] if position is not None and position < len(cells) else ""

    address, group = cell("id"), cell("iommugroup")
    if _DOMAIN_AND_SLOT.fullmatch(address.lower()) is None or not group.isdigit():
        return None
    class_hex = _TABLE_HEX.match(cell("class"))
    vendor, device = _TABLE_HEX.match(cell("vendor")), _TABLE_HEX.match(cell("device"))
    vendor_device = (
        f"{int(vendor['hex'], 16):04x}:{int(device['hex'], 16):04x}" if vendor and device else None
    )
    return int(group), IommuMember(
        address=normalise_address(address),
        class_code=class_hex["hex"].lower().zfill(6)[:4] if class_hex else None,
        vendor_device=vendor_device,
        description=cell("device_name"),
    )


def _add_member(members: list[IommuMember], member: IommuMember) -> None:
    # A paste that shows both the sysfs path and the lspci line names a device twice.
    for position, known in enumerate(members):
        if known.address == member.address:
            if not known.description:
                members[position] = member
            return
    members.append(member)
