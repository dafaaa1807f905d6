"""The one exception type for bad user input; the CLI turns it into a message and exit code 2."""

import difflib
from collections.abc import Iterable


class UsageError(ValueError):
    """A request mtbench cannot honour as given: the message names the value, the choices and the fix."""


class WriteFailed(RuntimeError):
    """The disk refused a write (full, over quota, read-only or failing): what was written before is
    intact, and the same command resumes once the cause is fixed."""


class Diverged(RuntimeError):
    """Training diverged (non-finite losses, Q values or parameters, or |Q| past its bound): the run
    stops at once, is marked failed with this message, and keeps its last good checkpoint."""


def choices(values: Iterable[object]) -> str:
    """Format valid choices for an error message, shortening long lists."""
    items = [str(v) for v in values]
    if len(items) > 12:
        return ", ".join(items[:12]) + f", ... ({len(items)} in all; see `mtbench suites`)"
    return ", ".join(items)


def did_you_mean(value: object, valid: Iterable[object]) -> str:
    """`` (did you mean 'x'?)`` naming the valid names closest to ``value`` (at most three), or ""
    when none is close; for the message about an unknown name, after the name."""
    close = [repr(name) for name in difflib.get_close_matches(str(value), [str(v) for v in valid], n=3)]
    if not close:
        return ""
    return f" (did you mean {', '.join(close[:-1]) + ' or ' if len(close) > 1 else ''}{close[-1]}?)"
