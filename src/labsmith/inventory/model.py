"""The typed lab: what an inventory's ``labsmith_*`` variables say, after Ansible resolved them.

Each class mirrors one variable (or one list item of it) so that a schema error's location
is already the key path a user reads in their YAML (``labsmith_gpus[1].pci``). Field aliases
carry the variable names; Python code uses the short names.

Checks that need more than one value (a VLAN tag on a bridge that is not VLAN-aware, a GPU
given to two guests) are not here: they live in ``labsmith.inventory.rules``.
"""

import ipaddress
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from labsmith.inventory.sources import VaultedValue
from labsmith.units import parse_size


def _size(value: object) -> object:
    if isinstance(value, str):
        return parse_size(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return value  # pydantic reports the type error
    raise ValueError(f"{value} has no unit; write it as a size such as {value}M or {value}G")


def _quoted(example: str) -> Callable[[object], object]:
    """YAML 1.1 reads unquoted ``01:00.0`` or ``1002:6798`` as base-60 numbers (60.0, 66918):
    say so instead of "should be a valid string"."""

    def check(value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(
                f"{value!r} is a number: YAML reads unquoted values with colons as base-60 "
                f'numbers; quote it, e.g. "{example}"'
            )
        return value

    return check


def _pci_address(value: str) -> str:
    """Accept ``01:00.0`` or ``0000:01:00.0``; store the full form ``lspci -D`` prints."""
    if not re.fullmatch(r"([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-1][0-9a-fA-F]\.[0-7]", value):
        raise ValueError(
            f"{value!r} is not a PCI address; write it as lspci -D shows it, e.g. 0000:01:00.0"
        )
    return (value if value.count(":") == 2 else f"0000:{value}").lower()


def _vendor_device(value: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{4}:[0-9a-fA-F]{4}", value):
        raise ValueError(
            f"{value!r} is not a vendor:device id; copy the [10de:2684] pair from lspci -nn"
        )
    return value.lower()


def _ip_interface(value: object) -> object:
    """``10.0.0.5/24`` -> an interface; a bare address is refused because the prefix decides
    which gateway is reachable."""
    if value == "dhcp" or not isinstance(value, str):
        return value
    if "/" not in value:
        raise ValueError(
            f"{value!r} has no prefix length; write it as address/prefix, e.g. {value}/24"
        )
    try:
        return ipaddress.ip_interface(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IP address with prefix; write e.g. 10.0.20.5/24"
        ) from None


def _ip_network(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return ipaddress.ip_network(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a subnet; write the network address and prefix, e.g. 10.0.20.0/24"
        ) from None


def _ip_address(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address; write e.g. 10.0.20.1") from None


Size = Annotated[int, BeforeValidator(_size)]
PciAddress = Annotated[str, BeforeValidator(_quoted("0000:01:00.0")), AfterValidator(_pci_address)]
VendorDevice = Annotated[str, BeforeValidator(_quoted("10de:2684")), AfterValidator(_vendor_device)]
MacAddress = Annotated[
    str,
    BeforeValidator(_quoted("bc:24:11:00:00:01")),
    Field(pattern=r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$"),
]
IpInterface = Annotated[
    Literal["dhcp"] | ipaddress.IPv4Interface | ipaddress.IPv6Interface,
    BeforeValidator(_ip_interface),
]
IpNetwork = Annotated[ipaddress.IPv4Network | ipaddress.IPv6Network, BeforeValidator(_ip_network)]
IpAddress = Annotated[ipaddress.IPv4Address | ipaddress.IPv6Address, BeforeValidator(_ip_address)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=63)]
# Proxmox VE's pve-storage-id format: starts with a letter, then letters, digits, - _ .
StorageId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9\-_.]*[a-z0-9]$")]
# A VLAN is named (a key of labsmith_vlans) or given as its 802.1Q tag; the tag's range is
# a cross-check so that the message can name the bridge too.
VlanRef = int | Name


class Strict(BaseModel):
    """Unknown keys are errors: a typo such as ``vlan_awre`` must not silently do nothing."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


# ---- lab-wide ------------------------------------------------------------------------


class Vlan(Strict):
    name: Name
    id: int
    subnet: IpNetwork | None = None
    gateway: IpAddress | None = None
    description: str = ""


# ---- physical host -------------------------------------------------------------------


class Cpu(Strict):
    vendor: Literal["intel", "amd"]
    model: str = ""
    cores: int = Field(ge=1)
    threads: int | None = Field(default=None, ge=1)

    @property
    def vcpus(self) -> int:
        """What Proxmox lets a guest's ``cores`` reach: the hardware threads."""
        return self.threads or self.cores


# Values with a fixed set of cases, shared by every package that carries them further.
GpuMode = Literal["passthrough", "host"]
GuestType = Literal["qemu", "lxc"]


class Gpu(Strict):
    name: Name
    model: str = ""
    pci: PciAddress
    vendor_device: VendorDevice
    vram: Size
    mode: GpuMode
    # The GPU that shows the console or a desktop: its VRAM is partly taken and it is
    # the hardest to hand to a VM.
    display: bool = False


class Nic(Strict):
    name: Name
    mac: MacAddress | None = None
    speed: str = ""


class Bridge(Strict):
    name: Name
    ports: list[Name] = []
    vlan_aware: bool = False
    ip: IpInterface | None = None
    gateway: IpAddress | None = None
    # The VLAN the host's own address lives on (vmbr0.30 on Proxmox, br0.30 elsewhere).
    vlan: VlanRef | None = None


class Disk(Strict):
    id: str
    model: str = ""
    serial: str = ""
    size: Size | None = None


class Storage(Strict):
    id: StorageId
    layout: Literal["mirror", "single", "existing"]
    backend: Literal["zfs", "mdadm", "lvm-thin", "dir"]
    filesystem: Literal["ext4", "xfs"] | None = None
    disks: list[str] = []
    mount: str | None = None
    pool: Name | None = None
    content: list[Literal["images", "rootdir", "backup", "iso", "vztmpl", "snippets"]] = [
        "images",
        "rootdir",
    ]


class Mount(Strict):
    source: str
    path: str
    type: Literal["nfs", "nfs4", "cifs", "bind"]
    options: str = ""


class ModelRef(Strict):
    """A model a service serves, with the settings that decide its memory."""

    name: str
    quant: str | None = None
    context: int = Field(default=4096, ge=1)
    parallel: int = Field(default=1, ge=1)
    kv_cache: Literal["f16", "q8_0", "q4_0"] = "f16"


ServiceKind = Literal[
    "ollama",
    "vllm",
    "llama_cpp",
    "open_webui",
    "qdrant",
    "chromadb",
    "postgresql",
    "redis",
    "prometheus",
    "grafana",
    "node_exporter",
    "nvidia_exporter",
    "loki",
    "pbs",
    "restic",
]


class Service(Strict):
    name: Name
    kind: ServiceKind
    port: int | None = Field(default=None, ge=1, le=65535)
    runtime: Literal["native", "container"] = "native"
    image: str | None = None
    gpus: list[Name] = []
    models: list[ModelRef] = []
    data_dir: str | None = None
    # The model server's own settings that change what fits (labsmith.sizing): Ollama's
    # scheduler differs by release (default: a current one); vLLM's memory budget.
    ollama_version: Annotated[str, Field(pattern=r"^v?\d+\.\d+(\.\d+)?$")] | None = None
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    max_num_batched_tokens: int | None = Field(default=None, ge=1)


# ---- guest -----------------------------------------------------------------------------


class GuestDisk(Strict):
    storage: StorageId
    size: Size
    slot: Annotated[str, Field(pattern=r"^(scsi|virtio|sata|ide)\d+$")] | None = None


class RootFs(Strict):
    storage: StorageId
    size: Size


class GuestNic(Strict):
    bridge: Name
    vlan: VlanRef | None = None
    ip: IpInterface | None = None
    gateway: IpAddress | None = None
    mac: MacAddress | None = None
    firewall: bool = False


def _mount_point_path(value: str) -> str:
    """A bind mount's host directory or its place in the container. Both go into PVE's
    ``mpN`` property string (split at ``,`` and ``=``) and into the ``pct set`` command that
    labsmith prints for root to run; PVE itself refuses ``.``/``..`` components
    (pve-container's verify_lxc_mp_string). The messages show the offending characters,
    not the value, which may hold anything."""
    if not value.startswith("/"):
        raise ValueError("not an absolute path; write it from the root, e.g. /tank/models")
    bad = [char for char in dict.fromkeys(value) if char in ",=" or not char.isprintable()]
    bad += [char for char in dict.fromkeys(value) if char.isspace() and char not in bad]
    if bad:
        shown = " ".join(repr(char) for char in bad)
        raise ValueError(
            f"the path contains {shown}: a Proxmox mount point cannot hold ',', '=', "
            "whitespace or control characters; rename the directory, or bind a parent "
            "directory whose path has none"
        )
    if any(part in (".", "..") for part in value.split("/")):
        raise ValueError(
            "the path has a '.' or '..' component, which Proxmox refuses; write it without them"
        )
    return value


MountPointPath = Annotated[str, AfterValidator(_mount_point_path)]


class BindMount(Strict):
    source: MountPointPath
    path: MountPointPath
    read_only: bool = False


class CloudInit(Strict):
    user: str = "labsmith"
    ssh_keys: list[str] = []
    nameserver: IpAddress | None = None
    searchdomain: str | None = None


class GuestSpec(Strict):
    """A Proxmox VE guest: the ``labsmith_guest`` variable of a guest's inventory entry."""

    type: GuestType
    node: Name
    vmid: int = Field(ge=100, le=999_999_999)  # Proxmox VE's pve-vmid range
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$")] | None = None
    cores: int = Field(ge=1)
    memory: Size
    nics: list[GuestNic] = []
    gpus: list[Name] = []
    onboot: bool = True
    tags: list[Name] = []
    description: str = ""
    # qemu only
    machine: Literal["q35", "i440fx"] | None = None
    bios: Literal["ovmf", "seabios"] | None = None
    disks: list[GuestDisk] = []
    image: str | None = None
    cloud_init: CloudInit | None = None
    # lxc only
    rootfs: RootFs | None = None
    ostemplate: str | None = None
    unprivileged: bool | None = None
    bind_mounts: list[BindMount] = []


NOT_SHOWN = "<not shown>"


def _vaulted_secret(value: object) -> object:
    """A token secret is accepted only as an inline ``!vault`` value: a plain one in YAML ends
    up in git and backups. The message never repeats the value."""
    if isinstance(value, VaultedValue):
        return value
    raise ValueError(
        "a secret written in plain YAML; encrypt it with 'ansible-vault encrypt_string' (an "
        "inline !vault value), or remove it and export it in the environment variable that "
        "token_secret_env (LABSMITH_PVE_TOKEN_SECRET) or root_password_env "
        "(LABSMITH_PVE_ROOT_PASSWORD) names"
    )


class PveApi(Strict):
    """How labsmith reaches a Proxmox host's API: an API token, TLS verified.

    A secret pasted under the wrong key must not reach a terminal or a log: findings about
    these keys never repeat their values (inventory.schema), and a dump (``validate
    --json``) shows only the url, which cannot hold a credential, and which keys are set."""

    # Default: https://<ansible_host or the host's name>:8006. No user:password@ part.
    url: Annotated[str, Field(pattern=r"^https://[^\s/@]+(:\d+)?/?$")] | None = None
    token_id: Annotated[str, Field(pattern=r"^[^\s:/@]+@[A-Za-z][\w.-]+![A-Za-z][\w.-]+$")]
    token_secret: Annotated[VaultedValue, PlainValidator(_vaulted_secret)] | None = None
    token_secret_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] = (
        "LABSMITH_PVE_TOKEN_SECRET"  # noqa: S105 - the name of a variable, not a secret
    )
    # The node's /etc/pve/pve-root-ca.pem copied next to the inventory (relative to it).
    ca_file: str | None = None
    # Optional: PVE lets only root@pam itself (a password login, never a token) set a
    # container's bind mounts and devices. Without it labsmith prints the pct command.
    root_password: Annotated[VaultedValue, PlainValidator(_vaulted_secret)] | None = None
    root_password_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] = (
        "LABSMITH_PVE_ROOT_PASSWORD"  # noqa: S105 - the name of a variable, not a secret
    )

    @model_serializer(mode="wrap")
    def _without_values(self, serialize: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = serialize(self)
        return {
            key: value
            if key == "url" or value is None or isinstance(getattr(self, key), VaultedValue)
            else NOT_SHOWN
            for key, value in dumped.items()
        }


# ---- per inventory host --------------------------------------------------------------


class LabWideVars(Strict):
    """Variables any host may carry, normally set once in group_vars/all.yml."""

    vlans: list[Vlan] = Field(default=[], alias="labsmith_vlans")
    # Proxmox hosts that share a cluster share one VMID space.
    cluster: Name | None = Field(default=None, alias="labsmith_cluster")


class PhysicalHostVars(LabWideVars):
    kind: Literal["proxmox", "metal"] = Field(alias="labsmith_kind")
    cpu: Cpu = Field(alias="labsmith_cpu")
    memory: Size = Field(alias="labsmith_memory")
    gpus: list[Gpu] = Field(default=[], alias="labsmith_gpus")
    nics: list[Nic] = Field(default=[], alias="labsmith_nics")
    bridges: list[Bridge] = Field(default=[], alias="labsmith_bridges")
    disks: list[Disk] = Field(default=[], alias="labsmith_disks")
    storage: list[Storage] = Field(default=[], alias="labsmith_storage")
    mounts: list[Mount] = Field(default=[], alias="labsmith_mounts")
    services: list[Service] = Field(default=[], alias="labsmith_services")
    pve_api: PveApi | None = Field(default=None, alias="labsmith_pve_api")
    # The roles reboot a host only when its kernel command line or driver binding changed,
    # and only with this set.
    allow_reboot: bool = Field(default=False, alias="labsmith_allow_reboot")


class GuestVars(LabWideVars):
    guest: GuestSpec = Field(alias="labsmith_guest")
    mounts: list[Mount] = Field(default=[], alias="labsmith_mounts")
    services: list[Service] = Field(default=[], alias="labsmith_services")


LAB_WIDE_VARIABLES = frozenset(
    field.alias for field in LabWideVars.model_fields.values() if field.alias
)
