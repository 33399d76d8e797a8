"""COCO run-length encoding of binary masks (the compressed string form of pycocotools).

Runs are counted over the mask in column-major order, starting with a run of zeros; the
counts are delta-coded from the second-previous count and written 5 bits per character
(offset 48, bit 0x20 = more to come), so `{"size": [h, w], "counts": "..."}` is what COCO
tools read.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline._errors import PipelineError


def _runs(mask: np.ndarray) -> list[int]:
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds).tolist()
    return [0, *runs] if flat[0] else runs


def _to_string(counts: list[int]) -> str:
    out = bytearray()
    for i, count in enumerate(counts):
        x = count - counts[i - 2] if i > 2 else count
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            out.append(c + 48)
    return out.decode("ascii")


def _from_string(text: str) -> list[int]:
    counts: list[int] = []
    data = text.encode("ascii")
    p = 0
    while p < len(data):
        x, k, more = 0, 0, True
        while more:
            if p >= len(data):
                raise PipelineError("RLE counts string ends inside a number; the mask "
                                    "record is truncated")
            c = data[p] - 48
            if not 0 <= c < 64:
                raise PipelineError(f"RLE counts string has an invalid character at {p}; "
                                    "expected COCO compressed counts")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE of a 2-D binary mask: {"size": [h, w], "counts": str}."""
    if mask.ndim != 2:
        raise PipelineError(f"rle_encode expects a 2-D mask, got shape {mask.shape}")
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": _to_string(_runs(mask))}


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """The boolean HxW mask of a COCO RLE (compressed string or list of counts)."""
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    counts = _from_string(counts) if isinstance(counts, str) else [int(c) for c in counts]
    if any(c < 0 for c in counts) or sum(counts) != height * width:
        raise PipelineError(f"RLE counts cover {sum(counts)} pixels, expected {height}x{width}"
                            f"={height * width}; the mask record is corrupt")
    values = np.zeros(len(counts), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    return flat.reshape((height, width), order="F")


def rle_area(rle: dict[str, Any]) -> int:
    """Number of foreground pixels."""
    counts = rle["counts"]
    counts = _from_string(counts) if isinstance(counts, str) else list(counts)
    return int(sum(counts[1::2]))


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """Tight [x0, y0, x1, y1) pixel box of a mask (all zeros for an empty mask)."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if ys.size == 0:
        return (0.0, 0.0, 0.0, 0.0)
    return (float(xs[0]), float(ys[0]), float(xs[-1] + 1), float(ys[-1] + 1))
