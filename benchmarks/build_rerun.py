"""What ``labsmith build`` adds over a bare ``ansible-playbook`` on a converged host.

Boots one disposable test host (qemu, software emulation; tests/testbed/), converges it once
with ``labsmith build --hosts``, then times converged re-runs of the same host playbook:
through ``labsmith build`` (validation, ansible-runner, its events, the progress display and
the kept run directory) and as a bare ``ansible-playbook -i <lab> playbooks/host.yml`` with
the same settings. Each is run ``--repeat`` times; the medians are printed with their ratio.

Run: ``.venv/bin/python benchmarks/build_rerun.py [--repeat N]`` (as root on Debian, after
``make system-deps``; about 10 minutes).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.testbed.inventory import write_inventory  # noqa: E402
from tests.testbed.vm import build_image, down, up  # noqa: E402

BIN = Path(sys.executable).parent


def timed(command: list[str], environment: dict[str, str]) -> float:
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"{command[0]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    with tempfile.TemporaryDirectory(prefix="labsmith-bench-") as scratch:
        work = Path(scratch)
        started = time.monotonic()
        host = up(build_image(), work / "testhost")
        print(f"test host up in {time.monotonic() - started:.0f} s (qemu TCG, direct boot)")
        try:
            # Direct boot keeps qemu's -append line: ask only for what that line has.
            lab = write_inventory(work / "lab", host, extra={"iommu_passthrough_mode": False})
            build = [str(BIN / "labsmith"), "build", "-i", str(lab), "--hosts", "--yes",
                     "--run-dir", str(work / "runs")]  # fmt: skip
            first = timed(build, environment)
            print(f"first build (converge, two reboots): {first:.1f} s")
            bare = [str(BIN / "ansible-playbook"), "-i", str(lab),
                    str(REPO / "playbooks" / "host.yml")]  # fmt: skip
            environment["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
            through_labsmith = [timed(build, environment) for _ in range(arguments.repeat)]
            through_ansible = [timed(bare, environment) for _ in range(arguments.repeat)]
        finally:
            down(work / "testhost")
    labsmith_median = statistics.median(through_labsmith)
    ansible_median = statistics.median(through_ansible)
    print(f"converged re-run, {arguments.repeat} runs each (median, all):")
    print(f"  labsmith build --hosts : {labsmith_median:6.1f} s  ({_seconds(through_labsmith)})")
    print(f"  ansible-playbook       : {ansible_median:6.1f} s  ({_seconds(through_ansible)})")
    print(f"  labsmith / ansible-playbook: {labsmith_median / ansible_median:.2f}")


def _seconds(values: list[float]) -> str:
    return ", ".join(f"{value:.1f}" for value in values)


if __name__ == "__main__":
    main()
