"""What a host snapshot says, parsed: plain frozen dataclasses, no judgement.

Each parser in ``labsmith.facts.parse_*`` turns one snapshot file into one of these types.
Checks (``labsmith.checks``) judge them. A field that the capture did not show is ``None``
(unknown), never a guessed default.
"""

from dataclasses import dataclass, field

# ---- PCI ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PciBar:
    """One ``Region N:`` line of ``lspci -vvv``."""

    index: int
    size_bytes: int
    is_64bit: bool
    prefetchable: bool
    kind: str  # "memory" | "io"


@dataclass(frozen=True)
class ResizableBar:
    """One ``BAR N: current size: ...`` line of the Physical Resizable BAR capability."""

    index: int
    current_bytes: int
    supported_bytes: tuple[int, ...]


@dataclass(frozen=True)
class PciLink:
    """A PCIe link as ``lspci -vv`` shows it: ``LnkCap`` (what the device can train to) or
    ``LnkSta`` (what it trained to). A field lspci printed as "unknown" is None."""

    speed_gts: float | None  # 16.0 for "Speed 16GT/s"
    width: int | None  # 16 for "Width x16"


@dataclass(frozen=True)
class PciDevice:
    """One device block of ``lspci -nnk`` / ``-nkk`` / ``-nnkvvv`` / ``-vvv``."""

    address: str  # always with domain: 0000:01:00.0
    class_code: str | None  # "0300"; None when lspci ran without -n
    class_name: str  # "VGA compatible controller"; "" in the numeric -nkk form
    vendor_device: str | None  # "10de:2204"; None when lspci ran without -n
    description: str  # the rest of the header line
    driver: str | None  # "Kernel driver in use"
    modules: tuple[str, ...] = ()  # "Kernel modules"
    bars: tuple[PciBar, ...] = ()
    resizable_bars: tuple[ResizableBar, ...] = ()
    subsystem: str | None = None
    link_capable: PciLink | None = None  # LnkCap, from -vv
    link_status: PciLink | None = None  # LnkSta, from -vv

    @property
    def slot(self) -> str:
        """The address without its function: 0000:01:00 (all functions of one card)."""
        return self.address.rsplit(".", 1)[0]


@dataclass(frozen=True)
class IommuMember:
    address: str  # 0000:01:00.0
    class_code: str | None = None  # when the listing shows [0300]
    vendor_device: str | None = None  # when the listing shows [10de:2204]
    description: str = ""
    # iommu.sh's "[R]": the device has a sysfs reset file (the kernel can reset it alone);
    # None when the listing does not say
    reset: bool | None = None


@dataclass(frozen=True)
class IommuListing:
    """A listing of /sys/kernel/iommu_groups in any of the shapes people paste."""

    groups: dict[int, tuple[IommuMember, ...]]
    # A listing script printed a literal "IOMMU Group *": its glob matched nothing, so the
    # kernel has no groups (the IOMMU is off or unsupported).
    empty_glob: bool = False

    def group_of(self, address: str) -> int | None:
        for number, members in self.groups.items():
            if any(member.address == address for member in members):
                return number
        return None


# ---- kernel ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cmdline:
    """``/proc/cmdline``: tokens in order; a repeated key keeps every value (the kernel
    uses the last one for most parameters)."""

    tokens: tuple[str, ...]
    values: dict[str, tuple[str, ...]]  # key -> every value given; a bare flag has ""

    def last(self, key: str) -> str | None:
        """The value the kernel uses; it reads - and _ in parameter names alike."""
        for spelling in (key, key.replace("_", "-"), key.replace("-", "_")):
            found = self.values.get(spelling)
            if found:
                return found[-1]
        return None


@dataclass(frozen=True)
class KernelLog:
    """dmesg or ``journalctl -k``: the messages, with timestamps and host prefixes removed."""

    messages: tuple[str, ...]


@dataclass(frozen=True)
class IommuLogEvidence:
    """What a kernel log says about the IOMMU, each a tuple of the messages that say it."""

    active: tuple[str, ...] = ()  # only printed once an IOMMU translates DMA
    disabled: tuple[str, ...] = ()  # the kernel turned it off, or found none to use
    # VT-d described by the firmware (DMAR table, interrupt remapping), which on its own
    # does not show DMA remapping on: kernels without intel_iommu=on leave it off
    hardware_only: tuple[str, ...] = ()
    # "Hypervisor detected: KVM": the kernel runs as a VM guest
    hypervisor: str | None = None


@dataclass(frozen=True)
class DkmsModule:
    name: str
    version: str
    kernel: str | None
    arch: str | None
    status: str  # "installed", "built", "added", ...


@dataclass(frozen=True)
class DkmsStatus:
    modules: tuple[DkmsModule, ...]
    # Lines such as "Error! Your kernel headers for kernel 6.8.12-4-pve cannot be found ..."
    errors: tuple[str, ...] = ()
    # Kernels whose headers DKMS reported missing.
    missing_headers_for: tuple[str, ...] = ()


@dataclass(frozen=True)
class NvidiaSmiFailure:
    """The stderr/stdout of an ``nvidia-smi`` that failed."""

    text: str
    # "driver_unreachable" (couldn't communicate with the NVIDIA driver: the module is not
    # loaded, usually after a kernel update), "version_mismatch" (Driver/library version
    # mismatch: a driver upgrade without a reboot), "no_devices", "not_found", or "other".
    kind: str


# ---- GPU tools ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MigDevice:
    index: int
    profile: str | None  # e.g. "1g.10gb" when shown
    memory_bytes: int | None


@dataclass(frozen=True)
class NvidiaGpu:
    pci_address: str  # normalised to 0000:BB:DD.F
    product_name: str
    uuid: str | None
    vram_total_bytes: int | None
    vram_used_bytes: int | None
    bar1_total_bytes: int | None
    mig_current: str | None  # "Enabled" | "Disabled" | None when N/A
    mig_pending: str | None
    mig_devices: tuple[MigDevice, ...] = ()
    # NVML's two display flags mean different things (nvmlDeviceGetDisplayActive and
    # nvmlDeviceGetDisplayMode, https://docs.nvidia.com/deploy/nvml-api/group__nvmlDeviceQueries.html):
    # <display_active>: "a display is initialized on the device", e.g. an X server "has
    # allocated memory for the screen" -- it can be active with no monitor attached.
    display_active: bool | None = None
    # <display_attached> Yes/No (schema v13), or the older <display_mode> Enabled/Disabled:
    # "a physical display (e.g. monitor) is currently connected to any of the device's
    # connectors" -- a cable, not a desktop; it holds no VRAM by itself.
    display_attached: bool | None = None
    persistence_mode: bool | None = None
    processes: tuple[str, ...] = ()  # process names using the GPU (Xorg, ollama ...)
    vendor_device: str | None = None  # "10de:2216", from <pci_device_id>
    # VRAM the driver keeps for itself (<fb_memory_usage><reserved>): never free for a model.
    reserved_bytes: int | None = None


@dataclass(frozen=True)
class NvidiaSmiReport:
    driver_version: str | None
    cuda_version: str | None
    attached_gpus: int | None
    gpus: tuple[NvidiaGpu, ...]


@dataclass(frozen=True)
class RocmGpu:
    card: str  # "card0"
    pci_address: str | None  # normalised to 0000:BB:DD.F
    product_name: str | None
    vram_total_bytes: int | None
    vram_used_bytes: int | None
    driver_version: str | None = None
    vendor_device: str | None = None  # "1002:738c", from "Device ID" (older: "GPU ID")
    # VIS_VRAM: the VRAM the CPU can map through the BAR; 256 MiB when Above 4G decoding /
    # Resizable BAR are off, however large the VRAM.
    visible_vram_bytes: int | None = None
    # The ISA ROCm builds kernels for, e.g. "gfx1031" (rocm-smi's "GFX Version").
    gfx_target: str | None = None


# ---- system --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuInfo:
    vendor: str | None  # "GenuineIntel" | "AuthenticAMD"
    model_name: str | None
    flags: frozenset[str]
    logical_cpus: int


@dataclass(frozen=True)
class SecureBoot:
    enabled: bool | None  # None: EFI variables not supported (legacy boot) or unreadable
    text: str


@dataclass(frozen=True)
class BlockDevice:
    name: str  # nvme0n1
    path: str | None  # /dev/nvme0n1
    type: str  # disk, part, ...
    model: str | None
    serial: str | None
    wwn: str | None
    size_bytes: int | None
    transport: str | None  # nvme, sata, usb ...
    id_links: tuple[str, ...] = ()  # /dev/disk/by-id names when lsblk reports them
    children: tuple["BlockDevice", ...] = ()


@dataclass(frozen=True)
class NetLink:
    name: str
    mac: str | None
    kind: str | None  # linkinfo.info_kind: bridge, vlan, bond, ... None for a plain NIC
    master: str | None
    state: str | None
    vlan_id: int | None = None  # for kind vlan
    vlan_filtering: bool | None = None  # for bridges: VLAN-aware


@dataclass(frozen=True)
class OsRelease:
    id: str | None  # debian, ubuntu
    version_id: str | None
    pretty_name: str | None
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Uname:
    kernel_release: str | None  # 6.8.12-4-pve
    hostname: str | None
    machine: str | None  # x86_64
