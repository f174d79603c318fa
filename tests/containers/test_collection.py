"""labsmith.lab as an automation engine uses it: built into a tarball with
``ansible-galaxy collection build``, installed into a collections path of its own, its
playbooks and roles addressed by FQCN from a directory that is not the repository."""

import ast
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import INVENTORIES, REPO
from tests.testbed.inventory import write_inventory
from tests.testbed.vm import HostInfo, ssh

pytestmark = pytest.mark.containers
BIN = Path(sys.executable).parent
MISSING_CARD = "0000:7f:1f.7"


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("build")
    subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(output)],
        cwd=REPO, check=True, capture_output=True, text=True,
    )  # fmt: skip
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    built = output / f"labsmith-lab-{version}.tar.gz"
    assert built.is_file()
    return built


@pytest.fixture(scope="module")
def installed(tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A collections path holding only the installed tarball."""
    collections = tmp_path_factory.mktemp("collections")
    # From outside the checkout: its ansible.cfg names the checkout's own collections path,
    # where ansible-galaxy would find labsmith.lab "already installed".
    subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "install", str(tarball), "-p",
         str(collections)],
        cwd=collections, env=engine_env(collections), check=True, capture_output=True,
        text=True,
    )  # fmt: skip
    assert (collections / "ansible_collections" / "labsmith" / "lab" / "MANIFEST.json").is_file()
    yield collections


def engine_env(collections: Path) -> dict[str, str]:
    """What an engine gives ansible-playbook: its collections path, no labsmith checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="False",
        ANSIBLE_HOST_KEY_CHECKING="True",
        ANSIBLE_NOCOLOR="1",
        PATH=os.pathsep.join([str(BIN), env.get("PATH", "")]),
    )
    return env


def play(collections: Path, workdir: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ansible-playbook"), *arguments],
        cwd=workdir, env=engine_env(collections), capture_output=True, text=True,
        check=False, timeout=600,
    )  # fmt: skip


def test_the_tarball_holds_the_collection_and_nothing_else(tarball: Path) -> None:
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
    for wanted in (
        "galaxy.yml" if "galaxy.yml" in names else "MANIFEST.json",
        "meta/runtime.yml",
        "playbooks/host.yml",
        "plugins/modules/pci_cards.py",
        "plugins/module_utils/pci_sysfs.py",
        "roles/iommu/tasks/main.yml",
        "roles/iommu/meta/argument_specs.yml",
        "roles/vfio/tasks/main.yml",
        "roles/vfio/templates/vfio.conf.j2",
    ):
        assert wanted in names, wanted
    leaked = sorted(
        n for n in names if n.split("/")[0] in {"src", "tests", "benchmarks", "inventories"}
    )
    assert leaked == [] and not any("/molecule/" in n for n in names)


def test_the_host_playbook_by_fqcn_passes_syntax_check(installed: Path, tmp_path: Path) -> None:
    result = play(
        installed, tmp_path, "labsmith.lab.host", "-i", str(INVENTORIES / "example"),
        "--syntax-check",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "labsmith/lab/playbooks/host.yml" in result.stdout


def test_without_the_collection_the_playbook_is_not_found(tmp_path: Path) -> None:
    """The check above proves something only if the FQCN resolves through the installed
    copy and nowhere else."""
    empty = tmp_path / "empty"
    empty.mkdir()
    result = play(empty, tmp_path, "labsmith.lab.host", "-i", str(INVENTORIES / "example"),
                  "--syntax-check")  # fmt: skip
    assert result.returncode != 0


def playbook(path: Path, tasks: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump([{"name": "Engine play", "hosts": "testhost",
                                     "gather_facts": False, "tasks": tasks}]))  # fmt: skip
    return path


def test_the_module_by_fqcn_reads_the_hosts_sysfs(
    installed: Path, container: HostInfo, tmp_path: Path
) -> None:
    listing = ssh(container, "ls /sys/bus/pci/devices").stdout.split()
    assert listing, "the container shows no PCI device"
    first = listing[0]
    vendor = ssh(container, f"cat /sys/bus/pci/devices/{first}/vendor").stdout.strip()
    inventory = write_inventory(tmp_path / "lab", container, gpus=[])
    saved = tmp_path / "described.json"
    book = playbook(
        tmp_path / "read.yml",
        [{"name": "Describe", "labsmith.lab.pci_cards": {"cards": [first, MISSING_CARD]},
          "register": "described"},
         {"name": "Keep the result", "delegate_to": "localhost",
          "ansible.builtin.copy": {"content": "{{ described | to_json }}", "dest": str(saved),
                                   "mode": "0600"}}],
    )  # fmt: skip
    result = play(installed, tmp_path, "-i", str(inventory), str(book))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    described = json.loads(saved.read_text())
    assert described["changed"] is False
    card, missing = described["cards"]
    assert card["present"] and card["slot"] == first.rsplit(".", 1)[0]
    assert card["functions"][0]["vendor_device"].startswith(vendor.removeprefix("0x") + ":")
    assert not missing["present"] and missing["functions"] == []


def test_the_vfio_role_by_fqcn_refuses_a_missing_card_before_any_change(
    installed: Path, container: HostInfo, tmp_path: Path
) -> None:
    inventory = write_inventory(tmp_path / "lab", container, gpus=[])
    book = playbook(
        tmp_path / "vfio.yml",
        [{"name": "Bind", "ansible.builtin.include_role": {"name": "labsmith.lab.vfio"},
          "vars": {"vfio_gpus": [{"name": "ghost", "pci": MISSING_CARD}]}}],
    )  # fmt: skip
    result = play(installed, tmp_path, "-i", str(inventory), str(book))
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr
    assert f"testhost has no PCI device at {MISSING_CARD}" in result.stdout
    written = ssh(container, "ls /etc/modprobe.d /etc/modules-load.d").stdout
    assert "vfio" not in written


# ansible-test's other sanity tests (validate-modules, ansible-doc, pep8, pylint, import,
# yamllint, runtime-metadata) each build a venv whose pip comes from a bootstrap script
# ansible-test downloads from its own file host, which this network does not reach; the
# module's documentation is checked through ansible-doc below instead.
SANITY_NEEDING_A_DOWNLOAD = (
    "ansible-doc", "validate-modules", "yamllint", "pep8", "pylint", "import", "changelog",
    "pslint", "shellcheck", "runtime-metadata",
)  # fmt: skip


def sanity(collection: Path) -> subprocess.CompletedProcess[str]:
    skips = [word for test in SANITY_NEEDING_A_DOWNLOAD for word in ("--skip-test", test)]
    return subprocess.run(
        [str(BIN / "ansible-test"), "sanity", "--local", "--python",
         f"{sys.version_info.major}.{sys.version_info.minor}", *skips],
        cwd=collection, env=engine_env(collection.parents[2]), capture_output=True,
        text=True, check=False, timeout=600,
    )  # fmt: skip


def test_ansible_test_sanity_is_clean(installed: Path) -> None:
    result = sanity(installed / "ansible_collections" / "labsmith" / "lab")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert 'Running sanity test "no-assert"' in result.stdout + result.stderr


def test_ansible_test_sanity_catches_a_defect(installed: Path, tmp_path: Path) -> None:
    copy = tmp_path / "ansible_collections" / "labsmith" / "lab"
    shutil.copytree(installed / "ansible_collections" / "labsmith" / "lab", copy)
    module = copy / "plugins" / "modules" / "pci_cards.py"
    module.write_text(module.read_text() + "\nassert main\n")
    result = sanity(copy)
    assert result.returncode != 0
    assert "no-assert" in result.stdout + result.stderr


def test_the_modules_documentation_matches_its_arguments(installed: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "ansible-doc"), "-t", "module", "--json", "labsmith.lab.pci_cards"],
        cwd=tmp_path, env=engine_env(installed), capture_output=True, text=True, check=True,
    )  # fmt: skip
    doc = json.loads(result.stdout)["labsmith.lab.pci_cards"]
    source = (REPO / "plugins" / "modules" / "pci_cards.py").read_text()
    spec = next(
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.keyword) and node.arg == "argument_spec"
    )
    arguments = ast.literal_eval(spec)
    assert set(doc["doc"]["options"]) == set(arguments)
    for name, option in doc["doc"]["options"].items():
        assert option["type"] == arguments[name]["type"], name
    returned = doc["return"]["cards"]
    assert set(returned["contains"]) >= {"card", "present", "functions", "strangers"}
    assert doc["examples"].count("labsmith.lab.pci_cards") >= 1


def test_the_wheel_ships_the_collection_labsmith_build_plays(tmp_path: Path) -> None:
    """labsmith build, installed from a wheel, finds the same collection and its playbook."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path),
         str(REPO)],
        check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    [wheel] = tmp_path.glob("labsmith-*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site),
         str(wheel)],
        check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    probe = (
        "from pathlib import Path; from labsmith.ansible.runner import link_collection; "
        "from labsmith.resources import collection_root; "
        f"print(collection_root()); print(link_collection(Path({str(tmp_path / 'run')!r})))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe], env={**os.environ, "PYTHONPATH": str(site)},
        cwd=tmp_path, check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    root, collections = Path(shown[0]), Path(shown[1])
    assert root == site / "labsmith" / "_data" / "ansible_collections" / "labsmith" / "lab"
    assert (root / "plugins" / "modules" / "pci_cards.py").is_file()
    result = play(
        collections, tmp_path, "labsmith.lab.host", "-i", str(INVENTORIES / "example"),
        "--syntax-check",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    played = Path(result.stdout.split("playbook: ", 1)[1].strip())
    assert played.resolve() == root / "playbooks" / "host.yml"
