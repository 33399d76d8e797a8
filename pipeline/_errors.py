"""Errors raised by the pipeline package.

    PipelineError            a stage cannot run (missing input, bad option)
     +-- MissingExtraError   an optional dependency is not installed; names the extra
"""

from __future__ import annotations


class PipelineError(Exception):
    """A stage cannot run; the message says what is missing and which command makes it."""

    exit_code = 2


class MissingExtraError(PipelineError):
    """An optional dependency is missing; the message names the pip extra to install."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(f"{module} is not installed; install it with "
                         f"pip install 'stpe[{extra}]'")
