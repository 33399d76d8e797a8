"""Timing shared by the benchmark scripts (run as `python benchmarks/NAME.py`, so this
folder is on the import path)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def best_of(fn: Callable[[], T], repeat: int = 5) -> tuple[float, T]:
    """The fastest of `repeat` calls of `fn`, in seconds, and the last call's result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out  # type: ignore[return-value]
