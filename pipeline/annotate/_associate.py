"""Identity for masks: the true entity behind a mask (IoU with its projected box from the
labels), and tracks across frames for masks no true entity explains (IoU + appearance).

Anchoring to the labels means a mask of the character carries the character's id on every
frame, whatever the segmenter's own ordering; only unexplained objects get track ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.annotate._inputs import LabeledObject

Box = tuple[float, float, float, float]


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two [x0, y0, x1, y1] boxes (0 when either is empty)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class Match:
    """The true entity a mask was assigned to (None when no box overlaps enough)."""

    entity_id: str | None
    entity_name: str | None
    iou: float


def associate(mask_boxes: Sequence[Box], objects: Sequence[LabeledObject],
              min_iou: float) -> list[Match]:
    """One-to-one assignment of masks to on-screen true objects, greedy by IoU (the highest
    pair first), keeping pairs with IoU >= `min_iou`."""
    candidates = [o for o in objects if o.on_screen]
    pairs = sorted(((box_iou(m, o.box_xyxy), i, j) for i, m in enumerate(mask_boxes)
                    for j, o in enumerate(candidates)), reverse=True)
    matches = [Match(None, None, 0.0) for _ in mask_boxes]
    used_masks: set[int] = set()
    used_objects: set[int] = set()
    for iou, i, j in pairs:
        if iou < min_iou:
            break
        if i in used_masks or j in used_objects:
            continue
        used_masks.add(i)
        used_objects.add(j)
        matches[i] = Match(candidates[j].id, candidates[j].name, iou)
    return matches


def appearance(image: np.ndarray, mask: np.ndarray, bins: int = 4) -> np.ndarray:
    """A unit-length colour histogram of the masked pixels (bins^3 RGB cells)."""
    pixels = image[mask]
    if pixels.size == 0:
        return np.zeros(bins ** 3, dtype=np.float32)
    cells = (pixels.astype(np.int32) * bins) // 256
    flat = (cells[:, 0] * bins + cells[:, 1]) * bins + cells[:, 2]
    hist = np.bincount(flat, minlength=bins ** 3).astype(np.float32)
    return hist / np.linalg.norm(hist)


@dataclass(frozen=True)
class _Track:
    track_id: str
    prompt: str
    box: Box
    feature: np.ndarray


class TrackLinker:
    """Links unexplained masks frame to frame: a mask continues the previous frame's track of
    the same prompt with the best score 0.5 * IoU + 0.5 * appearance cosine, if >= `min_score`."""

    def __init__(self, min_score: float = 0.5) -> None:
        self.min_score = min_score
        self._previous: list[_Track] = []
        self._next_id = 0

    def link(self, prompts: Sequence[str], boxes: Sequence[Box],
             features: Sequence[np.ndarray]) -> list[str]:
        """Track ids for one frame's unexplained masks (new ids for new objects)."""
        pairs = sorted(((0.5 * box_iou(b, t.box) + 0.5 * float(f @ t.feature), i, j)
                        for i, (p, b, f) in enumerate(zip(prompts, boxes, features, strict=True))
                        for j, t in enumerate(self._previous) if t.prompt == p), reverse=True)
        ids: list[str | None] = [None] * len(boxes)
        used: set[int] = set()
        for score, i, j in pairs:
            if score < self.min_score:
                break
            if ids[i] is None and j not in used:
                ids[i] = self._previous[j].track_id
                used.add(j)
        for i, track_id in enumerate(ids):
            if track_id is None:
                ids[i] = f"track-{self._next_id:05d}"
                self._next_id += 1
        final = [str(t) for t in ids]
        self._previous = [_Track(t, p, b, f) for t, p, b, f
                          in zip(final, prompts, boxes, features, strict=True)]
        return final
