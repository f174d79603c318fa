"""CPU, Secure Boot, lsblk, ip link, os-release and uname parsers."""

import pytest

from labsmith.facts.model import BlockDevice, NetLink
from labsmith.facts.parse_system import (
    parse_cpuinfo,
    parse_ip_link_json,
    parse_lsblk_json,
    parse_os_release,
    parse_sb_state,
    parse_uname,
)
from labsmith.facts.snapshot import strip_source_line
from tests.conftest import FIXTURES

GIB = 1024**3


def fixture(name: str) -> str:
    return strip_source_line((FIXTURES / "host" / name).read_text())


# ---- /proc/cpuinfo -------------------------------------------------------------------------

INTEL_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model name\t: Intel(R) Core(TM) i5-6500 CPU @ 3.20GHz
flags\t\t: fpu vme de pse tsc msr pae mce vmx est tm2 ssse3 sse4_1 sse4_2 x2apic aes avx
bugs\t\t: cpu_meltdown spectre_v1

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Intel(R) Core(TM) i5-6500 CPU @ 3.20GHz
flags\t\t: fpu vme de pse tsc msr pae mce vmx est tm2 ssse3 sse4_1 sse4_2 x2apic aes avx hypervisor
"""


def test_intel_cpuinfo() -> None:
    cpu = parse_cpuinfo(INTEL_CPUINFO)
    assert cpu.vendor == "GenuineIntel"
    assert cpu.model_name == "Intel(R) Core(TM) i5-6500 CPU @ 3.20GHz"
    assert cpu.logical_cpus == 2
    assert {"vmx", "aes", "hypervisor"} <= cpu.flags  # the union over every processor
    assert "svm" not in cpu.flags
    assert "cpu_meltdown" not in cpu.flags  # bugs are not flags


def test_amd_cpuinfo_has_svm() -> None:
    cpu = parse_cpuinfo(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\n"
        "model name\t: AMD Ryzen 7 5700G with Radeon Graphics\nflags\t\t: fpu svm npt\n"
    )
    assert (cpu.vendor, cpu.logical_cpus) == ("AuthenticAMD", 1)
    assert cpu.flags == frozenset({"fpu", "svm", "npt"})


def test_arm64_cpuinfo_has_features_and_no_vendor() -> None:
    cpu = parse_cpuinfo(
        "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes\n"
        "CPU implementer\t: 0x41\n\nprocessor\t: 1\nFeatures\t: fp asimd evtstrm aes\n"
    )
    assert (cpu.vendor, cpu.model_name, cpu.logical_cpus) == (None, None, 2)
    assert "asimd" in cpu.flags


def test_empty_cpuinfo() -> None:
    cpu = parse_cpuinfo("")
    assert (cpu.vendor, cpu.model_name, cpu.flags, cpu.logical_cpus) == (None, None, frozenset(), 0)


# ---- mokutil --sb-state --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "enabled"),
    [
        ("SecureBoot enabled\n", True),
        ("SecureBoot disabled\n", False),
        ("SecureBoot disabled\nPlatform is in Setup Mode\n", False),
        ("EFI variables are not supported on this system\n", None),
        ("sudo: mokutil: command not found\n", None),
        ("", None),
    ],
)
def test_secure_boot_state(text: str, enabled: bool | None) -> None:
    state = parse_sb_state(text)
    assert state.enabled is enabled
    assert state.text == text.strip()


# ---- lsblk -J -O ---------------------------------------------------------------------------


def test_lsblk_human_sizes_children_and_id_links() -> None:
    nvme, sata = parse_lsblk_json(fixture("synthetic_lsblk_J_O_human_sizes.json"))
    assert (nvme.name, nvme.path, nvme.type, nvme.transport) == (
        "nvme0n1",
        "/dev/nvme0n1",
        "disk",
        "nvme",
    )
    assert (nvme.model, nvme.serial, nvme.wwn) == (
        "Samsung SSD 980 PRO 2TB",
        "S6B0NL0T123456A",
        "eui.002538b211b2c4d1",
    )
    assert nvme.size_bytes == round(1.8 * 1024**4)
    assert nvme.id_links == ("nvme-Samsung_SSD_980_PRO_2TB_S6B0NL0T123456A",)
    part1, part2 = nvme.children
    assert (part1.name, part1.type, part1.size_bytes, part1.model) == (
        "nvme0n1p1",
        "part",
        512 * 1024**2,
        None,
    )
    [root] = part2.children
    assert (root.name, root.type, root.size_bytes, root.transport) == (
        "pve-root",
        "lvm",
        96 * GIB,
        None,
    )
    assert root.id_links == ("dm-name-pve-root",)
    assert sata.model == "CT1000MX500SSD1"  # lsblk pads models with spaces
    assert (sata.size_bytes, sata.transport) == (round(931.5 * GIB), "sata")


def test_lsblk_byte_sizes_as_numbers_and_numeric_strings() -> None:
    text = """{"blockdevices": [
      {"name": "sda", "path": "/dev/sda", "type": "disk", "size": 2000398934016, "tran": "sata",
       "model": "WDC WD20EFRX-68EUZN0", "serial": "WD-WCC4M1234567", "wwn": "0x50014ee2b1234567"},
      {"name": "sdb", "type": "disk", "size": "1000204886016"},
      {"name": "sr0", "type": "rom", "size": null, "model": ""}
    ]}"""
    sda, sdb, sr0 = parse_lsblk_json(text)
    assert sda.size_bytes == 2000398934016
    assert sda.id_links == ()  # util-linux without "id-link"
    assert sda.children == ()
    assert (sdb.size_bytes, sdb.path, sdb.model) == (1000204886016, None, None)
    assert sr0 == BlockDevice("sr0", None, "rom", None, None, None, None, None)


def test_lsblk_without_devices() -> None:
    assert parse_lsblk_json('{"blockdevices": []}') == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not JSON"),
        ("NAME MAJ:MIN RM SIZE RO TYPE MOUNTPOINTS\nsda 8:0 0 1.8T 0 disk", "not JSON"),
        ('{"devices": []}', '"blockdevices"'),
        ("[]", '"blockdevices"'),
    ],
)
def test_lsblk_text_that_is_not_lsblk_json_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_lsblk_json(text)


# ---- ip -j -d link -------------------------------------------------------------------------


def test_ip_link_bridge_with_vlan_filtering_and_a_vlan() -> None:
    links = {
        link.name: link
        for link in parse_ip_link_json(fixture("synthetic_ip_j_d_link_bridge_vlan.json"))
    }
    assert list(links) == ["lo", "enp5s0", "vmbr0", "vmbr1", "vmbr0.20"]
    assert links["lo"] == NetLink("lo", "00:00:00:00:00:00", None, None, "UNKNOWN")
    nic = links["enp5s0"]
    assert (nic.kind, nic.master, nic.state, nic.mac) == (None, "vmbr0", "UP", "a8:a1:59:12:34:56")
    assert (links["vmbr0"].kind, links["vmbr0"].vlan_filtering) == ("bridge", True)
    assert (links["vmbr1"].kind, links["vmbr1"].vlan_filtering) == ("bridge", False)
    vlan = links["vmbr0.20"]
    assert (vlan.kind, vlan.vlan_id, vlan.vlan_filtering) == ("vlan", 20, None)


def test_ip_link_without_details() -> None:
    [link] = parse_ip_link_json('[{"ifindex": 2, "ifname": "eno1", "link_type": "ether"}]')
    assert link == NetLink("eno1", None, None, None, None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not JSON"),
        ("1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536", "not JSON"),
        ('{"ifname": "lo"}', "not a JSON list"),
    ],
)
def test_ip_link_text_that_is_not_ip_json_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_ip_link_json(text)


# ---- /etc/os-release -----------------------------------------------------------------------


def test_debian_os_release_with_every_quoting() -> None:
    text = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME='Debian GNU/Linux'
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
# a comment line
HOME_URL="https://www.debian.org/"
QUOTED="say \\"hi\\""
BROKEN="unterminated
"""
    release = parse_os_release(text)
    assert (release.id, release.version_id, release.pretty_name) == (
        "debian",
        "12",
        "Debian GNU/Linux 12 (bookworm)",
    )
    assert release.fields["NAME"] == "Debian GNU/Linux"
    assert release.fields["VERSION_CODENAME"] == "bookworm"
    assert release.fields["HOME_URL"] == "https://www.debian.org/"
    assert release.fields["QUOTED"] == 'say "hi"'
    assert release.fields["BROKEN"] == "unterminated"
    assert "# a comment line" not in release.fields


def test_os_release_without_the_usual_keys() -> None:
    release = parse_os_release('NAME="Custom"\nID=""\n')
    assert (release.id, release.version_id, release.pretty_name) == (None, None, None)
    assert release.fields == {"NAME": "Custom", "ID": ""}


# ---- uname -a ------------------------------------------------------------------------------


def test_proxmox_uname() -> None:
    uname = parse_uname(
        "Linux pve1 6.8.12-4-pve #1 SMP PREEMPT_DYNAMIC PMX 6.8.12-4 (2024-11-06T15:04Z) "
        "x86_64 GNU/Linux\n"
    )
    assert (uname.hostname, uname.kernel_release, uname.machine) == (
        "pve1",
        "6.8.12-4-pve",
        "x86_64",
    )


def test_uname_without_gnu_linux_and_with_a_prompt() -> None:
    uname = parse_uname(
        "$ uname -a\nLinux gpu-box 6.1.0-rpi7-rpi-v8 #1 SMP PREEMPT Debian 1:6.1.63 aarch64\n"
    )
    assert (uname.hostname, uname.kernel_release, uname.machine) == (
        "gpu-box",
        "6.1.0-rpi7-rpi-v8",
        "aarch64",
    )


def test_short_or_empty_uname() -> None:
    assert parse_uname("Linux pve1 6.8.12-4-pve\n").machine is None
    empty = parse_uname("")
    assert (empty.hostname, empty.kernel_release, empty.machine) == (None, None, None)
