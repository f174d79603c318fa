"""What PVE's JSONSchema.pm takes from Perl: errors as ``die`` texts, scalar truth and
stringification, numbers, booleans, lists and sizes."""

import re
from collections.abc import Callable, Mapping
from typing import Any

Errors = dict[str, str]
Schema = Mapping[str, Any]
Verifier = Callable[[str], Any]
Validator = Callable[[dict[str, Any]], dict[str, Any]]

NOT_ALLOWED = (
    "property is not defined in schema and the schema does not allow additional properties"
)
MISSING = "property is missing and it is not optional"


class FormatError(Exception):
    """A value failed a format; ``str()`` is PVE's die text, ``errors`` per sub-key if any."""

    def __init__(self, text: str, errors: Mapping[str, str] | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.errors = dict(errors or {})

    def __str__(self) -> str:
        return self.text


def words(text: str) -> frozenset[str]:
    """A set from a whitespace-separated word list (keeps long name tables compact)."""
    return frozenset(text.split())


def die(message: str) -> FormatError:
    """A Perl ``die "message\\n"``: the text PVE puts after ``invalid format - ``."""
    return FormatError(message + "\n")


def perl_str(value: Any) -> str:
    """How Perl stringifies a decoded request value (JSON booleans are 1/0 objects)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:.15g}"
    if isinstance(value, list):
        return f"ARRAY(0x{id(value):x})"
    if isinstance(value, dict):
        return f"HASH(0x{id(value):x})"
    return "" if value is None else str(value)


def perl_truthy(value: Any) -> bool:
    """Perl truth: undef, '' and '0' (and 0) are false; references are always true."""
    if value is None:
        return False
    if isinstance(value, (list, dict)):
        return True
    if isinstance(value, (bool, int, float)):
        return bool(value)
    return value not in ("", "0")


_NUMBER = re.compile(r"^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")


def is_number(text: str) -> bool:
    """pve-common ``JSONSchema::is_number`` (the perlretut number pattern)."""
    return _NUMBER.search(text) is not None


def is_integer(text: str) -> bool:
    """pve-common ``JSONSchema::is_integer``."""
    return _INTEGER.search(text) is not None


def to_number(text: str) -> int | float:
    """Perl's numeric value of a string that passed :func:`is_number`."""
    stripped = text.strip()
    return int(stripped) if is_integer(stripped) else float(stripped)


def parse_boolean(text: str) -> int | None:
    """pve-common ``JSONSchema::parse_boolean``: 1/on/yes/true and 0/off/no/false, any case."""
    lowered = text.lower().rstrip("\n")
    if lowered in ("1", "on", "yes", "true"):
        return 1
    if lowered in ("0", "off", "no", "false"):
        return 0
    return None


def perl_split(text: str, separator: str) -> list[str]:
    """Perl ``split(/separator/, text)``: trailing empty fields are dropped, leading kept."""
    parts = text.split(separator)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def split_list(text: Any) -> list[str]:
    """pve-common ``ParseUtils::split_list``: NUL-separated, else commas, semicolons, spaces.

    A repeated parameter (a list) is split item by item; None is the empty list.
    """
    if text is None:
        return []
    if isinstance(text, list | tuple):
        return [part for item in text for part in split_list(item)]
    text = str(text)
    if "\0" in text:
        return perl_split(text, "\0")
    spaced = re.sub(r"^\s+", "", re.sub(r"[,;]", " ", text))
    parts = re.split(r"\s+", spaced)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def perl_number_text(number: Any) -> str:
    """A schema limit as Perl interpolates it into a message (4094, not 4094.0)."""
    return perl_str(float(number)) if isinstance(number, float) else str(number)


_SIZE = re.compile(r"^(\d+(\.\d+)?)([KMGT](?:iB)?)?$")


def parse_size(text: str) -> int | None:
    """pve-common ``JSONSchema::parse_size``: bytes of ``32``, ``1.5G``, ``512MiB``."""
    match = _SIZE.search(text)
    if match is None:
        return None
    unit = (match.group(3) or "")[:1]
    factor = 1024 ** (" KMGT".index(unit) if unit else 0)
    return int(float(match.group(1)) * factor)
