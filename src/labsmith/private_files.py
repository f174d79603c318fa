"""Files only their owner may read: probe snapshots, the simulator's ``--state`` (password
hashes, token digests) and its TLS private key."""

import contextlib
import os
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def make_private_directory(directory: Path) -> None:
    """Create ``directory`` and any missing parents 0700; an existing one is left as it is."""
    missing = []
    for candidate in (directory, *directory.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    for created in reversed(missing):
        with contextlib.suppress(FileExistsError):
            created.mkdir(mode=PRIVATE_DIR_MODE)
        # mkdir's mode passes through the umask; a umask such as 0o077 is fine, 0o277 is not.
        created.chmod(PRIVATE_DIR_MODE)


def write_private_file(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with a 0600 file: a crash mid-write leaves the old one, and
    an old file that others could read (or a link in its place) is not written through."""
    make_private_directory(path.parent)
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(
        temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE_MODE
    )
    with os.fdopen(descriptor, "wb") as stream:
        os.fchmod(stream.fileno(), PRIVATE_FILE_MODE)
        stream.write(data)
    temporary.replace(path)
