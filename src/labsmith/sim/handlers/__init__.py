"""Endpoint handlers, one module per area; each registers its own on import.

The package imports none of them itself, so a module the handlers use (``auth``,
``privileges``) can import ``handlers.base`` without a cycle; :func:`register_all` loads them.
"""

import importlib

MODULES = ("access", "backup", "cluster", "guests", "nodes")


def register_all() -> None:
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}")
