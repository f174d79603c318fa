"""Per-GPU verdicts: IOMMU group isolation, bound driver, display use, BAR size, reset, MIG.

A GPU is any PCI function of class 0300 (VGA), 0302 (3D controller) or 0380 (display
controller). Other functions of the same card (its HDMI audio at .1, a USB-C controller)
and PCI bridges may share its IOMMU group; anything else makes it non-isolated.
"""

from collections.abc import Iterator
from dataclasses import dataclass, replace

from labsmith.checks.host import acs_override_evidence
from labsmith.checks.verdict import Check, GpuVerdict, Status, worst
from labsmith.facts.model import IommuListing, NvidiaGpu, PciDevice, RocmGpu
from labsmith.facts.snapshot import HostFacts
from labsmith.inventory.model import GpuMode
from labsmith.sizing.gpu_support import hsa_override
from labsmith.units import format_size

GPU_CLASSES = {"0300", "0302", "0380"}
GPU_CLASS_NAMES = {
    "VGA compatible controller": "0300",
    "3D controller": "0302",
    "Display controller": "0380",
}
PCI_BRIDGE = "0604"
HOST_DRIVERS = {"nvidia", "amdgpu", "radeon", "i915", "xe"}
# AMD GPUs whose function-level reset leaves them unusable until the host reboots; the
# out-of-tree vendor-reset module fixes them (its README lists Polaris, Vega and Navi 10/12/14).
AMD_RESET_BUG = {
    "67df": "Polaris 10 (RX 470/480/570/580)",
    "67ef": "Polaris 11 (RX 460/560)",
    "699f": "Polaris 12 (RX 550)",
    "687f": "Vega 10 (RX Vega 56/64)",
    "66af": "Vega 20 (Radeon VII)",
    "731f": "Navi 10 (RX 5600/5700)",
    "7360": "Navi 12 (Pro 5600M)",
    "7340": "Navi 14 (RX 5500)",
}
# A BAR this large means the firmware maps VRAM above 4 GiB (Above 4G decoding + ReBAR);
# without them the largest GPU BAR stays at the legacy 256 MiB.
LARGE_BAR = 1024**3
# Payload bytes per second one PCIe lane carries in each direction, by transfer rate (GT/s):
# the rate times the line code's efficiency, over 8 bits. PCIe 1.x and 2.x (2.5 and 5 GT/s)
# use 8b/10b (80 %), 3.x to 5.x (8, 16 and 32 GT/s) 128b/130b (98.5 %): 0.25, 0.5, 0.985,
# 1.969 and 3.938 GB/s. PCIe 6's 64 GT/s FLIT mode is left out: its overhead is not one ratio.
LANE_BYTES_PER_SECOND = {
    2.5: 2.5e9 * 8 / 10 / 8,
    5.0: 5e9 * 8 / 10 / 8,
    8.0: 8e9 * 128 / 130 / 8,
    16.0: 16e9 * 128 / 130 / 8,
    32.0: 32e9 * 128 / 130 / 8,
}
PCIE_GENERATION = {2.5: 1, 5.0: 2, 8.0: 3, 16.0: 4, 32.0: 5}
FULL_WIDTH = 16
# What a load-time estimate is about when the snapshot shows no VRAM size: a 70B model at
# 4 bits is about this large.
EXAMPLE_MODEL_BYTES = 40 * 10**9


@dataclass(frozen=True)
class GpuIntent:
    """What the inventory wants of a GPU, when a probe is judged against one."""

    name: str
    mode: GpuMode
    display: bool


def class_code(device: PciDevice) -> str | None:
    return device.class_code or GPU_CLASS_NAMES.get(device.class_name)


@dataclass(frozen=True)
class SeenGpu:
    device: PciDevice
    # lspci -k shows the bound driver (None there means unbound); an IOMMU listing does not.
    driver_known: bool


def find_gpus(facts: HostFacts) -> list[SeenGpu]:
    """GPUs from lspci; without lspci (or with an empty one, as in a container that sees
    no PCI bus), from an IOMMU listing that shows class codes, and from nvidia-smi /
    rocm-smi (whose GPUs are, by definition, on the vendor driver)."""
    if facts.pci_devices:
        return [SeenGpu(d, True) for d in facts.pci_devices if class_code(d) in GPU_CLASSES]
    found: dict[str, SeenGpu] = {}
    for group in facts.iommu.groups.values() if facts.iommu else ():
        for m in group:
            if m.class_code in GPU_CLASSES:
                device = PciDevice(
                    m.address, m.class_code, "", m.vendor_device, m.description, None
                )
                found[m.address] = SeenGpu(device, False)
    tools: list[tuple[str, str, str | None, str]] = [
        (g.pci_address, g.product_name, g.vendor_device, "nvidia")
        for g in (facts.nvidia_smi.gpus if facts.nvidia_smi else ())
    ] + [
        (g.pci_address, g.product_name or g.card, g.vendor_device, "amdgpu")
        for g in facts.rocm_gpus or ()
        if g.pci_address
    ]
    for address, product, vendor_device, driver in tools:
        seen = found.get(address)
        if seen is None:
            vendor = "10de" if driver == "nvidia" else "1002"
            device = PciDevice(address, None, "", vendor_device, f"{vendor} {product}", driver)
            found[address] = SeenGpu(device, True)
        elif seen.device.vendor_device is None:
            found[address] = SeenGpu(
                replace(seen.device, vendor_device=vendor_device), seen.driver_known
            )
    return list(found.values())


def gpu_verdicts(facts: HostFacts, intents: dict[str, GpuIntent]) -> list[GpuVerdict]:
    """``intents`` maps PCI addresses to what the inventory declares for them."""
    seen = find_gpus(facts)
    gpus = [s.device for s in seen]
    acs_override = acs_override_evidence(facts) is not None
    # HostFacts.vm_guest: cpuinfo's hypervisor flag or the kernel's "Hypervisor detected".
    guest = facts.vm_guest is not None
    verdicts = []
    for gpu, driver_known in ((s.device, s.driver_known) for s in seen):
        intent = intents.get(gpu.address)
        group = facts.iommu.group_of(gpu.address) if facts.iommu else None
        smi = _nvidia_gpu(gpu, facts)
        rocm = _rocm_gpu(gpu, facts)
        vram = (smi.vram_total_bytes if smi else None) or (rocm.vram_total_bytes if rocm else None)
        if guest:
            # The GPU is already passed in: isolation, vfio and reset are the host's business.
            placement = [_guest_driver(gpu, facts, rocm, intent, known=driver_known)]
        else:
            placement = [
                *_isolation(gpu, group, facts, gpus, acs_override),
                _driver(gpu, intent, known=driver_known),
                *_reset(gpu, _listed_reset(gpu, facts)),
            ]
        reasons = [
            *placement,
            *_display(gpu, smi, intent),
            _bar_size(gpu, smi, rocm, vram, guest=guest),
            _link(gpu, vram),
            *_mig(gpu, smi),
            *_rocm_target(gpu, rocm),
        ]
        # BAR size and link width are about speed, and the ROCm target about what runs
        # on the host, not readiness; a GPU the host keeps needs no isolation.
        ignored = {"gpu.rebar", "gpu.link", "gpu.rocm_target"} | (
            {"gpu.isolation", "gpu.shared_group"} if intent and intent.mode == "host" else set()
        )
        statuses: list[Status] = [r.status for r in reasons if r.id not in ignored]
        verdicts.append(
            GpuVerdict(
                address=gpu.address,
                vendor_device=gpu.vendor_device
                or (smi.vendor_device if smi else None)
                or (rocm.vendor_device if rocm else None),
                iommu_group=group,
                driver=gpu.driver,
                passthrough=worst(statuses),
                reasons=tuple(reasons),
                uuid=smi.uuid if smi else None,
            )
        )
    return verdicts


def _member_classes(facts: HostFacts, listing: IommuListing, group: int) -> dict[str, str | None]:
    """Each group member's class code, from the listing or else from lspci."""
    by_address = {d.address: class_code(d) for d in facts.pci_devices or ()}
    return {
        member.address: member.class_code or by_address.get(member.address)
        for member in listing.groups[group]
    }


def _isolation(
    gpu: PciDevice, group: int | None, facts: HostFacts, gpus: list[PciDevice], acs_override: bool
) -> Iterator[Check]:
    if facts.iommu is None or group is None:
        seen = "no IOMMU group listing" if facts.iommu is None else "it is in no IOMMU group"
        yield Check("gpu.isolation", "unknown", f"{gpu.address}: {seen}")
        return
    classes = _member_classes(facts, facts.iommu, group)
    others = {a: c for a, c in classes.items() if not a.startswith(gpu.slot + ".")}
    unknown = [a for a, c in others.items() if c is None]
    strangers = [a for a, c in others.items() if c is not None and c != PCI_BRIDGE]
    other_gpus = [g.address for g in gpus if g.address in strangers and g.slot != gpu.slot]
    if other_gpus:
        yield Check(
            "gpu.shared_group",
            "warn",
            f"{gpu.address} shares IOMMU group {group} with GPU(s) {', '.join(other_gpus)}: "
            "they can only be passed through together, to one VM",
        )
    non_gpu = [a for a in strangers if a not in other_gpus]
    if non_gpu:
        kinds = {m.address: m.description.split(" [", 1)[0] for m in facts.iommu.groups[group]}
        named = ", ".join(f"{a} ({kinds[a]})" if kinds.get(a) else a for a in non_gpu)
        yield Check(
            "gpu.isolation",
            "fail",
            f"{gpu.address} shares IOMMU group {group} with {named}, which "
            "would go to the VM with it; move the card to a slot wired to the CPU, or "
            "(less safe) use pcie_acs_override",
        )
    elif unknown:
        yield Check(
            "gpu.isolation",
            "unknown",
            f"group {group} also holds {', '.join(unknown)} whose class the snapshot does not show",
        )
    elif acs_override or _functions_split(gpu, group, facts.iommu):
        yield Check(
            "gpu.isolation",
            "warn",
            f"{gpu.address} is alone in IOMMU group {group} only because ACS override "
            "splits the groups (pcie_acs_override, or functions of one card in separate "
            "groups): the isolation is synthetic",
        )
    else:
        yield Check(
            "gpu.isolation",
            "pass",
            f"IOMMU group {group} holds only this card's functions and PCI bridges",
        )


def _functions_split(gpu: PciDevice, group: int, listing: IommuListing) -> bool:
    """Functions of one card in different groups: the hardware never does this, the ACS
    override patch (``pcie_acs_override=multifunction``) does."""
    siblings = [
        m.address
        for members in listing.groups.values()
        for m in members
        if m.address.startswith(gpu.slot + ".") and m.address != gpu.address
    ]
    return any(listing.group_of(address) != group for address in siblings)


def _driver(gpu: PciDevice, intent: GpuIntent | None, *, known: bool) -> Check:
    if not known:
        return Check("gpu.driver", "unknown", f"{gpu.address}: no lspci -k in the snapshot")
    driver = gpu.driver
    if driver == "nouveau":
        return Check(
            "gpu.driver",
            "fail",
            f"{gpu.address} is driven by nouveau; blacklist nouveau "
            "(/etc/modprobe.d/blacklist-nouveau.conf), update-initramfs -u, reboot",
        )
    mode = intent.mode if intent else "passthrough"
    if mode == "host":
        if driver in HOST_DRIVERS:
            return Check(
                "gpu.driver", "pass", f"{gpu.address} is driven by {driver}, as host mode needs"
            )
        seen = f"bound to {driver}" if driver else "bound to no driver"
        return Check(
            "gpu.driver",
            "fail",
            f"{gpu.address} is {seen}, but the inventory keeps it on the host; install the "
            "vendor driver (nvidia/amdgpu) and remove it from vfio-pci.ids",
        )
    if driver == "vfio-pci":
        return Check("gpu.driver", "pass", f"{gpu.address} is bound to vfio-pci, ready for a VM")
    seen = f"bound to {driver}" if driver else "bound to no driver"
    status: Status = "fail" if intent else "warn"
    return Check(
        "gpu.driver",
        status,
        f"{gpu.address} is {seen}, not vfio-pci: not ready for passthrough yet; bind it "
        f"with vfio-pci.ids={gpu.vendor_device or '<vendor:device>'} (labsmith's vfio role "
        "does this) and reboot",
    )


def _guest_driver(
    gpu: PciDevice,
    facts: HostFacts,
    rocm: RocmGpu | None,
    intent: GpuIntent | None,
    *,
    known: bool,
) -> Check:
    """Inside a VM a passed-in GPU is ready when the vendor driver drives it."""
    if not known:
        return Check(
            "gpu.driver", "unknown", f"VM guest: {gpu.address}: no lspci -k in the snapshot"
        )
    driver = gpu.driver
    if driver in HOST_DRIVERS:
        version = _driver_version(driver, facts, rocm)
        driven = f"{driver} {version}" if version else driver
        return Check(
            "gpu.driver", "pass", f"VM guest: GPU {gpu.address} passed in, driven by {driven}"
        )
    if driver == "nouveau":
        return _driver(gpu, intent, known=known)
    seen = f"bound to {driver}" if driver else "bound to no driver"
    status: Status = "fail" if intent else "warn"
    return Check(
        "gpu.driver",
        status,
        f"VM guest: GPU {gpu.address} passed in but {seen}; install the vendor driver "
        "(nvidia or amdgpu) in this VM",
    )


def _driver_version(driver: str, facts: HostFacts, rocm: RocmGpu | None) -> str | None:
    if driver == "nvidia":
        return facts.nvidia_smi.driver_version if facts.nvidia_smi else None
    if driver == "amdgpu":
        return rocm.driver_version if rocm else None
    return None


def _nvidia_gpu(gpu: PciDevice, facts: HostFacts) -> NvidiaGpu | None:
    if facts.nvidia_smi is None:
        return None
    return next((g for g in facts.nvidia_smi.gpus if g.pci_address == gpu.address), None)


def _rocm_target(gpu: PciDevice, rocm: RocmGpu | None) -> Iterator[Check]:
    """A consumer Radeon whose ISA is not one ROCm ships kernels for runs them only as the
    nearest official target of its generation (the table labsmith's fit uses too)."""
    if rocm is None or rocm.gfx_target is None:
        return
    value = hsa_override(rocm.gfx_target)
    if value is not None:
        yield Check(
            "gpu.rocm_target",
            "warn",
            f"{gpu.address} is {rocm.gfx_target}, not a target ROCm builds for: set "
            f"HSA_OVERRIDE_GFX_VERSION={value} for ROCm programs (Ollama, vLLM, PyTorch) to "
            "use it",
        )


def _rocm_gpu(gpu: PciDevice, facts: HostFacts) -> RocmGpu | None:
    return next((g for g in facts.rocm_gpus or () if g.pci_address == gpu.address), None)


def _display(gpu: PciDevice, smi: NvidiaGpu | None, intent: GpuIntent | None) -> Iterator[Check]:
    # display_active (a display is initialised: X, Wayland or the console allocated its
    # framebuffer) costs VRAM and ties the GPU to the host; display_attached only says a
    # monitor is plugged in, which costs nothing. See NvidiaGpu for NVIDIA's definitions.
    users = (
        [
            p
            for p in smi.processes
            if p.rsplit("/", 1)[-1] in {"Xorg", "gnome-shell", "kwin_wayland"}
        ]
        if smi
        else []
    )
    if (smi and smi.display_active) or users:
        seen = f"runs {', '.join(users)}" if users else "has a display initialised on it"
        yield Check(
            "gpu.display",
            "warn",
            f"{gpu.address} {seen}: the console/desktop holds part of its VRAM and it is "
            "the hardest GPU to hand to a VM; use the iGPU or another card for the display",
        )
    elif smi and smi.display_attached:
        active = "no display is initialised on it" if smi.display_active is False else None
        yield Check(
            "gpu.display",
            "pass" if active else "unknown",
            f"{gpu.address} has a monitor connected"
            + (
                f" but {active}: no desktop holds its VRAM"
                if active
                else "; nvidia-smi does not say whether a display is initialised on it"
            ),
        )
    elif intent is not None and intent.display:
        yield Check(
            "gpu.display",
            "warn",
            f"the inventory marks {intent.name} as the display GPU: its VRAM is partly "
            "taken by the console",
        )


def _bar_size(
    gpu: PciDevice, smi: NvidiaGpu | None, rocm: RocmGpu | None, vram: int | None, *, guest: bool
) -> Check:
    rebar = max((bar.current_bytes for bar in gpu.resizable_bars), default=None)
    prefetchable = max((bar.size_bytes for bar in gpu.bars if bar.prefetchable), default=None)
    seen = (
        rebar
        or prefetchable
        or (smi.bar1_total_bytes if smi else None)
        or (rocm.visible_vram_bytes if rocm else None)  # rocm-smi's VIS_VRAM
    )
    if seen is None:
        return Check(
            "gpu.rebar", "unknown", f"{gpu.address}: the snapshot shows no BAR sizes (lspci -vvv)"
        )
    # An APU's small carve-out is mapped whole through a small BAR: nothing is hidden.
    if seen >= LARGE_BAR or (vram is not None and seen >= vram):
        return Check(
            "gpu.rebar",
            "pass",
            f"{gpu.address} maps {format_size(seen)} of VRAM: Above 4G decoding and "
            "Resizable BAR are on",
        )
    of_vram = f" of its {format_size(vram)} VRAM" if vram else ""
    if guest:
        fix = (
            "inside a VM the host and the VM's configuration decide the BAR size, nothing "
            "in this system does"
        )
    else:
        fix = (
            "Above 4G decoding / Resizable BAR are off; enable Above 4G Decoding and "
            "Resizable BAR in the firmware (needs UEFI boot) for faster model loads"
        )
    return Check(
        "gpu.rebar", "warn", f"{gpu.address} maps only {format_size(seen)}{of_vram}: {fix}"
    )


def _link(gpu: PciDevice, vram: int | None) -> Check:
    """The PCIe width the GPU trained to (lspci -vv LnkSta) and what a narrow one costs."""
    status, capable = gpu.link_status, gpu.link_capable
    if status is None or status.width is None:
        return Check(
            "gpu.link", "unknown", f"{gpu.address}: the snapshot shows no PCIe link (lspci -vv)"
        )
    if status.width >= FULL_WIDTH:
        return Check("gpu.link", "pass", f"{gpu.address} runs at PCIe x{status.width}")
    if capable and capable.width and status.width >= capable.width:
        # Built narrow (an x8 card such as the RTX 4060): nothing to gain from another slot.
        return Check(
            "gpu.link", "pass", f"{gpu.address} runs at PCIe x{status.width}, all it supports"
        )
    supports = (
        f" of the x{capable.width} it supports"
        if capable and capable.width and capable.width > status.width
        else ""
    )
    # LnkSta's speed drops while the GPU idles; LnkCap's is what it trains to under load.
    speed = (capable.speed_gts if capable else None) or status.speed_gts
    lane = LANE_BYTES_PER_SECOND.get(speed) if speed else None
    cost = ""
    if speed is not None and lane is not None:
        narrow, full = status.width * lane, FULL_WIDTH * lane
        size = vram or EXAMPLE_MODEL_BYTES
        what = f"filling its {format_size(vram)} of VRAM" if vram else "loading 40 GB of weights"
        cost = (
            f" At PCIe {PCIE_GENERATION[speed]}.0 that is ≈{narrow / 1e9:.1f} GB/s against "
            f"≈{full / 1e9:.1f} GB/s at x{FULL_WIDTH}: {what} takes ≈{size / narrow:.1f} s "
            f"instead of ≈{size / full:.1f} s."
        )
    return Check(
        "gpu.link",
        "warn",
        f"{gpu.address} runs at PCIe x{status.width}{supports}.{cost} The width costs model "
        "load time (weights cross the link once), not generation speed once the model is "
        "loaded; but a model split across GPUs, or with layers offloaded to the CPU, sends "
        "every token across this link. A CPU-wired x16 slot, where the machine has one, "
        "removes the cost",
    )


def _listed_reset(gpu: PciDevice, facts: HostFacts) -> bool | None:
    """Whether the IOMMU listing marks the GPU resettable (iommu.sh's ``[R]``: a sysfs
    ``reset`` file exists); None when the listing does not say."""
    members = (m for group in (facts.iommu.groups.values() if facts.iommu else ()) for m in group)
    return next((m.reset for m in members if m.address == gpu.address), None)


def _reset(gpu: PciDevice, listed_reset: bool | None) -> Iterator[Check]:
    if gpu.vendor_device and gpu.vendor_device.startswith("1002:"):
        family = AMD_RESET_BUG.get(gpu.vendor_device.split(":")[1])
        if family:
            yield Check(
                "gpu.reset",
                "warn",
                f"{gpu.address} is an AMD {family}: it does not reset cleanly when its VM "
                "stops; install vendor-reset (DKMS) and set its reset_method to "
                "device_specific",
            )
            return
    if listed_reset is False:
        yield Check(
            "gpu.reset",
            "warn",
            f"{gpu.address} has no reset method (no [R] in the IOMMU listing: the kernel "
            "offers no function-level reset for it), so a VM that stops may leave it "
            "unusable until the host reboots; check `cat /sys/bus/pci/devices/"
            f"{gpu.address}/reset_method`, and pass it through with its bridge or use "
            "vendor-reset where it supports the card",
        )


def _mig(gpu: PciDevice, smi: NvidiaGpu | None) -> Iterator[Check]:
    if smi is not None and smi.mig_current == "Enabled":
        yield Check(
            "gpu.mig",
            "warn",
            f"{gpu.address} ({smi.product_name}) has MIG on with {len(smi.mig_devices)} "
            "instance(s): a VM given the whole card gets it partitioned; "
            "`nvidia-smi -i <n> -mig 0` turns it off",
        )
