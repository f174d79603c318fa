"""The Mermaid diagram: every edge joins declared nodes, labels cannot break the syntax."""

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from labsmith.checks.lab import check_lab
from labsmith.cli import main
from labsmith.inventory.graph import mermaid_text, render_mermaid
from tests.conftest import GOOD_LABS, INVENTORIES

NODE = re.compile(r"^\s{4}(\w+)(\[\[|\[\(|\{\{|\(\[|\[)\"(.*)\"(\]\]|\)\]|\}\}|\]\)|\])$")
EDGE = re.compile(r"^\s{2}(\w+) (==>|---|-\.->)\|\"([^\"]*)\"\| (\w+)$")
SUBGRAPH = re.compile(r"^\s{2}subgraph (\w+)\[\"([^\"]*)\"\]$")


def parse(diagram: str) -> tuple[set[str], list[tuple[str, str, str]]]:
    """Check every line against the three shapes the diagram uses; return nodes and edges."""
    lines = diagram.splitlines()
    assert lines[0] == "flowchart LR"
    nodes: set[str] = set()
    edges: list[tuple[str, str, str]] = []
    for line in lines[1:]:
        if line.strip() == "end" or SUBGRAPH.match(line):
            continue
        if node := NODE.match(line):
            assert node.group(1) not in nodes, f"node declared twice: {line}"
            nodes.add(node.group(1))
        elif edge := EDGE.match(line):
            edges.append((edge.group(1), edge.group(3), edge.group(4)))
        else:
            raise AssertionError(f"not a line of the diagram's grammar: {line!r}")
    return nodes, edges


@pytest.mark.parametrize("lab", GOOD_LABS, ids=lambda p: p.name)
def test_every_edge_joins_declared_nodes(lab: Path) -> None:
    report = check_lab(lab)
    nodes, edges = parse(render_mermaid(report.lab))
    for source, _, target in edges:
        assert source in nodes and target in nodes, (source, target)
    guests = {node for node in nodes if node.startswith("guest_")}
    assert len(guests) == len(report.lab.guests)


def test_example_diagram_shows_gpu_passthrough_and_vlans() -> None:
    report = check_lab(INVENTORIES / "example")
    _, edges = parse(render_mermaid(report.lab))
    gpu_edges = [(s, label, t) for s, label, t in edges if "_gpu_" in s]
    modes = {label for _, label, _ in gpu_edges}
    assert modes == {"passthrough", "host"}
    assert any(label.startswith("VLAN ") for _, label, _ in edges)


def test_labels_escape_mermaid_syntax() -> None:
    assert mermaid_text('RTX "5090" <32G>') == "RTX #quot;5090#quot; #lt;32G#gt;"


def test_graph_command_prints_the_diagram() -> None:
    result = CliRunner().invoke(main, ["graph", "-i", str(INVENTORIES / "example")])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("flowchart LR\n")


def test_graph_of_an_unusable_inventory_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["graph", "-i", str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert "no such inventory" in result.stderr
