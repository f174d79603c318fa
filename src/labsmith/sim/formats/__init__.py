"""Value checks of Proxmox VE's JSON schema: types, limits, named formats, property strings.

This is the part of pve-common ``src/PVE/JSONSchema.pm`` that judges one value against one
schema (:mod:`.jsonschema`), plus the named formats that Proxmox's Perl packages register
with ``register_format``, kept in one registry (:mod:`.registry`) and filled by one module per
family (:mod:`.patterns`, :mod:`.firewall`, :mod:`.calendar`, :mod:`.property_formats`).
Each format names the file its rules come from. :mod:`labsmith.sim.params` applies this to a
whole request.

Messages keep PVE's exact text, including the trailing newline of a Perl ``die "...\\n"``:
a bad ``vmid`` reads ``invalid format - value does not look like a valid VM ID\\n`` on the
wire, as it does on a real node.
"""

# Importing a family registers its formats.
from labsmith.sim.formats import calendar, firewall, patterns, property_formats  # noqa: F401
from labsmith.sim.formats.base import (
    MISSING,
    NOT_ALLOWED,
    Errors,
    FormatError,
    parse_boolean,
    parse_size,
    perl_split,
    perl_str,
    perl_truthy,
    split_list,
)
from labsmith.sim.formats.jsonschema import (
    add_error,
    check_format,
    check_object,
    check_prop,
    parse_property_string,
    property_parts,
    property_values,
)
from labsmith.sim.formats.registry import (
    UNCHECKED_FORMATS,
    format_names,
    is_checked_format,
    named_property_format,
)

__all__ = [
    "MISSING",
    "NOT_ALLOWED",
    "UNCHECKED_FORMATS",
    "Errors",
    "FormatError",
    "add_error",
    "check_format",
    "check_object",
    "check_prop",
    "format_names",
    "is_checked_format",
    "named_property_format",
    "parse_boolean",
    "parse_property_string",
    "parse_size",
    "perl_split",
    "perl_str",
    "perl_truthy",
    "property_parts",
    "property_values",
    "split_list",
]
