"""Parse the GPU vendors' own tools: ``nvidia-smi -q -x`` and ``rocm-smi --showallinfo --json``.

Both are machine formats, so input that does not parse as XML or JSON (or whose top level
is not what the tool writes) raises ValueError; fields a schema version lacks are None.
"""

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import cast

from labsmith.facts.model import MigDevice, NvidiaGpu, NvidiaSmiReport, RocmGpu
from labsmith.facts.parse_pci import normalise_address
from labsmith.facts.parse_system import load_json

# ---- nvidia-smi -q -x ----------------------------------------------------------------------

# "24564 MiB", "0 B", "1.5 GiB": nvidia-smi's memory amounts, binary units
_MEMORY_AMOUNT = re.compile(r"^(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[KMGT]iB|B)?$")
_BINARY_UNITS = {None: 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4}
# What nvidia-smi writes for a value that does not apply (MIG on a GeForce, for one).
_NOT_APPLICABLE = {"N/A", "None", ""}
_ON_OFF = {"Enabled": True, "Disabled": False, "Yes": True, "No": False}
# Where a MIG device's profile name would be: nvidia-smi's XML carries none as of schema
# v13, but a future one may, and wrappers that annotate the XML use these names.
_MIG_PROFILE_TAGS = ("profile", "profile_name", "gpu_instance_profile")
# <pci_device_id>221610DE</pci_device_id> (the text form prints "0x221610DE"): the PCI
# config space's first dword, device id in the high 16 bits and vendor id in the low 16.
_PCI_DEVICE_ID = re.compile(r"^(?:0x)?(?P<device>[0-9a-f]{4})(?P<vendor>[0-9a-f]{4})$", re.I)


def parse_nvidia_smi_xml(text: str) -> NvidiaSmiReport:
    """Every ``<gpu>`` of ``nvidia-smi -q -x``, schema versions v10 to v13."""
    root = _parse_xml(text)
    if root.tag != "nvidia_smi_log":
        raise ValueError(f"not nvidia-smi -q -x output: the root element is <{root.tag}>")
    attached = _text(root, "attached_gpus")
    return NvidiaSmiReport(
        driver_version=_text(root, "driver_version"),
        cuda_version=_text(root, "cuda_version"),
        attached_gpus=int(attached) if attached and attached.isdigit() else None,
        gpus=tuple(_parse_gpu(gpu) for gpu in root.findall("gpu")),
    )


def _parse_xml(text: str) -> ET.Element:
    # The captures start with <!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_vNN.dtd">.
    # ElementTree's expat parser never fetches an external DTD or external entities, and
    # expat (>= 2.4.1) refuses entity-expansion bombs, so a hostile file cannot make this
    # read the network or the disk; defusedxml is not a dependency for that reason.
    try:
        return ET.fromstring(text.lstrip())  # noqa: S314 -- see above
    except ET.ParseError as error:
        raise ValueError(f"not XML: {error}") from None


def _parse_gpu(gpu: ET.Element) -> NvidiaGpu:
    return NvidiaGpu(
        pci_address=normalise_address(gpu.get("id") or _text(gpu, "pci/pci_bus_id") or ""),
        product_name=_text(gpu, "product_name") or "",
        uuid=_text(gpu, "uuid"),
        vram_total_bytes=_memory(gpu, "fb_memory_usage/total"),
        vram_used_bytes=_memory(gpu, "fb_memory_usage/used"),
        bar1_total_bytes=_memory(gpu, "bar1_memory_usage/total"),
        mig_current=_text(gpu, "mig_mode/current_mig"),
        mig_pending=_text(gpu, "mig_mode/pending_mig"),
        mig_devices=tuple(
            _parse_mig_device(position, mig)
            for position, mig in enumerate(gpu.findall("mig_devices/mig_device"))
        ),
        display_active=_on_off(gpu, "display_active"),
        display_attached=_display_attached(gpu),
        persistence_mode=_on_off(gpu, "persistence_mode"),
        processes=tuple(
            name
            for process in gpu.findall("processes/process_info")
            if (name := _text(process, "process_name")) is not None
        ),
        vendor_device=_vendor_device(_text(gpu, "pci/pci_device_id")),
        reserved_bytes=_memory(gpu, "fb_memory_usage/reserved"),
    )


def _vendor_device(pci_device_id: str | None) -> str | None:
    ids = _PCI_DEVICE_ID.match(pci_device_id) if pci_device_id else None
    return f"{ids['vendor']}:{ids['device']}".lower() if ids else None


def _parse_mig_device(position: int, mig: ET.Element) -> MigDevice:
    index = _text(mig, "index")
    profile = next((found for tag in _MIG_PROFILE_TAGS if (found := _text(mig, tag))), None)
    return MigDevice(
        index=int(index) if index and index.isdigit() else position,
        profile=profile,
        memory_bytes=_memory(mig, "fb_memory_usage/total"),
    )


def _display_attached(gpu: ET.Element) -> bool | None:
    # Schema v13 replaced <display_mode> (Enabled/Disabled) with <display_attached>
    # (Yes/No) and left "Requested functionality has been deprecated" in the old tag.
    attached = _on_off(gpu, "display_attached")
    return attached if attached is not None else _on_off(gpu, "display_mode")


def _text(element: ET.Element, path: str) -> str | None:
    """The stripped text at path, None when absent or "N/A"."""
    found = element.find(path)
    if found is None or found.text is None:
        return None
    value = found.text.strip()
    return None if value in _NOT_APPLICABLE else value


def _on_off(element: ET.Element, path: str) -> bool | None:
    value = _text(element, path)
    return _ON_OFF.get(value) if value is not None else None


def _memory(element: ET.Element, path: str) -> int | None:
    value = _text(element, path)
    amount = _MEMORY_AMOUNT.match(value) if value is not None else None
    if amount is None:
        return None
    size = float(amount["number"]) * _BINARY_UNITS[amount["unit"]]
    return int(size) if math.isfinite(size) else None


# ---- rocm-smi --json -----------------------------------------------------------------------

# "card0": one GPU's entry
_CARD_KEY = re.compile(r"^card(?P<number>\d+)$")
# "{" opening a line: rocm-smi may print warnings ("WARNING: ... could not be read") before
# its JSON, which starts there.
_JSON_START = re.compile(r"^\{", re.MULTILINE)
# Older rocm-smi releases name the product by series, newer by SKU or model; the first
# that is shown (and not "N/A") names it. Key case differs between releases too.
_PRODUCT_KEYS = ("card series", "card sku", "card model", "device name")
# rocm-smi 4.x wrote AMD's vendor id into every "Card ..." key: that names no product.
_VENDOR_ID_AS_PRODUCT = "0x1002"
# The device id: "Device ID" since ROCm 5, "GPU ID" before; "0x738c".
_DEVICE_ID_KEYS = ("device id", "gpu id")
_DEVICE_ID = re.compile(r"^(?:0x)?(?P<device>[0-9a-f]{1,4})$", re.IGNORECASE)
# rocm-smi reports AMD GPUs only (amdgpu's sysfs), so the vendor is AMD's PCI id.
_AMD_VENDOR_ID = "1002"
_PCI_BUS_KEY = "pci bus"
_VRAM_TOTAL_KEY = "vram total memory (b)"
_VRAM_USED_KEY = "vram total used memory (b)"
# --showmeminfo vis_vram (in --showallinfo): the CPU-visible part of VRAM, the BAR's size.
_VISIBLE_VRAM_TOTAL_KEY = "vis_vram total memory (b)"
_GFX_VERSION_KEY = "gfx version"
_GFX_TARGET = re.compile(r"^gfx[0-9a-f]{3,4}$")
_SYSTEM_KEY = "system"
_DRIVER_VERSION_KEY = "driver version"


def parse_rocm_smi_json(text: str) -> tuple[RocmGpu, ...]:
    """The ``cardN`` entries of ``rocm-smi --showallinfo --json`` (or of any subset of its
    options), in card order."""
    document = _parse_json_object(text)
    system = _lowercase_keys(document.get(_SYSTEM_KEY))
    driver_version = _json_text(system, _DRIVER_VERSION_KEY)
    cards = sorted(
        (int(card["number"]), key)
        for key in document
        if (card := _CARD_KEY.match(key)) is not None and isinstance(document[key], dict)
    )
    return tuple(_parse_card(key, document[key], driver_version) for _, key in cards)


def _parse_json_object(text: str) -> dict[str, object]:
    opening = _JSON_START.search(text)
    document = load_json(text[opening.start() :] if opening else text, "rocm-smi --json")
    if not isinstance(document, dict):
        raise ValueError(f"not rocm-smi --json output: a JSON {type(document).__name__}")
    return cast(dict[str, object], document)


def _parse_card(card: str, fields: object, driver_version: str | None) -> RocmGpu:
    values = _lowercase_keys(fields)
    address = _json_text(values, _PCI_BUS_KEY)
    return RocmGpu(
        card=card,
        pci_address=normalise_address(address) if address else None,
        product_name=next(
            (
                found
                for key in _PRODUCT_KEYS
                if (found := _json_text(values, key)) and found.lower() != _VENDOR_ID_AS_PRODUCT
            ),
            None,
        ),
        vram_total_bytes=_json_int(values, _VRAM_TOTAL_KEY),
        vram_used_bytes=_json_int(values, _VRAM_USED_KEY),
        driver_version=driver_version,
        vendor_device=_amd_vendor_device(values),
        visible_vram_bytes=_json_int(values, _VISIBLE_VRAM_TOTAL_KEY),
        gfx_target=_gfx_target(values),
    )


def _gfx_target(values: Mapping[str, object]) -> str | None:
    text = _json_text(values, _GFX_VERSION_KEY)
    return text.strip().lower() if text and _GFX_TARGET.match(text.strip().lower()) else None


def _amd_vendor_device(values: Mapping[str, object]) -> str | None:
    for key in _DEVICE_ID_KEYS:
        text = _json_text(values, key)
        device = _DEVICE_ID.match(text) if text else None
        if device is not None:
            return f"{_AMD_VENDOR_ID}:{int(device['device'], 16):04x}"
    return None


def _lowercase_keys(value: object) -> dict[str, object]:
    if not isinstance(value, Mapping):
        return {}
    return {str(key).lower(): item for key, item in value.items()}


def _json_text(values: Mapping[str, object], key: str) -> str | None:
    value = values.get(key)
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return None if text in _NOT_APPLICABLE else text


def _json_int(values: Mapping[str, object], key: str) -> int | None:
    text = _json_text(values, key)
    return int(text) if text is not None and text.isdigit() else None
