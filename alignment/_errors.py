"""Errors raised by the alignment package.

    AlignmentError        logs or video cannot be aligned (bad input, nothing to match)
     +-- ImportFormatError   an imported log or archive is malformed or hostile
"""

from __future__ import annotations


class AlignmentError(Exception):
    """Logs or video cannot be aligned; the message says what was expected and the fix."""

    exit_code = 1


class ImportFormatError(AlignmentError):
    """An imported log or archive is malformed, truncated or hostile."""
