"""Constant-rate resampling: one output frame every 1/fps s, each the captured frame nearest
its time. Readers that turn a time into a frame number (`round(t * fps)`, as LeRobot and
most video loaders do) need this; the true capture time and frame index travel alongside."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from pipeline.export._source import ExportOptions, SessionData, iter_images


def nearest_rows(t: np.ndarray, fps: int) -> np.ndarray:
    """For output frames k = 0 .. floor(span * fps), at times t[0] + k / fps, the index of
    the nearest time in `t` (sorted); ties go to the earlier frame."""
    t = np.asarray(t, dtype=np.float64)
    count = int(np.floor((t[-1] - t[0]) * fps + 1e-9)) + 1
    if len(t) == 1:
        return np.zeros(count, dtype=np.int64)
    wanted = t[0] + np.arange(count) / fps
    right = np.clip(np.searchsorted(t, wanted), 1, len(t) - 1)
    left = right - 1
    return np.where(wanted - t[left] <= t[right] - wanted, left, right).astype(np.int64)


def resampled_images(data: SessionData, options: ExportOptions,
                     rows: np.ndarray) -> Iterator[tuple[int, int, np.ndarray]]:
    """(output frame k, source row, image) for every output frame, decoding each captured
    frame once; `rows` comes from `nearest_rows` (non-decreasing)."""
    k = 0
    for row, image in iter_images(data, options):
        while k < len(rows) and rows[k] == row:
            yield k, row, image
            k += 1
        if k == len(rows):
            return
