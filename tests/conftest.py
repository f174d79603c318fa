"""Paths and helpers shared by every test tier."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
INVENTORIES = REPO / "inventories"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# The example labs users start from; every one must validate cleanly.
GOOD_LABS = sorted(p for p in INVENTORIES.iterdir() if p.is_dir() and p.name != "broken")
BROKEN_LABS = sorted(p for p in (INVENTORIES / "broken").glob("*") if p.is_dir())


def require(missing: list[str], needs: str) -> None:
    """Skip a test whose tools are missing on a developer's machine; fail it in CI, where
    make test installs them and a skip would hide a tier that never ran."""
    if not missing:
        return
    reason = f"{needs} needs {', '.join(missing)}"
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (make test installs them as root)")
    pytest.skip(f"{reason}; run make test as root to have them installed")


def ansible_inventory_list(source: Path, *extra: str) -> dict[str, Any]:
    """What ``ansible-inventory --list`` (from this environment's ansible-core) says."""
    command = Path(sys.executable).parent / "ansible-inventory"
    result = subprocess.run(
        [str(command), "-i", str(source), "--list", *extra],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.fixture
def write_tree(tmp_path: Path) -> Any:
    """Write {relative path: text} under tmp_path and return tmp_path."""

    def write(files: dict[str, str]) -> Path:
        for relative, text in files.items():
            path = tmp_path / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return tmp_path

    return write
