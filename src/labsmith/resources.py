"""Files labsmith ships beside its code: the Jinja templates, the example lab and the
Ansible collection ``labsmith.lab`` (roles, playbooks, plugins).

They live at the top level of the repository, which is also the collection's root. A wheel
carries them as ``labsmith/_data/...`` (see pyproject's force-include), the collection as
``labsmith/_data/ansible_collections/labsmith/lab``; an editable install runs from the
checkout, two directories up from this package.
"""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def bundled(relative: str) -> Path:
    """``bundled("templates")`` or ``bundled("inventories/example")``."""
    packaged = _PACKAGE / "_data" / relative
    if packaged.exists():
        return packaged
    return _PACKAGE.parents[1] / relative


def example_inventory() -> Path:
    return bundled("inventories/example")


def templates_dir() -> Path:
    return bundled("templates")


def collection_root() -> Path:
    """The directory that holds the collection's galaxy.yml, roles/ and playbooks/."""
    packaged = _PACKAGE / "_data" / "ansible_collections" / "labsmith" / "lab"
    if packaged.exists():
        return packaged
    return _PACKAGE.parents[1]
