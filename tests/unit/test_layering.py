"""The data flow of DESIGN.md: a package imports only packages to its left (layer 0 from
anywhere), and the simulator shares no code with the Proxmox client it is used to test."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "labsmith"
LAYER_ZERO = {"errors", "units", "resources", "private_files"}
FLOW = ["inventory", "facts", "sizing", "checks", "proxmox", "sim", "ansible", "orchestrate", "cli"]
# Imports that may never happen, whatever the order says.
SEPARATE = {("sim", "proxmox"), ("proxmox", "sim")}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "labsmith" and len(parts) > 1:
                found.add(parts[1])
    return found


def modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p.parent != SRC or p.stem in LAYER_ZERO)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_follow_the_data_flow(path: Path) -> None:
    package = path.relative_to(SRC).parts[0].removesuffix(".py")
    wrong = []
    for target in imported_packages(path) - {package} - LAYER_ZERO:
        if (
            package in LAYER_ZERO
            or target not in FLOW
            or FLOW.index(target) > FLOW.index(package)
            or (package, target) in SEPARATE
        ):
            wrong.append(target)
    assert wrong == [], f"{path.relative_to(SRC)} imports labsmith.{', labsmith.'.join(wrong)}"


def test_every_package_has_a_place_in_the_flow() -> None:
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(FLOW) | {"_data"}, sorted(packages - set(FLOW))


def test_the_checker_sees_a_backward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from labsmith.sizing.fit import plan_lab\nimport labsmith.cli\n")
    assert imported_packages(module) == {"sizing", "cli"}
