"""A secret pasted under any key of ``labsmith_pve_api`` never comes back out: not in
``validate``'s findings (text or --json), not in its host dump, not in plan's one-line
errors. Each case plants a canary where a user might paste a token and looks for it in
everything the command printed."""

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from labsmith.cli import main
from labsmith.proxmox.client import Endpoint, ProxmoxClient
from labsmith.proxmox.errors import ProxmoxApiError

CANARY = "a7c1e0de-cafe-4bad-beef-0123456789ab"  # shaped like a PVE token secret
CANARY_NAME = "A7C1E0DE_CAFE_4BAD"  # the same, shaped to pass as a variable name

HOSTS = "---\nall:\n  children:\n    proxmox:\n      hosts:\n        pve1:\n          ansible_host: 10.0.30.10\n"
PVE1 = """---
labsmith_kind: proxmox
labsmith_cpu: {vendor: amd, cores: 16, threads: 32}
labsmith_memory: 64G
"""


def lab(write_tree: Any, api: str) -> Path:
    root: Path = write_tree({"hosts.yml": HOSTS, "host_vars/pve1.yml": PVE1 + api})
    return root


def invoke(*arguments: str) -> str:
    result = CliRunner().invoke(main, list(arguments))
    assert result.exception is None or isinstance(result.exception, SystemExit), result
    return result.output


# Invalid values: validate reports each as a finding at its key.
INVALID = {
    "whole token as token_id": f"labsmith_pve_api: {{token_id: 'root@pam!labsmith={CANARY}'}}\n",
    "secret as the token id": f"labsmith_pve_api: {{token_id: '{CANARY}'}}\n",
    "password in the url": (
        f"labsmith_pve_api: {{token_id: 'root@pam!apply', url: 'https://root:{CANARY}@pve1:8006'}}\n"
    ),
    "token as the variable": f"labsmith_pve_api: 'root@pam!labsmith={CANARY}'\n",
    "token as a list": f"labsmith_pve_api: ['root@pam!labsmith={CANARY}']\n",
    "secret as the variable name": (
        f"labsmith_pve_api: {{token_id: 'root@pam!apply', token_secret_env: '{CANARY}'}}\n"
    ),
    "secret in root_password_env": (
        f"labsmith_pve_api: {{token_id: 'root@pam!apply', root_password_env: '{CANARY}'}}\n"
    ),
    "plain secret in token_secret": (
        f"labsmith_pve_api: {{token_id: 'root@pam!apply', token_secret: '{CANARY}'}}\n"
    ),
}


@pytest.mark.parametrize("api", INVALID.values(), ids=INVALID.keys())
def test_validate_names_the_key_but_never_the_value(write_tree: Any, api: str) -> None:
    root = lab(write_tree, api)
    text = invoke("validate", "-i", str(root))
    as_json = invoke("validate", "-i", str(root), "--json")
    assert "labsmith_pve_api" in text and '"labsmith_pve_api' in as_json
    assert "schema.invalid" in as_json
    assert CANARY not in text + as_json
    assert CANARY.split("-")[0] not in text + as_json


# Valid in form, so only the connection stage can trip over them.
VALID = {
    "secret as the token name": (
        f"labsmith_pve_api: {{token_id: 'root@pam!{CANARY}'}}\n",
        "labsmith_pve_api.token_id",
    ),
    "secret as the variable name": (
        f"labsmith_pve_api: {{token_id: 'root@pam!apply', token_secret_env: {CANARY_NAME}}}\n",
        "labsmith_pve_api.token_secret_env",
    ),
    "secret as the CA file": (
        f"labsmith_pve_api: {{token_id: 'root@pam!apply', ca_file: '{CANARY}.pem'}}\n",
        "labsmith_pve_api.ca_file",
    ),
}


@pytest.mark.parametrize(("api", "key"), VALID.values(), ids=VALID.keys())
def test_plans_errors_and_validates_dump_never_show_the_value(
    write_tree: Any, monkeypatch: pytest.MonkeyPatch, api: str, key: str
) -> None:
    monkeypatch.delenv("LABSMITH_PVE_TOKEN_SECRET", raising=False)
    monkeypatch.delenv("LABSMITH_PVE_TOKEN", raising=False)
    monkeypatch.delenv(CANARY_NAME, raising=False)
    if "ca_file" in key:
        monkeypatch.setenv("LABSMITH_PVE_TOKEN_SECRET", "not-the-canary")
    root = lab(write_tree, api)
    dump = invoke("validate", "-i", str(root), "--json")
    assert '"valid": true' in dump and CANARY not in dump and CANARY_NAME not in dump
    result = CliRunner().invoke(main, ["plan", "-i", str(root)])
    assert result.exit_code == 2, result.output
    assert key in result.output and "host_vars/pve1.yml" in result.output
    assert CANARY not in result.output and CANARY_NAME not in result.output


def test_a_url_with_a_password_is_refused_without_repeating_it() -> None:
    endpoint = Endpoint(
        url=f"https://root:{CANARY}@10.0.0.5:8006", token_id="a@pam!b", token_secret="s"
    )
    with pytest.raises(ProxmoxApiError) as raised:
        ProxmoxClient(endpoint)
    assert "must be https://host[:port]" in str(raised.value)
    assert CANARY not in str(raised.value)
