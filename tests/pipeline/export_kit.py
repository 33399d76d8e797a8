"""Labelled sessions with real video for the export tests, and an independent oracle of the
constant-rate resampling (written from its definition, not from pipeline.export)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from capture import Session
from capture._synthetic import synthetic_sample
from pipeline.labels import compute_labels, write_labels
from tests.pipeline.session_kit import make_session

SIZE = (320, 180)
SCALE = (0.25, 0.25)  # capture px per viewport px: the strip is 80 x 6 px bottom-left
STRIP = (0, SIZE[1] - 6, 80, SIZE[1])


def labelled(parent: Path, name: str, frame_t: list[float], idle: int = 0,
             size: tuple[int, int] = SIZE) -> Path:
    """A labelled session of len(frame_t) frames of `size` at those times; the last has no
    state. The first `idle` frames show no key held."""
    n = len(frame_t)
    samples = [synthetic_sample(i, i / 60) for i in range(2 * n)]
    for sample in samples[: 2 * idle]:
        sample["inputs"]["keys"] = []
    frames = [2 * i for i in range(n - 1)] + [None]
    path = make_session(parent, samples, frames, frame_t, size=size, scale=SCALE,
                        video=True, name=name)
    session = Session.open(path)
    write_labels(session, compute_labels(session))
    return path


def jittered(n: int, jitter: float, drop_every: int = 0) -> list[float]:
    """Times of n frames near 30 fps: i / 30 plus a jitter, and, every `drop_every` frames,
    two grabs lost (a 0.1 s gap)."""
    out, t = [], 0.0
    for i in range(n):
        out.append(t + jitter * (i % 4))
        t += 3 / 30 if drop_every and i % drop_every == drop_every - 1 else 1 / 30
    return out


def nearest_oracle(t: np.ndarray, fps: int) -> list[int]:
    """For each output time t0 + k / fps up to the last frame, the index of the captured
    frame closest to it (earlier on a tie), by brute force."""
    out, k = [], 0
    while t[0] + k / fps <= t[-1] + 1e-9:
        target = t[0] + k / fps
        out.append(min(range(len(t)), key=lambda i: (abs(t[i] - target), i)))
        k += 1
    return out


def nan_to_null(value):
    """NaN and infinities -> None, recursively: what a JSON record holds for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [nan_to_null(v) for v in value]
    if isinstance(value, dict):
        return {k: nan_to_null(v) for k, v in value.items()}
    return value
