"""Snapshots are written by the probed host, so they are hostile input: files crafted to crash
the parsers are refused with exit 2 naming the file, and text that looks like rich markup is
printed as written."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from labsmith.cli import main
from labsmith.facts.parse_system import MAX_BLOCK_DEVICE_NESTING
from tests.conftest import FIXTURES

DEPTH = 100_000  # far past the recursion limit of any JSON reader written in Python


def deep_json_list(depth: int = DEPTH) -> str:
    return "[" * depth + "]" * depth


def deep_json_object(depth: int = DEPTH) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


def nested_block_devices(depth: int) -> str:
    device: dict[str, object] = {"name": "leaf", "type": "part"}
    for level in range(depth):
        device = {"name": f"d{level}", "type": "disk", "children": [device]}
    return json.dumps({"blockdevices": [device]})


def probe_snapshot(directory: Path, *extra: str) -> Result:
    return CliRunner().invoke(main, ["probe", "--snapshot", str(directory), *extra])


CRAFTED = [
    pytest.param("rocm-smi.json", deep_json_object(), "nested too deep", id="rocm-smi-deep"),
    pytest.param("rocm-smi.json", deep_json_list(), "nested too deep", id="rocm-smi-deep-list"),
    pytest.param(
        "lsblk.json", '{"blockdevices": ' + deep_json_list() + "}", "nested too deep", id="lsblk"
    ),
    pytest.param(
        "lsblk.json",
        nested_block_devices(MAX_BLOCK_DEVICE_NESTING + 1),
        f"nested more than {MAX_BLOCK_DEVICE_NESTING} deep",
        id="lsblk-children",
    ),
    pytest.param("ip-link.json", deep_json_list(), "nested too deep", id="ip-link"),
    pytest.param("manifest.json", deep_json_object(), "nested too deep", id="manifest-deep"),
    pytest.param(
        "manifest.json",
        '{"commands": {"lspci": {"exit_status": 1e400}}}',
        "not a labsmith snapshot manifest",
        id="manifest-infinite-status",
    ),
    pytest.param(
        "manifest.json",
        '{"commands": ["lspci"]}',
        "not a labsmith snapshot manifest",
        id="manifest-commands-not-a-mapping",
    ),
    pytest.param(
        "rocm-smi.json",
        '{"card0": {"VRAM Total Memory (B)": "' + "9" * 5000 + '"}}',
        "cannot parse it",
        id="rocm-smi-5000-digit-number",
    ),
]


@pytest.mark.parametrize(("name", "content", "words"), CRAFTED)
def test_a_crafted_snapshot_file_exits_2_naming_it(
    tmp_path: Path, name: str, content: str, words: str
) -> None:
    (tmp_path / name).write_text(content)
    result = probe_snapshot(tmp_path)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"error: {tmp_path / name}: " in result.stderr
    assert words in result.stderr


IGNORED_VALUES = [
    pytest.param(
        "lsblk.json",
        '{"blockdevices": [{"name": "nvme0n1", "type": "disk", "size": 1e400}]}',
        id="lsblk-infinite-size",
    ),
    pytest.param(
        "lsblk.json",
        '{"blockdevices": [{"name": "nvme0n1", "type": "disk", "size": "' + "9" * 400 + 'E"}]}',
        id="lsblk-overflowing-human-size",
    ),
    pytest.param(
        "nvidia-smi.xml",
        "<nvidia_smi_log><gpu id='00000000:01:00.0'><fb_memory_usage><total>"
        + "9" * 400
        + " MiB</total></fb_memory_usage></gpu></nvidia_smi_log>",
        id="nvidia-smi-overflowing-vram",
    ),
    pytest.param(
        "nvidia-smi.xml",
        "<nvidia_smi_log>" + "<a>" * DEPTH + "</a>" * DEPTH + "</nvidia_smi_log>",
        id="nvidia-smi-deep-xml",
    ),
    pytest.param(
        "rocm-smi.json",
        '{"card0": {"PCI Bus": ' + deep_json_list(500) + "}}",
        id="rocm-smi-container-where-text-belongs",
    ),
]


@pytest.mark.parametrize(("name", "content"), IGNORED_VALUES)
def test_an_impossible_value_is_unknown_not_a_crash(
    tmp_path: Path, name: str, content: str
) -> None:
    (tmp_path / name).write_text(content)
    result = probe_snapshot(tmp_path, "--json")
    assert result.exit_code in (0, 1), result.output
    assert json.loads(result.stdout)["checks"]


MARKUP = ["[bold red]x[/]", "[link=http://evil]y"]


@pytest.fixture
def snapshot_with_driver(tmp_path: Path) -> Path:
    """A snapshot of the fixture laptop: lspci only."""
    source = FIXTURES / "host" / "lspci_nnk_gtx1650m_nvidia_bound_hp_laptop.txt"
    shutil.copy(source, tmp_path / "lspci")
    return tmp_path


@pytest.mark.parametrize("markup", MARKUP)
def test_markup_in_a_probed_hosts_text_is_printed_as_written(
    snapshot_with_driver: Path, markup: str
) -> None:
    lspci = snapshot_with_driver / "lspci"
    lspci.write_text(
        lspci.read_text().replace(
            "Kernel driver in use: nvidia", f"Kernel driver in use: {markup}", 1
        )
    )
    result = probe_snapshot(snapshot_with_driver)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    # the GPU table's driver cell, then the reason that names the driver
    assert f"│ {markup} │" in result.stdout, result.stdout
    assert f"is bound to {markup}," in result.stdout


def test_markup_in_the_snapshot_path_is_printed_as_written(tmp_path: Path) -> None:
    directory = tmp_path / "[bold red]host[link=evil]"
    directory.mkdir()
    shutil.copy(
        FIXTURES / "host" / "lspci_nnk_gtx1650m_nvidia_bound_hp_laptop.txt", directory / "lspci"
    )
    result = probe_snapshot(directory)
    assert f"[bold red]host[link=evil] ({directory})" in result.stdout
    assert "[bold red]host[link=evil]: GPUs" in result.stdout
