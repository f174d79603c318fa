"""Parse ``nvidia-smi topo -m``: how each pair of GPUs is linked, and each GPU's CPU and NUMA
affinity.

The matrix has one column per device (``GPU0``.., then NICs as ``NIC0``.. or ``mlx5_0``..),
then ``CPU Affinity`` and, since about driver 450, ``NUMA Affinity``, and since about driver
530 ``GPU NUMA ID``; cells are separated by tabs (what nvidia-smi prints) or by runs of
spaces (what a forum paste or a terminal copy leaves). Empty cells are not kept apart by
either, so the affinity columns are read by position from the left, and the NIC rows and
columns are skipped. The legend (nvidia-smi's own words):

  X    = Self
  SYS  = Connection traversing PCIe as well as the SMP interconnect between NUMA nodes
  NODE = Connection traversing PCIe as well as the interconnect between PCIe Host Bridges
         within a NUMA node
  PHB  = Connection traversing PCIe as well as a PCIe Host Bridge (typically the CPU)
  PXB  = Connection traversing multiple PCIe bridges (without traversing the PCIe Host Bridge)
  PIX  = Connection traversing at most a single PCIe bridge
  NV#  = Connection traversing a bonded set of # NVLinks

Drivers before the NODE level existed wrote ``SOC`` ("the SMP link between CPU sockets")
where newer ones write ``SYS``; it is read as ``SYS``.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PCIE_LINKS = ("X", "PIX", "PXB", "PHB", "NODE", "SYS")
_OLD_NAMES = {"SOC": "SYS"}
_NVLINK = re.compile(r"^NV\d+$")
_GPU = re.compile(r"^GPU(\d+)$")
# A tab, or two spaces or more: "CPU Affinity" keeps its one space.
_CELL_SEPARATOR = re.compile(r"\t+| {2,}")
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
_AFFINITY_COLUMNS = ("CPU Affinity", "NUMA Affinity", "GPU NUMA ID")
_NOT_APPLICABLE = {"N/A", ""}


@dataclass(frozen=True)
class GpuTopology:
    """One GPU row of ``nvidia-smi topo -m``.

    ``links`` maps every GPU index (this one included, as ``X``) to the link level:
    ``X``, ``NV<n>``, ``PIX``, ``PXB``, ``PHB``, ``NODE`` or ``SYS``. ``numa_node`` is the
    NUMA Affinity column (the CPU side's node), None where the driver did not print one.
    """

    index: int
    numa_node: int | None
    cpu_affinity: str | None  # "0-55,112-167", as printed
    links: Mapping[int, str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "numa_node": self.numa_node,
            "cpu_affinity": self.cpu_affinity,
            "links": {str(other): link for other, link in sorted(self.links.items())},
        }


def parse_nvidia_topo(text: str) -> tuple[GpuTopology, ...]:
    """The GPUs of a ``nvidia-smi topo -m`` matrix, in index order; () when it shows none."""
    lines = [_COLOUR.sub("", line) for line in text.splitlines()]
    header_at = next((i for i, line in enumerate(lines) if _is_header(_cells(line))), None)
    if header_at is None:
        return ()
    columns = _cells(lines[header_at])
    devices = [name for name in columns if name not in _AFFINITY_COLUMNS]
    affinity_columns = columns[len(devices) :]
    gpu_columns = {position: int(m[1]) for position, m in _gpu_matches(devices)}
    rows: dict[int, GpuTopology] = {}
    for line in lines[header_at + 1 :]:
        cells = _cells(line)
        if not cells:
            continue
        if cells[0].rstrip(":") == "Legend":
            break
        label = _GPU.match(cells[0])
        if label is None:
            continue  # a NIC row
        rows[int(label[1])] = _parse_row(
            int(label[1]), cells[1:], devices, gpu_columns, affinity_columns
        )
    if set(rows) != set(gpu_columns.values()):
        raise ValueError(
            f"the matrix has columns for GPUs {sorted(gpu_columns.values())} "
            f"but rows for {sorted(rows)}"
        )
    return tuple(rows[index] for index in sorted(rows))


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in _CELL_SEPARATOR.split(line.strip()) if cell.strip()]


def _is_header(cells: list[str]) -> bool:
    """The column line names GPU0 and holds no link cell ("X" is on every device row)."""
    return "GPU0" in cells and "X" not in cells


def _gpu_matches(devices: list[str]) -> list[tuple[int, re.Match[str]]]:
    return [(i, m) for i, name in enumerate(devices) if (m := _GPU.match(name)) is not None]


def _parse_row(
    index: int,
    cells: list[str],
    devices: list[str],
    gpu_columns: dict[int, int],
    affinity_columns: list[str],
) -> GpuTopology:
    if len(cells) < len(devices):
        raise ValueError(
            f"GPU{index}: {len(cells)} link cells for {len(devices)} device columns "
            "(a capture cut short?)"
        )
    links = {gpu_columns[position]: _link(index, cells[position]) for position in gpu_columns}
    if links.get(index) != "X":
        raise ValueError(f"GPU{index}: its own column says {links.get(index)!r}, not X")
    affinity = dict(zip(affinity_columns, cells[len(devices) :], strict=False))
    numa = affinity.get("NUMA Affinity", "")
    cpus = affinity.get("CPU Affinity", "")
    return GpuTopology(
        index=index,
        numa_node=int(numa) if numa.isdigit() else None,  # "N/A", or "0-1" in some VMs
        cpu_affinity=None if cpus in _NOT_APPLICABLE else cpus,
        links=links,
    )


def _link(index: int, cell: str) -> str:
    link = _OLD_NAMES.get(cell, cell)
    if link in PCIE_LINKS or _NVLINK.match(link):
        return link
    raise ValueError(f"GPU{index}: {cell!r} is not a link level nvidia-smi's legend names")
