"""The one-channel collector against a real sshd on loopback: it must write exactly what one
channel per command writes, whatever the commands print."""

import json
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from labsmith.facts import collect
from labsmith.facts.collect import collect_snapshot
from labsmith.facts.snapshot import MANIFEST, SNAPSHOT_FILES, SnapshotFile
from labsmith.facts.snapshot_script import Frame, FrameReader, remote_script
from tests.integration.sshd import LoopbackSshd

pytestmark = pytest.mark.integration

# Lines that change between two runs a second apart on a live machine: filesystem usage
# (lsblk), the clock speed (cpuinfo); dmesg may gain lines, so it is compared as a prefix.
VOLATILE = re.compile(rb'^\s*"fs(?:avail|used|use%)": .*$|^cpu MHz.*$', re.MULTILINE)
# The token of this very run, read from the script's command line by its child: the
# strongest boundary a hostile command could forge.
FORGE_FRAMES = (
    "tok=$(tr '\\0' '\\n' </proc/$PPID/cmdline | grep -o 'labsmith-[0-9a-f]*' | head -n 1); "
    'printf "%s end\\n%s 9 0 0 - 1 2 5 0\\nfake!" "$tok" "$tok"; '
    'printf "%s 0 0 0 - 1 2 0 0\\n" "$tok" >&2'
)
CRAFTED = (
    SnapshotFile("forged", FORGE_FRAMES),
    SnapshotFile("binary", "printf 'a\\000b\\377no newline'"),
    SnapshotFile(
        "large", "head -c 300000 /dev/zero | tr '\\0' x; echo; head -c 70000 /dev/zero >&2"
    ),
    SnapshotFile("nvidia-smi.xml", "echo to stdout; echo to stderr >&2; exit 9"),
    SnapshotFile("reads-stdin", "cat; echo read nothing"),
    SnapshotFile("exit-3", "echo partial; exit 3"),
    SnapshotFile("uname", "uname -a"),
)


def snapshot_bytes(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in directory.iterdir() if path.name != MANIFEST}


def commands(directory: Path) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = json.loads((directory / MANIFEST).read_text())["commands"]
    return {
        name: {k: v for k, v in entry.items() if k != "seconds"} for name, entry in entries.items()
    }


def test_one_channel_writes_what_a_channel_per_command_writes(
    sshd: LoopbackSshd, known_hosts: Path, tmp_path: Path
) -> None:
    collect_snapshot(sshd.target(), tmp_path / "each", known_hosts=known_hosts, one_channel=False)
    collect_snapshot(sshd.target(), tmp_path / "one", known_hosts=known_hosts)

    each, one = snapshot_bytes(tmp_path / "each"), snapshot_bytes(tmp_path / "one")
    assert sorted(one) == sorted(each)
    for name in each:
        if name == "dmesg":
            assert one[name].startswith(each[name]), name
        else:
            assert VOLATILE.sub(b"", one[name]) == VOLATILE.sub(b"", each[name]), name
    assert commands(tmp_path / "one") == commands(tmp_path / "each")
    assert list(commands(tmp_path / "one")) == [entry.name for entry in SNAPSHOT_FILES]


def test_hostile_and_awkward_output_is_kept_byte_for_byte(
    sshd: LoopbackSshd, known_hosts: Path, tmp_path: Path
) -> None:
    for one_channel, name in ((False, "each"), (True, "one")):
        collect_snapshot(
            sshd.target(),
            tmp_path / name,
            known_hosts=known_hosts,
            one_channel=one_channel,
            files=CRAFTED,
        )

    one, each = snapshot_bytes(tmp_path / "one"), snapshot_bytes(tmp_path / "each")
    # Run alone, the forger finds no token to forge; everything else is the same bytes.
    assert each.pop("forged") == b" end\n 9 0 0 - 1 2 5 0\nfake!"
    assert {name: data for name, data in one.items() if name != "forged"} == each
    assert commands(tmp_path / "one") == commands(tmp_path / "each")
    forged = one["forged"].decode()
    assert re.fullmatch(
        r"labsmith-[0-9a-f]{32} end\nlabsmith-[0-9a-f]{32} 9 0 0 - 1 2 5 0\nfake!", forged
    )
    assert one["binary"] == b"a\x00b\xffno newline"
    assert one["large"] == b"x" * 300000 + b"\n"
    # stdout, then stderr: kept apart, not interleaved as they were written
    assert one["nvidia-smi.err"] == b"to stdout\nto stderr\n"
    assert one["reads-stdin"] == b"read nothing\n"
    assert "exit-3" not in one
    statuses = {name: entry["exit_status"] for name, entry in commands(tmp_path / "one").items()}
    assert statuses == {
        "forged": 0,
        "binary": 0,
        "large": 0,
        "nvidia-smi.xml": 9,
        "reads-stdin": 0,
        "exit-3": 3,
        "uname": 0,
    }


def test_a_hung_command_times_out_and_the_rest_still_run(
    sshd: LoopbackSshd, known_hosts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collect, "COMMAND_TIMEOUT", 1.0)
    files = (
        SnapshotFile("first", "echo one"),
        SnapshotFile("hangs", "sleep 4"),
        SnapshotFile("after", "echo three"),
    )

    result = collect_snapshot(sshd.target(), tmp_path / "one", known_hosts=known_hosts, files=files)

    manifest = json.loads((tmp_path / "one" / MANIFEST).read_text())["commands"]
    assert manifest["hangs"]["timed_out"] is True and result.exit_statuses["hangs"] == -1
    assert (tmp_path / "one" / "first").read_text() == "one\n"
    assert (tmp_path / "one" / "after").read_text() == "three\n"


# ---- the script itself, run here by /bin/sh --------------------------------------------------


def run_script(
    files: tuple[SnapshotFile, ...],
    path: str,
    *,
    as_root: bool,
    tmpdir: str = tempfile.gettempdir(),
) -> tuple[FrameReader, list[Frame]]:
    reader = FrameReader("labsmith-test", len(files))
    stream = subprocess.run(
        ["/bin/sh", "-c", remote_script(files, "labsmith-test", as_root=as_root)],
        capture_output=True,
        env={"PATH": path, "LC_ALL": "C", "TMPDIR": tmpdir},
        check=True,
    ).stdout
    return reader, reader.feed(stream)


def fake_sudo(directory: Path, body: str) -> str:
    directory.mkdir()
    sudo = directory / "sudo"
    sudo.write_text(f"#!/bin/sh\n{body}\n")
    sudo.chmod(0o755)
    return f"{directory}:/usr/bin:/bin"


def test_a_normal_user_tries_sudo_n_first_then_runs_unprivileged(tmp_path: Path) -> None:
    files = (
        SnapshotFile("dmesg", "echo $0 ran", needs_root=True),
        SnapshotFile("plain", "echo plain"),
    )
    refusing = fake_sudo(tmp_path / "refuses", "echo 'sudo: a password is required' >&2; exit 1")
    allowing = fake_sudo(tmp_path / "allows", 'shift; echo as root; exec "$@"')

    refused = run_script(files, refusing, as_root=False)[1]
    allowed = run_script(files, allowing, as_root=False)[1]
    as_root = run_script(files, refusing, as_root=True)[1]

    index, output, used_sudo, sudo_status, seconds = refused[0]
    assert (index, output.exit_status, output.stdout, used_sudo, sudo_status) == (
        0,
        0,
        b"/bin/sh ran\n",
        False,
        1,
    )
    assert output.stderr == b""  # the refusal is sudo's, not the command's
    assert seconds is not None and seconds >= 0
    index, output, used_sudo, sudo_status, _ = allowed[0]
    assert (output.stdout, used_sudo, sudo_status) == (b"as root\n/bin/sh ran\n", True, None)
    assert as_root[0][2:4] == (False, None)
    assert [frame[1].stdout for frame in refused[1:]] == [b"plain\n"]


def test_without_a_temporary_directory_the_script_says_so(tmp_path: Path) -> None:
    reader, frames = run_script(
        CRAFTED, "/usr/bin:/bin", as_root=True, tmpdir=str(tmp_path / "missing")
    )
    assert reader.no_temp_directory and reader.finished
    assert frames == []


def test_text_before_the_script_starts_is_not_output() -> None:
    reader = FrameReader("labsmith-t", 1)
    stream = b"Welcome! labsmith-t 0 0 0 - 1 2 3 0\nabc\nlabsmith-t begin\nlabsmith-t 0 0 0 - 1 2 3 0\nxyzlabsmith-t end\n"
    frames = [
        frame for chunk in (stream[:30], stream[30:61], stream[61:]) for frame in reader.feed(chunk)
    ]
    assert [(frame[0], frame[1].stdout) for frame in frames] == [(0, b"xyz")]
    assert reader.finished


def test_a_broken_frame_header_is_an_error_not_output() -> None:
    reader = FrameReader("labsmith-t", 1)
    with pytest.raises(ValueError, match="not a frame header"):
        reader.feed(b"labsmith-t begin\nlabsmith-t 7 0 0 - 1 2 3 0\n")
