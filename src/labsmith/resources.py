"""Files labsmith ships beside its code: the Jinja templates and the example lab.

They live at the top level of the repository (templates/, inventories/example/). A wheel
carries them as ``labsmith/_data/...`` (see pyproject's force-include); an editable install
runs from the checkout, where they are two directories up from this package.
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
