"""The remote script a probe runs in one SSH channel, and the reader of what it sends back.

Pure: building the script and cutting its output into frames does no I/O, so both are
tested without a host (``labsmith.facts.collect`` runs them over SSH).
"""

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from labsmith.facts.snapshot import SnapshotFile

# Every command runs with this PATH: the sbin directories hold dkms and lspci on Debian.
COMMAND_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class CommandOutput:
    exit_status: int  # -1: killed by a signal or timed out
    stdout: bytes
    stderr: bytes
    timed_out: bool = False


# A frame: "<token> <index> <exit status> <sudo used 0|1> <sudo status|-> <start ns> <end ns>
# <stdout bytes> <stderr bytes>\n", then exactly that many bytes of stdout, then of stderr.
# The lengths alone delimit the output, so no output can end a frame early, whatever it
# prints; the per-run random token tells a frame from stray text (a noisy .bashrc).
_FRAME = re.compile(
    rb"(?P<index>\d+) (?P<status>\d+) (?P<sudo>[01]) (?P<refused>\d+|-) "
    rb"(?P<started>\S+) (?P<ended>\S+) +(?P<stdout>\d+) +(?P<stderr>\d+)"
)
_MAX_HEADER = 4096
# sh's exit status for a command killed by signal N is 128 + N; paramiko reports -1 for it.
_SIGNALLED = 128


def remote_script(files: Sequence[SnapshotFile], token: str, *, as_root: bool) -> str:
    """The POSIX sh script that runs ``files`` in order and frames what each printed.

    Each command's output goes to files in a private ``mktemp -d`` directory (umask 077:
    dmesg read through sudo stays root's), so that stdout and stderr stay apart and their
    lengths are known before they are sent. A ``needs_root`` command of a normal user is
    tried through ``sudo -n`` first, then run unprivileged, as the per-channel path does.
    """
    # sudo resets the environment, so LC_ALL and PATH are set again inside it; the script's
    # own environment (set where it is started) already has them for the rest.
    privileged = f"sudo -n env LC_ALL=C PATH={COMMAND_PATH} /bin/sh -c"
    lines = [
        "umask 077",
        f'd=$(mktemp -d 2>/dev/null) || {{ echo "{token} no-temp"; exit 0; }}',
        "trap 'rm -rf \"$d\"' EXIT",
        "trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 141' PIPE; trap 'exit 143' TERM",
        "now() { date +%s%N 2>/dev/null || echo -; }",
        "frame() {",
        f'  printf \'{token} %s %s %s %s %s %s %s %s\\n\' "$1" "$2" "$3" "$4" "$5" "$(now)" \\',
        '    "$(wc -c <"$d/o")" "$(wc -c <"$d/e")"',
        '  cat "$d/o" "$d/e"',
        "}",
        f'echo "{token} begin"',
    ]
    redirect = '</dev/null >"$d/o" 2>"$d/e"'
    for index, snapshot_file in enumerate(files):
        quoted = shlex.quote(snapshot_file.command)
        command = f"/bin/sh -c {quoted} {redirect}"
        lines.append("t=$(now)")
        if snapshot_file.needs_root and not as_root:
            lines += [
                f'if {privileged} {quoted} {redirect}; then frame {index} 0 1 - "$t"',
                f'else r=$?; {command}; frame {index} $? 0 "$r" "$t"; fi',
            ]
        else:
            lines.append(f'{command}; frame {index} $? 0 - "$t"')
    lines.append(f'echo "{token} end"')
    return "\n".join(lines) + "\n"


# What one frame tells: index in the files, output, used sudo, sudo's refusal, remote seconds.
Frame = tuple[int, CommandOutput, bool, int | None, float | None]


class FrameReader:
    """Cuts the script's stdout into frames as it arrives; a frame per finished command."""

    def __init__(self, token: str, count: int) -> None:
        self._header = token.encode() + b" "
        self._count = count
        self._buffer = bytearray()
        self._started = False
        self.finished = False
        self.no_temp_directory = False

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer.extend(data)
        frames: list[Frame] = []
        while not self.finished:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                if len(self._buffer) > _MAX_HEADER and self._started:
                    raise ValueError("a frame header longer than any the script writes")
                return frames
            line = bytes(self._buffer[:newline])
            if not self._started:
                del self._buffer[: newline + 1]
                # Whatever a login shell printed before the script started is not output.
                self._started = line.endswith(self._header + b"begin")
                self.no_temp_directory = line.endswith(self._header + b"no-temp")
                self.finished = self.no_temp_directory
                continue
            if line == self._header + b"end":
                del self._buffer[: newline + 1]
                self.finished = True
                break
            frame = self._frame(line, newline)
            if frame is None:
                return frames  # its output has not all arrived yet
            frames.append(frame)
        return frames

    def _frame(self, line: bytes, newline: int) -> Frame | None:
        match = (
            _FRAME.fullmatch(line[len(self._header) :]) if line.startswith(self._header) else None
        )
        if match is None or int(match["index"]) >= self._count:
            raise ValueError(f"not a frame header: {line[:200]!r}")
        out_size, err_size = int(match["stdout"]), int(match["stderr"])
        body = newline + 1
        if len(self._buffer) < body + out_size + err_size:
            return None
        stdout = bytes(self._buffer[body : body + out_size])
        stderr = bytes(self._buffer[body + out_size : body + out_size + err_size])
        del self._buffer[: body + out_size + err_size]
        status = int(match["status"])
        refused = None if match["refused"] == b"-" else int(match["refused"])
        seconds = None
        if match["started"].isdigit() and match["ended"].isdigit():
            seconds = (int(match["ended"]) - int(match["started"])) / 1e9
        output = CommandOutput(status if status < _SIGNALLED else -1, stdout, stderr)
        return int(match["index"]), output, match["sudo"] == b"1", refused, seconds
