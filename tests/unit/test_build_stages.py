"""The build pipeline's pure parts: where a host's key is checked, which hosts are built."""

from pathlib import Path

import pytest

from labsmith.errors import InvalidInventoryError, UnknownHostError
from labsmith.orchestrate.build import (
    known_hosts_file,
    prepare,
)
from tests.conftest import INVENTORIES


@pytest.mark.parametrize(
    ("common_args", "expected"),
    [
        ("-o UserKnownHostsFile=/srv/kh -o StrictHostKeyChecking=yes", Path("/srv/kh")),
        ("-oUserKnownHostsFile=/srv/kh", Path("/srv/kh")),
        ("-o 'UserKnownHostsFile=/srv/a b' -o X=1", Path("/srv/a")),
        ("-o userknownhostsfile=~/kh", Path("~/kh").expanduser()),
        ("-o StrictHostKeyChecking=yes", None),
        (None, None),
    ],
)
def test_the_probe_checks_host_keys_where_ansible_does(
    common_args: str | None, expected: Path | None
) -> None:
    assert known_hosts_file(common_args) == expected


def test_the_build_targets_the_physical_hosts_only() -> None:
    target = prepare(INVENTORIES / "example")
    assert target.hosts == ["pve1"]
    with pytest.raises(UnknownHostError, match="--limit ai-private: not a physical host"):
        prepare(INVENTORIES / "example", ("ai-private",))


def test_an_invalid_inventory_is_refused_before_anything_runs() -> None:
    broken = INVENTORIES / "broken" / "pve-api-plain-secret"
    with pytest.raises(InvalidInventoryError, match="nothing was changed"):
        prepare(broken)
