"""Snapshots from minimal images and VM guests: a file that holds its command's error is a
failure, not output, and a guest's IOMMU and VT-x are its host's."""

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from labsmith.checks.probe_report import judge
from labsmith.checks.verdict import Check
from labsmith.cli import main
from labsmith.facts.snapshot import command_failure, load_snapshot
from tests.conftest import FIXTURES

HOST = FIXTURES / "host"


def checks(directory: Path) -> dict[str, Check]:
    return {check.id: check for check in judge(load_snapshot(directory), "host").checks}


def test_shell_errors_of_every_shell_are_failures_and_output_is_not() -> None:
    for error in [
        "bash: lspci: command not found",
        "-bash: line 1: rocm-smi: command not found",
        "sh: 1: mokutil: not found",
        "sh: dkms: not found",
        "zsh: command not found: nvidia-smi",
        "ls: cannot access '/sys/firmware/efi': No such file or directory",
        "ls: /sys/firmware/efi: No such file or directory",
        "dmesg: read kernel buffer failed: Operation not permitted",
        "sudo: a password is required",
        "cat: /proc/cpuinfo: No such file or directory",
    ]:
        assert command_failure(error + "\n") == error
    lsiommu = (HOST / "iommu_groups_lsiommu_hm87_gtx765m_dash_shopt_error.txt").read_text()
    assert command_failure(lsiommu.split("\n", 1)[1]) is None
    assert command_failure("BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet\n") is None


def test_command_not_found_in_a_json_file_no_longer_ends_the_probe(tmp_path: Path) -> None:
    (tmp_path / "rocm-smi.json").write_text("bash: rocm-smi: command not found\n")
    (tmp_path / "lsblk.json").write_text("ERROR: lsblk: unknown column: ID-LINK\n")
    shutil.copy(HOST / "iommu_groups_intel_z170_gtx960_isolated.txt", tmp_path / "iommu_groups")
    result = CliRunner().invoke(main, ["probe", "--snapshot", str(tmp_path), "--json"])
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)
    by_id = {check["id"]: check for check in report["checks"]}
    assert by_id["iommu.active"]["status"] == "pass"
    assert sorted(gpu["address"] for gpu in report["gpus"]) == ["0000:00:02.0", "0000:01:00.0"]


def test_failed_commands_give_unknown_never_pass_or_fail(tmp_path: Path) -> None:
    (tmp_path / "lspci").write_text("bash: lspci: command not found\n")
    (tmp_path / "cpuinfo").write_text("cat: /proc/cpuinfo: No such file or directory\n")
    (tmp_path / "iommu_groups").write_text(
        "find: '/sys/kernel/iommu_groups/': No such file or directory\n"
    )
    (tmp_path / "dkms-status").write_text("sh: 1: dkms: not found\n")
    found = checks(tmp_path)
    assert found["driver.nouveau"].status == "unknown"
    assert "command not found" in found["driver.nouveau"].message
    assert found["cpu.virtualization"].status == "unknown"
    assert found["iommu.active"].status == "unknown"
    assert found["driver.dkms_headers"].status == "unknown"


def test_ls_no_such_file_for_efi_means_bios_boot_and_other_errors_prove_nothing(
    tmp_path: Path,
) -> None:
    efi = tmp_path / "efi"
    efi.write_text("ls: cannot access '/sys/firmware/efi': No such file or directory\n")
    assert load_snapshot(tmp_path).uefi is False
    assert checks(tmp_path)["boot.uefi"].status == "warn"
    efi.write_text("bash: ls: command not found\n")
    assert load_snapshot(tmp_path).uefi is None
    assert checks(tmp_path)["boot.uefi"].status == "unknown"
    efi.write_text("config_table\nefivars\nfw_platform_size\nruntime\nsystab\n")
    assert load_snapshot(tmp_path).uefi is True


# A QEMU/KVM guest: the flags line of a KVM vCPU without nested VMX, and its boot log.
GUEST_CPUINFO = (
    "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: QEMU Virtual CPU version 2.5+\n"
    "flags\t\t: fpu de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush "
    "mmx fxsr sse sse2 syscall nx lm rep_good nopl xtopology cpuid tsc_known_freq pni "
    "ssse3 cx16 sse4_1 sse4_2 x2apic popcnt hypervisor lahf_lm\n"
)
GUEST_DMESG = (
    "[    0.000000] DMI: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 4.2023.08-4 02/15/2024\n"
    "[    0.000000] Hypervisor detected: KVM\n"
    "[    0.312345] iommu: Default domain type: Translated\n"
)


def test_a_vm_guest_leaves_iommu_and_vtx_to_its_host(tmp_path: Path) -> None:
    (tmp_path / "cpuinfo").write_text(GUEST_CPUINFO)
    (tmp_path / "iommu_groups").write_text("")
    (tmp_path / "cmdline").write_text("BOOT_IMAGE=/vmlinuz ro quiet intel_iommu=off\n")
    found = checks(tmp_path)
    for check_id in ("iommu.active", "cpu.virtualization"):
        assert found[check_id].status == "unknown"
        assert "VM guest" in found[check_id].message
        assert "firmware" not in found[check_id].message
    assert found["cmdline.iommu"].status == "warn"


def test_the_kernel_log_alone_marks_a_guest(tmp_path: Path) -> None:
    (tmp_path / "dmesg").write_text(GUEST_DMESG)
    facts = load_snapshot(tmp_path)
    assert facts.vm_guest == "the kernel log says 'Hypervisor detected: KVM'"
    # "Default domain type" is printed with or without an IOMMU: it proves nothing
    assert checks(tmp_path)["iommu.active"].status == "unknown"


def test_the_same_snapshot_on_bare_metal_fails_the_iommu(tmp_path: Path) -> None:
    (tmp_path / "cpuinfo").write_text(GUEST_CPUINFO.replace(" hypervisor", " vmx"))
    (tmp_path / "iommu_groups").write_text("")
    assert checks(tmp_path)["iommu.active"].status == "fail"
