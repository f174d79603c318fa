"""Container bind mounts: what the inventory may hold, and the root command built from them.

Both paths go into PVE's ``mpN`` property string and into the ``pct set`` line that ``plan``
prints for root to run, so a bad value is refused where it is written, and whatever passes
reaches the command as quoted words that a shell cannot split or expand.
"""

import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from labsmith.checks.lab import check_lab
from labsmith.proxmox.desired import desired_lab
from labsmith.proxmox.observe import ObservedCluster
from labsmith.proxmox.plan import plan_guest
from tests.conftest import INVENTORIES

HOSTS = "---\nall:\n  children:\n    proxmox:\n      hosts:\n        pve1:\n    guests:\n      hosts:\n        ct1:\n"
PVE1 = """---
labsmith_kind: proxmox
labsmith_cpu: {vendor: amd, cores: 16, threads: 32}
labsmith_memory: 64G
labsmith_bridges:
  - {name: vmbr0, vlan_aware: true}
labsmith_storage:
  - {id: fast, layout: existing, backend: zfs}
"""


def ct1(source: str, path: str) -> str:
    mount = yaml.safe_dump({"source": source, "path": path}, default_flow_style=True).strip()
    return f"""---
labsmith_guest:
  type: lxc
  node: pve1
  vmid: 120
  cores: 2
  memory: 2G
  ostemplate: local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst
  rootfs: {{storage: fast, size: 8G}}
  bind_mounts:
    - {mount}
"""


# (value, what the message says is wrong)
BAD_PATHS = [
    ("/tank/a,b", "','"),
    ("/tank/a,mp=/etc", "','"),
    ("/tank/a=b", "'='"),
    ("/tank/my models", "' '"),
    ("/tank/a;rm -rf /", "' '"),
    ("/tank/a\tb", "'\\t'"),
    ("/tank/a\nb", "'\\n'"),
    ("/tank/\x1b[2Jb", "'\\x1b'"),
    ("/tank/a\u00a0b", "'\\xa0'"),
    ("models/public", "not an absolute path"),
    ("$(reboot)", "not an absolute path"),
    ("", "not an absolute path"),
    ("/tank/../etc", "'..' component"),
    ("/tank/./models", "'..' component"),
]


@pytest.mark.parametrize("field", ["source", "path"])
@pytest.mark.parametrize(("value", "problem"), BAD_PATHS, ids=[repr(v) for v, _ in BAD_PATHS])
def test_a_bad_bind_mount_path_is_a_finding_at_its_file_and_key(
    write_tree: Any, field: str, value: str, problem: str
) -> None:
    source, path = (value, "/srv/models") if field == "source" else ("/tank/models", value)
    root: Path = write_tree(
        {"hosts.yml": HOSTS, "host_vars/pve1.yml": PVE1, "host_vars/ct1.yml": ct1(source, path)}
    )
    [found] = check_lab(root).findings
    assert (found.rule, found.file, found.key, found.host) == (
        "schema.invalid",
        "host_vars/ct1.yml",
        f"labsmith_guest.bind_mounts[0].{field}",
        "ct1",
    )
    assert problem in found.message
    assert found.fix and found.fix != found.message
    # The value itself is not repeated: it may hold characters that rewrite a terminal.
    assert not value or value not in found.message + found.fix


@pytest.mark.parametrize(
    "source", ["/tank/models/$(reboot)", "/tank/`id`;x", "/tank/it's", "/tank/a|b&c>d"]
)
def test_the_printed_pct_command_keeps_every_value_one_word(tmp_path: Path, source: str) -> None:
    lab_dir = tmp_path / "lab"
    shutil.copytree(INVENTORIES / "example", lab_dir)
    ai_public = lab_dir / "host_vars" / "ai-public.yml"
    data = yaml.safe_load(ai_public.read_text())
    data["labsmith_guest"]["bind_mounts"] = [{"source": source, "path": "/srv/models"}]
    ai_public.write_text(yaml.safe_dump(data))
    report = check_lab(lab_dir)
    assert report.valid, report.findings
    [guest] = [g for g in desired_lab(report.lab).guests if g.inventory_name == "ai-public"]

    action = plan_guest(guest, ObservedCluster())
    [note] = action.notes
    command = note.split(" run: ", 1)[1].split(" (or give labsmith", 1)[0]
    words = shlex.split(command)
    assert words[:5] == ["pct", "set", "120", "--mp0", f"{source},mp=/srv/models"]
    assert words[5::2] == [f"--dev{n}" for n in range(len(words[5::2]))]
    # Quoted for a POSIX shell, which (unlike shlex.split) would run $(...) and `...`.
    assert command == shlex.join(words)
    assert shlex.quote(f"{source},mp=/srv/models") in command
