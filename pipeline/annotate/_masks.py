"""Masks off the critical path: RLE encoding on a worker thread with bounded memory.

The segmenter hands over each frame's boolean masks (already on the host) and goes on with
the next frame; a single worker encodes them to COCO RLE. At most `max_pending` frames wait
unencoded, so a shard never holds more than that many full-resolution masks at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from pipeline.annotate._rle import mask_box, rle_encode

Box = tuple[float, float, float, float]


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two [x0, y0, x1, y1] boxes (0 when either is empty)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = ((max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1]))
             + (max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])) - inter)
    return inter / union if union > 0 else 0.0


def mask_rows(masks: np.ndarray, meta: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per mask: its metadata plus COCO RLE, tight box and area."""
    rows = []
    for mask, info in zip(masks, meta, strict=True):
        rle = rle_encode(mask)
        rows.append({**info, "mask_box_xyxy": list(mask_box(mask)), "mask_size": rle["size"],
                     "mask_counts": rle["counts"], "area": int(mask.sum())})
    return rows


class MaskEncoder:
    """Encodes masks on one worker thread; `submit` blocks while `max_pending` frames wait."""

    def __init__(self, max_pending: int = 8,
                 encode: Callable[[np.ndarray, Sequence[Mapping[str, Any]]],
                                  list[dict[str, Any]]] = mask_rows) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stpe-rle")
        self._slots = threading.BoundedSemaphore(max_pending)
        self._futures: list[Future[list[dict[str, Any]]]] = []
        self._encode = encode

    def submit(self, masks: Any, meta: Sequence[Mapping[str, Any]], ready: Any = None) -> None:
        """Queue one frame's masks ([N, H, W] bool, numpy or a host torch tensor); `ready`
        (a CUDA event recorded after a non-blocking copy) is waited for on the worker."""
        self._slots.acquire()

        def run() -> list[dict[str, Any]]:
            try:
                if ready is not None:
                    ready.synchronize()
                array = masks.numpy() if hasattr(masks, "numpy") else np.asarray(masks)
                return self._encode(array, meta)
            finally:
                self._slots.release()

        self._futures.append(self._pool.submit(run))

    def rows(self) -> list[dict[str, Any]]:
        """Every encoded row, in submission order (waits for the worker)."""
        out = [row for future in self._futures for row in future.result()]
        self._futures = []
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True)
