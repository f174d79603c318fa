"""The error types every package may raise; the CLI turns each into one line and its exit code."""


class LabsmithError(Exception):
    """An expected failure: the CLI prints its message as one line and exits non-zero."""

    exit_code = 1


class UnusableInventoryError(LabsmithError):
    """The inventory cannot be read: missing directory, YAML syntax error, not an inventory.

    The message names the file (and line where there is one) and how to fix it.
    """

    exit_code = 2


class InvalidInventoryError(LabsmithError):
    """The inventory was read but has errors: commands that change something stop before
    touching anything (``labsmith validate`` lists every finding)."""

    exit_code = 1


class UnknownHostError(LabsmithError):
    """A host or guest named on the command line is not one the command can act on."""

    exit_code = 2
