"""nvidia-smi topo -m: the real captures in tests/fixtures/host, and the shapes drivers print."""

from pathlib import Path

import pytest

from labsmith.facts.parse_topology import parse_nvidia_topo
from labsmith.facts.snapshot import strip_source_line

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "host"


def capture(name: str) -> str:
    return strip_source_line((FIXTURES / name).read_text())


def test_eight_rtx4090s_tab_separated_with_gpu_numa_id_and_nic_rows() -> None:
    gpus = parse_nvidia_topo(capture("nvidia_topo_8x_rtx4090_all_sys_two_numa.txt"))

    assert [gpu.index for gpu in gpus] == list(range(8))
    assert gpus[0].as_dict() == {
        "index": 0,
        "numa_node": 0,
        "cpu_affinity": "0-55,112-167",
        "links": {"0": "X", **{str(i): "SYS" for i in range(1, 8)}},
    }
    assert [gpu.numa_node for gpu in gpus] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert gpus[7].cpu_affinity == "56-111,168-223"


def test_nvlink_pairs_across_numa_nodes_0_and_8_without_gpu_numa_id() -> None:
    gpus = parse_nvidia_topo(capture("nvidia_topo_4x_a100_nv3_pairs_numa_0_8.txt"))

    assert [dict(gpu.links) for gpu in gpus] == [
        {0: "X", 1: "NV3", 2: "SYS", 3: "SYS"},
        {0: "NV3", 1: "X", 2: "SYS", 3: "SYS"},
        {0: "SYS", 1: "SYS", 2: "X", 3: "NV3"},
        {0: "SYS", 1: "SYS", 2: "NV3", 3: "X"},
    ]
    assert [gpu.numa_node for gpu in gpus] == [0, 0, 8, 8]


def test_space_aligned_paste_with_nv12() -> None:
    gpus = parse_nvidia_topo(capture("nvidia_topo_2x_nv12_space_aligned_nics.txt"))

    assert [gpu.as_dict() for gpu in gpus] == [
        {
            "index": 0,
            "numa_node": 3,
            "cpu_affinity": "48-63,176-191",
            "links": {"0": "X", "1": "NV12"},
        },
        {
            "index": 1,
            "numa_node": 3,
            "cpu_affinity": "48-63,176-191",
            "links": {"0": "NV12", "1": "X"},
        },
    ]


@pytest.mark.parametrize(
    ("name", "link", "numa"),
    [
        ("nvidia_topo_2x_rtx5090_phb.txt", "PHB", [0, 0]),
        ("nvidia_topo_2x_a100_sys_one_per_socket.txt", "SYS", [0, 1]),
    ],
)
def test_two_gpu_workstations_and_servers(name: str, link: str, numa: list[int]) -> None:
    gpus = parse_nvidia_topo(capture(name))
    assert [gpu.links[1 - gpu.index] for gpu in gpus] == [link, link]
    assert [gpu.numa_node for gpu in gpus] == numa


def test_an_old_driver_without_numa_affinity_and_with_soc() -> None:
    old = (
        "        GPU0    GPU1    CPU Affinity\n"
        "GPU0     X      SOC     0-7\n"
        "GPU1    SOC      X      8-15\n\n"
        "Legend:\n\n  X   = Self\n  SOC  = Connection traversing PCIe as well as the SMP link\n"
    )
    gpus = parse_nvidia_topo(old)
    assert [(gpu.numa_node, gpu.cpu_affinity, gpu.links[1 - gpu.index]) for gpu in gpus] == [
        (None, "0-7", "SYS"),
        (None, "8-15", "SYS"),
    ]


def test_not_applicable_affinity_a_shell_prompt_and_colour_codes() -> None:
    text = (
        "$ nvidia-smi topo -m\n"
        "\t\x1b[4mGPU0\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\x1b[0m\n"
        "GPU0\t X \tN/A\tN/A\t\tN/A\n"
    )
    [gpu] = parse_nvidia_topo(text)
    assert gpu.as_dict() == {
        "index": 0,
        "numa_node": None,
        "cpu_affinity": None,
        "links": {"0": "X"},
    }


def test_no_matrix_means_no_gpus() -> None:
    assert parse_nvidia_topo("No devices were found\n") == ()


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("\tGPU0\tGPU1\nGPU0\t X \tQPI\nGPU1\tQPI\t X \n", "'QPI' is not a link level"),
        ("\tGPU0\tGPU1\nGPU0\t X \tSYS\n", r"columns for GPUs \[0, 1\] but rows for \[0\]"),
        ("\tGPU0\tGPU1\nGPU0\t X\nGPU1\tSYS\t X \n", "1 link cells for 2 device columns"),
        ("\tGPU0\tGPU1\nGPU0\tSYS\t X \nGPU1\tSYS\t X \n", "its own column says 'SYS'"),
    ],
)
def test_a_broken_matrix_is_refused_with_what_is_wrong(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_nvidia_topo(text)
