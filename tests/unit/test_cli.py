"""The command line: exit codes, messages and JSON, through click's CliRunner."""

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from labsmith.cli import main
from labsmith.resources import example_inventory
from tests.conftest import BROKEN_LABS, INVENTORIES


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_validate_defaults_to_the_bundled_example_lab() -> None:
    result = run("validate")
    assert result.exit_code == 0, result.output
    assert f"using the bundled example lab ({example_inventory()})" in result.stderr
    assert "valid — 0 error(s)" in result.stdout
    assert "Hosts" in result.stdout and "Guests" in result.stdout


def test_validate_json_describes_the_lab() -> None:
    result = run("validate", "-i", str(INVENTORIES / "example"), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["valid"] is True and report["findings"] == []
    assert [host["labsmith_kind"] for host in report["hosts"]] == ["proxmox"]
    assert {guest["labsmith_guest"]["type"] for guest in report["guests"]} == {"qemu", "lxc"}


@pytest.mark.parametrize("lab", BROKEN_LABS, ids=lambda p: p.name)
def test_findings_name_file_key_and_fix_with_exit_1_for_errors(lab: Path) -> None:
    json_result = run("validate", "-i", str(lab), "--json")
    findings = json.loads(json_result.stdout)["findings"]
    assert findings
    has_errors = any(finding["severity"] == "error" for finding in findings)
    assert json_result.exit_code == (1 if has_errors else 0)
    result = run("validate", "-i", str(lab))
    assert result.exit_code == json_result.exit_code
    for finding in findings:
        assert f"{finding['file']}: {finding['key']}" in result.stdout
        assert f"fix: {finding['fix']}" in result.stdout


def test_yaml_syntax_error_exits_2_with_file_and_line(write_tree: Any) -> None:
    root = write_tree(
        {
            "hosts.yml": "---\nall:\n  hosts:\n    pve1:\n",
            "host_vars/pve1.yml": "---\nlabsmith_kind: [proxmox\n",
        }
    )
    result = run("validate", "-i", str(root))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: host_vars/pve1.yml:3:1: YAML syntax error")
    assert "Traceback" not in result.output


def test_unusable_inventory_with_json_still_prints_json(tmp_path: Path) -> None:
    result = run("validate", "-i", str(tmp_path / "missing"), "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {
        "inventory": str(tmp_path / "missing"),
        "valid": False,
        "error": f"{tmp_path / 'missing'}: no such inventory; pass -i with a lab directory, "
        "e.g. inventories/example",
    }


def test_warnings_alone_exit_0(write_tree: Any) -> None:
    root = write_tree(
        {
            "hosts.yml": "---\nall:\n  hosts:\n    pve1:\n    a:\n    b:\n",
            "host_vars/pve1.yml": "---\nlabsmith_kind: proxmox\nlabsmith_cpu: {vendor: amd, cores: 8}\n"
            "labsmith_memory: 16G\nlabsmith_storage:\n  - {id: local-lvm, layout: existing, backend: lvm-thin}\n",
            "host_vars/a.yml": "---\nlabsmith_guest: {type: qemu, node: pve1, vmid: 100, cores: 2, memory: 12G}\n",
            "host_vars/b.yml": "---\nlabsmith_guest: {type: qemu, node: pve1, vmid: 101, cores: 2, memory: 12G}\n",
        }
    )
    result = run("validate", "-i", str(root))
    assert result.exit_code == 0, result.output
    assert "warning host_vars/pve1.yml: labsmith_memory" in result.stdout
    assert "valid — 0 error(s), 1 warning(s)" in result.stdout


def test_skipped_vault_file_is_mentioned(write_tree: Any) -> None:
    root = write_tree(
        {
            "hosts.yml": "---\nall:\n  hosts:\n    pve1:\n",
            "group_vars/all.yml": "$ANSIBLE_VAULT;1.1;AES256\n3132\n",
        }
    )
    result = run("validate", "-i", str(root))
    assert result.exit_code == 0, result.output
    assert "group_vars/all.yml is vault-encrypted and no vault password was given" in result.stdout


def test_relative_inventory_path_reports_files_relative_to_it(monkeypatch: Any) -> None:
    monkeypatch.chdir(INVENTORIES)
    result = run("validate", "-i", "broken/service-port-conflict", "--json")
    assert result.exit_code == 1
    [finding] = json.loads(result.stdout)["findings"]
    assert (finding["file"], finding["key"]) == ("hosts.yml", "labsmith_services[1].port")
