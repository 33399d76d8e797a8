"""Splits by session: `train=0.8,val=0.1,test=0.1` assigns whole sessions (episodes) to
splits with a seeded shuffle, so no session leaks frames into two splits."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from pipeline._errors import PipelineError

Splits = tuple[tuple[str, float], ...]
NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


def parse_splits(text: str) -> Splits:
    """`"train=0.8,val=0.2"` -> (("train", 0.8), ("val", 0.2)); fractions sum to 1."""
    out: list[tuple[str, float]] = []
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        try:
            fraction = float(value)
        except ValueError:
            fraction = -1.0
        if not sep or not NAME.fullmatch(name) or not 0 < fraction <= 1:
            raise PipelineError(f"bad --split entry {part.strip()!r}; expected NAME=FRACTION "
                                "like train=0.8,val=0.1,test=0.1 (lower-case names)")
        if name in dict(out):
            raise PipelineError(f"--split names {name!r} twice")
        out.append((name, fraction))
    if abs(sum(f for _, f in out) - 1.0) > 1e-6:
        raise PipelineError(f"--split fractions add up to {sum(f for _, f in out):g}, not 1")
    return tuple(out)


def assign_splits(count: int, splits: Splits, seed: int) -> list[str]:
    """The split of each of `count` sessions: counts by largest remainder (ties to the
    earlier split), sessions drawn in a seeded random order."""
    exact = np.array([f for _, f in splits]) * count
    sizes = np.floor(exact).astype(int)
    order = sorted(range(len(splits)), key=lambda i: (-(exact[i] - sizes[i]), i))
    for i in order[: count - sizes.sum()]:
        sizes[i] += 1
    names = [name for (name, _), size in zip(splits, sizes, strict=True) for _ in range(size)]
    out = [""] * count
    for position, session in enumerate(np.random.default_rng(seed).permutation(count)):
        out[session] = names[position]
    return out


def split_order(splits: Sequence[str], names: Sequence[str]) -> list[int]:
    """Session positions grouped by split, in the order the splits were declared."""
    rank = {name: i for i, name in enumerate(names)}
    return sorted(range(len(splits)), key=lambda i: (rank[splits[i]], i))


def episode_ranges(splits: Sequence[str]) -> dict[str, str]:
    """LeRobot's `splits` of info.json: {name: "start:stop"} over contiguous episodes."""
    out: dict[str, str] = {}
    for i, name in enumerate(splits):
        start = int(out[name].split(":")[0]) if name in out else i
        out[name] = f"{start}:{i + 1}"
    return out
