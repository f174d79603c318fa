"""Sizes as people write them in an inventory: ``32G``, ``512M``, ``2T``, ``24GiB``.

Units are binary (K = 1024), the convention of Proxmox VE (``memory``, ``size=32G``),
``lsblk`` and ``nvidia-smi``. A bare number is refused: ``memory: 16384`` means MiB to
Proxmox but bytes to most other tools, and guessing wrong by a factor of a million is not
a mistake a validator should let through.
"""

import math
import re

MIB = 1024**2
GIB = 1024**3
_UNITS = {"K": 1024, "M": MIB, "G": GIB, "T": 1024**4, "P": 1024**5}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP])(?:i?B)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Return the number of bytes ``text`` names, or raise ValueError saying how to write it."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size; write a number with a unit, e.g. 32G, 512M, 2T")
    number, unit = match.groups()
    size = float(number) * _UNITS[unit.upper()]
    if not math.isfinite(size):
        raise ValueError(f"{text[:40]!r} is too large to be a size")
    return int(size)


def format_size(size_bytes: int) -> str:
    """The shortest exact-looking form: 34359738368 -> '32G', 1610612736 -> '1.5G'."""
    for unit in ("P", "T", "G", "M", "K"):
        scale = _UNITS[unit]
        if size_bytes >= scale:
            value = size_bytes / scale
            return f"{value:.0f}{unit}" if value == int(value) else f"{value:.1f}{unit}"
    return f"{size_bytes}B"
