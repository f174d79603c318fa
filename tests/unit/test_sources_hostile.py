"""Inventories built to hurt the reader: alias bombs, self-referring aliases, deep nesting and
files that are not files. Each is refused with exit 2, naming the file, and quickly."""

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from labsmith.cli import main
from labsmith.inventory.sources import MAX_NESTING, load_inventory

HOSTS = "all:\n  hosts:\n    pve1:\n    pve2:\n"
# Nine lines, nine anchors each holding nine aliases of the previous: 9^9 (387 million)
# strings once expanded, a few hundred bytes as written.
BILLION_LAUGHS = 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"a{n}: &a{n} [{','.join([f'*a{n - 1}'] * 9)}]\n" for n in range(1, 9)
)
DEEP = "deep: " + "[" * (MAX_NESTING + 5) + "1" + "]" * (MAX_NESTING + 5) + "\n"

BAD_INVENTORIES = [
    pytest.param(
        {"host_vars/pve1.yml": BILLION_LAUGHS},
        ["host_vars/pve1.yml", "1,000,000 values", "YAML aliases"],
        id="alias-bomb-in-host_vars",
    ),
    pytest.param(
        {"group_vars/all.yml": BILLION_LAUGHS},
        ["group_vars/all.yml", "1,000,000 values"],
        id="alias-bomb-in-group_vars",
    ),
    pytest.param(
        {
            "hosts.yml": HOSTS
            + "  vars:\n"
            + "".join("    " + line + "\n" for line in BILLION_LAUGHS.splitlines())
        },
        ["hosts.yml", "1,000,000 values"],
        id="alias-bomb-in-hosts.yml",
    ),
    pytest.param(
        {"host_vars/pve1.yml": "loop: &loop [1, *loop]\n"},
        ["host_vars/pve1.yml", "refers to a value that contains it"],
        id="alias-containing-itself",
    ),
    pytest.param(
        {"host_vars/pve1.yml": "loop: &loop {again: *loop}\n"},
        ["host_vars/pve1.yml", "refers to a value that contains it"],
        id="mapping-alias-containing-itself",
    ),
    pytest.param(
        {"host_vars/pve1.yml": DEEP},
        ["host_vars/pve1.yml", f"deeper than {MAX_NESTING} levels"],
        id="deep-nesting",
    ),
]


def validate(root: Path, *extra: str) -> Result:
    return CliRunner().invoke(main, ["validate", "-i", str(root), *extra])


def write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in {"hosts.yml": HOSTS, **files}.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize(("files", "words"), BAD_INVENTORIES)
def test_a_hostile_yaml_file_is_refused_with_exit_2_naming_it(
    tmp_path: Path, files: dict[str, str], words: list[str]
) -> None:
    started = time.monotonic()
    result = validate(write(tmp_path, files))
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for word in words:
        assert word in result.stderr
    # Measuring is linear in the file as written, not in its expansion.
    assert time.monotonic() - started < 30


def test_the_json_output_carries_the_same_error(tmp_path: Path) -> None:
    result = validate(write(tmp_path, {"host_vars/pve1.yml": BILLION_LAUGHS}), "--json")
    assert result.exit_code == 2
    assert '"valid": false' in result.stdout and "host_vars/pve1.yml" in result.stdout


def test_aliases_that_stay_small_resolve_and_are_converted_once(tmp_path: Path) -> None:
    # 9^4 strings: a real, if odd, use of anchors, well under the limit.
    four_levels = "\n".join(BILLION_LAUGHS.splitlines()[:4]) + "\n"
    root = write(tmp_path, {"group_vars/all.yml": four_levels})
    inventory = load_inventory(root)
    pve1, pve2 = inventory.hosts["pve1"].variables, inventory.hosts["pve2"].variables
    assert len(pve1["a3"]) == 9 and pve1["a3"][8][8][8][8] == "lol"
    # One group file's value, shared by both hosts and by its own aliases, is one object.
    assert pve1["a3"] is pve2["a3"]
    assert pve1["a3"][0] is pve1["a3"][1] is pve1["a2"]


def _run_in_thread(root: Path) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        outcome["result"] = validate(root)

    # A daemon: if validate still blocked on the FIFO, the test fails instead of hanging.
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=60)
    return thread, outcome


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _socket(path: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()  # the socket file stays behind, as a crashed daemon's does


@pytest.mark.parametrize(
    ("relative", "make", "kind"),
    [
        ("host_vars/pve1.yml", _fifo, "FIFO"),
        ("hosts", _fifo, "FIFO"),
        ("group_vars/all/more.yml", _fifo, "FIFO"),
        ("host_vars/pve2.yml", _socket, "socket"),
    ],
)
def test_a_special_file_in_the_inventory_is_refused_not_opened(
    tmp_path: Path, relative: str, make: Any, kind: str
) -> None:
    root = write(tmp_path / "lab", {})
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    make(path)
    thread, outcome = _run_in_thread(root)
    assert not thread.is_alive(), "validate blocked on a special file"
    result: Result = outcome["result"]
    assert result.exit_code == 2, result.output
    assert f"{relative}: a {kind}" in result.stderr
    assert "not a regular file" in result.stderr


def test_an_inventory_given_as_a_fifo_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "hosts.yml"
    os.mkfifo(fifo)
    thread, outcome = _run_in_thread(fifo)
    assert not thread.is_alive()
    assert outcome["result"].exit_code == 2
    assert "FIFO (named pipe), not a regular file" in outcome["result"].stderr
