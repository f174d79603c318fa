"""Startup time of the ``labsmith`` command beside ``ansible-inventory``.

Prints the median (and best) wall time of each command, every one a fresh process, and the
ratio of each labsmith command to its ansible-inventory counterpart: ``--help`` and
``--version`` against ``ansible-inventory --version``, ``validate`` of a small lab against
``ansible-inventory --list`` of the same lab. Run: ``python benchmarks/startup.py``.
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

BIN = Path(sys.executable).parent
REPOSITORY = Path(__file__).resolve().parent.parent
SMALL_LABS = [REPOSITORY / "inventories" / "example", REPOSITORY / "inventories" / "workstation"]


class Case(NamedTuple):
    label: str
    command: list[str]
    baseline: str | None


def cases(labs: list[Path]) -> list[Case]:
    labsmith, inventory = str(BIN / "labsmith"), str(BIN / "ansible-inventory")
    found = [
        Case("ansible-inventory --version", [inventory, "--version"], None),
        Case("labsmith --help", [labsmith, "--help"], "ansible-inventory --version"),
        Case("labsmith --version", [labsmith, "--version"], "ansible-inventory --version"),
    ]
    for lab in labs:
        listing = f"ansible-inventory -i {lab.name} --list"
        found.append(Case(listing, [inventory, "-i", str(lab), "--list"], None))
        found.append(
            Case(
                f"labsmith validate -i {lab.name}", [labsmith, "validate", "-i", str(lab)], listing
            )
        )
    return found


def wall_times(command: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        # validate exits 1 for a lab with findings; anything else means nothing was measured.
        if completed.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(command)} failed:\n{completed.stderr.decode()}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11, help="runs of each command")
    parser.add_argument("--lab", type=Path, action="append", help="inventory (repeatable)")
    args = parser.parse_args()
    medians: dict[str, float] = {}
    print(f"{'command':44} {'median s':>9} {'best s':>8} {'ratio':>6}  (runs: {args.runs})")
    for case in cases(args.lab or SMALL_LABS):
        times = wall_times(case.command, args.runs)
        medians[case.label] = statistics.median(times)
        ratio = f"{medians[case.label] / medians[case.baseline]:.2f}x" if case.baseline else ""
        print(f"{case.label:44} {medians[case.label]:9.3f} {min(times):8.3f} {ratio:>6}")


if __name__ == "__main__":
    main()
