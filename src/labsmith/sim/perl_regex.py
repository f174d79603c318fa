"""Perl regular expressions from the Proxmox VE API schema, as Python ``re`` patterns.

The schema's ``pattern`` values are Perl source text: ``qr//`` objects stringify as
``(?^:...)`` or ``(?^i:...)``, and pve-common matches a value with ``m/^$pattern$/``
(``check_prop`` in pve-common ``src/PVE/JSONSchema.pm``). That anchoring is textual, not a
group: ``a|b`` becomes ``^a|b$``, which :func:`compile_anchored` keeps, so an alternation
matches exactly as it does on a Proxmox VE node.

Only constructs with a faithful Python equivalent are translated; anything else raises
:class:`PerlRegexError` instead of silently matching something different.
"""

import functools
import re

__all__ = ["PerlRegexError", "compile_anchored", "compile_perl", "translate"]

# Perl's \h and \v (horizontal and vertical whitespace, perlrecharclass), as class contents.
_HORIZONTAL = "\\t \\xa0\\u1680\\u180e\\u2000-\\u200a\\u202f\\u205f\\u3000"
_VERTICAL = "\\n\\x0b\\f\\r\\x85\\u2028\\u2029"

# Escapes whose meaning differs between Perl and Python and which are translated.
_CLASS_ESCAPES = {"h": _HORIZONTAL, "v": _VERTICAL, "e": "\\x1b"}
_OUTSIDE_ESCAPES = {
    "h": f"[{_HORIZONTAL}]",
    "H": f"[^{_HORIZONTAL}]",
    "v": f"[{_VERTICAL}]",
    "V": f"[^{_VERTICAL}]",
    "R": f"(?:\\r\\n|[{_VERTICAL}])",
    "e": "\\x1b",
    "z": "\\Z",
    # Perl's \Z also matches before a final newline; Python's \Z is the absolute end.
    "Z": "(?=\\n?\\Z)",
}
# Perl escapes with no faithful Python equivalent.
_UNSUPPORTED_ESCAPES = set("GKNQELUluXCcopPgk")

_POSIX_CLASSES = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": " \\t\\n\\r\\f\\v",
    "blank": " \\t",
    "xdigit": "0-9A-Fa-f",
    "word": "\\w",
    "punct": "!-/:-@\\[-`{-~",
    "cntrl": "\\x00-\\x1f\\x7f",
    "print": " -~",
    "graph": "!-~",
}

_LEADING_FLAGS = re.compile(r"\(\?\^?[a-zA-Z]*\)")
_FLAG_GROUP = re.compile(r"\(\?(\^)?([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])")
_KEPT_FLAGS = set("imsx")
_IGNORED_FLAGS = set("udlpo")  # charset/compile-time modifiers without a matching effect here


class PerlRegexError(ValueError):
    """A Perl construct this translator does not reproduce faithfully."""


def translate(pattern: str) -> str:
    """Translate Perl regex source to Python ``re`` source with the same meaning."""
    out: list[str] = []
    index = 0
    length = len(pattern)
    while index < length:
        char = pattern[index]
        if char == "\\":
            text, index = _escape(pattern, index, in_class=False)
        elif char == "[":
            text, index = _char_class(pattern, index)
        elif char == "(" and pattern.startswith("(?", index):
            text, index = _group_opening(pattern, index, at_start=not out)
        else:
            text, index = char, index + 1
        out.append(text)
    return "".join(out)


@functools.cache
def compile_perl(pattern: str) -> re.Pattern[str]:
    """Compile Perl regex source as is (unanchored), e.g. for ``m/$pattern/``."""
    try:
        return re.compile(translate(pattern))
    except re.error as error:
        raise PerlRegexError(f"cannot compile Perl pattern {pattern!r}: {error}") from error


@functools.cache
def compile_anchored(pattern: str) -> re.Pattern[str]:
    """Compile a schema ``pattern`` the way PVE applies it: ``m/^$pattern$/``.

    Use ``.search()`` on the result, as Perl's ``m//`` does. Leading inline flags such as
    ``(?i)`` stay in front, where Python requires them (they do not affect ``^``).
    """
    flags = _LEADING_FLAGS.match(pattern)
    prefix = flags.group(0) if flags else ""
    return compile_perl(f"{prefix}^{pattern[len(prefix) :]}$")


def _escape(pattern: str, index: int, *, in_class: bool) -> tuple[str, int]:
    """Translate the escape at ``pattern[index]`` (a backslash); return text and next index."""
    if index + 1 >= len(pattern):
        raise PerlRegexError(f"trailing backslash in {pattern!r}")
    letter = pattern[index + 1]
    table = _CLASS_ESCAPES if in_class else _OUTSIDE_ESCAPES
    if letter in table:
        return table[letter], index + 2
    if letter == "x" and pattern.startswith("{", index + 2):
        return _braced_hex(pattern, index)
    if letter == "k" and not in_class and pattern.startswith("<", index + 2):
        end = pattern.find(">", index)
        if end < 0:
            raise PerlRegexError(f"unterminated \\k<...> in {pattern!r}")
        return f"(?P={pattern[index + 3 : end]})", end + 1
    if letter in _UNSUPPORTED_ESCAPES:
        raise PerlRegexError(f"unsupported Perl escape \\{letter} in {pattern!r}")
    return pattern[index : index + 2], index + 2


def _braced_hex(pattern: str, index: int) -> tuple[str, int]:
    """``\\x{263A}`` (Perl) -> ``\\u263a``/``\\U0001f600`` (Python)."""
    end = pattern.find("}", index)
    if end < 0:
        raise PerlRegexError(f"unterminated \\x{{...}} in {pattern!r}")
    code = int(pattern[index + 3 : end] or "0", 16)
    if code < 0x100:
        return f"\\x{code:02x}", end + 1
    return (f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"), end + 1


def _char_class(pattern: str, index: int) -> tuple[str, int]:
    """Translate ``[...]`` starting at ``index``; a leading ``]`` (after ``^``) is literal."""
    out = ["["]
    index += 1
    if pattern.startswith("^", index):
        out.append("^")
        index += 1
    if pattern.startswith("]", index):
        out.append("\\]")
        index += 1
    while index < len(pattern):
        char = pattern[index]
        if char == "]":
            out.append("]")
            return "".join(out), index + 1
        if char == "\\":
            text, index = _escape(pattern, index, in_class=True)
        elif pattern.startswith("[:", index):
            text, index = _posix_class(pattern, index)
        elif char == "[":
            # A literal '[' inside a class; Python warns about possible nested sets.
            text, index = "\\[", index + 1
        else:
            text, index = char, index + 1
        out.append(text)
    raise PerlRegexError(f"unterminated character class in {pattern!r}")


def _posix_class(pattern: str, index: int) -> tuple[str, int]:
    end = pattern.find(":]", index + 2)
    if end < 0:
        return "\\[", index + 1
    name = pattern[index + 2 : end]
    negated = name.startswith("^")
    if negated or name not in _POSIX_CLASSES:
        raise PerlRegexError(f"unsupported POSIX class [:{name}:] in {pattern!r}")
    return _POSIX_CLASSES[name], end + 2


def _group_opening(pattern: str, index: int, *, at_start: bool) -> tuple[str, int]:
    """Translate ``(?...`` openings: flag groups, named groups; others pass through."""
    rest = pattern[index:]
    if rest.startswith(("(?:", "(?=", "(?!", "(?<=", "(?<!", "(?>", "(?#", "(?P")):
        return "(?", index + 2
    if rest.startswith("(?<") or rest.startswith("(?'"):
        return _named_group(pattern, index)
    match = _FLAG_GROUP.match(pattern, index)
    if match is None:
        raise PerlRegexError(f"unsupported group construct at {rest[:12]!r} in {pattern!r}")
    caret, on, off, end = match.groups()
    flags_on, flags_off = _flags(on, off or "", caret=bool(caret), pattern=pattern)
    if end == ")" and not at_start:
        # Python only accepts global inline flags at the very start of a pattern.
        raise PerlRegexError(f"inline flags in the middle of {pattern!r}")
    if not (flags_on or flags_off):
        # nothing left to set: a plain group, or for "(?)" nothing at all
        return ("(?:" if end == ":" else ""), match.end()
    off_part = f"-{flags_off}" if flags_off else ""
    return f"(?{flags_on}{off_part}{end}", match.end()


def _flags(on: str, off: str, *, caret: bool, pattern: str) -> tuple[str, str]:
    """Perl flag letters -> Python's; ``^`` resets to defaults, i.e. turns off the others."""
    unknown = set(on + off) - _KEPT_FLAGS - _IGNORED_FLAGS - {"a"}
    if unknown:
        raise PerlRegexError(f"unsupported regex flags {''.join(sorted(unknown))} in {pattern!r}")
    kept_on = "".join(flag for flag in on if flag in _KEPT_FLAGS or flag == "a")
    kept_off = "".join(flag for flag in off if flag in _KEPT_FLAGS)
    if caret:
        kept_off = "".join(flag for flag in "imsx" if flag not in kept_on)
    return kept_on, kept_off


def _named_group(pattern: str, index: int) -> tuple[str, int]:
    closer = ">" if pattern[index + 2] == "<" else "'"
    end = pattern.find(closer, index + 3)
    if end < 0:
        raise PerlRegexError(f"unterminated group name in {pattern!r}")
    return f"(?P<{pattern[index + 3 : end]}>", end + 1
