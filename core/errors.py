"""The common base of reelface's own errors, and how the CLI and the daemon tell them from bugs."""

from __future__ import annotations


class ReelfaceError(Exception):
    """An error reelface reports as one line (no traceback); the message names the file and fix."""


def is_own(error: BaseException) -> bool:
    """Whether `error` is one of reelface's errors (shown as one line) rather than a bug."""
    return isinstance(error, ReelfaceError)


def one_line(error: BaseException) -> str:
    """The error's message on one line: a multi-line message would break logs and tables."""
    text = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    return text or type(error).__name__
