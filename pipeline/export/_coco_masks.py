"""The segment stage's masks for the COCO export, read shard by shard while the export walks
a session's frames in order, so memory holds the shards that cover the current frame
rather than every mask of the session."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.export._source import SessionData

logger = logging.getLogger(__name__)

COLUMNS = ["frame_index", "entity_id", "score", "mask_size", "mask_counts"]
_UNREADABLE = (pa.ArrowException, OSError, KeyError)

# {frame_index: {entity id: (score, RLE)}}: the best mask of each true entity in one shard
ShardMasks = dict[int, dict[str, tuple[float, dict[str, Any]]]]


@dataclass(frozen=True)
class _Shard:
    first: int  # lowest and highest frame_index of its rows
    last: int
    path: Path


def _shards(folder: Path) -> list[_Shard]:
    """The segment shards of a session with rows, ordered by first frame then path; only
    their frame_index column is read here."""
    shards = []
    for path in sorted(folder.glob("shard-*.parquet")):
        try:
            bounds = pc.min_max(pq.read_table(path, columns=["frame_index"])["frame_index"])
        except _UNREADABLE as exc:
            logger.warning("skipping unreadable mask file %s: %s", path, exc)
            continue
        if bounds["min"].is_valid:
            shards.append(_Shard(bounds["min"].as_py(), bounds["max"].as_py(), path))
    return sorted(shards, key=lambda s: s.first)  # stable: path order among equal firsts


def _read(path: Path) -> ShardMasks | None:
    """One shard's masks of true entities, the best-scoring per entity and frame (the first
    of equal scores); None when the file cannot be read."""
    try:
        rows = pq.read_table(path, columns=COLUMNS).to_pylist()
    except _UNREADABLE as exc:
        logger.warning("skipping unreadable mask file %s: %s", path, exc)
        return None
    out: ShardMasks = {}
    for row in rows:
        entity, score = row["entity_id"], row["score"]
        if entity is not None and score is not None:
            _keep_best(out.setdefault(row["frame_index"], {}), entity, score,
                       {"size": list(row["mask_size"]), "counts": row["mask_counts"]})
    return out


def _keep_best(best: dict[str, tuple[float, dict[str, Any]]], entity: str, score: float,
               rle: dict[str, Any]) -> None:
    """Keep `rle` for `entity` if it scores higher than the mask kept so far (the first of
    equal scores stays)."""
    if score > best.get(entity, (-1.0, None))[0]:
        best[entity] = (score, rle)


class SegmentMasks:
    """{entity id: RLE} of each frame of one session from its segment stage's shards
    (`annotations/segment/shard-*.parquet`, docs/annotations.md), asked for frame by frame
    in increasing order: only masks anchored to a true entity; when several masks claim one
    entity in a frame, the best-scoring wins (the first of equals in shard and row order).
    A shard is read when the frames reach its first frame and let go after its last."""

    def __init__(self, data: SessionData) -> None:
        self._pending = _shards(data.session.file("annotations") / "segment")
        self._held: list[tuple[_Shard, ShardMasks]] = []
        self._frame: int | None = None

    @property
    def held(self) -> int:
        """How many shards are in memory."""
        return len(self._held)

    def frame(self, frame_index: int) -> dict[str, dict[str, Any]]:
        """The masks of `frame_index`, not lower than the frame asked for before."""
        if self._frame is not None and frame_index < self._frame:
            raise ValueError(f"frame {frame_index} asked for after frame {self._frame}")
        self._frame = frame_index
        self._held = [(s, m) for s, m in self._held if s.last >= frame_index]
        while self._pending and self._pending[0].first <= frame_index:
            shard = self._pending.pop(0)
            masks = _read(shard.path) if shard.last >= frame_index else None
            if masks is not None:
                self._held.append((shard, masks))
                self._held.sort(key=lambda held: held[0].path)
        best: dict[str, tuple[float, dict[str, Any]]] = {}
        for _, masks in self._held:
            for entity, (score, rle) in masks.get(frame_index, {}).items():
                _keep_best(best, entity, score, rle)
        return {entity: rle for entity, (_, rle) in best.items()}
