"""Disposable test hosts for the end-to-end tests: a qemu VM per test (software emulation:
boots take ~30 s, so there are few)."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require
from tests.testbed.vm import HostInfo, build_image, down, up

TOOLS = ("qemu-system-x86_64", "qemu-img", "debootstrap", "sfdisk", "grub-mkimage")


@pytest.fixture(scope="session")
def testbed_image() -> Path:
    require([tool for tool in TOOLS if shutil.which(tool) is None], "the test host")
    return build_image()


@pytest.fixture
def test_host(testbed_image: Path, tmp_path: Path) -> Iterator[HostInfo]:
    """A host booted straight into its kernel with intel_iommu=on."""
    directory = tmp_path / "testhost"
    try:
        yield up(testbed_image, directory)
    finally:
        down(directory)
