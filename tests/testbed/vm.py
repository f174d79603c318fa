"""Boot, reach and stop a disposable test host built by ``build-image.sh``.

A q35 machine with an emulated Intel IOMMU, three NVMe disks with known serials, a spare
e1000e NIC, and PCI devices that stand in for GPUs: qemu's ``edu`` (1234:11e8, binds to
vfio-pci) at 00:07.0, an ATI VGA (1002:5046, a display-class device) at 00:08.0, and two
more ``edu`` behind a PCI bridge (01:01.0, 01:02.0), which share an IOMMU group. The root disk is a qcow2
overlay, so the cached image is never changed; SSH is forwarded to 127.0.0.1:PORT only,
and the guest reaches no network. Host keys are verified (the image's key is pinned).

    python -m tests.testbed.vm up DIR [--port N] [--boot direct|grub]
    python -m tests.testbed.vm down DIR

``up`` writes DIR/host.json (address, port, key, known_hosts) for playbooks and tests.
"""

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANAGEMENT_MAC = "52:54:00:4c:53:01"
SPARE_MAC = "52:54:00:4c:53:02"
NVME_SERIALS = ("LABSMITHNVME0001", "LABSMITHNVME0002", "LABSMITHNVME0003")
# The stand-in GPUs as lspci -D -n shows them in the guest.
EDU = "1234:11e8"
ATI_VGA = "1002:5046"
ISOLATED_EDU = "0000:00:07.0"
VGA = "0000:00:08.0"
SHARED_EDU = "0000:01:01.0"
BOOT_TIMEOUT = 600.0


@dataclass(frozen=True)
class HostInfo:
    """What a playbook or test needs to reach the host (written to host.json)."""

    address: str
    port: int
    user: str
    key: str
    known_hosts: str
    boot: str  # direct | grub (a VM) | nspawn (a container)
    # A container is reached through its network namespace, under its own host key alias.
    proxy_command: str = ""
    host_key_alias: str = ""

    def ssh_options(self) -> list[str]:
        """The -o options, which Ansible's ansible_ssh_common_args carries too."""
        options = [
            f"UserKnownHostsFile={self.known_hosts}", "StrictHostKeyChecking=yes",
            "IdentitiesOnly=yes", "ServerAliveInterval=5", "ServerAliveCountMax=3",
        ]  # fmt: skip
        if self.proxy_command:
            options.append(f"ProxyCommand={self.proxy_command}")
        if self.host_key_alias:
            options.append(f"HostKeyAlias={self.host_key_alias}")
        return options

    def ssh_args(self) -> list[str]:
        options = [*self.ssh_options(), "BatchMode=yes", "ConnectTimeout=5"]
        return ["-p", str(self.port), "-i", self.key, *(f"-o{o}" for o in options)]


def build_image(cache: Path | None = None) -> Path:
    """The cached image directory (built on first use, about 90 s)."""
    command = [str(HERE / "build-image.sh")]
    if cache is not None:
        command.append(str(cache))
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return Path(result.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def up(
    image: Path, directory: Path, port: int = 0, boot: str = "direct", *, iommu: bool = True
) -> HostInfo:
    """Boot the host and return once an SSH command succeeds on it. ``iommu=False`` leaves
    the IOMMU out of the machine, as a firmware with VT-d off does."""
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    for stale in ("root.qcow2", "serial.log", "qemu.pid"):
        (directory / stale).unlink(missing_ok=True)
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image / "disk.raw"), "-F", "raw",
         str(directory / "root.qcow2")],
        check=True,
    )  # fmt: skip
    known_hosts = directory / "known_hosts"
    host_key = (image / "host_key.pub").read_text().split()
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    key = directory / "id_ed25519"
    shutil.copyfile(image / "id_ed25519", key)
    key.chmod(0o600)
    subprocess.run(_qemu_command(image, directory, port, boot, iommu=iommu), check=True)
    info = HostInfo("127.0.0.1", port, "root", str(key), str(known_hosts), boot)
    (directory / "host.json").write_text(json.dumps(asdict(info), indent=1))
    wait_for_ssh(info, directory)
    return info


def _qemu_command(
    image: Path, directory: Path, port: int, boot: str, *, iommu: bool = True
) -> list[str]:
    command = [
        "qemu-system-x86_64", "-name", "labsmith-testhost",
        # No KVM here: TCG, and -cpu max (qemu64 hangs the guest, host needs KVM).
        "-machine", "q35,accel=tcg", "-cpu", "max", "-smp", "2", "-m", "2048",
        "-nodefaults", "-display", "none", "-vga", "none",
    ]  # fmt: skip
    if iommu:
        # First, so every later PCI device sits behind the IOMMU (its own group each).
        command += ["-device", "intel-iommu"]
    command += [
        "-drive", f"file={directory / 'root.qcow2'},if=none,id=root,format=qcow2,cache=unsafe",
        "-device", "virtio-blk-pci,drive=root",
    ]  # fmt: skip
    for index, serial in enumerate(NVME_SERIALS):
        backing = directory / f"nvme{index}.raw"
        if not backing.exists():
            with backing.open("wb") as handle:
                handle.truncate(2 * 1024**3)
        command += [
            "-drive", f"file={backing},if=none,id=nvme{index},format=raw,cache=unsafe",
            "-device", f"nvme,drive=nvme{index},serial={serial}",
        ]  # fmt: skip
    command += [
        # restrict=on: the guest reaches nothing; only the forwarded SSH port comes in.
        "-netdev", f"user,id=management,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device", f"virtio-net-pci,netdev=management,mac={MANAGEMENT_MAC}",
        "-netdev", "user,id=spare,restrict=on",
        "-device", f"e1000e,netdev=spare,mac={SPARE_MAC}",
        "-device", "edu",
        "-device", "ati-vga,x-device-id=0x5046",
        # Behind a conventional PCI bridge devices share one IOMMU group: two more edu
        # cards that are not isolated (and make 00:07.0's vendor:device id not unique).
        "-device", "pci-bridge,id=legacy,chassis_nr=1,addr=0x10",
        "-device", "edu,bus=legacy,addr=0x1",
        "-device", "edu,bus=legacy,addr=0x2",
        "-serial", f"file:{directory / 'serial.log'}",
        "-qmp", f"unix:{directory / 'qmp.sock'},server=on,wait=off",
        "-pidfile", str(directory / "qemu.pid"), "-daemonize",
    ]  # fmt: skip
    if boot == "direct":
        command += [
            "-kernel", str(image / "vmlinuz"), "-initrd", str(image / "initrd"),
            "-append", "root=LABEL=root ro console=ttyS0 intel_iommu=on",
        ]  # fmt: skip
    return command


def ssh(info: HostInfo, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", *info.ssh_args(), f"{info.user}@{info.address}", command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_for_ssh(info: HostInfo, directory: Path, timeout: float = BOOT_TIMEOUT) -> None:
    """qemu accepts the forwarded port before the guest listens: only a command that runs
    proves the host is up."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ssh(info, "true", timeout=15).returncode == 0:
                return
        except subprocess.TimeoutExpired:
            pass
        if not _running(directory):
            raise RuntimeError(f"qemu exited; see {directory / 'serial.log'}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no SSH after {timeout:.0f} s; see {directory / 'serial.log'}")
        time.sleep(2)


def _pid(directory: Path) -> int | None:
    try:
        return int((directory / "qemu.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _running(directory: Path) -> bool:
    pid = _pid(directory)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def down(directory: Path, timeout: float = 30) -> None:
    """Power off over SSH, else kill qemu; the overlay is removed either way."""
    info_file = directory / "host.json"
    if info_file.exists() and _running(directory):
        info = HostInfo(**json.loads(info_file.read_text()))
        with contextlib.suppress(subprocess.TimeoutExpired):
            ssh(info, "systemctl poweroff", timeout=15)
        deadline = time.monotonic() + timeout
        while _running(directory) and time.monotonic() < deadline:
            time.sleep(0.5)
    pid = _pid(directory)
    if pid is not None and _running(directory):
        os.kill(pid, signal.SIGKILL)
    for leftover in ("root.qcow2", "qemu.pid", "qmp.sock"):
        (directory / leftover).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.testbed.vm")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="build the image if needed, boot, wait for SSH")
    start.add_argument("directory", type=Path)
    start.add_argument("--port", type=int, default=0)
    start.add_argument("--boot", choices=("direct", "grub"), default="direct")
    start.add_argument("--cache", type=Path, default=None)
    stop = commands.add_parser("down", help="power off and remove the overlay")
    stop.add_argument("directory", type=Path)
    arguments = parser.parse_args(argv)
    if arguments.command == "up":
        started = time.monotonic()
        info = up(build_image(arguments.cache), arguments.directory, arguments.port, arguments.boot)
        print(f"test host up on 127.0.0.1:{info.port} in {time.monotonic() - started:.0f} s")
    else:
        down(arguments.directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
