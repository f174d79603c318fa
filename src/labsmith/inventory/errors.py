"""Errors the inventory layer raises for input it cannot use at all (exit code 2)."""


class LabsmithError(Exception):
    """An expected failure: the CLI prints its message as one line and exits non-zero."""

    exit_code = 1


class UnusableInventoryError(LabsmithError):
    """The inventory cannot be read: missing directory, YAML syntax error, not an inventory.

    The message names the file (and line where there is one) and how to fix it.
    """

    exit_code = 2
