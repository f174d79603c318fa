"""Disposable Debian 12 test hosts under qemu (software emulation), for the roles' tests."""
