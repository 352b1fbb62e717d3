"""Errors a person can act on.

Everything the CLI and the app show as one clear line derives from ``UserError``;
anything else is a bug and may surface as a traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input or an unavailable resource, phrased for the person who caused it."""


class MediaError(UserError):
    """Media that cannot be read, fetched or decoded."""


class ModelUnavailableError(UserError):
    """A model that cannot be loaded in the current profile (e.g. hub model offline)."""


def first_line(exc: BaseException) -> str:
    """The gist of a library's exception for a one-line message (no trailing full stop to double up)."""
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__).rstrip(".")
