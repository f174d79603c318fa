"""Where each Proxmox cluster's API is and how to authenticate to it.

From the inventory (``labsmith_pve_api`` on a Proxmox host, ``ansible_host`` for the
default URL) or from command-line overrides that apply to every cluster (how a lab is
pointed at ``labsmith sim serve``). The token secret comes from the override, an inline
``!vault`` value (decrypted here, never printed), or an environment variable.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from labsmith.errors import LabsmithError
from labsmith.inventory.lab import Lab, PhysicalHost
from labsmith.inventory.model import PveApi
from labsmith.inventory.sources import VaultedValue
from labsmith.proxmox.client import Endpoint

DEFAULT_PORT = 8006
# Messages name this variable; one the inventory chose is a value under labsmith_pve_api,
# and those are never repeated (a secret pasted there must not reach a terminal).
DEFAULT_SECRET_ENV = PveApi.model_fields["token_secret_env"].default


class EndpointError(LabsmithError):
    """The inventory and options do not say how to reach a cluster's API."""

    exit_code = 2


@dataclass(frozen=True)
class Overrides:
    """``--pve-url``, ``--pve-token`` (``user@realm!name=secret``) and ``--pve-ca``."""

    url: str | None = None
    token: str | None = None
    ca_file: Path | None = None
    root_password: str | None = None


def cluster_endpoints(
    lab: Lab, overrides: Overrides, vault_password_file: Path | None = None
) -> dict[str, Endpoint]:
    """One endpoint per cluster that has guests to manage, keyed by cluster name."""
    clusters: dict[str, list[PhysicalHost]] = {}
    for host in sorted(lab.hosts.values(), key=lambda h: h.name):
        if host.spec.kind == "proxmox":
            clusters.setdefault(host.cluster, []).append(host)
    return {
        cluster: _endpoint(lab, hosts, overrides, vault_password_file)
        for cluster, hosts in clusters.items()
    }


def _endpoint(
    lab: Lab, hosts: list[PhysicalHost], overrides: Overrides, vault_password_file: Path | None
) -> Endpoint:
    host = next((h for h in hosts if h.spec.pve_api is not None), hosts[0])
    api = host.spec.pve_api
    address = str(host.source.variables.get("ansible_host") or host.name)
    url = overrides.url or (api.url if api and api.url else f"https://{address}:{DEFAULT_PORT}")
    token_id, secret = _token(host, overrides, vault_password_file)
    ca_file = overrides.ca_file
    if ca_file is None and api is not None and api.ca_file:
        ca_file = lab.root / api.ca_file
        if not ca_file.is_file():
            raise EndpointError(
                f"{host.origin('labsmith_pve_api')}: labsmith_pve_api.ca_file names no file "
                f"(paths are relative to the inventory, {lab.root}); copy the node's "
                "/etc/pve/pve-root-ca.pem to the path it names"
            )
    return Endpoint(
        url=url.rstrip("/"),
        token_id=token_id,
        token_secret=secret,
        ca_file=ca_file,
        root_password=_root_password(host, overrides, vault_password_file),
    )


def _root_password(
    host: PhysicalHost, overrides: Overrides, vault_password_file: Path | None
) -> str | None:
    """Optional: from the override, the inventory's !vault value, or its environment
    variable (LABSMITH_PVE_ROOT_PASSWORD unless labsmith_pve_api names another)."""
    if overrides.root_password:
        return overrides.root_password
    api = host.spec.pve_api
    if api is not None and api.root_password is not None:
        return _decrypt(api.root_password, host, vault_password_file, "root_password")
    variable = api.root_password_env if api is not None else "LABSMITH_PVE_ROOT_PASSWORD"
    return os.environ.get(variable) or None


def _token(
    host: PhysicalHost, overrides: Overrides, vault_password_file: Path | None
) -> tuple[str, str]:
    if overrides.token is not None:
        token_id, separator, secret = overrides.token.partition("=")
        if not separator or "!" not in token_id or not secret:
            raise EndpointError(
                "--pve-token must be user@realm!name=secret, as labsmith sim serve prints it"
            )
        return token_id, secret
    api = host.spec.pve_api
    if api is None:
        raise EndpointError(
            f"{host.name}: no API token to reach it: add labsmith_pve_api with token_id to "
            f"{host.source.own_file} (secret as a !vault value or in "
            "LABSMITH_PVE_TOKEN_SECRET), or pass --pve-token user@realm!name=secret"
        )
    if api.token_secret is not None:
        return api.token_id, _decrypt(api.token_secret, host, vault_password_file, "token_secret")
    secret = os.environ.get(api.token_secret_env, "")
    if not secret:
        variable = (
            api.token_secret_env
            if api.token_secret_env == DEFAULT_SECRET_ENV
            else "the environment variable labsmith_pve_api.token_secret_env names"
        )
        raise EndpointError(
            f"{host.name}: the secret of the API token in labsmith_pve_api.token_id is not "
            f"set: export {variable}, or add labsmith_pve_api.token_secret as a !vault value "
            f"in {host.origin('labsmith_pve_api')}"
        )
    return api.token_id, secret


def _decrypt(
    value: VaultedValue, host: PhysicalHost, vault_password_file: Path | None, key: str
) -> str:
    from ansible.errors import AnsibleError
    from ansible.parsing.dataloader import DataLoader
    from ansible.parsing.vault import VaultLib, get_file_vault_secret

    if vault_password_file is None:
        raise EndpointError(
            f"{host.origin('labsmith_pve_api')}: labsmith_pve_api.{key} is vault-"
            "encrypted: pass --vault-password-file"
        )
    try:
        secret = get_file_vault_secret(
            filename=str(vault_password_file), vault_id="default", loader=DataLoader()
        )
        secret.load()
        plain = VaultLib([("default", secret)]).decrypt(value.ciphertext)
    except (AnsibleError, OSError) as error:
        raise EndpointError(
            f"{host.origin('labsmith_pve_api')}: cannot decrypt labsmith_pve_api.{key} "
            f"with {vault_password_file} ({type(error).__name__}); check the vault password"
        ) from None
    return bytes(plain).decode()
