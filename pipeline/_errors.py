"""Errors raised by the pipeline package.

    PipelineError            a stage cannot run (missing input, bad option)
     +-- MissingExtraError   an optional dependency is not installed; names the extra
"""

from __future__ import annotations

import re
from importlib import metadata

# import name -> distribution name, where they differ
_DISTRIBUTIONS = {"rerun": "rerun-sdk", "PIL": "pillow", "cv2": "opencv-python"}


class PipelineError(Exception):
    """A stage cannot run; the message says what is missing and which command makes it."""

    exit_code = 1


class MissingExtraError(PipelineError):
    """An optional dependency is missing; the message names the pip extra to install."""

    exit_code = 3

    def __init__(self, module: str, extra: str) -> None:
        self.extra = extra
        super().__init__(f"{module} is not installed; it comes with STPE's '{extra}' extra: "
                         f"in your STPE clone run pip install -e '.[{extra}]'")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def missing_extra(module: str) -> MissingExtraError | None:
    """The error to show when importing `module` failed, if an extra of STPE provides it."""
    top = module.split(".")[0]
    wanted = _normal(_DISTRIBUTIONS.get(top, top))
    try:
        requirements = metadata.requires("stpe") or []
    except metadata.PackageNotFoundError:
        return None
    for requirement in requirements:
        name, _, marker = requirement.partition(";")
        found = re.match(r"\s*([A-Za-z0-9_.-]+)", name)
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
        if found and extra and _normal(found.group(1)) == wanted and extra.group(1) != "test":
            return MissingExtraError(top, extra.group(1))
    return None
