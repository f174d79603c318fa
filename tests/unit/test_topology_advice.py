"""tensor_parallel_advice: when a vLLM tensor-parallel GPU set is badly placed, and what is
better, judged on the real captures in tests/fixtures/host."""

from pathlib import Path

import pytest

from labsmith.checks.topology import tensor_parallel_advice
from labsmith.facts.parse_topology import GpuTopology, parse_nvidia_topo
from labsmith.facts.snapshot import strip_source_line

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "host"


def topology(name: str) -> tuple[GpuTopology, ...]:
    return parse_nvidia_topo(strip_source_line((FIXTURES / name).read_text()))


A100 = "nvidia_topo_4x_a100_nv3_pairs_numa_0_8.txt"
RTX4090 = "nvidia_topo_8x_rtx4090_all_sys_two_numa.txt"


def test_an_nvlink_pair_on_one_numa_node_needs_no_advice() -> None:
    assert tensor_parallel_advice(topology(A100), [0, 1]) is None
    assert tensor_parallel_advice(topology(A100), [3, 2]) is None
    assert (
        tensor_parallel_advice(topology("nvidia_topo_2x_nv12_space_aligned_nics.txt"), [0, 1])
        is None
    )


def test_phb_on_one_numa_node_is_not_flagged() -> None:
    assert tensor_parallel_advice(topology("nvidia_topo_2x_rtx5090_phb.txt"), [0, 1]) is None


def test_a_pair_across_sockets_names_the_nvlink_pair_instead() -> None:
    advice = tensor_parallel_advice(topology(A100), [0, 2])

    assert advice is not None
    assert "they span NUMA nodes 0 and 8" in advice
    assert "GPU0-GPU2 (SYS) is linked only through the CPUs" in advice
    assert "GPUs 0,1 (NUMA node 0, slowest link NV3) do better" in advice
    assert advice.endswith("CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=0,1")


def test_all_four_gpus_span_both_sockets_and_nothing_of_that_size_is_better() -> None:
    advice = tensor_parallel_advice(topology(A100), [0, 1, 2, 3])

    assert advice is not None
    assert "GPU0-GPU2 (SYS), GPU0-GPU3 (SYS), GPU1-GPU2 (SYS), GPU1-GPU3 (SYS) are linked" in advice
    assert advice.endswith("no 4 GPUs of this host do better")


def test_a_group_across_numa_nodes_is_moved_to_one_node_even_when_all_links_are_sys() -> None:
    advice = tensor_parallel_advice(topology(RTX4090), [2, 5])

    assert advice is not None
    assert "they span NUMA nodes 0 and 1" in advice
    assert "GPUs 0,1 (NUMA node 0, slowest link SYS) do better" in advice


def test_sys_links_within_one_node_are_said_though_nothing_is_better() -> None:
    advice = tensor_parallel_advice(topology(RTX4090), [4, 5, 6, 7])

    assert advice is not None
    assert "span" not in advice
    assert "GPU4-GPU5 (SYS)" in advice and "and 2 more" in advice
    assert advice.endswith("no 4 GPUs of this host do better")


def test_one_gpu_or_none_needs_no_advice() -> None:
    assert tensor_parallel_advice(topology(A100), [2]) is None
    assert tensor_parallel_advice(topology(A100), []) is None


def test_node_links_are_named_with_the_legend() -> None:
    gpus = parse_nvidia_topo(
        "\tGPU0\tGPU1\tNUMA Affinity\nGPU0\t X \tNODE\t0\nGPU1\tNODE\t X \t0\n"
    )
    advice = tensor_parallel_advice(gpus, [0, 1])
    assert advice is not None and "NODE: between PCIe host bridges within a NUMA node" in advice


def test_an_index_the_host_lacks_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"GPU 9 is not in the topology \(its GPUs: 0, 1, 2, 3\)"):
        tensor_parallel_advice(topology(A100), [0, 9])
