"""The one exception type for bad user input; the CLI turns it into a message and exit code 2."""

from collections.abc import Iterable


class UsageError(ValueError):
    """A request mtbench cannot honour as given: the message names the value, the choices and the fix."""


def choices(values: Iterable[object]) -> str:
    """Format valid choices for an error message, shortening long lists."""
    items = [str(v) for v in values]
    if len(items) > 12:
        return ", ".join(items[:12]) + f", ... ({len(items)} in all; see `mtbench suites`)"
    return ", ".join(items)
