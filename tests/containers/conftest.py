"""Disposable systemd-nspawn containers for roles that need no kernel or devices of their
own: a copy of the test image's rootfs, booted in about a second."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require
from tests.testbed.container import down, up
from tests.testbed.vm import HostInfo, build_image

TOOLS = ("systemd-nspawn", "debootstrap", "ip", "nc", "ssh")


@pytest.fixture(scope="session")
def container_image() -> Path:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root (systemd-nspawn and network namespaces)")
    require(missing, "the container tier")
    return build_image()


@pytest.fixture(scope="module")
def container(
    container_image: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HostInfo]:
    """One container per test module: its scenarios are independent and leave no state the
    next one reads."""
    directory = tmp_path_factory.mktemp("container")
    try:
        yield up(container_image, directory)
    finally:
        down(directory)
