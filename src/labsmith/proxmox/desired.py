"""What the inventory asks of each Proxmox cluster, in the API's own terms.

A guest becomes the options of ``POST /nodes/{node}/{qemu,lxc}`` (sizes in the units PVE
takes, NICs with their VLAN tag, cloud-init with the VLAN's gateway, GPUs as PCI resource
mappings or container device nodes); each passthrough GPU becomes a ``/cluster/mapping/pci``
entry. Pure functions of the lab: no API call happens here.
"""

import re
from dataclasses import dataclass, field
from urllib.parse import quote

from labsmith.inventory.lab import Guest, Lab, PhysicalHost
from labsmith.inventory.model import Gpu, GuestNic, GuestSpec, GuestType, Vlan
from labsmith.units import GIB, MIB

# Every managed guest carries this tag and this line in its description: how an operator
# (and the planner) tells labsmith's guests from hand-made ones.
MANAGED_TAG = "labsmith"
MANAGED_MARKER = "managed-by: labsmith"
NVIDIA, AMD, INTEL = "10de", "1002", "8086"
# The NVIDIA driver's control nodes a container needs besides the card's own /dev/nvidiaN.
NVIDIA_CONTROL_NODES = (
    "/dev/nvidiactl",
    "/dev/nvidia-uvm",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia-modeset",
)
FIRST_RENDER_NODE = 128  # /dev/dri/renderD128 is the first DRM render node
# Options sent when a guest is created and never compared afterwards: PVE consumes them
# (the template is unpacked) or they only make sense at creation.
CREATE_ONLY = frozenset({"ostemplate"})
# labsmith writes container mount points only as bind mounts and devices as devN, both of
# which PVE reserves to root@pam.
ROOT_ONLY_LXC = re.compile(r"^(mp|dev)\d+$")


@dataclass(frozen=True)
class DesiredMapping:
    """A PCI resource mapping entry: how a token without root rights may pass a GPU through."""

    id: str
    node: str
    path: str  # 0000:01:00 - every function of the card
    vendor_device: str
    description: str = ""

    def map_entry(self, iommu_group: int | None = None) -> str:
        entry = f"id={self.vendor_device},node={self.node},path={self.path}"
        if iommu_group is not None:
            entry += f",iommugroup={iommu_group}"
        return entry


@dataclass(frozen=True)
class DesiredGuest:
    inventory_name: str
    name: str  # what Proxmox shows (name / hostname)
    cluster: str
    node: str
    vmid: int
    kind: GuestType
    options: dict[str, str | int]
    start: bool
    # Inventory locations for messages: the file that declares labsmith_guest.
    origin: str = ""
    mappings: tuple[str, ...] = field(default=())
    # Options PVE lets only root@pam itself set, never an API token (pve-container's
    # check_ct_modify_config_perm: bind mount points and devN passthrough). The plan shows
    # the pct command that sets them on the node.
    root_only: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DesiredLab:
    guests: list[DesiredGuest]
    mappings: dict[str, list[DesiredMapping]]  # cluster -> mappings


def desired_lab(lab: Lab) -> DesiredLab:
    guests: list[DesiredGuest] = []
    mappings: dict[str, dict[tuple[str, str], DesiredMapping]] = {}
    for name in sorted(lab.guests):
        guest = lab.guests[name]
        host = lab.hosts.get(guest.spec.guest.node)
        if host is None or host.spec.kind != "proxmox":
            continue
        desired = desired_guest(guest, host)
        guests.append(desired)
        for gpu in _gpus(guest.spec.guest, host):
            if gpu.mode == "passthrough" and guest.spec.guest.type == "qemu":
                mapping = gpu_mapping(gpu, host)
                mappings.setdefault(host.cluster, {})[(mapping.id, mapping.node)] = mapping
    return DesiredLab(
        guests=guests,
        mappings={
            cluster: sorted(found.values(), key=lambda m: (m.id, m.node))
            for cluster, found in sorted(mappings.items())
        },
    )


def gpu_mapping(gpu: Gpu, host: PhysicalHost) -> DesiredMapping:
    """One mapping per GPU name; its entry names every function of the card (no ``.N``)."""
    return DesiredMapping(
        id=gpu.name,
        node=host.name,
        path=gpu.pci.rsplit(".", 1)[0],
        vendor_device=gpu.vendor_device,
        description=f"{gpu.model or gpu.name} ({MANAGED_MARKER})",
    )


def desired_guest(guest: Guest, host: PhysicalHost) -> DesiredGuest:
    spec = guest.spec.guest
    common: dict[str, str | int] = {
        "cores": spec.cores,
        "memory": spec.memory // MIB,
        "onboot": int(spec.onboot),
        "tags": ";".join(sorted({MANAGED_TAG, *spec.tags})),
        "description": description(spec.description),
    }
    vlans = guest.spec.vlans
    root_only: dict[str, str] = {}
    if spec.type == "qemu":
        options = {"name": guest.display_name, **common, **_qemu_options(spec, host, vlans)}
    else:
        options = {"hostname": guest.display_name, **common, **_lxc_options(spec, host, vlans)}
        root_only = {
            key: str(options.pop(key)) for key in list(options) if ROOT_ONLY_LXC.match(key)
        }
    return DesiredGuest(
        inventory_name=guest.name,
        name=guest.display_name,
        cluster=host.cluster,
        node=spec.node,
        vmid=spec.vmid,
        kind=spec.type,
        options=options,
        start=spec.onboot,
        origin=guest.origin("labsmith_guest"),
        mappings=tuple(gpu.name for gpu in _gpus(spec, host) if gpu.mode == "passthrough"),
        root_only=root_only,
    )


def description(text: str) -> str:
    """The inventory's description with the marker line that says who manages the guest."""
    return f"{text.strip()}\n\n{MANAGED_MARKER}" if text.strip() else MANAGED_MARKER


def _gpus(spec: GuestSpec, host: PhysicalHost) -> list[Gpu]:
    by_name = {gpu.name: gpu for gpu in host.spec.gpus}
    return [by_name[name] for name in spec.gpus if name in by_name]


def _qemu_options(spec: GuestSpec, host: PhysicalHost, vlans: list[Vlan]) -> dict[str, str | int]:
    gpus = _gpus(spec, host)
    machine = spec.machine or ("q35" if gpus else None)
    bios = spec.bios or ("ovmf" if gpus else None)
    options: dict[str, str | int] = {"ostype": "l26", "scsihw": "virtio-scsi-single"}
    if gpus:
        # The guest driver wants the real CPU flags, and a VM with a passed-through device
        # pins its memory, which a balloon would only pretend to give back.
        options.update({"cpu": "host", "balloon": 0})
    if machine:
        options["machine"] = machine
    if bios:
        options["bios"] = bios
    slots = _disk_slots(spec)
    for slot, disk in zip(slots, spec.disks, strict=True):
        options[slot] = f"{disk.storage}:{_gib(disk.size)},discard=on,iothread=1"
    system_storage = spec.disks[0].storage if spec.disks else None
    if bios == "ovmf" and system_storage:
        options["efidisk0"] = f"{system_storage}:1,efitype=4m,pre-enrolled-keys=0"
    for index, nic in enumerate(spec.nics):
        options[f"net{index}"] = _qemu_nic(nic, vlans)
    for index, gpu in enumerate(gpus):
        pcie = ",pcie=1" if machine == "q35" else ""
        options[f"hostpci{index}"] = f"mapping={gpu.name}{pcie}"
    if spec.cloud_init is not None and system_storage:
        init = spec.cloud_init
        options["ide2"] = f"{system_storage}:cloudinit"
        options["ciuser"] = init.user
        if init.ssh_keys:
            # PVE takes the authorized_keys text URL-encoded and stores it that way.
            options["sshkeys"] = quote("\n".join(init.ssh_keys), safe="")
        if init.nameserver is not None:
            options["nameserver"] = str(init.nameserver)
        if init.searchdomain:
            options["searchdomain"] = init.searchdomain
        for index, nic in enumerate(spec.nics):
            options[f"ipconfig{index}"] = _ipconfig(nic, vlans)
    return options


def _disk_slots(spec: GuestSpec) -> list[str]:
    """Declared slots as written; the others take the next free scsiN."""
    taken = {disk.slot for disk in spec.disks if disk.slot}
    slots: list[str] = []
    index = 0
    for disk in spec.disks:
        if disk.slot:
            slots.append(disk.slot)
            continue
        while f"scsi{index}" in taken:
            index += 1
        taken.add(f"scsi{index}")
        slots.append(f"scsi{index}")
    return slots


def _qemu_nic(nic: GuestNic, vlans: list[Vlan]) -> str:
    parts = [f"virtio={nic.mac.upper()}" if nic.mac else "virtio", f"bridge={nic.bridge}"]
    vlan = _vlan(nic, vlans)
    if nic.firewall:
        parts.append("firewall=1")
    if vlan is not None:
        parts.append(f"tag={vlan.id}")
    return ",".join(parts)


def _ipconfig(nic: GuestNic, vlans: list[Vlan]) -> str:
    if nic.ip is None or nic.ip == "dhcp":
        return "ip=dhcp"
    gateway = _gateway(nic, vlans)
    key = "ip" if nic.ip.version == 4 else "ip6"
    text = f"{key}={nic.ip.with_prefixlen}"
    if gateway:
        text += f",{'gw' if nic.ip.version == 4 else 'gw6'}={gateway}"
    return text


def _gateway(nic: GuestNic, vlans: list[Vlan]) -> str:
    """The NIC's own gateway, else its VLAN's."""
    if nic.gateway is not None:
        return str(nic.gateway)
    vlan = _vlan(nic, vlans)
    if vlan is not None and vlan.gateway is not None:
        return str(vlan.gateway)
    return ""


def _vlan(nic: GuestNic, vlans: list[Vlan]) -> Vlan | None:
    if nic.vlan is None:
        return None
    for vlan in vlans:
        if nic.vlan in (vlan.name, vlan.id):
            return vlan
    if isinstance(nic.vlan, int):
        return Vlan(name=f"vlan{nic.vlan}", id=nic.vlan)
    return None  # an unknown name is a validation error; validate runs first


def _lxc_options(spec: GuestSpec, host: PhysicalHost, vlans: list[Vlan]) -> dict[str, str | int]:
    options: dict[str, str | int] = {}
    if spec.ostemplate:
        options["ostemplate"] = spec.ostemplate
    if spec.unprivileged is not None:
        options["unprivileged"] = int(spec.unprivileged)
    if spec.rootfs is not None:
        options["rootfs"] = f"{spec.rootfs.storage}:{_gib(spec.rootfs.size)}"
    for index, mount in enumerate(spec.bind_mounts):
        read_only = ",ro=1" if mount.read_only else ""
        options[f"mp{index}"] = f"{mount.source},mp={mount.path}{read_only}"
    for index, nic in enumerate(spec.nics):
        options[f"net{index}"] = _lxc_nic(index, nic, vlans)
    for index, path in enumerate(_device_nodes(_gpus(spec, host), host)):
        options[f"dev{index}"] = path
    return options


def _lxc_nic(index: int, nic: GuestNic, vlans: list[Vlan]) -> str:
    parts = [f"name=eth{index}", f"bridge={nic.bridge}"]
    if nic.firewall:
        parts.append("firewall=1")
    if nic.ip is not None:
        ip = "dhcp" if nic.ip == "dhcp" else nic.ip.with_prefixlen
        is_v6 = nic.ip != "dhcp" and nic.ip.version == 6
        parts.append(f"{'ip6' if is_v6 else 'ip'}={ip}")
        gateway = _gateway(nic, vlans) if nic.ip != "dhcp" else ""
        if gateway:
            parts.append(f"{'gw6' if is_v6 else 'gw'}={gateway}")
    if nic.mac:
        parts.append(f"hwaddr={nic.mac.upper()}")
    vlan = _vlan(nic, vlans)
    if vlan is not None:
        parts.append(f"tag={vlan.id}")
    return ",".join(parts)


def _device_nodes(gpus: list[Gpu], host: PhysicalHost) -> list[str]:
    """The device nodes that give a container a host-mode GPU.

    The NVIDIA driver numbers ``/dev/nvidiaN`` by PCI order among the cards it drives, and
    the DRM subsystem numbers render nodes the same way, so the host's host-mode GPUs in
    address order give each card's index (cards bound to vfio-pci are not counted).
    """
    driven = sorted((g for g in host.spec.gpus if g.mode == "host"), key=lambda g: g.pci)
    nodes: list[str] = []
    for gpu in gpus:
        if gpu.mode != "host":
            continue
        vendor = gpu.vendor_device.split(":")[0]
        if vendor == NVIDIA:
            nvidia = [g for g in driven if g.vendor_device.startswith(NVIDIA)]
            nodes.append(f"/dev/nvidia{nvidia.index(gpu)}")
            nodes.extend(node for node in NVIDIA_CONTROL_NODES if node not in nodes)
        else:
            others = [g for g in driven if not g.vendor_device.startswith(NVIDIA)]
            nodes.append(f"/dev/dri/renderD{FIRST_RENDER_NODE + others.index(gpu)}")
            if vendor == AMD and "/dev/kfd" not in nodes:
                nodes.append("/dev/kfd")  # ROCm's compute interface
    return nodes


def _gib(size: int) -> str:
    """PVE's new-volume size is in GiB; fractions are allowed (``0.5``)."""
    return f"{size / GIB:g}"
