"""Which GPUs to give one vLLM server for tensor parallelism, judged from ``nvidia-smi topo -m``.

Tensor parallelism all-reduces every layer's activations across its GPUs, so it runs at the
speed of the slowest pair. A pair linked over NVLink (``NV#``) or through PCIe switches only
(``PIX``, ``PXB``) exchanges data peer to peer; one linked through ``NODE`` (between host
bridges) or ``SYS`` (across the CPU sockets' interconnect) goes through the CPUs, and NCCL's
P2P levels (docs.nvidia.com/deeplearning/nccl, "NCCL_P2P_LEVEL": NVL, PIX, PXB, PHB, SYS)
rank them in that order. GPUs on different NUMA nodes also pin their host threads and
buffers to different sockets. A set with either is worth replacing by one without, when the
host has one of the same size.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

from labsmith.facts.parse_topology import GpuTopology

# nvidia-smi's legend for the two levels that leave the PCIe tree.
HOST_ROUTED = {
    "NODE": "NODE: between PCIe host bridges within a NUMA node",
    "SYS": "SYS: across the SMP interconnect between NUMA nodes",
}
# Worst first, for naming the slowest pair; NV# ranks by its bonded link count.
_PCIE_RANK = {"SYS": 0, "NODE": 1, "PHB": 2, "PXB": 3, "PIX": 4}
# Groups of one size on a 16-GPU host: at most C(16, 8) = 12870, cheap to try them all.
MAX_GPUS_SEARCHED = 16


@dataclass(frozen=True, order=True)
class _Cost:
    """Lower is better: NUMA nodes spanned, host-routed pairs, then the links' sum."""

    numa_nodes: int
    host_routed_pairs: int
    link_penalty: int


def tensor_parallel_advice(
    topology: Sequence[GpuTopology], gpu_indices: Iterable[int]
) -> str | None:
    """Advice when ``gpu_indices`` span NUMA nodes or have a pair linked only through
    NODE/SYS; None when the set is fine, has fewer than two GPUs, or nothing better exists
    and nothing is wrong. Raises ValueError for an index the topology does not have."""
    by_index = {gpu.index: gpu for gpu in topology}
    chosen = tuple(sorted(set(gpu_indices)))
    missing = [index for index in chosen if index not in by_index]
    if missing:
        known = ", ".join(str(index) for index in sorted(by_index)) or "none"
        raise ValueError(f"GPU {missing[0]} is not in the topology (its GPUs: {known})")
    if len(chosen) < 2:
        return None
    cost = _cost(by_index, chosen)
    if cost.numa_nodes <= 1 and cost.host_routed_pairs == 0:
        return None
    problems = _problems(by_index, chosen)
    better = _best_group(by_index, len(chosen))
    advice = f"GPUs {_names(chosen)} for tensor parallelism: {'; '.join(problems)}"
    if better is not None and _is_better(_cost(by_index, better), cost):
        # nvidia-smi numbers GPUs in PCI bus order, CUDA fastest first unless told otherwise
        # (CUDA C Programming Guide, "CUDA Environment Variables": CUDA_DEVICE_ORDER).
        return (
            f"{advice}. GPUs {_names(better)} ({_describe(by_index, better)}) do better: "
            "run vLLM with CUDA_DEVICE_ORDER=PCI_BUS_ID "
            f"CUDA_VISIBLE_DEVICES={','.join(str(i) for i in better)}"
        )
    return f"{advice}; no {len(chosen)} GPUs of this host do better"


def link_rank(link: str) -> int:
    """Higher is faster: SYS 0 .. PIX 4, then NV1 = 5, NV2 = 6 and so on."""
    if link.startswith("NV"):
        return len(_PCIE_RANK) + int(link[2:])
    return _PCIE_RANK.get(link, 0)


def _pairs(group: Sequence[int]) -> Iterable[tuple[int, int]]:
    return combinations(group, 2)


def _cost(by_index: dict[int, GpuTopology], group: Sequence[int]) -> _Cost:
    nodes = _numa_nodes(by_index, group)
    links = [by_index[a].links.get(b, "SYS") for a, b in _pairs(group)]
    return _Cost(
        numa_nodes=len(nodes),
        host_routed_pairs=sum(link in HOST_ROUTED for link in links),
        link_penalty=-sum(link_rank(link) for link in links),
    )


def _is_better(candidate: _Cost, current: _Cost) -> bool:
    """Only what the advice complains of counts: fewer NUMA nodes or host-routed pairs."""
    return (candidate.numa_nodes, candidate.host_routed_pairs) < (
        current.numa_nodes,
        current.host_routed_pairs,
    )


def _best_group(by_index: dict[int, GpuTopology], size: int) -> tuple[int, ...] | None:
    indices = sorted(by_index)
    if len(indices) > MAX_GPUS_SEARCHED or size > len(indices):
        return None
    return min(combinations(indices, size), key=lambda group: _cost(by_index, group))


def _problems(by_index: dict[int, GpuTopology], group: Sequence[int]) -> list[str]:
    problems = []
    nodes = _numa_nodes(by_index, group)
    if len(nodes) > 1:
        problems.append(f"they span NUMA nodes {_names(nodes[:-1])} and {nodes[-1]}")
    routed = [(a, b, by_index[a].links.get(b, "SYS")) for a, b in _pairs(group)]
    routed = [(a, b, link) for a, b, link in routed if link in HOST_ROUTED]
    if routed:
        shown = ", ".join(f"GPU{a}-GPU{b} ({link})" for a, b, link in routed[:4])
        more = f" and {len(routed) - 4} more" if len(routed) > 4 else ""
        levels = "; ".join(sorted({HOST_ROUTED[link] for _a, _b, link in routed}))
        problems.append(
            f"{shown}{more} {'is' if len(routed) == 1 else 'are'} linked only through the "
            f"CPUs ({levels}), with no NVLink or PCIe-switch peer-to-peer path, so "
            "all-reduce traffic crosses host memory"
        )
    return problems


def _describe(by_index: dict[int, GpuTopology], group: Sequence[int]) -> str:
    nodes = _numa_nodes(by_index, group)
    worst = min((by_index[a].links.get(b, "SYS") for a, b in _pairs(group)), key=link_rank)
    where = f"NUMA node {nodes[0]}" if len(nodes) == 1 else "NUMA node unknown"
    return f"{where}, slowest link {worst}"


def _numa_nodes(by_index: dict[int, GpuTopology], group: Sequence[int]) -> list[int]:
    return sorted({node for i in group if (node := by_index[i].numa_node) is not None})


def _names(numbers: Iterable[int]) -> str:
    return ",".join(str(number) for number in numbers)
