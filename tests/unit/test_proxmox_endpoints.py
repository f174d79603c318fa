"""Which API each cluster is reached at, and with which token: inventory, env, vault, flags."""

from pathlib import Path
from typing import Any

import pytest
from ansible.parsing.vault import VaultLib, VaultSecret

from labsmith.checks.lab import check_lab
from labsmith.proxmox.endpoints import EndpointError, Overrides, cluster_endpoints

HOSTS = "---\nall:\n  children:\n    proxmox:\n      hosts:\n        pve1:\n          ansible_host: 10.0.30.10\n"
PVE1 = """---
labsmith_kind: proxmox
labsmith_cpu: {vendor: amd, cores: 16, threads: 32}
labsmith_memory: 64G
"""
SECRET = "4f0c9a4e-31c1-4ad9-9c1e-2b1b4c7f3a10"


def lab_with(write_tree: Any, api: str = "") -> Any:
    root: Path = write_tree({"hosts.yml": HOSTS, "host_vars/pve1.yml": PVE1 + api})
    report = check_lab(root)
    assert report.valid, report.findings
    return report.lab


def test_overrides_point_every_cluster_at_one_api(write_tree: Any, tmp_path: Path) -> None:
    lab = lab_with(write_tree)
    ca = tmp_path / "ca.pem"
    overrides = Overrides(url="https://127.0.0.1:8443", token=f"root@pam!sim={SECRET}", ca_file=ca)
    endpoint = cluster_endpoints(lab, overrides)["pve1"]
    assert (endpoint.url, endpoint.token_id, endpoint.token_secret, endpoint.ca_file) == (
        "https://127.0.0.1:8443",
        "root@pam!sim",
        SECRET,
        ca,
    )
    with pytest.raises(EndpointError, match=r"user@realm!name=secret"):
        cluster_endpoints(lab, Overrides(token="root@pam"))


def test_without_a_token_the_error_names_the_file_and_both_fixes(write_tree: Any) -> None:
    with pytest.raises(EndpointError, match=r"host_vars/pve1\.yml.*--pve-token"):
        cluster_endpoints(lab_with(write_tree), Overrides())


def test_the_secret_comes_from_the_environment(
    write_tree: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = "labsmith_pve_api: {token_id: 'labsmith@pve!apply', token_secret_env: PVE_SECRET}\n"
    lab = lab_with(write_tree, api)
    monkeypatch.delenv("PVE_SECRET", raising=False)
    # The variable is named by its key: a name chosen in the inventory is not repeated.
    with pytest.raises(
        EndpointError, match=r"export the environment variable labsmith_pve_api\.token_secret_env"
    ) as raised:
        cluster_endpoints(lab, Overrides())
    assert "PVE_SECRET" not in str(raised.value)
    monkeypatch.setenv("PVE_SECRET", SECRET)
    endpoint = cluster_endpoints(lab, Overrides())["pve1"]
    assert endpoint.url == "https://10.0.30.10:8006"
    assert (endpoint.token_id, endpoint.token_secret) == ("labsmith@pve!apply", SECRET)


def test_a_vaulted_secret_is_decrypted_with_the_vault_password(
    write_tree: Any, tmp_path: Path
) -> None:
    password = tmp_path / "vault-password.txt"
    password.write_text("lab vault password\n")
    vault = VaultLib([("default", VaultSecret(b"lab vault password"))])
    ciphertext = vault.encrypt(SECRET).decode()
    block = "\n".join("      " + line for line in ciphertext.splitlines())
    api = f"labsmith_pve_api:\n  token_id: root@pam!labsmith\n  token_secret: !vault |\n{block}\n"
    lab = lab_with(write_tree, api)
    assert cluster_endpoints(lab, Overrides(), password)["pve1"].token_secret == SECRET
    with pytest.raises(EndpointError, match="--vault-password-file"):
        cluster_endpoints(lab, Overrides())
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not it\n")
    with pytest.raises(EndpointError, match="cannot decrypt") as refused:
        cluster_endpoints(lab, Overrides(), wrong)
    assert SECRET not in str(refused.value)


def test_a_missing_ca_file_is_named(write_tree: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABSMITH_PVE_TOKEN_SECRET", SECRET)
    api = "labsmith_pve_api: {token_id: 'root@pam!labsmith', ca_file: pve-root-ca.pem}\n"
    with pytest.raises(EndpointError, match=r"copy the node's /etc/pve/pve-root-ca\.pem"):
        cluster_endpoints(lab_with(write_tree, api), Overrides())


def test_root_password_is_optional_and_comes_from_override_vault_or_environment(
    write_tree: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABSMITH_PVE_TOKEN_SECRET", SECRET)
    monkeypatch.delenv("LABSMITH_PVE_ROOT_PASSWORD", raising=False)
    monkeypatch.delenv("ROOT_PW", raising=False)
    api = "labsmith_pve_api: {token_id: 'labsmith@pve!apply', root_password_env: ROOT_PW}\n"
    lab = lab_with(write_tree, api)
    assert cluster_endpoints(lab, Overrides())["pve1"].root_password is None
    monkeypatch.setenv("ROOT_PW", "from-env")
    endpoint = cluster_endpoints(lab, Overrides())["pve1"]
    assert endpoint.root_password == "from-env"
    assert "from-env" not in repr(endpoint)
    given = Overrides(token=f"root@pam!sim={SECRET}", root_password="from-flag")
    assert cluster_endpoints(lab, given)["pve1"].root_password == "from-flag"

    password = tmp_path / "vault-password.txt"
    password.write_text("lab vault password\n")
    vault = VaultLib([("default", VaultSecret(b"lab vault password"))])
    block = "\n".join("      " + line for line in vault.encrypt("vaulted").decode().splitlines())
    api = f"labsmith_pve_api:\n  token_id: root@pam!labsmith\n  root_password: !vault |\n{block}\n"
    vaulted = cluster_endpoints(lab_with(write_tree, api), Overrides(), password)["pve1"]
    assert vaulted.root_password == "vaulted"
