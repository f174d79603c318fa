"""Boot, reach and stop a disposable systemd-nspawn container from the test image's rootfs.

The container tier of the tests: roles that need no kernel or devices of their own
(packages, configuration files, services) run here instead of in a VM, because a container
boots to SSH in about a second where a VM under TCG takes half a minute. Each container
gets a copy of the rootfs, its own network namespace with only loopback (it reaches no
network), and sshd reached through ``ip netns exec NS nc 127.0.0.1 22``. Its host key is
the image's and is verified under a per-container alias.

    python -m tests.testbed.container up DIR
    python -m tests.testbed.container down DIR

``up`` writes DIR/host.json, the same shape as the VM's, for playbooks and tests.
"""

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from tests.testbed.vm import HostInfo, build_image, ssh

BOOT_TIMEOUT = 60.0
# Host PID 1 may not be systemd (CI machines, containers): nspawn must neither register
# with machined nor ask for a scope unit.
NSPAWN_FLAGS = ("--boot", "--keep-unit", "--register=no", "--console=passive")


def _name(directory: Path) -> str:
    """A netns and machine name unique to this directory (kernel names stop at 15 chars)."""
    return f"lsct{os.getpid() % 10000}{abs(hash(directory.resolve())) % 1000:03d}"[:15]


def up(image: Path, directory: Path) -> HostInfo:
    """Copy the rootfs, boot it and return once an SSH command succeeds in it."""
    directory.mkdir(parents=True, exist_ok=True)
    name = _name(directory)
    rootfs = directory / "rootfs"
    if rootfs.exists():
        shutil.rmtree(rootfs)
    subprocess.run(["cp", "-a", "--reflink=auto", str(image / "rootfs"), str(rootfs)], check=True)
    # Remounting / is the VM's business; in a container it only fails the boot.
    (rootfs / "etc/systemd/system/systemd-remount-fs.service").symlink_to("/dev/null")
    (rootfs / "etc/hostname").write_text(f"{name}\n")
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    log = (directory / "nspawn.log").open("wb")
    process = subprocess.Popen(
        ["systemd-nspawn", "-D", str(rootfs), f"--machine={name}", *NSPAWN_FLAGS,
         f"--network-namespace-path=/run/netns/{name}", "--capability=CAP_NET_ADMIN"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    (directory / "nspawn.pid").write_text(f"{process.pid}\n")
    (directory / "netns").write_text(f"{name}\n")
    known_hosts = directory / "known_hosts"
    host_key = (image / "host_key.pub").read_text().split()
    known_hosts.write_text(f"{name} {host_key[0]} {host_key[1]}\n")
    key = directory / "id_ed25519"
    shutil.copyfile(image / "id_ed25519", key)
    key.chmod(0o600)
    info = HostInfo(
        "127.0.0.1", 22, "root", str(key), str(known_hosts), "nspawn",
        proxy_command=f"ip netns exec {name} nc 127.0.0.1 22", host_key_alias=name,
    )  # fmt: skip
    (directory / "host.json").write_text(json.dumps(asdict(info), indent=1))
    _wait_for_ssh(info, process, directory)
    return info


def _wait_for_ssh(info: HostInfo, process: "subprocess.Popen[bytes]", directory: Path) -> None:
    deadline = time.monotonic() + BOOT_TIMEOUT
    while True:
        with contextlib.suppress(subprocess.TimeoutExpired):
            if ssh(info, "systemctl is-system-running --wait >/dev/null; true", 30).returncode == 0:
                return
        if process.poll() is not None:
            raise RuntimeError(f"systemd-nspawn exited; see {directory / 'nspawn.log'}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no SSH after {BOOT_TIMEOUT:.0f} s; see {directory / 'nspawn.log'}")
        time.sleep(0.5)


def down(directory: Path, timeout: float = 30) -> None:
    """Power off over SSH, else kill nspawn; the rootfs copy and the netns are removed."""
    pid = _read_int(directory / "nspawn.pid")
    info_file = directory / "host.json"
    if pid is not None and _alive(pid) and info_file.exists():
        info = HostInfo(**json.loads(info_file.read_text()))
        with contextlib.suppress(subprocess.TimeoutExpired):
            ssh(info, "systemctl poweroff", timeout=15)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    if pid is not None and _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, 9)
    netns = directory / "netns"
    if netns.exists():
        subprocess.run(["ip", "netns", "del", netns.read_text().strip()], check=False)
        netns.unlink()
    shutil.rmtree(directory / "rootfs", ignore_errors=True)
    (directory / "nspawn.pid").unlink(missing_ok=True)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        # Not our child (the CLI's down after its up): ask the kernel instead.
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return finished == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.testbed.container")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="build the image if needed, boot, wait for SSH")
    start.add_argument("directory", type=Path)
    start.add_argument("--cache", type=Path, default=None)
    stop = commands.add_parser("down", help="power off and remove the copy")
    stop.add_argument("directory", type=Path)
    arguments = parser.parse_args(argv)
    if arguments.command == "up":
        started = time.monotonic()
        up(build_image(arguments.cache), arguments.directory)
        print(f"container up in {time.monotonic() - started:.1f} s")
    else:
        down(arguments.directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
