"""Proxmox VE property strings (``virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=30``), client side.

PVE stores option values as comma-separated ``key=value`` lists whose first item may omit
its key (the format's default key: a disk's volume, a NIC's model=MAC pair). The planner
compares what it asks for with what PVE wrote back, so it reads both through here.
"""

# qemu NIC models: ``virtio=<mac>`` names the model and carries the MAC (qemu-server's
# keyAlias), so the first item of a qemu ``netN`` is never a plain key.
NIC_MODELS = frozenset(
    {"e1000", "e1000-82540em", "e1000-82544gc", "e1000-82545em", "e1000e", "i82551", "i82557b",
     "i82559er", "ne2k_isa", "ne2k_pci", "pcnet", "rtl8139", "virtio", "vmxnet3"}
)  # fmt: skip


def parse(value: object, default_key: str = "") -> dict[str, str]:
    """``fast:vm-110-disk-0,size=32G`` with default_key ``volume`` -> {volume: ..., size: 32G}.

    A qemu NIC's ``virtio=BC:...`` item becomes ``model`` and ``macaddr``.
    """
    result: dict[str, str] = {}
    for position, item in enumerate(str(value).split(",")):
        if not item:
            continue
        key, separator, text = item.partition("=")
        if position == 0 and key in NIC_MODELS:
            result["model"] = key
            if separator:
                result["macaddr"] = text
        elif separator:
            result[key] = text
        elif position == 0 and default_key:
            result[default_key] = item
        else:
            result[item] = "1"
    return result


def render(values: dict[str, str], default_key: str = "") -> str:
    """The inverse of ``parse``: the default key (or model=MAC) first, the rest in order."""
    remaining = dict(values)
    parts: list[str] = []
    if "model" in remaining:
        model = remaining.pop("model")
        mac = remaining.pop("macaddr", "")
        parts.append(f"{model}={mac}" if mac else model)
    if default_key and default_key in remaining:
        parts.append(remaining.pop(default_key))
    parts.extend(f"{key}={text}" for key, text in remaining.items())
    return ",".join(parts)


def size_bytes(text: str) -> int | None:
    """PVE's ``size=`` notation (``528K``, ``32G``, ``1T``, plain bytes) in bytes."""
    factors = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    unit = text[-1:].upper()
    number = text[:-1] if unit in factors else text
    try:
        return int(float(number) * factors.get(unit, 1))
    except ValueError:
        return None
