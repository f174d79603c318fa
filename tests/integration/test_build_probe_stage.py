"""The build's probe stage against a real sshd on loopback: a host whose key is unknown is
skipped with advice a build user can follow (build has no --accept-new-host-key)."""

from pathlib import Path

import pytest
import yaml

from labsmith.orchestrate.build import prepare, probe_stage
from tests.integration.sshd import LoopbackSshd
from tests.integration.test_probe_cli import inventory_for

pytestmark = pytest.mark.integration


def test_an_unknown_host_key_is_skipped_with_the_build_users_fix(
    sshd: LoopbackSshd, tmp_path: Path
) -> None:
    lab = inventory_for(sshd, tmp_path / "lab")
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    host_vars = lab / "host_vars" / "testbox.yml"
    variables = yaml.safe_load(host_vars.read_text())
    variables["ansible_ssh_common_args"] = f"-o UserKnownHostsFile={empty}"
    host_vars.write_text(yaml.safe_dump(variables))
    [outcome] = probe_stage(prepare(lab), tmp_path / "run")
    assert outcome.report is None
    assert "unknown SSH host key" in outcome.skipped
    assert f"ssh-keyscan -p {sshd.port} {sshd.address} >> {empty}" in outcome.skipped
    assert (
        f"or record it with `labsmith probe testbox -i {lab} --accept-new-host-key`, "
        "then build again" in outcome.skipped
    )
    assert "or pass --accept-new-host-key" not in outcome.skipped
    assert empty.read_text() == ""  # the build's probe never records a key itself
